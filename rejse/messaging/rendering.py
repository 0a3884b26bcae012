"""Rendering a resolved template into its parts; failures become `TemplateProblem` with a line.

Every render runs under the template limits (`rejse.messaging.sandbox.step_budget`): the parts
of one message share one work budget, and each part's output is counted as it is produced, so
an oversized part stops at its cap instead of being built first. Subject and text parts are
stripped (the subject also folded onto one line), HTML is kept as rendered; an email without a
text part gets one derived from its HTML.
"""

from __future__ import annotations

import html as html_lib
import io
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, cast

from jinja2 import TemplateError, UndefinedError
from jinja2.environment import Template
from jinja2.exceptions import SecurityError

from rejse.errors import Unprocessable
from rejse.messaging.sandbox import (
    CHARS_PER_STEP,
    LimitExceeded,
    TemplateLimits,
    TooLarge,
    step_budget,
)
from rejse.messaging.template_lookup import ResolvedTemplate


class TemplateProblem(Unprocessable):
    """A template that cannot be saved or rendered; `field` names the part, the message its line."""


@dataclass
class Rendered:
    subject: str | None = None
    html: str | None = None
    text: str | None = None


def template_line(exc: BaseException) -> int | None:
    """The template line an error was raised on, from the error or its traceback."""
    lineno = getattr(exc, "lineno", None)
    if isinstance(lineno, int) and lineno:
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


def generate_part(template: Template, context: dict[str, Any], *, part: str) -> str:
    """Render one part under the active budget, its output counted against the part's cap as
    it is produced. Raises what the template raises (callers decide what to report)."""
    with step_budget() as budget:
        cap = budget.limits.output_bytes(part)
        # one buffer, not a list of chunks: a render of many small pieces leaves no crowd of
        # surviving objects behind for the garbage collector to walk
        out = io.StringIO()
        size = 0
        # a generator in fact (typed as an iterator): `throw` below needs it
        stream = cast(Generator[str, None, None], template.generate(context))
        for chunk in stream:
            size += len(chunk) if chunk.isascii() else len(chunk.encode())
            problem: LimitExceeded | None = None
            try:
                budget.tick(1 + len(chunk) // CHARS_PER_STEP)  # output costs like any value
                if size > cap:
                    raise TooLarge(
                        f"the {part} output is over {cap:,} bytes "
                        f"(REJSE_TEMPLATE_MAX_{part.upper()}_BYTES)"
                    )
            except LimitExceeded as exc:
                problem = exc
            if problem is not None:
                # thrown into the template where it stands, so the error carries that line
                stream.throw(problem)
                raise problem  # the template re-raises it; a template cannot swallow it
            out.write(chunk)
        return out.getvalue()


def render_part(
    template: Template,
    context: dict[str, Any],
    *,
    part: str,
    limits: TemplateLimits | None = None,
) -> str:
    try:
        with step_budget(limits):
            return generate_part(template, context, part=part)
    except (TemplateError, ArithmeticError, TypeError, ValueError, RecursionError) as exc:
        line = template_line(exc)
        where = f"line {line}: " if line else ""
        raise TemplateProblem(
            f"{part}: {where}{_describe(exc)}", field=f"template.{part}"
        ) from None


def render(
    resolved: ResolvedTemplate, context: dict[str, Any], *, limits: TemplateLimits | None = None
) -> Rendered:
    """All parts of a message under one budget (`limits`, default: this process's settings)."""
    ctx = {**context, "locale": resolved.locale}
    out = Rendered()
    with step_budget(limits):
        for part, template in resolved.parts.items():
            text = render_part(template, ctx, part=part)
            setattr(out, part, text if part == "html" else text.strip())
    if resolved.channel == "email" and not out.text and out.html:
        out.text = html_to_text(out.html)
    if out.subject:
        out.subject = " ".join(out.subject.split())
    return out


_TAG = re.compile(r"<[^>]+>")


def html_to_text(html: str) -> str:
    text = re.sub(r"(?is)<(script|style).*?</\1>", "", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</tr>|</h\d>|</li>", "\n", text)
    text = html_lib.unescape(_TAG.sub("", text))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())
