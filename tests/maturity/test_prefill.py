"""The prefill on a database seeded through ingestion: the shares of live profiles with
structural traits (their own or their company's), with transaction events and with activity
events, exact, and the answers they suggest; its chart carries the shares."""

from __future__ import annotations

from sqlmodel import Session

from rejse.db import utcnow
from rejse.events.processor import EventProcessor
from rejse.maturity import flags
from rejse.maturity.flags import FlagsSubscriber
from rejse.maturity.prefill import prefill, recount
from rejse.profiles.value import CustomerValueSubscriber
from rejse.roles import Role
from tests.analytics.test_charts import texts
from tests.conftest import auth

TS = "2026-11-20T10:00:00Z"


def msg(kind: str, user: str, **fields) -> dict:
    return {"type": kind, "userId": user, "timestamp": TS, **fields}


SEED = [
    # p1: an industry trait, an order and a page view: all three kinds
    msg("identify", "p1", traits={"industry": "Retail", "email": "p1@example.com"}),
    msg("track", "p1", event="Order Completed", properties={"order_id": "o1", "revenue": 100}),
    msg("page", "p1", name="Home"),
    # p2: a nested region trait and a product view
    msg("identify", "p2", traits={"address": {"city": "Aarhus"}}),
    msg("track", "p2", event="Product Viewed", properties={"product_id": "sku-1"}),
    # p3: structural data only through its company (a Segment group call)
    msg("group", "p3", groupId="acme", traits={"name": "Acme", "employees": 50}),
    # p4: empty and null structural traits do not count; an order without an amount does
    msg("identify", "p4", traits={"industry": "", "country": None, "first_name": "Ida"}),
    msg("track", "p4", event="Order Completed", properties={"order_id": "o9"}),
    # p5: a company without structural traits; an email open is no product activity, and a
    # refund alone is no order
    msg("group", "p5", groupId="tiny", traits={"name": "Tiny", "plan": "free"}),
    msg("track", "p5", event="Email Opened", properties={}),
    msg("track", "p5", event="Order Refunded", properties={"order_id": "o7", "revenue": 5}),
    # p6: an app screen
    msg("screen", "p6", name="Basket"),
    # p7: a name and nothing else
    msg("identify", "p7", traits={"first_name": "Bo"}),
    # p8: everything, then erased: not counted
    msg("identify", "p8", traits={"industry": "Retail", "email": "p8@example.com"}),
    msg("track", "p8", event="Order Completed", properties={"order_id": "o8", "revenue": 1}),
    msg("page", "p8", name="Home"),
]


async def drain(runtime) -> None:
    """The processor with the customer value subscriber (orders counted on the profile) and the
    maturity flags after it, as rejse.wiring orders them."""
    subscribers = [CustomerValueSubscriber(), FlagsSubscriber()]
    await EventProcessor(runtime, subscribers=subscribers, dispatchers=[]).drain()


def assert_exact(runtime) -> None:
    """The prefill read from the kept flags equals the recount from profiles and events, and
    a rebuild of the flags from the stored data changes nothing."""
    now = utcnow()
    with Session(runtime.engine) as s:
        kept = prefill(s, now=now)
        assert kept == recount(s, now=now)
    flags.rebuild(runtime.engine)
    with Session(runtime.engine) as s:
        assert prefill(s, now=now) == kept


async def seed(client, keys, runtime) -> None:
    r = await client.post("/v1/batch", json={"batch": SEED}, headers=auth(keys[Role.ingest]))
    assert r.status_code == 200, r.text
    await drain(runtime)
    admin = auth(keys[Role.admin])
    found = await client.get("/api/profiles/lookup", params={"user_id": "p8"}, headers=admin)
    r = await client.delete(f"/api/profiles/{found.json()['id']}", headers=admin)
    assert r.status_code in (200, 204), r.text


async def test_prefill_on_a_seeded_database(client, keys, runtime):
    await seed(client, keys, runtime)
    r = await client.get("/api/maturity/prefill?lang=en", headers=auth(keys[Role.analyst]))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["live_profiles"] == 7
    # structural p1, p2, p3 of 7: 3/7 = 42.9 % -> 1 + round(1.71) = 3
    assert {k: out["structural"][k] for k in ("profiles", "answer")} == {"profiles": 3, "answer": 3}
    assert out["structural"]["share"] == 3 / 7
    # transactional p1, p4: 2/7 = 28.6 % -> 1 + round(1.14) = 2
    assert {k: out["transactional"][k] for k in ("profiles", "answer")} == {
        "profiles": 2,
        "answer": 2,
    }
    # activity p1 (page), p2 (Product Viewed), p6 (screen): 3/7 -> 3
    assert {k: out["activity"][k] for k in ("profiles", "answer")} == {"profiles": 3, "answer": 3}
    assert out["answers"] == {"structural": 3, "transactional": 2, "activity": 3}
    assert_exact(runtime)
    assert "industry" in out["structural"]["definition"]
    questions = {q["key"]: q for q in out["questions"]}
    assert len(questions) == 10
    assert questions["structural"]["prefilled"] == 3
    assert questions["goal_importance"]["prefilled"] is None
    assert questions["collect"]["dimension"] == "progress"

    # the suggested answers go straight into an assessment
    motivation = {"goal_importance": 5, "data_contribution": 4, "expectancy": 4}
    r = await client.post(
        "/api/maturity",
        json={"readiness": {**motivation, **out["answers"]}},
        headers=auth(keys[Role.marketer]),
    )
    assert r.status_code == 201
    assert r.json()["start_position"]["key"] == "beundrer"  # 8/15 data: mean 2.67, low

    svg = await client.get("/api/maturity/prefill/chart.svg", headers=auth(keys[Role.marketer]))
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    labels = set(texts(svg.content))
    assert {"42.9%", "28.6%", "strukturelle data", "transaktionsdata", "aktivitetsdata"} <= labels
    png = await client.get("/api/maturity/prefill/chart.png", headers=auth(keys[Role.analyst]))
    assert png.status_code == 200
    assert png.content.startswith(b"\x89PNG")


async def test_prefill_of_an_empty_database(client, keys):
    r = await client.get("/api/maturity/prefill", headers=auth(keys[Role.marketer]))
    out = r.json()
    assert out["lang"] == "da"
    assert out["live_profiles"] == 0
    assert out["answers"] == {"structural": 1, "transactional": 1, "activity": 1}
    assert out["structural"]["share"] == 0.0


MERGE = [
    msg("track", "m1", event="Order Completed", properties={"order_id": "x", "revenue": 3}),
    {"type": "page", "anonymousId": "anon-1", "timestamp": TS, "name": "Home"},
    {"type": "identify", "userId": "m1", "anonymousId": "anon-1", "timestamp": TS},
]


async def merged_prefill(client, keys, runtime, batches) -> dict:
    for batch in batches:
        r = await client.post("/v1/batch", json={"batch": batch}, headers=auth(keys[Role.ingest]))
        assert r.status_code == 200
        await drain(runtime)
    return (await client.get("/api/maturity/prefill", headers=auth(keys[Role.analyst]))).json()


async def test_a_merge_counts_once(client, keys, runtime):
    """Two profiles merged (the identify in a later batch): one live profile with both."""
    out = await merged_prefill(client, keys, runtime, [MERGE[:2], MERGE[2:]])
    assert_exact(runtime)
    assert out["live_profiles"] == 1
    assert out["transactional"]["profiles"] == 1
    assert out["activity"]["profiles"] == 1
    assert out["transactional"]["answer"] == 5


async def test_a_merge_within_one_batch_counts_once(client, keys, runtime):
    """The identify merging the two profiles arrives in their batch: still one profile."""
    out = await merged_prefill(client, keys, runtime, [MERGE])
    assert_exact(runtime)
    assert out["live_profiles"] == 1
    assert out["transactional"]["profiles"] == 1
    assert out["activity"]["profiles"] == 1


async def test_the_flags_follow_traits_that_go_away(client, keys, runtime):
    """An identify that empties the only structural trait clears the flag; a later order sets
    the transactional one; the prefill stays equal to its recount at each point."""
    first = [msg("identify", "t1", traits={"industry": "Retail"})]
    out = await merged_prefill(client, keys, runtime, [first])
    assert (out["structural"]["profiles"], out["transactional"]["profiles"]) == (1, 0)
    assert_exact(runtime)
    later = [
        msg("identify", "t1", traits={"industry": None}),
        msg("track", "t1", event="Order Completed", properties={"order_id": "t", "revenue": 2}),
    ]
    out = await merged_prefill(client, keys, runtime, [later])
    assert (out["structural"]["profiles"], out["transactional"]["profiles"]) == (0, 1)
    assert_exact(runtime)


async def profile_id_of(client, keys, user: str) -> str:
    found = await client.get(
        "/api/profiles/lookup", params={"user_id": user}, headers=auth(keys[Role.admin])
    )
    return found.json()["id"]


async def test_traits_set_outside_the_processor_count_at_once(client, keys, runtime):
    """A trait written through the profile API or a journey's update_profile step sets (and
    clears) the structural flag in its own transaction, not at the profile's next identify."""
    from activities.journeys import JourneyActivities
    from rejse.journeys.runtypes import UpdateProfileInput

    out = await merged_prefill(client, keys, runtime, [[msg("identify", "t2", traits={})]])
    assert out["structural"]["profiles"] == 0
    pid = await profile_id_of(client, keys, "t2")
    analyst = auth(keys[Role.analyst])
    r = await client.patch(
        f"/api/profiles/{pid}/traits",
        json={"traits": {"industry": "Retail"}},
        headers=auth(keys[Role.admin]),
    )
    assert r.status_code == 200, r.text
    out = (await client.get("/api/maturity/prefill", headers=analyst)).json()
    assert out["structural"]["profiles"] == 1
    assert_exact(runtime)
    JourneyActivities(runtime).update_profile(
        UpdateProfileInput(profile_id=pid, traits={"industry": None})
    )
    out = (await client.get("/api/maturity/prefill", headers=analyst)).json()
    assert out["structural"]["profiles"] == 0
    assert_exact(runtime)
    JourneyActivities(runtime).update_profile(
        UpdateProfileInput(profile_id=pid, traits={"address": {"country": "DK"}})
    )
    out = (await client.get("/api/maturity/prefill", headers=analyst)).json()
    assert out["structural"]["profiles"] == 1
    assert_exact(runtime)


async def test_a_rolled_back_batch_leaves_no_flag_remembered(client, keys, runtime):
    """The subscriber remembers flagged profiles only from committed rows: a batch that sets
    a profile's activity flag and then rolls back (a later subscriber fails once) must not
    make the retry skip the page view that sets it."""
    failed: list[str] = []

    class FailsOnce:
        name = "fails_once"

        def apply(self, session, event):
            if event.type == "page" and event.properties.get("n") == 2 and not failed:
                failed.append(event.event_id)
                raise RuntimeError("a lock timeout, say")
            return []

    await merged_prefill(client, keys, runtime, [[msg("identify", "r1", traits={})]])
    batch = [  # the profile and its row exist (committed): the batch changes the row
        msg("page", "r1", name="Home", properties={"n": 1}),
        msg("page", "r1", name="Cart", properties={"n": 2}),
    ]
    r = await client.post("/v1/batch", json={"batch": batch}, headers=auth(keys[Role.ingest]))
    assert r.status_code == 200
    subscribers = [CustomerValueSubscriber(), FlagsSubscriber(), FailsOnce()]
    proc = EventProcessor(runtime, subscribers=subscribers, dispatchers=[], backoff_base=0)
    await proc.drain()
    assert failed
    out = (await client.get("/api/maturity/prefill", headers=auth(keys[Role.analyst]))).json()
    assert out["activity"]["profiles"] == 1
    assert_exact(runtime)
