"""Where tongban reads and writes. Every path can be moved with an environment variable.

The defaults suit a checkout: deliveries and reference lists come from ``../shared/reference``
(never copied into the repo), working state goes to ``build/``, the consumer exchange to
``exchange/`` and producer feedback to ``feedback/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else default.resolve()


@dataclass(frozen=True)
class Settings:
    project_root: Path
    reference_dir: Path
    inbox_dir: Path
    standards_dir: Path
    expectations_dir: Path
    build_dir: Path
    exchange_dir: Path
    feedback_dir: Path

    @property
    def warehouse_path(self) -> Path:
        return self.build_dir / "warehouse.duckdb"

    @property
    def raw_dir(self) -> Path:
        return self.build_dir / "raw"

    @property
    def gx_dir(self) -> Path:
        return self.build_dir / "gx"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_root


def settings() -> Settings:
    """Read the settings afresh (tests change the environment between runs)."""
    root = PROJECT_ROOT
    reference = _path("TONGBAN_REFERENCE_DIR", root.parent / "shared" / "reference")
    return Settings(
        project_root=root,
        reference_dir=reference,
        inbox_dir=_path("TONGBAN_INBOX_DIR", reference),
        standards_dir=_path("TONGBAN_STANDARDS_DIR", root / "standards"),
        expectations_dir=_path("TONGBAN_EXPECTATIONS_DIR", root / "expectations"),
        build_dir=_path("TONGBAN_BUILD_DIR", root / "build"),
        exchange_dir=_path("TONGBAN_EXCHANGE_DIR", root / "exchange"),
        feedback_dir=_path("TONGBAN_FEEDBACK_DIR", root / "feedback"),
    )


def quiet_third_parties() -> None:
    """Telemetry off and Airflow kept small, before any of them is imported."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("AIRFLOW__CORE__PARALLELISM", "4")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
