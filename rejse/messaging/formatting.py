"""Locale-aware money and date formatting for templates (Babel): `1.249,00 kr.` in Danish."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from babel.dates import format_date, format_datetime, get_timezone
from babel.numbers import format_currency, format_decimal

SUPPORTED_LOCALES = ("da", "sv", "en")
DEFAULT_LOCALE = "en"


def language(locale: str | None) -> str:
    """`da-DK` / `da_DK` / `DA` -> `da`; anything unsupported -> `en`."""
    if not locale:
        return DEFAULT_LOCALE
    lang = locale.replace("_", "-").split("-")[0].lower()
    return lang if lang in SUPPORTED_LOCALES else DEFAULT_LOCALE


def to_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    # amounts from events: finite and of a sane size only (no NaN, Infinity or 1e999999)
    return number if number.is_finite() and abs(number) < Decimal(10) ** 15 else None


def money(value: Any, currency: str | None, locale: str) -> str:
    amount = to_decimal(value)
    if amount is None:
        return "" if value is None else str(value)
    return _money(str(amount), (currency or "").upper(), locale)


@lru_cache(maxsize=4096)
def _money(text: str, currency: str, locale: str) -> str:
    """Babel's formatting, kept per (amount as written, currency, locale): a cart's prices
    repeat across sends, and Babel spends ~0.1 ms a call resolving the locale's pattern
    (bench.messaging). Keyed by the text, not the Decimal: -0 equals 0 but is written apart."""
    amount = Decimal(text)
    if not currency:
        return format_decimal(amount, format="#,##0.00", locale=locale)
    return format_currency(amount, currency, locale=locale)


def to_datetime(value: Any) -> dt.datetime | dt.date | None:
    if isinstance(value, (dt.datetime, dt.date)):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def date(value: Any, locale: str, fmt: str = "long", tz: str | None = None) -> str:
    parsed = to_datetime(value)
    if parsed is None:
        return "" if value is None else str(value)
    if isinstance(parsed, dt.datetime) and tz:
        from zoneinfo import ZoneInfo

        parsed = parsed.astimezone(ZoneInfo(tz))
    day = parsed.date() if isinstance(parsed, dt.datetime) else parsed
    return format_date(day, format=fmt, locale=locale)


def datetime(value: Any, locale: str, fmt: str = "medium", tz: str | None = None) -> str:
    parsed = to_datetime(value)
    if not isinstance(parsed, dt.datetime):
        return date(value, locale, fmt)
    # babel looks the name up the same way, but its annotation only admits a tzinfo
    tzinfo = get_timezone(tz) if tz is not None else None
    return format_datetime(parsed, format=fmt, tzinfo=tzinfo, locale=locale)
