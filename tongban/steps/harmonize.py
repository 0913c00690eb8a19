"""Run dbt on DuckDB, in process, once per run.

``import dbt.cli.main`` alone takes ~5 s here, so it is imported inside ``run_dbt`` and one
``dbt build`` covers every model, seed and data test of the run (DESIGN: one dbt invocation
per run).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from tongban.common.config import duckdb_memory_limit
from tongban.common.config import DUCKDB_MEMORY_ENV
from tongban.common.sqlquote import quote_ident


class TransformError(RuntimeError):
    """The dbt build failed (the message names the models and their files)."""

    exit_code = 5


@dataclass
class DbtOutcome:
    success: bool
    failures: list[str] = field(default_factory=list)
    nodes: int = 0


def dbt_env(warehouse: Path, raw_dir: Path, build_dir: Path, memory_limit: str | None = None) -> dict[str, str]:
    return {
        "TONGBAN_WAREHOUSE": str(warehouse),
        "TONGBAN_RAW_DIR": str(raw_dir),
        "TONGBAN_DUCKDB_MEMORY_LIMIT": memory_limit or duckdb_memory_limit(),
        "DBT_TARGET_PATH": str(build_dir / "dbt" / "target"),
        "DBT_LOG_PATH": str(build_dir / "dbt" / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }


def run_dbt(project_dir: Path, *, warehouse: Path, raw_dir: Path, build_dir: Path,
            args: list[str] | None = None, memory_limit: str | None = None) -> DbtOutcome:
    """``memory_limit``: DuckDB's for this invocation only (default: tongban's)."""

    before = os.environ.get(DUCKDB_MEMORY_ENV)
    os.environ.update(dbt_env(warehouse, raw_dir, build_dir, memory_limit))
    try:
        return _invoke(project_dir, args)
    finally:  # the profile reads it from the environment; later invocations get tongban's own
        if before is None:
            os.environ.pop(DUCKDB_MEMORY_ENV, None)
        else:
            os.environ[DUCKDB_MEMORY_ENV] = before


def _invoke(project_dir: Path, args: list[str] | None) -> DbtOutcome:
    from dbt.cli.main import dbtRunner

    cli = args or ["build"]
    result = dbtRunner().invoke([*cli, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
                                 "--quiet", "--no-use-colors"])
    _release_duckdb()
    failures = []
    nodes = 0
    for res in result.result or []:
        nodes += 1
        status = str(getattr(res, "status", ""))
        if status not in ("success", "pass", "skipped", "RunStatus.Success", "TestStatus.Pass"):
            node = getattr(res, "node", None)
            where = f" ({node.original_file_path})" if getattr(node, "original_file_path", None) else ""
            failures.append(f"{getattr(node, 'unique_id', '?')}{where}: {status}: "
                            f"{_without_values((res.message or '').strip())[:500]}")
    if result.exception is not None:
        failures.append(f"dbt: {_without_values(str(result.exception))[:500]}")
    return DbtOutcome(success=bool(result.success) and not failures, failures=failures, nodes=nodes)


_QUOTED = re.compile(r"'(?:[^']|'')*'")


def _without_values(message: str) -> str:
    """A dbt or DuckDB error with its single-quoted literals blanked out: DuckDB quotes the value it
    could not convert, and a delivery's values must not reach a message (they may be personal)."""
    return _QUOTED.sub("'…'", message)


def _release_duckdb() -> None:
    """dbt-duckdb keeps its DuckDB database open in the process after a run; later steps open the
    warehouse read-only, which DuckDB refuses while a read-write handle is alive."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if env is not None:
        env.close()
    import gc

    gc.collect()


def source_counts(warehouse: Path, entity: str) -> dict[str, dict[str, Any]]:
    """Per source: rows seen by dbt, rows that passed, rows rejected, top reasons, unmapped values."""
    import duckdb


    int_rel = f"intermediate.{quote_ident(f'int_{entity}__unioned')}"
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out: dict[str, dict[str, Any]] = {}
        # two scans of the entity's rows: the counts, then the few rows with a reason or a note
        # (the queries below read only those)
        for source_id, total, passed, versions in con.execute(
                f"select source_id, count(*), count(*) filter (where len(reasons) = 0), "
                f"list_sort(list(distinct crosswalk_version)) from {int_rel} group by 1 order by 1").fetchall():
            out[source_id] = {"rows_transformed": total, "rows_passed": passed, "rows_rejected": total - passed,
                              "top_reasons": [], "unmapped": [], "held_back": [],
                              "crosswalk_versions": [v for v in versions if v is not None]}
        con.execute(f"create temp table issues as select source_id, reasons, note_issues from {int_rel} "
                    f"where len(reasons) > 0 or len(note_issues) > 0")
        for source_id, reason, fld, n in con.execute(
                "select source_id, r.reason, r.field, count(*) as n from "
                "(select source_id, unnest(reasons) as r from issues) group by all "
                "order by source_id, n desc, r.reason, r.field").fetchall():
            out[source_id]["top_reasons"].append({"reason": reason, "field": fld, "rows": n})
        # values no crosswalk maps, and values only a proposed (not yet approved) entry maps
        for reason, key, policies in [("unmapped_code", "unmapped", ("quarantine", "unknown")),
                                      ("mapping_not_approved", "held_back", ("quarantine", "used, noted"))]:
            for source_id, fld, value, n, blocking in con.execute(
                    "select source_id, r.field, r.value, count(*) as n, bool_or(blocking) from ("
                    "  select source_id, unnest(reasons) as r, true as blocking from issues "
                    "  union all select source_id, unnest(note_issues) as r, false from issues) "
                    "where r.reason = ? group by all order by source_id, n desc, r.value", [reason]).fetchall():
                out[source_id][key].append({"field": fld, "value": value, "rows": n,
                                            "policy": policies[0] if blocking else policies[1]})
        return out
    finally:
        con.close()
