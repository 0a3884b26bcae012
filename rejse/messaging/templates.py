"""Message templates: a sandboxed Jinja2 environment, file and API templates, validation, render.

File layout (see docs/messaging.md): `templates/<channel>/<key>/<locale>/` holding
`subject.txt`, `body.html`, `body.txt` (email), `body.txt` (sms, webhook), `subject.txt` +
`body.txt` (in_app). Shared layouts live in files whose names start with `_` and are reached with
`{% extends %}` / `{% include %}` from file and API templates alike.

Every template renders in `ImmutableSandboxedEnvironment` with `StrictUndefined`; HTML parts are
autoescaped. Unsafe attribute access (`__class__`, `_TemplateReference__context`, ...) is refused
at save (static check with its line) and at render (`SecurityError`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import FrameType
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
    pass_context,
)
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlmodel import Session, col, select

from rejse.errors import NotFound, Unprocessable
from rejse.messaging import formatting
from rejse.models.messaging import MessageTemplate
from rejse.settings import REPO_ROOT

CHANNELS = ("email", "sms", "in_app", "webhook")
CHANNEL_PARTS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "html", "text"),
    "sms": ("text",),
    "in_app": ("subject", "text", "html"),
    "webhook": ("text",),
}
REQUIRED_PARTS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "html"),
    "sms": ("text",),
    "in_app": ("subject", "text"),
    "webhook": ("text",),
}
PART_FILES = {"subject": "subject.txt", "html": "body.html", "text": "body.txt"}

# The documented template context (docs/messaging.md). Anything else is an unknown variable.
CONTEXT_NAMES = frozenset(
    {"profile", "trigger", "cart", "journey", "links", "message", "locale", "now", "extra"}
)
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9][a-z0-9_\-]*)*$")
MAX_REPEAT = 100_000


class TemplateProblem(Unprocessable):
    """A template that cannot be saved or rendered; `field` names the part, the message its line."""


# ----------------------------------------------------------------------------- environment


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
    from rejse.settings import ConfigError, get_settings

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
def _compile(eng: Engines, part: str, source: str) -> Template:
    return eng.for_part(part).from_string(source)


# ----------------------------------------------------------------------------- lookup


@dataclass(frozen=True)
class ResolvedTemplate:
    key: str
    channel: str
    locale: str
    version: int | None  # None: file template
    parts: dict[str, Template] = field(hash=False)


def check_key(key: str, *, field_name: str = "key") -> None:
    if not KEY_RE.match(key or "") or len(key) > 200:
        raise Unprocessable(
            f"template key {key!r} must be lowercase words separated by '/', e.g. 'abandoned_cart/reminder'",
            field=field_name,
        )


def check_channel(channel: str, *, field_name: str = "channel") -> None:
    if channel not in CHANNELS:
        raise Unprocessable(
            f"unknown channel {channel!r} (one of: {', '.join(CHANNELS)})", field=field_name
        )


def _file_dir(eng: Engines, channel: str, key: str, locale: str) -> Path:
    return eng.templates_dir / channel / key / locale


def file_locales(*, key: str, channel: str, templates_dir: str | Path | None = None) -> list[str]:
    """Locales for which a complete file template exists."""
    if channel not in CHANNELS or not KEY_RE.match(key or ""):
        return []
    eng = engines(templates_dir)
    base = eng.templates_dir / channel / key
    if not base.is_dir():
        return []
    out = []
    for sub in sorted(base.iterdir()):
        if sub.is_dir() and all((sub / PART_FILES[p]).is_file() for p in REQUIRED_PARTS[channel]):
            out.append(sub.name)
    return out


def list_file_templates(
    templates_dir: str | Path | None = None,
) -> list[tuple[str, str, list[str]]]:
    """(channel, key, locales) of every file template."""
    eng = engines(templates_dir)
    out = []
    for channel in CHANNELS:
        root = eng.templates_dir / channel
        if not root.is_dir():
            continue
        seen = set()
        for part in root.rglob("*"):
            if part.is_file() and part.name in PART_FILES.values():
                key = "/".join(part.parent.parent.relative_to(root).parts)
                if key and key not in seen and KEY_RE.match(key):
                    seen.add(key)
        for key in sorted(seen):
            locales = file_locales(key=key, channel=channel, templates_dir=templates_dir)
            if locales:
                out.append((channel, key, locales))
    return out


def latest_api_template(session: Session, *, key: str, channel: str) -> MessageTemplate | None:
    stmt = (
        select(MessageTemplate)
        .where(MessageTemplate.key == key, MessageTemplate.channel == channel)
        .order_by(col(MessageTemplate.version).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def template_exists(
    *,
    key: str,
    channel: str,
    session: Session | None = None,
    templates_dir: str | Path | None = None,
) -> bool:
    """True if a file template exists for (key, channel), or, given a session, an API one."""
    if file_locales(key=key, channel=channel, templates_dir=templates_dir):
        return True
    if session is not None and channel in CHANNELS:
        return latest_api_template(session, key=key, channel=channel) is not None
    return False


def _locale_order(wanted: str | None) -> list[str]:
    first = formatting.language(wanted)
    return [first] if first == formatting.DEFAULT_LOCALE else [first, formatting.DEFAULT_LOCALE]


def resolve(
    *,
    key: str,
    channel: str,
    locale: str | None,
    session: Session | None = None,
    templates_dir: str | Path | None = None,
) -> ResolvedTemplate:
    """Pick the template for a profile's locale (`da-DK` -> `da`, fallback `en`, then any).
    An API template of the same key overrides the file template locale by locale."""
    eng = engines(templates_dir)
    api = latest_api_template(session, key=key, channel=channel) if session is not None else None
    files = file_locales(key=key, channel=channel, templates_dir=templates_dir)
    api_locales = sorted(api.variants) if api is not None else []
    order = _locale_order(locale) + sorted(set(api_locales) | set(files))
    for loc in order:
        if api is not None and loc in api.variants:
            parts = {
                p: _compile(eng, p, src)
                for p, src in api.variants[loc].items()
                if p in CHANNEL_PARTS[channel] and src
            }
            return ResolvedTemplate(key, channel, loc, api.version, parts)
        if loc in files:
            parts = {}
            for p in CHANNEL_PARTS[channel]:
                path = _file_dir(eng, channel, key, loc) / PART_FILES[p]
                if path.is_file():
                    parts[p] = eng.for_part(p).get_template(
                        f"{channel}/{key}/{loc}/{PART_FILES[p]}"
                    )
            return ResolvedTemplate(key, channel, loc, None, parts)
    raise NotFound(f"no {channel} template {key!r}", field="template")


# ----------------------------------------------------------------------------- render


@dataclass
class Rendered:
    subject: str | None = None
    html: str | None = None
    text: str | None = None


def _template_line(exc: BaseException) -> int | None:
    lineno = getattr(exc, "lineno", None)
    if lineno:
        return lineno
    tb = exc.__traceback__
    found = None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name == "<template>" or name.endswith((".txt", ".html")):
            found = tb.tb_lineno
        tb = tb.tb_next
    return found


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SecurityError) or (isinstance(exc, UndefinedError) and "unsafe" in str(exc)):
        return f"refused by the template sandbox: {exc}"
    return f"{type(exc).__name__}: {exc}"


def render_part(template: Template, context: dict[str, Any], *, part: str) -> str:
    try:
        return template.render(context)
    except (TemplateError, ArithmeticError, TypeError, ValueError, RecursionError) as exc:
        line = _template_line(exc)
        where = f"line {line}: " if line else ""
        raise TemplateProblem(
            f"{part}: {where}{_describe(exc)}", field=f"template.{part}"
        ) from None


def render(resolved: ResolvedTemplate, context: dict[str, Any]) -> Rendered:
    ctx = {**context, "locale": resolved.locale}
    out = Rendered()
    for part, template in resolved.parts.items():
        setattr(
            out,
            part,
            render_part(template, ctx, part=part).strip()
            if part != "html"
            else render_part(template, ctx, part=part),
        )
    if resolved.channel == "email" and not out.text and out.html:
        out.text = html_to_text(out.html)
    if out.subject:
        out.subject = " ".join(out.subject.split())
    return out


_TAG = re.compile(r"<[^>]+>")


def html_to_text(html: str) -> str:
    import html as html_lib

    text = re.sub(r"(?is)<(script|style).*?</\1>", "", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</tr>|</h\d>|</li>", "\n", text)
    text = html_lib.unescape(_TAG.sub("", text))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


# ----------------------------------------------------------------------------- validation


TRIAL_STEPS = 1_000_000


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


def _unsafe_nodes(ast: nodes.Template) -> list[tuple[int, str]]:
    found = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        name = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            name = node.arg.value
        elif isinstance(node, nodes.Name):
            name = node.name if node.name.startswith("_") or node.name == "self" else None
        if name is not None and (name.startswith("_") or name == "self"):
            found.append((node.lineno, name))
    return found


def _first_use(ast: nodes.Template, name: str) -> int | None:
    for node in ast.find_all(nodes.Name):
        if node.name == name and node.ctx == "load":
            return node.lineno
    return None


def validate_source(
    source: str,
    *,
    part: str,
    field_name: str,
    templates_dir: str | Path | None = None,
    sample: dict[str, Any] | None = None,
) -> None:
    """Refuse a template part with its line number: syntax errors, unsafe attribute access,
    variables outside the documented context, and sandbox violations in a trial render."""
    eng = engines(templates_dir)
    env = eng.for_part(part)
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"line {exc.lineno}: syntax error: {exc.message}", field=field_name
        ) from None
    unsafe = _unsafe_nodes(ast)
    if unsafe:
        line, name = unsafe[0]
        raise TemplateProblem(
            f"line {line}: access to {name!r} is refused by the template sandbox "
            "(names starting with '_' and 'self' are not available)",
            field=field_name,
        )
    unknown = sorted(meta.find_undeclared_variables(ast) - CONTEXT_NAMES - set(env.globals))
    if unknown:
        name = unknown[0]
        line = _first_use(ast, name)
        raise TemplateProblem(
            f"line {line}: unknown variable {name!r} (available: {', '.join(sorted(CONTEXT_NAMES))})",
            field=field_name,
        )
    for ref in meta.find_referenced_templates(ast):
        if ref is None:
            raise TemplateProblem("dynamic extends/include is not allowed", field=field_name)
        try:
            env.get_template(ref)
        except TemplateNotFound:
            raise TemplateProblem(
                f"included template {ref!r} does not exist", field=field_name
            ) from None
    try:
        with step_budget():
            env.from_string(source).render(sample if sample is not None else sample_context())
    except TooMuchWork:
        raise TemplateProblem(
            f"the template does too much work (over {TRIAL_STEPS:,} steps with the "
            "sample data); simplify its loops",
            field=field_name,
        ) from None
    except SecurityError as exc:
        line = _template_line(exc)
        raise TemplateProblem(
            f"line {line}: refused by the template sandbox: {exc}", field=field_name
        ) from None
    except UndefinedError as exc:
        if "unsafe" in str(exc):
            line = _template_line(exc)
            raise TemplateProblem(
                f"line {line}: refused by the template sandbox: {exc}", field=field_name
            ) from None
        # A trait the sample profile lacks is fine at save; the real render reports it.
    except Exception:  # noqa: BLE001, S110 - data-dependent errors surface at render time
        pass


def validate_variants(
    channel: str, variants: dict[str, dict[str, str]], *, templates_dir: str | Path | None = None
) -> None:
    check_channel(channel)
    if not variants:
        raise Unprocessable("at least one locale variant is required", field="variants")
    for loc, parts in variants.items():
        if loc not in formatting.SUPPORTED_LOCALES:
            raise Unprocessable(
                f"unsupported locale {loc!r} (one of: {', '.join(formatting.SUPPORTED_LOCALES)})",
                field=f"variants.{loc}",
            )
        for part in parts:
            if part not in CHANNEL_PARTS[channel]:
                raise Unprocessable(
                    f"{channel} templates have no part {part!r} "
                    f"(parts: {', '.join(CHANNEL_PARTS[channel])})",
                    field=f"variants.{loc}.{part}",
                )
        for part in REQUIRED_PARTS[channel]:
            if not (parts.get(part) or "").strip():
                raise Unprocessable(
                    f"part {part!r} is required for {channel}", field=f"variants.{loc}.{part}"
                )
        for part, source in parts.items():
            if source:
                validate_source(
                    source,
                    part=part,
                    field_name=f"variants.{loc}.{part}",
                    templates_dir=templates_dir,
                    sample=sample_context(locale=loc),
                )


# ----------------------------------------------------------------------------- context


def _first(mapping: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = mapping.get(name)
        if value not in (None, ""):
            return value
    return None


def _currency(value: Any) -> str | None:
    code = str(value).strip().upper() if value is not None else ""
    return code if re.fullmatch(r"[A-Z]{3}", code) else None


def cart_from_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """A normalised cart from a Segment `Checkout Started` or a Shopify checkout payload."""
    props = properties if isinstance(properties, dict) else {}
    raw_lines = props.get("products") or props.get("line_items") or []
    lines = []
    for item in raw_lines if isinstance(raw_lines, list) else []:
        if not isinstance(item, dict):
            continue
        qty = formatting.to_decimal(_first(item, "quantity")) or 1
        price = formatting.to_decimal(_first(item, "price"))
        lines.append(
            {
                "title": _first(item, "title", "name", "sku", "product_id") or "",
                "variant": _first(item, "variant_title", "variant") or "",
                "sku": item.get("sku"),
                "quantity": int(qty),
                "price": price,
                "total": price * qty if price is not None else None,
                "url": _first(item, "url"),
                "image_url": _first(item, "image_url", "image"),
            }
        )
    total = formatting.to_decimal(_first(props, "total", "value", "total_price", "revenue"))
    if total is None and lines and all(line["total"] is not None for line in lines):
        total = sum(line["total"] for line in lines)
    return {
        "id": _first(props, "checkout_id", "token", "checkout_token", "cart_id"),
        "lines": lines,
        "total": total,
        "currency": _currency(_first(props, "currency", "presentment_currency")),
        "url": _first(props, "abandoned_checkout_url", "checkout_url", "recovery_url", "url"),
    }


def build_context(
    *,
    profile: dict[str, Any],
    trigger: dict[str, Any] | None = None,
    journey: dict[str, Any] | None = None,
    links: dict[str, str] | None = None,
    message: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    now: Any = None,
) -> dict[str, Any]:
    trigger = trigger if isinstance(trigger, dict) else {}
    return {
        "profile": profile,
        "trigger": trigger,
        "cart": cart_from_properties(trigger.get("properties") or {}),
        "journey": journey or {},
        "links": links or {},
        "message": message or {},
        "extra": extra or {},
        "now": now,
    }


def sample_context(*, locale: str = "en") -> dict[str, Any]:
    """The context used for previews without a profile and for save-time trial renders."""
    trigger = {
        "event": "Checkout Started",
        "properties": {
            "checkout_id": "7c1b2d0f9a4e4f6b8c3d2e1f0a9b8c7d",
            "currency": "DKK",
            "value": 1249.0,
            "abandoned_checkout_url": "https://shop.example.com/checkouts/7c1b/recover",
            "products": [
                {
                    "title": "Regnjakke Aarhus",
                    "variant_title": "M / Navy",
                    "sku": "RJ-AAR-M-NV",
                    "price": 899.0,
                    "quantity": 1,
                },
                {
                    "title": "Uldsokker 3-pak",
                    "variant_title": "39-42",
                    "sku": "US-3P-3942",
                    "price": 175.0,
                    "quantity": 2,
                },
            ],
        },
        "timestamp": "2026-11-20T08:14:03+00:00",
    }
    profile = {
        "id": "prof_sample",
        "traits": {"first_name": "Mette", "country": "DK"},
        "email": "mette@example.com",
        "phone": "+4520123456",
        "locale": locale,
        "timezone": "Europe/Copenhagen",
        "user_id": "cust-1",
    }
    links = {
        "unsubscribe": "https://rejse.example/u/sample",
        "preferences": "https://rejse.example/u/sample",
    }
    return {
        **build_context(
            profile=profile,
            trigger=trigger,
            journey={"key": "abandoned-cart", "version": 1, "step": "reminder_1"},
            links=links,
            message={"id": "msg_sample"},
            extra={},
        ),
        "locale": locale,
    }
