"""The standards committee's commands: ``standards check|impact|propose``, ``dictionary``, ``generate``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from tongban.cli.output import table
from tongban.committee.coverage import coverage, coverage_findings, format_coverage
from tongban.committee.impact import impact, to_markdown, to_text
from tongban.committee.propose import ProposeError, propose
from tongban.common.config import quiet_third_parties, settings
from tongban.pipeline import publish_dictionary
from tongban.standards.generate import load_checked, out_of_date, write_generated
from tongban.standards.gitref import GitRefError
from tongban.standards.lint import check
from tongban.standards.load import StandardsError
from tongban.standards.versioning import check_against, format_changes
from tongban.steps.intake.readers import DeliveryReadError


def cmd_check(args: argparse.Namespace) -> int:
    """The committee's lint: the standards themselves, coverage against the latest deliveries,
    and (with --against) the semantic-version check of what changed since a git ref."""
    s = settings()
    std = check(s.standards_dir)
    findings = list(std.findings)
    cov = []
    if args.coverage and not std.errors:
        cov = coverage(std, s)
        findings += coverage_findings(std, cov)
    changes = []
    if args.against:
        try:
            changes, version_findings = check_against(args.against, s.standards_dir, s.project_root)
        except GitRefError as exc:
            print(f"tongban standards check --against {args.against}: {exc}", file=sys.stderr)
            return 2
        findings += version_findings
    stale = []
    if not std.errors:
        stale = out_of_date(std, s.project_root)
    errors = [f for f in findings if f.severity == "error"]
    if args.format == "json":
        print(json.dumps({"findings": [f.to_dict() for f in findings],
                          "coverage": [asdict(c) | {"mapped_share": round(c.mapped_share, 4)} for c in cov],
                          "changes": [asdict(c) for c in changes],
                          "stale_generated_files": stale}, ensure_ascii=False, indent=2))
    else:
        for f in findings:
            print(str(f))
        if cov:
            print("\ncoverage of the latest deliveries (share of rows mapped through approved entries):")
            print(format_coverage(cov))
        if args.against:
            print(f"\nchanges since {args.against}:")
            print(format_changes(changes) if changes else "  none")
        print(f"\n{len(std.entities)} entities, {len(std.code_lists)} code lists, {len(std.mappings)} mappings, "
              f"{len(std.crosswalks)} crosswalks: {len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
        if stale:
            print("generated files are out of date (run `tongban generate`): " + ", ".join(stale))
    return 1 if errors or stale else 0


def cmd_impact(args: argparse.Namespace) -> int:
    """What a standards/mapping change would do to the latest deliveries, before it runs."""
    quiet_third_parties()

    s = settings()
    try:
        report = impact(args.against, s=s, entities=args.entity or None, top=args.top)
    except (GitRefError, StandardsError) as exc:
        print(f"tongban standards impact --against {args.against}: {exc}", file=sys.stderr)
        return 2
    print(to_text(report))
    md = Path(args.markdown) if args.markdown else s.build_dir / "impact" / f"impact-{report.commit[:12]}.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(to_markdown(report), encoding="utf-8")
    print(f"\nMarkdown for the review: {md}")
    return 0


def cmd_dictionary(args: argparse.Namespace) -> int:
    """Write the bilingual data dictionary (HTML + Markdown) with coverage of the latest deliveries."""
    s = settings()
    out = Path(args.out) if args.out else s.build_dir / "dictionary"
    index = publish_dictionary(s, generated_at=datetime.now(UTC).isoformat(timespec="seconds"), out_dir=out,
                               read_inbox=True)
    print(f"data dictionary: {index}  (Markdown: {index.parent / 'dictionary.md'})")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    s = settings()
    try:
        std = load_checked(s.standards_dir)
    except StandardsError as exc:
        print(exc, file=sys.stderr)
        return 1
    changed = write_generated(std, s.project_root)
    print("\n".join(f"wrote {c}" for c in changed) or "everything up to date")
    return 0


def cmd_propose(args: argparse.Namespace) -> int:
    """A proposed mapping (and crosswalks) for a new source from one of its deliveries, and a report."""
    s = settings()
    path = Path(args.path)
    out = Path(args.out) if args.out else s.standards_dir / "mappings" / args.source
    try:
        p = propose(load_checked(s.standards_dir), [path], source_id=args.source, province=args.province,
                    entity=args.entity, out_dir=out, delivery_file=s.inbox_relative(path.resolve()), force=args.force)
    except (ProposeError, DeliveryReadError, StandardsError) as exc:
        print(f"tongban standards propose: {exc}", file=sys.stderr)
        return 2
    report = p.to_dict()
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    table(["field", "column", "confidence", "reason"], [(f["field"], f["column"] or "-", f["confidence"], f["reason"])
                                                         for f in report["fields"]], title=f"{p.source_id} → {p.entity}")
    table(["column", "fill", "distinct", "samples"], [(c["name"], c["fill_rate"], c["distinct_share"],
                                                       " | ".join(c["samples"])) for c in report["columns"]])
    print("unmapped columns: " + (", ".join(report["unmapped_columns"]) or "none"))
    for f, vals in report["values_without_proposal"].items():
        print(f"{f}: {len(vals)} value(s) with no crosswalk proposal: " + ", ".join(v["value"] for v in vals[:20]))
    print("wrote " + ", ".join(str(w) for w in p.written) + " — review every field, then `tongban standards check`")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    std = sub.add_parser("standards", help="the standards committee's tools")
    std_sub = std.add_subparsers(dest="standards_command", required=True)
    chk = std_sub.add_parser("check", help="validate standards/ and the mappings; coverage; versions")
    chk.add_argument("--format", choices=["text", "json"], default="text")
    chk.add_argument("--no-coverage", dest="coverage", action="store_false",
                     help="skip the coverage of the latest deliveries (reads the inbox)")
    chk.add_argument("--against", metavar="GIT_REF",
                     help="classify the changes since GIT_REF (major/minor/patch) and check the version bumps")
    chk.set_defaults(func=cmd_check)
    imp = std_sub.add_parser("impact", help="preview what a change does to the latest deliveries (nothing is published)")
    imp.add_argument("--against", metavar="GIT_REF", required=True,
                     help="compare the working-tree standards with those at GIT_REF (e.g. HEAD, main)")
    imp.add_argument("--entity", action="append", help="only this entity (repeatable)")
    imp.add_argument("--markdown", metavar="FILE", help="write the Markdown report here "
                     "(default build/impact/impact-<commit>.md)")
    imp.add_argument("--top", type=int, default=5, help="value changes and reasons shown per field (default 5)")
    imp.set_defaults(func=cmd_impact)
    pro = std_sub.add_parser("propose", help="propose a mapping for a new source from one of its deliveries")
    pro.add_argument("path", help="the delivery (CSV, JSON, JSON Lines or XLSX)")
    pro.add_argument("--source", required=True, help="the new source's id (e.g. hz)")
    pro.add_argument("--province", required=True, help="its province's 2-digit code (31, 32, 33, 34)")
    pro.add_argument("--entity", help="the entity to map to (default: the one the columns fit best)")
    pro.add_argument("--out", help="directory (default standards/mappings/<source>/)")
    pro.add_argument("--format", choices=["text", "json"], default="text")
    pro.add_argument("--force", action="store_true", help="replace existing files")
    pro.set_defaults(func=cmd_propose)
    dic = sub.add_parser("dictionary", help="write the bilingual data dictionary (HTML + Markdown)")
    dic.add_argument("--out", help="directory (default build/dictionary; each run also publishes exchange/dictionary)")
    dic.set_defaults(func=cmd_dictionary)
    gen = sub.add_parser("generate", help="regenerate dbt models and GX suites from standards/")
    gen.set_defaults(func=cmd_generate)
