"""The bench harness's own logic, without running any path: the data layout and its cache key
(安徽's XLSX deliveries in parts above one sheet), the inboxes of the two re-run scenarios, each
re-run starting from the state the full run left, results merging and the rendered tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import common as bench_common
from bench import data as bench_data
from bench import harness as bench_harness
from bench import report as bench_report
from bench import runs as bench_runs


def test_sizes_parts_and_cache_key():
    assert bench_harness._sizes("5m,10m") == [5_000_000, 10_000_000]
    assert bench_data.rows_per_delivery(10_000_000) == 1_250_000  # no longer refused
    assert bench_data.xlsx_parts(1_000_000) == 1 and bench_data.xlsx_parts(10_000_000) == 2
    assert bench_data.xlsx_parts(8_388_600) == 1 and bench_data.xlsx_parts(8_388_608) == 2
    # one part: the key of the data cached before parts existed; parts: the part size is in it
    assert bench_data.data_key(1_000_000, 20261127) == "n1000000-s20261127"
    assert bench_data.data_key(10_000_000, 20261127) == "n10000000-s20261127-xlsx1048575"
    assert bench_data.data_key(4_000, 1, xlsx_max_rows=300) == "n4000-s1-xlsx300"
    assert bench_data.data_key(4_000, 1, xlsx_max_rows=500) == "n4000-s1"


def _fake_data(root: Path) -> Path:
    data = root / "data"
    files = ["sh/births.csv", "sh/licenses.csv", "js/births.csv", "js/licenses.csv", "zj/births.jsonl",
             "zj/licenses.jsonl", "ah/births-1.xlsx", "ah/births-2.xlsx", "ah/licenses-1.xlsx",
             "ah/licenses-2.xlsx"]
    for f in files:
        for side in ("inbox",) + (("redelivery",) if f.startswith("js/") else ()):
            p = data / side / f
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"{side}:{f}")
            (p.parent / (p.name.split(".")[0].split("-")[0] + ".answer_key.csv")).write_text("key")
    return data


def _inbox(inbox: Path) -> dict[str, str]:
    return {str(p.relative_to(inbox)): p.read_text() for p in sorted(inbox.rglob("*")) if p.is_file()}


def test_link_inbox_for_each_scenario(tmp_path):
    data = _fake_data(tmp_path)
    inbox = tmp_path / "work" / "inbox"
    bench_data._link_inbox(data, inbox)
    full = _inbox(inbox)
    assert len(full) == 10 and all(v == f"inbox:{k}" for k, v in full.items())  # no answer keys
    assert set(bench_data.delivery_files(inbox)) == {(p, e) for p in bench_common.PROVINCES for e in bench_common.ENTITIES}
    assert [f.name for f in bench_data.delivery_files(inbox)[("ah", "birth_registration")]] == [
        "births-1.xlsx", "births-2.xlsx"]
    for name, expected in (("province", {"js/births.csv", "js/licenses.csv"}), ("delivery", {"js/licenses.csv"})):
        bench_data._link_inbox(data, inbox, changed=bench_common.RERUNS[name]["changed"])
        linked = _inbox(inbox)
        assert set(linked) == set(full)
        assert {k for k, v in linked.items() if v.startswith("redelivery:")} == expected, name


def test_each_rerun_starts_from_the_full_runs_state(tmp_path, monkeypatch):
    data = _fake_data(tmp_path)
    work = tmp_path / "work" / "tongban"
    bench_runs._fresh(work, data)
    (work / "state.txt").write_text("full run")
    seen = {}

    def fake_run_one(path, w, *, tag):
        assert path == "tongban" and w == work
        seen[tag] = {"state": (w / "state.txt").read_text(), "inbox": _inbox(w / "inbox")}
        (w / "state.txt").write_text(tag)  # the re-run changes the state
        (w / f"{tag}.log").write_text("log")
        return {"seconds": 1.0, "peak_rss_bytes": 1, "stages": {"intake": 0.5}}

    monkeypatch.setattr(bench_runs, "run_one", fake_run_one)
    out = bench_runs._rerun_scenarios(work, data, 0, 4_000, 1)
    assert list(out) == ["province", "delivery"]
    assert seen["rerun_province1"]["state"] == "full run"
    assert seen["rerun_delivery1"]["state"] == "full run"  # not the province re-run's state
    changed = {t: {k for k, v in s["inbox"].items() if v.startswith("redelivery:")} for t, s in seen.items()}
    assert changed == {"rerun_province1": {"js/births.csv", "js/licenses.csv"},
                       "rerun_delivery1": {"js/licenses.csv"}}
    assert (work / "rerun_province1.log").is_file() and (work / "rerun_delivery1.log").is_file()
    assert not work.with_name(work.name + ".after_full_run").exists()


def _run(seconds: float, stages: dict[str, float]) -> dict:
    return {"seconds": seconds, "peak_rss_bytes": 2**30, "stages": stages,
            "rows": {e: {"delivered": 10, "published": 9, "quarantined": 1} for e in bench_common.ENTITIES}}


def _size(n: int, paths: dict[str, float], rerun: dict[str, float] | None) -> dict:
    per = bench_data.rows_per_delivery(n)
    stages = {"intake": 4.0, "intake.js.birth_registration": 1.0, "intake.js.business_license": 0.5,
              "intake.ah.birth_registration": 2.5, "transform": 5.0}
    entry = {"n": n, "rows_per_delivery": per, "seed": 1, "repeat": 1, "measured_at": "2026-01-01T00:00:00+00:00",
             "commit": "abc", "command": "make bench", "xlsx_parts": bench_data.xlsx_parts(n),
             "xlsx_max_rows": bench_common.XLSX_MAX_ROWS, "skipped": {},
             "paths": {p: bench_runs._summary([_run(t, stages)]) for p, t in paths.items()}}
    if rerun:
        entry["reruns"] = {}
        for name, t in rerun.items():
            changed = bench_common.RERUNS[name]["changed"]
            entry["reruns"][name] = {
                "label": bench_common.RERUNS[name]["label"], "changed": [f"{p}.{bench_common.SAMPLE_ENTITIES[e]}" for p, e in changed],
                "rows_changed": per * len(changed), "rows_total": per * 8, "changed_share": len(changed) / 8,
                **bench_runs._summary([_run(t, stages)])}
    return entry


def test_render_reruns_with_their_share_of_changed_rows():
    results = {"machine": {}, "sizes": {"10000000": _size(10_000_000, {"tongban": 100.0, "lower_bound": 50.0},
                                                           {"province": 90.0, "delivery": 80.0})}}
    text = bench_report.render(results)
    assert "1,250,000 per delivery × 8; 安徽 delivers each entity in 2 XLSX parts of ≤ 1,048,575 rows" in text
    assert ("| tongban re-run: js re-delivers both its deliveries (25% of the rows changed) |" in text
            and "re-run / full run: 0.90× (a re-run proportional to the changed rows: 25%)" in text)
    assert ("| tongban re-run: js re-delivers business_license only (12.5% of the rows changed) |" in text
            and "re-run / full run: 0.80× (a re-run proportional to the changed rows: 12.5%)" in text)
    assert "| rows re-delivered | — | 2,500,000 of 10,000,000 (25%) | 1,250,000 of 10,000,000 (12.5%) |" in text
    assert "| transform | 5.00 | 5.00 | 5.00 |" in text
    # intake of the deliveries a re-run did not change: 4.0 of intake.* minus the changed ones
    assert "| intake of the deliveries not re-delivered | — | 2.50 | 3.50 |" in text
    assert "| wall (process start to exit) | 100.00 | 90.00 (90%) | 80.00 (80%) |" in text
    assert "| re-run with one changed delivery ≤ 10% of a full run | NOT met (N=10,000,000: 80%;" in text


def test_merge_keeps_paths_not_run_again():
    old = _size(1_000_000, {"tongban": 90.0, "lower_bound": 50.0, "pandas_gx": 130.0}, {"province": 95.0})
    new = _size(1_000_000, {"tongban": 80.0}, {"province": 70.0, "delivery": 60.0})
    new["measured_at"] = "2026-02-02T00:00:00+00:00"
    merged = bench_runs.merge_size(old, new, ["tongban"])
    assert merged["paths"]["tongban"]["median_seconds"] == 80.0
    assert merged["paths"]["lower_bound"]["median_seconds"] == 50.0
    assert merged["paths"]["lower_bound"]["carried_over"]["measured_at"] == "2026-01-01T00:00:00+00:00"
    assert "carried_over" not in merged["paths"]["tongban"] and merged["reruns"]["delivery"]["median_seconds"] == 60.0
    text = bench_report.render({"sizes": {"1000000": merged}})
    assert "`lower_bound`: not run this time; its figures are from 2026-01-01T00:00:00+00:00" in text
    # the old single re-run entry (before there were two scenarios) still renders
    legacy = _size(1_000_000, {"tongban": 90.0}, None)
    legacy["rerun"] = {"redelivering": "js", **bench_runs._summary([_run(95.0, {"intake": 1.0})])}
    assert "js re-delivers both its deliveries (25% of the rows changed)" in bench_report.render({"sizes": {"1": legacy}})


def test_mappings_must_read_every_part(tmp_path, monkeypatch):
    """A delivery written in parts that no mapping's glob reads is refused before measuring; the
    repository's mappings (globs for 安徽) read both parts."""
    import shutil

    from tongban.common.config import settings

    data = _fake_data(tmp_path)
    bench_data.check_mappings(data / "inbox")  # the repository's standards: accepted
    standards = tmp_path / "standards"
    shutil.copytree(settings().standards_dir, standards)
    mapping = standards / "mappings" / "ah" / "birth_registration.yaml"
    text = mapping.read_text(encoding="utf-8")
    assert "  file: ah/births*.xlsx\n" in text
    mapping.write_text(text.replace("  file: ah/births*.xlsx\n", "  file: ah/births-1.xlsx\n"), encoding="utf-8")
    monkeypatch.setenv("TONGBAN_STANDARDS_DIR", str(standards))
    with pytest.raises(SystemExit, match=r"(?s)ah/birth_registration: births-2\.xlsx not read by any mapping.*"
                                         r"needs its mapping's delivery\.file to be a glob"):
        bench_data.check_mappings(data / "inbox")


def test_the_dag_parse_and_the_gate_import_are_measured(tmp_path):
    """`make bench` reports the timings the tests no longer assert (DAG parse, importing the gate)."""
    res = bench_runs.bench_dag_parse(tmp_path, 1)
    (run,) = res["runs"]
    assert run["dags"] == ["tongban_inbox", "tongban_regional"] and run["gx"] is False
    assert set(res) == {"runs", "median_dagbag_seconds", "median_airflow_import_seconds", "median_gate_import_seconds"}
    text = bench_report.render({"sizes": {}, "dag_parse": {**res, "command": "make bench"}})
    assert "| `import tongban.steps.gate` < 0.2 s (GX only when a gate runs) | " in text
    assert f"`import tongban.steps.gate` in a fresh interpreter: median {res['median_gate_import_seconds']:.3f} s" in text


def test_issue15_targets_read_the_results():
    from bench.targets import issue15_rows

    def size(tb, lb, rerun=None):
        s = {"paths": {"tongban": {"median_seconds": tb, "max_peak_rss_bytes": 3 * 10**9},
                       "lower_bound": {"median_seconds": lb}}}
        if rerun is not None:
            s["reruns"] = {"delivery": {"median_seconds": rerun, "changed_share": 0.125}}
        return s

    results = {"sizes": {"1000000": size(30.0, 20.0, rerun=5.0), "10000000": size(200.0, 100.0)},
               "small": {p: {"median_seconds": s} for p, s in (("cold", 20.0), ("changed", 5.5), ("unchanged", 3.0))}}
    text = "\n".join(issue15_rows(results))
    assert "at 1M rows | met: 1.50×" in text
    assert "at 10M rows | NOT met: 2.00×" in text
    assert "+ 5 points | met (N=1,000,000: 17% for 12.5% of the rows)" in text  # 16.7 % ≤ 12.5 % + 5
    assert "warm, end to end ≤ 6 s | met: 5.50 s re-delivered" in text
    assert "2 GB at 10M rows | NOT met: 3.00 GB" in text
    results["sizes"]["1000000"]["reruns"]["delivery"]["median_seconds"] = 6.0  # 20 %
    results["small"]["changed"]["median_seconds"] = 6.5
    text = "\n".join(issue15_rows(results))
    assert "+ 5 points | NOT met (N=1,000,000: 20%" in text
    assert "≤ 6 s | NOT met: 6.50 s" in text
    assert "| tongban ≤ 1.5× the lower bound at 1M rows | not yet measured |" in "\n".join(issue15_rows({}))
