"""Concurrent consumers against a real `tongban serve` while new snapshots are published: bounded (a
fixed number of clients and requests, localhost only, nothing timed) — no errors, every answer from
exactly one snapshot, and the audit chain intact with one entry per request."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.serve.conftest import LICENCES_PER_PROVINCE, PROVINCES, build_warehouse, publish, tongban_cli
from tongban.serve import audit, identity

CLIENTS = 16
REQUESTS = 12  # per client
PUBLISHES = 3


def test_concurrent_reads_during_publishes_see_one_snapshot_each(walk_env, server):
    url = walk_env["TONGBAN_STATE_URL"]
    tokens = [identity.add_consumer(f"client-{i}", "31", url=url) for i in range(CLIENTS)]
    root = Path(walk_env["TONGBAN_EXCHANGE_DIR"])
    warehouse = root.parent / "warehouse-next.duckdb"
    build_warehouse(warehouse, extra_licence=True)  # every later snapshot has one licence more
    base = LICENCES_PER_PROVINCE * len(PROVINCES)

    def publisher() -> None:
        for i in range(PUBLISHES):
            publish(root, warehouse, entities=("business_license",), run_id=f"run-c{i}")

    def consumer(token: str) -> list[str]:
        problems = []
        with httpx.Client(base_url=f"{server}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
            for n in range(REQUESTS):
                if n % 3 == 2:
                    r = http.get("/entities/business_license/rows/lic_32_0003")
                    if r.status_code != 200 or r.json()["row"]["license_id"] != "lic_32_0003":
                        problems.append(f"key: {r.status_code}")
                    continue
                r = http.get("/entities/business_license/rows", params={"limit": 10000})
                if r.status_code != 200:
                    problems.append(f"rows: {r.status_code}")
                    continue
                body = r.json()
                expected = base if body["snapshot"]["version"] == 1 else base + 1
                if len(body["rows"]) != expected:
                    problems.append(f"v{body['snapshot']['version']}: {len(body['rows'])} rows, not {expected}")
        return problems

    before = audit.verify(url=url)[0]
    thread = threading.Thread(target=publisher)
    thread.start()
    with ThreadPoolExecutor(CLIENTS) as pool:
        problems = [p for found in pool.map(consumer, tokens) for p in found]
    thread.join()
    assert problems == []
    checked, broken = audit.verify(url=url)
    assert broken is None and checked == before + CLIENTS * REQUESTS
    assert tongban_cli(walk_env, "audit", "verify").returncode == 0
