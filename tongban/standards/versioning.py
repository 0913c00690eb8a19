"""Semantic versions of the standard: what changed since a git ref, and whether each entity,
code list and mapping raised its ``version`` enough.

``classify(old, new)`` lists the changes, each with the bump it needs:

* **major** — a change that can break a consumer or reject rows that passed before (a field
  removed, retyped or made required, a code removed, a validator or rule added, ...);
* **minor** — a backwards-compatible addition or relaxation (an optional field, a code added,
  a validator removed, any change of a mapping);
* **patch** — labels and descriptions.

``version_findings`` turns a missing bump into a finding on the ``version:`` line (an error for a
breaking change, a warning otherwise), and ``check_against(ref, ...)`` does both against the
standards at a git ref (``tongban standards check --against origin/main``).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

from tongban.standards.gitref import standards_at
from tongban.standards.load import Finding, Standards, load_standards
from tongban.standards.rules.base import LEVELS
from tongban.standards.versioning_changes import (
    Change,
    _code_list_changes,
    _code_list_file,
    _code_list_users,
    _crosswalk_changes,
    _entity_changes,
    _entity_file,
    _failed,
    _line,
    _mapping_changes,
)

__all__ = ["LEVELS", "Change", "VersionDecrease", "bump_of", "bumped", "check_against", "classify",
           "format_changes", "max_level", "version_findings"]
_RANK = {level: i + 1 for i, level in enumerate(LEVELS)}


class VersionDecrease(ValueError):
    """The new version is lower than the old one."""


# ---- versions ----------------------------------------------------------------------------------

def _parse(version: str) -> tuple[int, int, int]:
    parts = version.strip().split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a semantic version (MAJOR.MINOR.PATCH): {version!r}")
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch


def bump_of(old_version: str, new_version: str) -> str | None:
    """How far ``new_version`` went up from ``old_version``: 'major', 'minor', 'patch', or None
    when they are equal. Raises ``VersionDecrease`` when it went down."""
    old, new = _parse(old_version), _parse(new_version)
    if new == old:
        return None
    if new < old:
        raise VersionDecrease(f"version went down from {old_version} to {new_version}")
    if new[0] > old[0]:
        return "major"
    if new[1] > old[1]:
        return "minor"
    return "patch"


def bumped(version: str, level: str) -> str:
    """``version`` raised by ``level`` (1.4.2 + minor -> 1.5.0)."""
    major, minor, patch = _parse(version)
    if level == "major":
        return f"{major + 1}.0.0"
    if level == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def max_level(levels: Any) -> str | None:
    levels = [lv for lv in levels if lv]
    return max(levels, key=_RANK.__getitem__) if levels else None



# ---- classify ----------------------------------------------------------------------------------

def _added(kind: str, old: Standards, rel: str) -> str:
    return f"{kind} added" if not _failed(old, rel) else f"{kind} did not load at the compared ref (not compared)"


def classify(old: Standards, new: Standards) -> list[Change]:
    """Every change from ``old`` to ``new``, with the version bump it needs."""
    changes: list[Change] = []
    for name in sorted(set(old.entities) | set(new.entities)):
        if name not in new.entities:
            changes.append(Change(f"entity {name}", "major", "entity removed", _entity_file(old, name), 1))
        elif name not in old.entities:
            rel = _entity_file(new, name)
            changes.append(Change(f"entity {name}", "minor", _added("entity", old, rel), rel,
                                  _line(new, rel, ("entity",))))
        else:
            changes += _entity_changes(old, new, old.entities[name], new.entities[name])
    for name in sorted(set(old.code_lists) | set(new.code_lists)):
        rel = _code_list_file(name)
        if name not in new.code_lists:
            changes.append(Change(f"code list {name}", "major", "code list removed", rel, 1))
        elif name not in old.code_lists:
            changes.append(Change(f"code list {name}", "minor", _added("code list", old, rel), rel,
                                  _line(new, rel, ("code_list",))))
        else:
            o, n = old.code_lists[name], new.code_lists[name]
            changes += _code_list_changes(new, o, n)
            removed = [c for c in o.values if c not in n.values]
            added = [c for c in n.values if c not in o.values]
            changes += _code_list_users(old, new, name, removed, added)
    old_maps = {(m.source_id, m.entity): m for m in old.mappings}
    new_maps = {(m.source_id, m.entity): m for m in new.mappings}
    for key in sorted(set(old_maps) | set(new_maps)):
        subject = f"mapping {key[0]}/{key[1]}"
        if key not in new_maps:
            changes.append(Change(subject, "minor", "mapping removed", old.mapping_path(old_maps[key]), 1))
        elif key not in old_maps:
            rel = new.mapping_path(new_maps[key])
            changes.append(Change(subject, "minor", _added("mapping", old, rel), rel, _line(new, rel, ("source_id",))))
        else:
            changes += _mapping_changes(new, old_maps[key], new_maps[key])
    changes += _crosswalk_changes(old, new)
    return changes


# ---- findings ----------------------------------------------------------------------------------

def _versioned(old: Standards, new: Standards) -> dict[str, tuple[str, str, str]]:
    """subject -> (old version, new version, new file) for everything in both."""
    out = {}
    for name in sorted(set(old.entities) & set(new.entities)):
        out[f"entity {name}"] = (old.entities[name].version, new.entities[name].version, _entity_file(new, name))
    for name in sorted(set(old.code_lists) & set(new.code_lists)):
        out[f"code list {name}"] = (old.code_lists[name].version, new.code_lists[name].version,
                                    _code_list_file(name))
    old_maps = {(m.source_id, m.entity): m for m in old.mappings}
    for m in sorted(new.mappings, key=lambda m: (m.source_id, m.entity)):
        if (m.source_id, m.entity) in old_maps:
            out[f"mapping {m.source_id}/{m.entity}"] = (old_maps[(m.source_id, m.entity)].version, m.version,
                                                        new.mapping_path(m))
    return out


_WHY = {"major": "breaking change without a major version bump",
        "minor": "change without a minor version bump",
        "patch": "change without a version bump"}


def version_findings(old: Standards, new: Standards, changes: list[Change]) -> list[Finding]:
    """A finding on the ``version:`` line of every entity, code list and mapping whose version
    did not go up as far as its changes need (error for a breaking change, warning otherwise),
    or went down (error)."""
    by_subject: dict[str, list[Change]] = {}
    for c in changes:
        by_subject.setdefault(c.subject, []).append(c)
    findings = []
    for subject, (old_v, new_v, rel) in _versioned(old, new).items():
        line = _line(new, rel, ("version",))
        mine = by_subject.get(subject, [])
        required = max_level(c.level for c in mine)
        try:
            bump = bump_of(old_v, new_v)
        except VersionDecrease as exc:
            findings.append(Finding(rel, line, f"{subject}: {exc}",
                                    f"a version never goes down; set version: {bumped(old_v, required or 'patch')}"))
            continue
        if required is None or _RANK.get(bump or "", 0) >= _RANK[required]:
            continue
        needed = [c.what for c in mine if c.level == required]
        what = "; ".join(needed[:3]) + (f"; and {len(needed) - 3} more" if len(needed) > 3 else "")
        findings.append(Finding(
            rel, line, f"{_WHY[required]}: {what} ({subject} {old_v} → {new_v})",
            f"set version: {bumped(old_v, required)}",
            severity="error" if required == "major" else "warning"))
    return findings


def check_against(ref: str, standards_dir: Path, repo_root: Path) -> tuple[list[Change], list[Finding]]:
    """Compare the standards in ``standards_dir`` (the working tree) with those at git ``ref``.

    Raises ``GitRefError`` when the ref or the repository cannot be read. When the old standards
    do not load cleanly (e.g. written for an older tongban), what did load is still compared and
    one warning says so."""
    new = load_standards(standards_dir)
    try:
        subdir = str(Path(standards_dir).resolve().relative_to(Path(repo_root).resolve()))
    except ValueError:
        subdir = "standards"
    with standards_at(ref, repo_root, subdir) as old_dir:
        old = load_standards(old_dir, legacy=True)  # refs from before review columns
    changes = classify(old, new)
    findings = []
    if old.errors:
        first = old.errors[0]
        findings.append(Finding(first.file, first.line,
                                f"the standards at {ref} do not load cleanly ({len(old.errors)} error(s), first: "
                                f"{first.message}); compared what did load",
                                "files that failed to load there show up as added", severity="warning"))
    return changes, findings + version_findings(old, new, changes)


# ---- presentation -----------------------------------------------------------------------------

def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def format_changes(changes: list[Change]) -> str:
    """A plain-text table: subject, level, what, file:line (one change a row)."""
    if not changes:
        return "no changes to the standard\n"
    header = ("subject", "level", "what", "where")
    rows = [header] + [(c.subject, c.level, c.what, f"{c.file}:{c.line}") for c in changes]
    widths = [max(_width(r[i]) for r in rows) for i in range(3)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(_pad(cell, widths[j]) for j, cell in enumerate(r[:3])) + "  " + r[3])
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * max(_width(r[3]) for r in rows))
    return "\n".join(line.rstrip() for line in lines) + "\n"
