"""The served exchange under reads (issue 16): a business-licence snapshot of 100,000 generated rows,
published with ``tongban.exchange.publish_snapshot``, served by a real ``tongban serve`` (uvicorn)
on a free localhost port, and read by one registered consumer over HTTP with keep-alive:

``key``   a keyed lookup, ``GET /api/v1/entities/business_license/rows/{license_id}`` of a random key;
``page``  a page of 1,000 rows, ``GET .../rows?limit=1000&cursor=…`` at a random page (cursors from a walk).

Each is measured sequentially (one client) and with ``clients`` concurrent clients (threads in this
process, so the clients share the 2 cores with the server). The baseline is the same read done
directly by DuckDB on the snapshot's Parquet in this process, the same columns and SQL shape, once
with one connection kept open and once with a fresh connection per read (as the server opens one);
the served figures are divided by the first. Issue 16's target: keyed lookup p99 < 50 ms.

Every request is a full served request: bearer token checked against the state database, the
snapshot resolved from its manifests, the caller's grants read, the Parquet queried, the answer
serialised, and an audit entry appended to the hash chain.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import httpx

from tongban import exchange
from tongban.common.sqlquote import quote_ident, quote_literal
from bench.common import BENCH_KEY
from bench.runs import _child_env

ROWS, SMOKE_ROWS = 100_000, 5_000
PAGE = 1_000
CLIENTS = 8
ENTITY, KEY = "business_license", "license_id"
#: requests per measurement: (sequential keyed lookups, sequential pages, per concurrent client: keyed, pages)
COUNTS, SMOKE_COUNTS = (400, 100, 50, 12), (20, 5, 4, 2)
WARMUP = 20
KINDS = ("key", "page")


def percentiles(values: list[float]) -> dict[str, float]:
    """count, p50/p90/p99 and max in milliseconds of ``values`` in seconds."""
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"count": len(values), "p50_ms": round(cuts[49] * 1000, 2), "p90_ms": round(cuts[89] * 1000, 2),
            "p99_ms": round(cuts[98] * 1000, 2), "max_ms": round(max(values) * 1000, 2)}


def _warehouse(path: Path, rows: int) -> None:
    """``harmonized.business_license`` of ``rows`` generated licences over four provinces."""
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA harmonized")
    con.execute("CREATE TABLE harmonized.business_license AS SELECT "
                "'lic_' || lpad(CAST(i AS VARCHAR), 7, '0') AS license_id, "
                "'91' || lpad(CAST(i AS VARCHAR), 16, '0') AS uscc, '企业' || CAST(i AS VARCHAR) AS enterprise_name, "
                "'法人' || CAST(i AS VARCHAR) AS legal_representative, "
                "CASE WHEN i % 17 = 0 THEN 'revoked' ELSE 'active' END AS status_code, "
                "CAST(31 + i % 4 AS VARCHAR) AS province_code, 'src_' || CAST(31 + i % 4 AS VARCHAR) AS source_id "
                "FROM range(?) t(i)", [rows])
    con.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[str]:
    """A ``tongban serve`` on a free localhost port until the block ends; its base URL."""
    port = _free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tongban.cli", "serve", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                if proc.poll() is not None:
                    raise RuntimeError(f"tongban serve exited: {log.read_text(encoding='utf-8')[-3000:]}")
                try:
                    if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _timed(calls: list[Callable[[], None]]) -> list[float]:
    out = []
    for call in calls:
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


PATH = f"/api/v1/entities/{ENTITY}/rows"


def _walk(http: httpx.Client) -> list[tuple[str, str]]:
    """Every page's (cursor, the key the page starts after), walked through the API: cursors are
    opaque, so the pages read at random later are pages the API itself handed out."""
    pages, params = [], {"limit": PAGE}
    while True:
        r = http.get(PATH, params=params)
        r.raise_for_status()
        body = r.json()
        if body["next_cursor"] is None:
            return pages
        pages.append((body["next_cursor"], body["rows"][-1][KEY]))
        params = {"limit": PAGE, "cursor": body["next_cursor"]}


def _http_calls(http: httpx.Client, keys: list[str], cursors: list[str]) -> dict[str, list[Callable]]:

    def get(url: str, **params) -> Callable[[], None]:
        def call() -> None:
            r = http.get(url, params=params)
            if r.status_code != 200:
                raise RuntimeError(f"bench serve: {url} answered {r.status_code}: {r.text[:300]}")
        return call

    return {"key": [get(f"{PATH}/{k}") for k in keys], "page": [get(PATH, limit=PAGE, cursor=c) for c in cursors]}


def _baseline(snap: exchange.Snapshot, columns: list[str], keys: list[str], afters: list[str],
              per_read: bool) -> dict[str, list[float]]:
    """The same reads by DuckDB on the snapshot's Parquet in this process."""
    files = ", ".join(quote_literal(str(p)) for p in snap.parquet_files)
    select = f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM read_parquet([{files}])"
    k = quote_ident(KEY)
    sql = {"key": f"{select} WHERE {k} = ?", "page": f"{select} WHERE {k} > ? ORDER BY {k} LIMIT {PAGE + 1}"}
    kept = duckdb.connect()

    def run(kind: str, value: str) -> Callable[[], None]:
        def call() -> None:
            con = duckdb.connect() if per_read else kept
            try:
                rows = con.execute(sql[kind], [value]).fetchall()
            finally:
                if per_read:
                    con.close()
            if not rows:
                raise RuntimeError(f"bench serve baseline: no row for {value}")
        return call

    try:
        _timed([run("key", keys[i % len(keys)]) for i in range(WARMUP)])
        return {"key": _timed([run("key", v) for v in keys]), "page": _timed([run("page", v) for v in afters])}
    finally:
        kept.close()


def bench_serve(root: Path, seed: int, smoke: bool = False, clients: int = CLIENTS) -> dict[str, Any]:
    rows = SMOKE_ROWS if smoke else ROWS
    load = round(os.getloadavg()[0], 1)  # the machine is shared: how busy it was as the measurement began
    n_key, n_page, c_key, c_page = SMOKE_COUNTS if smoke else COUNTS
    work = root / "work" / "serve"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    _warehouse(work / "warehouse.duckdb", rows)
    env = {**_child_env(work), "TONGBAN_STATE_URL": f"sqlite:///{work / 'state.sqlite'}"}
    snap = exchange.publish_snapshot(work / "exchange", entity=ENTITY, warehouse_path=work / "warehouse.duckdb",
                                     relation=f"harmonized.{ENTITY}", run_id="bench-serve", standard_version="1.0.0",
                                     pii={"legal_representative": "name"}, pseudonym_key=BENCH_KEY.encode())
    added = subprocess.run([sys.executable, "-m", "tongban.cli", "consumer", "add", "bench-reader", "--province", "31"],
                           env=env, capture_output=True, text=True, check=True)
    token = added.stdout.splitlines()[-1]
    rng = random.Random(seed)

    def keys(n: int) -> list[str]:
        return [f"lic_{rng.randrange(rows):07d}" for _ in range(n)]

    seq_keys = keys(n_key)
    with serving(env, work / "serve.log") as base:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=auth, timeout=120) as http:
            first = http.get(f"/api/v1/entities/{ENTITY}/rows/{seq_keys[0]}")
            first.raise_for_status()
            columns = list(first.json()["row"])
            _timed(_http_calls(http, keys(WARMUP), [])["key"])
            pages = _walk(http)  # also a warm-up of the page reads

            def starts(n: int) -> list[tuple[str, str]]:
                return [rng.choice(pages) for _ in range(n)]

            seq_starts = starts(n_page)
            calls = _http_calls(http, seq_keys, [c for c, _ in seq_starts])
            sequential = {kind: _timed(calls[kind]) for kind in KINDS}

        def client(kind: str, own_keys: list[str], own_starts: list[tuple[str, str]]) -> list[float]:
            with httpx.Client(base_url=base, headers=auth, timeout=120) as http:
                return _timed(_http_calls(http, own_keys, [c for c, _ in own_starts])[kind])

        concurrent: dict[str, list[float]] = {}
        walls: dict[str, float] = {}
        with ThreadPoolExecutor(clients) as pool:
            for kind in KINDS:
                jobs = [(kind, keys(c_key), []) if kind == "key" else (kind, [], starts(c_page)) for _ in range(clients)]
                t0 = time.perf_counter()
                concurrent[kind] = [t for found in pool.map(lambda j: client(*j), jobs) for t in found]
                walls[kind] = time.perf_counter() - t0
    afters = [a for _, a in seq_starts]
    baseline = _baseline(snap, columns, seq_keys, afters, per_read=False)
    per_read = _baseline(snap, columns, seq_keys, afters, per_read=True)
    result = {"rows": rows, "page": PAGE, "clients": clients, "columns": len(columns), "load_average": load,
              "sequential": {k: percentiles(v) for k, v in sequential.items()},
              "concurrent": {k: {**percentiles(v), "per_second": round(len(v) / walls[k], 1)}
                             for k, v in concurrent.items()},
              "duckdb": {k: percentiles(v) for k, v in baseline.items()},
              "duckdb_per_read": {k: percentiles(v) for k, v in per_read.items()}}
    print("bench: serve " + ", ".join(
        f"{kind} p50/p99 {result['sequential'][kind]['p50_ms']:.1f}/{result['sequential'][kind]['p99_ms']:.1f} ms "
        f"sequential, {result['concurrent'][kind]['p50_ms']:.1f}/{result['concurrent'][kind]['p99_ms']:.1f} ms with "
        f"{clients} clients, duckdb {result['duckdb'][kind]['p50_ms']:.1f}/{result['duckdb'][kind]['p99_ms']:.1f} ms"
        for kind in KINDS), flush=True)
    return result


def serve_rows(results: dict[str, Any]) -> list[str]:
    """The Markdown section of the served exchange's reads, if measured."""
    s = results.get("serve")
    if not s:
        return []
    throughput = {k: v["per_second"] for k, v in s["concurrent"].items() if "per_second" in v}
    lines = [f"### The served exchange: reads over HTTP ({s['rows']:,} business licences)", "",
             f"Measured {s.get('measured_at', '?')} at commit `{s.get('commit', '?')}` (`{s.get('command', '?')}`): "
             f"one `tongban serve` (uvicorn) on localhost, one consumer with keep-alive; `key` = "
             f"`GET /api/v1/entities/{ENTITY}/rows/{{key}}` of a random key, `page` = {s['page']:,} rows at a random "
             f"cursor ({s['columns']} columns). Concurrent: {s['clients']} clients in threads beside the server "
             f"on the same 2 cores ({', '.join(f'{k}: {v:,.0f} answers/s' for k, v in throughput.items())}). "
             f"Load average at the start: {s.get('load_average', '?')}. "
             "Baseline: the same read by DuckDB on the snapshot's Parquet in process.", "",
             "| read | measured as | requests | p50 | p90 | p99 | max | p50 / p99 vs DuckDB (connection kept) |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    labels = {"sequential": "served, one client", "concurrent": f"served, {s['clients']} clients",
              "duckdb": "DuckDB in process, connection kept", "duckdb_per_read": "DuckDB in process, connection per read"}
    for kind in KINDS:
        base = s["duckdb"][kind]
        for way, label in labels.items():
            m = s[way][kind]
            ratio = f"{m['p50_ms'] / base['p50_ms']:.1f}× / {m['p99_ms'] / base['p99_ms']:.1f}×" if way != "duckdb" else ""
            lines.append(f"| {kind} | {label} | {m['count']:,} | {m['p50_ms']:.1f} ms | {m['p90_ms']:.1f} ms | "
                         f"{m['p99_ms']:.1f} ms | {m['max_ms']:.1f} ms | {ratio} |")
    return lines + [""]
