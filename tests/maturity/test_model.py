"""The maturity model's rules: the four start positions and four progress scenarios from sets of
answers, the edges of "high", the prefill's share-to-answer mapping and the language choice."""

import pytest
from pydantic import ValidationError

from rejse.maturity import texts
from rejse.maturity.model import (
    Progress,
    ProgressScenario,
    Readiness,
    StartPosition,
    answer_for_share,
    assess,
    is_high,
    score,
)


def readiness(motivation: tuple[int, int, int], data: tuple[int, int, int]) -> Readiness:
    return Readiness(
        goal_importance=motivation[0],
        data_contribution=motivation[1],
        expectancy=motivation[2],
        structural=data[0],
        transactional=data[1],
        activity=data[2],
    )


def progress(competence: tuple[int, int, int], success: int) -> Progress:
    return Progress(
        collect=competence[0], analyse=competence[1], permission=competence[2], success=success
    )


@pytest.mark.parametrize(
    ("motivation", "data", "position"),
    [
        ((2, 1, 2), (1, 2, 1), StartPosition.begynder),
        ((2, 2, 1), (5, 4, 4), StartPosition.begrunder),
        ((5, 4, 5), (2, 1, 1), StartPosition.beundrer),
        ((4, 5, 4), (4, 4, 5), StartPosition.bevaeger),
        # the edge: a mean of exactly 3 is low, one step above it is high
        ((3, 3, 3), (3, 3, 3), StartPosition.begynder),
        ((3, 3, 4), (3, 3, 3), StartPosition.beundrer),
        ((3, 3, 3), (4, 3, 3), StartPosition.begrunder),
        ((5, 5, 5), (5, 5, 5), StartPosition.bevaeger),
        ((1, 1, 1), (1, 1, 1), StartPosition.begynder),
    ],
)
def test_start_positions(motivation, data, position):
    result = assess(readiness(motivation, data), None)
    assert result.position is position
    assert result.motivation == score(motivation)
    assert result.customer_data == score(data)
    assert result.scenario is None


@pytest.mark.parametrize(
    ("competence", "success", "scenario"),
    [
        ((2, 2, 1), 2, ProgressScenario.babyskridt),
        ((4, 5, 4), 2, ProgressScenario.traedemoelle),
        ((2, 1, 3), 4, ProgressScenario.rette_fod),
        ((5, 4, 4), 5, ProgressScenario.fuld_fart_frem),
        ((3, 3, 3), 3, ProgressScenario.babyskridt),  # the middle is low on both
        ((4, 3, 3), 4, ProgressScenario.fuld_fart_frem),
    ],
)
def test_progress_scenarios_of_movers(competence, success, scenario):
    result = assess(readiness((5, 5, 4), (4, 5, 4)), progress(competence, success))
    assert result.position is StartPosition.bevaeger
    assert result.scenario is scenario
    assert not result.progress_needed


def test_progress_counts_only_for_movers():
    beginner = assess(readiness((1, 1, 1), (1, 1, 1)), progress((5, 5, 5), 5))
    assert beginner.scenario is None
    assert not beginner.progress_needed
    assert beginner.competence == 1.0
    assert beginner.success == 1.0
    mover = assess(readiness((5, 5, 5), (5, 5, 5)), None)
    assert mover.scenario is None
    assert mover.progress_needed


def test_scores_and_high():
    assert score((1, 1, 1)) == 0.0
    assert score((3, 3, 3)) == 0.5
    assert score((5, 5, 5)) == 1.0
    assert score((4, 5, 4)) == pytest.approx(0.8333333)
    assert not is_high((3, 3, 3))
    assert is_high((3, 3, 4))
    assert not is_high((2, 3, 4))


@pytest.mark.parametrize(
    ("having", "total", "answer"),
    [
        (0, 0, 1),
        (0, 100, 1),
        (12, 100, 1),
        (125, 1000, 2),  # 12.5 % rounds up
        (37, 100, 2),
        (375, 1000, 3),
        (50, 100, 3),
        (625, 1000, 4),
        (87, 100, 4),
        (875, 1000, 5),
        (100, 100, 5),
        (3, 7, 3),
        (2, 7, 2),
    ],
)
def test_answer_for_share(having, total, answer):
    assert answer_for_share(having, total) == answer


@pytest.mark.parametrize("bad", [0, 6, -1, 3.5, 3.0, "3", True, None])
def test_answers_are_integers_from_1_to_5(bad):
    fields = dict(readiness((3, 3, 3), (3, 3, 3)))
    with pytest.raises(ValidationError) as err:
        Readiness(**{**fields, "expectancy": bad})
    assert [e["loc"] for e in err.value.errors()] == [("expectancy",)]


@pytest.mark.parametrize(
    ("lang", "header", "chosen"),
    [
        ("en", "da", "en"),
        (None, None, "da"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "fr-FR, en;q=0.5, da;q=0.8", "da"),
        (None, "da;q=0, en;q=0.1", "en"),
        (None, "de, fr", "da"),
        (None, "en;q=abc, da;q=0.2", "da"),
        (None, "EN-us", "en"),
        (None, "en;q=0.7, da;q=0.7", "en"),  # equal quality: the first listed
        ("sv", "da", "sv"),
        (None, "sv-SE, en;q=0.5", "sv"),
    ],
)
def test_language_choice(lang, header, chosen):
    assert texts.negotiate(lang, header) == chosen


def test_every_text_exists_in_every_language():
    assert texts.LANGS == ("da", "sv", "en")
    tables = (
        texts.POSITIONS,
        texts.SCENARIOS,
        texts.WORKSHOPS,
        texts.QUESTIONS,
        texts.DATA_KINDS,
        texts.DEFINITIONS,
    )
    for table in tables:
        for entry in table.values():
            assert set(entry) == set(texts.LANGS)
    for single in (texts.MAIN_QUESTION, texts.SCALE, texts.CHART):
        assert set(single) == set(texts.LANGS)
    assert set(texts.CHART["sv"]) == set(texts.CHART["da"])
    for key in texts.WORKSHOPS:  # the same workshops, agendas of the same length
        sv, da = texts.WORKSHOPS[key]["sv"], texts.WORKSHOPS[key]["da"]
        assert [(w.duration_minutes, len(w.agenda)) for w in sv] == [
            (w.duration_minutes, len(w.agenda)) for w in da
        ]
    assert set(texts.POSITIONS) == set(StartPosition)
    assert set(texts.SCENARIOS) == set(ProgressScenario)
    assert set(texts.WORKSHOPS) == set(StartPosition) | set(ProgressScenario)
    assert list(texts.QUESTIONS) == [*texts.READINESS_KEYS, *texts.PROGRESS_KEYS]
    assert list(texts.READINESS_KEYS) == list(Readiness.model_fields)
    assert list(texts.PROGRESS_KEYS) == list(Progress.model_fields)
