"""谁产生、谁提供、谁负责: rejected rows go back to the province that produced them, in its own
column names and original values, with the reasons. One CSV per province per run:
``feedback/<source_id>/<run_id>__<entity>.csv``. A province's file never holds another province's rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tongban.config import Settings
from tongban.sqlquote import quote_ident, quote_literal


def write_feedback(s: Settings, run_id: str, intakes: list[dict[str, Any]]) -> list[str]:
    import duckdb

    from tongban.standards.dbtgen import quote_source_column
    from tongban.standards.generate import load_checked

    std = load_checked(s.standards_dir)
    written: list[str] = []
    con = duckdb.connect(str(s.warehouse_path), read_only=True)
    try:
        for i in intakes:
            source_id, entity = i["source_id"], i["entity"]
            m = std.mapping(source_id, entity)
            out_dir = s.feedback_dir / source_id
            out = out_dir / f"{run_id}__{entity}.csv"
            cols = ", ".join(f"raw.{quote_source_column(c.name)}" for c in m.delivery.columns)
            if i["status"] == "landed":
                rej = f"harmonized.{quote_ident(entity + '__rejections')}"
                n = con.execute(f"select count(*) from {rej} where source_id = ?", [source_id]).fetchone()[0]
                if n == 0:
                    continue
                sql = (f"select rej.source_row_number as tongban_row_number, {cols}, "
                       f"array_to_string(rej.reason_codes, ';') as tongban_reasons, "
                       f"array_to_string(list_transform(rej.reasons, lambda r: r.reason || ':' || r.field || "
                       f"coalesce('=' || r.value, '')), '; ') as tongban_details "
                       f"from {rej} as rej join read_parquet({quote_literal(i['raw_path'])}) as raw "
                       f"on raw.source_row_number = rej.source_row_number "
                       f"where rej.source_id = {quote_literal(source_id)} order by rej.source_row_number")
            elif i["status"] == "rejected" and i["rows_delivered"]:
                sql = _whole_delivery_sql(con, m, i)
            else:
                continue
            out_dir.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".csv.tmp")
            con.execute(f"copy ({sql}) to {quote_literal(str(tmp))} (header, delimiter ',')")
            tmp.replace(out)
            written.append(str(out))
    finally:
        con.close()
    return written


def _whole_delivery_sql(con, m, i: dict[str, Any]) -> str:
    """A delivery rejected whole goes back whole, each row with the delivery's reason."""
    from tongban.intake.readers import read_delivery
    from tongban.standards.dbtgen import quote_source_column

    frame = read_delivery(Path(i["delivery_file"]), m.delivery.format, sheet=m.delivery.sheet).frame
    present = [c for c in m.delivery.columns if c.name in frame.columns]
    con.register("rejected_delivery", frame.assign(source_row_number=range(1, len(frame) + 1)))
    cols = ", ".join(f"raw.{quote_source_column(c.name)}" for c in present)
    reason = "delivery_rejected:missing_column=" + ",".join(i.get("missing_columns") or []) \
        if i.get("missing_columns") else "delivery_rejected"
    return (f"select raw.source_row_number as tongban_row_number, {cols}, 'delivery_rejected' as tongban_reasons, "
            f"{quote_literal(reason)} as tongban_details from rejected_delivery as raw order by 1")
