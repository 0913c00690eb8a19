"""Conserve: for every delivery, rows delivered = rows harmonized + rows quarantined, counted in
the warehouse itself (DESIGN: conservation). A violation stops the run before publish.

Then each landed delivery against its gate thresholds (the committee's, tongban.standards.gate): one
over a limit is held — its harmonized rows are counted as held, not published, and publish keeps
the source's previous publication instead. Held rows are delivered rows accounted for, not lost:
delivered = published + held + quarantined.
"""

from __future__ import annotations

from tongban.common.config import Settings
from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.standards.gate import breaches
from tongban.steps.loaded import standards
from tongban.steps.results import Conservation, DeliveryCounts, Landed


class ConservationError(RuntimeError):
    """Rows delivered != rows published + rows quarantined for some delivery."""

    exit_code = 5


def check_conservation(s: Settings, intakes: list[Landed]) -> Conservation:
    import duckdb  # heavy enough to keep lazy

    std = standards(s)
    con = duckdb.connect(str(s.warehouse_path), read_only=True)
    per: dict[str, DeliveryCounts] = {}
    violations = []
    try:
        for i in intakes:
            if i.status != "landed":
                per[i.key] = DeliveryCounts(delivered=i.rows_delivered, harmonized=0, quarantined=i.rows_delivered)
                continue
            rej = f"harmonized.{quote_ident(i.entity + '__rejections')}"
            raw = con.execute(f"select count(*) from read_parquet({quote_literal(i.raw_path)})").fetchone()[0]
            harmonized = con.execute(f"select count(*) from harmonized.{quote_ident(i.entity)} where source_id = ?",
                                     [i.source_id]).fetchone()[0]
            rejected = con.execute(f"select count(*) from {rej} where source_id = ?", [i.source_id]).fetchone()[0]
            by_reason = dict(con.execute(
                f"select r, count(*) from (select unnest(list_distinct(reason_codes)) as r from {rej} "
                f"where source_id = ?) group by 1 order by 1", [i.source_id]).fetchall()) if rejected else {}
            counts = DeliveryCounts(delivered=i.rows_delivered, harmonized=harmonized, quarantined=rejected,
                                    by_reason=by_reason or None)
            over = breaches(std, i.entity, i.source_id, i.rows_delivered or 0, rejected, by_reason)
            if over:
                counts.held, counts.held_reason = harmonized, "; ".join(str(b) for b in over)
            per[i.key] = counts
            if not (i.rows_delivered == raw == harmonized + rejected):
                violations.append(f"{i.key}: delivered {i.rows_delivered}, landed {raw}, "
                                  f"harmonized {harmonized} + quarantined {rejected} = {harmonized + rejected}")
    finally:
        con.close()
    if violations:
        raise ConservationError("conservation violated — rows were lost or invented:\n" + "\n".join(violations))
    return Conservation(ok=True, per_delivery=per)


def held_deliveries(conservation: Conservation) -> dict[str, str]:
    """``source/entity`` -> why, for each delivery held by a gate threshold."""
    return {key: c.held_reason for key, c in conservation.per_delivery.items() if c.held_reason}
