"""The daily sales digest: a scheduler job that starts `digest:{rep}:{day}` once per rep."""

from __future__ import annotations

import datetime as dt

from rejse.leads.control import scheduled_jobs, start_digests
from rejse.leads.schemas import RepUpdate
from rejse.leads.service import update_rep
from rejse.scheduler import make_trigger
from tests.leads.conftest import handoff_worker, new_profile, new_rep
from tests.leads.test_api import _lead


async def test_digest_once_per_rep_and_day(trt, session, model, slack, time_env):
    anna = new_rep(session, "Anna", webhook=f"{slack.url}/hook/anna")
    bo = new_rep(session, "Bo", webhook=f"{slack.url}/hook/bo")
    lead = _lead(session, new_profile(session), "dg")  # round robin: Anna gets it
    assert lead.rep_id == anna
    update_rep(session, rep_id=bo, changes=RepUpdate(active=True))
    session.commit()
    day = dt.date(2026, 11, 23)
    async with handoff_worker(trt, time_env.client):
        assert await start_digests(trt, day=day) == 2
        assert await start_digests(trt, day=day) == 0  # a double fire does nothing
        for rep in (anna, bo):
            await time_env.client.get_workflow_handle(f"digest:{rep}:{day}").result()
    [push] = slack.for_hook("anna")
    text = push.json["text"]
    assert text.startswith("Your leads for 2026-11-23: 1 open")
    assert lead.id in text
    assert "example.dk" not in text  # no contact data in chat
    assert slack.for_hook("bo") == []  # nothing open: nothing sent


def test_digest_job_is_registered():
    [job] = scheduled_jobs()
    assert job.id == "sales_digest"
    assert make_trigger(job.trigger)
