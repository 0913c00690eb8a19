"""The offline check in docs/consumers.md, run as written: it checks a real verification answer and
a real snapshot manifest with nothing but the ``cryptography`` package, and refuses changed ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature

from tests.serve.conftest import make_uscc
from tongban.exchange import rebuild_catalog, signing

DOC = Path(__file__).resolve().parents[2] / "docs" / "consumers.md"
SECTION = "## Signed answers and snapshots, checked offline"


def doc_check():
    """The ``check`` function of the doc's first Python block in its offline section."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "tongban" not in code  # only the cryptography package and the standard library
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - the project's own documentation
    return namespace["check"]


def test_the_documented_snippet_checks_an_answer_and_a_manifest_offline(served) -> None:
    check = doc_check()
    token = served.add("sh-market", "31")
    answer = served.get(f"/api/v1/verify/business_license/{make_uscc('330102', 33001)}", token).json()
    rebuild_catalog(served.root)
    keys = json.loads((served.root / signing.KEYS_FILE).read_text(encoding="utf-8"))["keys"]
    assert keys == served.client.get("/api/v1/keys").json()["keys"]
    manifest = json.loads((served.root / "business_license" / "v1" / "_manifest.json").read_text(encoding="utf-8"))
    assert check(answer, keys) and check(manifest, keys)
    with pytest.raises(InvalidSignature):
        check({**answer, "status": "active"}, keys)
    with pytest.raises(InvalidSignature):
        check({**manifest, "rows": manifest["rows"] + 1}, keys)
    with pytest.raises(StopIteration):  # a key the exchange never published
        check({**manifest, "signature": {**manifest["signature"], "key_id": "0" * 16}}, keys)
    # after a rotation both still check under the keys published then
    signing.rotate()
    later = served.get(f"/api/v1/verify/business_license/{make_uscc('330102', 33001)}", token).json()
    keys = served.client.get("/api/v1/keys").json()["keys"]
    assert later["signature"]["key_id"] != answer["signature"]["key_id"]
    assert check(answer, keys) and check(manifest, keys) and check(later, keys)
