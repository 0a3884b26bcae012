"""Schemathesis over the whole OpenAPI document of the real app, on SQLite and PostgreSQL.

Every operation is called with generated requests (valid ones, invalid ones, and valid ones aimed
at records that exist), the first with the key of every role, each later one with the key of
the next allowed role and of the next forbidden one. A role the auth matrix allows gets the
response checks below; any other role must get 403 (and a conforming 403). Temporal is down on
purpose (its address is a loopback port that refuses): what needs it must answer 503 at once.

One sweep per database collects every failure; each check is its own test, so a report names
the check, the operation, the role and a curl command that repeats the request.

A longer run: `REJSE_SCHEMATHESIS_EXAMPLES=500 python -m pytest tests/test_schemathesis.py`.
`REJSE_SCHEMATHESIS_REPORT=<file>` also writes the findings of the run to that file (markdown).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import FailureGroup

from rejse import wiring
from rejse.db import make_engine
from rejse.events.processor import EventProcessor
from rejse.journeys.examples import install_examples
from rejse.roles import Role
from rejse.runtime import Runtime
from tests.conftest import auth, make_settings, role_keys, truncate_all
from tests.events.helpers import example
from tests.test_auth_matrix import ROUTE_RULES, Public, expected_roles

# Generated requests per operation (valid, invalid and aimed ones together).
EXAMPLES = int(os.environ.get("REJSE_SCHEMATHESIS_EXAMPLES", "6"))
REPORT = os.environ.get("REJSE_SCHEMATHESIS_REPORT")
# The sweep runs in the first test's setup, which pytest-timeout counts: a longer run gets the
# time it needs (about 3 s per example on this 2-core machine), a hung request still fails.
pytestmark = pytest.mark.timeout(180 + 10 * EXAMPLES)
# A request that takes longer than this has hung (the app answers 503 when Temporal is down).
REQUEST_TIMEOUT = 15.0

RESPONSE_CHECKS: dict[str, CheckFunction] = {
    name: getattr(schemathesis.checks, name)
    for name in (
        "not_a_server_error",
        "response_schema_conformance",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
    )
}
FORBIDDEN = "forbidden_answers_403"
CHECK_NAMES = [*RESPONSE_CHECKS, FORBIDDEN]


@dataclass(frozen=True)
class Finding:
    check: str
    operation: str
    role: str
    status: int | None
    title: str
    curl: str


@dataclass
class Sweep:
    """What one run over every operation found, per check (first example of each kind only)."""

    backend: str
    findings: dict[str, dict[tuple[str, str, int | None, str], Finding]] = field(
        default_factory=lambda: {name: {} for name in CHECK_NAMES}
    )
    requests: int = 0
    documented: set[str] = field(default_factory=set)
    # (operation label, caller) pairs that got at least one answer
    answered: set[tuple[str, str]] = field(default_factory=set)
    # how often each operation answered each status (what the sweep reached)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    # the slowest answer per operation, in seconds (a hang shows here before the timeout)
    slowest: dict[str, float] = field(default_factory=dict)
    # operations the harness could not exercise at all
    errors: list[str] = field(default_factory=list)
    # the kinds of record the world was seeded with (path parameter names)
    seeded: set[str] = field(default_factory=set)

    def add(self, finding: Finding) -> None:
        key = (finding.operation, finding.role, finding.status, finding.title)
        self.findings[finding.check].setdefault(key, finding)

    def of(self, check: str) -> list[Finding]:
        return list(self.findings[check].values())


# ----------------------------------------------------------------------------- the world


def openapi_path(route_path: str) -> str:
    """How the document writes a route's path: FastAPI documents `{key:path}` as `{key}`."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", route_path)


def route_key(method: str, path: str) -> tuple[str, str]:
    """The auth matrix's key for an operation of the document."""
    for m, p in ROUTE_RULES:
        if m == method and openapi_path(p) == path:
            return (m, p)
    return (method, path)


@dataclass
class Known:
    """Records the sweep aims some requests at, by path parameter (so 200s are checked too)."""

    values: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, name: str, value: Any) -> None:
        if value is not None:
            self.values.setdefault(name, []).append(value)

    def for_path(self, path: str, name: str) -> list[Any]:
        if name == "key":  # journeys, templates and audiences all call it key
            if path.startswith("/api/templates"):
                name = "template_key"
            elif path.startswith("/api/audiences"):
                name = "audience_key"
            else:
                name = "journey_key"
        return self.values.get(name, [])


async def seed_world(app: Any, runtime: Runtime, keys: dict[Role, str]) -> Known:
    """A profile with events, the example journey (a draft), a webhook source, a sales rep, a
    scoring model, an audience, a maturity assessment and a spare API key, made through the
    API itself."""
    known = Known()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def post(path: str, body: Any, role: Role) -> Any:
            r = await client.post(path, json=body, headers=auth(keys[role]))
            return r.json() if r.status_code < 300 else None

        await post("/v1/batch", example("segment_batch.json"), Role.ingest)
        await EventProcessor(runtime, subscribers=[], dispatchers=[]).drain()
        r = await client.get(
            "/api/profiles/lookup",
            params={"user_id": "cust-7012345678901"},
            headers=auth(keys[Role.analyst]),
        )
        if r.status_code == 200:
            known.add("profile_id", r.json()["id"])
            known.add("user_id", "cust-7012345678901")
        known.add("channel", "email")
        install_examples(runtime, activity_names=app.state.activity_names, publish=False)
        known.add("journey_key", "abandoned-cart")
        templates = await client.get("/api/templates", headers=auth(keys[Role.analyst]))
        if templates.status_code == 200:
            for t in templates.json()[:3]:
                known.add("template_key", t.get("key"))
        source = await post(
            "/api/webhook-sources", {"kind": "generic", "name": "sweep-shop"}, Role.admin
        )
        if source:
            known.add("source_id", source.get("id"))
            known.add("source", "sweep-shop")
        rep = await post(
            "/api/sales/reps", {"name": "Sweep Rep", "email": "rep@example.com"}, Role.sales
        )
        if rep:
            known.add("rep_id", rep.get("id"))
        model = await post("/api/scoring/models", {}, Role.marketer)
        if model:
            known.add("version", model.get("version"))
        danes = {"trait": "country", "op": "eq", "value": "DK"}
        audience = await post(
            "/api/audiences",
            {"key": "sweep-danes", "name": "Danes", "condition": danes},
            Role.marketer,
        )
        if audience:
            known.add("audience_key", audience.get("key"))
        spare = await post("/api/keys", {"name": "spare", "role": "analyst"}, Role.admin)
        if spare:
            known.add("key_id", spare.get("id"))
        answers = dict.fromkeys(
            ("goal_importance", "data_contribution", "expectancy", "structural"), 4
        )
        assessment = await post(
            "/api/maturity",
            {"readiness": {**answers, "transactional": 3, "activity": 5}},
            Role.marketer,
        )
        if assessment:
            known.add("assessment_id", assessment.get("id"))
    return known


# ----------------------------------------------------------------------------- the sweep


# Body fields that name a record: an aimed request fills them with one that exists.
AIMED_BODY_FIELDS = ("profile_id",)


def aim_body(case: Any, known: Known) -> Any:
    if isinstance(case.body, dict):
        for name in AIMED_BODY_FIELDS:
            if name in case.body and known.values.get(name):
                case.body[name] = known.values[name][0]
    return case


def case_strategy(operation: Any, known: Known) -> st.SearchStrategy[Any]:
    """Valid and invalid requests, and valid ones that name records that exist (in the path and
    in the body's fields that name one)."""
    modes = [operation.as_strategy(GenerationMode.POSITIVE)]
    modes.append(operation.as_strategy(GenerationMode.NEGATIVE))
    names = [p.name for p in operation.path_parameters]
    aimed = {n: known.for_path(operation.path, n) for n in names}
    if all(aimed.values()):
        modes.append(
            st.fixed_dictionaries({n: st.sampled_from(v) for n, v in aimed.items()}).flatmap(
                lambda params: operation.as_strategy(
                    GenerationMode.POSITIVE, path_parameters=params
                ).map(lambda case: aim_body(case, known))
            )
        )
    return st.one_of(modes)


def run_sweep(sweep: Sweep, app: Any, keys: dict[Role, str], known: Known) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deleting and archiving run last, so the records the other operations aim at still exist
    # (and the journey is still live when it is entered: that call needs Temporal).
    operations.sort(key=lambda op: op.method.upper() == "DELETE" or op.path.endswith("/archive"))
    for operation in operations:
        sweep.documented.add(operation.label)
        rule = ROUTE_RULES.get(route_key(operation.method.upper(), operation.path))
        if rule is None or isinstance(rule, Public):
            callers = Callers(allowed=[("no key", {})], forbidden=[])
        else:
            roles = expected_roles(rule)
            callers = Callers(
                allowed=[(r.value, auth(keys[r])) for r in Role if r in roles],
                forbidden=[(r.value, auth(keys[r])) for r in Role if r not in roles],
            )
        try:
            exercise(sweep, operation, callers, known)()
        except Exception as exc:  # noqa: BLE001 - e.g. a part of the document it cannot use
            inner = [repr(e)[:300] for e in getattr(exc, "exceptions", ())]
            sweep.errors.append(f"{operation.label}: {type(exc).__name__}: {exc!s:.300} {inner}")


@dataclass
class Callers:
    """Who sends an operation's requests: the first request goes out once per role, each later
    one as the next allowed role and the next forbidden one (a fifth of the calls for the same
    coverage of the auth decision once every role has been seen)."""

    allowed: list[tuple[str, dict[str, str]]]
    forbidden: list[tuple[str, dict[str, str]]]
    sent: int = 0

    def next(self) -> list[tuple[str, dict[str, str], bool]]:
        n, self.sent = self.sent, self.sent + 1
        every = [(r, h, True) for r, h in self.allowed] + [(r, h, False) for r, h in self.forbidden]
        if n == 0:
            return every
        out = [(*self.allowed[n % len(self.allowed)], True)]
        if self.forbidden:
            out.append((*self.forbidden[n % len(self.forbidden)], False))
        return out


def exercise(sweep: Sweep, operation: Any, callers: Callers, known: Known) -> Any:
    """A Hypothesis test over `operation` that records what it finds instead of failing: every
    generated request runs (no shrinking, no stop at the first failure), and the same ones on
    every run."""
    label = operation.label

    @seed(20240611)
    @hypothesis_settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=case_strategy(operation, known))
    def test(case: Any) -> None:
        for role, headers, allowed in callers.next():
            sweep.requests += 1
            started = time.monotonic()
            try:
                response = case.call(headers=headers, timeout=REQUEST_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - a hang or a crash is a finding
                first = (str(exc).splitlines() or [""])[0][:200]
                curl = curl_for(case, headers)
                title = f"{type(exc).__name__}: {first}"
                sweep.add(Finding("not_a_server_error", label, role, None, title, curl))
                continue
            took = time.monotonic() - started
            sweep.slowest[label] = max(took, sweep.slowest.get(label, 0.0))
            seen = sweep.statuses.setdefault(label, {})
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            sent = response.request.headers.get("Authorization")
            overridden = sent != headers.get("Authorization")
            if overridden:
                # An invalid case that drops or replaces the key itself: it is checked once, as
                # what it sent, and the roles do not apply.
                role, allowed = ("no key" if sent is None else "a generated key"), True
            sweep.answered.add((label, role))
            curl = curl_for(case, headers)
            if not allowed and response.status_code != 403:
                title = f"{role} got {response.status_code}, expected 403"
                sweep.add(Finding(FORBIDDEN, label, role, response.status_code, title, curl))
            for name, check in RESPONSE_CHECKS.items():
                if name == "not_a_server_error" and documented_unavailable(operation, response):
                    continue
                try:
                    case.validate_response(response, checks=[check], headers=headers)
                except FailureGroup as group:
                    for failure in group.exceptions:
                        sweep.add(
                            Finding(name, label, role, response.status_code, _title(failure), curl)
                        )
                except Exception as exc:  # noqa: BLE001 - recorded, so Hypothesis never retries
                    title = f"the check raised {type(exc).__name__}: {str(exc)[:200]}"
                    sweep.add(Finding(name, label, role, response.status_code, title, curl))
            if overridden:
                break

    return test


def curl_for(case: Any, headers: dict[str, str]) -> str:
    try:
        return str(case.as_curl_command(headers=headers))
    except Exception as exc:  # noqa: BLE001 - a request it cannot print is still a finding
        return f"(no curl command: {type(exc).__name__})"


def documented_unavailable(operation: Any, response: Any) -> bool:
    """A 503 the operation documents is its answer while a service it needs (Temporal, the
    database) is down, not a crash: status_code_conformance still checks that it is documented."""
    return response.status_code == 503 and "503" in operation.responses.status_codes


def _title(failure: Any) -> str:
    title = getattr(failure, "title", type(failure).__name__)
    message = (getattr(failure, "message", "") or "").strip().splitlines()
    return f"{title}: {message[0][:200]}" if message else str(title)


def write_report(sweeps: list[Sweep], path: str) -> None:
    lines = [
        "# Schemathesis findings",
        "",
        f"Examples per operation and mode: {EXAMPLES}. Regenerate with",
        f"`REJSE_SCHEMATHESIS_REPORT={path} python -m pytest tests/test_schemathesis.py`.",
        "",
    ]
    for sweep in sweeps:
        lines.append(f"## {sweep.backend}: summary (operation: findings per check)")
        lines.append("")
        for check in CHECK_NAMES:
            per_op: dict[str, int] = {}
            for f in sweep.of(check):
                per_op[f.operation] = per_op.get(f.operation, 0) + 1
            ops = ", ".join(f"`{op}` {n}" for op, n in sorted(per_op.items()))
            lines.append(f"- {check}: {ops or 'none'}")
        slow = sorted(sweep.slowest.items(), key=lambda item: -item[1])[:5]
        lines.append("- slowest answers: " + ", ".join(f"`{op}` {t:.2f} s" for op, t in slow))
        lines.append("")
        lines.append(f"## {sweep.backend}: statuses answered (status x times)")
        lines.append("")
        for op, seen in sorted(sweep.statuses.items()):
            counts = ", ".join(f"{code} x{n}" for code, n in sorted(seen.items()))
            lines.append(f"- `{op}`: {counts}")
        lines.append("")
        lines.append(
            f"## {sweep.backend}: {len(sweep.documented)} operations, {sweep.requests} requests"
        )
        lines.append("")
        for check in CHECK_NAMES:
            found = sweep.of(check)
            lines.append(f"### {check}: {len(found)}")
            lines.append("")
            for f in sorted(found, key=lambda f: (f.operation, f.status or 0, f.role)):
                lines.append(f"- `{f.operation}` as {f.role} -> {f.status}: {f.title}")
                if f.curl:
                    lines.append(f"  `{f.curl}`")
            lines.append("")
    Path(path).write_text("\n".join(lines))


# ----------------------------------------------------------------------------- fixtures and tests

_SWEEPS: dict[str, Sweep] = {}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sweep(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> Iterator[Sweep]:
    tmp = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    if request.param == "sqlite":
        shutil.copyfile(sqlite_template, tmp / "rejse.db")
        db_url = f"sqlite:///{tmp / 'rejse.db'}"
    else:
        db_url = request.getfixturevalue("pg_url")
    engine = make_engine(db_url)
    if engine.dialect.name == "postgresql":
        truncate_all(engine)
    # Temporal is down: a bound, never listening port refuses at once.
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))
    settings = make_settings(tmp, db_url).model_copy(
        update={"temporal_address": f"127.0.0.1:{refusing.getsockname()[1]}"}
    )
    runtime = Runtime.create(settings, engine=engine)
    keys = role_keys(runtime)
    app = wiring.api_app(runtime)
    known = asyncio.run(seed_world(app, runtime, keys))
    result = Sweep(request.param, seeded=set(known.values))
    run_sweep(result, app, keys, known)
    _SWEEPS[request.param] = result
    if REPORT:
        write_report(list(_SWEEPS.values()), REPORT)
    yield result
    refusing.close()
    engine.dispose()


def _format(found: list[Finding]) -> str:
    shown = sorted(found, key=lambda f: (f.operation, f.status or 0))[:40]
    return "\n".join(
        f"{f.operation} as {f.role} -> {f.status}: {f.title}\n  {f.curl}" for f in shown
    )


@pytest.mark.parametrize("check", CHECK_NAMES)
def test_api_conforms_to_its_document(sweep: Sweep, check: str) -> None:
    found = sweep.of(check)
    assert not found, f"{check}: {len(found)} finding(s) on {sweep.backend}\n" + _format(found)


def test_the_sweep_reaches_every_operation_with_every_role(sweep: Sweep) -> None:
    """Guards the harness: every documented route of the auth matrix was called by each role."""
    missing = []
    for (method, path), rule in ROUTE_RULES.items():
        label = f"{method} {openapi_path(path)}"
        if label not in sweep.documented:
            continue  # pages for people (tracking links, unsubscribe) are not in the document
        callers = ["no key"] if isinstance(rule, Public) else [r.value for r in Role]
        missing += [f"{label} as {c}" for c in callers if (label, c) not in sweep.answered]
    assert not sweep.errors, "\n".join(sweep.errors)
    expected = {"profile_id", "user_id", "channel", "journey_key", "template_key", "source_id"}
    expected |= {"source", "rep_id", "version", "key_id", "audience_key"}
    assert sweep.seeded >= expected, f"the world lacks {sorted(expected - sweep.seeded)}"
    assert not missing, "never answered:\n" + "\n".join(missing)
