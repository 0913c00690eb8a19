"""Conserve: for every delivery, rows delivered = rows harmonized + rows quarantined, counted in
the warehouse itself (DESIGN: conservation). A violation stops the run before publish."""

from __future__ import annotations

from tongban.common.config import Settings
from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.steps.results import Conservation, DeliveryCounts, Landed


class ConservationError(RuntimeError):
    """Rows delivered != rows published + rows quarantined for some delivery."""

    exit_code = 5


def check_conservation(s: Settings, intakes: list[Landed]) -> Conservation:
    import duckdb  # heavy enough to keep lazy

    con = duckdb.connect(str(s.warehouse_path), read_only=True)
    per: dict[str, DeliveryCounts] = {}
    violations = []
    try:
        for i in intakes:
            if i.status != "landed":
                per[i.key] = DeliveryCounts(delivered=i.rows_delivered, harmonized=0, quarantined=i.rows_delivered)
                continue
            raw = con.execute(f"select count(*) from read_parquet({quote_literal(i.raw_path)})").fetchone()[0]
            harmonized = con.execute(f"select count(*) from harmonized.{quote_ident(i.entity)} where source_id = ?",
                                     [i.source_id]).fetchone()[0]
            rejected = con.execute(f"select count(*) from harmonized.{quote_ident(i.entity + '__rejections')} "
                                   f"where source_id = ?", [i.source_id]).fetchone()[0]
            per[i.key] = DeliveryCounts(delivered=i.rows_delivered, harmonized=harmonized, quarantined=rejected)
            if not (i.rows_delivered == raw == harmonized + rejected):
                violations.append(f"{i.key}: delivered {i.rows_delivered}, landed {raw}, "
                                  f"harmonized {harmonized} + quarantined {rejected} = {harmonized + rejected}")
    finally:
        con.close()
    if violations:
        raise ConservationError("conservation violated — rows were lost or invented:\n" + "\n".join(violations))
    return Conservation(ok=True, per_delivery=per)
