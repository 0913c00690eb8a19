"""The served exchange (issue 16): consumers identified by bearer tokens, grants approved by the
producing province, a hash-chained audit log and certificate verification, over HTTP (FastAPI).

    state/      the platform's own state (SQLAlchemy 2 models, Alembic migrations), never in exchange/
    identity    consumers and their tokens (stored as sha256 only)
    audit       the append-only, hash-chained audit log
    sharing     sharing classes from the standard, and what a caller may read
    reader      rows of one immutable snapshot through an in-memory DuckDB connection
    app         the FastAPI app; routers/ one APIRouter per resource
    cli         ``tongban serve | consumer | audit``
"""
