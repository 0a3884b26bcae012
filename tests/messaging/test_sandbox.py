"""Templates render in the immutable sandbox: escape attempts are refused with a clear error at
save (with the line) and at render; broken templates are rejected at save with their line; and
the limits (work, value and output size, nesting, range) hold at save and at render, refusing
before anything large is built."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

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


def test_money_kept_per_amount_as_written_per_currency_and_locale():
    from rejse.messaging.formatting import money

    def shown(value, currency, locale):
        return money(value, currency, locale).replace("\xa0", " ")

    # the formatting is memoised: equal amounts written apart (-0 and 0) stay apart, and the
    # same amount in another currency or locale is formatted afresh
    assert shown("-0", "SEK", "sv") == "-0,00 kr"
    assert shown(0, "SEK", "sv") == "0,00 kr"
    assert shown("1249", "dkk", "da") == "1.249,00 kr."
    assert shown("1249", "DKK", "en") == "DKK1,249.00"
    assert shown("1249", "EUR", "da") == "1.249,00 €"
    assert shown("1249", None, "da") == "1.249,00"


def test_runaway_loops_rejected_at_save():
    with pytest.raises(Unprocessable) as err:
        validate_source(
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            part="text",
            field_name="variants.en.text",
        )
    assert "too much work" in err.value.message
    # the shipped templates are far below the budget
    source = (engines().templates_dir / "email/abandoned_cart/reminder/da/body.html").read_text()
    validate_source(source, part="html", field_name="variants.da.html")


# ----------------------------------------------------------------------------- limits

# Each builds 100 MB or more in one way or another; with the sample data, so refused at save.
HUGE = {
    "concat-doubling": "{% set ns = namespace(s='x' * 100000) %}{% for i in range(10) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    "plus-doubling": "{% set ns = namespace(s='x' * 100000) %}{% for i in range(10) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
    "center-filter": "{{ 'x' | center(100000000) | length }}",
    "ljust-method": "{{ 'x'.ljust(100000000) | length }}",
    "printf-width": "{{ '%100000000s' | format('x') | length }}",
    "printf-star": "{{ '%*s' % (100000000, 'x') }}",
    "str-format-width": "{{ '{:>100000000}'.format('x') | length }}",
    "replace-empty": "{{ ('x' * 1000).replace('', 'y' * 100000) | length }}",
    "join": "{{ (['x' * 100000] * 1000) | join | length }}",
    "wordwrap": "{{ ('x ' * 1000) | wordwrap(1, wrapstring='y' * 100000) }}",
    "nested-list-repr": "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
    "{% set ns.s = [ns.s, ns.s] %}{% endfor %}{{ ns.s }}",
    "loop-output": "{% for i in range(1000) %}{{ 'x' * 100000 }}{% endfor %}",
    "map-join": "{{ (['x' * 100000] * 1000) | map('upper') | join | length }}",
    "sum-of-lists": "{{ (['x' * 100000] * 1000) | map('list') | sum(start=[]) | length }}",
    "batch-fill": "{{ [1] | batch(linecount=100000000, fill_with='x') | list | length }}",
    "big-int": "{% set ns = namespace(x=9) %}{% for i in range(40) %}"
    "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}",
}


@pytest.mark.parametrize("source", list(HUGE.values()), ids=list(HUGE))
def test_template_building_a_huge_value_is_refused_at_save_without_allocating_it(source):
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(Unprocessable) as err:
            validate_source("Hi\n" + source, part="html", field_name="variants.en.html")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.field == "variants.en.html"
    assert "line 2" in err.value.message
    assert peak < 20_000_000, f"{peak:,} bytes allocated"


def test_self_calling_macro_is_refused_at_save_with_its_line():
    with pytest.raises(Unprocessable) as err:
        validate_source(
            "Hi\n{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}\n{{ m(0) }}",
            part="text",
            field_name="variants.en.text",
        )
    assert "nest deeper than 32" in err.value.message
    assert "line 2" in err.value.message


def test_range_over_the_limit_is_refused_at_save():
    with pytest.raises(Unprocessable) as err:
        validate_source(
            "{% for i in range(50000) %}{% endfor %}", part="text", field_name="variants.en.text"
        )
    assert "range() of 50,000 items is over the limit of 10,000" in err.value.message


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Time the render, not the garbage collector walking the heap that earlier tests left in
    this process (millions of objects: a full collection can take seconds on a busy machine,
    which is no work the template did)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def test_loops_driven_by_data_stop_at_render_within_bounded_time():
    """Work that only explodes with the real data (here `extra.n`, cubic) passes the save-time
    trial and is stopped by the same budget when it renders."""
    import time

    source = (
        "{% for i in range(extra.n) %}{% for j in range(extra.n) %}{% for k in range(extra.n) %}"
        "{{ i }}{% endfor %}{% endfor %}{% endfor %}"
    )
    validate_source(source, part="html", field_name="variants.en.html")  # sample: no extra.n
    template = engines().html.from_string(source)
    context = {**sample_context(), "extra": {"n": 300}}
    with heap_frozen():
        started = time.monotonic()
        with pytest.raises(Unprocessable) as err:
            render_part(template, context, part="html")
        elapsed = time.monotonic() - started
    assert elapsed < 2, f"{elapsed:.1f} s"
    assert "too much work" in err.value.message or "takes too long" in err.value.message
    assert err.value.field == "template.html"


def test_cpu_time_limit_stops_what_the_step_budget_would_let_run():
    from rejse.messaging.sandbox import TemplateLimits

    source = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    with pytest.raises(Unprocessable) as err:
        render_part(
            engines().text.from_string(source),
            sample_context(),
            part="text",
            limits=TemplateLimits(steps=10**9, seconds=0.2),
        )
    assert "takes too long (over 0.2 s of CPU)" in err.value.message


def test_output_cap_is_per_part_and_configurable():
    from rejse.messaging.sandbox import TemplateLimits

    source = "{% for i in range(100) %}{{ 'x' * 100 }}{% endfor %}"  # 10,000 bytes
    template = engines().html.from_string(source)
    assert len(render_part(template, sample_context(), part="html")) == 10_000
    small = TemplateLimits(html_bytes=8_192)
    with pytest.raises(Unprocessable) as err:
        render_part(template, sample_context(), part="html", limits=small)
    assert "html output is over 8,192 bytes" in err.value.message
    assert "line 1" in err.value.message
    with pytest.raises(Unprocessable) as err:
        validate_source(source, part="html", field_name="variants.da.html", limits=small)
    assert err.value.field == "variants.da.html"
    # the subject has its own, smaller cap
    with pytest.raises(Unprocessable) as err:
        render_part(engines().text.from_string(source), sample_context(), part="subject")
    assert "subject output is over 2,048 bytes" in err.value.message


def test_limits_come_from_settings():
    from rejse.messaging.sandbox import TemplateLimits
    from rejse.settings import Settings

    limits = TemplateLimits.from_settings(
        Settings(template_max_html_bytes=100_000, template_max_range=500, template_max_depth=8)
    )
    assert (limits.html_bytes, limits.range_size, limits.depth) == (100_000, 500, 8)
    assert limits.text_bytes == 256 * 1024
