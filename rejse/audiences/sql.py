"""The condition language compiled to one SQL query over all profiles (SQLAlchemy Core, SQLite
and PostgreSQL), with exactly the semantics of `rejse.conditions.evaluate` (its docstring is the
definition; tests/audiences/test_equivalence.py proves the two agree on random conditions and
profiles on both databases).

How the semantics map onto SQL:

- JSON (traits, event properties) is walked one path part at a time, so an array index and an
  object key with the same digits behave as in memory. SQLite: `->` with a `$."key"` path for
  printable ASCII keys; other keys (non-ASCII keys may be stored escaped, quotes cannot be
  quoted) through `json_each` comparing the decoded key. PostgreSQL: the `json` column's `->`
  with the key as a bound text parameter (json, not jsonb: jsonb would turn `1e16` into an
  integer and lose whether the number was written as a float).
- Types are checked before values (`json_type` / `json_typeof`), so "1" never equals 1 and true
  is not 1. Numbers compare exactly by value: on SQLite natively (integer vs real is exact); on
  PostgreSQL an integer in the JSON text compares as `numeric` against the exact decimal of
  the condition's value, a float as `float8` (with the bounds of an integer that no float
  represents), as Python compares int and float. Strings order by code point (`COLLATE "C"`
  on PostgreSQL; SQLite's binary collation is UTF-8 byte order, the same).
- Every leaf is a non-null boolean (`CASE WHEN .. THEN true ELSE false END` where SQL's NULL
  could leak), so `not` is plain `NOT`.
- Events: `EXISTS` for the default `count` (>= 1) and `NOT EXISTS` for "none", else a
  correlated `count(*)`; `within` is a bound lower limit on `timestamp`.
- Score: `behaviour * 0.5 ** (elapsed / half_life) + fit` from `profile_score`, as of `now`,
  with the elapsed time in whole microseconds (exact on both databases) divided as Python
  divides two timedeltas, and `pow` as Python's `math.pow` (the same C library).
- Customer value: the profile's columns; `days_since_*` compare the order time with the bound
  `now - days` (exact to the microsecond, as in memory).
- `property` leaves (the current event) have no meaning over all profiles: audiences refuse
  them (`rejse.conditions.audience_issues`) and the compiler raises `UncompilableCondition`.

All values are bound parameters; only constant SQL fragments are literal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from rejse.audiences.facts import (
    EventKey,
    ScoreCurve,
    _utc,
    active_half_life,
    event_key,
    event_specs,
)
from rejse.conditions import _equal, compare, count_ops, days, dependencies, is_index, leaves
from rejse.db import UTCDateTime
from rejse.durations import parse_duration
from rejse.models.audiences import AudienceMembership
from rejse.models.events import Event
from rejse.models.leads import ProfileScore
from rejse.models.profiles import Consent, Profile

PROFILE = Profile.__table__  # type: ignore[attr-defined]
_EVENT = Event.__table__  # type: ignore[attr-defined]
_CONSENT = Consent.__table__  # type: ignore[attr-defined]
_MEMBERSHIP = AudienceMembership.__table__  # type: ignore[attr-defined]
_SCORE = ProfileScore.__table__  # type: ignore[attr-defined]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MAX_INDEX = 2**31 - 1
_UNDERFLOW = 1075.0  # 0.5 ** x is 0.0 from here on (PostgreSQL's power() raises instead)
Expr = ColumnElement[Any]


class UncompilableCondition(ValueError):
    """A condition that has no meaning over all profiles; `field` names the leaf."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.message = message
        self.field = field


def profiles_matching(
    session: Session,
    cond: Mapping[str, Any],
    *,
    now: dt.datetime,
    profile_ids: Collection[str] | None = None,
) -> sa.Select[Any]:
    """`SELECT profile.id` of the live (not erased) profiles matching the validated `cond` as
    of `now`; `profile_ids` restricts it to those ids."""
    compiler = Compiler(session.get_bind().dialect.name, now, active_half_life(session))
    stmt = sa.select(PROFILE.c.id).where(PROFILE.c.erased_at.is_(None), compiler.condition(cond))
    if profile_ids is not None:
        stmt = stmt.where(PROFILE.c.id.in_(list(profile_ids)))
    return stmt


@dataclass
class TimedFacts:
    """What `rejse.conditions.next_change` reads of one profile, from one row of
    `membership_pages`: the oldest event inside each `within` window, the order times, the
    score curve. The rest of the facts protocol is empty (next_change does not read it)."""

    earliest: Mapping[EventKey, dt.datetime | None]
    customer: Mapping[str, Any]
    curve: ScoreCurve
    traits: Mapping[str, Any] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)
    consents: Mapping[str, str] = field(default_factory=dict)
    audiences: Collection[str] = frozenset()

    @property
    def score(self) -> float:
        raise NotImplementedError("next_change reads score_at")

    def score_at(self, when: dt.datetime) -> float:
        return self.curve.at(when)

    def count_events(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> int:
        raise NotImplementedError("next_change reads earliest_event")

    def earliest_event(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> dt.datetime | None:
        return self.earliest[event_key(event, since, where)]


@dataclass
class Page:
    """One page of `membership_pages`: (profile id, matches, what next_change needs or None
    when time alone can change nothing for it) in id order, and the last id the page covers
    (None: the page is the last, it covers every id after the previous page)."""

    rows: list[tuple[str, bool, TimedFacts | None]]
    upto: str | None


def membership_pages(
    session: Session, cond: Mapping[str, Any], *, now: dt.datetime, size: int = 5000
) -> Iterator[Page]:
    """The live profiles in id order, a keyset page of `size` at a time, each with whether it
    matches `cond` as of `now` (`profiles_matching` in one compiled statement), and, when time
    alone can change `cond` (`timed`), every live profile with the columns `next_change`
    reads (one correlated `min(timestamp)` per `within` leaf, the order times, the score
    row). Not timed: the matching profiles only."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # A page's cost estimate (a subplan per leaf and profile) makes PostgreSQL JIT-compile
        # every page, which costs more than running it: off for this transaction's pages
        # (`jit_off` restores the setting when the pass ends).
        with jit_off(conn):
            yield from _membership_pages(session, cond, now=now, size=size)
    else:
        yield from _membership_pages(session, cond, now=now, size=size)


@contextlib.contextmanager
def jit_off(conn: Any) -> Iterator[None]:
    before = conn.execute(sa.text("SELECT current_setting('jit')")).scalar()
    conn.execute(sa.text("SELECT set_config('jit', 'off', true)"))
    try:
        yield
    finally:
        conn.execute(sa.text("SELECT set_config('jit', :v, true)"), {"v": before})


def _membership_pages(
    session: Session, cond: Mapping[str, Any], *, now: dt.datetime, size: int
) -> Iterator[Page]:
    compiler = Compiler(session.get_bind().dialect.name, now, active_half_life(session))
    matches = compiler.condition(cond)
    after = sa.bindparam("_after", type_=PROFILE.c.id.type)
    live = [PROFILE.c.erased_at.is_(None), PROFILE.c.id > after]
    conn = session.connection()
    if not dependencies(cond).timed:
        stmt = sa.select(PROFILE.c.id).where(*live, matches).order_by(PROFILE.c.id).limit(size)
        last = ""
        while True:
            ids = list(conn.execute(stmt, {"_after": last}).scalars())
            if len(ids) < size:
                yield Page([(pid, True, None) for pid in ids], None)
                return
            last = ids[-1]
            yield Page([(pid, True, None) for pid in ids], last)
    # the timed leaves: `within` event leaves, days since an order, the score
    windowed = [leaf for _, leaf in leaves(cond) if "event" in leaf and leaf.get("within")]
    specs = event_specs(windowed)
    names = {leaf["customer"] for _, leaf in leaves(cond) if "customer" in leaf}
    scored = any("score" in leaf for _, leaf in leaves(cond))
    columns: list[Any] = [PROFILE.c.id.label("id"), _sure(matches).label("inside")]
    keys: list[EventKey] = []
    for n, spec in enumerate(specs):
        assert spec.window is not None  # noqa: S101 - windowed leaves only
        since = now - spec.window
        keys.append((spec.event, since, spec.where_key))
        columns.append(compiler.earliest(spec.event, since, spec.where).label(f"m{n}"))
    first = "days_since_first_order" in names
    last_order = "days_since_last_order" in names
    columns += [PROFILE.c.first_order_at.label("first"), PROFILE.c.last_order_at.label("last")]
    s = _SCORE.alias("own_score")  # not the score leaves' correlated `profile_score`
    source: Any = PROFILE
    if scored:
        source = PROFILE.outerjoin(s, s.c.profile_id == PROFILE.c.id)
        columns += [
            s.c.profile_id.label("scored"),
            s.c.behaviour.label("behaviour"),
            s.c.fit.label("fit"),
            s.c.decayed_at.label("decayed_at"),
        ]
    # Only the profiles that match or that time can change are returned: the inner select
    # computes each profile's columns once (OFFSET 0 keeps it from being merged into the
    # outer one, which would compute the subqueries twice), the outer filters and pages.
    inner = (
        sa.select(*columns)
        .select_from(source)
        .where(*live)
        .order_by(PROFILE.c.id)
        .offset(0)
        .subquery("page")
    )
    c = inner.c
    wanted = [c.inside, *[c[f"m{n}"].is_not(None) for n in range(len(keys))]]
    if first:
        wanted.append(c.first.is_not(None))
    if last_order:
        wanted.append(c.last.is_not(None))
    if scored:
        wanted.append(c.scored.is_not(None))
    stmt = sa.select(inner).where(sa.or_(*wanted)).order_by(c.id).limit(size)
    start = ""
    while True:
        rows = conn.execute(stmt, {"_after": start}).mappings().all()
        out: list[tuple[str, bool, TimedFacts | None]] = []
        for row in rows:
            earliest = {k: _utc(row[f"m{n}"]) for n, k in enumerate(keys)}
            first_at = row["first"] if first else None
            last_at = row["last"] if last_order else None
            curve = (
                ScoreCurve(row["behaviour"], row["fit"], row["decayed_at"], compiler.half_life)
                if scored and row["scored"] is not None
                else None
            )
            timed = None
            if curve is not None or first_at or last_at or any(earliest.values()):
                timed = TimedFacts(
                    earliest,
                    {"first_order_at": first_at, "last_order_at": last_at},
                    curve or ScoreCurve(),
                )
            out.append((row["id"], bool(row["inside"]), timed))
        if len(rows) < size:
            yield Page(out, None)
            return
        start = rows[-1]["id"]
        yield Page(out, start)


def _true() -> Expr:
    return sa.true()


def _false() -> Expr:
    return sa.false()


def _sure(pred: Expr) -> Expr:
    """`pred` as a boolean that is never NULL."""
    return sa.case((pred, sa.true()), else_=sa.false())


def _float_bounds(value: int) -> tuple[float, float]:
    """The floats just below and above an integer no float represents."""
    near = float(value)
    if near < value:
        return near, math.nextafter(near, math.inf)
    return math.nextafter(near, -math.inf), near


def _compare_float(expr: Expr, op: str, value: float | int) -> Expr:
    """`expr op value` for a float8/REAL `expr`, exact also for integers beyond 2**53."""
    if isinstance(value, float) or float(value) == value:
        param = sa.literal(float(value), sa.Float)
        result: Expr = _OPS[op](expr, param)
        return result
    lo, hi = _float_bounds(value)
    if op == "eq":
        return _false()
    if op == "ne":
        return expr.is_not(None)
    if op in ("gt", "gte"):
        return expr >= sa.literal(hi, sa.Float)
    return expr <= sa.literal(lo, sa.Float)


_OPS: dict[str, Any] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
_FLIP = {"eq": "eq", "ne": "ne", "gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}


def _number_param(value: float | int) -> Expr:
    if isinstance(value, float):
        return sa.literal(value, sa.Float)
    return sa.literal(value, sa.BigInteger)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain_key(part: str) -> bool:
    """A key SQLite's `$."key"` path finds however the JSON text was escaped."""
    return all(" " <= ch <= "~" and ch not in '"\\' for ch in part)


class Json:
    """A JSON value inside a row: its SQL expression (JSON text on SQLite, `json` on
    PostgreSQL), or NULL when the path is missing."""

    def __init__(self, compiler: Compiler, expr: Expr) -> None:
        self.c = compiler
        self.expr = expr

    # ---------------------------------------------------------------- walking
    def get(self, path: Sequence[str]) -> Json:
        node = self
        for part in path:
            node = node._step(part)
        return node

    def _step(self, part: str) -> Json:
        key = self._key(part)
        if is_index(part) and int(part) <= _MAX_INDEX:
            return Json(self.c, sa.func.coalesce(self._index(int(part)), key))
        return Json(self.c, key)

    def _index(self, n: int) -> Expr:
        if self.c.pg:
            return self.expr.op("->")(sa.cast(sa.literal(n, sa.Integer), sa.Integer))
        return self.expr.op("->")(sa.literal(f"$[{n}]", sa.Text))

    def _key(self, part: str) -> Expr:
        if self.c.pg:
            return self.expr.op("->")(sa.cast(sa.literal(part, sa.Text), sa.Text))
        if _plain_key(part):
            return self.expr.op("->")(sa.literal(f'$."{part}"', sa.Text))
        each = sa.func.json_each(self.expr).table_valued("key", "value", "type")
        as_json = sa.case(
            (each.c.type == "true", sa.literal("true", sa.Text)),
            (each.c.type == "false", sa.literal("false", sa.Text)),
            (each.c.type.in_(("object", "array")), each.c.value),
            else_=sa.func.json_quote(each.c.value),
        )
        return (
            sa.select(as_json)
            .select_from(each)
            .where(each.c.key == sa.literal(part, sa.Text))
            .limit(1)
            .scalar_subquery()
        )

    # ---------------------------------------------------------------- reading
    @property
    def type(self) -> Expr:
        """SQLite: json_type names; PostgreSQL: json_typeof names. NULL when missing."""
        if self.c.pg:
            return sa.func.json_typeof(self.expr)
        return sa.func.json_type(self.expr)

    @property
    def value(self) -> Expr:
        """The scalar as SQL: SQLite's value, PostgreSQL's text of the scalar."""
        if self.c.pg:
            return self.expr.op("#>>")(sa.literal_column("'{}'"))
        return self.expr.op("->>")(sa.literal("$", sa.Text))

    def present(self) -> Expr:
        t = self.type
        return sa.and_(t.is_not(None), t != "null")

    # ------------------------------------------------------------- predicates
    def equals(self, expected: Any) -> Expr:
        """Typed equality (`rejse.conditions._equal`): null equals JSON null."""
        return self.c.typed_equal(self.type, self.value, expected)

    def ordered(self, op: str, expected: Any) -> Expr:
        t, v = self.type, self.value
        if _is_number(expected):
            return self.c.number_compare(t, v, op, expected)
        if isinstance(expected, str):
            if self.c.pg:
                return sa.and_(
                    t == "string", _OPS[op](v.collate("C"), sa.literal(expected, sa.Text))
                )
            return sa.and_(t == "text", _OPS[op](v, sa.literal(expected, sa.Text)))
        return _false()

    def contains(self, expected: Any) -> Expr:
        options = [self.c.array_has(self, expected)]
        if isinstance(expected, str):
            t, v = self.type, self.value
            needle = sa.literal(expected, sa.Text)
            if self.c.pg:
                options.append(sa.and_(t == "string", sa.func.strpos(v, needle) > 0))
            else:
                options.append(sa.and_(t == "text", sa.func.instr(v, needle) > 0))
        return sa.or_(*options)

    def compare(self, op: str, expected: Any) -> Expr:
        """`rejse.conditions.compare(op, <this value>, expected)`."""
        present = self.present()
        if op == "exists":
            return _sure(present) if expected is not False else sa.not_(_sure(present))
        absent = op == "ne" and expected is not None  # compare's answer for missing / null
        if op == "eq":
            test = _false() if expected is None else self.equals(expected)
        elif op == "ne":
            test = sa.true() if expected is None else sa.not_(_sure(self.equals(expected)))
        elif op == "in":
            items = [item for item in expected if item is not None]
            test = sa.or_(*[self.equals(item) for item in items]) if items else _false()
        elif op == "contains":
            test = self.contains(expected)
        else:
            test = self.ordered(op, expected)
        return sa.case((present, _sure(test)), else_=sa.true() if absent else sa.false())


class Compiler:
    def __init__(self, dialect: str, now: dt.datetime, half_life: dt.timedelta | None) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database dialect {dialect}")
        self.pg = dialect == "postgresql"
        self.now = now
        self.half_life = half_life

    # -------------------------------------------------------------- typed scalars
    def typed_equal(self, t: Expr, v: Expr, expected: Any) -> Expr:
        if expected is None:
            return t == "null"
        if isinstance(expected, bool):
            if self.pg:
                return sa.and_(t == "boolean", v == ("true" if expected else "false"))
            return t == ("true" if expected else "false")
        if _is_number(expected):
            return self.number_compare(t, v, "eq", expected)
        if isinstance(expected, str):
            return sa.and_(
                t == ("string" if self.pg else "text"), v == sa.literal(expected, sa.Text)
            )
        return _false()  # validation admits scalars only

    def number_compare(self, t: Expr, v: Expr, op: str, expected: float | int) -> Expr:
        """`v op expected` when `t` says v is a JSON number (not a boolean); false otherwise."""
        if not self.pg:
            return sa.and_(t.in_(("integer", "real")), _OPS[op](v, _number_param(expected)))
        exact = sa.literal(Decimal(expected), sa.Numeric(asdecimal=True))
        by_kind = sa.case(
            (
                v.regexp_match("^-?[0-9]+$"),  # written as an integer: exact
                _OPS[op](sa.cast(v, sa.Numeric), exact),
            ),
            else_=_compare_float(sa.cast(v, sa.Float), op, expected),
        )
        return sa.case((t == "number", _sure(by_kind)), else_=sa.false())

    def array_has(self, node: Json, expected: Any) -> Expr:
        """`node` is an array with an element equal to `expected` (typed)."""
        if self.pg:
            array = sa.case((node.type == "array", node.expr), else_=sa.func.json_build_array())
            items = sa.func.json_array_elements(array).table_valued("value")
            element = Json(self, items.c.value)
            return sa.exists(sa.select(1).select_from(items).where(element.equals(expected)))
        each = sa.func.json_each(node.expr).table_valued("value", "type")
        return sa.and_(
            node.type == "array",
            sa.exists(
                sa.select(1)
                .select_from(each)
                .where(self.typed_equal(each.c.type, each.c.value, expected))
            ),
        )

    # -------------------------------------------------------------- conditions
    def condition(self, cond: Mapping[str, Any], path: str = "condition") -> Expr:
        if "all" in cond:
            return sa.and_(
                *[self.condition(c, f"{path}.all[{n}]") for n, c in enumerate(cond["all"])]
            )
        if "any" in cond:
            return sa.or_(
                *[self.condition(c, f"{path}.any[{n}]") for n, c in enumerate(cond["any"])]
            )
        if "not" in cond:
            return sa.not_(self.condition(cond["not"], f"{path}.not"))
        if "trait" in cond:
            node = Json(self, sa.type_coerce(PROFILE.c.traits, sa.Text)).get(
                cond["trait"].split(".")
            )
            return node.compare(cond["op"], cond.get("value", True))
        if "event" in cond:
            return self.event(cond)
        if "score" in cond:
            score = self.score()
            return sa.and_(
                *[_sure(_compare_float(score, op, v)) for op, v in cond["score"].items()]
            )
        if "customer" in cond:
            return self.customer(cond)
        if "audience" in cond:
            m = _MEMBERSHIP
            return sa.exists(
                sa.select(1).where(
                    m.c.audience_key == sa.literal(cond["audience"], sa.Text),
                    m.c.profile_id == PROFILE.c.id,
                )
            )
        if "consent" in cond:
            c = _CONSENT
            return sa.exists(
                sa.select(1).where(
                    c.c.profile_id == PROFILE.c.id,
                    c.c.channel == sa.literal(cond["consent"], sa.Text),
                    c.c.status == "granted",
                )
            )
        if "property" in cond:
            raise UncompilableCondition(
                "a property condition reads the current event; over all profiles there is "
                "none (use an event condition with where)",
                field=f"{path}.property",
            )
        raise ValueError("unknown condition")

    def event(self, cond: Mapping[str, Any]) -> Expr:
        e = _EVENT.alias("e")
        preds: list[Expr] = [
            e.c.profile_id == PROFILE.c.id,
            e.c.event == sa.literal(cond["event"], sa.Text),
        ]
        if cond.get("within"):
            since = self.now - parse_duration(cond["within"])
            preds.append(e.c.timestamp >= sa.literal(since, UTCDateTime))
        possible = True
        for path, expected in (cond.get("where") or {}).items():
            pred = self.where(e, cond["event"], path, expected)
            if pred is None:
                possible = False
            else:
                preds.append(pred)
        ops = count_ops(cond)

        def holds(n: int) -> bool:
            return all(compare(op, n, v) for op, v in ops.items())

        if not possible:  # no event can match: the count is 0
            return _true() if holds(0) else _false()
        shape = _count_shape(ops)
        if shape == "some":
            return sa.exists(sa.select(1).select_from(e).where(*preds))
        if shape == "none":
            return sa.not_(sa.exists(sa.select(1).select_from(e).where(*preds)))
        count = sa.select(sa.func.count()).select_from(e).where(*preds).scalar_subquery()
        return sa.and_(*[_OPS[op](count, _number_param(v)) for op, v in ops.items()])

    def earliest(self, name: str, since: dt.datetime, where: Mapping[str, Any] | None) -> Expr:
        """The profile's oldest event of `name` at or after `since` matching `where` (NULL if
        none): `earliest_event` in SQL, with the event leaf's own predicates."""
        e = _EVENT.alias("e")
        preds: list[Expr] = [
            e.c.profile_id == PROFILE.c.id,
            e.c.event == sa.literal(name, sa.Text),
            e.c.timestamp >= sa.literal(since, UTCDateTime),
        ]
        for path, expected in (where or {}).items():
            pred = self.where(e, name, path, expected)
            if pred is None:  # no event can match
                return sa.null()
            preds.append(pred)
        return sa.select(sa.func.min(e.c.timestamp)).where(*preds).scalar_subquery()

    def where(self, e: Any, name: str, path: str, expected: Any) -> Expr | None:
        """A `where` path of an event as SQL; None when no event can match it."""
        head, *rest = path.split(".")
        if head == "event" and not rest:
            return _true() if _equal(name, expected) else None
        if head != "properties" or not rest:  # the properties object never equals a scalar
            return None
        node = Json(self, sa.type_coerce(e.c.properties, sa.Text)).get(rest)
        return _sure(node.equals(expected))

    def score(self) -> Expr:
        s = _SCORE
        if self.half_life is None:
            value: Expr = s.c.behaviour + s.c.fit
        else:
            x = self._elapsed_us(s.c.decayed_at) / sa.literal(
                float(self.half_life // dt.timedelta(microseconds=1)), sa.Float
            )
            factor = sa.case(
                (self._elapsed_us(s.c.decayed_at) <= 0, sa.literal(1.0, sa.Float)),
                (x >= _UNDERFLOW, sa.literal(0.0, sa.Float)),
                else_=sa.func.power(sa.literal(0.5, sa.Float), x),
            )
            value = self._product(s.c.behaviour, factor) + s.c.fit
        sub = sa.select(value).where(s.c.profile_id == PROFILE.c.id).scalar_subquery()
        return sa.func.coalesce(sub, sa.literal(0.0, sa.Float))

    def _product(self, behaviour: Expr, factor: Expr) -> Expr:
        """`behaviour * factor` as IEEE (and Python) multiply. PostgreSQL raises "underflow"
        where the product of two non-zero floats rounds to zero (a tiny stored behaviour
        decayed further), so when an operand is tiny the product is first tested on operands
        scaled by 2**537 and 2**538 (exact; the scaled product can neither overflow nor
        underflow): at most 1, i.e. |b * f| <= 2**-1075, rounds to zero and is 0. (The factor
        is 0 or at least 2**-1074.) A nested CASE: PostgreSQL evaluates it in order. Left
        inexact: an exact scaled product in (1, 1 + 2**-53], which the scaled multiply rounds
        to 1, is taken as 0 where IEEE gives 2**-1074."""
        if not self.pg:
            return behaviour * factor

        def lit(v: float) -> Expr:
            return sa.literal(v, sa.Float)

        tiny = lit(2.0**-500)  # both operands at least this: the product is a normal float
        b = sa.func.abs(behaviour)
        scaled = (b * lit(2.0**537)) * (factor * lit(2.0**538))
        product = behaviour * factor
        return sa.case(
            (
                sa.and_(
                    b > lit(0.0),
                    factor > lit(0.0),
                    b < lit(2.0**400),
                    sa.or_(b < tiny, factor < tiny),
                ),
                sa.case((scaled <= lit(1.0), lit(0.0)), else_=product),
            ),
            else_=product,
        )

    def _elapsed_us(self, column: Any) -> Expr:
        """Whole microseconds from `column` to now, exact."""
        now_us = (self.now - _EPOCH) // dt.timedelta(microseconds=1)
        if self.pg:
            stored = sa.extract("epoch", column) * 1_000_000
            return sa.cast(sa.literal(now_us, sa.BigInteger) - stored, sa.Float)
        # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' text: whole seconds plus the digits
        seconds = sa.cast(sa.func.strftime("%s", sa.func.substr(column, 1, 19)), sa.BigInteger)
        micros = sa.cast(sa.func.substr(column, 21, 6), sa.BigInteger)
        return sa.literal(now_us, sa.BigInteger) - (seconds * 1_000_000 + micros)

    def customer(self, cond: Mapping[str, Any]) -> Expr:
        p = PROFILE.c
        name, op, expected = cond["customer"], cond["op"], cond.get("value", True)
        if name in ("order_count", "revenue"):
            if op == "exists":
                return _true() if expected is not False else _false()
            column = p.order_count if name == "order_count" else p.revenue
            if name == "revenue":
                return _sure(_compare_float(column, op, expected))
            return _sure(_OPS[op](column, _number_param(expected)))
        if name == "average_order_value":
            has = p.order_count > 0
            if op == "exists":
                return _sure(has) if expected is not False else sa.not_(_sure(has))
            average = p.revenue / sa.cast(sa.func.nullif(p.order_count, 0), sa.Float)
            return sa.case((has, _sure(_compare_float(average, op, expected))), else_=sa.false())
        at = p.first_order_at if name == "days_since_first_order" else p.last_order_at
        if op == "exists":
            return sa.and_(at.is_not(None) if expected is not False else at.is_(None))
        cut = sa.literal(self.now - days(expected), UTCDateTime)
        # now - at OP days  <=>  at FLIP(OP) now - days, to the microsecond
        return sa.case((at.is_not(None), _sure(_OPS[_FLIP[op]](at, cut))), else_=sa.false())


def _count_shape(ops: Mapping[str, Any]) -> str:
    """ "some" when the count comparisons mean "at least one", "none" for "zero", else "count"."""
    if len(ops) != 1:
        return "count"
    [(op, v)] = ops.items()
    if (op == "gte" and 0 < v <= 1) or (op == "gt" and 0 <= v < 1):
        return "some"
    if (op == "eq" and v == 0) or (op == "lt" and 0 < v <= 1) or (op == "lte" and 0 <= v < 1):
        return "none"
    return "count"


__all__ = [
    "Compiler",
    "Page",
    "TimedFacts",
    "UncompilableCondition",
    "membership_pages",
    "profiles_matching",
]
