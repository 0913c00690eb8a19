"""Derive the GX expectation suite of an entity from its standard.

The suite is written to ``expectations/<entity>.json`` (committed, checked for sync by a test)
and is what the gate runs. Each expectation carries ``meta.blocking``: a failing blocking
expectation stops publication for the run.
"""

from __future__ import annotations

import json
from typing import Any

from tongban.standards.load import Standards
from tongban.standards.models import Entity
from tongban.standards.rules import FIELD_RULES, expectation

PROVENANCE_COLUMNS = ["source_id", "delivery_sha256", "source_row_number", "run_id",
                      "standard_version", "mapping_version", "crosswalk_version"]
_exp = expectation


def _field_expectations(std: Standards, ent: Entity) -> list[dict[str, Any]]:
    """Each field's expectations from the rule catalogue, in their place in the suite (a rule
    says where its expectations stand, so the committed suites keep their order)."""
    out = []
    for f in ent.fields:
        placed = [e for rule in FIELD_RULES for e in rule.gx(std, ent, f)]
        out += [exp for _, exp in sorted(placed, key=lambda e: e[0])]
    return out


def suite_for(std: Standards, ent: Entity) -> dict[str, Any]:
    columns = [f.name for f in ent.fields] + PROVENANCE_COLUMNS
    exps = [
        _exp("expect_table_columns_to_match_ordered_list", True, "the published shape is the standard's",
             column_list=columns),
        _exp("expect_table_row_count_to_be_between", True, "an empty publication would hide every dataset",
             min_value=1),
        _exp("expect_column_values_to_be_unique", True, "the key identifies one record", column=ent.key),
    ]
    exps += _field_expectations(std, ent)
    exps += [e for r in ent.rules for e in r.gx(std, ent)]
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
