"""``docs/benchmarks.md`` from ``build/bench/results.json``: the tables between the bench markers,
the targets of issue 15 and where the time goes; and the EXPLAIN ANALYZE profile of the slowest
generated models."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tongban.common.sqlquote import quote_literal
from bench.serve import serve_rows
from bench.targets import issue15_rows, issue16_rows, small_rows
from bench.common import ALL_PATHS, DELIVERIES, DOC_BEGIN, DOC_END, ENTITIES, SPARK_PATH
from bench.data import rows_per_delivery, xlsx_parts
from bench.runs import _reruns_of


# ------------------------------------------------------------------------------------------ report


def _mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def _s(x: float) -> str:
    return f"{x:,.2f} s" if x < 100 else f"{x:,.0f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "—"


def _target_rows(results: dict[str, Any]) -> list[str]:
    sizes = results.get("sizes", {})

    def at(n: int) -> dict[str, Any] | None:
        return sizes.get(str(n))

    largest = max((int(k) for k, v in sizes.items() if {"tongban", "lower_bound"} <= set(v["paths"])), default=None)
    rows = ["| target | status |", "|---|---|"]
    big = at(10_000_000)
    if big and "lower_bound" in big["paths"] and "tongban" in big["paths"]:
        r = big["paths"]["tongban"]["median_seconds"] / big["paths"]["lower_bound"]["median_seconds"]
        rows.append(f"| tongban ≤ 1.5× lower bound at 10M | {'met' if r <= 1.5 else 'NOT met'}: {r:.2f}× |")
    else:
        hint = ""
        if largest:
            s = sizes[str(largest)]["paths"]
            hint = (f" (at N={largest:,}: "
                    f"{s['tongban']['median_seconds'] / s['lower_bound']['median_seconds']:.1f}×)")
        rows.append(f"| tongban ≤ 1.5× lower bound at 10M | not yet measured{hint} |")
    measured = [(int(k), v) for k, v in sizes.items() if "pandas_gx" in v["paths"] and "tongban" in v["paths"]]
    if measured:
        parts = [f"N={k:,}: {v['paths']['pandas_gx']['median_seconds'] / v['paths']['tongban']['median_seconds']:.2f}×"
                 for k, v in sorted(measured)]
        ok = all(v["paths"]["pandas_gx"]["median_seconds"] >= 5 * v["paths"]["tongban"]["median_seconds"]
                 for _, v in measured)
        if big and "tongban" in big["paths"] and "pandas_gx" not in big["paths"]:
            guess = _pandas_estimate(sizes, 10_000_000)
            if guess:
                r = guess[0] / big["paths"]["tongban"]["median_seconds"]
                parts.append(f"N=10,000,000: ≈{r:.2f}× on an extrapolated pandas + GX")
                ok = ok and r >= 5
        rows.append(f"| tongban ≥ 5× faster than pandas + GX | {'met' if ok else 'NOT met'} "
                    f"(pandas+GX / tongban: {', '.join(parts)}) |")
    else:
        rows.append("| tongban ≥ 5× faster than pandas + GX | not yet measured |")
    rss = [(int(k), v["paths"]["tongban"]["max_peak_rss_bytes"]) for k, v in sizes.items() if "tongban" in v["paths"]]
    if rss:
        parts = ", ".join(f"N={k:,}: {_mib(b)}" for k, b in sorted(rss))
        over = [k for k, b in sorted(rss) if b > 2 * 2**30]
        if big:
            status = "met" if not over else "NOT met"
        else:
            status = f"not yet measured at 10M; above 2 GiB already at N={over[0]:,}" if over else \
                "not yet measured at 10M"
        rows.append(f"| peak RSS ≤ 2 GB at 10M and flat in N | {status} (tongban peak: {parts}) |")
    one, province = [], []
    for k, v in sizes.items():
        if "tongban" not in v["paths"]:
            continue
        rr = _reruns_of(v)
        if "delivery" in rr:
            one.append((int(k), rr["delivery"]["median_seconds"] / v["paths"]["tongban"]["median_seconds"]))
        elif "province" in rr:
            province.append((int(k), rr["province"]["median_seconds"] / v["paths"]["tongban"]["median_seconds"]))
    if one:
        parts = ", ".join(f"N={k:,}: {r:.0%}" for k, r in sorted(one))
        ok = all(r <= 0.10 for _, r in one)
        rows.append(f"| re-run with one changed delivery ≤ 10% of a full run | {'met' if ok else 'NOT met'} "
                    f"({parts}; one delivery is 12.5% of the rows) |")
    elif province:
        parts = ", ".join(f"N={k:,}: {r:.0%}" for k, r in sorted(province))
        rows.append("| re-run with one changed delivery ≤ 10% of a full run | not yet measured with one delivery; "
                    f"NOT met with one province (two deliveries) re-delivered ({parts}) |")
    else:
        rows.append("| re-run with one changed delivery ≤ 10% of a full run | not yet measured |")
    dag = results.get("dag_parse")
    if dag:
        t = dag["median_dagbag_seconds"]
        rows.append(f"| DAG parse < 1 s | {'met' if t < 1 else 'NOT met'}: {t:.3f} s |")
    else:
        rows.append("| DAG parse < 1 s | not yet measured |")
    gate = (dag or {}).get("median_gate_import_seconds")
    if gate is not None:
        rows.append(f"| `import tongban.steps.gate` < 0.2 s (GX only when a gate runs) | "
                    f"{'met' if gate < 0.2 else 'NOT met'}: {gate:.3f} s |")
    else:
        rows.append("| `import tongban.steps.gate` < 0.2 s (GX only when a gate runs) | not yet measured |")
    return rows


def render(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    lines = [DOC_BEGIN, "", "### Machine", "",
             f"- CPU: {m.get('cpu', '?')}, {m.get('cores', '?')} cores; memory {m.get('memory_bytes', 0) / 2**30:.1f} GiB",
             f"- Python {m.get('python', '?')}, DuckDB {m.get('duckdb', '?')}, Linux {m.get('kernel', '?')}",
             "", "### Targets (issue 15)", "", *issue15_rows(results), "",
             "### Targets (issue 5)", "", *_target_rows(results), "", "### Targets (issue 16)", "",
             *issue16_rows(results), "", *small_rows(results), *serve_rows(results)]
    sizes = results.get("sizes", {})
    wanted = [1_000_000, 5_000_000, 10_000_000]
    for key in sorted(sizes, key=int):
        s = sizes[key]
        n = int(key)
        p = s["paths"]
        tb = p.get("tongban", {}).get("median_seconds")
        lb = p.get("lower_bound", {}).get("median_seconds")
        parts = s.get("xlsx_parts", 1)
        parts_note = (f"; 安徽 delivers each entity in {parts} XLSX parts of ≤ {s['xlsx_max_rows']:,} rows"
                      if parts > 1 else "")
        lines += [f"### N = {n:,} rows ({s['rows_per_delivery']:,} per delivery × {DELIVERIES}{parts_note})", "",
                  f"Measured {s['measured_at']} at commit `{s.get('commit', '?')}`, {s['repeat']} run(s) per path, "
                  f"medians. Command:", "", "```sh", s.get("command", "?"), "```", "",
                  "| path | median wall | min – max | peak RSS (median / max) | rows published | ratio |",
                  "|---|---:|---:|---:|---:|---|"]
        for name in ALL_PATHS:
            if name not in p:
                if name in s.get("skipped", {}):
                    est = ""
                    guess = _pandas_estimate(sizes, n)
                    if guess:
                        est = f" — extrapolated ≈ {_s(guess[0])} ({guess[1]})"
                        if "tongban" in p:
                            est += f"; pandas+GX / tongban ≈ {guess[0] / p['tongban']['median_seconds']:.1f}×"
                    lines.append(f"| {name} | — | — | — | — | {s['skipped'][name]}{est} |")
                continue
            r = p[name]
            published = sum(v["published"] for v in (r.get("rows") or {}).values())
            ratio = ""
            if name == "tongban":
                ratio = f"tongban / lower bound: {_ratio(tb, lb)}"
            elif name == "pandas_gx":
                ratio = f"pandas+GX / tongban: {_ratio(r['median_seconds'], tb)}"
            elif name == SPARK_PATH:
                start = (r.get("median_stages") or {}).get("spark_start")
                ratio = (f"Spark / DuckDB: {_ratio(r['median_seconds'], tb)}"
                         + (f"; of it {_s(start)} fixed: starting the local Spark" if start is not None else ""))
            lines.append(f"| {name} | {_s(r['median_seconds'])} | {_s(r['min_seconds'])} – {_s(r['max_seconds'])} | "
                         f"{_mib(r['median_peak_rss_bytes'])} / {_mib(r['max_peak_rss_bytes'])} | {published:,} | {ratio} |")
        reruns = _reruns_of(s)
        for rr in reruns.values():
            share = _pct(rr["changed_share"])
            lines.append(f"| tongban re-run: {rr['label']} ({share} of the rows changed) | {_s(rr['median_seconds'])} | "
                         f"{_s(rr['min_seconds'])} – {_s(rr['max_seconds'])} | {_mib(rr['median_peak_rss_bytes'])} / "
                         f"{_mib(rr['max_peak_rss_bytes'])} | | re-run / full run: {_ratio(rr['median_seconds'], tb)} "
                         f"(a re-run proportional to the changed rows: {share}) |")
        lines.append("")
        carried = {name: p[name]["carried_over"] for name in ALL_PATHS if name in p and p[name].get("carried_over")}
        carried.update({f"re-run ({k})": v["carried_over"] for k, v in reruns.items() if v.get("carried_over")})
        for name, origin in carried.items():
            lines.append(f"`{name}`: not run this time; its figures are from {origin.get('measured_at', '?')} at "
                         f"commit `{origin.get('commit', '?')}` (`{origin.get('command', '?')}`).")
            lines.append("")
        for name in ALL_PATHS:
            if name in p and p[name].get("median_stages"):
                st = p[name]["median_stages"]
                shown = {k: v for k, v in st.items() if "." not in k}
                total = p[name]["median_seconds"]
                lines.append(f"Stages of `{name}` (median seconds; the rest of the wall time is interpreter start "
                             f"and process exit): " + ", ".join(f"{k} {v:.2f} ({v / total:.0%})" for k, v in shown.items()))
                lines.append("")
        if "tongban" in p and "intake" in p["tongban"]["median_stages"]:
            st = p["tongban"]["median_stages"]
            per = [(k.split(".", 1)[1], v) for k, v in st.items() if k.startswith("intake.")]
            lines.append("tongban intake per delivery (median s): " + ", ".join(f"{k} {v:.2f}" for k, v in per))
            lines.append("")
            if st.get("early.checked_models"):
                lines.append(f"Within intake, once the DuckDB lane was done, it built its deliveries' checked tables "
                             f"while the XLSX lane still read (`intake_all(check_early=True)`): "
                             f"{st['early.checked_models']:.0f} tables in {st['early.checked_seconds']:.2f} s "
                             f"(median); `transform` found them up to date.")
                lines.append("")
        if "tongban" in p and reruns:
            lines += _rerun_stage_table(p["tongban"], reruns)
        same = {name: p[name].get("same_as_tongban") for name in ALL_PATHS if name in p and p[name].get("same_as_tongban")}
        for name, cmp in same.items():
            ok = all(v and v.get("only_tongban") == 0 and v.get("only_other") == 0 for v in cmp.values())
            detail = "; ".join(f"{e}: {v}" for e, v in cmp.items())
            lines.append(f"Published rows of `{name}` vs tongban's (every column but run_id): "
                         + ("identical." if ok else f"DIFFERENT — {detail}."))
            lines.append("")
        rows = {name: p[name].get("rows") for name in ALL_PATHS if name in p and p[name].get("rows")}
        if rows:
            lines.append("| rows per entity: delivered / published / quarantined | " + " | ".join(rows) + " |")
            lines.append("|---|" + "---|" * len(rows))
            for e in ENTITIES:
                cells = [f"{r[e]['delivered']:,} / {r[e]['published']:,} / {r[e]['quarantined']:,}" if e in r else "—"
                         for r in rows.values()]
                lines.append(f"| {e} | " + " | ".join(cells) + " |")
            lines.append("")
    missing = [n for n in wanted if str(n) not in sizes]
    if missing:
        lines += ["### Not yet measured", "",
                  "N = " + ", ".join(f"{n:,}" for n in missing) + " rows: not yet measured"
                  + (f" (at 10M each 安徽 delivery has {rows_per_delivery(10_000_000):,} rows, written and read as "
                     f"{xlsx_parts(10_000_000)} XLSX parts)" if 10_000_000 in missing else "") + ".", ""]
    dag = results.get("dag_parse")
    if dag:
        lines += ["### DAG file parse", "",
                  f"`DagBag(dags/)` with Airflow already imported (as in the DAG processor): median "
                  f"{dag['median_dagbag_seconds']:.3f} s over {len(dag['runs'])} runs (importing `airflow.sdk` "
                  f"first: {dag['median_airflow_import_seconds']:.1f} s, not counted). Command: `{dag.get('command', '?')}`",
                  ""]
        if "median_gate_import_seconds" in dag:
            lines += [f"`import tongban.steps.gate` in a fresh interpreter: median {dag['median_gate_import_seconds']:.3f} s "
                      "(great_expectations is imported only when a gate runs).", ""]
    lines.append(DOC_END)
    return "\n".join(lines)


def _pct(share: float) -> str:
    return f"{share * 100:.3g}%"


def _rerun_stage_table(full: dict[str, Any], reruns: dict[str, dict[str, Any]]) -> list[str]:
    """Median stage seconds of the full tongban run beside each re-run's: where a re-run still
    spends the time of a full run."""
    stages = [k for k in full.get("median_stages", {}) if "." not in k]
    for rr in reruns.values():
        stages += [k for k in rr.get("median_stages", {}) if "." not in k and k not in stages]
    head = "| stage (median s) | full run | " + " | ".join(f"re-run: {rr['label']}" for rr in reruns.values()) + " |"
    lines = ["Stages of the tongban re-runs beside the full run's (each re-run starts from the state the full run "
             "left; the deliveries not re-delivered are byte for byte the same):", "", head,
             "|---|" + "---:|" * (1 + len(reruns))]
    changed_rows = [f"{rr['rows_changed']:,} of {rr['rows_total']:,} ({_pct(rr['changed_share'])})"
                    if "rows_changed" in rr else _pct(rr["changed_share"]) for rr in reruns.values()]
    lines.append("| rows re-delivered | — | " + " | ".join(changed_rows) + " |")
    for k in stages:
        cells = [full.get("median_stages", {}).get(k)] + [rr.get("median_stages", {}).get(k) for rr in reruns.values()]
        lines.append(f"| {k} | " + " | ".join("—" if v is None else f"{v:.2f}" for v in cells) + " |")
    unchanged = []
    for rr in reruns.values():
        st = rr.get("median_stages", {})
        changed = {f"intake.{c}" for c in rr.get("changed", [])}
        per = [v for k, v in st.items() if k.startswith("intake.") and k not in changed]
        unchanged.append(f"{sum(per):.2f}" if per else "—")
    lines.append("| intake of the deliveries not re-delivered | — | " + " | ".join(unchanged) + " |")
    walls = [full["median_seconds"]] + [rr["median_seconds"] for rr in reruns.values()]
    lines.append("| wall (process start to exit) | " + f"{walls[0]:.2f} | "
                 + " | ".join(f"{w:.2f} ({w / walls[0]:.0%})" for w in walls[1:]) + " |")
    lines.append("")
    return lines


def _pandas_estimate(sizes: dict[str, Any], n: int) -> tuple[float, str] | None:
    """pandas + GX's seconds at ``n`` rows, extrapolated linearly, and how: through its two
    largest measured sizes when it ran at two; else its start-up (the ``import`` and ``prepare``
    stages, paid once) plus the rest scaled from the largest N it ran."""
    ran = sorted((int(k), v["paths"]["pandas_gx"]) for k, v in sizes.items() if "pandas_gx" in v["paths"])
    if not ran:
        return None
    if len(ran) >= 2:
        (n0, a), (n1, b) = ran[-2], ran[-1]
        slope = (b["median_seconds"] - a["median_seconds"]) / (n1 - n0)
        return b["median_seconds"] + slope * (n - n1), f"the line through N={n0:,} and N={n1:,}"
    n1, b = ran[-1]
    fixed = sum(b.get("median_stages", {}).get(k, 0.0) for k in ("import", "prepare"))
    return fixed + (b["median_seconds"] - fixed) * n / n1, \
        f"start-up {fixed:.1f} s + the rest scaled from N={n1:,}"


def write_doc(doc: Path, results: dict[str, Any]) -> None:
    block = render(results)
    text = doc.read_text(encoding="utf-8") if doc.is_file() else _DOC_SKELETON
    if DOC_BEGIN in text and DOC_END in text:
        head, rest = text.split(DOC_BEGIN, 1)
        tail = rest.split(DOC_END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")


_DOC_SKELETON = """# Benchmarks

`make bench` (see `bench/harness.py`). The section between the markers is generated from
`build/bench/results.json`.

"""


# ------------------------------------------------------------------------------------------ profiling


def explain_top(warehouse: Path, sql_path: Path, top: int = 12) -> str:
    """``EXPLAIN (ANALYZE, FORMAT json)`` of a compiled dbt model (``build/dbt/target/compiled/...``)
    run as ``CREATE TABLE`` against a *copy* of the warehouse: the slowest operators, CPU time
    and DuckDB's peak buffer memory."""
    import duckdb


    con = duckdb.connect()
    try:
        con.execute(f"attach {quote_literal(str(warehouse))} as warehouse")  # the name dbt compiled in
        con.execute("use warehouse")
        con.execute("create schema if not exists bench_explain")
        t0 = time.perf_counter()
        res = con.execute("explain (analyze, format json) create or replace table bench_explain.t as "
                          + sql_path.read_text(encoding="utf-8")).fetchall()
        wall = time.perf_counter() - t0
    finally:
        con.close()
    plan = json.loads(res[0][1])
    plan = plan[0] if isinstance(plan, list) else plan
    ops: list[tuple[float, str, Any, str]] = []

    def walk(node: dict[str, Any]) -> None:
        info = node.get("extra_info") or {}
        detail = ""
        for key in ("Projections", "Conditions", "Condition", "Function", "Table", "Aggregates"):
            if key in info:
                value = info[key]
                detail = f"{key}: " + ("; ".join(value) if isinstance(value, list) else str(value))
                break
        ops.append((node.get("timing", 0.0), node.get("type", "?"), node.get("intermediate_rows"), detail[:160]))
        for child in node.get("children", []):
            walk(child)

    for node in plan.get("operator", []):
        walk(node)
    system = plan.get("system", {})
    lines = [f"{sql_path.name}: wall {wall:.2f} s, CPU {plan.get('query', {}).get('cpu_time', 0):.2f} s, "
             f"peak buffer memory {system.get('peak_buffer_memory', 0) / 2**20:,.0f} MiB, "
             f"allocated {system.get('total_memory_allocated', 0) / 2**20:,.0f} MiB"]
    for timing, kind, rows, detail in sorted(ops, key=lambda o: -o[0])[:top]:
        lines.append(f"  {timing:6.2f} s  {kind:<16} rows={rows}  {detail}")
    return "\n".join(lines)
