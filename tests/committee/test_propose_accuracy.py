"""How often `tongban standards propose` chooses the column a committee member would, on city
catalogues it has not seen (read from ../shared/reference, never copied). The cities are mapped in
the repository since they were onboarded (issue 18); the measurement leaves their mappings and
crosswalks out, so it scores the proposer as it was before their review.

The answer keys (answer_keys/*.yaml) are hand-written: field -> column, or null where the
catalogue has none. ``role: development`` keys were used to improve the scorer; ``held-out``
keys were written before the scorer first ran on their catalogue and never used to tune it.
The table is the one in docs/committee.md ("Proposing a mapping").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tongban.committee.propose import choose
from tongban.committee.propose.profile import profile_delivery
from tongban.common.config import PROJECT_ROOT, settings
from tongban.standards.load import load_standards

KEYS = sorted((Path(__file__).parent / "answer_keys").glob("*.yaml"))


def _standards_without(catalogues: set[str], scratch: Path):
    """The repository's standards minus the mappings (and their crosswalks) of these catalogues."""
    shutil.copytree(PROJECT_ROOT / "standards", scratch)
    for m in load_standards(PROJECT_ROOT / "standards").mappings:
        if m.delivery.file in catalogues:
            shutil.rmtree(scratch / "mappings" / m.source_id, ignore_errors=True)
    return load_standards(scratch)


def test_field_choice_accuracy(tmp_path):
    reference = settings().reference_dir
    if not (reference / "opendata_catalogs").is_dir():
        pytest.fail(f"no reference catalogues at {reference}: set TONGBAN_REFERENCE_DIR to ../shared/reference "
                    "(the accuracy is measured on them; it is never skipped)")
    keyed = {"opendata_catalogs/" + Path(yaml.safe_load(p.read_text(encoding="utf-8"))["catalogue"]).name
             for p in KEYS}
    std = _standards_without(keyed, tmp_path / "standards")
    mapped = {m.delivery.file for m in std.mappings}
    totals: dict[str, list[int]] = {"development": [0, 0], "held-out": [0, 0]}
    lines = ["| catalogue | role | fields | correct | accuracy | wrong |", "|---|---|---|---|---|---|"]
    for path in KEYS:
        key = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert key["catalogue"] not in mapped, f"{path.name}: the catalogue is mapped in the repository"
        choices, _ = choose(std, key["entity"], profile_delivery([reference / key["catalogue"]]))
        assert set(key["fields"]) == set(choices), f"{path.name}: the key must cover every mappable field"
        wrong = [f for f, col in key["fields"].items() if choices[f].column != col]
        n, ok = len(key["fields"]), len(key["fields"]) - len(wrong)
        role = key["role"]
        totals[role][0] += ok
        totals[role][1] += n
        lines.append(f"| {path.stem} | {role} | {n} | {ok} | {ok / n:.0%} | {', '.join(wrong) or '—'} |")
    for role, (ok, n) in totals.items():
        lines.append(f"| **all {role}** | | {n} | {ok} | {ok / n:.1%} | |")
    ok, n = (sum(t[i] for t in totals.values()) for i in (0, 1))
    lines.append(f"| **overall** | | {n} | {ok} | {ok / n:.1%} | |")
    print("\n" + "\n".join(lines))
    assert totals["held-out"][1] >= 5 * 13 and totals["development"][1] >= 2 * 13
    assert ok / n >= 0.9
    assert totals["held-out"][0] / totals["held-out"][1] >= 0.9
