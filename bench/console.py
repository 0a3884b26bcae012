"""Server time per console page on PostgreSQL with the analytics bench's data, beside the JSON
endpoints the page is built from, in the same run.

Data: `bench.analytics.prepare` (1,000,000 profiles, their journey runs, 3,000,000 messages,
10,000,000 events, the counters), then what the console's pages also read: an email
identifier per profile, 20 reps with `--leads` leads (open, assigned, contacted, won, lost,
expired), an API template version, 50 maturity assessments and one audience ("Order Completed
within 90 days", ~600,000 members).

Each page is requested through the app in process (httpx's ASGI transport: the server's
work, no network), signed in with a console session of the role the page needs; its JSON
endpoints with a bearer key of the same role. A page built from several endpoints is set
beside the sum of their times (what a client of the API would wait for). Each round takes
`--requests` samples of every page and its endpoints, one after the other (page, endpoints,
page, ...); a round's figure is its p95, the figure printed the median of the rounds. Target:
<= 150 ms p95 per page. The audience builder's preview fragment (what htmx posts as a
condition is typed: an exact count over every live profile) is timed beside the JSON preview
too, without the pages' target.

    python -m bench.console [--rounds 5] [--requests 20] [--leads 20000]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/rejse_bench_console]
        [--keep] [--runs 1000000] [--messages 3000000] [--events 10000000] [--quick]

The database named by --database-url is dropped and created (never point it at real data);
--keep reuses it when it already holds `--runs` profiles. `--quick` (what `python -m bench
--quick` passes): 20,000 profiles in `..._quick`, 2 rounds of 5 requests, a first look only
(the issue's figure is for 1,000,000 profiles).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.console.kit import CSRF_FIELD
from bench.analytics import KEY as JOURNEY
from bench.analytics import NOW, prepare
from bench.results import emit
from rejse import wiring
from rejse.audiences import service as audiences
from rejse.audiences.definition import AudienceDefinition
from rejse.console.sessions import csrf_token, start_session
from rejse.db import make_engine, utcnow
from rejse.keys import create_key
from rejse.maturity import service as maturity
from rejse.maturity.model import Progress, Readiness
from rejse.messaging import template_store
from rejse.migrate import upgrade
from rejse.roles import Role
from rejse.runtime import Runtime
from rejse.settings import Settings

BENCH = "bench.console"
TARGET_MS = 150.0
TEMPLATE = "abandoned_cart/reminder"
PROFILE = "prf_00000042"
REPS = 20
AUDIENCE = "bench-buyers"
CONDITION: dict[str, Any] = {"event": "Order Completed", "within": "P90D"}
# what a marketer types into the builder next: the buyers who also carry a structural trait
DRAFT: dict[str, Any] = {"all": [CONDITION, {"trait": "industry", "op": "exists", "value": True}]}

_IDENTIFIERS = """
INSERT INTO profile_identifier (profile_id, type, value, created_at)
SELECT id, 'email', 'p' || ltrim(substr(id, 5), '0') || '@example.dk', CAST(:now AS timestamptz)
FROM profile
ON CONFLICT DO NOTHING
"""

_REPS = """
INSERT INTO sales_rep (id, name, email, active, territories, locale, created_at)
SELECT 'rep_bench' || lpad(i::text, 2, '0'), 'Rep ' || i, 'rep' || i || '@shop.dk', true,
       '[]'::json, 'da', CAST(:now AS timestamptz)
FROM generate_series(1, CAST(:reps AS integer)) AS i
"""

# status (h % 100): 0-2 assigned, 3 open (no rep), 4-24 contacted, 25-34 meeting, 35-49 won,
# 50-74 lost, 75-84 not_relevant, 85-99 expired: about 30 leads waiting per rep, as a rep who
# works the list has (each waiting lead costs the list a profile and a score read)
_LEADS = """
INSERT INTO lead (id, profile_id, trigger_key, workflow_id, source, reason, score, status,
                  rep_id, assigned_at, due_at, reassignments, history, notifications,
                  crm_enabled, crm_status, outcome, outcome_at, first_contact_at, created_at)
SELECT 'lead' || lpad(i::text, 28, '0'),
       'prf_' || lpad((i * 37 % CAST(:profiles AS integer) + 1)::text, 8, '0'),
       'bench-' || i, 'handoff:bench-' || i, 'score:aql',
       'reached AQL (score ' || (50 + h % 40) || ')', 50 + h % 40, st,
       CASE WHEN st <> 'open'
            THEN 'rep_bench' || lpad((1 + i % CAST(:reps AS integer))::text, 2, '0') END,
       created, created + interval '24 hours', 0,
       json_build_array(json_build_object('kind', 'created', 'at', created, 'source', 'score:aql')),
       '[]'::json, false, 'skipped',
       CASE WHEN called THEN st END,
       CASE WHEN called THEN created + interval '5 hours' END,
       CASE WHEN called THEN created + interval '5 hours' END,
       created
FROM (
  SELECT i, h,
         CASE WHEN h % 100 < 3 THEN 'assigned' WHEN h % 100 < 4 THEN 'open'
              WHEN h % 100 < 25 THEN 'contacted' WHEN h % 100 < 35 THEN 'meeting'
              WHEN h % 100 < 50 THEN 'won' WHEN h % 100 < 75 THEN 'lost'
              WHEN h % 100 < 85 THEN 'not_relevant' ELSE 'expired' END AS st,
         h % 100 BETWEEN 4 AND 84 AS called,
         CAST(:now AS timestamptz) - make_interval(secs => h % (60 * 86400)) AS created
  FROM (SELECT i, hashint4(i * 11 + 5) & 2147483647 AS h
        FROM generate_series(1, CAST(:leads AS integer)) AS i) AS g
) AS x
"""


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def ready(url: str, *, runs: int) -> bool:
    """Whether --keep can reuse the database: it exists and holds `runs` profiles."""
    try:
        engine = make_engine(url)
        n = _count(engine, "SELECT count(*) FROM profile")
        engine.dispose()
    except sa.exc.OperationalError:
        return False
    except sa.exc.ProgrammingError:
        return False
    return n == max(1, runs)


def seed(engine: Engine, *, leads: int, profiles: int) -> None:
    """What the console reads beyond the analytics data; each part once."""
    upgrade(engine)  # the console's own tables, when the data predates them
    t0 = time.perf_counter()
    if _count(engine, "SELECT count(*) FROM profile_identifier WHERE type = 'email'") == 0:
        with engine.begin() as conn:
            conn.execute(sa.text(_IDENTIFIERS), {"now": NOW})
    # its own reps beside the analytics bench's (which hold that bench's 100,000 leads)
    if _count(engine, "SELECT count(*) FROM sales_rep WHERE id LIKE 'rep_bench%'") == 0:
        with engine.begin() as conn:
            conn.execute(sa.text(_REPS), {"now": NOW, "reps": REPS})
            conn.execute(
                sa.text(_LEADS), {"now": NOW, "reps": REPS, "leads": leads, "profiles": profiles}
            )
    with Session(engine) as s:
        if not template_store.list_api_templates(s):
            template_store.add_version(
                s,
                key="bench/newsletter",
                channel="email",
                variants={
                    loc: {
                        "subject": f"Nyhedsbrev {loc}",
                        "html": "<p>Hej {{ profile.first_name }}</p>",
                    }
                    for loc in ("da", "sv", "en")
                },
            )
        if maturity.count(s) == 0:
            for i in range(50):
                maturity.create(
                    s,
                    Readiness(
                        goal_importance=1 + i % 5,
                        data_contribution=1 + (i * 3) % 5,
                        expectancy=1 + (i * 7) % 5,
                        structural=1 + (i * 2) % 5,
                        transactional=1 + (i * 5) % 5,
                        activity=1 + (i * 4) % 5,
                    ),
                    Progress(collect=1 + i % 5, analyse=2, permission=3, success=1 + (i * 3) % 5),
                    company=f"Bench {i}",
                    goal=None,
                    created_by=None,
                    now=utcnow(),
                )
        s.commit()
        if not audiences.audience_exists(s, AUDIENCE):
            t1 = time.perf_counter()
            audiences.create_audience(
                s,
                AudienceDefinition(key=AUDIENCE, name="Bench buyers", condition=CONDITION),
                now=utcnow(),
            )
            s.commit()
            print(f"  audience {AUDIENCE!r} computed in {time.perf_counter() - t1:.0f} s")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("profile_identifier", "lead", "sales_rep"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
    print(f"  console data in {time.perf_counter() - t0:.0f} s")


@dataclass
class Page:
    name: str
    role: Role
    path: str
    endpoints: list[tuple[str, str, dict[str, Any] | None]]  # method, path, JSON body
    status: int = 200
    form: dict[str, str] | None = None  # posted (with the session's CSRF token), as htmx does
    page: bool = True  # False: a fragment of a page, reported without the pages' target
    pages: list[float] = field(default_factory=list)  # p95 per round, seconds
    apis: list[float] = field(default_factory=list)


def pages(engine: Engine) -> list[Page]:
    with engine.connect() as conn:
        lead = conn.execute(
            sa.text(
                "SELECT id FROM lead WHERE rep_id = 'rep_bench01' AND status IN "
                "('assigned', 'contacted', 'meeting') ORDER BY status <> 'assigned', id LIMIT 1"
            )
        ).scalar_one()
        assessment = conn.execute(
            sa.text("SELECT id FROM maturity_assessment ORDER BY created_at LIMIT 1")
        ).scalar_one()
    email = "p" + PROFILE.removeprefix("prf_").lstrip("0") + "@example.dk"
    rep = "rep_bench01"
    return [
        Page(
            "profiles: search by email",
            Role.analyst,
            f"/console/profiles?q={email}",
            [("GET", f"/api/profiles/lookup?email={email}", None)],
            status=303,
        ),
        Page(
            "profiles: one profile",
            Role.analyst,
            f"/console/profiles/{PROFILE}",
            [
                ("GET", f"/api/profiles/{PROFILE}", None),
                ("GET", f"/api/profiles/{PROFILE}/timeline?limit=50", None),
                ("GET", f"/api/profiles/{PROFILE}/score", None),
                ("GET", f"/api/messages?profile_id={PROFILE}&limit=20", None),
            ],
        ),
        Page(
            "profiles: erase confirmation",
            Role.admin,
            f"/console/profiles/{PROFILE}/erase",
            [("GET", f"/api/profiles/{PROFILE}", None)],
        ),
        Page(
            "templates: list", Role.analyst, "/console/templates", [("GET", "/api/templates", None)]
        ),
        Page(
            "templates: preview",
            Role.analyst,
            f"/console/templates/view?key={TEMPLATE}&locale=sv&profile={PROFILE}",
            [
                ("GET", f"/api/templates/{TEMPLATE}", None),
                (
                    "POST",
                    f"/api/templates/{TEMPLATE}/preview",
                    {"profile_id": PROFILE, "locale": "sv"},
                ),
            ],
        ),
        Page(
            "templates: edit",
            Role.marketer,
            f"/console/templates/edit?key={TEMPLATE}",
            [("GET", f"/api/templates/{TEMPLATE}", None)],
        ),
        Page(
            "sales: next to contact",
            Role.sales,
            f"/console/sales?rep={rep}",
            [("GET", f"/api/sales/next?rep={rep}&limit=50", None)],
        ),
        Page(
            "sales: lead",
            Role.sales,
            f"/console/sales/leads/{lead}",
            [("GET", f"/api/sales/leads/{lead}", None)],
        ),
        Page(
            "sales: team",
            Role.sales,
            "/console/sales/team",
            [
                ("GET", "/api/analytics/sales/reps", None),
                ("GET", "/api/analytics/sales/uncalled?limit=100", None),
            ],
        ),
        # The form keeps its prefill for 10 minutes: here beside the listing it also reads;
        # with a fresh prefill beside the JSON prefill in `measure`.
        Page(
            "maturity: form",
            Role.marketer,
            "/console/maturity",
            [("GET", "/api/maturity?limit=20&offset=30", None)],
        ),
        Page(
            "maturity: result",
            Role.analyst,
            f"/console/maturity/{assessment}",
            [("GET", f"/api/maturity/{assessment}", None)],
        ),
        *foundation_pages(engine),
    ]


def foundation_pages(engine: Engine) -> list[Page]:
    """console-a's pages, each beside the endpoints with the same figures: the overview (the
    last 30 days of every journey and the lead funnel) beside the journeys comparison and the
    funnel of the same period."""
    end = utcnow().date()
    period = f"from={end - dt.timedelta(days=29)}&to={end}"
    return [
        Page(
            "overview",
            Role.analyst,
            "/console/overview",
            [
                ("GET", f"/api/analytics/journeys?{period}", None),
                ("GET", f"/api/analytics/funnel?{period}", None),
            ],
        ),
        Page(
            "journeys: list",
            Role.analyst,
            "/console/journeys",
            [
                ("GET", "/api/journeys", None),
                ("GET", f"/api/analytics/journeys?{period}", None),
            ],
        ),
        Page(
            "journeys: one journey",
            Role.analyst,
            f"/console/journeys/{JOURNEY}",
            [
                ("GET", f"/api/journeys/{JOURNEY}", None),
                ("GET", f"/api/journeys/{JOURNEY}/stats", None),
                ("GET", f"/api/journeys/{JOURNEY}/runs?limit=50", None),
            ],
        ),
        Page("journeys: new", Role.marketer, "/console/journeys/new", []),
        # One audience over the analytics data ("Order Completed within 90 days"): its page
        # with the first members, the builder, and the builder's preview as the condition is
        # typed (htmx posts the draft; the JSON preview takes the same draft).
        Page(
            "audiences: one audience",
            Role.analyst,
            f"/console/audiences/{AUDIENCE}",
            [
                ("GET", f"/api/audiences/{AUDIENCE}", None),
                ("GET", f"/api/audiences/{AUDIENCE}/members?limit=50", None),
            ],
        ),
        Page(
            "audiences: builder",
            Role.marketer,
            f"/console/audiences/{AUDIENCE}/edit",
            [("GET", f"/api/audiences/{AUDIENCE}", None)],
        ),
        # Not a page: the builder's fragment htmx posts as the condition is typed, an exact
        # count of the draft over every live profile (and its newest matches), beside the
        # JSON preview of the same draft. Timed for the record, without the pages' target.
        Page(
            "audiences: preview fragment",
            Role.marketer,
            "/console/audiences/preview",
            [("POST", "/api/audiences/preview", {"condition": DRAFT})],
            form={"condition": json.dumps(DRAFT), "editing": AUDIENCE},
            page=False,
        ),
        Page(
            "audiences: list", Role.analyst, "/console/audiences", [("GET", "/api/audiences", None)]
        ),
        Page("audiences: new", Role.marketer, "/console/audiences/new", []),
    ]


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def measure(engine: Engine, url: str, *, rounds: int, requests: int) -> list[Page]:
    settings = Settings(
        environment="test",
        database_url=url,
        secret_key="bench-" + "x" * 40,
        public_url="http://testserver",
    )
    runtime = Runtime.create(settings, engine=engine)
    app = wiring.api_app(runtime)
    keys: dict[Role, str] = {}
    cookies: dict[Role, str] = {}
    with Session(engine) as s:
        for role in (Role.admin, Role.marketer, Role.analyst, Role.sales):
            _, raw = create_key(s, name=f"bench console {role.value}", role=role)
            keys[role] = raw
            s.flush()
            cookies[role] = start_session(s, raw_key=raw)
        s.commit()
    todo = pages(engine)
    # The maturity form keeps its prefill for 10 minutes; `?fresh=1` computes it anew each time
    # (what a marketer asking for fresh figures waits for), beside the JSON prefill.
    fresh = Page(
        "maturity: form, fresh prefill",
        Role.marketer,
        "/console/maturity?fresh=1",
        [("GET", "/api/maturity/prefill", None)],
    )
    todo.append(fresh)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def page_once(p: Page) -> float:
            cookie = {"rejse_console": cookies[p.role]}
            t0 = time.perf_counter()
            if p.form is None:
                r = await client.get(p.path, cookies=cookie)
            else:
                csrf = csrf_token(cookies[p.role], secret=settings.secret_key)
                r = await client.post(
                    p.path,
                    data={**p.form, CSRF_FIELD: csrf},
                    cookies=cookie,
                    headers={"HX-Request": "true"},
                )
            took = time.perf_counter() - t0
            assert r.status_code == p.status, (p.path, r.status_code, r.text[:500])
            return took

        async def api_once(p: Page) -> float:
            total = 0.0
            for method, path, body in p.endpoints:
                t0 = time.perf_counter()
                r = await client.request(
                    method, path, json=body, headers={"Authorization": f"Bearer {keys[p.role]}"}
                )
                total += time.perf_counter() - t0
                assert r.status_code == 200, (path, r.status_code, r.text[:500])
            return total

        for p in todo:  # warm: caches, compiled templates, the plans of the queries
            await page_once(p)
            await api_once(p)
        for _ in range(rounds):
            for p in todo:
                mine, theirs = [], []
                for _ in range(requests):
                    mine.append(await page_once(p))
                    theirs.append(await api_once(p))
                p.pages.append(p95(mine))
                p.apis.append(p95(theirs))
    return todo


def report(todo: list[Page], rounds: int, requests: int) -> None:
    print(f"  p95 of {requests} requests per round, median of {rounds} interleaved rounds")
    print(f"  {'page':<32} {'page ms':>8} {'JSON ms':>8} {'ratio':>6}  endpoints")
    for p in todo:
        mine = statistics.median(p.pages) * 1000
        theirs = statistics.median(p.apis) * 1000 if p.endpoints else 0.0
        ok = mine <= TARGET_MS or not p.page
        names = " + ".join(f"{m} {path.split('?')[0]}" for m, path, _ in p.endpoints)
        ratio = f"{mine / theirs:5.2f}x" if theirs else "     -"
        print(
            f"  {p.name:<32} {mine:8.1f} {theirs:8.1f} {ratio}  {names or '(a form, no data)'}"
            f"{'' if ok else '  OVER 150 ms'}{'' if p.page else '  (a fragment)'}"
        )
        emit(
            BENCH,
            f"console {'page' if p.page else 'fragment'} p95: {p.name}",
            round(mine, 2),
            "ms",
            baseline=round(theirs, 2) if p.endpoints else None,
            baseline_name="its JSON endpoint(s), p95 of their summed time",
            target="<= 150 ms" if p.page else "none (not a page)",
            met=ok,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=3_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/rejse_bench_console",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small database (20,000 profiles, its own `..._quick`), 2 rounds of 5 requests",
    )
    args = parser.parse_args()
    if args.quick:  # `python -m bench --quick` passes it to every benchmark
        args.runs, args.messages, args.events, args.leads = 20_000, 60_000, 200_000, 2_000
        args.rounds, args.requests = 2, 5
        args.database_url = args.database_url.replace("bench_console", "bench_console_quick")
    if args.keep and ready(args.database_url, runs=args.runs):
        engine = make_engine(args.database_url)
        print("  reusing the data (--keep)")
    else:
        engine = prepare(
            args.database_url, runs=args.runs, messages=args.messages, events=args.events
        )
    seed(engine, leads=args.leads, profiles=args.runs)
    sizes = {
        t: _count(engine, f"SELECT count(*) FROM {t}")  # noqa: S608
        for t in ("profile", "profile_identifier", "message", "event", "lead")
    }
    print("console on PostgreSQL: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    todo = asyncio.run(
        measure(engine, args.database_url, rounds=args.rounds, requests=args.requests)
    )
    report(todo, args.rounds, args.requests)


if __name__ == "__main__":
    main()
