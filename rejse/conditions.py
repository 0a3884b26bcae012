"""Conditions shared by branches, audiences and scoring. Framework-free.

A condition is JSON:

    {"all": [c, ...]}  {"any": [c, ...]}  {"not": c}
    {"trait": "country", "op": "eq", "value": "DK"}          # dotted paths: "address.city"
    {"property": "total", "op": "gte", "value": 100}         # the current event's properties
    {"event": "Order Completed", "within": "P90D",           # within and where are optional
     "where": {"properties.currency": "DKK"}, "count": {"gte": 1}}   # count defaults to >= 1
    {"score": {"gte": 50}}                                   # one or more comparisons
    {"customer": "revenue", "op": "gte", "value": 5000}      # customer value (orders)
    {"audience": "vip"}
    {"consent": "email"}                                     # consent granted for the channel

`op` is one of eq ne gt gte lt lte in contains exists. `exists` takes an optional boolean value
(default true). A comparison between values of different types is false, never an error.

The semantics, one definition for both evaluators (`evaluate` here for one profile in memory,
`rejse.audiences.sql` for all profiles in one SQL query; a property-based test proves them equal):

- Values in a condition are JSON scalars: strings, numbers, booleans, null (`in` takes a list
  of them). Numbers compare by value (1 == 1.0, exactly, also for integers beyond 2**53);
  booleans are not numbers; strings are not numbers ("1" != 1).
- `gt gte lt lte` order two numbers or two strings (by code point); anything else is false.
- `contains`: a substring of a string, an element of an array (typed equality); else false.
- A path (`address.city`, `lines.0.sku`) goes into objects by key and into arrays by index; a
  missing value and JSON null are both absent: every op is false on them except `ne` with a
  non-null value and `exists` false. In `where`, a path is read from
  `{"properties": <the event's properties>, "event": <its name>}`, and a value equals only a
  value of its own type (null equals JSON null, not a missing path).
- `event`: the profile's events of that name, those at or after `now - within`, matching every
  `where` path; the count is compared (default `{"gte": 1}`).
- `score`: the profile's score with decay applied as of `now` (behaviour decays with the active
  scoring model's half-life, fit does not); no score yet is 0.
- `customer`: `order_count` and `revenue` (net of refunds) are 0 without orders;
  `average_order_value` (revenue / orders), `days_since_first_order` and
  `days_since_last_order` are absent without orders: every comparison on them is false (also
  `ne`) and `exists` is false. `days_since_*` compare exactly: `gt 90` holds from 90 days and
  one microsecond after the order. Values are numbers (days at most `MAX_DAYS`).
- `property` (the current event's properties) exists only when one event is being looked at
  (branches, scoring rules); audiences are over profiles and refuse it (`audience_issues`).

`next_change` gives the earliest future moment at which time alone can change a condition (a
counted event leaving its window, a days-since threshold, a decaying score crossing a threshold);
`dependencies` says what a condition reads, so only the events that can change it re-check it.

A condition nests at most `MAX_DEPTH` levels (a leaf alone is one) and holds at most
`MAX_NODES` conditions; validation measures that first, without recursion, so a hostile tree
(a `not` nested a thousand deep) is refused with its field instead of exhausting the stack.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rejse.durations import DurationError, parse_duration

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists")
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")
LEAF_KEYS = ("trait", "property", "event", "score", "customer", "audience", "consent")
CUSTOMER_FIELDS = (
    "order_count",
    "revenue",
    "average_order_value",
    "days_since_first_order",
    "days_since_last_order",
)
CUSTOMER_OPS = (*COMPARISONS, "exists")
MAX_DAYS = 100_000  # days_since_* thresholds (about 270 years)
MAX_DEPTH = 32
MAX_NODES = 1_000
_MISSING = object()
_MICRO = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Issue:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class Facts(Protocol):
    """What a condition can see about one profile."""

    @property
    def traits(self) -> Mapping[str, Any]: ...

    @property
    def properties(self) -> Mapping[str, Any]: ...

    @property
    def score(self) -> float:
        """The score with decay applied as of the facts' now."""
        ...

    @property
    def consents(self) -> Mapping[str, str]: ...

    @property
    def audiences(self) -> Collection[str]: ...

    @property
    def customer(self) -> Mapping[str, Any]:
        """order_count, revenue, average_order_value (None without orders), first_order_at,
        last_order_at (UTC datetimes or None)."""
        ...

    def score_at(self, when: dt.datetime) -> float:
        """The score with decay applied as of `when` (for `next_change`)."""
        ...

    def count_events(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> int: ...

    def earliest_event(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> dt.datetime | None:
        """Timestamp of the oldest event that `count_events` would count, None if none."""
        ...


@dataclass
class RecordedEvent:
    event: str
    timestamp: dt.datetime
    properties: dict[str, Any] = field(default_factory=dict)


def event_matches(
    e: RecordedEvent, event: str, since: dt.datetime | None, where: Mapping[str, Any] | None
) -> bool:
    return (
        e.event == event
        and (since is None or e.timestamp >= since)
        and matches(where or {}, {"properties": e.properties, "event": e.event})
    )


@dataclass
class StaticFacts:
    """Facts held in memory (for workflows' activities, previews and tests). The score does not
    decay here: `score_at` is `score` at any time."""

    traits: Mapping[str, Any] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)
    score: float = 0.0
    consents: Mapping[str, str] = field(default_factory=dict)
    audiences: Collection[str] = field(default_factory=frozenset)
    events: Sequence[RecordedEvent] = ()
    customer: Mapping[str, Any] = field(default_factory=dict)

    def score_at(self, when: dt.datetime) -> float:
        return self.score

    def count_events(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> int:
        return sum(1 for e in self.events if event_matches(e, event, since, where))

    def earliest_event(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> dt.datetime | None:
        return min(
            (e.timestamp for e in self.events if event_matches(e, event, since, where)),
            default=None,
        )


# --------------------------------------------------------------------------------- helpers


def is_index(part: str) -> bool:
    """A path part that indexes an array (ASCII digits; an object still takes it as a key)."""
    return part.isascii() and part.isdigit()


def resolve_path(data: Any, path: str, default: Any = None) -> Any:
    """`resolve_path({"a": {"b": 1}}, "a.b") == 1`; list indexes allowed (`lines.0.sku`)."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return default
            current = current[part]
        elif (
            isinstance(current, Sequence)
            and not isinstance(current, str)
            and is_index(part)
            and int(part) < len(current)
        ):
            current = current[int(part)]
        else:
            return default
    return current


def matches(where: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Every dotted path in `where` equals its value in `data` (strings compared as given)."""
    return all(
        _equal(resolve_path(data, path, _MISSING), expected) for path, expected in where.items()
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    """A value a condition may hold: a JSON scalar, integers in signed 64 bits (as stored)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**63
    return value is None or isinstance(value, (str, int, bool))


def _equal(actual: Any, expected: Any) -> bool:
    """Numbers compare by value (1 == 1.0); anything else only with its own type ("1" != 1)."""
    if actual is _MISSING:
        return False
    if _is_number(actual) and _is_number(expected):
        return bool(actual == expected)
    return type(actual) is type(expected) and actual == expected


def _ordered(op: str, actual: Any, expected: Any) -> bool:
    """gt/gte/lt/lte between two numbers or two strings; anything else is false."""
    if not (
        (_is_number(actual) and _is_number(expected))
        or (isinstance(actual, str) and isinstance(expected, str))
    ):
        return False
    if op == "gt":
        return bool(actual > expected)
    if op == "gte":
        return bool(actual >= expected)
    if op == "lt":
        return bool(actual < expected)
    return bool(actual <= expected)


def compare(op: str, actual: Any, expected: Any = True) -> bool:
    if op == "exists":
        present = actual is not _MISSING and actual is not None
        return present if expected is not False else not present
    if actual is _MISSING or actual is None:
        return op == "ne" and expected is not None
    if op == "eq":
        return _equal(actual, expected)
    if op == "ne":
        return not _equal(actual, expected)
    if op == "in":
        return any(_equal(actual, item) for item in expected)
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        if isinstance(actual, Sequence) and not isinstance(actual, (bytes, bytearray)):
            return any(_equal(item, expected) for item in actual)
        return False  # numbers, booleans, objects contain nothing
    if op in ("gt", "gte", "lt", "lte"):
        return _ordered(op, actual, expected)
    raise ValueError(f"unknown op {op!r}")


def customer_value(customer: Mapping[str, Any], name: str, *, now: dt.datetime) -> Any:
    """A customer field as the condition sees it: a number, a timedelta for `days_since_*`
    (now minus the order time), or `_MISSING` when there are no orders."""
    if name in ("order_count", "revenue"):
        return customer.get(name) or 0
    if name == "average_order_value":
        value = customer.get("average_order_value")
        return _MISSING if value is None else value
    at = customer.get("first_order_at" if name == "days_since_first_order" else "last_order_at")
    return _MISSING if at is None else now - at


def days(value: float) -> dt.timedelta:
    """A validated days_since_* threshold as a duration (rounded to microseconds)."""
    return dt.timedelta(days=value)


def _compare_customer(cond: Mapping[str, Any], facts: Facts, now: dt.datetime) -> bool:
    name, op, expected = cond["customer"], cond["op"], cond.get("value", True)
    actual = customer_value(facts.customer, name, now=now)
    if op == "exists":
        return compare(op, actual, expected)
    if actual is _MISSING:
        return False
    if isinstance(actual, dt.timedelta):
        return _COMPARE[op](actual, days(expected))
    return compare(op, actual, expected)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b),
    "ne": lambda a, b: bool(a != b),
    "gt": lambda a, b: bool(a > b),
    "gte": lambda a, b: bool(a >= b),
    "lt": lambda a, b: bool(a < b),
    "lte": lambda a, b: bool(a <= b),
}


# --------------------------------------------------------------------------------- evaluate


def evaluate(cond: Mapping[str, Any], facts: Facts, *, now: dt.datetime) -> bool:
    """Evaluate a validated condition against one profile's facts at time `now`."""
    if "all" in cond:
        return all(evaluate(c, facts, now=now) for c in cond["all"])
    if "any" in cond:
        return any(evaluate(c, facts, now=now) for c in cond["any"])
    if "not" in cond:
        return not evaluate(cond["not"], facts, now=now)
    if "trait" in cond:
        return compare(
            cond["op"], resolve_path(facts.traits, cond["trait"], _MISSING), cond.get("value", True)
        )
    if "property" in cond:
        return compare(
            cond["op"],
            resolve_path(facts.properties, cond["property"], _MISSING),
            cond.get("value", True),
        )
    if "event" in cond:
        since = now - parse_duration(cond["within"]) if cond.get("within") else None
        count = facts.count_events(cond["event"], since=since, where=cond.get("where"))
        return all(compare(op, count, value) for op, value in count_ops(cond).items())
    if "score" in cond:
        return all(compare(op, facts.score, value) for op, value in cond["score"].items())
    if "customer" in cond:
        return _compare_customer(cond, facts, now)
    if "audience" in cond:
        return cond["audience"] in facts.audiences
    if "consent" in cond:
        return facts.consents.get(cond["consent"]) == "granted"
    raise ValueError("unknown condition")


def count_ops(cond: Mapping[str, Any]) -> Mapping[str, Any]:
    return cond.get("count") or {"gte": 1}


# --------------------------------------------------------------------------------- walking


def leaves(
    cond: Mapping[str, Any], path: str = "condition"
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every leaf of a validated condition with its field path."""
    todo = [(cond, path)]
    while todo:
        node, at = todo.pop()
        if "not" in node:
            todo.append((node["not"], f"{at}.not"))
        elif "all" in node or "any" in node:
            key = "all" if "all" in node else "any"
            todo.extend((c, f"{at}.{key}[{n}]") for n, c in reversed(list(enumerate(node[key]))))
        else:
            yield at, node


@dataclass(frozen=True)
class Dependencies:
    """What a condition reads: the events it counts, the top-level trait names it looks at,
    whether it reads consent, the score, customer value, which audiences, the current event's
    properties, and whether time alone can change it (`next_change`)."""

    events: frozenset[str] = frozenset()
    traits: frozenset[str] = frozenset()
    consent: bool = False
    score: bool = False
    customer: bool = False
    audiences: frozenset[str] = frozenset()
    properties: bool = False
    timed: bool = False


def dependencies(cond: Mapping[str, Any]) -> Dependencies:
    events: set[str] = set()
    traits: set[str] = set()
    audiences: set[str] = set()
    consent = score = customer = properties = timed = False
    for _, leaf in leaves(cond):
        if "trait" in leaf:
            traits.add(leaf["trait"].split(".", 1)[0])
        elif "property" in leaf:
            properties = True
        elif "event" in leaf:
            events.add(leaf["event"])
            timed = timed or bool(leaf.get("within"))
        elif "score" in leaf:
            score = timed = True
        elif "customer" in leaf:
            customer = True
            timed = timed or leaf["customer"].startswith("days_since_")
        elif "audience" in leaf:
            audiences.add(leaf["audience"])
        elif "consent" in leaf:
            consent = True
    return Dependencies(
        events=frozenset(events),
        traits=frozenset(traits),
        consent=consent,
        score=score,
        customer=customer,
        audiences=frozenset(audiences),
        properties=properties,
        timed=timed,
    )


# ------------------------------------------------------------------------------ next change

_HORIZON = dt.timedelta(days=365 * 100)  # a decaying score is not followed further than this


def next_change(cond: Mapping[str, Any], facts: Facts, *, now: dt.datetime) -> dt.datetime | None:
    """The earliest moment after `now` at which time alone can change a leaf of `cond` (and so
    possibly the condition): the oldest counted event leaving its `within` window, a
    `days_since_*` threshold, the decaying score crossing a `gt/gte/lt/lte` threshold. None if
    no time alone changes anything. Conservative: a leaf's change need not change the whole
    condition (a re-check at that moment then finds nothing to do and asks again). The
    instant a decaying score equals an `eq`/`ne` threshold exactly is not followed."""
    moments: list[dt.datetime] = []
    for _, leaf in leaves(cond):
        try:
            if "event" in leaf and leaf.get("within"):
                window = parse_duration(leaf["within"])
                oldest = facts.earliest_event(
                    leaf["event"], since=now - window, where=leaf.get("where")
                )
                if oldest is not None:
                    moments.append(oldest + window + _MICRO)  # out of the window from then
            elif "customer" in leaf and leaf["customer"].startswith("days_since_"):
                if leaf["op"] == "exists":
                    continue
                key = (
                    "first_order_at"
                    if leaf["customer"] == "days_since_first_order"
                    else "last_order_at"
                )
                at = facts.customer.get(key)
                if at is not None:
                    edge = at + days(leaf["value"])  # now - at == days from here
                    flips = {
                        "gt": (edge + _MICRO,),
                        "lte": (edge + _MICRO,),
                        "gte": (edge,),
                        "lt": (edge,),
                    }.get(leaf["op"], (edge, edge + _MICRO))  # eq, ne: on and off again
                    moments.extend(m for m in flips if m > now)
            elif "score" in leaf:
                for op, value in leaf["score"].items():
                    if op in ("gt", "gte", "lt", "lte"):
                        moment = _score_crossing(facts, op, value, now)
                        if moment is not None:
                            moments.append(moment)
        except OverflowError:  # a moment beyond the calendar never comes
            continue
    return min((m for m in moments if m > now), default=None)


def _score_crossing(facts: Facts, op: str, value: float, now: dt.datetime) -> dt.datetime | None:
    """First microsecond after `now` at which `score op value` differs from now. The decayed
    score moves monotonically towards the fit points, so the answer flips at most once; found
    by bisection on the facts' own `score_at` (the same arithmetic the evaluators use)."""

    def holds(offset: int) -> bool:
        return compare(op, facts.score_at(now + dt.timedelta(microseconds=offset)), value)

    current = holds(0)
    try:
        hi = _HORIZON // _MICRO
        now + dt.timedelta(microseconds=hi)
    except OverflowError:
        return None
    if holds(hi) == current:
        return None
    lo = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if holds(mid) == current:
            lo = mid
        else:
            hi = mid
    return now + dt.timedelta(microseconds=hi)


# --------------------------------------------------------------------------------- audiences


def audience_issues(cond: Mapping[str, Any], *, path: str = "condition") -> list[Issue]:
    """What a (validated) condition may not use in an audience: `property` leaves read the
    current event, and an audience is over profiles, not one event."""
    return [
        Issue(
            f"{at}.property",
            "an audience is over profiles, not one event: use an event condition with "
            '"where" (e.g. {"event": "Order Completed", "where": {"properties.total": 100}})',
        )
        for at, leaf in leaves(cond, path)
        if "property" in leaf
    ]


# --------------------------------------------------------------------------------- validate


def condition_size(cond: Any) -> tuple[int, int]:
    """(depth, number of conditions) of a condition tree, counted without recursion; stops
    counting once either is over its limit."""
    deepest, count = 0, 0
    todo = [(cond, 1)]
    while todo and deepest <= MAX_DEPTH and count <= MAX_NODES:
        node, depth = todo.pop()
        count += 1
        deepest = max(deepest, depth)
        if not isinstance(node, Mapping):
            continue
        if isinstance(node.get("not"), Mapping):
            todo.append((node["not"], depth + 1))
        for key in ("all", "any"):
            items = node.get(key)
            if isinstance(items, list):
                todo.extend((c, depth + 1) for c in items)
    return deepest, count


def size_issues(cond: Any, *, path: str = "condition") -> list[Issue]:
    """The limits: at most `MAX_DEPTH` levels and `MAX_NODES` conditions."""
    depth, count = condition_size(cond)
    if depth > MAX_DEPTH:
        return [
            Issue(path, f"conditions nest at most {MAX_DEPTH} levels deep; this one nests deeper")
        ]
    if count > MAX_NODES:
        return [
            Issue(path, f"a condition holds at most {MAX_NODES:,} conditions; this one holds more")
        ]
    return []


def validate_condition(cond: Any, *, path: str = "condition") -> list[Issue]:
    """All problems of a condition tree, each naming its dotted field path; the size limits
    first (a tree over them is not looked into further)."""
    return size_issues(cond, path=path) or _validate(cond, path)


def _validate(cond: Any, path: str) -> list[Issue]:
    if not isinstance(cond, Mapping):
        return [Issue(path, "must be an object")]
    groups = [k for k in ("all", "any", "not") if k in cond]
    leaves = [k for k in LEAF_KEYS if k in cond]
    if len(groups) + len(leaves) != 1:
        return [Issue(path, "must have exactly one of: all, any, not, " + ", ".join(LEAF_KEYS))]
    if groups:
        key = groups[0]
        if len(cond) != 1:
            return [Issue(path, f"'{key}' cannot be combined with other keys")]
        if key == "not":
            return _validate(cond["not"], f"{path}.not")
        items = cond[key]
        if not isinstance(items, list) or not items:
            return [Issue(f"{path}.{key}", "must be a non-empty list of conditions")]
        return [i for n, c in enumerate(items) for i in _validate(c, f"{path}.{key}[{n}]")]
    return _validate_leaf(leaves[0], cond, path)


def _validate_leaf(kind: str, cond: Mapping[str, Any], path: str) -> list[Issue]:
    issues: list[Issue] = []
    allowed: set[str]
    if kind in ("trait", "property"):
        allowed = {kind, "op", "value"}
        if not isinstance(cond[kind], str) or not cond[kind]:
            issues.append(Issue(f"{path}.{kind}", "must be a non-empty (dotted) name"))
        op = cond.get("op")
        if op not in OPS:
            issues.append(Issue(f"{path}.op", f"must be one of {', '.join(OPS)}"))
        elif op != "exists" and "value" not in cond:
            issues.append(Issue(f"{path}.value", f"is required for op '{op}'"))
        elif op == "in":
            value = cond.get("value")
            if not isinstance(value, list):
                issues.append(Issue(f"{path}.value", "must be a list for op 'in'"))
            else:
                issues += [
                    Issue(f"{path}.value[{n}]", _SCALAR)
                    for n, item in enumerate(value)
                    if not _is_scalar(item)
                ]
        elif op == "exists":
            if not isinstance(cond.get("value", True), bool):
                issues.append(Issue(f"{path}.value", "must be true or false for op 'exists'"))
        elif not _is_scalar(cond.get("value")):
            issues.append(Issue(f"{path}.value", _SCALAR))
    elif kind == "event":
        allowed = {"event", "within", "where", "count"}
        if not isinstance(cond["event"], str) or not cond["event"]:
            issues.append(Issue(f"{path}.event", "must be a non-empty event name"))
        if "within" in cond:
            try:
                parse_duration(cond["within"])
            except DurationError as exc:
                issues.append(Issue(f"{path}.within", str(exc)))
        if "where" in cond:
            if not isinstance(cond["where"], Mapping):
                issues.append(Issue(f"{path}.where", "must be an object of path -> value"))
            else:
                for key, value in cond["where"].items():
                    if not isinstance(key, str) or not key:
                        issues.append(Issue(f"{path}.where", "paths must be non-empty strings"))
                    elif not _is_scalar(value):
                        issues.append(Issue(f"{path}.where.{key}", _SCALAR))
        if "count" in cond:
            issues += _validate_comparisons(cond["count"], f"{path}.count", numbers=True)
    elif kind == "score":
        allowed = {"score"}
        issues += _validate_comparisons(cond["score"], f"{path}.score", numbers=True)
    elif kind == "customer":
        allowed = {"customer", "op", "value"}
        name, op = cond["customer"], cond.get("op")
        if name not in CUSTOMER_FIELDS:
            issues.append(Issue(f"{path}.customer", f"must be one of {', '.join(CUSTOMER_FIELDS)}"))
        if op not in CUSTOMER_OPS:
            issues.append(Issue(f"{path}.op", f"must be one of {', '.join(CUSTOMER_OPS)}"))
        elif op == "exists":
            if not isinstance(cond.get("value", True), bool):
                issues.append(Issue(f"{path}.value", "must be true or false for op 'exists'"))
        elif "value" not in cond:
            issues.append(Issue(f"{path}.value", f"is required for op '{op}'"))
        elif not _is_number(cond["value"]) or not _is_scalar(cond["value"]):
            issues.append(Issue(f"{path}.value", "must be a number"))
        elif (
            isinstance(name, str)
            and name.startswith("days_since_")
            and abs(cond["value"]) > MAX_DAYS
        ):
            issues.append(Issue(f"{path}.value", f"must be a number of days up to {MAX_DAYS:,}"))
    else:  # audience, consent
        allowed = {kind}
        if not isinstance(cond[kind], str) or not cond[kind]:
            issues.append(Issue(f"{path}.{kind}", "must be a non-empty name"))
    extra = sorted(set(cond) - allowed)
    if extra:
        issues.append(Issue(f"{path}.{extra[0]}", f"unknown key for a {kind} condition"))
    return issues


_SCALAR = "must be a string, number, boolean or null"


def _validate_comparisons(value: Any, path: str, *, numbers: bool) -> list[Issue]:
    if not isinstance(value, Mapping) or not value:
        return [Issue(path, 'must be an object such as {"gte": 1}')]
    issues = []
    for op, operand in value.items():
        if op not in COMPARISONS:
            issues.append(Issue(f"{path}.{op}", f"must be one of {', '.join(COMPARISONS)}"))
        elif numbers and not (_is_number(operand) and _is_scalar(operand)):
            issues.append(Issue(f"{path}.{op}", "must be a number"))
    return issues
