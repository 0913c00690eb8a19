"""``make bench``: tongban end to end against a hand-written DuckDB lower bound and pandas + GX.

One invocation measures, for each size N, three ways of turning the same deliveries into
published Parquet:

``tongban``      the pipeline's steps one by one (start_run, intake, transform, gate,
                 check_conservation, publish, feedback), as ``run_in_process`` runs them;
``lower_bound``  one DuckDB query per entity over the deliveries with the generated mapping and row
                 checks (:mod:`bench.lower_bound`);
``pandas_gx``    pandas readers, the mappings in pandas, the checks as a GX suite on a pandas data
                 source (:mod:`bench.pandas_gx`);
``tongban_spark`` (only when asked for: ``make bench ENGINE=spark``) tongban with its dbt build on
                 a local Spark (issue 19), the session's start a stage of its own.

N is the number of rows delivered in the run, over all eight deliveries (births and business
licences, four provinces in their native formats): N/8 rows per delivery. The deliveries are
generated once per (N, seed) under ``build/bench/data`` (``tongban sample``) and reused. Above
one XLSX sheet (1,048,575 rows a delivery, N > 8,388,600) 安徽 delivers each entity in parts
(``ah/births-1.xlsx``, ``-2``, ...), which every path reads through the mapping's glob
(:func:`tongban.common.parts.find_parts`); the cache key then names the part size.

Every measured run is a fresh subprocess (interpreter start and imports count; memory is per
path) in an empty work directory. The parent samples the resident memory of the subprocess and
all its descendants every ~50 ms from ``/proc`` (sum of VmRSS over the tree at each instant; the
peak is the largest sum) and also records the child's ``ru_maxrss``. The child writes its stage
timings and row counts as JSON. After every full tongban run come two re-runs in the same work
directory, each from the state the full run left (the directory is copied aside and put back
between them, unmeasured): 江苏 re-delivers both its deliveries (25 % of the rows), and 江苏
re-delivers only its business licences (12.5 %), each replaced by the next seed's data of the
same size while the other deliveries stay byte for byte the same. The DAG file's parse time is
measured like ``tests/dags`` does. ``--paths`` / ``$BENCH_PATHS`` runs a subset of the paths
(pandas + GX is run only up to N = 1M anyway and extrapolated beyond).

Results accumulate in ``build/bench/results.json`` (a size measured again replaces its entry,
except the paths not run this time, which keep their earlier figures, marked so) and are
rendered into ``docs/benchmarks.md`` between the ``bench:begin``/``bench:end`` markers; the rest
of that file (what the lower bound includes, where the time goes) is hand-written.
"""


from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tongban.common.config import ENGINE_ENV, PROJECT_ROOT, settings
from bench.common import (ALL_PATHS, DEFAULT_SEED, ENTITIES, PANDAS_MAX_ROWS, PATHS, SMOKE_ROWS, SPARK_PATH, Stages,
                          XLSX_MAX_ROWS)
from bench.data import rows_per_delivery
from bench.runs import _git_commit, bench_dag_parse, bench_size, machine, merge_size
from bench.report import explain_top, write_doc
from bench import lower_bound as bench_lower_bound
from bench import pandas_gx as bench_pandas_gx
from bench.serve import CLIENTS as SERVE_CLIENTS, bench_serve
from bench.small import bench_small


# ------------------------------------------------------------------------------------------ one path (child)


def run_tongban(engine: str = "duckdb") -> dict[str, Any]:
    """The pipeline's steps as ``run_in_process`` calls them, each timed. On Spark the session is
    started first, as its own stage (``spark_start``: the fixed cost of every Spark run; transform
    then finds it running)."""
    st = Stages()
    os.environ[ENGINE_ENV] = engine
    with st("import"):
        from tongban import pipeline
    with st("start_run"):
        run = pipeline.start_run(list(ENTITIES))
    if engine == "spark":
        with st("spark_start"):
            from tongban.steps import spark_engine

            spark_engine.spark_session(settings())
    def done(src: dict[str, Any], seconds: float) -> None:
        st.seconds[f"intake.{src['source_id']}.{src['entity']}"] = round(seconds, 3)

    def checked(models: list[str], seconds: float) -> None:
        st.seconds["early.checked_seconds"] = round(seconds, 3)
        st.seconds["early.checked_models"] = len(models)

    with st("intake"):  # two lanes, as `tongban run` does (pipeline.intake_all), checking early
        intakes = pipeline.intake_all(run, on_done=done, check_early=pipeline.check_early_enabled(),
                                      on_checked=checked)
    with st("transform"):
        transformed = pipeline.transform(run, intakes)
    with st("gate"):
        gate = pipeline.gate(run, transformed)
    with st("check_conservation"):
        conservation = pipeline.check_conservation(run, intakes, transformed)
    with st("publish"):
        published = pipeline.publish(run, intakes, transformed, gate, conservation)
    with st("feedback"):
        pipeline.feedback(run, intakes, transformed)
    report = json.loads(Path(published["report"]).read_text(encoding="utf-8"))
    rows: dict[str, dict[str, int]] = {e: {"delivered": 0, "published": 0, "quarantined": 0} for e in ENTITIES}
    for d in report["deliveries"]:
        r = rows[d["entity"]]
        r["delivered"] += d["rows_delivered"]
        r["published"] += d["rows_published"]
        r["quarantined"] += d["rows_quarantined"]
    return {"stages": st.seconds, "maxrss_mib_after": st.maxrss_mib, "rows": rows, "gate_success": gate["success"],
            "statuses": sorted({d["status"] for d in report["deliveries"]})}


def run_path(name: str, out_json: Path) -> int:
    """Child side: run one path in this process (the environment names the dirs) and write JSON."""
    t0 = time.perf_counter()
    if name == "tongban":
        result = run_tongban()
    elif name == SPARK_PATH:
        result = run_tongban("spark")
    elif name == "lower_bound":
        result = bench_lower_bound.run_from_env()
    elif name == "pandas_gx":
        result = bench_pandas_gx.run_from_env()
    else:
        raise SystemExit(f"unknown path {name!r}; one of {', '.join(ALL_PATHS)}")
    result["in_process_seconds"] = round(time.perf_counter() - t0, 3)
    out_json.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


# ------------------------------------------------------------------------------------------ CLI


def _sizes(text: str) -> list[int]:
    out = []
    for part in text.replace(" ", ",").split(","):
        if part:
            part = part.lower().replace("_", "")
            mult = 1_000_000 if part.endswith("m") else 1_000 if part.endswith("k") else 1
            out.append(int(float(part.rstrip("mk")) * mult))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.harness", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    run = sub.add_parser("run", help="measure (the default)")
    for p in (parser, run):
        p.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "100000"),
                       help="N, total rows over the 8 deliveries, comma-separated (1m, 100k work) [$BENCH_SIZES]")
        p.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "3")), help="[$BENCH_REPEAT]")
        p.add_argument("--seed", type=int, default=DEFAULT_SEED)
        p.add_argument("--paths", default=os.environ.get("BENCH_PATHS") or ",".join(PATHS),
                       help="comma-separated subset of " + ",".join(ALL_PATHS) + " [$BENCH_PATHS]; a size measured "
                            "again keeps the earlier figures of the paths not run")
        p.add_argument("--pandas-max", type=int, default=PANDAS_MAX_ROWS)
        p.add_argument("--no-rerun", action="store_true", help="skip the re-runs (one province / one delivery "
                                                              "re-delivered)")
        p.add_argument("--rerun", action="store_true", help="run the re-runs even with --smoke")
        p.add_argument("--xlsx-max-rows", type=int,
                       default=int(os.environ.get("BENCH_XLSX_MAX_ROWS") or XLSX_MAX_ROWS),
                       help="data rows per 安徽 XLSX part (one sheet: 1,048,575); smaller to try parts on "
                            "small N [$BENCH_XLSX_MAX_ROWS]")
        p.add_argument("--no-dag-parse", action="store_true")
        p.add_argument("--no-small", action="store_true", help="skip the 1,000-row single-delivery runs")
        p.add_argument("--no-serve", action="store_true", help="skip the served exchange's reads over HTTP "
                                                              "(bench/serve.py)")
        p.add_argument("--serve-clients", type=int, default=SERVE_CLIENTS,
                       help="concurrent clients of the served-exchange scenario")
        p.add_argument("--smoke", action="store_true", default=os.environ.get("BENCH_SMOKE") == "1",
                       help=f"N={SMOKE_ROWS}, one run of each path, no re-run, results under --out only "
                            "[$BENCH_SMOKE=1]")
        p.add_argument("--out", type=Path, default=None, help="results and data (default build/bench)")
        p.add_argument("--doc", type=Path, default=None, help="Markdown to update (default docs/benchmarks.md)")
    one = sub.add_parser("path", help="internal: run one path in this process")
    one.add_argument("name", choices=ALL_PATHS)
    one.add_argument("--out-json", type=Path, required=True)
    one.add_argument("--cprofile", type=Path, default=None, help="also write cProfile stats here (profiling)")
    exp = sub.add_parser("explain", help="slowest operators of a compiled dbt model (on a warehouse copy)")
    exp.add_argument("--warehouse", type=Path, required=True, help="a COPY of build/warehouse.duckdb")
    exp.add_argument("sql", type=Path, help="build/dbt/target/compiled/tongban/models/.../<model>.sql")
    exp.add_argument("--top", type=int, default=12)
    rnd = sub.add_parser("render", help="re-render the Markdown from results.json")
    rnd.add_argument("--out", type=Path, default=None)
    rnd.add_argument("--doc", type=Path, default=None)
    args = parser.parse_args(argv)

    if args.cmd == "path":
        if args.cprofile is None:
            return run_path(args.name, args.out_json)
        import cProfile

        profiler = cProfile.Profile()
        try:
            return profiler.runcall(run_path, args.name, args.out_json)
        finally:
            profiler.dump_stats(str(args.cprofile))
    if args.cmd == "explain":
        print(explain_top(args.warehouse, args.sql, args.top))
        return 0

    build = settings().build_dir
    if args.cmd == "render":
        out = args.out or build / "bench"
        write_doc(args.doc or PROJECT_ROOT / "docs" / "benchmarks.md",
                  json.loads((out / "results.json").read_text(encoding="utf-8")))
        return 0

    smoke = args.smoke
    out: Path = (args.out or (build / "bench-smoke" if smoke else build / "bench")).resolve()
    doc: Path = args.doc or (out / "benchmarks.md" if smoke else PROJECT_ROOT / "docs" / "benchmarks.md")
    sizes = [SMOKE_ROWS] if smoke else _sizes(args.sizes)
    repeat = 1 if smoke else args.repeat
    paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in paths if p not in ALL_PATHS]
    if unknown:
        parser.error(f"unknown path(s) {unknown}; choose from {', '.join(ALL_PATHS)}")
    for n in sizes:
        rows_per_delivery(n)  # refuse impossible sizes before measuring anything
    if not 1 <= args.xlsx_max_rows <= XLSX_MAX_ROWS:
        parser.error(f"--xlsx-max-rows must be between 1 and {XLSX_MAX_ROWS:,}")
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text(encoding="utf-8")) if results_path.is_file() else {}
    results.setdefault("sizes", {})
    results["machine"] = machine()
    command = ("python -m bench.harness " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))).strip()
    if os.environ.get("BENCH_MAKE_COMMAND"):
        command = os.environ["BENCH_MAKE_COMMAND"]
    commit = _git_commit()
    for n in sizes:
        res = bench_size(out, n, args.seed, repeat, paths, args.pandas_max, rerun=not args.no_rerun and (args.rerun or not smoke),
                         xlsx_max_rows=args.xlsx_max_rows)
        res["command"] = command
        res["commit"] = commit
        results["sizes"][str(n)] = merge_size(results["sizes"].get(str(n)), res, paths)
        results_path.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
        write_doc(doc, results)
    if not args.no_dag_parse:
        results["dag_parse"] = {**bench_dag_parse(out, 1 if smoke else max(repeat, 3)), "command": command,
                                "commit": commit}
        print(f"bench: DAG parse {results['dag_parse']['median_dagbag_seconds']:.3f} s", flush=True)
    if not args.no_small:
        results["small"] = {**bench_small(out, args.seed, 1 if smoke else repeat), "commit": commit,
                            "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    if not args.no_serve:
        results["serve"] = {**bench_serve(out, args.seed, smoke=smoke, clients=args.serve_clients), "commit": commit,
                            "command": command, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    results_path.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    write_doc(doc, results)
    print(f"bench: results in {results_path}; report {doc}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
