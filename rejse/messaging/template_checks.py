"""Save-time checks of template sources: syntax, unsafe names, unknown variables, includes, and a
trial render with the sample context under the template limits.

Only sandbox refusals and the limits (work, size, nesting) fail the trial render; data-dependent
errors (a trait the sample profile lacks) pass at save and are reported by the real render,
which runs under the same limits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError

from rejse.errors import Unprocessable
from rejse.messaging import formatting
from rejse.messaging.render_context import sample_context
from rejse.messaging.rendering import TemplateProblem, generate_part, template_line
from rejse.messaging.sandbox import (
    LimitExceeded,
    TemplateLimits,
    TooMuchWork,
    engines,
    step_budget,
)
from rejse.messaging.template_lookup import CHANNEL_PARTS, REQUIRED_PARTS, check_channel

# The documented template context (docs/messaging.md). Anything else is an unknown variable.
CONTEXT_NAMES = frozenset(
    {"profile", "trigger", "cart", "journey", "links", "message", "locale", "now", "extra"}
)


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
    limits: TemplateLimits | None = None,
) -> None:
    """Refuse a template part with its line number: syntax errors, unsafe attribute access,
    variables outside the documented context, and sandbox violations or limits (`limits`,
    default: this process's settings) in a trial render."""
    eng = engines(templates_dir)
    env = eng.for_part(part)
    try:
        ast = env.parse(source)
        template = env.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"line {exc.lineno}: syntax error: {exc.message}", field=field_name
        ) from None
    except (RecursionError, SyntaxError):  # thousands of nested brackets
        raise TemplateProblem(
            "the template nests too deeply to be compiled", field=field_name
        ) from None
    line: int | None  # the template line a refusal names, when it is known
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
            f"line {line}: unknown variable {name!r} "
            f"(available: {', '.join(sorted(CONTEXT_NAMES))})",
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
        with step_budget(limits):
            generate_part(template, sample if sample is not None else sample_context(), part=part)
    except LimitExceeded as exc:
        line = template_line(exc)
        where = f"line {line}: " if line else ""
        data = "with the sample data, " if isinstance(exc, TooMuchWork) else ""
        raise TemplateProblem(f"{where}{data}{exc}", field=field_name) from None
    except SecurityError as exc:
        line = template_line(exc)
        raise TemplateProblem(
            f"line {line}: refused by the template sandbox: {exc}", field=field_name
        ) from None
    except UndefinedError as exc:
        if "unsafe" in str(exc):
            line = template_line(exc)
            raise TemplateProblem(
                f"line {line}: refused by the template sandbox: {exc}", field=field_name
            ) from None
        # A trait the sample profile lacks is fine at save; the real render reports it.
    except Exception:  # noqa: BLE001, S110 - data-dependent errors surface at render time
        pass


def validate_variants(
    channel: str,
    variants: dict[str, dict[str, str]],
    *,
    templates_dir: str | Path | None = None,
    limits: TemplateLimits | None = None,
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
                    limits=limits,
                )
