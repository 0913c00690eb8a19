"""tongban.common.hashing: the one sha256 that deliveries and published parts are identified by."""

from __future__ import annotations

import hashlib

from tongban.common.hashing import combined_sha256, files_sha256, sha256_file


def test_file_digest_is_hashlibs(tmp_path):
    p = tmp_path / "a.csv"
    data = b"x" * (3 * (1 << 20) + 17)  # several chunks and a tail
    p.write_bytes(data)
    assert sha256_file(p) == hashlib.sha256(data).hexdigest()


def test_one_part_is_the_files_own_digest(tmp_path):
    p = tmp_path / "births.xlsx"
    p.write_bytes(b"one")
    assert files_sha256([p]) == sha256_file(p) == combined_sha256([("births.xlsx", sha256_file(p))])


def test_parts_digest_names_order_and_content(tmp_path):
    a, b = tmp_path / "b-1.csv", tmp_path / "b-2.csv"
    a.write_bytes(b"1")
    b.write_bytes(b"2")
    whole = files_sha256([a, b])
    assert whole == hashlib.sha256(f"b-1.csv\t{sha256_file(a)}\nb-2.csv\t{sha256_file(b)}\n".encode()).hexdigest()
    assert whole not in {sha256_file(a), sha256_file(b)}
    assert files_sha256([b, a]) != whole  # order counts
    c = tmp_path / "b-3.csv"
    a.rename(c)
    assert files_sha256([c, b]) != whole  # a renamed part changes it
