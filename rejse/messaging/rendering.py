"""Rendering a resolved template into its parts; failures become `TemplateProblem` with a line.

Subject and text parts are stripped (the subject also folded onto one line), HTML is kept as
rendered; an email without a text part gets one derived from its HTML.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError, UndefinedError
from jinja2.environment import Template
from jinja2.exceptions import SecurityError

from rejse.errors import Unprocessable
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


def render_part(template: Template, context: dict[str, Any], *, part: str) -> str:
    try:
        return template.render(context)
    except (TemplateError, ArithmeticError, TypeError, ValueError, RecursionError) as exc:
        line = template_line(exc)
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
    text = re.sub(r"(?is)<(script|style).*?</\1>", "", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</tr>|</h\d>|</li>", "\n", text)
    text = html_lib.unescape(_TAG.sub("", text))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())
