"""The benchmark's deliveries: generated once per (N, seed) with ``tongban sample`` and linked
into each run's inbox, the re-run scenarios replacing some of them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tongban.common.config import PROJECT_ROOT, settings
from tongban.common.parts import find_parts
from tongban.standards.generate import load_checked
from bench.common import DELIVERIES, ENTITIES, PROVINCES, REDELIVERING, SAMPLE_ENTITIES, XLSX_MAX_ROWS


# ------------------------------------------------------------------------------------------ data


def rows_per_delivery(n: int) -> int:
    per = n // DELIVERIES
    if per < 1:
        raise SystemExit(f"N={n}: need at least {DELIVERIES} rows (one per delivery)")
    return per


def xlsx_parts(n: int, xlsx_max_rows: int = XLSX_MAX_ROWS) -> int:
    """Files per 安徽 (XLSX) delivery at N."""
    return -(-rows_per_delivery(n) // xlsx_max_rows)


def data_key(n: int, seed: int, xlsx_max_rows: int = XLSX_MAX_ROWS) -> str:
    """The cache directory of N's deliveries: ``n<N>-s<seed>``, and ``-xlsx<rows>`` when 安徽's
    deliveries are in parts (the layout depends on the part size; with one part it does not,
    so data cached before parts existed stays valid)."""
    key = f"n{n}-s{seed}"
    return key if xlsx_parts(n, xlsx_max_rows) == 1 else f"{key}-xlsx{xlsx_max_rows}"


def _generate(out: Path, per: int, seed: int, xlsx_max_rows: int, provinces: tuple[str, ...] | None = None) -> None:
    """``tongban sample`` for both entities, in a subprocess (the generator streams rows to the
    files: its memory does not grow with N)."""
    code = ("import json, sys; from pathlib import Path; from tongban.sample import generate_deliveries\n"
            "for e in ('births', 'licenses'):\n"
            "    generate_deliveries(e, int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]),\n"
            "                        xlsx_max_rows=int(sys.argv[4]), provinces=json.loads(sys.argv[5]))\n")
    subprocess.run([sys.executable, "-c", code, str(per), str(seed), str(out), str(xlsx_max_rows),
                    json.dumps(list(provinces) if provinces else None)], check=True, cwd=PROJECT_ROOT)


def ensure_data(root: Path, n: int, seed: int, xlsx_max_rows: int = XLSX_MAX_ROWS) -> Path:
    """The deliveries for N (cached by N, seed and, when 安徽's are in parts, the part size);
    ``<dir>/inbox`` is an inbox, ``<dir>/redelivery`` holds the re-delivering province's files
    from the next seed."""
    per = rows_per_delivery(n)
    data = root / "data" / data_key(n, seed, xlsx_max_rows)
    marker = data / "complete.json"
    if marker.is_file():
        return data
    if data.exists():
        shutil.rmtree(data)
    t0 = time.perf_counter()
    parts = xlsx_parts(n, xlsx_max_rows)
    print(f"bench: generating {DELIVERIES} deliveries of {per:,} rows (N={n:,}, seed {seed}"
          + (f", 安徽 in {parts} XLSX parts of ≤ {xlsx_max_rows:,} rows" if parts > 1 else "") + f") in {data}",
          flush=True)
    _generate(data / "inbox", per, seed, xlsx_max_rows)
    t1 = time.perf_counter()
    _generate(data / "redelivery", per, seed + 1, xlsx_max_rows, provinces=(REDELIVERING,))
    files = {str(p.relative_to(data)): p.stat().st_size for p in sorted(data.rglob("*")) if p.is_file()}
    marker.write_text(json.dumps({"n": n, "rows_per_delivery": per, "seed": seed, "xlsx_max_rows": xlsx_max_rows,
                                  "xlsx_parts": parts, "files": files,
                                  "generated_seconds": round(time.perf_counter() - t0, 1),
                                  "generated_seconds_inbox": round(t1 - t0, 1)}, indent=2))
    print(f"bench: generated in {time.perf_counter() - t0:.1f} s", flush=True)
    return data


def _sample_entity(name: str) -> str | None:
    """``births`` for ``births.csv`` / ``births-2.xlsx``; None for answer keys and other files."""
    if ".answer_key" in name or name.endswith(".tmp"):
        return None
    stem = name.split(".", 1)[0]
    base, dash, k = stem.rpartition("-")
    if dash and k.isdigit():
        stem = base
    return stem if stem in SAMPLE_ENTITIES else None


def delivery_files(inbox: Path) -> dict[tuple[str, str], list[Path]]:
    """(province, entity) -> the delivery's files in ``inbox`` (several for a delivery in parts)."""
    out: dict[tuple[str, str], list[Path]] = {}
    for prov in PROVINCES:
        for f in sorted((inbox / prov).iterdir()) if (inbox / prov).is_dir() else []:
            sample = _sample_entity(f.name)
            if sample:
                out.setdefault((prov, SAMPLE_ENTITIES[sample]), []).append(f)
    return out


def check_mappings(inbox: Path) -> None:
    """Every delivery file of ``inbox`` is read by exactly one mapping of the two entities, as
    ``tongban.common.parts.find_parts`` finds them: a delivery in parts needs a glob in its
    mapping's ``delivery.file`` (``ah/births*.xlsx``). Refuses before anything is measured."""

    std = load_checked(settings().standards_dir)
    claimed: dict[Path, str] = {}
    problems = []
    for entity in ENTITIES:
        for m in std.mappings_for(entity):
            found = find_parts([inbox], m.delivery.file)
            if not found:
                problems.append(f"{m.source_id}/{entity}: delivery.file {m.delivery.file!r} matches nothing")
            for f in found:
                if f in claimed:
                    problems.append(f"{f.name} is read by {claimed[f]} and by {m.source_id}/{entity}")
                claimed[f] = f"{m.source_id}/{entity}"
    for (prov, entity), files in delivery_files(inbox).items():
        unread = [f.name for f in files if f not in claimed]
        if unread:
            problems.append(f"{prov}/{entity}: {', '.join(unread)} not read by any mapping")
    if problems:
        raise SystemExit("bench: the mappings do not read the generated deliveries:\n  " + "\n  ".join(problems)
                         + "\na delivery in several XLSX parts needs its mapping's delivery.file to be a glob "
                           "(e.g. ah/births*.xlsx) and an intake that reads parts (tongban/common/parts.py)")


def _link_inbox(data: Path, inbox: Path, *, changed: tuple[tuple[str, str], ...] = ()) -> None:
    """An inbox of symlinks to the cached deliveries; the deliveries in ``changed`` ((province,
    sample entity) pairs) from the next seed's (``<data>/redelivery``)."""
    if inbox.exists():
        shutil.rmtree(inbox)
    for prov in PROVINCES:
        (inbox / prov).mkdir(parents=True)
        for f in (data / "inbox" / prov).iterdir():
            sample = _sample_entity(f.name)
            if sample and (prov, sample) not in changed:
                (inbox / prov / f.name).symlink_to(f.resolve())
        for prov_changed, sample in changed:
            if prov_changed != prov:
                continue
            files = [f for f in (data / "redelivery" / prov).iterdir() if _sample_entity(f.name) == sample]
            if not files:
                raise FileNotFoundError(f"{data / 'redelivery' / prov}: no {sample} delivery")
            for f in files:
                (inbox / prov / f.name).symlink_to(f.resolve())
