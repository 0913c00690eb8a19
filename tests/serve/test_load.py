"""50 concurrent consumers against one real `tongban serve` (uvicorn, free localhost port) for 60 s
(``$TONGBAN_LOAD_SECONDS`` shortens it) while new snapshots of business licences are published:
keyed lookups, walks of 1,000-row pages by cursor, the entity listing and licence verifications.

Every snapshot generation g has its own row count and a marker licence whose name says g and whose
status flips with g, so each answer can be checked against the version it names: no 5xx, no
connection failure, every answer from one snapshot and consistent with it, old and new versions
both seen, the audit chain intact with one entry per request. Latencies (p50/p90/p99 per kind)
go to build/load/serve-load.json (``$TONGBAN_LOAD_REPORT``) and are printed; nothing is asserted
about them.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
import pytest

from bench.serve import percentiles
from tests.serve.conftest import KEY, PII, build_warehouse, licence_rows, make_uscc, tongban_cli
from tongban import exchange
from tongban.common.config import PROJECT_ROOT
from tongban.serve import audit, identity

pytestmark = pytest.mark.load

SECONDS = float(os.environ.get("TONGBAN_LOAD_SECONDS", "60"))
CLIENTS = 50
PUBLISHES = 4  # generations 1..4 published during the load, at 1/5, 2/5, ... of it
BULK = 2_500  # licences beside conftest's 90: a walk takes three pages of 1,000
GROWTH = 10  # each generation has this many licences more than the one before
PAGE = 1_000
MARKER, MARKER_USCC = "lic_00_marker", make_uscc("310101", 31998)
KINDS = ("key", "walk", "entities", "verify")
#: the project's build/, not the test session's temporary one: the figures outlive the run (CI keeps them)
REPORT = Path(os.environ.get("TONGBAN_LOAD_REPORT") or PROJECT_ROOT / "build" / "load" / "serve-load.json")


def expected_rows(generation: int) -> int:
    return len(licence_rows()) + BULK + GROWTH * generation + 1


def marker_status(generation: int) -> str:
    return "active" if generation % 2 == 0 else "revoked"


def generation_warehouse(path: Path, generation: int) -> Path:
    """conftest's warehouse with business licences of ``generation``: its bulk rows and its marker."""
    build_warehouse(path)
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO harmonized.business_license SELECT 'lic_bulk_' || lpad(CAST(i AS VARCHAR), 5, '0'), "
                "'91' || lpad(CAST(i AS VARCHAR), 16, '0'), '企业' || CAST(i AS VARCHAR), '法人' || CAST(i AS VARCHAR), "
                "'active', CAST(31 + i % 3 AS VARCHAR), 'src_' || CAST(31 + i % 3 AS VARCHAR) FROM range(?) t(i)",
                [BULK + GROWTH * generation])
    con.execute("INSERT INTO harmonized.business_license VALUES (?, ?, ?, '法人', ?, '31', 'src_31')",
                [MARKER, MARKER_USCC, f"版本{generation}", marker_status(generation)])
    con.close()
    return path


def publish_generation(root: Path, warehouse: Path, generation: int) -> int:
    return exchange.publish_snapshot(root, entity="business_license", warehouse_path=warehouse,
                                     relation="harmonized.business_license", run_id=f"run-load-{generation}",
                                     standard_version="1.0.0", pii=PII["business_license"],
                                     pseudonym_key=KEY.encode()).version


class Client:
    """One consumer's session: its latencies per kind, its errors and inconsistencies, the versions it saw."""

    def __init__(self, http: httpx.Client, generation_of: dict[int, int], rng: random.Random) -> None:
        self.http, self.generation_of, self.rng = http, generation_of, rng
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.problems: list[str] = []
        self.versions: set[int] = set()
        self.requests = 0
        self.last = 0  # the newest current version this client saw: later answers are never older

    def get(self, kind: str, path: str, **params) -> httpx.Response | None:
        self.requests += 1
        t0 = time.perf_counter()
        try:
            r = self.http.get(path, params=params)
        except httpx.HTTPError as exc:
            self.errors.append(f"{kind}: {type(exc).__name__}")
            return None
        self.latency[kind].append(time.perf_counter() - t0)
        if r.status_code != 200:
            self.errors.append(f"{kind}: HTTP {r.status_code} {r.text[:200]}")
            return None
        return r

    def current(self, kind: str, version: int) -> int | None:
        """The generation of a current ``version`` answered to ``kind``; notes a version unknown or older."""
        self.versions.add(version)
        if version < self.last:
            self.problems.append(f"{kind}: v{version} after v{self.last}")
        self.last = max(self.last, version)
        generation = self.generation_of.get(version)
        if generation is None:
            self.problems.append(f"{kind}: v{version} is none of the published versions")
        return generation

    def key(self) -> None:
        key = MARKER if self.rng.random() < 0.5 else f"lic_bulk_{self.rng.randrange(BULK):05d}"
        r = self.get("key", f"/entities/business_license/rows/{key}")
        if r is None:
            return
        body = r.json()
        g = self.current("key", body["snapshot"]["version"])
        if body["row"]["license_id"] != key or (key == MARKER and g is not None
                                                and body["row"]["enterprise_name"] != f"版本{g}"):
            self.problems.append(f"key {key}: {body['row']['license_id']} {body['row']['enterprise_name']} "
                                 f"in v{body['snapshot']['version']}")

    def walk(self) -> None:
        r = self.get("page", "/entities/business_license/rows", limit=PAGE)
        if r is None:
            return
        body = r.json()
        version = body["snapshot"]["version"]
        g = self.current("page", version)
        keys = [row["license_id"] for row in body["rows"]]
        names = {row["license_id"]: row["enterprise_name"] for row in body["rows"] if row["license_id"] == MARKER}
        while body["next_cursor"] is not None:
            r = self.get("page", "/entities/business_license/rows", limit=PAGE, cursor=body["next_cursor"])
            if r is None:
                return
            body = r.json()
            if body["snapshot"]["version"] != version:
                self.problems.append(f"walk: a page of v{body['snapshot']['version']} in a walk of v{version}")
            keys += [row["license_id"] for row in body["rows"]]
            names.update({row["license_id"]: row["enterprise_name"] for row in body["rows"] if row["license_id"] == MARKER})
        if g is not None and (len(keys) != expected_rows(g) or keys != sorted(set(keys))
                              or names.get(MARKER) != f"版本{g}"):
            self.problems.append(f"walk of v{version}: {len(keys)} rows (not {expected_rows(g)}), "
                                 f"marker {names.get(MARKER)!r}, in key order: {keys == sorted(set(keys))}")

    def entities(self) -> None:
        r = self.get("entities", "/entities")
        if r is not None:
            (licences,) = [e for e in r.json()["entities"] if e["entity"] == "business_license"]
            self.current("entities", licences["snapshot"]["version"])

    def verify(self) -> None:
        r = self.get("verify", f"/verify/business_license/{MARKER_USCC}")
        if r is None:
            return
        body = r.json()
        g = self.current("verify", body["snapshot"]["version"])
        if g is not None and (not body["found"] or body["status"] != marker_status(g)):
            self.problems.append(f"verify in v{body['snapshot']['version']}: {body['found']} {body['status']}")


def test_fifty_clients_during_publishes_see_consistent_snapshots(walk_env, server, tmp_path):
    url = walk_env["TONGBAN_STATE_URL"]
    root = Path(walk_env["TONGBAN_EXCHANGE_DIR"])
    warehouses = [generation_warehouse(tmp_path / f"warehouse-g{g}.duckdb", g) for g in range(PUBLISHES + 1)]
    first = publish_generation(root, warehouses[0], 0)
    generation_of = {first + g: g for g in range(PUBLISHES + 1)}  # publish_generation checks each version
    tokens = [identity.add_consumer(f"load-{i}", "31", url=url) for i in range(CLIENTS)]
    before = audit.verify(url=url)[0]
    start = time.monotonic()
    deadline = start + SECONDS
    published: list[int] = []

    def publisher() -> None:
        for g in range(1, PUBLISHES + 1):
            time.sleep(max(0.0, start + SECONDS * g / (PUBLISHES + 1) - time.monotonic()))
            published.append(publish_generation(root, warehouses[g], g))

    def consumer(n: int) -> Client:
        with httpx.Client(base_url=f"{server}/api/v1", headers={"Authorization": f"Bearer {tokens[n]}"},
                          timeout=120) as http:
            client = Client(http, generation_of, random.Random(n))
            step = n
            while time.monotonic() < deadline:
                getattr(client, KINDS[step % len(KINDS)])()
                step += 1
        return client

    thread = threading.Thread(target=publisher)
    thread.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            clients = list(pool.map(consumer, range(CLIENTS)))
    finally:
        thread.join()
    latency: dict[str, list[float]] = defaultdict(list)
    for c in clients:
        for kind, values in c.latency.items():
            latency[kind] += values
    seen = set().union(*(c.versions for c in clients))
    report = {"clients": CLIENTS, "seconds": SECONDS, "requests": sum(c.requests for c in clients),
              "versions_seen": sorted(seen), "published": [first, *published],
              "errors": sum(len(c.errors) for c in clients),
              "kinds": {kind: percentiles(v) for kind, v in sorted(latency.items())}}
    out = REPORT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nserve load ({out}):\n{json.dumps(report, indent=2)}")

    assert published == [first + g for g in range(1, PUBLISHES + 1)]
    assert [e for c in clients for e in c.errors][:20] == []
    assert [p for c in clients for p in c.problems][:20] == []
    assert {first, first + PUBLISHES} <= seen, "both the old and the new snapshots are seen during the load"
    assert set(latency) == {"key", "page", "entities", "verify"}
    checked, broken = audit.verify(url=url)
    assert broken is None and checked == before + report["requests"]
    assert tongban_cli(walk_env, "audit", "verify").returncode == 0
