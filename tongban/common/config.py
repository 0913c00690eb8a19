"""Where tongban reads and writes. Every path can be moved with an environment variable.

The defaults suit a checkout: reference lists come from ``../shared/reference`` (never copied
into the repo); deliveries are looked up in the inbox directories in order — ``build/inbox``
(where ``tongban sample`` writes the synthetic births and licences) and then the reference
directory (the real open-data catalogues); working state goes to ``build/``, the consumer
exchange to ``exchange/`` and producer feedback to ``feedback/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from tongban.common.parts import find_parts
from tongban.common.sqlquote import quote_literal

PROJECT_ROOT = Path(__file__).resolve().parents[2]


#: "0" keeps the GX worker process from starting (tongban.steps.gate_worker); a scheduled run's
#: transform sets it, its gate being another task (tongban.airflow_env.run_step)
GATE_WORKER_ENV = "TONGBAN_GATE_WORKER"

#: the engine the dbt build runs on (issue 19): ``duckdb`` (the default, in process) or ``spark``
#: (dbt-spark's session method on a local pyspark: the ``spark`` extra; tongban.steps.spark_engine)
ENGINE_ENV = "TONGBAN_ENGINE"
ENGINES = ("duckdb", "spark")


def _path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else default.resolve()


@dataclass(frozen=True)
class Settings:
    project_root: Path
    reference_dir: Path
    inbox_dirs: tuple[Path, ...]
    standards_dir: Path
    expectations_dir: Path
    build_dir: Path
    exchange_dir: Path
    feedback_dir: Path
    #: the suites a run's gate reads: TONGBAN_EXPECTATIONS_DIR, else those generated with the run's
    #: dbt project (``expectations_dir`` is where the committed ones are)
    gate_suites_dir: Path
    #: the engine of the dbt build (TONGBAN_ENGINE; ``tongban run --engine``): one of ENGINES
    engine: str = "duckdb"

    @property
    def sample_dir(self) -> Path:
        """Where `tongban sample` writes by default (the first inbox)."""
        return self.inbox_dirs[0]

    def find_delivery(self, relative: str) -> Path:
        """The delivery file in the first inbox directory that has it (else where it was expected).

        ``relative`` may be a glob (a delivery in parts): this is then its first part; all of
        them, in order, are :func:`tongban.common.parts.find_parts`'s."""

        parts = find_parts(self.inbox_dirs, relative)
        return parts[0] if parts else self.inbox_dirs[0] / relative

    def inbox_relative(self, path: Path | str) -> str:
        for d in self.inbox_dirs:
            try:
                return str(Path(path).relative_to(d))
            except ValueError:
                continue
        return Path(path).name

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
    def uses_repo_standards(self) -> bool:
        return self.standards_dir == (self.project_root / "standards").resolve()

    @property
    def dbt_project_dir(self) -> Path:
        """The dbt project a run builds from: generated under build/dbt/project from the standards
        (the repository's own or TONGBAN_STANDARDS_DIR), so a run never rewrites a tracked file."""
        return self.build_dir / "dbt" / "project"

    @property
    def spark_project_dir(self) -> Path:
        """The Spark engine's dbt project: the same static files with the models generated in
        Spark's dialect (never committed), beside the DuckDB one."""
        return self.build_dir / "dbt-spark" / "project"

    @property
    def spark_warehouse_dir(self) -> Path:
        """Where Spark writes its tables (Parquet), read back into the DuckDB warehouse after the build."""
        return self.build_dir / "spark-warehouse"


def settings() -> Settings:
    """Read the settings afresh (tests change the environment between runs)."""
    root = PROJECT_ROOT
    reference = _path("TONGBAN_REFERENCE_DIR", root.parent / "shared" / "reference")
    build = _path("TONGBAN_BUILD_DIR", root / "build")
    inbox_env = os.environ.get("TONGBAN_INBOX_DIR")  # one or more directories, os.pathsep-separated
    inbox = tuple(Path(p).expanduser().resolve() for p in inbox_env.split(os.pathsep) if p) if inbox_env \
        else (build / "inbox", reference)
    standards = _path("TONGBAN_STANDARDS_DIR", root / "standards")
    return Settings(
        project_root=root,
        reference_dir=reference,
        inbox_dirs=inbox,
        standards_dir=standards,
        expectations_dir=_path("TONGBAN_EXPECTATIONS_DIR", root / "expectations" if standards == (root / "standards").resolve()
                               else build / "dbt" / "project" / "expectations"),
        build_dir=build,
        exchange_dir=_path("TONGBAN_EXCHANGE_DIR", root / "exchange"),
        feedback_dir=_path("TONGBAN_FEEDBACK_DIR", root / "feedback"),
        gate_suites_dir=_path("TONGBAN_EXPECTATIONS_DIR", build / "dbt" / "project" / "expectations"),
        engine=engine(),
    )


def engine() -> str:
    """TONGBAN_ENGINE (default duckdb); anything else than ENGINES is refused."""
    value = (os.environ.get(ENGINE_ENV) or "duckdb").strip().lower()
    if value not in ENGINES:
        raise ValueError(f"{ENGINE_ENV}={value!r}: the engine is one of {', '.join(ENGINES)}")
    return value


#: DuckDB's memory limit in every tongban process (dbt's through profiles.yml); beyond it DuckDB
#: spills to disk (a file database beside itself, ``<file>.tmp``). Peak memory stays flat in the
#: size of the deliveries.
DUCKDB_MEMORY_ENV = "TONGBAN_DUCKDB_MEMORY_LIMIT"
DUCKDB_MEMORY_DEFAULT = "1GB"


def duckdb_memory_limit() -> str:
    return os.environ.get(DUCKDB_MEMORY_ENV) or DUCKDB_MEMORY_DEFAULT


def limit_memory(con, temp_dir: Path | None = None):
    """Apply tongban's DuckDB memory limit (and spill directory) to a connection; returns it."""

    con.execute(f"set memory_limit = {quote_literal(duckdb_memory_limit())}")
    if temp_dir is not None:
        Path(temp_dir).mkdir(parents=True, exist_ok=True)
        con.execute(f"set temp_directory = {quote_literal(str(temp_dir))}")
    return con


def quiet_third_parties() -> None:
    """Telemetry off and Airflow kept small, before any of them is imported."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("AIRFLOW__CORE__PARALLELISM", "4")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    import logging

    # Cosmos (installed for users who want task-per-model) is loaded as an Airflow plugin and
    # warns at import that OpenLineage is not installed; tongban does not use it.
    logging.getLogger("cosmos").setLevel(logging.ERROR)
