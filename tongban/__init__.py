"""tongban."""
