"""Never trust a file on disk, and never leave half a publication.

* :func:`verify` checks every part of the current snapshots (and of the runs' records) against the
  sha256 its manifest holds. Every run calls it before publishing (a mismatch is reported loudly
  and the part is written again from the warehouse, see ``exchange.publish_snapshot``);
  ``tongban exchange verify`` calls it on demand.
* :func:`signature_problems` checks the signature of every kept snapshot's manifest against the
  exchange's public keys (``tongban exchange verify --signatures``).
* :func:`recover` runs at the start of every run (under the run lock): the catalog swap is the
  exchange's one commit point (``exchange.rebuild_catalog``), so a snapshot version, run record or
  dictionary that a killed run wrote but the catalog does not name was never published. It is
  removed, with every temporary file a crash left, before anything else reads the exchange.
* :func:`link_dictionary` points ``exchange/dictionary`` at the committed dictionary with one
  atomic rename of a symbolic link, so the dictionary is never missing, only old or new.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path

from collections.abc import Collection

import duckdb

from tongban.common.sqlquote import quote_literal
from tongban.exchange.signing import KEYS_FILE, problem, public_keys
from tongban.exchange.snapshots import (
    CATALOG_FILE,
    COMMIT_TABLE,
    DICTIONARIES_DIR,
    DICTIONARY_LINK,
    MANIFEST_FILE,
    RUNS_DIR,
    check_entity,
    current_snapshots,
    list_snapshots,
    part_problem,
    version_dirs,
)

#: temporary names of every writer here: ``.v3.tmp-<hex>``, ``catalog.duckdb.tmp-<hex>(.wal)``,
#: ``.<run>.parquet.tmp-<hex>``, the dictionary's ``.<name>.new-…``/``.<name>.old-…``
_TMP = re.compile(r"\.tmp-[0-9a-f]+(\.wal)?$|^\.[^/]+\.(new|old)-")


def verify(exchange_root: Path, *, skip: Collection[str] = ()) -> list[str]:
    """Every problem with the current snapshots' files, one line each (empty: all match).
    ``skip``: entities the caller checks part by part itself (a run's publish_snapshot hashes the
    parts it is about to reuse: hashing them here too would read them twice)."""
    problems: list[str] = []
    for entity, snap in current_snapshots(exchange_root).items():
        if entity in skip:
            continue
        try:
            manifest = json.loads((snap.path / MANIFEST_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{entity}/v{snap.version}/{MANIFEST_FILE}: unreadable ({exc})")
            continue
        entries = manifest.get("parts") or [{"file": "part-0.parquet", "sha256": manifest.get("sha256")}]
        for entry in entries:
            problem = part_problem(snap.path, entry)
            if problem is not None:
                problems.append(problem)
        named = {e["file"] for e in entries}
        for extra in sorted(p.name for p in snap.path.glob("*.parquet") if p.name not in named):
            problems.append(f"{entity}/v{snap.version}/{extra}: not in the manifest")
    return problems


def signature_problems(exchange_root: Path, *, allow_unsigned: bool = False) -> tuple[list[str], list[str]]:
    """(problems, accepted): every kept snapshot's manifest checked against the public halves of the
    keys the exchange holds (not against ``keys.json``, which anyone who can write the exchange
    could change; that file is checked to name exactly those keys).

    A manifest without a signature is a problem, except with ``allow_unsigned`` for versions that
    come before the entity's first signed one (published before manifests were signed: those are
    ``accepted`` and listed). An unsigned version after a signed one is always a problem: signing,
    once begun, never stops, so its signature was removed."""
    root = Path(exchange_root)
    keys = public_keys()
    problems, accepted = _keys_file_problems(root, keys), []
    signed_before: set[str] = set()
    for snap in list_snapshots(root):
        where = f"{snap.entity}/v{snap.version}/{MANIFEST_FILE}"
        try:
            manifest = json.loads((snap.path / MANIFEST_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{where}: unreadable ({exc})")
            continue
        found = problem(manifest, keys)
        if found == "unsigned" and snap.entity in signed_before:
            problems.append(f"{where}: unsigned, though an earlier version of {snap.entity} is signed")
        elif found == "unsigned" and allow_unsigned:
            accepted.append(f"{where}: unsigned (published before manifests were signed)")
        elif found is not None:
            problems.append(f"{where}: {found}")
        if found != "unsigned":
            signed_before.add(snap.entity)
    return problems, accepted


def _keys_file_problems(root: Path, keys: list[dict]) -> list[str]:
    path = root / KEYS_FILE
    if not path.is_file():
        return [f"{KEYS_FILE}: missing (the next publish or `tongban exchange rotate-key` writes it)"]
    try:
        published = {k["key_id"]: k["public_key"] for k in json.loads(path.read_text(encoding="utf-8"))["keys"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{KEYS_FILE}: unreadable ({exc})"]
    held = {k["key_id"]: k["public_key"] for k in keys}
    return ([f"{KEYS_FILE}: key {kid} is not one the exchange holds" for kid in sorted(published)
             if held.get(kid) != published[kid]]
            + [f"{KEYS_FILE}: key {kid} is missing" for kid in sorted(held) if kid not in published])


def committed(exchange_root: Path) -> dict | None:
    """What the current catalog committed: {versions, run_files, dictionary}, or None for an exchange
    without a catalog, or with one written before catalogs recorded their commit."""
    catalog = Path(exchange_root) / CATALOG_FILE
    if not catalog.is_file():
        return None
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {quote_literal(str(catalog))} AS c (READ_ONLY)")
        tables = {r[0] for r in con.execute("select table_name from duckdb_tables() where database_name = 'c'").fetchall()}
        if COMMIT_TABLE not in tables:
            return None
        run_files, dictionary = con.execute(f"select run_files, dictionary from c.{COMMIT_TABLE}").fetchone()
        versions = dict(con.execute("select entity, version from c.exchange_snapshots where is_current").fetchall())
    finally:
        con.close()
    return {"versions": versions, "run_files": set(run_files or []), "dictionary": dictionary}


def recover(exchange_root: Path) -> list[str]:
    """Remove what a killed run left behind; return what was removed (relative paths)."""
    root = Path(exchange_root)
    if not root.is_dir():
        return []
    removed: list[str] = []

    def remove(path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        removed.append(str(path.relative_to(root)))

    for path in sorted(root.rglob("*")):  # temporary files and directories of any step
        if _TMP.search(path.name) and (path.exists() or path.is_symlink()):
            remove(path)
    commit = committed(root)
    if commit is not None:
        for entity_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            try:
                check_entity(entity_dir.name)
            except ValueError:
                continue
            current = commit["versions"].get(entity_dir.name, 0)
            for version, path in sorted(version_dirs(entity_dir)):
                if version > current:  # written by a run whose catalog never came
                    remove(path)
        runs = root / RUNS_DIR
        for path in sorted(runs.glob("*.parquet")) if runs.is_dir() else []:
            if path.name not in commit["run_files"]:
                remove(path)
        dictionaries = root / DICTIONARIES_DIR
        keep = commit["dictionary"]
        for path in sorted(dictionaries.iterdir()) if dictionaries.is_dir() else []:
            if path.name != keep:
                remove(path)
        if keep:
            link_dictionary(root, keep)
    return removed


def link_dictionary(exchange_root: Path, name: str) -> Path:
    """Point ``exchange/dictionary`` at ``_dictionary/<name>`` (a relative link, so the exchange can
    be moved), replacing the link in one rename. A real directory there (an exchange from before
    the dictionary was versioned) is removed first."""
    root = Path(exchange_root)
    link = root / DICTIONARY_LINK
    target = Path(DICTIONARIES_DIR) / name
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return link
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    tmp = root / f".{DICTIONARY_LINK}.tmp-{os.urandom(6).hex()}"
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return link
