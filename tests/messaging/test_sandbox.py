"""Templates render in the immutable sandbox: escape attempts are refused with a clear error at
save (with the line) and at render; broken templates are rejected at save with their line."""

from __future__ import annotations

import pytest

from rejse.errors import Unprocessable
from rejse.messaging.render_context import sample_context
from rejse.messaging.rendering import render_part
from rejse.messaging.sandbox import engines
from rejse.messaging.template_checks import validate_source

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ ''['__class__'] }}",
    "{{ range.__self__ }}",
    "{{ profile.__class__.__subclasses__() }}",
    "{{ namespace.__init__.__globals__['os'] }}",
    "{% set x = ''|attr('__class__') %}{{ x.__mro__ }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escape_refused_at_save(source):
    with pytest.raises(Unprocessable) as err:
        validate_source("Hello\n" + source, part="text", field_name="variants.en.text")
    assert "line 2" in err.value.message
    assert "sandbox" in err.value.message or "unknown variable" in err.value.message
    assert err.value.field == "variants.en.text"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''|attr('__class__') }}",  # filter route: no static attribute node
        "{{ profile.items.__self__ }}",
        "{{ 'a'.format.__globals__ }}",
    ],
)
def test_escape_refused_at_render(source):
    env = engines().text
    with pytest.raises(Unprocessable) as err:
        render_part(env.from_string(source), sample_context(), part="text")
    assert "sandbox" in err.value.message


def test_mutation_and_resource_limits_refused():
    env = engines().text
    for source in [
        "{{ profile.traits.update({'x': 1}) }}",
        "{{ 'a' * 10000000 }}",
        "{{ 2 ** 100000 }}",
        "{% for i in range(10000000) %}{% endfor %}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    ]:
        with pytest.raises(Unprocessable):
            render_part(env.from_string(source), sample_context(), part="text")


def test_broken_template_rejected_with_line():
    with pytest.raises(Unprocessable) as err:
        validate_source(
            "Hi\n{% if cart.total %}\n{{ cart.total }\n", part="html", field_name="variants.da.html"
        )
    assert err.value.message.startswith("line 3: syntax error")
    with pytest.raises(Unprocessable) as err:
        validate_source("Hi\n\n{{ customer.name }}", part="text", field_name="variants.da.text")
    assert "line 3" in err.value.message
    assert "unknown variable 'customer'" in err.value.message


def test_html_is_autoescaped_and_text_is_not():
    ctx = {**sample_context(), "profile": {"traits": {"first_name": "<script>x</script>"}}}
    eng = engines()
    assert "&lt;script&gt;" in render_part(
        eng.html.from_string("{{ profile.traits.first_name }}"), ctx, part="html"
    )
    assert "<script>" in render_part(
        eng.text.from_string("{{ profile.traits.first_name }}"), ctx, part="text"
    )


def test_missing_variable_is_an_error_not_blank():
    with pytest.raises(Unprocessable) as err:
        render_part(
            engines().text.from_string("\n{{ profile.traits.shoe_size }}"),
            sample_context(),
            part="text",
        )
    assert "line 2" in err.value.message
    assert "shoe_size" in err.value.message


def test_money_and_dates_follow_locale():
    env = engines().text
    t = env.from_string("{{ cart.total | money }} / {{ '2026-11-20T09:14:03+00:00' | date }}")
    da = render_part(t, {**sample_context(), "locale": "da"}, part="text").replace("\xa0", " ")
    en = render_part(t, {**sample_context(), "locale": "en"}, part="text").replace("\xa0", " ")
    assert da == "1.249,00 kr. / 20. november 2026"
    assert en == "DKK1,249.00 / November 20, 2026"


def test_runaway_loops_rejected_at_save():
    with pytest.raises(Unprocessable) as err:
        validate_source(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            part="text",
            field_name="variants.en.text",
        )
    assert "too much work" in err.value.message
    # the shipped templates are far below the budget
    source = (engines().templates_dir / "email/abandoned_cart/reminder/da/body.html").read_text()
    validate_source(source, part="html", field_name="variants.da.html")
