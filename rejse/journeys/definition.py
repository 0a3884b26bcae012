"""Journey definitions: the JSON schema as pydantic models, and the checks that
reject a broken definition with errors naming the step and field (`steps.reminder_1.template`).

Size limits come first, on the raw JSON and without recursion, so a definition built to exhaust
the service (ten thousand steps, a condition nested a thousand deep, megabytes of body) is
refused with its field before anything else looks at it: at most `MAX_STEPS` steps,
`MAX_DEFINITION_BYTES` of JSON, `MAX_JSON_DEPTH` levels of nesting anywhere, and the condition
limits of `rejse.conditions` in every branch.

Framework-free; imported by the workflow sandbox (pure data, no I/O)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rejse.audiences.definition import AUDIENCE_ENTERED, AUDIENCE_EXITED
from rejse.conditions import Issue, leaves, resolve_path, size_issues, validate_condition
from rejse.durations import DurationError, parse_duration

SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
STEP_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
TEMPLATE_REF = re.compile(r"^\{\{\s*([A-Za-z_][\w]*(?:\.[\w-]+)*)\s*\}\}$")
WAITING_STEPS = ("wait", "wait_for_event")
MAX_STEPS = 500
MAX_DEFINITION_BYTES = 256 * 1024  # well inside a Temporal payload: the definition is run input
MAX_JSON_DEPTH = 100  # room for conditions at their own limit (a group is two JSON levels)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------------- triggers


class EventTrigger(_Model):
    type: Literal["event"]
    event: str = Field(min_length=1, max_length=200)
    match: dict[str, Any] = Field(default_factory=dict)  # dotted path of the event -> value


class ManualTrigger(_Model):
    type: Literal["manual"]


class ScheduleTrigger(_Model):
    type: Literal["schedule"]
    cron: str = Field(min_length=1)  # crontab: "0 9 * * MON"
    timezone: str = "UTC"
    audience: str | None = Field(default=None, min_length=1, max_length=64)  # None: everyone live


class AudienceTrigger(_Model):
    type: Literal["audience_entered", "audience_left"]
    audience: str = Field(min_length=1, max_length=64)


Trigger = Annotated[
    EventTrigger | ManualTrigger | ScheduleTrigger | AudienceTrigger, Field(discriminator="type")
]


class Cooldown(_Model):
    cooldown: str


AUDIENCE_EVENTS = {"audience_entered": AUDIENCE_ENTERED, "audience_left": AUDIENCE_EXITED}


class ExitGoal(_Model):
    """A goal event. `{"audience_left": "vip"}` (or `audience_entered`) is shorthand for the
    internal membership event of that audience and is stored expanded:
    `{"event": "Audience Exited", "match": {"type": "internal", "properties.audience": "vip"}}`
    (a tracked event of the same name does not count)."""

    event: str = Field(min_length=1, max_length=200)
    match: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _audience_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) == 1:
            [(name, audience)] = data.items()
            if name in AUDIENCE_EVENTS and isinstance(audience, str) and audience:
                return {
                    "event": AUDIENCE_EVENTS[name],
                    "match": {"type": "internal", "properties.audience": audience},
                }
        return data


# --------------------------------------------------------------------------------- steps

TemplateExists = Callable[[str, str], bool]  # (template, channel) -> exists


class _Step(_Model):
    """What every step type answers for itself: its outgoing edges and its own rules. Each type
    overrides what differs, so a new type is one class, not a case in every function."""

    def successors(self) -> Iterator[tuple[str, str]]:
        """(field, next step id) for every outgoing edge; most steps have one, `next`."""
        target = getattr(self, "next", None)
        if target:
            yield "next", target

    def issues(self, at: str, *, template_exists: TemplateExists | None) -> list[Issue]:
        """Problems of this step beyond its schema; `at` names it (`steps.reminder_1`)."""
        return []


class WaitStep(_Step):
    type: Literal["wait"]
    for_: str | None = Field(default=None, alias="for")
    until: str | None = None  # "HH:MM" in the profile's time zone
    next: str | None = None

    def issues(self, at: str, *, template_exists: TemplateExists | None) -> list[Issue]:
        issues: list[Issue] = []
        if (self.for_ is None) == (self.until is None):
            issues.append(
                Issue(
                    f"{at}.for",
                    "give exactly one of 'for' (a duration) or 'until' (a time of day HH:MM)",
                )
            )
        _duration(self.for_, f"{at}.for", issues)
        if self.until is not None and not TIME_OF_DAY.match(self.until):
            issues.append(Issue(f"{at}.until", f"{self.until!r} is not a time of day HH:MM"))
        return issues


class WaitForEventStep(_Step):
    type: Literal["wait_for_event"]
    event: str = Field(min_length=1, max_length=200)
    match: dict[str, Any] = Field(default_factory=dict)
    timeout: str
    on_event: str | None = None
    on_timeout: str | None = None

    def successors(self) -> Iterator[tuple[str, str]]:
        if self.on_event:
            yield "on_event", self.on_event
        if self.on_timeout:
            yield "on_timeout", self.on_timeout

    def issues(self, at: str, *, template_exists: TemplateExists | None) -> list[Issue]:
        issues: list[Issue] = []
        _duration(self.timeout, f"{at}.timeout", issues)
        _match_refs(self.match, f"{at}.match", issues)
        return issues


class BranchCase(_Model):
    when: dict[str, Any]
    next: str


class BranchStep(_Step):
    type: Literal["branch"]
    if_: list[BranchCase] = Field(alias="if", min_length=1)
    else_: str | None = Field(default=None, alias="else")

    def successors(self) -> Iterator[tuple[str, str]]:
        for n, case in enumerate(self.if_):
            yield f"if[{n}].next", case.next
        if self.else_:
            yield "else", self.else_

    def issues(self, at: str, *, template_exists: TemplateExists | None) -> list[Issue]:
        issues: list[Issue] = []
        for n, case in enumerate(self.if_):
            issues += validate_condition(case.when, path=f"{at}.if[{n}].when")
        return issues


class SplitVariant(_Model):
    key: str = Field(pattern=SLUG)
    weight: float = Field(gt=0)
    next: str | None = None


class Holdout(_Model):
    weight: float = Field(gt=0)
    window: str = "P7D"  # how long a held-out run waits for a goal event (for comparison)


class SplitStep(_Step):
    type: Literal["split"]
    hypothesis: str = Field(min_length=3, max_length=500)
    variants: list[SplitVariant] = Field(min_length=1)
    holdout: Holdout | None = None

    @field_validator("hypothesis")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a hypothesis is required for every split")
        return value

    def successors(self) -> Iterator[tuple[str, str]]:
        for n, variant in enumerate(self.variants):
            if variant.next:
                yield f"variants[{n}].next", variant.next

    def issues(self, at: str, *, template_exists: TemplateExists | None) -> list[Issue]:
        issues: list[Issue] = []
        keys = [v.key for v in self.variants]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            issues.append(Issue(f"{at}.variants", f"variant key {dupes[0]!r} is used twice"))
        if "holdout" in keys:
            issues.append(
                Issue(
                    f"{at}.variants",
                    "'holdout' is reserved; use 'holdout': {'weight': ...} instead",
                )
            )
        if len(self.variants) + (1 if self.holdout else 0) < 2:
            issues.append(
                Issue(
                    f"{at}.variants",
                    "a split needs at least two variants (or one variant and a holdout)",
                )
            )
        if self.holdout:
            _duration(self.holdout.window, f"{at}.holdout.window", issues)
        return issues


class SendStep(_Step):
    type: Literal["send"]
    channel: Literal["email", "sms", "in_app", "webhook"]
    template: str = Field(min_length=1, max_length=200)
    transactional: bool = False
    next: str | None = None

    def issues(self, at: str, *, template_exists: TemplateExists | None) -> list[Issue]:
        # without a lookup (a caller that only checks the graph) templates are not judged
        if template_exists is None or template_exists(self.template, self.channel):
            return []
        return [
            Issue(
                f"{at}.template",
                f"template {self.template!r} does not exist for channel {self.channel!r}",
            )
        ]


class UpdateProfileStep(_Step):
    type: Literal["update_profile"]
    traits: dict[str, Any] = Field(min_length=1)
    next: str | None = None

    def issues(self, at: str, *, template_exists: TemplateExists | None) -> list[Issue]:
        return [
            Issue(f"{at}.traits.{name}", "invalid trait name")
            for name in self.traits
            if not name or name.startswith("_")
        ]


class ScoreStep(_Step):
    type: Literal["score"]
    points: float
    reason: str = Field(min_length=1, max_length=200)
    next: str | None = None


class HandoffStep(_Step):
    type: Literal["crm_handoff", "notify_sales"]
    reason: str = Field(default="journey", min_length=1, max_length=200)
    next: str | None = None


class WebhookStep(_Step):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://\S+$", max_length=2000)
    body: dict[str, Any] = Field(default_factory=dict)
    next: str | None = None


class ExitStep(_Step):
    type: Literal["exit"]


Step = Annotated[
    WaitStep
    | WaitForEventStep
    | BranchStep
    | SplitStep
    | SendStep
    | UpdateProfileStep
    | ScoreStep
    | HandoffStep
    | WebhookStep
    | ExitStep,
    Field(discriminator="type"),
]


class JourneyDefinition(_Model):
    key: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    trigger: Trigger
    entry_key: str | None = Field(default=None, min_length=1, max_length=200)
    reentry: Literal["never", "after_exit"] | Cooldown = "after_exit"
    exit_when: list[ExitGoal] = Field(default_factory=list)
    start: str
    steps: dict[str, Step] = Field(min_length=1)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --------------------------------------------------------------------------------- graph helpers


def template_ref(value: Any) -> str | None:
    """The dotted path of a `{{ trigger.properties.x }}` value, else None (a literal)."""
    if isinstance(value, str):
        m = TEMPLATE_REF.match(value)
        if m:
            return m.group(1)
    return None


def resolve_match(match: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Replace `{{ path }}` values by what `path` holds in `context` (no Jinja: a dotted lookup)."""
    return {
        path: (resolve_path(context, ref) if (ref := template_ref(v)) else v)
        for path, v in match.items()
    }


# --------------------------------------------------------------------------------- validation


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    """pydantic's loc -> our dotted field, dropping union tags: ('steps','a','send','template')."""
    parts: list[str] = []
    tags = {
        "event",
        "manual",
        "schedule",
        "audience_entered",
        "audience_left",
        "wait",
        "wait_for_event",
        "branch",
        "split",
        "send",
        "update_profile",
        "score",
        "crm_handoff",
        "notify_sales",
        "webhook",
        "exit",
        "Cooldown",
        "literal['never','after_exit']",
        "str",
        "function-after[_not_blank(), str]",
    }
    for n, part in enumerate(loc):
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
            continue
        prev = loc[n - 1] if n else None
        if (
            part in tags
            and prev in ("trigger", "reentry")
            or (part in tags and n >= 2 and loc[n - 2] == "steps")
        ):
            continue
        parts.append({"for_": "for", "if_": "if", "else_": "else"}.get(str(part), str(part)))
    return ".".join(parts) or "definition"


def _field(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "definition"


def _too_deep(data: Any) -> list[str | int] | None:
    """The path (its first few parts) to where `data` nests deeper than `MAX_JSON_DEPTH`."""
    todo: list[tuple[Any, list[str | int]]] = [(data, [])]
    while todo:
        node, path = todo.pop()
        if len(path) > MAX_JSON_DEPTH:
            return path[:5]
        if isinstance(node, dict):
            todo.extend((v, [*path, str(k)]) for k, v in node.items())
        elif isinstance(node, list):
            todo.extend((v, [*path, n]) for n, v in enumerate(node))
    return None


def size_limit_issues(data: dict[str, Any]) -> list[Issue]:
    """The limits, checked on the raw JSON before it is parsed (docs/journeys.md)."""
    steps = data.get("steps")
    if isinstance(steps, dict) and len(steps) > MAX_STEPS:
        return [
            Issue("steps", f"a journey has at most {MAX_STEPS} steps (this one has {len(steps):,})")
        ]
    issues: list[Issue] = []
    for step_id, step in (steps or {}).items() if isinstance(steps, dict) else ():
        cases = step.get("if") if isinstance(step, dict) else None
        for n, case in enumerate(cases if isinstance(cases, list) else []):
            if isinstance(case, dict) and "when" in case:
                issues += size_issues(case["when"], path=f"steps.{step_id}.if[{n}].when")
    if issues:
        return issues
    deep = _too_deep(data)
    if deep is not None:
        return [Issue(_field(deep), f"nests deeper than {MAX_JSON_DEPTH} levels (the limit)")]
    size = len(json.dumps(data, separators=(",", ":")).encode())
    if size > MAX_DEFINITION_BYTES:
        return [
            Issue(
                "definition",
                f"a definition is at most {MAX_DEFINITION_BYTES:,} bytes of JSON "
                f"(this one has {size:,})",
            )
        ]
    return []


def parse_definition(data: Any) -> tuple[JourneyDefinition | None, list[Issue]]:
    """Parse JSON into a definition; the size limits first, then structural problems, each an
    issue naming the field."""
    if not isinstance(data, dict):
        return None, [Issue("definition", "must be a JSON object")]
    limits = size_limit_issues(data)
    if limits:
        return None, limits
    try:
        return JourneyDefinition.model_validate(data), []
    except ValidationError as exc:
        issues, seen = [], set()
        for err in exc.errors():
            field = _loc_to_field(tuple(err["loc"]))
            if field in seen:
                continue
            seen.add(field)
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
                message = "unknown or missing 'type'" if "steps" in field else message
            issues.append(Issue(field, message))
        return None, issues


def _duration(value: str | None, field: str, issues: list[Issue]) -> None:
    if value is None:
        return
    try:
        parse_duration(value)
    except DurationError as exc:
        issues.append(Issue(field, str(exc)))


def _match_refs(match: dict[str, Any], field: str, issues: list[Issue]) -> None:
    for path, value in match.items():
        if isinstance(value, str) and "{{" in value:
            ref = template_ref(value)
            if ref is None or not ref.startswith("trigger."):
                issues.append(
                    Issue(
                        f"{field}.{path}",
                        "a templated value must be exactly '{{ trigger.<dotted path> }}'",
                    )
                )


def check_definition(
    defn: JourneyDefinition, *, template_exists: TemplateExists | None = None
) -> list[Issue]:
    """Every semantic problem of a parsed definition (graph, durations, templates, splits...)."""
    issues: list[Issue] = []
    steps = defn.steps
    for step_id in steps:
        if not re.match(STEP_ID, step_id):
            issues.append(
                Issue(f"steps.{step_id}", "step ids are letters, digits, '_' and '-' (at most 64)")
            )
    if defn.start not in steps:
        issues.append(Issue("start", f"step {defn.start!r} does not exist"))

    # triggers, re-entry, goals
    trigger = defn.trigger
    if isinstance(trigger, EventTrigger):
        _match_refs(trigger.match, "trigger.match", issues)
        for path, value in trigger.match.items():
            if template_ref(value):
                issues.append(Issue(f"trigger.match.{path}", "must be a literal value"))
    if isinstance(trigger, ScheduleTrigger):
        try:
            from rejse.crontab import parse_crontab

            parse_crontab(trigger.cron, timezone=trigger.timezone)
        except Exception as exc:  # noqa: BLE001 - any parse error is the user's
            issues.append(Issue("trigger.cron", f"invalid crontab or time zone: {exc}"))
    if isinstance(defn.reentry, Cooldown):
        _duration(defn.reentry.cooldown, "reentry.cooldown", issues)
    for n, goal in enumerate(defn.exit_when):
        _match_refs(goal.match, f"exit_when[{n}].match", issues)

    # steps
    for step_id, step in steps.items():
        at = f"steps.{step_id}"
        for field, target in step.successors():
            if target not in steps:
                issues.append(Issue(f"{at}.{field}", f"step {target!r} does not exist"))
        issues += step.issues(at, template_exists=template_exists)

    if defn.start in steps:
        issues += _graph_issues(defn)
    return issues


def _graph_issues(defn: JourneyDefinition) -> list[Issue]:
    steps = defn.steps
    edges = {sid: [t for _, t in s.successors() if t in steps] for sid, s in steps.items()}
    reachable, todo = {defn.start}, [defn.start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                todo.append(nxt)
    issues = [
        Issue(f"steps.{sid}", f"unreachable: no path from start {defn.start!r} leads here")
        for sid in steps
        if sid not in reachable
    ]
    # a loop is a cycle among the steps that do not wait: it would spin without time passing
    busy = {sid for sid, s in steps.items() if getattr(s, "type", "") not in WAITING_STEPS}
    state: dict[str, int] = {}
    reported: set[str] = set()

    # depth first, with an explicit stack: a long chain of steps must not exhaust Python's
    for root in sorted(busy):
        if state.get(root) is not None:
            continue
        state[root] = 1
        stack = [(root, [root], iter(edges[root]))]
        while stack:
            sid, path, pending = stack[-1]
            for nxt in pending:
                if nxt not in busy:
                    continue
                if state.get(nxt) == 1:
                    cycle = path[path.index(nxt) :] + [nxt] if nxt in path else [sid, nxt]
                    if nxt not in reported:
                        reported.add(nxt)
                        issues.append(
                            Issue(f"steps.{sid}.next", "loop without a wait: " + " -> ".join(cycle))
                        )
                elif state.get(nxt) is None:
                    state[nxt] = 1
                    stack.append((nxt, [*path, nxt], iter(edges[nxt])))
                    break
            else:
                state[sid] = 2
                stack.pop()
    return issues


def publish_issues(
    defn: JourneyDefinition,
    *,
    activity_names: AbstractSet[str],
    webhook_allow_private: bool = False,
    audience_exists: Callable[[str], bool] | None = None,
) -> list[Issue]:
    """What stops a valid definition from going live in this installation: a missing
    activity, a webhook step whose URL is written as a loopback/private/... address or
    `localhost` (unless `webhook_allow_private`; names are checked when the step runs), or an
    audience that does not exist (`audience_refs`; not judged without `audience_exists`).
    Drafts may name audiences that are still to be made; publishing may not."""
    from rejse.contracts import ADD_SCORE, SEND_MESSAGE, START_HANDOFF
    from rejse.netguard import literal_problem

    needs = {
        "send": SEND_MESSAGE,
        "score": ADD_SCORE,
        "crm_handoff": START_HANDOFF,
        "notify_sales": START_HANDOFF,
    }
    owner = {SEND_MESSAGE: "messaging", ADD_SCORE: "lead scoring", START_HANDOFF: "lead hand-off"}
    issues = []
    for step_id, step in defn.steps.items():
        name = needs.get(step.type)
        if name and name not in activity_names:
            issues.append(
                Issue(
                    f"steps.{step_id}.type",
                    f"'{step.type}' steps cannot run yet: "
                    f"the {owner[name]} activity {name!r} is not installed",
                )
            )
        if isinstance(step, WebhookStep) and not webhook_allow_private:
            problem = literal_problem(step.url)
            if problem is not None:
                issues.append(
                    Issue(
                        f"steps.{step_id}.url",
                        f"the webhook URL {problem}; journey webhooks may only call public "
                        "addresses (REJSE_WEBHOOK_ALLOW_PRIVATE)",
                    )
                )
    if audience_exists is not None:
        issues += [
            Issue(field, f"audience {key!r} does not exist")
            for field, key in audience_refs(defn)
            if not audience_exists(key)
        ]
    return issues


def _condition_audiences(cond: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field, key) of every `{"audience": key}` leaf of a (validated) condition."""
    for at, leaf in leaves(cond, path):
        if isinstance(leaf.get("audience"), str):
            yield f"{at}.audience", leaf["audience"]


def _event_audience(event: str, match: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    """A match on a membership event names its audience in `properties.audience`."""
    value = match.get("properties.audience")
    if event not in (AUDIENCE_ENTERED, AUDIENCE_EXITED) or not isinstance(value, str):
        return
    if template_ref(value) is None:  # a literal key (a `{{ trigger... }}` one is not known yet)
        yield f"{path}.properties.audience", value


def audience_refs(defn: JourneyDefinition) -> list[tuple[str, str]]:
    """(field, audience key) of every audience the definition names: the trigger's audience,
    `{"audience": key}` leaves of branch conditions, and the audience of membership events
    matched by the trigger, `exit_when` goals and `wait_for_event` steps."""
    refs: list[tuple[str, str]] = []
    trigger = defn.trigger
    if isinstance(trigger, (AudienceTrigger, ScheduleTrigger)) and trigger.audience is not None:
        refs.append(("trigger.audience", trigger.audience))
    if isinstance(trigger, EventTrigger):
        refs += _event_audience(trigger.event, trigger.match, "trigger.match")
    for n, goal in enumerate(defn.exit_when):
        refs += _event_audience(goal.event, goal.match, f"exit_when[{n}].match")
    for step_id, step in defn.steps.items():
        at = f"steps.{step_id}"
        if isinstance(step, BranchStep):
            for n, case in enumerate(step.if_):
                refs += _condition_audiences(case.when, f"{at}.if[{n}].when")
        elif isinstance(step, WaitForEventStep):
            refs += _event_audience(step.event, step.match, f"{at}.match")
    return refs


def steps_of_type(defn: JourneyDefinition, *types: str) -> list[str]:
    return [sid for sid, s in defn.steps.items() if s.type in types]
