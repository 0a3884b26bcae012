"""The sandboxed Jinja2 environments templates render in, their filters, and the work budget.

Every template renders in `ImmutableSandboxedEnvironment` with `StrictUndefined`; HTML parts are
autoescaped, and `*` / `**` are capped so a template cannot eat the memory. The step budget uses a
trace function, so it is for save-time trial renders only, never for sends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import FrameType
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, pass_context
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rejse.messaging import formatting
from rejse.settings import REPO_ROOT, ConfigError, get_settings

MAX_REPEAT = 100_000
TRIAL_STEPS = 1_000_000


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus limits on `*` and `**` so a template cannot eat the memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 100:
            raise SecurityError("exponent too large in template")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, (str, list, tuple))
                    and isinstance(n, int)
                    and len(seq) * n > MAX_REPEAT
                ):
                    raise SecurityError("repetition too large in template")
        return super().call_binop(context, operator, left, right)


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
    )
    env.filters.update(money=_money, date=_date, datetime=_datetime)
    for name in ("cycler", "joiner", "lipsum"):
        env.globals.pop(name, None)
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


class TooMuchWork(Exception):
    pass


@contextmanager
def step_budget(limit: int = TRIAL_STEPS) -> Iterator[None]:
    """Abort a render that executes more than `limit` template lines (nested loops over big
    ranges). Uses a trace function, so only for save-time trial renders, not for sends."""
    steps = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal steps
        if event == "line":
            steps += 1
            if steps > limit:
                raise TooMuchWork
        return local

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        name = frame.f_code.co_filename
        return local if name == "<template>" or name.endswith((".txt", ".html")) else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)
