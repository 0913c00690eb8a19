"""The lint's generated-file comparison reads bytes (issue 18): a mapping whose argument holds a
carriage return (``split: ["\\r\\n\\t"]``) generates SQL with that byte in a literal, and reading
the file as text (newline translation) would never find it up to date."""

from __future__ import annotations

import shutil
from pathlib import Path

from tongban.common.config import PROJECT_ROOT
from tongban.standards.generate import out_of_date, scratch_project
from tongban.standards.lint import check

ZJ = "mappings/zj/data_resource.yaml"


def test_a_split_on_crlf_is_in_sync_once_generated(tmp_path: Path):
    scratch = tmp_path / "standards"
    shutil.copytree(PROJECT_ROOT / "standards", scratch)
    path = scratch / ZJ
    text = path.read_text(encoding="utf-8")
    old = 'keywords: {from: 标签, steps: [{split: ["、", ","]}]}'
    assert old in text
    path.write_text(text.replace(old, 'keywords: {from: 标签, steps: [{split: ["\\r\\n\\t", "、"]}]}'), encoding="utf-8")
    std = check(scratch)
    assert std.errors == []
    assert std.mapping("zj", "data_resource").fields["keywords"].steps[0].arg == ["\r\n\t", "、"]
    project = scratch_project(std, PROJECT_ROOT, tmp_path / "project")
    staged = (project / "models/staging/zj/stg_zj__data_resource.sql").read_bytes()
    assert b"'\r\n\t'" in staged  # the separator, byte for byte
    assert out_of_date(std, project) == []
    # and a real change is still seen
    sql = project / "models/staging/zj/stg_zj__data_resource.sql"
    sql.write_bytes(staged.replace(b"'\r\n\t'", b"'\n\t'"))
    assert out_of_date(std, project) == ["models/staging/zj/stg_zj__data_resource.sql"]
