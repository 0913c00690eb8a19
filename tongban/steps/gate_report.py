"""What a gate reports of each expectation GX evaluated, without a row value in it.

``describe`` turns one expectation's result into a line (``expect_x(col): 3 unexpected``);
``redact_exceptions`` replaces the stored error texts of a suite result by their exception type
(a DuckDB error can quote the value it could not convert). See :mod:`tongban.steps.gate`.
"""

from __future__ import annotations

import re

_WITHHELD = "details withheld: an error text may quote row values (include_unexpected_values=False)"
# Errors GX raises itself before any SQL runs; their texts name columns and types, never values.
_SAFE_ERROR_TYPES = frozenset({"InvalidMetricAccessorDomainKwargsKeyError", "InvalidColumnTypeError"})
# Table-shape expectations: their observed_value is a list of column names, not row data.
_COLUMN_NAME_RESULTS = frozenset(
    {"expect_table_columns_to_match_ordered_list", "expect_table_columns_to_match_set"}
)


def _raised(exception_info: dict | None) -> list[dict]:
    """The raised-exception records of an ExpectationValidationResult.

    GX 1.x stores either one record (``{"raised_exception": ..., "exception_message": ...}``) or,
    when a metric failed, one record per metric id.
    """
    if not exception_info:
        return []
    if "raised_exception" in exception_info:
        return [exception_info] if exception_info.get("raised_exception") else []
    return [v for v in exception_info.values() if isinstance(v, dict) and v.get("raised_exception")]


_EXC_TYPE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)):")


def _exception_type(record: dict) -> str:
    """The root-cause exception class named in a record's traceback, without its message."""
    lines = [ln for ln in str(record.get("exception_traceback") or "").splitlines() if ln.strip()]
    for line in lines:
        match = _EXC_TYPE.match(line.strip())
        if match:
            return match.group(1).rsplit(".", 1)[-1]
    return "error"


def redact_exceptions(suite_result) -> bool:
    """Replace every stored error text of a suite result by its exception type; True if any."""
    changed = False
    for evr in suite_result.results:
        for record in _raised(evr.exception_info):
            kind = _exception_type(record)
            if kind in _SAFE_ERROR_TYPES:
                continue
            record["exception_message"] = f"{kind} ({_WITHHELD})"
            record["exception_traceback"] = f"{kind} ({_WITHHELD})"
            changed = True
    return changed


def describe(evr, include_values: bool) -> str:
    """'expect_x(col): 3 unexpected'; never a row value unless include_values."""
    config = evr.expectation_config
    kwargs = config.kwargs or {}
    if config.type.startswith("expect_table_"):
        domain = ""
    elif "column" in kwargs:
        domain = str(kwargs["column"])
    elif "column_A" in kwargs and "column_B" in kwargs:
        domain = f"{kwargs['column_A']}, {kwargs['column_B']}"
    elif "column_list" in kwargs:
        domain = ", ".join(str(c) for c in kwargs["column_list"])
    else:
        domain = ""
    head = f"{config.type}({domain})" if domain else config.type

    raised = _raised(evr.exception_info)
    if raised:
        kind = _exception_type(raised[0])
        if include_values or kind in _SAFE_ERROR_TYPES:
            first = str(raised[0].get("exception_message") or "").strip().splitlines()
            return f"{head}: not evaluated ({first[0][:300] if first else kind})"
        return f"{head}: not evaluated ({kind}; details withheld)"
    result = evr.result or {}
    if result.get("unexpected_count") is not None:
        return f"{head}: {result['unexpected_count']} unexpected"
    observed = result.get("observed_value")
    if config.type in _COLUMN_NAME_RESULTS and isinstance(observed, list):
        expected = [str(c) for c in (kwargs.get("column_list") or kwargs.get("column_set") or [])]
        found = [str(c) for c in observed]
        missing = [c for c in expected if c not in found]
        extra = [c for c in found if c not in expected]
        parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else [])
        return f"{head}: {', '.join(parts) if parts else 'columns out of order'}"
    numeric = isinstance(observed, (int, float)) and not isinstance(observed, bool)
    if observed is not None and (include_values or numeric):
        return f"{head}: observed {observed}"
    return f"{head}: failed"
