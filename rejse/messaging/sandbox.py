"""The sandboxed Jinja2 environments templates render in, their filters, and the limits every
render runs under.

Every template renders in `ImmutableSandboxedEnvironment` with `StrictUndefined`; HTML parts are
autoescaped. On top of the sandbox, each render (the save-time trial, a preview, a send) runs
inside `step_budget`, which enforces `TemplateLimits`:

- work: every loop iteration, call, filter, operator and output chunk costs a step, and so does
  every 16 bytes of each value made (a character, or 8 per item of a list); over the budget (or
  the time limit) the render stops, so neither CPU nor memory runs away;
- size: no value a template makes (string, list, number) may exceed the value cap, and the
  size is checked *before* the operation that would allocate it (`'x' * n`, `a ~ b`, `center`,
  `'%*s'`, `join`, `replace`, ...); the output of each part has its own cap;
- recursion: macros (and recursive loops) nest at most `depth` deep;
- `range()` has its own, smaller cap.

The budget lives in a context variable, so concurrent renders on the worker's threads each have
their own. The checks are hooks of the environment (calls, operators, filters, loops, output),
not a trace function, so sends pay little for them.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, update_wrapper, wraps
from pathlib import Path
from typing import Any, cast

from jinja2 import FileSystemLoader, StrictUndefined, nodes, pass_context, pass_eval_context
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

from rejse.messaging import formatting
from rejse.settings import REPO_ROOT, ConfigError, Settings, get_settings

MAX_EXPONENT = 100
MAX_INT_BITS = 10_000  # about 3,000 digits: more than any price or count, far less than a bomb
MAX_JSON_INDENT = 16
CHARS_PER_STEP = 16  # making a value costs a step per 16 bytes of it
ITEM_BYTES = 8  # what an item of a list (or dict, set) takes: a reference
LOOP_FILTER = "_rejse_loop"  # wraps every for-loop's iterable: one step per iteration
CONCAT_FILTER = "_rejse_concat"  # replaces `~`, so the joined size is checked first


@dataclass(frozen=True)
class TemplateLimits:
    """What one render may do. Defaults match the settings' defaults (docs/operations.md)."""

    subject_bytes: int = 2_048
    html_bytes: int = 512 * 1024
    text_bytes: int = 256 * 1024
    steps: int = 1_000_000
    seconds: float = 5.0
    range_size: int = 10_000
    depth: int = 32

    @property
    def value_chars(self) -> int:
        """The largest string or collection a template may build: the largest part's cap (a
        value bigger than any output could hold has no use)."""
        return max(self.subject_bytes, self.html_bytes, self.text_bytes)

    def output_bytes(self, part: str) -> int:
        if part == "subject":
            return self.subject_bytes
        return self.html_bytes if part == "html" else self.text_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> TemplateLimits:
        return cls(
            subject_bytes=settings.template_max_subject_bytes,
            html_bytes=settings.template_max_html_bytes,
            text_bytes=settings.template_max_text_bytes,
            steps=settings.template_max_steps,
            seconds=settings.template_max_seconds,
            range_size=settings.template_max_range,
            depth=settings.template_max_depth,
        )

    @classmethod
    def configured(cls) -> TemplateLimits:
        """The limits of this process's settings (`REJSE_TEMPLATE_MAX_*`), for callers that
        were not handed settings."""
        try:
            return cls.from_settings(get_settings())
        except ConfigError:
            return cls()


class LimitExceeded(SecurityError):
    """A template went over one of its limits. A `SecurityError`, so every caller that reports
    sandbox refusals (with the template line) reports these too."""


class TooMuchWork(LimitExceeded):
    pass


class TooLarge(LimitExceeded):
    pass


class _Budget:
    """The state of one render: steps spent, the deadline, the macro depth."""

    __slots__ = ("limits", "cap", "spent", "deadline", "next_clock", "depth", "metered")

    def __init__(self, limits: TemplateLimits, *, metered: bool = True) -> None:
        self.limits = limits
        self.cap = limits.value_chars
        self.metered = metered
        self.spent = 0
        # CPU time of this thread, not the wall clock: a busy host (waiting for a CPU) must not
        # fail a message that does little work; runaway work is what is being measured
        self.deadline = time.thread_time() + limits.seconds
        self.next_clock = 1024
        self.depth = 0

    def tick(self, steps: int = 1) -> None:
        if not self.metered:
            return
        self.spent += steps
        if self.spent > self.limits.steps:
            raise TooMuchWork(
                f"the template does too much work (over {self.limits.steps:,} steps); "
                "simplify its loops"
            )
        if self.spent >= self.next_clock:  # the clock is read every 1,024 steps, not each
            self.next_clock = self.spent + 1024
            if time.thread_time() > self.deadline:
                raise TooMuchWork(
                    f"the template takes too long (over {self.limits.seconds:g} s of CPU); "
                    "simplify its loops"
                )

    def charge(self, value: Any) -> Any:
        """Check the size of a value a template made, pay for it (by the memory it takes: a
        step per 16 bytes), and pass it on."""
        if isinstance(value, (str, bytes)):
            if len(value) > self.cap:
                raise TooLarge(_too_large(len(value), self.limits))
            self.tick(1 + len(value) // CHARS_PER_STEP)
        elif isinstance(value, (list, tuple, dict, set, frozenset)):
            if len(value) > self.cap:
                raise TooLarge(_too_large(len(value), self.limits))
            self.tick(1 + len(value) * ITEM_BYTES // CHARS_PER_STEP)
        elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise TooLarge(f"a number of {value.bit_length():,} bits is too large")
        return value


# Outside any render (Jinja folding constants while it compiles): sizes are checked against the
# default limits, nothing is counted. Never mutated, so shared safely between threads.
_UNMETERED = _Budget(TemplateLimits(), metered=False)
_BUDGET: ContextVar[_Budget | None] = ContextVar("rejse_template_budget", default=None)


def _current() -> _Budget:
    return _BUDGET.get() or _UNMETERED


def _too_large(size: int, limits: TemplateLimits) -> str:
    return (
        f"a value of {size:,} characters (or items) is too large "
        f"(the limit is {limits.value_chars:,})"
    )


@contextmanager
def step_budget(limits: TemplateLimits | None = None) -> Iterator[_Budget]:
    """Run the renders inside under `limits` (default: this process's settings). Inside a
    render that has a budget already, that one goes on (a message's parts share one)."""
    active = _BUDGET.get()
    if active is not None:
        yield active
        return
    budget = _Budget(limits or TemplateLimits.configured())
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


# ----------------------------------------------------------------------------- size estimates


def text_size(value: Any, limit: int) -> int:
    """About how many characters `str(value)` has, without building it; stops counting once
    over `limit`. Iterative, so a deeply nested value cannot exhaust the stack."""
    if isinstance(value, str):
        return len(value)
    total = 0
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            total += len(item) + 2  # inside a collection: its repr's quotes
        elif isinstance(item, (bytes, bytearray)):
            total += len(item) + 3
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            if total <= limit:
                todo.extend(item.keys())
                todo.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            if total <= limit:
                todo.extend(item)
        elif isinstance(item, Namespace):  # its repr shows every attribute
            todo.append(object.__getattribute__(item, "_Namespace__attrs"))
        else:
            total += 24
        if total > limit:
            break
    return total


def _check_text(value: Any, budget: _Budget) -> None:
    """Refuse to turn a collection into text when that text would be over the value cap."""
    if isinstance(value, str):
        return
    cap = budget.cap
    size = text_size(value, cap)
    if size > cap:
        raise TooLarge(_too_large(size, budget.limits))


def _check_count(value: Any, what: str, cap: int) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > cap:
        raise TooLarge(f"{what} {value:,} is over the limit of {cap:,}")


def _check_width_digits(digits: str, cap: int) -> None:
    if len(digits) > 9 or int(digits) > cap:
        raise TooLarge(f"a format width or precision of {digits} is over the limit of {cap:,}")


def _check_printf(fmt: str, args: Any, budget: _Budget) -> None:
    """`'%10s' % x` and `|format`: widths, precisions and the arguments' text fit the cap."""
    cap = budget.cap
    star = False
    for m in re.finditer(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?", fmt):
        for group in m.groups():
            if group == "*":
                star = True
            elif group:
                _check_width_digits(group, cap)
    values: Iterable[Any]
    if isinstance(args, Mapping):
        values = args.values()
    elif isinstance(args, tuple):
        values = args
    else:
        values = (args,)
    values = list(values)
    if star:
        for v in values:
            _check_count(v, "a format width of", cap)
    size = len(fmt) + sum(text_size(v, cap) for v in values)
    if size > cap:
        raise TooLarge(_too_large(size, budget.limits))


def _check_format(
    fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], budget: _Budget
) -> None:
    """`'{:>10}'.format(x)`: no nested specs, widths fit the cap, and so do the arguments."""
    cap = budget.cap
    for _literal, _field, spec, _conversion in string.Formatter().parse(fmt):
        if spec:
            if "{" in spec:
                raise SecurityError("nested format specifications are not allowed in templates")
            for digits in re.findall(r"\d+", spec):
                _check_width_digits(digits, cap)
    size = len(fmt) + sum(text_size(v, cap) for v in (*args, *kwargs.values()))
    if size > cap:
        raise TooLarge(_too_large(size, budget.limits))


def _join_size(items: list[Any], sep: Any, budget: _Budget) -> int:
    cap = budget.cap
    size = text_size(sep, cap) * max(len(items) - 1, 0)
    for item in items:
        if size > cap:
            break
        size += text_size(item, cap)
    return size


def _replace_size(s: Any, old: Any, new: Any, count: Any) -> int:
    if not (isinstance(s, str) and isinstance(old, str) and isinstance(new, str)):
        return 0
    times = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(s) + times * max(len(new) - len(old), 0)


# ----------------------------------------------------------------------------- filters


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], n: int, name: str, default: Any) -> Any:
    """Argument `n` (after the value) of a filter call, positional or by name."""
    if len(args) > n:
        return args[n]
    return kwargs.get(name, default)


def _precheck_filter(
    name: str, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], budget: _Budget
) -> None:
    """Refuse a filter call whose result would be over the cap, before it runs."""
    cap = budget.cap
    if name == "center":
        _check_count(_arg(args, kwargs, 0, "width", 80), "a width of", cap)
    elif name == "indent":
        width = _arg(args, kwargs, 0, "width", 4)
        per_line = len(width) if isinstance(width, str) else width
        if isinstance(value, str) and isinstance(per_line, int):
            size = len(value) + (value.count("\n") + 1) * per_line
            if size > cap:
                raise TooLarge(_too_large(size, budget.limits))
    elif name == "wordwrap":
        width = _arg(args, kwargs, 0, "width", 79)
        wrap = _arg(args, kwargs, 2, "wrapstring", None) or "\n"
        if isinstance(value, str) and isinstance(width, int) and isinstance(wrap, str):
            size = len(value) + (len(value) // max(width, 1) + 1) * len(wrap)
            if size > cap:
                raise TooLarge(_too_large(size, budget.limits))
    elif name == "replace":
        size = _replace_size(
            value,
            _arg(args, kwargs, 0, "old", ""),
            _arg(args, kwargs, 1, "new", ""),
            _arg(args, kwargs, 2, "count", None),
        )
        if size > cap:
            raise TooLarge(_too_large(size, budget.limits))
    elif name == "format":
        if isinstance(value, str):
            _check_printf(value, dict(kwargs) if kwargs else tuple(args), budget)
    elif name == "join":
        if isinstance(value, Sized) and isinstance(value, Iterable):  # others: listed already
            size = _join_size(list(value), _arg(args, kwargs, 0, "d", ""), budget)
            if size > cap:
                raise TooLarge(_too_large(size, budget.limits))
    elif name == "sum":
        start = _arg(args, kwargs, 1, "start", 0)
        if isinstance(start, (list, tuple)) and isinstance(value, (list, tuple)):
            size = len(start) + sum(len(v) for v in value if isinstance(v, (list, tuple)))
            if size > cap:
                raise TooLarge(_too_large(size, budget.limits))
    elif name in ("batch", "slice"):
        count = _arg(args, kwargs, 0, "linecount" if name == "batch" else "slices", None)
        _check_count(count, f"{name} count", budget.limits.range_size)
    elif name == "tojson":
        _check_count(_arg(args, kwargs, 0, "indent", None), "a JSON indent of", MAX_JSON_INDENT)
        _check_text(value, budget)
    elif name not in _STRUCTURAL_FILTERS:
        _check_text(value, budget)  # string filters turn their value into text first


# Filters that work on collections without turning them into text (their size is checked on
# the result); every other filter is checked as "makes text of its value".
_STRUCTURAL_FILTERS = frozenset(
    {
        "abs", "attr", "count", "d", "default", "dictsort", "first", "float", "groupby", "int",
        "items", "last", "length", "list", "map", "max", "min", "random", "reject",
        "rejectattr", "reverse", "round", "select", "selectattr", "sort", "unique",
        "money", "date", "datetime",
    }
)  # fmt: skip


_MATERIALISED = frozenset({"join", "sum"})


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with a step per call, the size checks before it runs and on what it returns."""
    skip = 1 if hasattr(func, "jinja_pass_arg") else 0  # context / eval context / environment

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _current()
        budget.tick()
        if len(args) > skip:
            value = args[skip]
            if (
                name in _MATERIALISED
                and isinstance(value, Iterable)
                and not isinstance(value, Sized)
            ):
                # `...|map(...)|join`: a generator is listed first (its items are charged as
                # they are made), so the joined size can be known before joining
                value = list(value)
                args = (*args[:skip], value, *args[skip + 1 :])
            _precheck_filter(name, value, args[skip + 1 :], kwargs, budget)
        return budget.charge(func(*args, **kwargs))

    return guarded


class _Counted:
    """A loop's iterable that costs a step per item (sized when the original is, for
    `loop.length`)."""

    __slots__ = ("items", "budget")

    def __init__(self, items: Iterable[Any], budget: _Budget) -> None:
        self.items = items
        self.budget = budget

    def __iter__(self) -> Iterator[Any]:
        # paid in batches of 64: a call per item would cost more than an empty loop's work
        budget, unpaid = self.budget, 0
        for item in self.items:
            unpaid += 1
            if unpaid == 64:
                budget.tick(64)
                unpaid = 0
            yield item
        if unpaid:
            budget.tick(unpaid)

    def __len__(self) -> int:
        return len(self.items)  # type: ignore[arg-type]  # TypeError for unsized: LoopContext copes


@pass_context
def _loop_filter(ctx: Context, items: Iterable[Any]) -> _Counted:
    return _Counted(items, _current())


@pass_eval_context
def _concat_filter(eval_ctx: EvalContext, items: list[Any]) -> str:
    """`a ~ b ~ c`, as Jinja does it, once the joined size is known to fit."""
    budget = _current()
    budget.tick()
    size = _join_size(items, "", budget)
    if size > budget.cap:
        raise TooLarge(_too_large(size, budget.limits))
    joined = markup_join(items) if eval_ctx.autoescape else str_join(items)
    return cast(str, budget.charge(joined))


def _range(*args: int) -> range:
    budget = _current()
    rng = range(*args)
    if len(rng) > budget.limits.range_size:
        raise TooLarge(
            f"range() of {len(rng):,} items is over the limit of {budget.limits.range_size:,} "
            "(REJSE_TEMPLATE_MAX_RANGE)"
        )
    return rng


_COLLECTIONS = (list, tuple, dict, set, frozenset, Namespace)


def _finalize(value: Any) -> Any:
    """Every `{{ value }}` passes here before it becomes text. A missing (None) value prints
    nothing, never the word `None`; a collection's text is sized first (scalars are as small
    as the caps already made them)."""
    if value is None:
        return ""
    if isinstance(value, _COLLECTIONS):
        _check_text(value, _current())
    return value


# str (and bytes) methods whose first argument is the size of the result
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


_SEQUENCES = (str, bytes, list, tuple)


def _precheck_binop(operator: str, left: Any, right: Any, budget: _Budget) -> None:
    """Refuse `*`, `**`, `+` and `%` whose result would be over the caps, before computing it."""
    cap = budget.cap
    ints = isinstance(left, int) and isinstance(right, int)
    size = 0
    if operator == "**":
        if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise TooLarge("exponent too large in template")
        if ints and right > 0 and left.bit_length() * right > MAX_INT_BITS:
            raise TooLarge("the result of ** would be too large")
    elif operator == "*":
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TooLarge("the result of * would be too large")
        if isinstance(left, _SEQUENCES) and isinstance(right, int):
            size = len(left) * right
        elif isinstance(right, _SEQUENCES) and isinstance(left, int):
            size = len(right) * left
    elif operator == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            size = len(left) + len(right)
    elif operator == "%" and isinstance(left, str):
        _check_printf(left, right, budget)
    if size > cap:
        raise TooLarge(_too_large(size, budget.limits))


class _LimitsTransformer(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.For:
        node = cast(nodes.For, self.generic_visit(node))
        node.iter = nodes.Filter(node.iter, LOOP_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:
        node = cast(nodes.Concat, self.generic_visit(node))
        items = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(items, CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus the limits above: operators, calls and str.format are
    checked here, filters and loops by the wrappers `_make_env` installs."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse, then route every loop's iterable through the step counter and every `~`
        through the checked join: the two things the hooks here do not see."""
        tree = _LimitsTransformer().visit(super()._parse(source, name, filename))
        tree.set_environment(self)
        return cast(nodes.Template, tree)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _current()
        budget.tick()
        _precheck_binop(operator, left, right, budget)
        return budget.charge(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's own signature: the prefixes keep template keywords apart
        budget = _current()
        budget.tick()
        given = {k: v for k, v in kwargs.items() if k not in ("_loop_vars", "_block_vars")}
        owner = getattr(__obj, "__self__", None)
        method = getattr(__obj, "__name__", "")
        cap = budget.cap
        if isinstance(owner, (str, bytes)):
            if method in _WIDTH_METHODS:
                _check_count(_arg(args, given, 0, "width", 0), "a width of", cap)
            elif method == "expandtabs":
                tabsize = _arg(args, given, 0, "tabsize", 8)
                if isinstance(tabsize, int) and len(owner) * tabsize > cap:
                    raise TooLarge(_too_large(len(owner) * tabsize, budget.limits))
            elif method == "replace":
                size = _replace_size(
                    owner,
                    _arg(args, given, 0, "old", ""),
                    _arg(args, given, 1, "new", ""),
                    _arg(args, given, 2, "count", -1),
                )
                if size > cap:
                    raise TooLarge(_too_large(size, budget.limits))
            elif method == "join" and args:
                items = list(args[0])
                size = _join_size(items, owner, budget)
                if size > cap:
                    raise TooLarge(_too_large(size, budget.limits))
                args = (items, *args[1:])
            elif method == "translate" and args and isinstance(args[0], Mapping):
                longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
                if len(owner) * longest > cap:
                    raise TooLarge(_too_large(len(owner) * longest, budget.limits))
        elif isinstance(owner, int) and method == "to_bytes":
            _check_count(_arg(args, given, 0, "length", 1), "a length of", cap)
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level
            args = (_Counted(args[0], budget), *args[1:])
        if budget.metered and isinstance(__obj, (Macro, LoopContext)):
            budget.depth += 1
            try:
                if budget.depth > budget.limits.depth:
                    raise TooMuchWork(
                        f"macro calls (or recursive loops) nest deeper than "
                        f"{budget.limits.depth}: a macro that calls itself without end?"
                    )
                return budget.charge(super().call(__context, __obj, *args, **kwargs))
            finally:
                budget.depth -= 1
        return budget.charge(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__
        mapping = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            budget = _current()
            if mapping and args and isinstance(args[0], Mapping):
                _check_format(fmt, (), args[0], budget)
            else:
                _check_format(fmt, args, kwargs, budget)
            return cast(str, budget.charge(wrapped(*args, **kwargs)))

        return update_wrapper(checked, value)


def _locale(ctx: Context) -> str:
    value = ctx.get("locale")
    return value if isinstance(value, str) else formatting.DEFAULT_LOCALE


@pass_context
def _money(ctx: Context, value: Any, currency: str | None = None) -> str:
    if currency is None:
        cart = ctx.get("cart")
        currency = cart.get("currency") if isinstance(cart, dict) else None
    return formatting.money(value, currency, _locale(ctx))


@pass_context
def _date(ctx: Context, value: Any, fmt: str = "long") -> str:
    profile = ctx.get("profile")
    tz = profile.get("timezone") if isinstance(profile, dict) else None
    return formatting.date(value, _locale(ctx), fmt, tz)


@pass_context
def _datetime(ctx: Context, value: Any, fmt: str = "medium") -> str:
    profile = ctx.get("profile")
    tz = profile.get("timezone") if isinstance(profile, dict) else None
    return formatting.datetime(value, _locale(ctx), fmt, tz)


def _make_env(templates_dir: Path, *, autoescape: bool) -> _Sandbox:
    env = _Sandbox(
        loader=FileSystemLoader(str(templates_dir)),
        undefined=StrictUndefined,
        autoescape=autoescape,
        auto_reload=True,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    env.filters.update(money=_money, date=_date, datetime=_datetime)
    env.filters = {name: _guard_filter(name, f) for name, f in env.filters.items()}
    env.filters[LOOP_FILTER] = _loop_filter
    env.filters[CONCAT_FILTER] = _concat_filter
    for name in ("cycler", "joiner", "lipsum"):
        env.globals.pop(name, None)
    env.globals["range"] = _range
    return env


@dataclass(frozen=True)
class Engines:
    templates_dir: Path
    html: _Sandbox
    text: _Sandbox

    def for_part(self, part: str) -> _Sandbox:
        return self.html if part == "html" else self.text


def _default_dir() -> Path:
    try:
        return Path(get_settings().templates_dir)
    except ConfigError:
        return REPO_ROOT / "templates"


def engines(templates_dir: str | Path | None = None) -> Engines:
    """The sandboxed environments for a templates folder (default: `REJSE_TEMPLATES_DIR`)."""
    return _engines(Path(templates_dir) if templates_dir else _default_dir())


@lru_cache(maxsize=8)
def _engines(path: Path) -> Engines:
    return Engines(path, _make_env(path, autoescape=True), _make_env(path, autoescape=False))


@lru_cache(maxsize=1024)
def compile_part(eng: Engines, part: str, source: str) -> Template:
    """A template part compiled from source (API templates, previews), cached by source."""
    return eng.for_part(part).from_string(source)
