"""The A/B programme: every split step of every journey as an experiment, read from the runs.

An experiment is one split step of one journey (`journey`/`step`), pooled over every version
that holds it. Its arms are the step's variants, in the definition's order, and its holdout. The
first variant is the control. Each arm's figures are counters kept as runs are assigned arms
and reach their goals (`rejse.analytics_deltas`, read with `rejse.analytics.rollups.counts`;
`rollups.recount_arms` gives the same from the step log joined to the runs): `entered` counts
distinct runs, `converted` those that reached the journey's goal (`JourneyRun.converted`; a
held-out run counts when the goal comes within the holdout's window), and `revenue` the revenue
of those goals (attribution records it with each run's goal; see `_counts`).

What is computed (the statistics are `rejse.stats`):
- per arm: the conversion rate with its Wilson interval, revenue and revenue per recipient with
  a normal interval;
- each treatment arm against the control beside the recorded hypothesis: the difference with
  Newcombe's interval, the relative lift with Katz's interval, the two-proportion z-test. With
  more than one treatment arm the tests share `alpha` (Bonferroni: each at alpha / m) and their
  intervals are at 1 - alpha / m;
- the holdout lift: every variant arm pooled (those who got the journey) against the holdout,
  with the incremental conversions and revenue this implies; and each arm against the holdout;
- the minimum sample per arm for the chosen effect (`mde`, absolute or relative to the
  control's rate, or to `baseline`), `alpha` and `power`, a warning for each arm below it, and a
  winner only when the comparison is significant and every compared arm has the sample.

A split with one variant and a holdout has no control to beat: its question is the holdout lift,
so the holdout is the reference arm there and the variant the treatment.

Status, in this order: `significant` (a winner), `inconclusive` (the sample is reached, no
winner), `stopped` (the journey is not live, or its published version no longer has the step,
before the sample was reached), `running`."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from babel.numbers import format_decimal
from sqlmodel import Session, col, select

from rejse import analytics_deltas as deltas
from rejse import stats
from rejse.analytics import charts, rollups
from rejse.errors import NotFound, Unprocessable
from rejse.journeys.definition import JourneyDefinition, SplitStep
from rejse.journeys.split import HOLDOUT
from rejse.models.analytics import REVENUE_SCALE
from rejse.models.journeys import Journey, JourneyVersion

Status = Literal["running", "significant", "inconclusive", "stopped"]
STATUSES: tuple[Status, ...] = ("running", "significant", "inconclusive", "stopped")
MdeKind = Literal["absolute", "relative"]
Lang = Literal["da", "sv", "en"]
_LOCALES = {"da": "da_DK", "sv": "sv_SE", "en": "en_US"}

# The defaults, chosen for journeys (docs/analytics.md, "A/B programme"): 2 percentage points
# is the smallest change worth acting on at the 2-10 % conversion of a triggered e-mail (at a
# 5 % baseline it needs 2,213 recipients per arm); 5 % / 80 % are the conventions.
DEFAULT_MDE = 0.02
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8
MAX_RELATIVE_MDE = 10.0  # a lift of 1,000 %


@dataclass(frozen=True)
class Params:
    mde: float = DEFAULT_MDE
    mde_kind: MdeKind = "absolute"
    alpha: float = DEFAULT_ALPHA
    power: float = DEFAULT_POWER
    baseline: float | None = None  # else the reference arm's observed rate

    def check(self) -> Params:
        """The ranges the query schema cannot say alone; each refusal names its field."""
        if not 0 < self.alpha < 1:
            raise Unprocessable("alpha must be between 0 and 1 (exclusive)", field="alpha")
        if not 0 < self.power < 1:
            raise Unprocessable("power must be between 0 and 1 (exclusive)", field="power")
        if self.power <= self.alpha:
            raise Unprocessable("power must be greater than alpha", field="power")
        if self.baseline is not None and not 0 < self.baseline < 1:
            raise Unprocessable("baseline must be between 0 and 1 (exclusive)", field="baseline")
        if self.mde_kind == "absolute" and not 0 < self.mde < 1:
            raise Unprocessable(
                "an absolute mde is a difference of rates: between 0 and 1 (0.02 = 2 points)",
                field="mde",
            )
        if self.mde_kind == "relative" and not 0 < self.mde <= MAX_RELATIVE_MDE:
            raise Unprocessable(
                f"a relative mde is between 0 and {MAX_RELATIVE_MDE:g} (0.1 = 10 % lift)",
                field="mde",
            )
        return self


@dataclass
class ArmCounts:
    """One arm's raw figures; `revenue_sq` is the sum of each run's revenue squared (for the
    interval of revenue per recipient)."""

    entered: int = 0
    converted: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0

    def add(self, other: ArmCounts) -> None:
        self.entered += other.entered
        self.converted += other.converted
        self.revenue += other.revenue
        self.revenue_sq += other.revenue_sq


@dataclass
class Split:
    """One experiment's definition: the version shown (the published one when it holds the
    step, else the newest that does) and every version that holds it."""

    journey: Journey
    step_id: str
    version: int
    step: SplitStep
    versions: list[int] = field(default_factory=list)
    shapes: set[str] = field(default_factory=set)  # distinct split definitions across versions
    live: bool = False


# ----------------------------------------------------------------------------- reading


def _splits(session: Session, journeys: Iterable[Journey]) -> list[Split]:
    by_key = {j.key: j for j in journeys}
    if not by_key:
        return []
    found: dict[tuple[str, str], Split] = {}
    rows = session.exec(
        select(JourneyVersion)
        .where(col(JourneyVersion.journey_key).in_(by_key))
        .order_by(col(JourneyVersion.journey_key), col(JourneyVersion.version))
    )
    for row in rows:
        journey = by_key[row.journey_key]
        defn = JourneyDefinition.model_validate(row.definition)
        for step_id, step in defn.steps.items():
            if not isinstance(step, SplitStep):
                continue
            shown = found.get((journey.key, step_id))
            if shown is None:
                shown = found[(journey.key, step_id)] = Split(journey, step_id, row.version, step)
            shown.versions.append(row.version)
            shown.shapes.add(json.dumps(step.model_dump(mode="json"), sort_keys=True))
            published = row.version == journey.published_version
            if published or shown.version != journey.published_version:
                shown.version, shown.step = row.version, step  # newest, unless published wins
            if published and journey.status == "published":
                shown.live = True
    return sorted(found.values(), key=lambda s: (s.journey.key, s.step_id))


def _counts(session: Session, splits: list[Split]) -> dict[tuple[str, str], dict[str, ArmCounts]]:
    """Per (journey, step), per arm: the distinct runs assigned it, how many of them converted,
    and the revenue of their goal conversions (`rejse.analytics.attribution`: a run's goal
    carries its order's revenue), read from the arms' counters (`rejse.analytics_deltas`:
    kept where a run is assigned an arm and where it reaches its goal; `rollups.recount_arms`
    is the same from the raw rows).

    Only the goal counts here, not an order inside the attribution window after a message: a
    held-out run gets no message, so window credit would favour every treated arm by design.
    The journey KPIs (rejse.analytics.kpis) count both."""
    out: dict[tuple[str, str], dict[str, ArmCounts]] = defaultdict(dict)
    if not splits:
        return out
    keys = {s.journey.key for s in splits}
    wanted = {(s.journey.key, v, s.step_id) for s in splits for v in s.versions}
    found = rollups.counts(
        session,
        group_by=("journey_key", "version", "step_id"),
        journey_key=next(iter(keys)) if len(keys) == 1 else None,
        in_journeys=True,
        metric_prefixes=(deltas.ARM_PREFIX,),
    )
    for c in found:
        key, version, step_id = c.key
        if (key, version, step_id) not in wanted:
            continue  # the same step id, in a version where it is not a split
        kind, _, arm = c.metric.partition(":")
        figures = ArmCounts()
        if kind + ":" == deltas.ARM_ENTERED:
            figures.entered = c.n
        elif kind + ":" == deltas.ARM_CONVERTED:
            figures.converted = c.n
            figures.revenue = c.revenue_units / REVENUE_SCALE
        elif kind + ":" == deltas.ARM_REVENUE_SQ:
            figures.revenue_sq = c.revenue_units / REVENUE_SCALE
        else:
            continue
        out[(key, step_id)].setdefault(arm, ArmCounts()).add(figures)
    return out


# ----------------------------------------------------------------------------- analysis


def _num(value: float, lang: Lang, fmt: str = "#,##0.###") -> str:
    return format_decimal(value, format=fmt, locale=_LOCALES[lang])


def _warning(code: str, arm: str | None, en: str, da: str, sv: str) -> dict[str, Any]:
    return {"code": code, "arm": arm, "message": {"en": en, "da": da, "sv": sv}}


def _interval(i: stats.Interval | None) -> dict[str, float] | None:
    return None if i is None else {"low": round(i.low, 6), "high": round(i.high, 6)}


def _r(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def _compare(
    ref: ArmCounts, arm: ArmCounts, *, against: str, alpha: float
) -> dict[str, Any] | None:
    """`arm` against `ref`: difference, relative lift, z-test, revenue per recipient."""
    if ref.entered == 0 or arm.entered == 0:
        return None
    confidence = 1 - alpha
    pa, pb = ref.converted / ref.entered, arm.converted / arm.entered
    test = stats.two_proportion_z(
        ref.converted, ref.entered, arm.converted, arm.entered, alpha=alpha
    )
    lift = stats.ratio(
        ref.converted, ref.entered, arm.converted, arm.entered, confidence=confidence
    )
    ma = stats.mean_interval(ref.entered, ref.revenue, ref.revenue_sq, confidence=confidence)
    mb = stats.mean_interval(arm.entered, arm.revenue, arm.revenue_sq, confidence=confidence)
    if ma is None or mb is None:  # (not reached: both arms have recipients)
        return None
    rev_diff, rev_interval = stats.mean_difference(
        ma, ref.entered, mb, arm.entered, confidence=confidence
    )
    return {
        "against": against,
        "difference": _r(pb - pa),
        "interval": _interval(
            stats.newcombe(
                ref.converted, ref.entered, arm.converted, arm.entered, confidence=confidence
            )
        ),
        "relative_lift": _r(lift.lift) if lift else None,
        "relative_interval": _interval(lift.interval) if lift else None,
        "z": _r(test.z, 4) if test else None,
        "p_value": _r(test.p_value) if test else None,
        "significant": bool(test and test.significant),
        "alpha": _r(alpha),
        "revenue_per_recipient_difference": _r(rev_diff, 4),
        "revenue_interval": _interval(rev_interval),
    }


def analyse(split: Split, counts: Mapping[str, ArmCounts], params: Params) -> dict[str, Any]:
    """The experiment's full answer (the JSON of `GET /api/experiments/{journey}/{step}`)."""
    step = split.step
    variants = [v.key for v in step.variants]
    keys = variants + ([HOLDOUT] if step.holdout or HOLDOUT in counts else [])
    keys += sorted(k for k in counts if k not in keys)  # arms only an older version had
    arms = {k: counts.get(k, ArmCounts()) for k in keys}
    weights = {v.key: v.weight for v in step.variants}
    if step.holdout:
        weights[HOLDOUT] = step.holdout.weight
    has_holdout = HOLDOUT in arms
    control = variants[0]
    # the reference arm of the primary question, and the arms compared with it
    if len(variants) >= 2:
        reference, treatments = control, [k for k in keys if k not in (control, HOLDOUT)]
    elif has_holdout:
        reference, treatments = HOLDOUT, [k for k in keys if k != HOLDOUT]
    else:
        reference, treatments = control, [k for k in keys if k != control]
    m = max(1, len(treatments))
    alpha_adj = params.alpha / m
    warnings: list[dict[str, Any]] = []

    # the sample each arm needs
    ref = arms[reference]
    if params.baseline is not None:
        baseline: float | None = params.baseline
        baseline_from: str | None = "parameter"
    elif ref.entered:
        baseline, baseline_from = ref.converted / ref.entered, reference
    else:
        baseline, baseline_from = None, None
    required = (
        None
        if baseline is None
        else stats.sample_size_per_arm(
            baseline,
            mde=params.mde,
            relative=params.mde_kind == "relative",
            alpha=alpha_adj,
            power=params.power,
        )
    )
    compared = [reference, *treatments]
    reached = required is not None and all(arms[k].entered >= required for k in compared)
    if required is None:
        warnings.append(
            _warning(
                "no_baseline",
                reference,
                f"No baseline yet: arm {reference!r} has no conversions to plan from"
                if ref.entered
                else f"No baseline yet: arm {reference!r} has no recipients; "
                "give ?baseline= to plan the sample",
                f"Ingen basislinje endnu: armen {reference!r} har ingen konverteringer at "
                "planlægge ud fra"
                if ref.entered
                else f"Ingen basislinje endnu: armen {reference!r} har ingen modtagere; "
                "angiv ?baseline= for at planlægge stikprøven",
                f"Ingen baslinje än: armen {reference!r} har inga konverteringar att planera "
                "utifrån"
                if ref.entered
                else f"Ingen baslinje än: armen {reference!r} har inga mottagare; "
                "ange ?baseline= för att planera urvalet",
            )
        )

    out_arms: list[dict[str, Any]] = []
    for k in keys:
        a = arms[k]
        rate = a.converted / a.entered if a.entered else None
        rev = stats.mean_interval(a.entered, a.revenue, a.revenue_sq, confidence=1 - params.alpha)
        below = required is not None and a.entered < required
        if below:
            warnings.append(
                _warning(
                    "below_sample",
                    k,
                    f"Arm {k!r} has {_num(a.entered, 'en')} of the {_num(required or 0, 'en')} "
                    "recipients needed per arm: wait before reading the result",
                    f"Armen {k!r} har {_num(a.entered, 'da')} af de {_num(required or 0, 'da')} "
                    "modtagere, der kræves pr. arm: vent med at læse resultatet",
                    f"Armen {k!r} har {_num(a.entered, 'sv')} av de {_num(required or 0, 'sv')} "
                    "mottagare som krävs per arm: vänta med att läsa resultatet",
                )
            )
        role = "control" if k == control else "holdout" if k == HOLDOUT else "treatment"
        entry: dict[str, Any] = {
            "key": k,
            "role": role,
            "weight": weights.get(k),
            "entered": a.entered,
            "converted": a.converted,
            "conversion_rate": _r(rate),
            "interval": _interval(
                stats.wilson(a.converted, a.entered, confidence=1 - params.alpha)
            ),
            "revenue": round(a.revenue, 2),
            "revenue_per_recipient": _r(rev.mean, 4) if rev else None,
            "revenue_interval": _interval(rev.interval) if rev else None,
            "below_sample": below,
            "vs_control": None,
            "vs_holdout": None,
        }
        if k in treatments:
            entry["vs_" + ("holdout" if reference == HOLDOUT else "control")] = _compare(
                ref, a, against=reference, alpha=alpha_adj
            )
        if has_holdout and k != HOLDOUT and entry["vs_holdout"] is None:
            entry["vs_holdout"] = _compare(arms[HOLDOUT], a, against=HOLDOUT, alpha=params.alpha)
        out_arms.append(entry)

    # the holdout lift: everyone who got the journey (every variant arm) against the holdout
    holdout_lift = None
    if has_holdout:
        treated = ArmCounts()
        for k in keys:
            if k != HOLDOUT:
                treated.add(arms[k])
        hold = arms[HOLDOUT]
        holdout_lift = _compare(hold, treated, against=HOLDOUT, alpha=params.alpha)
        if holdout_lift is not None:
            holdout_lift["treated"] = treated.entered
            holdout_lift["holdout"] = hold.entered
            holdout_lift["incremental_conversions"] = _r(
                (holdout_lift["difference"] or 0) * treated.entered, 2
            )
            holdout_lift["incremental_revenue"] = _r(
                (holdout_lift["revenue_per_recipient_difference"] or 0) * treated.entered, 2
            )
            holdout_lift["sample_reached"] = (
                required is not None and min(treated.entered, hold.entered) >= required
            )

    # the winner: only when significant and every compared arm has its sample
    by_key = {a["key"]: a for a in out_arms}
    tests = {
        k: by_key[k]["vs_holdout" if reference == HOLDOUT else "vs_control"] for k in treatments
    }
    significant = {k: t for k, t in tests.items() if t is not None and t["significant"]}
    winner: str | None = None
    if reached and significant:
        better = [k for k, t in significant.items() if (t["difference"] or 0) > 0]
        if better:
            winner = max(better, key=lambda k: by_key[k]["conversion_rate"] or 0)
        elif len(significant) == len(treatments):
            winner = reference  # significantly better than every treatment
    elif significant:
        for k, t in significant.items():
            warnings.append(
                _warning(
                    "not_yet_significant",
                    k,
                    f"Arm {k!r} differs from {reference!r} at p = "
                    f"{_num(t['p_value'], 'en', '0.####')}, but the sample is not reached: "
                    "no winner yet (reading a test early inflates false positives)",
                    f"Armen {k!r} afviger fra {reference!r} med p = "
                    f"{_num(t['p_value'], 'da', '0.####')}, men stikprøven er ikke nået: ingen "
                    "vinder endnu (at aflæse en test før tid giver flere falske fund)",
                    f"Armen {k!r} skiljer sig från {reference!r} med p = "
                    f"{_num(t['p_value'], 'sv', '0.####')}, men urvalet är inte nått: ingen "
                    "vinnare än (att läsa av ett test i förtid ger fler falska fynd)",
                )
            )
    if len(split.shapes) > 1:
        listed = ", ".join(str(v) for v in split.versions)
        warnings.append(
            _warning(
                "versions_differ",
                None,
                f"The split changed between versions {listed}; the arms pool the runs of all",
                f"Opdelingen er ændret mellem version {listed}; armene samler alle versioners "
                "forløb",
                f"Uppdelningen har ändrats mellan version {listed}; armarna samlar alla "
                "versioners körningar",
            )
        )

    if winner is not None:
        status: Status = "significant"
    elif reached:
        status = "inconclusive"
    elif not split.live:
        status = "stopped"
    else:
        status = "running"
    smallest = min((arms[k].entered for k in compared), default=0)
    return {
        "journey": split.journey.key,
        "step": split.step_id,
        "hypothesis": step.hypothesis,
        "status": status,
        "live": split.live,
        "journey_status": split.journey.status,
        "version": split.version,
        "versions": split.versions,
        "control": control,
        "reference": reference,
        "parameters": {
            "mde": params.mde,
            "mde_kind": params.mde_kind,
            "alpha": params.alpha,
            "alpha_per_test": _r(alpha_adj),
            "power": params.power,
            "confidence": _r(1 - params.alpha),
        },
        "sample": {
            "required_per_arm": required,
            "baseline": _r(baseline),
            "baseline_from": baseline_from,
            "smallest_arm": smallest,
            "reached": reached,
        },
        "arms": out_arms,
        "holdout_lift": holdout_lift,
        "result": {
            "winner": winner,
            "significant": winner is not None,
            "comparisons": [
                {
                    "arm": k,
                    "against": reference,
                    "difference": t["difference"],
                    "p_value": t["p_value"],
                    "significant": t["significant"],
                }
                for k, t in tests.items()
                if t is not None
            ],
        },
        "warnings": warnings,
    }


def summary(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The list's row of an experiment: hypothesis, status, sample and result."""
    return {
        "journey": detail["journey"],
        "step": detail["step"],
        "hypothesis": detail["hypothesis"],
        "status": detail["status"],
        "live": detail["live"],
        "control": detail["control"],
        "arms": [
            {k: a[k] for k in ("key", "role", "entered", "converted", "conversion_rate")}
            for a in detail["arms"]
        ],
        "sample": detail["sample"],
        "result": detail["result"],
        "holdout_lift": None
        if detail["holdout_lift"] is None
        else {
            k: detail["holdout_lift"][k]
            for k in ("difference", "relative_lift", "p_value", "significant")
        },
        "warnings": [w["code"] for w in detail["warnings"]],
    }


# ----------------------------------------------------------------------------- the service


def list_experiments(
    session: Session, params: Params, *, status: Status | None = None
) -> list[dict[str, Any]]:
    """Every split step of every journey (archived ones too: their results stay readable)."""
    journeys = list(session.exec(select(Journey).order_by(Journey.key)))
    splits = _splits(session, journeys)
    counts = _counts(session, splits)
    rows = [summary(analyse(s, counts.get((s.journey.key, s.step_id), {}), params)) for s in splits]
    return [r for r in rows if status is None or r["status"] == status]


def experiment(session: Session, *, journey: str, step: str, params: Params) -> dict[str, Any]:
    row = session.get(Journey, journey)
    if row is None:
        raise NotFound(f"no journey {journey!r}", field="journey")
    found = [s for s in _splits(session, [row]) if s.step_id == step]
    if not found:
        raise NotFound(f"journey {journey!r} has no split step {step!r}", field="step")
    counts = _counts(session, found)
    return analyse(found[0], counts.get((journey, step), {}), params)


def list_rows(experiments: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The list as a flat table (its CSV): one row per experiment and arm."""
    out = []
    for e in experiments:
        for a in e["arms"]:
            out.append(
                {
                    "journey": e["journey"],
                    "step": e["step"],
                    "hypothesis": e["hypothesis"],
                    "status": e["status"],
                    "arm": a["key"],
                    "role": a["role"],
                    "entered": a["entered"],
                    "converted": a["converted"],
                    "conversion_rate": a["conversion_rate"],
                    "required_per_arm": e["sample"]["required_per_arm"],
                    "winner": e["result"]["winner"],
                }
            )
    return out


def arm_rows(detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The detail's arms as a flat table (its CSV): figures, intervals, and the test against
    the reference arm and the holdout."""
    out = []
    for a in detail["arms"]:
        row: dict[str, Any] = {
            "journey": detail["journey"],
            "step": detail["step"],
            **{
                k: a[k]
                for k in (
                    "key",
                    "role",
                    "weight",
                    "entered",
                    "converted",
                    "conversion_rate",
                    "revenue",
                    "revenue_per_recipient",
                    "below_sample",
                )
            },
            "interval_low": (a["interval"] or {}).get("low"),
            "interval_high": (a["interval"] or {}).get("high"),
        }
        for against in ("vs_control", "vs_holdout"):
            test = a[against] or {}
            for k in ("difference", "relative_lift", "z", "p_value", "significant"):
                row[f"{against}_{k}"] = test.get(k)
        out.append(row)
    return out


TITLES = {
    "en": "Conversion per arm with {c} % intervals",
    "da": "Konvertering pr. arm med {c} %-intervaller",
    "sv": "Konvertering per arm med {c} %-intervall",
}


def chart(detail: Mapping[str, Any], *, lang: Lang = "en") -> dict[str, Any]:
    """The arms' conversion rates with their intervals (the detail's own figures), each arm
    labelled with its recipients, the interval's ends written beside it."""
    rows = [
        {
            "arm": f"{a['key']} (n={_num(a['entered'], lang)})",
            "rate": a["conversion_rate"] or 0.0,
            "low": (a["interval"] or {}).get("low", 0.0),
            "high": (a["interval"] or {}).get("high", 0.0),
        }
        for a in detail["arms"]
    ]
    confidence = _num(detail["parameters"]["confidence"] * 100, lang, "0.#")
    spec = charts.intervals(
        rows,
        label="arm",
        value="rate",
        low="low",
        high="high",
        title=TITLES[lang].format(c=confidence),
    )
    spec["title"] = {
        "text": f"{detail['journey']} / {detail['step']}: {spec['title']}",
        "subtitle": detail["hypothesis"],
    }
    for end, align, dx in (("low", "right", -4), ("high", "left", 4)):
        spec["layer"].append(
            {
                "mark": {"type": "text", "align": align, "dx": dx, "fontSize": 9},
                "encoding": {
                    "x": {"field": end, "type": "quantitative"},
                    "text": {"field": end, "format": ".2%"},
                },
            }
        )
    return spec
