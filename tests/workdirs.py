"""Where a test's run writes: its own build, exchange and feedback directories."""

from __future__ import annotations

from pathlib import Path

#: the settings that move a run's output (tongban.common.config), and their folder under a work directory
WORK_DIRS = (("TONGBAN_BUILD_DIR", "build"), ("TONGBAN_EXCHANGE_DIR", "exchange"),
             ("TONGBAN_FEEDBACK_DIR", "feedback"))


def work_env(work: Path, inbox: Path | None = None, key: str | None = None) -> dict[str, str]:
    """The environment of a run writing under ``work`` (reading ``inbox``, keyed by ``key``)."""
    env = {var: str(Path(work) / sub) for var, sub in WORK_DIRS}
    if inbox is not None:
        env["TONGBAN_INBOX_DIR"] = str(inbox)
    if key is not None:
        env["TONGBAN_PSEUDONYM_KEY"] = key
    return env


def use_work(mp, work: Path, inbox: Path | None = None, key: str | None = None) -> None:
    """Set :func:`work_env` on a ``pytest.MonkeyPatch``."""
    for var, value in work_env(work, inbox, key).items():
        mp.setenv(var, value)
