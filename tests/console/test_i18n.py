"""The console's texts: every key in Danish, Swedish and English, and every `t("...")` in the
templates names a key of the catalogue."""

from __future__ import annotations

import re

import api.console  # noqa: F401 - imports every page, which add their texts
from api.console import i18n, kit


def test_every_text_in_every_language():
    keys = {lang: set(texts) for lang, texts in i18n.MESSAGES.items()}
    assert set(keys) == {"da", "sv", "en"}
    assert keys["da"] == keys["sv"] == keys["en"]
    empty = [(lang, k) for lang, texts in i18n.MESSAGES.items() for k, v in texts.items() if not v]
    assert not empty


def test_every_key_the_templates_use_exists():
    used = set()
    for path in kit.TEMPLATES_DIR.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_]+)["']\s*[,)]""", path.read_text()))
    missing = sorted(used - set(i18n.MESSAGES["da"]))
    assert not missing, f"texts used in templates but not in api/console/i18n.py: {missing}"


def test_accept_language():
    assert i18n.from_accept_language("sv-SE,sv;q=0.9,en;q=0.8") == "sv"
    assert i18n.from_accept_language("de, en;q=0.5, da;q=0.7") == "da"
    assert i18n.from_accept_language("de") is None
    assert i18n.from_accept_language("en;q=0") is None
    assert i18n.from_accept_language("en;q=abc, sv") == "sv"
