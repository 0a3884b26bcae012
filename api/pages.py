"""The pages people reach from links in emails: the unsubscribe confirmation, its answer and
the preference centre, in Danish, Swedish and English.

Server-rendered with Jinja2 from the templates below (autoescape on: nothing a profile holds
can become markup). Each page is self-contained: a little inline CSS, no scripts, nothing from
another host, so the pages' Content-Security-Policy can forbid everything else.
"""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined

from rejse.messaging.preferences import CHANNELS, Preferences

# Served with every page: nothing but the page itself and its inline style may load, forms post
# only back here, and the token in the URL never leaves as a referrer.
HEADERS = {
    "Cache-Control": "no-store, private",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
}

TEXTS: dict[str, dict[str, Any]] = {
    "da": {
        "unsubscribe_title": "Afmeld",
        "unsubscribe_question": {
            "email": "Vil du ikke længere modtage markedsføringsmails fra os?",
            "sms": "Vil du ikke længere modtage markedsførings-sms'er fra os?",
            "other": "Vil du ikke længere modtage disse beskeder fra os?",
        },
        "unsubscribe_button": "Afmeld",
        "unsubscribed_title": "Du er afmeldt",
        "unsubscribed_body": {
            "email": "Du modtager ikke længere markedsføringsmails fra os.",
            "sms": "Du modtager ikke længere markedsførings-sms'er fra os.",
            "other": "Du modtager ikke længere disse beskeder fra os.",
        },
        "manage": "Vælg, hvad du vil modtage",
        "preferences_title": "Dine præferencer",
        "intro": "Vælg, hvilke beskeder du vil modtage fra os.",
        "channels": {
            "email": "E-mails med tilbud, påmindelser og nyheder",
            "sms": "SMS'er med tilbud og påmindelser",
        },
        "all": "Afmeld al markedsføring",
        "all_hint": (
            "Gælder alle kanaler, uanset hvad der er valgt ovenfor. "
            "Beskeder om dine ordrer og leveringer får du stadig."
        ),
        "state_some": "Lige nu modtager du:",
        "state_none": "Lige nu modtager du ingen markedsføring fra os.",
        "names": {"email": "e-mails", "sms": "SMS'er"},
        "save": "Gem",
        "saved": "Dine valg er gemt.",
    },
    "sv": {
        "unsubscribe_title": "Avregistrera dig",
        "unsubscribe_question": {
            "email": "Vill du sluta få marknadsföringsmejl från oss?",
            "sms": "Vill du sluta få sms med marknadsföring från oss?",
            "other": "Vill du sluta få de här meddelandena från oss?",
        },
        "unsubscribe_button": "Avregistrera",
        "unsubscribed_title": "Du är avregistrerad",
        "unsubscribed_body": {
            "email": "Du får inte längre marknadsföringsmejl från oss.",
            "sms": "Du får inte längre sms med marknadsföring från oss.",
            "other": "Du får inte längre de här meddelandena från oss.",
        },
        "manage": "Välj vad du vill få",
        "preferences_title": "Dina inställningar",
        "intro": "Välj vilka meddelanden du vill få från oss.",
        "channels": {
            "email": "Mejl med erbjudanden, påminnelser och nyheter",
            "sms": "Sms med erbjudanden och påminnelser",
        },
        "all": "Avregistrera dig från all marknadsföring",
        "all_hint": (
            "Gäller alla kanaler, oavsett vad som är valt ovan. "
            "Meddelanden om dina beställningar och leveranser får du fortfarande."
        ),
        "state_some": "Just nu får du:",
        "state_none": "Just nu får du ingen marknadsföring från oss.",
        "names": {"email": "mejl", "sms": "sms"},
        "save": "Spara",
        "saved": "Dina val har sparats.",
    },
    "en": {
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_question": {
            "email": "Do you want to stop receiving marketing emails from us?",
            "sms": "Do you want to stop receiving marketing text messages from us?",
            "other": "Do you want to stop receiving these messages from us?",
        },
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_title": "You are unsubscribed",
        "unsubscribed_body": {
            "email": "You will not receive marketing emails from us any more.",
            "sms": "You will not receive marketing text messages from us any more.",
            "other": "You will not receive these messages from us any more.",
        },
        "manage": "Choose what you receive",
        "preferences_title": "Your preferences",
        "intro": "Choose which messages you want to receive from us.",
        "channels": {
            "email": "Emails with offers, reminders and news",
            "sms": "Text messages (SMS) with offers and reminders",
        },
        "all": "Unsubscribe from all marketing",
        "all_hint": (
            "Applies to every channel, whatever is ticked above. "
            "Messages about your orders and deliveries still reach you."
        ),
        "state_some": "You currently receive:",
        "state_none": "You currently receive no marketing from us.",
        "names": {"email": "emails", "sms": "text messages"},
        "save": "Save",
        "saved": "Your choices are saved.",
    },
}

_TEMPLATES = {
    "base.html": """<!DOCTYPE html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ title }}</title>
<style>
body{margin:0;padding:48px 16px;background:#f4f4f0;color:#1f2933;
font-family:Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5}
main{max-width:480px;margin:0 auto;background:#fff;border-radius:8px;padding:24px 28px}
h1{font-size:22px;margin:0 0 16px}
label{display:flex;gap:12px;align-items:flex-start;padding:12px 0;border-bottom:1px solid #e5e7eb}
input[type=checkbox]{width:20px;height:20px;margin:2px 0 0;flex:none}
.hint{display:block;color:#6b7280;font-size:14px}
.saved{background:#ecfdf5;border:1px solid #a7f3d0;border-radius:6px;padding:8px 12px}
button{margin-top:20px;background:#14532d;color:#fff;border:0;border-radius:6px;
padding:12px 24px;font-size:16px;font-weight:bold;cursor:pointer}
a{color:#14532d}
</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
{% block content %}{% endblock %}
</main>
</body>
</html>
""",
    "unsubscribe.html": """{% extends "base.html" %}
{% block content %}
<p>{{ question }}</p>
<form method="post">
<button type="submit">{{ t.unsubscribe_button }}</button>
</form>
<p><a href="{{ preferences }}">{{ t.manage }}</a></p>
{% endblock %}
""",
    "unsubscribed.html": """{% extends "base.html" %}
{% block content %}
<p>{{ body }}</p>
<p><a href="{{ preferences }}">{{ t.manage }}</a></p>
{% endblock %}
""",
    "preferences.html": """{% extends "base.html" %}
{% block content %}
{% if saved %}<p class="saved" role="status">{{ t.saved }}</p>{% endif +%}
<p id="state">{% if receiving_now %}{{ t.state_some }} {{ receiving_now | join(", ") }}.
{%- else %}{{ t.state_none }}{% endif %}</p>
<p>{{ t.intro }}</p>
<form method="post">
{% for channel in channels %}
<label><input type="checkbox" name="{{ channel }}" value="on"
{%- if prefs.receiving[channel] %} checked{% endif %}>
<span>{{ t.channels[channel] }}</span></label>
{% endfor %}
<label><input type="checkbox" name="unsubscribe_all" value="on"
{%- if not prefs.all_marketing %} checked{% endif %}> <span><strong>{{ t.all }}</strong>
<span class="hint">{{ t.all_hint }}</span></span></label>
<button type="submit" name="save" value="1">{{ t.save }}</button>
</form>
{% endblock %}
""",
}

_ENV = Environment(
    loader=DictLoader(_TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _texts(lang: str) -> dict[str, Any]:
    return TEXTS.get(lang) or TEXTS["en"]


def _per_channel(texts: dict[str, str], channel: str) -> str:
    return texts.get(channel) or texts["other"]


def unsubscribe_confirm(*, lang: str, channel: str, preferences: str) -> str:
    """The page a link in an email opens: a button, so a link scanner does not unsubscribe."""
    t = _texts(lang)
    return _ENV.get_template("unsubscribe.html").render(
        lang=lang if lang in TEXTS else "en",
        t=t,
        title=t["unsubscribe_title"],
        question=_per_channel(t["unsubscribe_question"], channel),
        preferences=preferences,
    )


def unsubscribed(*, lang: str, channel: str, preferences: str) -> str:
    t = _texts(lang)
    return _ENV.get_template("unsubscribed.html").render(
        lang=lang if lang in TEXTS else "en",
        t=t,
        title=t["unsubscribed_title"],
        body=_per_channel(t["unsubscribed_body"], channel),
        preferences=preferences,
    )


def preference_centre(prefs: Preferences, *, saved: bool) -> str:
    lang = prefs.locale if prefs.locale in TEXTS else "en"
    t = _texts(lang)
    receiving_now = (
        [t["names"][c] for c in CHANNELS if prefs.receiving[c]] if prefs.all_marketing else []
    )
    return _ENV.get_template("preferences.html").render(
        lang=lang,
        t=t,
        title=t["preferences_title"],
        channels=CHANNELS,
        prefs=prefs,
        receiving_now=receiving_now,
        saved=saved,
    )
