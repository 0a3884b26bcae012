"""The Swedish texts of the maturity assessment, translated from the Danish ones in
`rejse.maturity.texts` (which merges them in beside Danish and English). The start positions
in Swedish: nybörjare (begynder), motiverare (begrunder: "motivera" is to give the reasons),
beundrare (beundrer), pådrivare (bevæger)."""

from __future__ import annotations

from collections.abc import Mapping

from rejse.maturity.model import ProgressScenario, StartPosition
from rejse.maturity.textkinds import PositionText, ScenarioText, Workshop

POSITIONS: Mapping[StartPosition, PositionText] = {
    StartPosition.begynder: PositionText(
        name="Nybörjare",
        who="Nybörjarna saknar både motivation och kunddata.",
        typical="De är oftast mindre företag som är produktfokuserade, konservativa och har "
        "en stabil affärsmodell.",
        challenge="Det första steget är därför att hitta motivationen.",
        way_forward="Motivationen kommer oftast från kundförfrågningar eller andra externa "
        "förändringsagenter.",
        motto="If it ain't broke, why fix it?",
    ),
    StartPosition.begrunder: PositionText(
        name="Motiverare",
        who="Motiverarna har kunddata men saknar motivation.",
        typical="De är oftast teknologitunga företag med en tydlig grad av specialisering. "
        "Deras data samlas in automatiskt som en del av driften.",
        challenge="Den mest angelägna utmaningen är att hitta ett bra affärscase för kunddata.",
        way_forward="Affärscaset kommer antingen från inspiration utifrån eller från data ur "
        "mindre experiment i fronten (till exempel från säljare eller servicepersonal).",
    ),
    StartPosition.beundrer: PositionText(
        name="Beundrare",
        who="Beundrarna har motivationen men saknar kunddata.",
        typical="De är oftast nyfikna på nya trender men samlar inte själva in data.",
        challenge="Den mest angelägna utmaningen är att hitta och samla kunddata. Utmaningen "
        "kan också vara att rätta en felaktig bild av verkligheten: de kanske helt enkelt inte "
        "vet att de har data.",
        way_forward="Kunddata kommer oftast av att strukturera den kunskap säljarna redan har "
        "och sätta den i system – eller av att investera i datainsamling.",
    ),
    StartPosition.bevaeger: PositionText(
        name="Pådrivare",
        who="Pådrivarna har både motivationen och kunddata på plats.",
        typical="Av samma skäl är de redan i rörelse.",
        challenge="Den mest angelägna utmaningen är att hitta och utnyttja momentum.",
        way_forward="Momentum kommer oftast av att balansera mellan att sätta processer i "
        "system och att löpande experimentera med nya dataprojekt.",
        motto="Win small, win early, win often",
    ),
}

SCENARIOS: Mapping[ProgressScenario, ScenarioText] = {
    ProgressScenario.babyskridt: ScenarioText(
        name="Babysteg",
        description="Digitaliseringskompetensen (att samla in data, analysera data och få "
        "tillstånd att använda data) är ännu svag, och kunddataprojekten har ännu inte lyckats.",
        main_challenge="Båda delarna: att skapa en första projektframgång och samtidigt utveckla "
        "digitaliseringskompetensen.",
        way_forward="Ta ett litet steg i taget: ett avgränsat projekt med de data ni redan har, "
        "och en kompetens som ni bygger upp under tiden.",
    ),
    ProgressScenario.traedemoelle: ScenarioText(
        name="Trampkvarn",
        description="Ni är bra på att samla in och analysera data och på att få tillstånd att "
        "använda dem, men kunddataprojekten lyckas inte: ni springer utan att komma framåt.",
        main_challenge="Att skapa projektframgång.",
        way_forward="Välj färre projekt, vart och ett med ett tydligt mål och ett "
        "framgångskriterium från start, och stoppa dem som inte flyttar något.",
    ),
    ProgressScenario.rette_fod: ScenarioText(
        name="Rätt fot",
        description="Kunddataprojekten lyckas, men digitaliseringskompetensen släpar efter.",
        main_challenge="Att utveckla digitaliseringskompetensen.",
        way_forward="Sätt det som fungerade i system: insamling, analys och samtycke, så att "
        "framgången kan upprepas och inte vilar på enskilda personer.",
    ),
    ProgressScenario.fuld_fart_frem: ScenarioText(
        name="Full fart framåt",
        description="Både digitaliseringskompetensen och framgången med kunddataprojekt finns "
        "på plats.",
        main_challenge="Att hålla farten.",
        way_forward="Skala upp det som fungerar och fortsätt experimentera med nya dataprojekt "
        "('win small, win early, win often').",
    ),
}

MAIN_QUESTION = (
    "Är vår huvudutmaning att skapa projektframgång eller snarare att utveckla en "
    "digitaliseringskompetens?"
)

MOTIVATION_AGENDA = (
    "Vilket mål har vi, och hur viktigt är målet för oss?",
    "I vilken utsträckning bidrar kunddata till att vi når vårt mål?",
    "I vilken utsträckning förväntar vi oss att kunna använda kunddata?",
)
DATA_AGENDA = (
    "Vilka strukturella data har vi om våra kunder (storlek, bransch, region)?",
    "Vilka transaktionsdata har vi om våra kunder (omsättning, vad de har köpt och till "
    "vilket pris)?",
    "Vilka aktivitetsdata har vi om våra kunder (hur, när och var de använder produkten)?",
)

WORKSHOPS: Mapping[StartPosition | ProgressScenario, tuple[Workshop, ...]] = {
    StartPosition.begynder: (
        Workshop(
            title="Hitta motivationen",
            purpose="Att hitta ett mål som kunddata kan hjälpa till med.",
            participants="Ledningen och de medarbetare som pratar med kunderna",
            duration_minutes=120,
            agenda=(
                "Samla kundernas förfrågningar och de förändringar utifrån (kunder, "
                "konkurrenter, lagstiftning) som har nått er det senaste året.",
                *MOTIVATION_AGENDA,
                "Välj ett mål där kunddata kan göra skillnad, och en ansvarig.",
            ),
        ),
    ),
    StartPosition.begrunder: (
        Workshop(
            title="Hitta affärscaset",
            purpose="Att hitta ett bra affärscase för de data som driften redan samlar in.",
            participants="Ledningen, it/drift och säljare eller servicepersonal",
            duration_minutes=180,
            agenda=(
                "Kartlägg de data som driften redan samlar in automatiskt.",
                "Inspiration utifrån: hur använder andra företag sådana data?",
                *MOTIVATION_AGENDA,
                "Utforma ett litet experiment i fronten med säljare eller servicepersonal, och "
                "kom överens om vad det ska visa.",
            ),
        ),
    ),
    StartPosition.beundrer: (
        Workshop(
            title="Hitta de data ni har",
            purpose="Att hitta och samla kunddata – även de ni inte vet att ni har.",
            participants="Säljare, kundtjänst, ekonomi och marknadsföring",
            duration_minutes=150,
            agenda=(
                "Lista allt ni vet om kunderna i dag: ordrar, fakturor, förfrågningar och "
                "säljarnas kunskap.",
                *DATA_AGENDA,
                "Kom överens om hur säljarnas kunskap sätts i system (t.ex. fasta fält i CRM), "
                "eller vilken datainsamling ni vill investera i.",
            ),
        ),
    ),
    StartPosition.bevaeger: (
        Workshop(
            title="Hitta och utnyttja momentum",
            purpose="Att hålla rörelsen igång: win small, win early, win often.",
            participants="Ledningen och de ansvariga för dataprojekten",
            duration_minutes=120,
            agenda=(
                "Vilka små segrar har vi haft, och vad gjorde dem möjliga?",
                "Vilka processer ska sättas i system så att segrarna kan upprepas?",
                "Välj nästa lilla dataexperiment och dess framgångskriterium.",
            ),
        ),
    ),
    ProgressScenario.babyskridt: (
        Workshop(
            title="Det första projektet",
            purpose="En första projektframgång och en kompetens som byggs upp under tiden.",
            participants="Projektägare, någon från fronten och någon med datakunskap",
            duration_minutes=90,
            agenda=(
                "Välj ett avgränsat projekt med data ni redan har.",
                "Sätt ett mätbart framgångskriterium och ett datum.",
                "Välj den kompetens (samla in, analysera eller få tillstånd) som ni bygger upp "
                "i projektet.",
            ),
        ),
    ),
    ProgressScenario.traedemoelle: (
        Workshop(
            title="Från aktivitet till framgång",
            purpose="Att skapa projektframgång med den kompetens ni har.",
            participants="Ledningen och projektägarna",
            duration_minutes=120,
            agenda=(
                "Gå igenom de pågående dataprojekten: mål, framgångskriterium och resultat.",
                "Stoppa eller skär ner de projekt som inte flyttar något.",
                "Kom överens om framgångskriterier innan nästa projekt startar.",
            ),
        ),
    ),
    ProgressScenario.rette_fod: (
        Workshop(
            title="Kompetensplan",
            purpose="Att utveckla digitaliseringskompetensen så att framgången kan upprepas.",
            participants="Projektägarna, it och den som ansvarar för personuppgifter",
            duration_minutes=120,
            agenda=(
                "Vad gjorde projekten till en framgång, och vem bar det?",
                "Insamling, analys och tillstånd (samtycke): var är vi svagast?",
                "Vem äger vad, och vad måste vi lära oss eller anställa för?",
            ),
        ),
    ),
    ProgressScenario.fuld_fart_frem: (
        Workshop(
            title="Skala upp och experimentera",
            purpose="Att hålla farten: balansen mellan fasta processer och nya experiment.",
            participants="Ledningen och projektägarna",
            duration_minutes=90,
            agenda=(
                "Vilka framgångar ska skalas upp till fler kunder, kanaler eller marknader?",
                "Vilka nya dataexperiment provar vi nästa kvartal?",
                "Hur fördelar vi tiden mellan drift och experiment?",
            ),
        ),
    ),
}

PROGRESS_QUESTIONS: Mapping[str, str] = {
    "collect": "Hur bra är vi på att samla in kunddata?",
    "analyse": "Hur bra är vi på att analysera kunddata?",
    "permission": "Hur bra är vi på att få tillstånd att använda kunddata (samtycke)?",
    "success": "Hur stor framgång har vi haft med kunddataprojekt?",
}
SCALE = "1 = inte alls / inga, 5 = i mycket hög grad / för (nästan) alla kunder"
CHART: Mapping[str, str] = {
    "title": "Mognad: startposition",
    "history": "Mognad över tid",
    "x": "Kunddata",
    "y": "Motivation",
    "prefill": "Andel profiler med kunddata",
    "share": "andel",
}
DATA_KINDS: Mapping[str, str] = {
    "structural": "strukturella data",
    "transactional": "transaktionsdata",
    "activity": "aktivitetsdata",
}
DEFINITIONS: Mapping[str, str] = {
    "structural": "Andel profiler (inte raderade) vars egenskaper – eller egenskaperna för ett "
    "företag (group) de tillhör – har ett värde för storlek (employees), bransch (industry) "
    "eller region (country, region, state, city, postal_code, address.*).",
    "transactional": "Andel profiler (inte raderade) med minst en order i sitt kundvärde "
    "(Order Completed, en per order-id; även ordrar från Shopify och importerade ordrar).",
    "activity": "Andel profiler (inte raderade) med minst ett sidvisnings- eller skärmanrop "
    "(page, screen) eller en händelse om användning av butiken eller appen (t.ex. Product "
    "Viewed, Cart Viewed, Checkout Started, Application Opened). Öppningar och klick i e-post "
    "räknas inte.",
}
