"""The lower bound of ``make bench``: one hand-written DuckDB job over the same deliveries.

What it does, per entity, in one in-memory DuckDB connection:

1. **Read each delivery once**, every column as text, with its 1-based row ordinal
   (``WITH ORDINALITY``) and the same provenance columns intake lands:
   UTF-8 CSV through ``read_csv(all_varchar)``; the GBK CSV is first transcoded to a temporary
   UTF-8 file, streaming, in Python (DuckDB 2.0 here has no encodings extension); JSON Lines
   through ``read_json(format='newline_delimited')`` with every declared column typed VARCHAR
   (numbers and arrays arrive as their JSON text, as intake's reader gives them); **XLSX cannot be
   read by DuckDB here** (no excel extension): fastexcel reads each sheet into Arrow, which DuckDB
   inserts with intake's cell-to-text SQL (intake's own reader, :mod:`tongban.steps.intake.xlsx`).
   A delivery in several parts (``delivery.file`` a glob, e.g. ``ah/births*.xlsx``: an XLSX sheet
   holds 1,048,575 data rows) is found and ordered as intake does
   (:func:`tongban.common.parts.find_parts`) and read part after part, its row ordinals
   continuing across the parts. Every delivery is hashed (SHA-256 of its one file, or intake's
   combined digest of its parts: the ``delivery_sha256`` provenance column). All of this is
   inside the measured time. The XLSX deliveries load in a second thread (one after another,
   from the start) while DuckDB works through the other deliveries, as tongban's intake keeps
   its XLSX lane beside its DuckDB lane (:func:`tongban.pipeline.intake_all`).
2. **Apply the same mappings and row checks**: the SQL is tongban's own generated SQL
   (:func:`tongban.standards.targets.dbt.staging_sql` per delivery, :func:`~tongban.standards.targets.dbt.unioned_sql`
   per entity: renames, parsing, crosswalks and code lookups, the validator macros, required
   fields, ranges, dates in the future, unique values, duplicate keys, cross-field rules), with
   its few Jinja calls (``source``, ``ref``, the two lookup macros of ``macros/lookups.sql``)
   rendered here, the validator and masking macros created from ``macros/*.sql`` over the
   reference tables, and the crosswalks and code lists loaded from ``standards/``. Writing
   this SQL by hand would give the same plan; generating it costs well under a second and is
   measured (stage ``prepare``).
3. **Write the same Parquet**: per entity the published rows with every personal-data field as
   ``<field>_pseudonym`` (keyed HMAC, :func:`tongban.common.pii.pseudonym_sql`) and ``<field>_masked``
   (the Python UDF of :func:`tongban.common.pii.register_udfs`, as publish does: here it is ~10× faster
   than the SQL macro ``tongban_mask``), at its position, as the exchange publishes them; the
   rejections (source key and reasons); and the entity's dashboard marts.

What it leaves out (tongban does these; they are part of the ratio): pandera's delivery-shape
checks, the raw Parquet landing, dbt (parsing the project, seeds, the run's bookkeeping, the
data tests), the GX gate (it re-checks what the row rules already guarantee), the conservation
count, snapshot versioning and manifests, the catalog rebuild, the data dictionary, run
records and the per-province feedback CSVs. Encoding detection is reduced to "strict UTF-8
in the first MiB, else GB18030"; the readers' error messages for broken files do not exist.
"""

from __future__ import annotations

import codecs
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Stages as _Stages
from tongban.common.sqlquote import quote_literal
from tongban.steps.intake.xlsx import open_sheet  # intake's XLSX reader and cell-to-text rule, so the values agree
from tongban.standards.targets.dbt import quote_source_column
from tongban.common.config import PROJECT_ROOT
from tongban.common.pii import mask_sql, pseudonym_sql
from tongban.common.sqlquote import quote_ident
from tongban.common import pii
from tongban.common import validators
from tongban.common.hashing import combined_sha256, sha256_file
from tongban.common.reference import load_reference
from tongban.standards.targets import dbt as dbtgen
from tongban.standards.generate import load_checked
from bench.common import ENTITIES
from tongban.common.config import quiet_third_parties, settings
from tongban.common.parts import find_parts
from tongban.common.pii import pseudonym_key

_CHUNK = 4 * 1024 * 1024
_PADS = "lb_pads"
_UDFS = ("lb_pseudonym", "lb_mask_py")




def _file_list(paths: list[Path]) -> str:
    """A DuckDB reader's file argument: one quoted path, or a list read in this order (the
    ordinality continues across the files)."""

    if len(paths) == 1:
        return quote_literal(str(paths[0]))
    return "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"


def _is_utf8(path: Path) -> bool:
    """Strict UTF-8 over the first MiB (cut at a line end): the lower bound's encoding detection."""
    with path.open("rb") as f:
        head = f.read(1024 * 1024)
    cut = head.rfind(b"\n") + 1 or len(head)
    try:
        head[:cut].decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _transcode(path: Path, out: Path, encoding: str = "gb18030") -> None:
    """Streaming re-encoding to UTF-8 (GB18030 is the superset of GBK)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with path.open("rb") as src, out.open("wb") as dst:
        while chunk := src.read(_CHUNK):
            dst.write(decoder.decode(chunk).encode("utf-8"))
        dst.write(decoder.decode(b"", final=True).encode("utf-8"))


def _load_xlsx(con, paths: list[Path], sheet: str | int | None, table: str) -> list[str]:
    """The first sheet (or ``sheet``) of each part, in order, into ``table`` (every column VARCHAR,
    plus ``ordinality``, continuing across the parts), each sheet read by fastexcel into Arrow and
    inserted by DuckDB with intake's cell-to-text SQL — the reader intake uses, so the lower bound
    is not slowed by an older one. Every part repeats the header of the first. Returns the header."""
    header: list[str] | None = None
    n = 0
    for path in paths:
        part = open_sheet(path, sheet)
        if header is None:
            header = part.columns
            con.execute(f"create table {table} ("
                        + ", ".join(f"{quote_source_column(c)} varchar" for c in header)
                        + ", ordinality bigint)")
        elif part.columns != header:
            raise ValueError(f"{path.name}: header differs from the first part's ({paths[0].name})")
        part.register(con)
        try:
            con.execute(f"insert into {table} select {', '.join(part.texts(header))}, n from {part.source(n)}").fetchall()
            n = con.execute(f"select coalesce(max(ordinality), 0) from {table}").fetchall()[0][0]
        finally:
            part.unregister(con)
    return header or []


def _renderer(ref_map: dict[str, str], source_map: dict[tuple[str, str], str]):
    """Render a generated model: ``ref``/``source`` become relation names here; the lookup macros
    come from ``macros/lookups.sql``."""
    import jinja2


    macros = "\n".join((PROJECT_ROOT / "macros" / name).read_text(encoding="utf-8")
                       for name in ("lookups.sql", "generated/row_rules.sql"))
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.globals["ref"] = lambda name: ref_map[name]
    env.globals["source"] = lambda a, b: source_map[(a, b)]
    env.globals["config"] = lambda **_: ""  # materialisations are chosen here (temporary tables)
    env.globals["var"] = lambda _name, default=None: default
    env.globals["invocation_id"] = "lower-bound"  # checked_build: every table built in one pass here
    env.globals["is_incremental"] = lambda: False  # every table is built whole here

    def render(sql: str) -> str:
        return env.from_string(macros + "\n" + sql).render()

    return render


def _published_select(con, relation: str, pii: dict[str, str]) -> str:
    """``relation`` as the exchange publishes it: each pii column ``c`` -> ``c_pseudonym, c_masked``."""

    items = []
    for (name, _type, *_rest) in con.execute(f"describe select * from {relation}").fetchall():
        kind = pii.get(name)
        if kind is None:
            items.append(quote_ident(name))
            continue
        value = f"cast({quote_ident(name)} as varchar)"
        items.append(f"{pseudonym_sql(kind, value, _PADS, _UDFS[0])} as {quote_ident(name + '_pseudonym')}, "
                     f"{mask_sql(kind, value, _UDFS[1])} as {quote_ident(name + '_masked')}")
    return f"select {', '.join(items)} from {relation} cross join {_PADS}"


def _copy(con, select: str, out: Path) -> int:
    return int(con.execute(f"copy ({select}) to {quote_literal(str(out))} (format parquet, compression zstd)")
               .fetchone()[0])


def run(*, standards_dir: Path, find_parts, out_dir: Path, tmp_dir: Path, reference_dir: Path,
        key: bytes, entities: tuple[str, ...]) -> dict[str, Any]:
    """``find_parts(file)``: the delivery's files in order (:func:`tongban.common.parts.find_parts`
    over the inbox directories)."""
    st = _Stages()
    import duckdb


    st.mark("import")
    std = load_checked(standards_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"set temp_directory = {quote_literal(str(tmp_dir / 'duckdb_tmp'))}")
    load_reference(con, reference_dir)
    con.execute(validators.sql_ddl())
    con.execute(pii.sql_ddl())
    pii.register_udfs(con, key, names=_UDFS)
    pii.create_pads_table(con, _PADS, key)
    for table, text, columns in [
        ("lb_crosswalks", dbtgen.seed_crosswalks_csv(std),
         "{'source_id': 'varchar', 'code_list': 'varchar', 'source_value': 'varchar', 'target_code': 'varchar', "
         "'status': 'varchar', 'line': 'integer'}"),
        ("lb_code_lists", dbtgen.seed_code_lists_csv(std),
         "{'code_list': 'varchar', 'code': 'varchar', 'label_zh': 'varchar', 'label_en': 'varchar'}")]:
        seed = tmp_dir / f"{table}.csv"
        seed.write_text(text, encoding="utf-8")
        con.execute(f"create temp table {table} as select * from read_csv({quote_literal(str(seed))}, "
                    f"header = true, columns = {columns})")
    marts = {p.stem: p.read_text(encoding="utf-8") for p in sorted((PROJECT_ROOT / "models" / "marts").glob("*.sql"))}
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-lb" + secrets.token_hex(2)
    st.mark("prepare")

    # the XLSX lane: every XLSX delivery, one after another, into a table of the shared in-memory
    # database through a connection of its own (a cursor), beside DuckDB's work on the rest
    xlsx_jobs: dict[tuple[str, str], Any] = {}
    lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lb-xlsx")
    cursor = con.cursor()
    for entity in entities:
        for m in std.mappings_for(entity):
            if m.delivery.format == "xlsx":
                paths = [Path(p) for p in find_parts(m.delivery.file)]
                xlsx_jobs[(m.source_id, entity)] = lane.submit(
                    _load_xlsx, cursor, paths, m.delivery.sheet, f"xlsx_{m.source_id}__{entity}")
    lane.shutdown(wait=False)

    def source_view(m, header: list[str], reader: str, sha: str, source_map: dict, ref_map: dict) -> None:
        """The delivery as intake lands it: the declared columns as text, and the provenance."""
        q = dbtgen.quote_source_column
        cols = ", ".join(f"{q(c.name)}::varchar as {q(c.name)}" if c.name in header else f"null::varchar as {q(c.name)}"
                         for c in m.delivery.columns)
        rel = f"src_{m.source_id}__{m.entity}"
        con.execute(f"create temp view {rel} as select {cols}, {quote_literal(m.source_id)} as source_id, "
                    f"{quote_literal(sha)} as delivery_sha256, ordinality::bigint as source_row_number, "
                    f"{quote_literal(run_id)} as run_id from {reader}")
        source_map[(m.source_id, m.entity)] = rel
        ref_map[f"stg_{m.source_id}__{m.entity}"] = f"stg_{m.source_id}__{m.entity}"

    rows: dict[str, dict[str, int]] = {}
    for entity in entities:
        ent = std.entities[entity]
        ref_map = {"crosswalks": "lb_crosswalks", "code_lists": "lb_code_lists", entity: f"{entity}_harmonized"}
        source_map: dict[tuple[str, str], str] = {("reference", t): f"reference.{t}"
                                                  for t in ("gbt2260_current", "gbt4754_classes")}
        # the deliveries DuckDB reads first, the XLSX ones (loading meanwhile) last
        mappings = sorted(std.mappings_for(entity), key=lambda m: m.delivery.format == "xlsx")
        xlsx_sha: dict[str, str] = {}

        for m in mappings:
            paths = [Path(p) for p in find_parts(m.delivery.file)]
            if not paths:
                raise FileNotFoundError(f"{m.source_id}/{entity}: no delivery matches {m.delivery.file!r}")
            sha = combined_sha256([(p.name, sha256_file(p)) for p in paths])
            declared = [c.name for c in m.delivery.columns]
            if m.delivery.format == "xlsx":
                xlsx_sha[m.source_id] = sha  # its view comes once the lane has loaded it (below)
                continue
            elif m.delivery.format == "csv":
                utf8_paths = []
                for k, path in enumerate(paths, start=1):
                    if not _is_utf8(path):
                        utf8 = tmp_dir / f"{m.source_id}__{entity}.{k}.utf8.csv"
                        _transcode(path, utf8)
                        path = utf8
                    utf8_paths.append(path)
                files = _file_list(utf8_paths)
                reader = f"read_csv({files}, all_varchar = true, header = true) with ordinality"
                header = [r[0] for r in con.execute(f"describe select * exclude (ordinality) from {reader}").fetchall()]
            else:  # JSON Lines
                struct = ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in declared)
                reader = (f"read_json({_file_list(paths)}, format = 'newline_delimited', "
                          f"columns = {{{struct}}}) with ordinality")
                header = declared
            source_view(m, header, reader, sha, source_map, ref_map)
        st.mark("deliveries")  # hashing, GBK transcoding (the XLSX loading runs in its lane)
        render = _renderer(ref_map, source_map)
        for m in mappings:
            if m.delivery.format == "xlsx":
                st.mark("read_map_check")
                header = xlsx_jobs[(m.source_id, entity)].result()  # the table is there
                st.mark("xlsx_wait")  # the time the XLSX lane was behind DuckDB
                source_view(m, header, f"xlsx_{m.source_id}__{entity}", xlsx_sha[m.source_id], source_map, ref_map)
            con.execute(f"create temp view stg_{m.source_id}__{entity} as {render(dbtgen.staging_sql(std, m))}")
            checked = dbtgen.checked_model(m)  # the mapping and the row rules, once per delivery
            ref_map[checked] = checked
            con.execute(f"create temp table {checked} as {render(dbtgen.checked_sql(std, m))}")
        duplicates = f"int_{entity}__duplicates"
        ref_map[duplicates] = duplicates
        con.execute(f"create temp table {duplicates} as {render(dbtgen.duplicates_sql(std, ent))}")
        unioned = f"int_{entity}__unioned"
        ref_map[unioned] = unioned
        con.execute(f"create temp table {unioned} as {render(dbtgen.unioned_sql(std, ent))}")
        st.mark("read_map_check")  # the CSV/JSON reads happen here, inside the one query
        con.execute(f"create temp view {entity}_harmonized as {render(dbtgen.harmonized_sql(std, ent))}")
        published = _copy(con, _published_select(con, f"{entity}_harmonized", ent.pii),
                          out_dir / f"{entity}.parquet")
        quarantined = _copy(con, render(dbtgen.rejections_sql(std, ent)), out_dir / f"{entity}__rejections.parquet")
        for name, sql in marts.items():
            if f"ref('{entity}')" in sql:
                _copy(con, render(sql), out_dir / f"{name}.parquet")
        delivered = con.execute(f"select count(*) from {quote_ident(unioned)}").fetchone()[0]
        rows[entity] = {"delivered": int(delivered), "published": published, "quarantined": quarantined}
        for table in [unioned, duplicates, *(dbtgen.checked_model(m) for m in std.mappings_for(entity))]:
            con.execute(f"drop table {table}")
        st.mark("write")
    con.close()
    return {"stages": st.seconds, "rows": rows}


def run_from_env() -> dict[str, Any]:
    """Run with tongban's settings (the bench harness sets the directories per run)."""

    quiet_third_parties()
    s = settings()
    return run(standards_dir=s.standards_dir, find_parts=lambda file: find_parts(s.inbox_dirs, file),
               out_dir=s.exchange_dir, tmp_dir=s.build_dir / "lower_bound", reference_dir=s.reference_dir,
               key=pseudonym_key(s.build_dir), entities=ENTITIES)


if __name__ == "__main__":  # pragma: no cover - a quick manual run
    import json

    os.environ.setdefault("TONGBAN_PSEUDONYM_KEY", "b3" * 32)
    print(json.dumps(run_from_env(), indent=2))
