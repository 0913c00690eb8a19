"""Issue 15's targets, read from ``results.json``: tongban against the lower bound at 1M and 10M
rows, a one-delivery re-run against its share of the rows, the 1,000-row single delivery warm,
and peak memory at 10M. Each row says met / NOT met / not yet measured, with the figure."""

from __future__ import annotations

from typing import Any

from bench.small import PHASES

SMALL_TARGET_SECONDS = 6.0
RATIO_TARGET = 1.5
RERUN_SLACK = 0.05
MEMORY_TARGET_BYTES = 2 * 10**9
#: issue 16: a keyed lookup of the served exchange on this 2-core machine
SERVE_TARGET_P99_MS = 50.0


def _ratio_row(sizes: dict[str, Any], n: int) -> str:
    s = sizes.get(str(n))
    label = f"tongban ≤ {RATIO_TARGET}× the lower bound at {n // 1_000_000}M rows"
    if not s or not {"tongban", "lower_bound"} <= set(s["paths"]):
        return f"| {label} | not yet measured |"
    r = s["paths"]["tongban"]["median_seconds"] / s["paths"]["lower_bound"]["median_seconds"]
    return f"| {label} | {'met' if r <= RATIO_TARGET else 'NOT met'}: {r:.2f}× |"


def _rerun_row(sizes: dict[str, Any]) -> str:
    label = "one changed delivery re-run ≤ its share of the rows + 5 points"
    found = []
    for k, v in sorted(sizes.items(), key=lambda kv: int(kv[0])):
        rr = (v.get("reruns") or {}).get("delivery")
        full = v["paths"].get("tongban")
        if rr and full and "median_seconds" in rr:
            found.append((int(k), rr["median_seconds"] / full["median_seconds"], rr["changed_share"]))
    if not found:
        return f"| {label} | not yet measured |"
    ok = all(r <= share + RERUN_SLACK for _, r, share in found)
    parts = ", ".join(f"N={k:,}: {r:.0%} for {share:.1%} of the rows" for k, r, share in found)
    return f"| {label} | {'met' if ok else 'NOT met'} ({parts}) |"


def _small_row(small: dict[str, Any] | None) -> str:
    label = f"a 1,000-row single delivery, warm, end to end ≤ {SMALL_TARGET_SECONDS:.0f} s"
    if not small:
        return f"| {label} | not yet measured |"
    t = small["changed"]["median_seconds"]
    return (f"| {label} | {'met' if t <= SMALL_TARGET_SECONDS else 'NOT met'}: {t:.2f} s re-delivered, "
            f"{small['unchanged']['median_seconds']:.2f} s unchanged, {small['cold']['median_seconds']:.2f} s cold |")


def _memory_row(sizes: dict[str, Any]) -> str:
    label = "peak memory ≤ 2 GB at 10M rows"
    s = sizes.get(str(10_000_000))
    if not s or "tongban" not in s["paths"]:
        return f"| {label} | not yet measured |"
    b = s["paths"]["tongban"]["max_peak_rss_bytes"]
    return f"| {label} | {'met' if b <= MEMORY_TARGET_BYTES else 'NOT met'}: {b / 10**9:.2f} GB |"


def issue15_rows(results: dict[str, Any]) -> list[str]:
    sizes = results.get("sizes", {})
    return ["| target | status |", "|---|---|", _ratio_row(sizes, 1_000_000), _ratio_row(sizes, 10_000_000),
            _rerun_row(sizes), _small_row(results.get("small")), _memory_row(sizes)]


def small_rows(results: dict[str, Any]) -> list[str]:
    small = results.get("small")
    if not small:
        return []
    lines = [f"### A 1,000-row single delivery, end to end (`{small['command']}`)", "",
             f"Measured {small.get('measured_at', '?')} at commit `{small.get('commit', '?')}`, "
             f"{small['repeat']} run(s), medians; each a fresh `tongban` process.", "",
             "| phase | median wall | min – max | peak RSS |", "|---|---:|---:|---:|"]
    for p in PHASES:
        s = small[p]
        lines.append(f"| {p} | {s['median_seconds']:.2f} s | {s['min_seconds']:.2f} – {s['max_seconds']:.2f} s "
                     f"| {s['median_peak_rss_bytes'] / 2**20:.0f} MiB |")
    return lines + [""]


def issue16_rows(results: dict[str, Any]) -> list[str]:
    """Issue 16's target for the served exchange: a keyed lookup's p99 under 50 ms on this machine."""
    label = f"keyed lookup over HTTP, p99 < {SERVE_TARGET_P99_MS:.0f} ms"
    s = results.get("serve")
    if not s:
        return ["| target | status |", "|---|---|", f"| {label} | not yet measured |"]
    seq, con = s["sequential"]["key"]["p99_ms"], s["concurrent"]["key"]["p99_ms"]
    return ["| target | status |", "|---|---|",
            f"| {label}, one client | {'met' if seq < SERVE_TARGET_P99_MS else 'NOT met'}: {seq:.1f} ms "
            f"(DuckDB in process: {s['duckdb']['key']['p99_ms']:.1f} ms) |",
            f"| {label}, {s['clients']} concurrent clients | {'met' if con < SERVE_TARGET_P99_MS else 'NOT met'}: "
            f"{con:.1f} ms |"]
