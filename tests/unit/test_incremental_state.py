"""The fingerprint that decides whether the harmonized tables may be rebuilt source by source."""

from __future__ import annotations

import shutil
from pathlib import Path

from tongban.steps.incremental import DEFINITIONS, definitions_fingerprint

ROOT = Path(__file__).resolve().parents[2]


def test_any_model_macro_or_project_change_asks_for_a_full_refresh(tmp_path):
    for sub in ("models", "macros", "dbt_tests"):  # dbt_tests/ (singular data tests) may be absent
        if (ROOT / sub).is_dir():
            shutil.copytree(ROOT / sub, tmp_path / sub)
    shutil.copy2(ROOT / "dbt_project.yml", tmp_path / "dbt_project.yml")
    first = definitions_fingerprint(tmp_path)
    assert set(first) == {DEFINITIONS} and definitions_fingerprint(tmp_path) == first
    for edited in ("models/intermediate/int_birth_registration__duplicates.sql", "macros/incremental_by_source.sql",
                   "dbt_project.yml", "models/harmonized/_birth_registration__models.yml"):
        path = tmp_path / edited
        original = path.read_text(encoding="utf-8")
        path.write_text(original + "\n-- edited\n" if edited.endswith(".sql") else original + "\n# edited\n",
                        encoding="utf-8")
        assert definitions_fingerprint(tmp_path) != first, edited
        path.write_text(original, encoding="utf-8")
    assert definitions_fingerprint(tmp_path) == first
