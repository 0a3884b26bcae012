"""The maturity API: an assessment per start position and progress scenario with its texts in
Danish and English, stored and listed over time, the 2x2 chart carrying the answer's numbers,
and bad input refused naming the field with nothing stored."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from rejse.models.maturity import MaturityAssessment
from rejse.roles import Role
from tests.analytics.test_charts import texts
from tests.conftest import auth

BEGYNDER = {"motivation": (2, 1, 2), "data": (1, 2, 1)}
ANSWERS = {
    "begynder": ((2, 1, 2), (1, 2, 1)),
    "begrunder": ((2, 3, 2), (5, 4, 4)),
    "beundrer": ((5, 4, 5), (2, 1, 1)),
    "bevaeger": ((4, 5, 4), (4, 4, 5)),
}
SCENARIOS = {
    "babyskridt": ((2, 2, 1), 2),
    "traedemoelle": ((4, 5, 4), 2),
    "rette_fod": ((2, 1, 3), 4),
    "fuld_fart_frem": ((5, 4, 4), 5),
}
# The workbook's own sentences (seed 000, pp. 7-10): the most pressing challenge per position.
CHALLENGES_DA = {
    "begynder": "Det første skridt er derfor at finde motivationen.",
    "begrunder": "Den mest presserende udfordring er at finde en god business case for kundedata.",
    "beundrer": "Den mest presserende udfordring er at finde og samle kundedata.",
    "bevaeger": "Den mest presserende udfordring er at finde og udnytte momentum.",
}
NAMES = {
    "da": {"begynder": "Begynder", "begrunder": "Begrunder", "beundrer": "Beundrer",
           "bevaeger": "Bevæger"},
    "en": {"begynder": "Beginner", "begrunder": "Justifier", "beundrer": "Admirer",
           "bevaeger": "Mover"},
}  # fmt: skip


def body(motivation, data, progress=None, **extra):
    out = {
        "readiness": {
            "goal_importance": motivation[0],
            "data_contribution": motivation[1],
            "expectancy": motivation[2],
            "structural": data[0],
            "transactional": data[1],
            "activity": data[2],
        },
        **extra,
    }
    if progress is not None:
        competence, success = progress
        out["progress"] = {
            "collect": competence[0],
            "analyse": competence[1],
            "permission": competence[2],
            "success": success,
        }
    return out


def stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(MaturityAssessment)).scalar()


@pytest.mark.parametrize("position", list(ANSWERS))
async def test_each_start_position_in_danish_and_english(client, keys, engine, position):
    h = auth(keys[Role.marketer])
    r = await client.post("/api/maturity", json=body(*ANSWERS[position]), headers=h)
    assert r.status_code == 201, r.text
    da = r.json()
    assert da["lang"] == "da"  # nothing asked: the workbook's language
    assert da["start_position"]["key"] == position
    assert da["start_position"]["name"] == NAMES["da"][position]
    assert da["most_pressing_challenge"].startswith(CHALLENGES_DA[position])
    assert da["way_forward"]
    assert da["workshops"]
    assert da["progress_scenario"] is None
    assert da["progress_needed"] is (position == "bevaeger")
    assert (da["main_question"] is not None) is (position == "bevaeger")

    en = await client.get(
        f"/api/maturity/{da['id']}", headers={**auth(keys[Role.analyst]), "Accept-Language": "en"}
    )
    assert en.status_code == 200
    en = en.json()
    assert en["lang"] == "en"
    assert en["start_position"]["name"] == NAMES["en"][position]
    assert en["most_pressing_challenge"].startswith("The ")
    assert en["workshops"][0]["title"] != da["workshops"][0]["title"]
    # the same assessment: scores and answers do not depend on the language
    assert {k: en[k] for k in ("id", "scores", "answers")} == {
        k: da[k] for k in ("id", "scores", "answers")
    }
    forced = await client.get(
        f"/api/maturity/{da['id']}?lang=da", headers={**h, "Accept-Language": "en"}
    )
    assert forced.json()["start_position"]["name"] == NAMES["da"][position]
    assert stored(engine) == 1


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_each_progress_scenario_of_a_mover(client, keys, scenario):
    h = {**auth(keys[Role.marketer]), "Accept-Language": "en-GB, da;q=0.5"}
    r = await client.post(
        "/api/maturity?lang=da",
        json=body(*ANSWERS["bevaeger"], progress=SCENARIOS[scenario], company="Acme"),
        headers=h,
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["lang"] == "da"
    assert out["company"] == "Acme"
    assert out["start_position"]["key"] == "bevaeger"
    assert out["progress_scenario"]["key"] == scenario
    assert not out["progress_needed"]
    # the position's workshop, then the scenario's
    assert len(out["workshops"]) == 2
    en = (await client.get(f"/api/maturity/{out['id']}", headers=h)).json()
    assert en["lang"] == "en"
    assert en["progress_scenario"]["name"] in {
        "Baby steps", "Treadmill", "Right foot", "Full speed ahead"
    }  # fmt: skip


async def test_progress_of_a_non_mover_is_kept_without_a_scenario(client, keys):
    r = await client.post(
        "/api/maturity",
        json=body(*ANSWERS["beundrer"], progress=SCENARIOS["fuld_fart_frem"]),
        headers=auth(keys[Role.marketer]),
    )
    out = r.json()
    assert out["start_position"]["key"] == "beundrer"
    assert out["progress_scenario"] is None
    assert not out["progress_needed"]
    assert out["answers"]["progress"]["success"] == 5
    assert out["scores"]["success"] == 1.0


async def test_scores_in_the_answer(client, keys):
    r = await client.post(
        "/api/maturity",
        json=body((4, 5, 4), (3, 3, 4), progress=((3, 3, 3), 4)),
        headers=auth(keys[Role.marketer]),
    )
    scores = r.json()["scores"]
    assert scores == {
        "motivation": 0.833,
        "customer_data": 0.583,
        "competence": 0.5,
        "success": 0.75,
        "motivation_high": True,
        "customer_data_high": True,
    }
    assert r.json()["progress_scenario"]["key"] == "rette_fod"


async def test_assessments_over_time_and_their_charts(client, keys):
    h = auth(keys[Role.marketer])
    ids = []
    for position in ("begynder", "beundrer", "bevaeger"):
        r = await client.post(
            "/api/maturity", json=body(*ANSWERS[position], company="Acme"), headers=h
        )
        ids.append(r.json()["id"])
    listing = (await client.get("/api/maturity", headers=auth(keys[Role.analyst]))).json()
    assert listing["total"] == 3
    assert [a["id"] for a in listing["assessments"]] == ids  # oldest first
    assert [a["start_position"]["key"] for a in listing["assessments"]] == [
        "begynder", "beundrer", "bevaeger"
    ]  # fmt: skip
    page = (await client.get("/api/maturity?limit=1&offset=1", headers=h)).json()
    assert page["total"] == 3
    assert [a["id"] for a in page["assessments"]] == ids[1:2]

    # one assessment's 2x2 carries its numbers and the four quadrants
    one = listing["assessments"][2]
    svg = await client.get(f"/api/maturity/{one['id']}/chart.svg?lang=en", headers=h)
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    labels = texts(svg.content)
    day = one["created_at"][:10]
    scores = one["scores"]
    label = f"Acme {day} ({scores['customer_data']:.3f}; {scores['motivation']:.3f})"
    assert label in labels
    assert {"Beginner", "Justifier", "Admirer", "Mover", "Customer data", "Motivation"} <= set(
        labels
    )
    png = await client.get(f"/api/maturity/{one['id']}/chart.png", headers=h)
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")

    # the history chart: every assessment of the page, in Danish
    history = await client.get("/api/maturity/chart.svg", headers=h)
    labels = texts(history.content)
    for a in listing["assessments"]:
        s = a["scores"]
        assert f"Acme {day} ({s['customer_data']:.3f}; {s['motivation']:.3f})" in labels
    assert {"Begynder", "Begrunder", "Beundrer", "Bevæger", "Kundedata"} <= set(labels)
    png = await client.get("/api/maturity/chart.png", headers=h)
    assert png.content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"readiness": {"expectancy": 0}}, "readiness.expectancy"),
        ({"readiness": {"activity": 6}}, "readiness.activity"),
        ({"readiness": {"structural": 3.5}}, "readiness.structural"),
        ({"readiness": {"structural": "3"}}, "readiness.structural"),
        ({"readiness": {"goal_importance": True}}, "readiness.goal_importance"),
        ({"readiness": {"goal_importance": None}}, "readiness.goal_importance"),
        ({"readiness": {"expectation": 3}}, "readiness.expectation"),
        ({"progress": {"collect": 3, "analyse": 3, "permission": 3, "success": 9}},
         "progress.success"),
        ({"progress": {"collect": 3, "analyse": 3, "permission": 3}}, "progress.success"),
        ({"company": ""}, "company"),
        ({"company": "x" * 201}, "company"),
        ({"goal": "a\x00b"}, "goal"),
        ({"colour": "red"}, "colour"),
    ],
)  # fmt: skip
async def test_bad_answers_are_422_naming_the_field_and_store_nothing(
    client, keys, engine, change, field
):
    request = body(*ANSWERS["bevaeger"])
    for key, value in change.items():
        if key == "readiness":
            request["readiness"] = {**request["readiness"], **value}
        else:
            request[key] = value
    r = await client.post("/api/maturity", json=request, headers=auth(keys[Role.marketer]))
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]
    assert stored(engine) == 0


async def test_missing_readiness_answer_and_bad_parameters(client, keys, engine):
    h = auth(keys[Role.marketer])
    request = body(*ANSWERS["begynder"])
    del request["readiness"]["transactional"]
    r = await client.post("/api/maturity", json=request, headers=h)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["readiness.transactional"]
    r = await client.post("/api/maturity?lang=fr", json=body(*ANSWERS["begynder"]), headers=h)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "lang"
    assert stored(engine) == 0
    for path in ("/api/maturity?limit=0", "/api/maturity/chart.svg?offset=-1"):
        r = await client.get(path, headers=h)
        assert r.status_code == 422, path
    for path in ("", "/chart.svg", "/chart.png"):
        r = await client.get(f"/api/maturity/mat_nope{path}", headers=h)
        assert r.status_code == 404
        assert r.json()["errors"] == [
            {"field": "assessment_id", "message": "no assessment 'mat_nope'"}
        ]


async def test_roles(client, keys):
    request = body(*ANSWERS["begynder"])
    for role in (Role.analyst, Role.sales, Role.ingest):
        r = await client.post("/api/maturity", json=request, headers=auth(keys[role]))
        assert r.status_code == 403, role
    for role in (Role.sales, Role.ingest):
        r = await client.get("/api/maturity", headers=auth(keys[role]))
        assert r.status_code == 403, role


async def test_the_assessment_and_the_prefill_in_swedish(client, keys):
    h = {**auth(keys[Role.marketer]), "Accept-Language": "sv-SE, en;q=0.5"}
    r = await client.post("/api/maturity", json=body(*ANSWERS["beundrer"]), headers=h)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["lang"] == "sv"
    assert out["start_position"]["name"] == "Beundrare"
    assert out["most_pressing_challenge"].startswith("Den mest angelägna utmaningen")
    assert out["workshops"][0]["title"] == "Hitta de data ni har"
    pre = (await client.get("/api/maturity/prefill?lang=sv", headers=h)).json()
    assert pre["lang"] == "sv"
    assert pre["structural"]["definition"].startswith("Andel profiler (inte raderade)")
    svg = await client.get(f"/api/maturity/{out['id']}/chart.svg?lang=sv", headers=h)
    assert svg.status_code == 200
    assert b"Kunddata" in svg.content


async def test_the_assessments_as_csv(client, keys):
    import csv
    import io

    h = auth(keys[Role.marketer])
    made = []
    for position in ("begynder", "bevaeger"):
        r = await client.post("/api/maturity", json=body(*ANSWERS[position]), headers=h)
        made.append(r.json())
    r = await client.get("/api/maturity", params={"format": "csv", "lang": "en"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["id"], x["start_position"]) for x in rows] == [
        (made[0]["id"], "begynder"),
        (made[1]["id"], "bevaeger"),
    ]
    assert rows[1]["motivation"] == str(made[1]["scores"]["motivation"])
    assert rows[0]["start_position_name"] == "Beginner"
