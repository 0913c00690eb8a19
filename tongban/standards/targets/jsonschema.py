"""JSON Schemas of the standards files, for the committee's editors.

Every YAML file under ``standards/`` starts with a modeline such as
``# yaml-language-server: $schema=../schema/entity.schema.json``, so an editor with the YAML
language server (VS Code's YAML extension, ...) completes keys, shows the allowed values and
underlines an unknown key or transform step while the file is typed. The schemas are generated
from the pydantic models (``tongban generate`` writes them to ``standards/schema/``; a test
fails when they are stale). They describe the shape only: cross-file rules (a field's code list
exists, a mapped column is declared, ...) stay with ``tongban standards check``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tongban.standards import models
from tongban.standards.models import CodeList, Entity, Mapping
from tongban.standards.rules import FIELD_RULES, STEPS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = "standards/schema"

#: the modeline's schema for each folder, relative to the files in it
MODELINES = {
    "standards/entities": "../schema/entity.schema.json",
    "standards/code_lists": "../schema/code_list.schema.json",
    "standards/mappings/*": "../../schema/mapping.schema.json",
}


def modeline(schema_relative: str) -> str:
    return f"# yaml-language-server: $schema={schema_relative}"


# ---- descriptions an editor shows on hover (the models carry them as comments) ------------

_DOCS: dict[str, dict[str, str]] = {
    "Entity": {
        "entity": "The entity's name (lower_snake_case): the harmonized table's name.",
        "version": "Semantic version MAJOR.MINOR.PATCH. Raise MAJOR for a breaking change (a field removed, "
                   "retyped or made required, a code removed, a validator or rule added), MINOR for an "
                   "addition, PATCH for labels. `tongban standards check --against <ref>` checks it.",
        "key": "The field that identifies one record (usually a derived identity_hash).",
        "fields": "The harmonized columns, in order.",
        "rules": "Cross-field rules; a row that breaks one is quarantined with the rule's reason (severity: quarantine) "
                 "or published with a warning that its producer is told of (severity: warn).",
    },
    "FieldDef": {  # the attributes that switch rules on are described by their rule kinds
        "name": "Column name in the harmonized table (lower_snake_case).",
        "type": "Column type in the harmonized table.",
        "derived": "Computed by tongban, never mapped: identity_hash (the stable key from the mapping's "
                   "identity columns) or mapping_constant (e.g. the mapping's province_code).",
        "label": "Name shown to people, in Chinese and English.",
        "description": "What the field means, in Chinese and English.",
    },
    "CodeList": {
        "code_list": "The code list's name; must equal the file name.",
        "version": "Semantic version MAJOR.MINOR.PATCH: removing a code is MAJOR, adding one MINOR, "
                   "relabelling PATCH.",
        "codes": "The allowed codes with their Chinese and English labels.",
    },
    "Mapping": {
        "source_id": "The source's id; must equal the folder name.",
        "entity": "The entity this mapping delivers; must equal the file name.",
        "province_code": "Two-digit GB/T 2260 province code of the delivering province.",
        "version": "Semantic version of this mapping (MAJOR.MINOR.PATCH); raise MINOR for any change of "
                   "fields, delivery, identity, null_values or its crosswalks.",
        "standard_version": "The entity version this mapping was written for; update it after reviewing "
                            "the mapping against a new MAJOR version of the entity.",
        "delivery": "The delivered file (relative to the inbox) and its declared columns.",
        "identity": "Source columns that together identify a record (they make the stable key).",
        "null_values": "Source values that mean 'no value'.",
        "fields": "Per standard field: the source column (from) and the transform steps, in order.",
    },
    "FieldMapping": {
        "from": "The delivery column to read.",
        "steps": "Transform steps from a closed vocabulary, applied in order; crosswalk, match_code, "
                 "parse_date, parse_amount, email and phone must come last, constant first.",
        "null_values": "Overrides the mapping's null_values for this field.",
    },
    "DeliverySpec": {
        "file": "Path of the delivery relative to the inbox, without '..'. May be a glob (ah/births*.xlsx) for a delivery in several files: read in natural order as one delivery, all with the same header.",
        "format": "File format; detected from the extension when omitted.",
        "sheet": "XLSX sheet name or index.",
        "columns": "Every column the delivery has; required columns must be present in the file.",
        "empty_is_valid": "true if a delivery with a header and no rows means the source has no records now "
                          "(it replaces the publication with none); by default such a delivery is held back "
                          "and the source's previous publication kept.",
    },
}

def step_schema() -> dict[str, Any]:
    """A step as written in YAML: a bare name or a one-key map ``{name: argument}``."""
    simple = [k for k in STEPS if not k.takes_arg]
    alternatives: list[dict[str, Any]] = [{
        "type": "string",
        "enum": [k.name for k in simple],
        "description": "A step without argument: " + "; ".join(f"{k.name}: {k.doc}" for k in simple),
    }]
    for k in STEPS:
        if not k.takes_arg:
            continue
        alternatives.append({
            "type": "object",
            "properties": {k.name: {**k.arg_schema(), "description": k.doc}},
            "required": [k.name],
            "additionalProperties": False,
            "description": f"{{{k.name}: ...}} — {k.doc}",
        })
    return {
        "title": "Step",
        "description": "One transform step: a bare name (trim) or a one-key map ({crosswalk: domain}).",
        "oneOf": alternatives,
    }


def _docs(name: str) -> dict[str, str]:
    if name != "FieldDef":
        return _DOCS.get(name, {})
    return {**_DOCS[name], **{attr: text for rule in FIELD_RULES for attr, text in rule.docs.items()}}


def _document(schema: dict[str, Any], name: str) -> None:
    docs = _docs(name)
    for prop, text in docs.items():
        if prop in schema.get("properties", {}):
            schema["properties"][prop]["description"] = text


def _strip_openapi(node: Any) -> None:
    """Drop pydantic's OpenAPI ``discriminator`` (not a JSON Schema keyword; the oneOf says it all)."""
    if isinstance(node, dict):
        if isinstance(node.get("discriminator"), dict) and "oneOf" in node:
            del node["discriminator"]
        for value in node.values():
            _strip_openapi(value)
    elif isinstance(node, list):
        for value in node:
            _strip_openapi(value)


def _model_schema(model: type, title: str, description: str) -> dict[str, Any]:
    schema = copy.deepcopy(model.model_json_schema(by_alias=True))  # type: ignore[attr-defined]
    _strip_openapi(schema)
    defs = schema.get("$defs", {})
    if "Step" in defs:
        defs["Step"] = step_schema()
    for name, sub in defs.items():
        _document(sub, name)
    _document(schema, model.__name__)
    schema["$schema"] = DRAFT
    schema["title"] = title
    schema["description"] = description
    return schema


def crosswalk_row_schema() -> dict[str, Any]:
    statuses = list(getattr(models, "REVIEW_STATUSES", ("proposed", "approved", "rejected")))
    empty = {"type": "string", "maxLength": 0}
    given = {"type": "string", "minLength": 1}
    return {
        "$schema": DRAFT,
        "title": "tongban crosswalk row",
        "description": (
            "ONE ROW of a crosswalk CSV (standards/mappings/<source>/crosswalks/<code list>.csv) as an object "
            "keyed by the header 'source_value,target_code,status,author,reviewer,reviewed_on'; an empty cell "
            "is an empty string. CSV editors cannot use this schema directly: tongban's lint "
            "(tongban standards check) checks every row, including what JSON Schema cannot say (the target "
            "is a code of the code list, a value is mapped once, the reviewer is not the author). Only "
            "approved rows map the values of a blocking field."
        ),
        "type": "object",
        "properties": {
            "source_value": {"type": "string", "description": "The value as the province delivers it."},
            "target_code": {"type": "string", "minLength": 1,
                            "description": "The standard's code (a code of the code list named by the file)."},
            "status": {"enum": statuses,
                       "description": "proposed (awaiting review), approved (in use) or rejected (maps nothing)."},
            "author": {**given, "description": "Who proposed the entry."},
            "reviewer": {"type": "string",
                         "description": "Who approved or rejected it (not the author); empty while proposed."},
            "reviewed_on": {"type": "string", "pattern": r"^(\d{4}-\d{2}-\d{2})?$",
                            "description": "Date of the review, YYYY-MM-DD; empty while proposed."},
        },
        "required": ["source_value", "target_code", "status", "author", "reviewer", "reviewed_on"],
        "additionalProperties": False,
        "if": {"properties": {"status": {"const": "proposed"}}},
        "then": {"properties": {"reviewer": empty, "reviewed_on": empty}},
        "else": {"properties": {"reviewer": given, "reviewed_on": {**given, "format": "date"}}},
    }


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema (as a dict)."""
    shape_only = " It checks the shape of one file; `tongban standards check` checks the rest."
    return {
        "entity.schema.json": _model_schema(
            Entity, "tongban entity",
            "An entity of the regional data standard (standards/entities/<entity>.yaml): its fields, key and "
            "rules." + shape_only),
        "code_list.schema.json": _model_schema(
            CodeList, "tongban code list",
            "A code list of the regional data standard (standards/code_lists/<code_list>.yaml)." + shape_only),
        "mapping.schema.json": _model_schema(
            Mapping, "tongban mapping",
            "How one source's delivery maps onto an entity (standards/mappings/<source>/<entity>.yaml)."
            + shape_only),
        "crosswalk.schema.json": crosswalk_row_schema(),
    }


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def schema_files() -> dict[str, str]:
    """Relative path (from the project root) -> JSON text of every schema file."""
    return {f"{SCHEMA_DIR}/{name}": dumps(schema) for name, schema in schemas().items()}
