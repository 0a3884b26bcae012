"""What a company reads about its assessment, in Danish, Swedish and English.

The Danish texts of the start positions are the workbook's own words ("Brug Kundedata",
Pedersen & Ritter 2021, `../shared/seeds/000_61701566563121e0.txt`, pp. 7-11); the English
ones translate them. The workbook names the progress scenarios and asks one question of them
("is our main challenge to create project success, or to develop digitalisation competence?")
and has a page headed "Forslag til workshop format" with no text under it in the copy rejse
holds: the scenario texts and the workshops below are rejse's, built from the workbook's
questions and recommendations. The Swedish texts (`rejse.maturity.texts_sv`) translate the
Danish ones and are merged in at the end of this module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from rejse.maturity import texts_sv as sv
from rejse.maturity.model import ProgressScenario, StartPosition
from rejse.maturity.textkinds import PositionText, ScenarioText, Workshop

Lang = Literal["da", "sv", "en"]
LANGS: tuple[Lang, ...] = ("da", "sv", "en")
DEFAULT_LANG: Lang = "da"


_BY_TAG: Mapping[str, Lang] = {"da": "da", "sv": "sv", "en": "en"}


def negotiate(lang: str | None, accept_language: str | None) -> Lang:
    """`lang` when given (already validated), else the first of da/sv/en in `Accept-Language`
    by quality (`en-GB;q=0.8, da;q=0.9` -> da; equal qualities: the first listed), else
    Danish, the workbook's language."""
    if lang is not None and lang in _BY_TAG:
        return _BY_TAG[lang]
    best: tuple[float, int, Lang] | None = None
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        code = _BY_TAG.get(tag.strip().lower().split("-")[0])
        if code is None:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not quality > 0:  # q=0 means "not this one"; NaN is no quality
            continue
        candidate = (-quality, index, code)
        if best is None or candidate[:2] < best[:2]:
            best = candidate
    return best[2] if best else DEFAULT_LANG


POSITIONS: Mapping[StartPosition, Mapping[Lang, PositionText]] = {
    StartPosition.begynder: {
        "da": PositionText(
            name="Begynder",
            who="Begynderne mangler både motivation og kundedata.",
            typical="De er typisk mindre virksomheder, der er produktfokuserede, konservative "
            "og har en stabil forretningsmodel.",
            challenge="Det første skridt er derfor at finde motivationen.",
            way_forward="Motivationen kommer som regel fra kundeforespørgsler eller andre "
            "eksterne forandringsagenter.",
            motto="If it ain't broke, why fix it?",
        ),
        "en": PositionText(
            name="Beginner",
            who="Beginners lack both motivation and customer data.",
            typical="They are usually smaller companies that are product-focused, conservative "
            "and have a stable business model.",
            challenge="The first step is therefore to find the motivation.",
            way_forward="The motivation usually comes from customer requests or other outside "
            "change agents.",
            motto="If it ain't broke, why fix it?",
        ),
    },
    StartPosition.begrunder: {
        "da": PositionText(
            name="Begrunder",
            who="Begrunderne har kundedata men mangler motivation.",
            typical="De er typisk teknologitunge virksomheder med en udtalt grad af "
            "specialisering. Deres data indsamles automatisk som led i deres drift.",
            challenge="Den mest presserende udfordring er at finde en god business case for "
            "kundedata.",
            way_forward="Business casen kommer enten fra inspiration udefra eller ved at få "
            "data fra mindre eksperimenter i fronten (eksempelvis fra sælgere eller "
            "servicemedarbejdere).",
        ),
        "en": PositionText(
            name="Justifier",
            who="Justifiers have customer data but lack motivation.",
            typical="They are usually technology-heavy companies with a marked degree of "
            "specialisation. Their data is collected automatically as part of operations.",
            challenge="The most pressing challenge is to find a good business case for "
            "customer data.",
            way_forward="The business case comes either from inspiration from outside or from "
            "data of small experiments at the front line (for example from sales or service "
            "staff).",
        ),
    },
    StartPosition.beundrer: {
        "da": PositionText(
            name="Beundrer",
            who="Beundrerne har motivationen, men mangler kundedata.",
            typical="De er typisk nysgerrige på nye tendenser, men mangler at indsamle data selv.",
            challenge="Den mest presserende udfordring er at finde og samle kundedata. Dog kan "
            "udfordringen også være at rette deres fejlopfattelse af virkeligheden, da de måske "
            "bare ikke er klar over at de har data.",
            way_forward="Kundedata kommer typisk ved at strukturere den eksisterende viden "
            "blandt sælgere og sætte den i system – eller ved investering i dataindsamling.",
        ),
        "en": PositionText(
            name="Admirer",
            who="Admirers have the motivation but lack customer data.",
            typical="They are usually curious about new trends but do not collect data themselves.",
            challenge="The most pressing challenge is to find and gather customer data. The "
            "challenge may also be to correct a mistaken picture of reality: they may simply "
            "not know that they have data.",
            way_forward="Customer data usually comes from structuring what the sales staff "
            "already know and putting it in system – or from investing in data collection.",
        ),
    },
    StartPosition.bevaeger: {
        "da": PositionText(
            name="Bevæger",
            who="Bevægerne har både motivationen og kundedata på plads.",
            typical="Af samme årsag er de allerede i indledende bevægelse.",
            challenge="Den mest presserende udfordring er at finde og udnytte momentum.",
            way_forward="Momentum findes typisk ved at balancere mellem at sætte processer i "
            "system samt løbende at eksperimentere med nye data-projekter.",
            motto="Win small, win early, win often",
        ),
        "en": PositionText(
            name="Mover",
            who="Movers have both the motivation and the customer data in place.",
            typical="For that reason they are already moving.",
            challenge="The most pressing challenge is to find and use momentum.",
            way_forward="Momentum usually comes from balancing putting processes in system "
            "with experimenting with new data projects all along.",
            motto="Win small, win early, win often",
        ),
    },
}

SCENARIOS: Mapping[ProgressScenario, Mapping[Lang, ScenarioText]] = {
    ProgressScenario.babyskridt: {
        "da": ScenarioText(
            name="Babyskridt",
            description="Digitaliseringskompetencen (at opsamle data, analysere data og få "
            "tilladelse til at bruge data) er endnu svag, og kundedataprojekterne har endnu "
            "ikke givet succes.",
            main_challenge="Begge dele: at skabe en første projektsucces og samtidig udvikle "
            "digitaliseringskompetencen.",
            way_forward="Tag ét lille skridt ad gangen: ét afgrænset projekt med de data, I "
            "allerede har, og en kompetence, I bygger op undervejs.",
        ),
        "en": ScenarioText(
            name="Baby steps",
            description="Digitalisation competence (collecting data, analysing data and getting "
            "permission to use data) is still weak, and customer-data projects have not yet "
            "been a success.",
            main_challenge="Both: to create a first project success and at the same time "
            "develop digitalisation competence.",
            way_forward="Take one small step at a time: one bounded project with the data you "
            "already have, and one competence you build along the way.",
        ),
    },
    ProgressScenario.traedemoelle: {
        "da": ScenarioText(
            name="Trædemølle",
            description="I er gode til at opsamle og analysere data og få tilladelse til at "
            "bruge dem, men kundedataprojekterne giver ikke succes: I løber uden at komme "
            "frem.",
            main_challenge="At skabe projektsucces.",
            way_forward="Vælg færre projekter, hver med et klart mål og et succeskriterium fra "
            "start, og stop dem, der ikke flytter noget.",
        ),
        "en": ScenarioText(
            name="Treadmill",
            description="You are good at collecting and analysing data and at getting "
            "permission to use it, but customer-data projects do not succeed: you run without "
            "getting anywhere.",
            main_challenge="To create project success.",
            way_forward="Choose fewer projects, each with a clear goal and a success criterion "
            "from the start, and stop those that move nothing.",
        ),
    },
    ProgressScenario.rette_fod: {
        "da": ScenarioText(
            name="Rette fod",
            description="Kundedataprojekterne lykkes, men digitaliseringskompetencen halter "
            "bagefter.",
            main_challenge="At udvikle digitaliseringskompetencen.",
            way_forward="Sæt det, der virkede, i system: opsamling, analyse og samtykke, så "
            "succesen kan gentages og ikke hviler på enkeltpersoner.",
        ),
        "en": ScenarioText(
            name="Right foot",
            description="Customer-data projects succeed, but digitalisation competence lags "
            "behind.",
            main_challenge="To develop digitalisation competence.",
            way_forward="Put what worked in system: collection, analysis and consent, so the "
            "success can be repeated and does not rest on a few people.",
        ),
    },
    ProgressScenario.fuld_fart_frem: {
        "da": ScenarioText(
            name="Fuld fart frem",
            description="Både digitaliseringskompetencen og succesen med kundedataprojekter er "
            "på plads.",
            main_challenge="At holde farten.",
            way_forward="Skalér det, der virker, og eksperimentér løbende videre med nye "
            "dataprojekter ('win small, win early, win often').",
        ),
        "en": ScenarioText(
            name="Full speed ahead",
            description="Both digitalisation competence and success with customer-data projects "
            "are in place.",
            main_challenge="To keep up the speed.",
            way_forward="Scale what works and keep experimenting with new data projects "
            "('win small, win early, win often').",
        ),
    },
}

MAIN_QUESTION: Mapping[Lang, str] = {
    "da": "Er vores hovedudfordring at skabe projektsucces eller snarere at udvikle en "
    "digitaliseringskompetence?",
    "en": "Is our main challenge to create project success, or rather to develop "
    "digitalisation competence?",
}

_MOTIVATION_AGENDA = {
    "da": (
        "Hvilken målsætning har vi, og hvor vigtig er vores målsætning for os?",
        "I hvilket omfang bidrager kundedata til at vi opnår vores målsætning?",
        "I hvilket omfang forventer vi, at vi er i stand til at bruge kundedata?",
    ),
    "en": (
        "What goal do we have, and how important is it to us?",
        "To what extent does customer data help us reach it?",
        "To what extent do we expect to be able to use customer data?",
    ),
}
_DATA_AGENDA = {
    "da": (
        "Hvilke strukturelle data har vi om vores kunder (størrelse, branche, region)?",
        "Hvilke transaktionsdata har vi om vores kunder (omsætning, hvad de har købt og til "
        "hvilken pris)?",
        "Hvilke aktivitetsdata har vi om vores kunder (hvordan, hvornår og hvor de bruger "
        "produktet)?",
    ),
    "en": (
        "What structural data do we hold about our customers (size, industry, region)?",
        "What transactional data (revenue, what they bought, at what price)?",
        "What activity data (how, when and where they use the product)?",
    ),
}

WORKSHOPS: Mapping[StartPosition | ProgressScenario, Mapping[Lang, tuple[Workshop, ...]]] = {
    StartPosition.begynder: {
        "da": (
            Workshop(
                title="Find motivationen",
                purpose="At finde en målsætning, som kundedata kan hjælpe med.",
                participants="Ledelsen og de medarbejdere, der taler med kunderne",
                duration_minutes=120,
                agenda=(
                    "Saml kundernes forespørgsler og de ændringer udefra (kunder, konkurrenter, "
                    "lovgivning), der har ramt jer det seneste år.",
                    *_MOTIVATION_AGENDA["da"],
                    "Vælg én målsætning, hvor kundedata kan gøre en forskel, og en ansvarlig.",
                ),
            ),
        ),
        "en": (
            Workshop(
                title="Find the motivation",
                purpose="To find a goal customer data can help with.",
                participants="Management and the staff who talk to customers",
                duration_minutes=120,
                agenda=(
                    "Collect the customer requests and the outside changes (customers, "
                    "competitors, regulation) that reached you in the past year.",
                    *_MOTIVATION_AGENDA["en"],
                    "Choose one goal where customer data can make a difference, and an owner.",
                ),
            ),
        ),
    },
    StartPosition.begrunder: {
        "da": (
            Workshop(
                title="Find business casen",
                purpose="At finde en god business case for de data, driften allerede samler.",
                participants="Ledelsen, it/drift og sælgere eller servicemedarbejdere",
                duration_minutes=180,
                agenda=(
                    "Kortlæg de data, driften allerede opsamler automatisk.",
                    "Inspiration udefra: hvordan bruger andre virksomheder sådanne data?",
                    *_MOTIVATION_AGENDA["da"],
                    "Design et lille eksperiment i fronten med sælgere eller "
                    "servicemedarbejdere, og aftal hvad det skal vise.",
                ),
            ),
        ),
        "en": (
            Workshop(
                title="Find the business case",
                purpose="To find a good business case for the data operations already collect.",
                participants="Management, IT/operations and sales or service staff",
                duration_minutes=180,
                agenda=(
                    "Map the data operations already collect automatically.",
                    "Inspiration from outside: how do other companies use such data?",
                    *_MOTIVATION_AGENDA["en"],
                    "Design a small experiment at the front line with sales or service staff, "
                    "and agree what it is to show.",
                ),
            ),
        ),
    },
    StartPosition.beundrer: {
        "da": (
            Workshop(
                title="Find de data, I har",
                purpose="At finde og samle kundedata – også dem, I ikke ved, I har.",
                participants="Sælgere, kundeservice, økonomi og marketing",
                duration_minutes=150,
                agenda=(
                    "List alt, I ved om kunderne i dag: ordrer, fakturaer, henvendelser og "
                    "sælgernes viden.",
                    *_DATA_AGENDA["da"],
                    "Aftal, hvordan sælgernes viden sættes i system (fx faste felter i CRM), "
                    "eller hvilken dataindsamling I vil investere i.",
                ),
            ),
        ),
        "en": (
            Workshop(
                title="Find the data you have",
                purpose="To find and gather customer data – including the data you do not "
                "know you have.",
                participants="Sales, customer service, finance and marketing",
                duration_minutes=150,
                agenda=(
                    "List everything you know about customers today: orders, invoices, "
                    "enquiries and what the sales staff know.",
                    *_DATA_AGENDA["en"],
                    "Agree how the sales staff's knowledge is put in system (fixed fields in "
                    "the CRM, for example), or which data collection you will invest in.",
                ),
            ),
        ),
    },
    StartPosition.bevaeger: {
        "da": (
            Workshop(
                title="Find og udnyt momentum",
                purpose="At holde bevægelsen i gang: win small, win early, win often.",
                participants="Ledelsen og de ansvarlige for dataprojekterne",
                duration_minutes=120,
                agenda=(
                    "Hvilke små sejre har vi haft, og hvad gjorde dem mulige?",
                    "Hvilke processer skal sættes i system, så sejrene kan gentages?",
                    "Vælg det næste lille dataeksperiment og dets succeskriterium.",
                ),
            ),
        ),
        "en": (
            Workshop(
                title="Find and use momentum",
                purpose="To keep moving: win small, win early, win often.",
                participants="Management and the owners of the data projects",
                duration_minutes=120,
                agenda=(
                    "Which small wins have we had, and what made them possible?",
                    "Which processes should be put in system so the wins can be repeated?",
                    "Choose the next small data experiment and its success criterion.",
                ),
            ),
        ),
    },
    ProgressScenario.babyskridt: {
        "da": (
            Workshop(
                title="Det første projekt",
                purpose="Én første projektsucces og én kompetence bygget op undervejs.",
                participants="Projektejer, en fra fronten og en med dataforstand",
                duration_minutes=90,
                agenda=(
                    "Vælg ét afgrænset projekt med data, I allerede har.",
                    "Sæt ét målbart succeskriterium og en dato.",
                    "Vælg den ene kompetence (opsamle, analysere eller få tilladelse), I "
                    "bygger op i projektet.",
                ),
            ),
        ),
        "en": (
            Workshop(
                title="The first project",
                purpose="One first project success and one competence built along the way.",
                participants="A project owner, someone from the front line and someone with a "
                "head for data",
                duration_minutes=90,
                agenda=(
                    "Choose one bounded project with data you already have.",
                    "Set one measurable success criterion and a date.",
                    "Choose the one competence (collecting, analysing or getting permission) "
                    "you build in the project.",
                ),
            ),
        ),
    },
    ProgressScenario.traedemoelle: {
        "da": (
            Workshop(
                title="Fra aktivitet til succes",
                purpose="At skabe projektsucces med den kompetence, I har.",
                participants="Ledelsen og projektejerne",
                duration_minutes=120,
                agenda=(
                    "Gennemgå de igangværende dataprojekter: mål, succeskriterium og resultat.",
                    "Stop eller skær ned på de projekter, der ikke flytter noget.",
                    "Aftal succeskriterier, før det næste projekt starter.",
                ),
            ),
        ),
        "en": (
            Workshop(
                title="From activity to success",
                purpose="To create project success with the competence you have.",
                participants="Management and the project owners",
                duration_minutes=120,
                agenda=(
                    "Go through the running data projects: goal, success criterion and result.",
                    "Stop or cut back the projects that move nothing.",
                    "Agree success criteria before the next project starts.",
                ),
            ),
        ),
    },
    ProgressScenario.rette_fod: {
        "da": (
            Workshop(
                title="Kompetenceplan",
                purpose="At udvikle digitaliseringskompetencen, så succesen kan gentages.",
                participants="Projektejerne, it og den ansvarlige for persondata",
                duration_minutes=120,
                agenda=(
                    "Hvad gjorde projekterne til en succes, og hvem bar det?",
                    "Opsamling, analyse og tilladelse (samtykke): hvor er vi svagest?",
                    "Hvem ejer hvad, og hvad skal vi lære eller ansætte til?",
                ),
            ),
        ),
        "en": (
            Workshop(
                title="Competence plan",
                purpose="To develop digitalisation competence so the success can be repeated.",
                participants="The project owners, IT and whoever is responsible for personal data",
                duration_minutes=120,
                agenda=(
                    "What made the projects succeed, and who carried it?",
                    "Collecting, analysing and permission (consent): where are we weakest?",
                    "Who owns what, and what must we learn or hire for?",
                ),
            ),
        ),
    },
    ProgressScenario.fuld_fart_frem: {
        "da": (
            Workshop(
                title="Skalér og eksperimentér",
                purpose="At holde farten: balancen mellem faste processer og nye eksperimenter.",
                participants="Ledelsen og projektejerne",
                duration_minutes=90,
                agenda=(
                    "Hvilke succeser skal skaleres til flere kunder, kanaler eller markeder?",
                    "Hvilke nye dataeksperimenter prøver vi det næste kvartal?",
                    "Hvordan fordeler vi tid mellem drift og eksperimenter?",
                ),
            ),
        ),
        "en": (
            Workshop(
                title="Scale and experiment",
                purpose="To keep up the speed: the balance between fixed processes and new "
                "experiments.",
                participants="Management and the project owners",
                duration_minutes=90,
                agenda=(
                    "Which successes should be scaled to more customers, channels or markets?",
                    "Which new data experiments do we try next quarter?",
                    "How do we divide time between operations and experiments?",
                ),
            ),
        ),
    },
}

# The questions in the order of the workbook, keyed as the request body names them.
QUESTIONS: Mapping[str, Mapping[Lang, str]] = {
    "goal_importance": {"da": _MOTIVATION_AGENDA["da"][0], "en": _MOTIVATION_AGENDA["en"][0]},
    "data_contribution": {"da": _MOTIVATION_AGENDA["da"][1], "en": _MOTIVATION_AGENDA["en"][1]},
    "expectancy": {"da": _MOTIVATION_AGENDA["da"][2], "en": _MOTIVATION_AGENDA["en"][2]},
    "structural": {"da": _DATA_AGENDA["da"][0], "en": _DATA_AGENDA["en"][0]},
    "transactional": {"da": _DATA_AGENDA["da"][1], "en": _DATA_AGENDA["en"][1]},
    "activity": {"da": _DATA_AGENDA["da"][2], "en": _DATA_AGENDA["en"][2]},
    "collect": {
        "da": "Hvor gode er vi til at opsamle kundedata?",
        "en": "How good are we at collecting customer data?",
    },
    "analyse": {
        "da": "Hvor gode er vi til at analysere kundedata?",
        "en": "How good are we at analysing customer data?",
    },
    "permission": {
        "da": "Hvor gode er vi til at få tilladelse til at bruge kundedata (samtykke)?",
        "en": "How good are we at getting permission to use customer data (consent)?",
    },
    "success": {
        "da": "Hvor meget succes har vi haft med kundedataprojekter?",
        "en": "How much success have we had with customer-data projects?",
    },
}
READINESS_KEYS = (
    "goal_importance",
    "data_contribution",
    "expectancy",
    "structural",
    "transactional",
    "activity",
)
PROGRESS_KEYS = ("collect", "analyse", "permission", "success")
SCALE: Mapping[Lang, str] = {
    "da": "1 = slet ikke / ingen, 5 = i meget høj grad / for (næsten) alle kunder",
    "en": "1 = not at all / none, 5 = to a very high degree / for (nearly) every customer",
}

# The chart's words.
CHART: Mapping[Lang, Mapping[str, str]] = {
    "da": {
        "title": "Modenhed: startposition",
        "history": "Modenhed over tid",
        "x": "Kundedata",
        "y": "Motivation",
        "prefill": "Andel af profiler med kundedata",
        "share": "andel",
    },
    "en": {
        "title": "Maturity: start position",
        "history": "Maturity over time",
        "x": "Customer data",
        "y": "Motivation",
        "prefill": "Share of profiles with customer data",
        "share": "share",
    },
}
DATA_KINDS: Mapping[str, Mapping[Lang, str]] = {
    "structural": {"da": "strukturelle data", "en": "structural data"},
    "transactional": {"da": "transaktionsdata", "en": "transactional data"},
    "activity": {"da": "aktivitetsdata", "en": "activity data"},
}

# What each prefilled share counts (rejse.maturity.prefill), as the prefill answer says it.
DEFINITIONS: Mapping[str, Mapping[Lang, str]] = {
    "structural": {
        "da": "Andel af profiler (ikke slettede), hvis egenskaber – eller egenskaberne for en "
        "virksomhed (group), de hører til – har en værdi for størrelse (employees), branche "
        "(industry) eller region (country, region, state, city, postal_code, address.*).",
        "en": "Share of profiles (not erased) whose traits – or the traits of a company "
        "(group) they belong to – hold a value for size (employees), industry or region "
        "(country, region, state, city, postal_code, address.*).",
    },
    "transactional": {
        "da": "Andel af profiler (ikke slettede) med mindst én ordre i deres kundeværdi "
        "(Order Completed, én pr. ordre-id; også ordrer fra Shopify og importerede ordrer).",
        "en": "Share of profiles (not erased) with at least one order in their customer value "
        "(Order Completed, one per order id; Shopify orders and imported orders included).",
    },
    "activity": {
        "da": "Andel af profiler (ikke slettede) med mindst ét sidevisnings- eller "
        "skærmkald (page, screen) eller en hændelse om brug af butikken eller appen (fx "
        "Product Viewed, Cart Viewed, Checkout Started, Application Opened). Åbninger og "
        "klik i e-mails tæller ikke.",
        "en": "Share of profiles (not erased) with at least one page or screen call or an "
        "event of using the shop or the app (Product Viewed, Cart Viewed, Checkout Started, "
        "Application Opened, ...). Email opens and clicks do not count.",
    },
}


# Swedish beside Danish and English (rejse.maturity.texts_sv)
POSITIONS = {k: {**v, "sv": sv.POSITIONS[k]} for k, v in POSITIONS.items()}
SCENARIOS = {k: {**v, "sv": sv.SCENARIOS[k]} for k, v in SCENARIOS.items()}
WORKSHOPS = {k: {**v, "sv": sv.WORKSHOPS[k]} for k, v in WORKSHOPS.items()}
MAIN_QUESTION = {**MAIN_QUESTION, "sv": sv.MAIN_QUESTION}
_SV_QUESTIONS = dict(
    zip(READINESS_KEYS, (*sv.MOTIVATION_AGENDA, *sv.DATA_AGENDA), strict=True)
) | dict(sv.PROGRESS_QUESTIONS)
QUESTIONS = {k: {**v, "sv": _SV_QUESTIONS[k]} for k, v in QUESTIONS.items()}
SCALE = {**SCALE, "sv": sv.SCALE}
CHART = {**CHART, "sv": sv.CHART}
DATA_KINDS = {k: {**v, "sv": sv.DATA_KINDS[k]} for k, v in DATA_KINDS.items()}
DEFINITIONS = {k: {**v, "sv": sv.DEFINITIONS[k]} for k, v in DEFINITIONS.items()}
