"""A small real exchange (published with tongban.exchange.publish_snapshot from a real DuckDB
warehouse), a real SQLite state file per test, and the app under FastAPI's TestClient."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from bench.serve import serving
from tongban import exchange
from tongban.common.validators import gb11714_check_char, gb32100_check_char
from tongban.serve import identity
from tongban.serve.app import create_app

KEY = "tongban-serve-test-pseudonym-key-0123456789"
PROVINCES = {"31": "310101", "32": "320102", "33": "330102"}
LICENCES_PER_PROVINCE = 30
BIRTHS_PER_PROVINCE = 12


def make_uscc(region: str, serial: int) -> str:
    org8 = f"{serial:08d}"
    first17 = "91" + region + org8 + gb11714_check_char(org8)
    return first17 + gb32100_check_char(first17)


def certificate_no(province: str, serial: int) -> str:
    return f"P{province}{serial:07d}"


def licence_rows() -> list[tuple]:
    rows = []
    for p, region in PROVINCES.items():
        for i in range(LICENCES_PER_PROVINCE):
            name = f"=HYPERLINK(\"x\") 企业{p}-{i}" if i == 0 else f"企业{p}-{i:02d}"
            rows.append((f"lic_{p}_{i:04d}", make_uscc(region, int(p) * 1000 + i), name, f"法人{p}{i:02d}",
                         "revoked" if i == 1 else "active", p, f"src_{p}"))
    return rows


def birth_rows() -> list[tuple]:
    return [(f"birth_{p}_{i:04d}", certificate_no(p, i + 1), f"孩子{p}{i:02d}", "1" if i % 2 else "2",
             f"2024-0{1 + i % 9}-1{i % 9}", p, f"src_{p}")
            for p in PROVINCES for i in range(BIRTHS_PER_PROVINCE)]


def build_warehouse(path: Path, extra_licence: bool = False) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA IF NOT EXISTS harmonized")
    con.execute("CREATE OR REPLACE TABLE harmonized.business_license (license_id VARCHAR, uscc VARCHAR, "
                "enterprise_name VARCHAR, legal_representative VARCHAR, status_code VARCHAR, province_code VARCHAR, "
                "source_id VARCHAR)")
    rows = licence_rows()
    if extra_licence:
        rows.append(("lic_31_9999", make_uscc("310101", 31999), "新企业", "新法人", "active", "31", "src_31"))
    con.executemany("INSERT INTO harmonized.business_license VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute("CREATE OR REPLACE TABLE harmonized.birth_registration (birth_id VARCHAR, birth_certificate_number "
                "VARCHAR, child_name VARCHAR, child_sex_code VARCHAR, birth_date DATE, province_code VARCHAR, "
                "source_id VARCHAR)")
    con.executemany("INSERT INTO harmonized.birth_registration VALUES (?, ?, ?, ?, ?, ?, ?)", birth_rows())
    con.execute("CREATE OR REPLACE TABLE harmonized.data_resource (resource_id VARCHAR, title VARCHAR, "
                "keywords VARCHAR[], province_code VARCHAR, source_id VARCHAR)")
    con.executemany("INSERT INTO harmonized.data_resource VALUES (?, ?, ?, ?, ?)",
                    [(f"res_{p}_{i}", f"+目录{p}{i}", ["a", f"k{i}"], p, f"src_{p}") for p in PROVINCES for i in range(5)])
    con.close()


PII = {"business_license": {"legal_representative": "name"},
       "birth_registration": {"birth_certificate_number": "id_number", "child_name": "name"},
       "data_resource": {}}


def publish(root: Path, warehouse: Path, entities=tuple(PII), run_id: str = "run-1") -> None:
    for entity in entities:
        exchange.publish_snapshot(root, entity=entity, warehouse_path=warehouse, relation=f"harmonized.{entity}",
                                  run_id=run_id, standard_version="1.0.0", pii=PII[entity] or None,
                                  pseudonym_key=KEY.encode() if PII[entity] else None)


@dataclass
class Served:
    root: Path
    work: Path
    url: str
    client: TestClient
    add: Callable[..., str]

    def auth(self, token: str | None) -> dict[str, str]:
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    def get(self, path: str, token: str | None, **kw):
        return self.client.get(path, headers=self.auth(token), **kw)

    def post(self, path: str, token: str | None, body: dict):
        return self.client.post(path, headers=self.auth(token), json=body)


@pytest.fixture
def served(tmp_path, monkeypatch) -> Served:
    root, build = tmp_path / "exchange", tmp_path / "build"
    build.mkdir()
    monkeypatch.setenv("TONGBAN_EXCHANGE_DIR", str(root))
    monkeypatch.setenv("TONGBAN_BUILD_DIR", str(build))
    monkeypatch.setenv("TONGBAN_PSEUDONYM_KEY", KEY)
    url = f"sqlite:///{tmp_path / 'state' / 'serve.sqlite'}"
    monkeypatch.setenv("TONGBAN_STATE_URL", url)
    warehouse = tmp_path / "warehouse.duckdb"
    build_warehouse(warehouse)
    publish(root, warehouse)

    def add(name: str, province: str, approver: bool = False) -> str:
        return identity.add_consumer(name, province, approver=approver, url=url)

    with TestClient(create_app(exchange_root=root, state_url=url)) as client:
        yield Served(root, tmp_path, url, client, add)


TONGBAN = [sys.executable, "-m", "tongban.cli"]


@pytest.fixture
def walk_env(tmp_path) -> dict[str, str]:
    env = {**os.environ, "TONGBAN_EXCHANGE_DIR": str(tmp_path / "exchange"), "TONGBAN_BUILD_DIR": str(tmp_path / "build"),
           "TONGBAN_PSEUDONYM_KEY": KEY, "TONGBAN_STATE_URL": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    build_warehouse(tmp_path / "warehouse.duckdb")
    publish(tmp_path / "exchange", tmp_path / "warehouse.duckdb")
    return env


def tongban_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TONGBAN, *args], env=env, capture_output=True, text=True, timeout=120)


def token_from_cli(env: dict[str, str], *args: str) -> str:
    done = tongban_cli(env, "consumer", "add", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


#: the browser tests' name for it: `tongban serve` on a free localhost port, stopped on exit
running_server = serving


@pytest.fixture
def server(walk_env, tmp_path):
    """A real `tongban serve` (uvicorn) on a free localhost port, stopped after the test."""
    with serving(walk_env, tmp_path / "serve.log") as base:
        yield base
