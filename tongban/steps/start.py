"""Start: check the standards, generate the run's dbt project from them, name the run."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from tongban.common.config import Settings, quiet_third_parties
from tongban.exchange import integrity
from tongban.steps.loaded import standards
from tongban.steps.project import build_project
from tongban.steps.results import Run, Source, now


class UsageError(ValueError):
    """The command asked for something the standards do not have."""

    exit_code = 1


def start(s: Settings, entities: list[str] | None = None) -> Run:
    quiet_third_parties()
    # whatever a killed run left in the exchange (never committed) goes before anything reads it
    integrity.recover(s.exchange_dir)
    std = standards(s)
    # models, seeds and suites under build/: the repository's tracked files are left alone
    build_project(std, s.project_root, s.dbt_project_dir)
    wanted = entities or sorted({m.entity for m in std.mappings})
    unknown = [e for e in wanted if e not in std.entities]
    if unknown:
        raise UsageError(f"unknown entit{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}; "
                         f"the standard defines {', '.join(sorted(std.entities))} (tongban run --entity NAME)")
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    return Run(run_id=run_id, started_at=now(), entities=wanted,
               sources=[Source(source_id=m.source_id, entity=m.entity, province_code=m.province_code)
                        for e in wanted for m in std.mappings_for(e)],
               standard_versions={e: std.entities[e].version for e in wanted},
               pii={e: std.entities[e].pii for e in wanted})
