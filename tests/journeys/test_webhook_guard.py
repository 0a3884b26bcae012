"""Journey webhook steps never call this machine or private networks unless
REJSE_WEBHOOK_ALLOW_PRIVATE is set: a literal private address is refused when the journey is
published (422 naming the step's url), and a target that turns out private when the step runs
fails the step for good (no retry), recorded on the step, the run and the timeline."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from temporalio.client import WorkflowFailureError

from rejse.models.journeys import JourneyStep
from rejse.roles import Role
from rejse.timeline import list_entries
from tests.conftest import auth
from tests.journeys.conftest import new_profile, publish, result, runs
from tests.journeys.test_steps import enter, hook_server, journey


def hook_journey(key: str, url: str) -> dict:
    return journey(key, {"call": {"type": "webhook", "url": url, "body": {"offer": "x"}}})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/internal",
        "http://localhost:8000/api/keys",
        "http://0x7f.1/hook",
    ],
)
async def test_publish_refuses_a_private_webhook_url_naming_the_step(client, keys, url):
    m = auth(keys[Role.marketer])
    r = await client.post("/api/journeys", json=hook_journey("hook", url), headers=m)
    assert r.status_code == 201, r.text  # a draft may hold it; going live may not
    r = await client.post("/api/journeys/hook/publish", headers=m)
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "steps.call.url"
    assert "REJSE_WEBHOOK_ALLOW_PRIVATE" in error["message"]
    r = await client.get("/api/journeys/hook", headers=m)
    assert (r.json()["status"], r.json()["published_version"]) == ("draft", None)


async def test_publish_allows_private_webhooks_when_the_setting_says_so(client, keys, runtime):
    runtime.settings.webhook_allow_private = True
    m = auth(keys[Role.marketer])
    r = await client.post(
        "/api/journeys", json=hook_journey("hook", "http://127.0.0.1:9/h"), headers=m
    )
    assert r.status_code == 201, r.text
    r = await client.post("/api/journeys/hook/publish", headers=m)
    assert r.status_code == 200, r.text


async def test_a_private_target_at_run_time_fails_the_step_for_good(
    jruntime, worker, client, keys, time_env
):
    got: list[bytes] = []
    with hook_server(lambda headers, body: got.append(body)) as url:
        # published while allowed (or resolving elsewhere then); the setting is off when it runs
        jruntime.settings.webhook_allow_private = True
        publish(jruntime, hook_journey("hook", url))
        jruntime.settings.webhook_allow_private = False
        pid = new_profile(jruntime)
        run = await enter(client, keys, "hook", pid)
        with pytest.raises(WorkflowFailureError) as failed:
            await result(time_env, run["workflow_id"])
    assert got == []  # nothing reached the receiver
    cause = failed.value.cause.cause  # the activity's ApplicationError
    assert cause.type == "WebhookRefused"
    assert cause.non_retryable
    assert "loopback" in str(cause)
    [row] = runs(jruntime, profile_id=pid)
    assert (row.status, row.current_step) == ("failed", "call")
    assert row.ended_at is not None
    with Session(jruntime.engine) as s:
        [step] = s.exec(select(JourneyStep).where(JourneyStep.run_id == row.id)).all()
        assert step.outcome == "refused"
        summaries = [e.summary for e in list_entries(s, profile_id=pid)]
    assert "journey hook: step call failed: the URL leads to a loopback address" in summaries
    assert not [x for x in summaries if "127.0.0.1" in x]  # no address or URL in the timeline
