"""The quality gate: run a Great Expectations checkpoint on one DuckDB table, inside DuckDB.

``run_gate`` validates ``schema.table`` of the DuckDB warehouse against an ExpectationSuite JSON
file through GX's SQL data source (duckdb-engine): every metric is a SQL query that DuckDB runs;
the table is never pulled into pandas. Validation results and local Data Docs are written under
``gx_dir`` (a build artefact) and a :class:`GateResult` is returned.

Blocking: an expectation blocks iff its ``meta.blocking`` is ``true``; other failed expectations
are warnings. An expectation GX could not evaluate (it caught an exception) has failed.

Personal data. By default (``include_unexpected_values=False``) no row value is copied into the
validation results, the Data Docs or the :class:`GateResult`:

* GX is asked for counts only: result_format BASIC with ``partial_unexpected_count: 0``,
  ``exclude_unexpected_values: true``, no unexpected rows and no unexpected-index query, so map
  expectations (not null, in set, unique, regex, ...) report ``unexpected_count`` and percentages
  but no ``partial_unexpected_list`` / ``_counts`` / ``_index_list``;
* expectations whose *observed value* is itself a row value (a column's min, max, median,
  quantiles, most common or distinct values; no result_format short of BOOLEAN_ONLY hides it) are
  refused with ``ValueError`` (:data:`VALUE_REVEALING_EXPECTATIONS`);
* error texts are withheld: a DuckDB error can quote a value (``Could not convert string
  '...' to INT32``), so the stored results are rewritten with the exception type only before the
  Data Docs are rebuilt, and the GateResult says "not evaluated (<type>; details withheld)". The
  errors GX raises itself before running SQL (a missing column, a column of the wrong type) are
  kept: they name columns, not values.

GX's own log output is not filtered (GX logs SQL errors at ERROR level, values included): keep
``great_expectations`` logging quiet where logs are shared. ``include_unexpected_values=True``
is for tables without personal data: it switches to result_format SUMMARY (up to 20 unexpected
values per expectation) and keeps error texts.

great_expectations is imported inside functions only, so ``import tongban.steps.gx_gate`` stays cheap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tongban.steps import gx_duckdb
from tongban.steps.gate_report import describe, redact_exceptions
from tongban.steps.results import GateResult

__all__ = ["VALUE_REVEALING_EXPECTATIONS", "GateResult", "SuiteFileError", "load_suite_dict", "run_gate"]

DATASOURCE_NAME = "tongban_warehouse"
BATCH_DEFINITION_NAME = "whole_table"
DATA_DOCS_SITE = "local_site"

#: Expectation types whose result carries row values (``observed_value`` / ``details``) under any
#: result_format that still reports unexpected counts. Refused unless include_unexpected_values.
VALUE_REVEALING_EXPECTATIONS: frozenset[str] = frozenset(
    {
        "expect_column_min_to_be_between",
        "expect_column_max_to_be_between",
        "expect_column_median_to_be_between",
        "expect_column_quantile_values_to_be_between",
        "expect_column_most_common_value_to_be_in_set",
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_distinct_values_to_contain_set",
        "expect_column_distinct_values_to_equal_set",
        "expect_column_kl_divergence_to_be_less_than",
    }
)

# Counts only: no partial_unexpected_list / _counts / _index_list, no unexpected rows, no query.
_RESULT_FORMAT_COUNTS_ONLY: dict[str, Any] = {
    "result_format": "BASIC",
    "partial_unexpected_count": 0,
    "exclude_unexpected_values": True,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
_RESULT_FORMAT_WITH_VALUES: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 20,
    "include_unexpected_rows": False,
}

# Keys of an expectation in ExpectationSuite.to_json_dict() that are configuration (not "id").
_EXPECTATION_KEYS = ("type", "kwargs", "meta", "notes", "description", "severity")


class SuiteFileError(ValueError):
    """The suite JSON is not a usable GX 1.x ExpectationSuite."""


def load_suite_dict(suite_path: Path) -> dict:
    """Read and sanity-check a GX 1.x ExpectationSuite JSON file (no GX import)."""
    data = json.loads(Path(suite_path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        raise SuiteFileError(f"{suite_path}: not an ExpectationSuite JSON (needs a non-empty 'name')")
    expectations = data.get("expectations")
    if not isinstance(expectations, list):
        raise SuiteFileError(f"{suite_path}: 'expectations' must be a list")
    for i, exp in enumerate(expectations):
        if not isinstance(exp, dict) or not isinstance(exp.get("type"), str):
            raise SuiteFileError(f"{suite_path}: expectation #{i} has no 'type'")
        where = f"{suite_path}: expectation #{i} ({exp['type']})"
        if not isinstance(exp.get("kwargs", {}), dict):
            raise SuiteFileError(f"{where}: 'kwargs' must be an object")
        meta = exp.get("meta") or {}
        if not isinstance(meta, dict):
            raise SuiteFileError(f"{where}: 'meta' must be an object")
        if "blocking" in meta and not isinstance(meta["blocking"], bool):
            raise SuiteFileError(f"{where}: meta.blocking must be true or false")
    return data


def _build_suite(suite_dict: dict):
    """An unsaved ExpectationSuite from the JSON dict, ids dropped, every expectation kept.

    ``ExpectationSuite(expectations=[<dict>])`` logs and *drops* an invalid expectation; a gate
    must not silently lose a blocking check, so each one is built here and errors are raised.
    """
    from great_expectations.core.expectation_suite import ExpectationSuite  # GX is heavy (2-3 s): imported only when a gate runs
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration  # GX is heavy (2-3 s): imported only when a gate runs

    expectations = []
    for i, exp in enumerate(suite_dict["expectations"]):
        config = {key: exp[key] for key in _EXPECTATION_KEYS if exp.get(key) is not None}
        config.setdefault("kwargs", {})
        try:
            expectations.append(ExpectationConfiguration(**config).to_domain_obj())
        except Exception as exc:  # ExpectationNotFoundError, pydantic ValidationError, ...
            raise SuiteFileError(
                f"suite {suite_dict['name']!r}: expectation #{i} ({exp['type']}) is invalid: {exc}"
            ) from exc
    suite = ExpectationSuite(
        name=suite_dict["name"],
        expectations=expectations,
        meta=dict(suite_dict.get("meta") or {}) or None,
        notes=suite_dict.get("notes"),
    )
    if len(suite.expectations) != len(expectations):  # pragma: no cover - defensive
        raise SuiteFileError(f"suite {suite_dict['name']!r}: some expectations could not be loaded")
    return suite



def _ensure_datasource(context, connection_string: str):
    """The warehouse SQL data source (read-only); re-created only if its settings changed."""
    wanted_kwargs = {"connect_args": {"read_only": True}}
    try:
        datasource = context.data_sources.get(DATASOURCE_NAME)
    except KeyError:
        datasource = None
    if (
        datasource is not None
        and str(datasource.connection_string) == connection_string
        and datasource.kwargs == wanted_kwargs
    ):
        return datasource
    return context.data_sources.add_or_update_sql(
        name=DATASOURCE_NAME, connection_string=connection_string, kwargs=wanted_kwargs
    )


def _ensure_batch_definition(datasource, schema: str, table: str):
    asset_name = f"{schema}.{table}"
    if asset_name in {asset.name for asset in datasource.assets}:
        asset = datasource.get_asset(asset_name)
        if asset.table_name != table or asset.schema_name != schema:
            datasource.delete_asset(asset_name)
            asset = datasource.add_table_asset(name=asset_name, table_name=table, schema_name=schema)
    else:
        asset = datasource.add_table_asset(name=asset_name, table_name=table, schema_name=schema)
    for batch_definition in asset.batch_definitions:
        if batch_definition.name == BATCH_DEFINITION_NAME:
            return batch_definition
    return asset.add_batch_definition_whole_table(BATCH_DEFINITION_NAME)


def _close_connections(datasource) -> None:
    """Release the DuckDB file: GX keeps the connection open for the engine's lifetime."""
    execution_engine = getattr(datasource, "_execution_engine", None)
    if execution_engine is not None:
        connection = getattr(execution_engine, "_connection", None)
        if connection is not None:
            connection.close()
            execution_engine._connection = None
        execution_engine.engine.dispose()
    engine = getattr(datasource, "_engine", None)  # the data source's own engine (asset checks)
    if engine is not None:
        engine.dispose()


def _docs_index(context) -> Path | None:
    for site in context.get_docs_sites_urls(site_name=DATA_DOCS_SITE, only_if_exists=True):
        url = site.get("site_url")
        if url and url.startswith("file://"):
            path = Path(unquote(urlparse(url).path))
            if path.is_file():
                return path
    return None


def _quiet_context(context) -> None:
    """No progress bars in task logs, analytics off (persisted in the context's yml)."""
    from great_expectations.data_context.types.base import ProgressBarsConfig  # GX is heavy (2-3 s): imported only when a gate runs

    progress_bars = context.variables.progress_bars  # a dict once read back from the yml
    if isinstance(progress_bars, dict):
        progress_bars = ProgressBarsConfig(**progress_bars)
    if progress_bars is None or progress_bars.globally or progress_bars.metric_calculations:
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.save()
    if context.config.analytics_enabled is not False:
        context.enable_analytics(False)


def run_gate(
    *,
    warehouse_path: Path,
    schema: str,
    table: str,
    suite_path: Path,
    gx_dir: Path,
    run_id: str,
    include_unexpected_values: bool = False,
) -> GateResult:
    """Validate ``schema.table`` of the DuckDB file ``warehouse_path`` with the suite at
    ``suite_path``; validation results and Data Docs go to the GX project at ``gx_dir``.

    The warehouse is opened read-only and released before this returns. No other process may
    hold a write lock on it meanwhile, and this process must not hold a read-write connection to
    it (DuckDB refuses to open one file with two configurations in one process). Safe to call
    repeatedly, in one process and on one ``gx_dir`` (every GX object is added or updated), but
    not concurrently on one ``gx_dir``.

    Raises ``SuiteFileError`` (a ValueError) for an unusable suite file, ``ValueError`` for a
    value-revealing expectation without ``include_unexpected_values``, ``FileNotFoundError`` for
    a missing warehouse.
    """
    warehouse_path = Path(warehouse_path).resolve()
    gx_dir = Path(gx_dir).resolve()
    if not warehouse_path.is_file():
        raise FileNotFoundError(f"DuckDB warehouse not found: {warehouse_path}")
    suite_dict = load_suite_dict(Path(suite_path))
    if not include_unexpected_values:
        revealing = sorted({e["type"] for e in suite_dict["expectations"]} & VALUE_REVEALING_EXPECTATIONS)
        if revealing:
            raise ValueError(
                f"suite {suite_dict['name']!r} uses {', '.join(revealing)}, whose results contain row "
                "values; pass include_unexpected_values=True only for tables without personal data"
            )


    gx_duckdb.apply()  # also switches GX telemetry off before GX is first imported

    import great_expectations as gx  # GX is heavy (2-3 s): imported only when a gate runs
    from great_expectations.core.run_identifier import RunIdentifier  # GX is heavy (2-3 s): imported only when a gate runs
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier  # GX is heavy (2-3 s): imported only when a gate runs

    gx_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", context_root_dir=gx_dir)
    _quiet_context(context)

    datasource = _ensure_datasource(context, f"duckdb:///{warehouse_path.as_posix()}")
    try:
        batch_definition = _ensure_batch_definition(datasource, schema, table)
        suite = context.suites.add_or_update(_build_suite(suite_dict))
        validation_definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(
                name=f"{schema}.{table}__{suite.name}", data=batch_definition, suite=suite
            )
        )
        result_format = (
            _RESULT_FORMAT_WITH_VALUES if include_unexpected_values else _RESULT_FORMAT_COUNTS_ONLY
        )
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"gate__{schema}.{table}__{suite.name}",
                validation_definitions=[validation_definition],
                # no docs action: the Data Docs are built once, below, after any redaction
                actions=[],
                result_format=dict(result_format),
            )
        )
        checkpoint_result = checkpoint.run(run_id=RunIdentifier(run_name=run_id))
    finally:
        _close_connections(datasource)

    blocking: list[str] = []
    warnings: list[str] = []
    evaluated = 0
    position = {expectation.id: i for i, expectation in enumerate(suite.expectations)}
    for key, suite_result in checkpoint_result.run_results.items():
        # GX lists the expectations that raised first; report in suite order instead
        ordered = sorted(
            suite_result.results, key=lambda r: position.get(r.expectation_config.id, len(position))
        )
        for evr in ordered:
            evaluated += 1
            if evr.success:
                continue
            message = describe(evr, include_unexpected_values)
            if (evr.expectation_config.meta or {}).get("blocking") is True:
                blocking.append(message)
            else:
                warnings.append(message)
        if not include_unexpected_values and redact_exceptions(suite_result):
            context.validation_results_store.set(key, suite_result)  # overwrite; the docs are built below
    if evaluated != len(suite_dict["expectations"]):
        blocking.append(f"gate: {evaluated} of {len(suite_dict['expectations'])} expectations evaluated")

    # This run's pages (rendered after any redaction, so no withheld text is ever written), the
    # suite's page and the index; not the pages of earlier runs, which would make every run slower
    # than the one before.
    context.build_data_docs(
        site_names=[DATA_DOCS_SITE],
        resource_identifiers=[*checkpoint_result.run_results, ExpectationSuiteIdentifier(name=suite.name)],
    )
    return GateResult(
        success=not blocking,
        blocking_failures=blocking,
        warnings=warnings,
        evaluated=evaluated,
        docs_index=_docs_index(context),
    )

