"""The console's message catalogue: every text a person reads, in Danish, Swedish and English.

`text(lang, key, **values)` looks a key up (`str.format` with `values`); a key missing in one
language is a test failure (tests/console/test_i18n.py), never a blank on the page. Pages add
their keys to `MESSAGES` in all three languages. The language: the one chosen in the session,
else the browser's `Accept-Language`, else Danish."""

from __future__ import annotations

from rejse.console.sessions import LANGUAGES

DEFAULT_LANGUAGE = "da"
LANGUAGE_NAMES = {"da": "Dansk", "sv": "Svenska", "en": "English"}

# key -> (da, sv, en)
_TEXTS: dict[str, tuple[str, str, str]] = {
    # layout
    "app_name": ("rejse konsol", "rejse konsol", "rejse console"),
    "skip_to_content": ("Spring til indhold", "Hoppa till innehåll", "Skip to content"),
    "nav_label": ("Hovedmenu", "Huvudmeny", "Main menu"),
    "nav_overview": ("Overblik", "Översikt", "Overview"),
    "nav_journeys": ("Rejser", "Resor", "Journeys"),
    "nav_audiences": ("Målgrupper", "Målgrupper", "Audiences"),
    "nav_profiles": ("Profiler", "Profiler", "Profiles"),
    "nav_templates": ("Skabeloner", "Mallar", "Templates"),
    "nav_sales": ("Salg", "Försäljning", "Sales"),
    "nav_maturity": ("Datamodenhed", "Datamognad", "Data maturity"),
    "signed_in_as": (
        "Logget ind med nøgle {key_id} ({role})",
        "Inloggad med nyckel {key_id} ({role})",
        "Signed in with key {key_id} ({role})",
    ),
    "sign_out": ("Log ud", "Logga ut", "Sign out"),
    "language": ("Sprog", "Språk", "Language"),
    "choose": ("Vælg", "Välj", "Choose"),
    "save": ("Gem", "Spara", "Save"),
    "cancel": ("Annullér", "Avbryt", "Cancel"),
    "back": ("Tilbage", "Tillbaka", "Back"),
    "none": ("Ingen", "Inga", "None"),
    "next_page": ("Næste side", "Nästa sida", "Next page"),
    "form_has_errors": (
        "Formularen har fejl. Ret de markerede felter.",
        "Formuläret har fel. Rätta de markerade fälten.",
        "The form has errors. Correct the marked fields.",
    ),
    "error_in_field": ("Fejl i {field}", "Fel i {field}", "Error in {field}"),
    # roles
    "role_admin": ("administrator", "administratör", "admin"),
    "role_marketer": ("marketing", "marknadsföring", "marketer"),
    "role_analyst": ("analytiker", "analytiker", "analyst"),
    "role_sales": ("salg", "försäljning", "sales"),
    "role_ingest": ("indsamling", "insamling", "ingest"),
    # sign-in
    "sign_in_title": ("Log ind", "Logga in", "Sign in"),
    "sign_in_intro": (
        "Log ind med en API-nøgle. Nøglens rolle bestemmer, hvad du kan se og ændre.",
        "Logga in med en API-nyckel. Nyckelns roll avgör vad du kan se och ändra.",
        "Sign in with an API key. The key's role decides what you can see and change.",
    ),
    "api_key": ("API-nøgle", "API-nyckel", "API key"),
    "api_key_hint": (
        "Begynder med rjk_. Lav en med: rejse keys create --role marketer",
        "Börjar med rjk_. Skapa en med: rejse keys create --role marketer",
        "Starts with rjk_. Make one with: rejse keys create --role marketer",
    ),
    "sign_in_button": ("Log ind", "Logga in", "Sign in"),
    "signed_out": ("Du er logget ud.", "Du är utloggad.", "You are signed out."),
    "session_ended": (
        "Din session er udløbet eller afsluttet. Log ind igen.",
        "Din session har gått ut eller avslutats. Logga in igen.",
        "Your session has expired or ended. Sign in again.",
    ),
    "err_key_required": (
        "Indtast en API-nøgle.",
        "Ange en API-nyckel.",
        "Enter an API key.",
    ),
    "err_key_unknown": (
        "Ukendt eller tilbagekaldt API-nøgle.",
        "Okänd eller återkallad API-nyckel.",
        "Unknown or revoked API key.",
    ),
    "err_key_ingest": (
        "En indsamlingsnøgle sender hændelser og kan ikke logge ind i konsollen.",
        "En insamlingsnyckel skickar händelser och kan inte logga in i konsolen.",
        "An ingest key sends events and cannot sign in to the console.",
    ),
    # error pages
    "error_title": ("Noget gik galt", "Något gick fel", "Something went wrong"),
    "error_400": ("Forespørgslen blev afvist.", "Begäran avvisades.", "The request was refused."),
    "error_401": (
        "Du er ikke logget ind.",
        "Du är inte inloggad.",
        "You are not signed in.",
    ),
    "error_403": (
        "Din rolle må ikke dette.",
        "Din roll får inte göra detta.",
        "Your role may not do this.",
    ),
    "error_403_csrf": (
        "Formularen kunne ikke bekræftes (manglende eller forkert sikkerhedstoken). "
        "Hent siden igen og prøv en gang til.",
        "Formuläret kunde inte bekräftas (saknad eller felaktig säkerhetstoken). "
        "Ladda om sidan och försök igen.",
        "The form could not be verified (missing or wrong security token). "
        "Reload the page and try again.",
    ),
    "error_404": ("Siden findes ikke.", "Sidan finns inte.", "There is no such page."),
    "error_409": (
        "Det kan ikke lade sig gøre i den nuværende tilstand.",
        "Det går inte i nuvarande läge.",
        "That is not possible in the current state.",
    ),
    "error_413": ("Formularen er for stor.", "Formuläret är för stort.", "The form is too large."),
    "error_422": ("Ugyldigt input.", "Ogiltig inmatning.", "Invalid input."),
    "error_503": (
        "En tjeneste (Temporal) svarer ikke lige nu. Prøv igen om lidt.",
        "En tjänst (Temporal) svarar inte just nu. Försök igen om en stund.",
        "A service (Temporal) is not answering right now. Try again shortly.",
    ),
    "err_nul": (
        "Må ikke indeholde NUL-tegn.",
        "Får inte innehålla NUL-tecken.",
        "Must not contain NUL characters.",
    ),
}

MESSAGES: dict[str, dict[str, str]] = {
    lang: {key: texts[i] for key, texts in _TEXTS.items()} for i, lang in enumerate(LANGUAGES)
}


def add(texts: dict[str, tuple[str, str, str]]) -> None:
    """Add a page's texts, (da, sv, en) per key; a key may be defined once."""
    for key, triple in texts.items():
        if key in _TEXTS:
            raise ValueError(f"console text {key!r} is defined twice")
        _TEXTS[key] = triple
        for i, lang in enumerate(LANGUAGES):
            MESSAGES[lang][key] = triple[i]


def text(lang: str, key: str, /, **values: object) -> str:
    template = MESSAGES.get(lang, MESSAGES[DEFAULT_LANGUAGE]).get(key)
    if template is None:
        raise KeyError(f"console text {key!r} is not in the catalogue (api/console/i18n.py)")
    return template.format(**values) if values else template


def from_accept_language(header: str | None) -> str | None:
    """The first of our languages in an `Accept-Language` header, by its q values."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > 0:
            ranked.append((-q, i, primary))
    return min(ranked)[2] if ranked else None
