"""Conditions shared by branches, audiences and scoring. Framework-free.

A condition is JSON:

    {"all": [c, ...]}  {"any": [c, ...]}  {"not": c}
    {"trait": "country", "op": "eq", "value": "DK"}          # dotted paths: "address.city"
    {"property": "total", "op": "gte", "value": 100}         # the current event's properties
    {"event": "Order Completed", "within": "P90D",           # within and where are optional
     "where": {"properties.currency": "DKK"}, "count": {"gte": 1}}   # count defaults to >= 1
    {"score": {"gte": 50}}                                   # one or more comparisons
    {"audience": "vip"}
    {"consent": "email"}                                     # consent granted for the channel

`op` is one of eq ne gt gte lt lte in contains exists. `exists` takes an optional boolean value
(default true). A comparison between values of different types is false, never an error.

A condition nests at most `MAX_DEPTH` levels (a leaf alone is one) and holds at most
`MAX_NODES` conditions; validation measures that first, without recursion, so a hostile tree
(a `not` nested a thousand deep) is refused with its field instead of exhausting the stack.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rejse.durations import DurationError, parse_duration

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists")
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")
LEAF_KEYS = ("trait", "property", "event", "score", "audience", "consent")
MAX_DEPTH = 32
MAX_NODES = 1_000
_MISSING = object()


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
    def score(self) -> float: ...

    @property
    def consents(self) -> Mapping[str, str]: ...

    @property
    def audiences(self) -> Collection[str]: ...

    def count_events(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> int: ...


@dataclass
class RecordedEvent:
    event: str
    timestamp: dt.datetime
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class StaticFacts:
    """Facts held in memory (for workflows' activities, previews and tests)."""

    traits: Mapping[str, Any] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)
    score: float = 0.0
    consents: Mapping[str, str] = field(default_factory=dict)
    audiences: Collection[str] = field(default_factory=frozenset)
    events: Sequence[RecordedEvent] = ()

    def count_events(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> int:
        return sum(
            1
            for e in self.events
            if e.event == event
            and (since is None or e.timestamp >= since)
            and matches(where or {}, {"properties": e.properties, "event": e.event})
        )


# --------------------------------------------------------------------------------- helpers


def resolve_path(data: Any, path: str, default: Any = None) -> Any:
    """`resolve_path({"a": {"b": 1}}, "a.b") == 1`; list indexes allowed (`lines.0.sku`)."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif (
            isinstance(current, Sequence)
            and not isinstance(current, str)
            and part.isdigit()
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


def _equal(actual: Any, expected: Any) -> bool:
    """Numbers compare by value (1 == 1.0); anything else only with its own type ("1" != 1)."""
    if actual is _MISSING:
        return False
    if _is_number(actual) and _is_number(expected):
        return bool(actual == expected)
    return type(actual) is type(expected) and actual == expected


def compare(op: str, actual: Any, expected: Any = True) -> bool:
    if op == "exists":
        present = actual is not _MISSING and actual is not None
        return present if expected is not False else not present
    if actual is _MISSING or actual is None:
        return op == "ne" and expected is not None
    try:
        if op == "eq":
            return _equal(actual, expected)
        if op == "ne":
            return not _equal(actual, expected)
        if op == "in":
            return any(_equal(actual, item) for item in expected)
        if op == "contains":
            if isinstance(actual, str):
                return isinstance(expected, str) and expected in actual
            return any(_equal(item, expected) for item in actual)
        if _is_number(actual) != _is_number(expected):
            return False
        if op == "gt":
            return bool(actual > expected)
        if op == "gte":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        if op == "lte":
            return bool(actual <= expected)
    except TypeError:
        return False
    raise ValueError(f"unknown op {op!r}")


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
        return all(
            compare(op, count, value) for op, value in (cond.get("count") or {"gte": 1}).items()
        )
    if "score" in cond:
        return all(compare(op, facts.score, value) for op, value in cond["score"].items())
    if "audience" in cond:
        return cond["audience"] in facts.audiences
    if "consent" in cond:
        return facts.consents.get(cond["consent"]) == "granted"
    raise ValueError("unknown condition")


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
        elif op == "in" and not isinstance(cond.get("value"), list):
            issues.append(Issue(f"{path}.value", "must be a list for op 'in'"))
        elif op == "exists" and not isinstance(cond.get("value", True), bool):
            issues.append(Issue(f"{path}.value", "must be true or false for op 'exists'"))
    elif kind == "event":
        allowed = {"event", "within", "where", "count"}
        if not isinstance(cond["event"], str) or not cond["event"]:
            issues.append(Issue(f"{path}.event", "must be a non-empty event name"))
        if "within" in cond:
            try:
                parse_duration(cond["within"])
            except DurationError as exc:
                issues.append(Issue(f"{path}.within", str(exc)))
        if "where" in cond and not isinstance(cond["where"], Mapping):
            issues.append(Issue(f"{path}.where", "must be an object of path -> value"))
        if "count" in cond:
            issues += _validate_comparisons(cond["count"], f"{path}.count", numbers=True)
    elif kind == "score":
        allowed = {"score"}
        issues += _validate_comparisons(cond["score"], f"{path}.score", numbers=True)
    else:  # audience, consent
        allowed = {kind}
        if not isinstance(cond[kind], str) or not cond[kind]:
            issues.append(Issue(f"{path}.{kind}", "must be a non-empty name"))
    extra = sorted(set(cond) - allowed)
    if extra:
        issues.append(Issue(f"{path}.{extra[0]}", f"unknown key for a {kind} condition"))
    return issues


def _validate_comparisons(value: Any, path: str, *, numbers: bool) -> list[Issue]:
    if not isinstance(value, Mapping) or not value:
        return [Issue(path, 'must be an object such as {"gte": 1}')]
    issues = []
    for op, operand in value.items():
        if op not in COMPARISONS:
            issues.append(Issue(f"{path}.{op}", f"must be one of {', '.join(COMPARISONS)}"))
        elif numbers and (isinstance(operand, bool) or not isinstance(operand, (int, float))):
            issues.append(Issue(f"{path}.{op}", "must be a number"))
    return issues
