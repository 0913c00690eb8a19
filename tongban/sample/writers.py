"""Byte-deterministic writers of the synthetic deliveries (CSV, JSON lines, XLSX written directly)
and the description of what was written.

Nothing here depends on ``hash()``, the current date or the wall clock: the same rows give
byte-identical files.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import math
import os
import re
import shutil
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

from tongban.sample.common import PROVINCES, KeyRow, Province

# --------------------------------------------------------------------------------------------
# writers: every one streams (rows are consumed one by one and written through a buffer), so a
# delivery of millions of rows needs no more memory than its generator's state (and, for XLSX,
# the part's shared-string table); each file is written beside its final name and renamed.

_BUFFER = 1 << 20

#: an XLSX sheet holds 1,048,576 rows, one of them the header: a larger XLSX delivery is written
#: in parts ``<name>-1.xlsx``, ``<name>-2.xlsx``, ... (rows in order, numbered across the parts)
XLSX_MAX_ROWS = 1_048_575
#: a smaller part size (tests, small dry runs); the ``xlsx_max_rows`` keyword takes precedence
XLSX_MAX_ROWS_ENV = "TONGBAN_SAMPLE_XLSX_MAX_ROWS"


def resolve_xlsx_max_rows(value: int | None = None) -> int:
    """Data rows per XLSX part: ``value``, else ``$TONGBAN_SAMPLE_XLSX_MAX_ROWS``, else 1,048,575."""
    if value is None:
        env = os.environ.get(XLSX_MAX_ROWS_ENV, "").strip()
        try:
            value = int(env.replace("_", "")) if env else XLSX_MAX_ROWS
        except ValueError:
            raise ValueError(f"{XLSX_MAX_ROWS_ENV}={env!r} is not a whole number") from None
    if not 1 <= value <= XLSX_MAX_ROWS:
        raise ValueError(f"xlsx_max_rows must be between 1 and {XLSX_MAX_ROWS:,} (one sheet), not {value:,}")
    return value


@contextlib.contextmanager
def _replacing(path: Path):
    """A temporary path beside ``path`` that becomes ``path`` when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]], *, encoding: str,
              lineterminator: str = "\n") -> None:
    with _replacing(path) as tmp, open(tmp, "w", encoding=encoding, newline="", buffering=_BUFFER) as fh:
        w = csv.writer(fh, lineterminator=lineterminator)
        w.writerow(header)
        w.writerows(rows)  # strict encoding: a character GBK lacks is an error


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with _replacing(path) as tmp, open(tmp, "w", encoding="utf-8", newline="", buffering=_BUFFER) as fh:
        fh.writelines(enc(r) + "\n" for r in records)


def write_answer_key(path: Path, keys: Sequence[KeyRow]) -> None:
    write_csv(path, ["row_number", "defect", "field", "expected_reason"],
              ([str(k.row_number), k.defect, k.field, k.expected_reason] for k in keys), encoding="utf-8")


# XLSX: written directly (openpyxl's write-only mode needs ~12 s for 50,000 × 15 cells). The
# package is minimal but complete (content types, workbook, styles, shared strings, core/app
# properties); zip entries carry a fixed timestamp and the document properties fixed dates.
# The sheet's rows and the shared strings are streamed to temporary files and then into their
# zip entries, so that only the shared-string table is held in memory.

XLSX_FIXED_TIMESTAMP = "2025-01-01T00:00:00Z"
_ZIP_DATE = (2025, 1, 1, 0, 0, 0)
_ZIP_LEVEL = 1


def _col_letter(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        letters = chr(65 + r) + letters
    return letters


def _xlsx_number(v: int | float | Decimal) -> str:
    if isinstance(v, bool):
        raise TypeError("booleans are not written")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"cannot write {v!r}")
    return str(int(v)) if v.is_integer() else repr(v)


_XLSX_STATIC_HEAD = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        '<Override PartName="/docProps/app.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/>'
        '<Relationship Id="rId2" '
        'Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
        'Target="docProps/core.xml"/>'
        '<Relationship Id="rId3" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" '
        'Target="docProps/app.xml"/>'
        "</Relationships>"
    ),
    "docProps/core.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<dc:creator>tongban sample</dc:creator>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{XLSX_FIXED_TIMESTAMP}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{XLSX_FIXED_TIMESTAMP}</dcterms:modified>'
        "</cp:coreProperties>"
    ),
    "docProps/app.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
        "<Application>tongban sample</Application></Properties>"
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
        'Target="styles.xml"/>'
        '<Relationship Id="rId3" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
        'Target="sharedStrings.xml"/>'
        "</Relationships>"
    ),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<fonts count="1"><font><sz val="11"/><name val="等线"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    ),
}


def _zip_entry(zf: zipfile.ZipFile, name: str, pieces: Sequence[str | Path]) -> None:
    """One deflated entry (fixed time, level 1) of text pieces and files, streamed; the same bytes
    as ``zf.writestr(info, b"".join(pieces), compresslevel=1)``, which also opens the entry for
    writing with the size known beforehand."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16
    if hasattr(info, "compress_level"):  # Python 3.13+
        info.compress_level = _ZIP_LEVEL
    else:
        info._compresslevel = _ZIP_LEVEL
    encoded = [p if isinstance(p, Path) else p.encode("utf-8") for p in pieces]
    info.file_size = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in encoded)
    with zf.open(info, "w") as dest:
        for piece in encoded:
            if isinstance(piece, Path):
                with piece.open("rb") as src:
                    shutil.copyfileobj(src, dest, _BUFFER)
            else:
                dest.write(piece)


def write_xlsx(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], sheet: str = "Sheet1") -> int:
    """One-sheet workbook: ``str`` values become text cells (number format ``@``), ``int``/``float``/
    ``Decimal`` numeric cells, ``None`` or ``""`` an empty cell. Returns the number of data rows."""
    strings: dict[str, int] = {}
    letters = [_col_letter(i) for i in range(len(header))]
    rows_tmp = path.with_name(path.name + ".rows.tmp")
    sst_tmp = path.with_name(path.name + ".sst.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        n_rows = 0
        with open(rows_tmp, "w", encoding="utf-8", newline="", buffering=_BUFFER) as fh:
            write = fh.write
            for r, row in enumerate(itertools.chain((header,), rows), start=1):
                n_rows = r
                cells = []
                for letter, v in zip(letters, row, strict=True):
                    if v is None or v == "":
                        continue
                    if isinstance(v, str):
                        idx = strings.get(v)
                        if idx is None:
                            idx = strings[v] = len(strings)
                        cells.append(f'<c r="{letter}{r}" s="1" t="s"><v>{idx}</v></c>')
                    else:
                        cells.append(f'<c r="{letter}{r}"><v>{_xlsx_number(v)}</v></c>')
                write(f'<row r="{r}">{"".join(cells)}</row>')
        with open(sst_tmp, "w", encoding="utf-8", newline="", buffering=_BUFFER) as fh:
            fh.write('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                     f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}" '
                     f'uniqueCount="{len(strings)}">')
            fh.writelines(f"<si><t>{escape(s)}</t></si>" for s in strings)
            fh.write("</sst>")
        strings.clear()
        last = f"{letters[-1]}{n_rows}" if letters else "A1"
        sheet_head = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<dimension ref="A1:{last}"/><sheetData>'
        )
        with _replacing(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, text in _XLSX_STATIC_HEAD.items():
                _zip_entry(zf, name, [text.replace("{sheet}", escape(sheet)) if name == "xl/workbook.xml" else text])
            _zip_entry(zf, "xl/sharedStrings.xml", [sst_tmp])
            _zip_entry(zf, "xl/worksheets/sheet1.xml", [sheet_head, rows_tmp, "</sheetData></worksheet>"])
    finally:
        rows_tmp.unlink(missing_ok=True)
        sst_tmp.unlink(missing_ok=True)
    return n_rows - 1


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class WrittenDelivery:
    entity: str
    province: str
    path: Path  # the delivery file (the first part when it is written in parts)
    answer_key: Path
    rows: int
    defects: int
    parts: tuple[Path, ...] = ()  # every file of the delivery, in row order (one unless XLSX was split)

    @property
    def files(self) -> tuple[Path, ...]:
        return self.parts or (self.path,)


def select_provinces(keys: Iterable[str] | None) -> tuple[Province, ...]:
    """``PROVINCES`` (in their order), or only those whose key is in ``keys``."""
    if keys is None:
        return PROVINCES
    wanted = set(keys)
    unknown = wanted - {p.key for p in PROVINCES}
    if unknown:
        raise ValueError(f"unknown province(s) {sorted(unknown)}; use {', '.join(p.key for p in PROVINCES)}")
    return tuple(p for p in PROVINCES if p.key in wanted)


def part_names(file_name: str, parts: int) -> list[str]:
    """``births.xlsx`` for one part; ``births-1.xlsx`` ... ``births-<parts>.xlsx`` for several."""
    if parts == 1:
        return [file_name]
    stem, dot, ext = file_name.rpartition(".")
    return [f"{stem}-{k}{dot}{ext}" for k in range(1, parts + 1)]


def _remove_stale_parts(folder: Path, file_name: str) -> None:
    """An earlier run's ``births.xlsx`` / ``births-<k>.xlsx`` (another row count or part size): a
    glob in the mapping would read them as parts of this delivery."""
    stem, dot, ext = file_name.rpartition(".")
    pattern = re.compile(re.escape(stem) + r"(-[0-9]+)?" + re.escape(dot + ext))
    if folder.is_dir():
        for f in folder.iterdir():
            if pattern.fullmatch(f.name) and f.is_file():
                f.unlink()


def write_delivery(entity: str, province: str, out_dir: Path, columns: dict[str, Sequence[str]],
                   file_names: dict[str, str], shaped: Iterable, keys: Sequence[KeyRow], rows: int,
                   *, xlsx_max_rows: int | None = None) -> WrittenDelivery:
    """Write one province's delivery in its shape (sh UTF-8 CSV, js GBK CSV with CRLF, zj JSON
    Lines, ah XLSX) and its answer key beside it.

    ``shaped`` may be a generator that fills ``keys`` while it is consumed: the delivery is
    written first, then the answer key. An XLSX delivery of more than ``xlsx_max_rows`` rows
    (:func:`resolve_xlsx_max_rows`) is written as ``<name>-1.xlsx``, ``<name>-2.xlsx``, ...,
    each with the header row and at most that many data rows, the rows in order."""
    name = file_names[province]
    folder = out_dir / province
    path = folder / name
    paths: tuple[Path, ...] = (path,)
    if province == "sh":
        write_csv(path, columns["sh"], shaped, encoding="utf-8")
    elif province == "js":
        write_csv(path, columns["js"], shaped, encoding="gbk", lineterminator="\r\n")
    elif province == "zj":
        write_jsonl(path, shaped)
    else:
        per_part = resolve_xlsx_max_rows(xlsx_max_rows)
        paths = tuple(folder / n for n in part_names(name, max(1, -(-rows // per_part))))
        _remove_stale_parts(folder, name)
        it = iter(shaped)
        written = 0
        for part in paths:
            written += write_xlsx(part, columns["ah"], itertools.islice(it, per_part))
        if next(it, None) is not None or written != rows:
            raise ValueError(f"{province}/{name}: {rows} rows declared, the generator gave a different number")
    key_path = folder / f"{entity}.answer_key.csv"
    write_answer_key(key_path, keys)
    return WrittenDelivery(entity, province, paths[0], key_path, rows, len(keys), paths)
