"""Observability: /metrics carries the processor's lag, events by outcome, journey runs by
state and sends by channel and status; the Temporal SDK serves its own metrics when
REJSE_TEMPORAL_METRICS_ADDRESS is set; processes without the API serve theirs on
REJSE_METRICS_PORT; and every metric the Grafana dashboard under deploy/ queries exists."""

from __future__ import annotations

import datetime as dt
import json
import re

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import httpx
    import sqlalchemy as sa
    from prometheus_client import REGISTRY
    from prometheus_client.parser import text_string_to_metric_families
    from sqlmodel import Session
    from temporalio.testing import ActivityEnvironment

    from activities.messaging import MessagingActivities
    from rejse.contracts import SendRequest
    from rejse.models.journeys import JourneyRun
    from rejse.roles import Role
    from rejse.temporal import connect
    from rejse.up import _serve_metrics
    from rejse.worker import build_worker
    from tests.conftest import auth
    from tests.foundation.procs import REPO, free_port

DASHBOARD = REPO / "deploy" / "grafana" / "rejse-dashboard.json"


def value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            # the parser names a counter's sample <name>_total, as OpenMetrics does
            if sample.name in (name, f"{name}_total") and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                return float(sample.value)
    return None


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def scrape(client, keys) -> str:
    r = await client.get("/metrics", headers=auth(keys[Role.analyst]))
    assert r.status_code == 200, r.text
    return r.text


async def test_metrics_show_lag_outcomes_runs_and_sends(client, keys, engine):
    accepted, duplicate = (
        counter("rejse_events_total", outcome="accepted"),
        counter("rejse_events_total", outcome="duplicate"),
    )
    for message_id in ("obs-1", "obs-2", "obs-2"):
        r = await client.post(
            "/v1/track",
            json={"userId": "obs", "event": "Viewed", "messageId": message_id},
            headers=auth(keys[Role.ingest]),
        )
        assert r.status_code == 200
    assert counter("rejse_events_total", outcome="accepted") - accepted == 2
    assert counter("rejse_events_total", outcome="duplicate") - duplicate == 1
    with engine.begin() as conn:  # the oldest waiting event arrived 90 s ago
        conn.execute(
            sa.text("UPDATE event SET received_at = :t WHERE message_id = 'obs-1'"),
            {"t": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90)},
        )
    text = await scrape(client, keys)
    assert value(text, "rejse_processor_lag_seconds") >= 89
    assert value(text, "rejse_outbox_events") == 2

    from rejse.events.processor import EventProcessor

    processed = counter("rejse_events_total", outcome="processed")
    runtime = client._transport.app.state.runtime
    assert await EventProcessor(runtime, subscribers=[], dispatchers=[]).drain() == 2
    assert counter("rejse_events_total", outcome="processed") - processed == 2
    with Session(engine) as s:
        for n, state in enumerate(["running", "running", "completed", "failed"]):
            s.add(
                JourneyRun(
                    id=f"run_{n}",
                    workflow_id=f"journey:j:p{n}",
                    journey_key="j",
                    version=1,
                    profile_id=f"p{n}",
                    trigger_event_id=f"e{n}",
                    status=state,
                )
            )
        s.commit()
    text = await scrape(client, keys)
    assert value(text, "rejse_processor_lag_seconds") == 0
    assert value(text, "rejse_outbox_events") == 0
    assert value(text, "rejse_journey_runs", state="running") == 2
    assert value(text, "rejse_journey_runs", state="completed") == 1
    assert value(text, "rejse_journey_runs", state="failed") == 1
    assert value(text, "rejse_journey_runs", state="exited") == 0  # every state, also at 0

    # a send through the activity counts under its channel and result
    result = await ActivityEnvironment().run(
        MessagingActivities(runtime).send,
        SendRequest(
            idempotency_key="obs:send", profile_id="prf_nobody", channel="email", template="x"
        ),
    )
    text = await scrape(client, keys)
    assert value(text, "rejse_messages_total", channel="email", status=result.status) >= 1


def test_processes_without_the_api_serve_their_metrics(settings):
    port = free_port()
    stop = _serve_metrics(settings.model_copy(update={"metrics_port": port}))
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        stop()
    assert "# TYPE rejse_events_total counter" in text
    assert "# TYPE rejse_messages_total counter" in text


@activity.defn
def greet(name: str) -> str:
    return f"hej {name}"


@workflow.defn
class Greeting:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            greet, name, start_to_close_timeout=dt.timedelta(seconds=10)
        )


def known_names(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name, *(f"{family.name}{s}" for s in ("_total", "_bucket", "_count"))}
        names |= {sample.name for sample in family.samples}
    return names


async def test_sdk_metrics_and_the_dashboard_queries_only_what_exists(
    settings, client, keys, dev_env
):
    address = f"127.0.0.1:{free_port()}"
    settings = settings.model_copy(
        update={
            "temporal_address": dev_env.client.service_client.config.target_host,
            "temporal_metrics_address": address,
        }
    )
    sdk_client = await connect(settings)
    worker = build_worker(
        sdk_client, task_queue=settings.task_queue, workflows=[Greeting], activities=[greet]
    )
    assert worker is not None
    async with worker:
        done = await sdk_client.execute_workflow(
            Greeting.run, "x", id=f"greeting-{settings.task_queue}", task_queue=settings.task_queue
        )
    assert done == "hej x"
    async with httpx.AsyncClient(timeout=5) as http:
        sdk = (await http.get(f"http://{address}/metrics")).text
    assert value(sdk, "temporal_workflow_completed", workflow_type="Greeting") == 1
    assert value(sdk, "temporal_activity_execution_latency_count", activity_type="greet") == 1

    await client.get("/healthz")  # an HTTP request to count
    exposed = known_names(await scrape(client, keys)) | known_names(sdk)
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(queries) >= 10
    used = {m for q in queries for m in re.findall(r"\b(?:rejse|temporal)_[a-z_]+\b", q)}
    wanted = {
        "rejse_processor_lag_seconds",
        "rejse_events_total",
        "rejse_journey_runs",
        "rejse_messages_total",
        "rejse_crm_calls_total",
    }
    assert wanted <= used
    assert any(m.startswith("temporal_") for m in used)
    assert used <= exposed, f"the dashboard queries what no endpoint exposes: {used - exposed}"
