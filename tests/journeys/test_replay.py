"""Replays the journey histories kept in tests/journeys/histories/ against today's
JourneyWorkflow: an interpreter change that would break running workflows fails here.

(Re)record them with the journey tests themselves (SQLite variants, time skipping):

    REJSE_RECORD_HISTORIES=1 python -m pytest tests/journeys -k sqlite

then commit the new files. Keep old ones: they stand for workflows still running in production.
Before re-recording, move the current files into a dated folder named for what they hold (e.g.
`2026-11-21-signal-with-start/`, recorded when entries were signal-with-started and before
`PATCH_WAIT_SINCE_LAST_WAIT`; `2026-12-03-regular-activities/`, every bookkeeping step a regular
activity, before `PATCH_LOCAL_BOOKKEEPING`); every `*.json` below `histories/` is replayed.
Change the interpreter for existing histories only behind `workflow.patched()`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from rejse.temporal import DATA_CONVERTER
from workflows.journey import JourneyWorkflow

ROOT = Path(__file__).resolve().parent / "histories"
HISTORIES = sorted(ROOT.rglob("*.json"))


def test_histories_are_kept():
    names = {p.name.rsplit("-", 1)[0] for p in HISTORIES if p.parent == ROOT}  # the latest
    # the abandoned cart both ways, events, branches, splits, waits, pause/resume
    assert {
        "no_purchase_sends_two_emails_at_day_1_and_3",
        "matching_order_after_first_reminder_converts",
        "wait_for_event_takes_on_event_for_the_matching_event",
        "branch_on_trait_and_exit",
        "split_is_deterministic_and_stats_compare_variants",
        "pause_holds_runs_and_new_entries_resume_continues",
    } <= names, names


def test_histories_from_before_local_bookkeeping_are_kept():
    """Runs started before PATCH_LOCAL_BOOKKEEPING have their bookkeeping as regular activities
    in their histories; they must replay (the interpreter takes the old branch for them)."""
    old = sorted((ROOT / "2026-12-03-regular-activities").glob("*.json"))
    assert len(old) >= 20
    text = old[0].read_text()
    assert '"journeys.record_step"' in text
    assert "ACTIVITY_TASK_SCHEDULED" in text
    # and the latest ones, recorded since, have it as local activities (markers)
    latest = (ROOT / "no_purchase_sends_two_emails_at_day_1_and_3-0.json").read_text()
    assert '"journeys.record_step"' not in latest
    assert "EVENT_TYPE_MARKER_RECORDED" in latest


@pytest.mark.parametrize(
    "path", HISTORIES, ids=[str(p.relative_to(ROOT).with_suffix("")) for p in HISTORIES]
)
async def test_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, await asyncio.to_thread(path.read_text))
    replayer = Replayer(workflows=[JourneyWorkflow], data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(history)
