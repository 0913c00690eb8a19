"""Session-wide isolation: every test run works in its own temporary build, exchange and
feedback directories (and so its own Airflow home), set before anything imports Airflow."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.workdirs import work_env

_ROOT = Path(tempfile.mkdtemp(prefix="tongban-tests-"))
os.environ.update(work_env(_ROOT))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
