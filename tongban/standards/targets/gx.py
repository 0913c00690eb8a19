"""Derive the GX expectation suite of an entity from its standard.

The suite is written to ``expectations/<entity>.json`` (committed, checked for sync by a test)
and is what the gate runs. Each expectation carries ``meta.blocking``: a failing blocking
expectation stops publication for the run.
"""

from __future__ import annotations

import json
from typing import Any

from tongban.standards.targets.dbt import EMAIL_RE
from tongban.standards.load import Standards
from tongban.standards.models import Entity

PHONE_NORMAL_RE = r"^(0[1-9][0-9]{1,2}-[1-9][0-9]{6,7}|1[3-9][0-9][0-9*]{4}[0-9]{4})$"
#: the published form of each validated identifier (upper case, no spaces)
VALIDATOR_SHAPES = {
    "gb11643": r"^[0-9]{17}[0-9X]$",
    "gb32100": r"^[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}$",
    "gbt2260": r"^[1-9][0-9]{5}$",
    "gbt36904": r"^1\.2\.156\.3005\.2\.[0-9A-Z]+\.[0-9A-Z]+\.[0-9A-Z]+\.[0-9]{3}\.[0-9A-Z]$",
    "gbt4754": r"^[0-9]{4}$",
}
PROVENANCE_COLUMNS = ["source_id", "delivery_sha256", "source_row_number", "run_id",
                      "standard_version", "mapping_version", "crosswalk_version"]


def _exp(kind: str, blocking: bool, why: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {"blocking": blocking, "why": why}}


def suite_for(std: Standards, ent: Entity) -> dict[str, Any]:
    columns = [f.name for f in ent.fields] + PROVENANCE_COLUMNS
    exps = [
        _exp("expect_table_columns_to_match_ordered_list", True, "the published shape is the standard's",
             column_list=columns),
        _exp("expect_table_row_count_to_be_between", True, "an empty publication would hide every dataset",
             min_value=1),
        _exp("expect_column_values_to_be_unique", True, "the key identifies one record", column=ent.key),
    ]
    for f in ent.fields:
        blocking = f.gate == "blocking"
        if f.required:
            exps.append(_exp("expect_column_values_to_not_be_null", blocking, f"{f.name} is required",
                             column=f.name))
        if f.code_list and f.type == "varchar" and f.code_list in std.code_lists:
            exps.append(_exp("expect_column_values_to_be_in_set", blocking, f"{f.name} uses code list {f.code_list}",
                             column=f.name, value_set=std.code_lists[f.code_list].values))
        if f.format == "email":
            exps.append(_exp("expect_column_values_to_match_regex", blocking, "normalised e-mail",
                             column=f.name, regex=EMAIL_RE))
        if f.validator in VALIDATOR_SHAPES:
            # the models already quarantined every value the validator rejects; the gate checks
            # the published shape again (counts only: these columns hold personal data)
            exps.append(_exp("expect_column_values_to_match_regex", blocking,
                             f"{f.name} has the shape of {f.validator}", column=f.name,
                             regex=VALIDATOR_SHAPES[f.validator]))
        if f.min is not None or f.max is not None:
            exps.append(_exp("expect_column_values_to_be_between", blocking, f"{f.name} within the standard's range",
                             column=f.name, min_value=f.min, max_value=f.max))
        if f.format == "phone":
            exps.append(_exp("expect_column_values_to_match_regex", blocking, "normalised phone number",
                             column=f.name, regex=PHONE_NORMAL_RE))
    for c in PROVENANCE_COLUMNS:
        exps.append(_exp("expect_column_values_to_not_be_null", True, "every row traces back to its producer",
                         column=c))
    exps.append(_exp("expect_column_values_to_be_in_set", True, "rows carry the standard version that made them",
                     column="standard_version", value_set=[ent.version]))
    return {
        "name": ent.entity,
        "expectations": exps,
        "meta": {"generated_by": f"tongban from standards/entities/{ent.entity}.yaml; do not edit "
                                 "(run `tongban generate`)",
                 "standard_version": ent.version},
    }


def suite_files(std: Standards) -> dict[str, str]:
    return {f"expectations/{name}.json": json.dumps(suite_for(std, ent), ensure_ascii=False, indent=2) + "\n"
            for name, ent in sorted(std.entities.items()) if std.mappings_for(name)}
