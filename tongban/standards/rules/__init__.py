"""One rule catalogue (docs/architecture.md): every rule kind of the standard is one registered
class here, and the targets (dbt models, GX suites, JSON Schema, dictionary, versioning) walk
these catalogues instead of naming kinds. Adding a kind is one class in one of these modules
(plus its tests):

* ``VALIDATORS`` (validators.py) — the national identifier validators a field names;
* ``FIELD_RULES`` and ``FORMATS`` (fields.py, field_props.py) — the rules a field's attributes switch on;
* ``ROW_RULES`` (row.py, cross_field.py) — the cross-field rules of an entity, each its own YAML model;
* ``STEPS`` (steps.py, param_steps.py) — the closed vocabulary of mapping steps.
"""

from __future__ import annotations

from tongban.standards.rules import cross_field as _cross_field  # noqa: F401  (registers its row rules)
from tongban.standards.rules import field_props as _field_props  # noqa: F401  (registers its field rules)
from tongban.standards.rules import param_steps as _param_steps  # noqa: F401  (registers its steps)
from tongban.standards.rules.base import DIALECT, Catalogue, Check, RowSql, sql
from tongban.standards.rules.fields import FIELD_RULES, FORMATS, FieldRule, Format, expectation, owner
from tongban.standards.rules.param_steps import AMOUNT_UNITS
from tongban.standards.rules.row import ROW_RULES, MinAgeAt, RowRule, UsccRegionAgrees
from tongban.standards.rules.steps import STEPS, FieldSql, StepKind
from tongban.standards.rules.validators import VALIDATORS, Validator

__all__ = ["AMOUNT_UNITS", "DIALECT", "FIELD_RULES", "FORMATS", "ROW_RULES", "STEPS", "VALIDATORS", "Catalogue",
           "Check", "FieldRule", "FieldSql", "Format", "MinAgeAt", "RowRule", "RowSql", "StepKind",
           "UsccRegionAgrees", "Validator", "expectation", "owner", "sql"]
