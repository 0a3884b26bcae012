"""The context templates render with: profile, trigger, cart, journey, links, message, extra.

The cart is normalised from a Segment `Checkout Started` or a Shopify checkout payload, so
templates read one shape whichever source sent the event.
"""

from __future__ import annotations

import re
from typing import Any

from rejse.messaging import formatting


def _first(mapping: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = mapping.get(name)
        if value not in (None, ""):
            return value
    return None


def _currency(value: Any) -> str | None:
    code = str(value).strip().upper() if value is not None else ""
    return code if re.fullmatch(r"[A-Z]{3}", code) else None


def cart_from_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """A normalised cart from a Segment `Checkout Started` or a Shopify checkout payload."""
    props = properties if isinstance(properties, dict) else {}
    raw_lines = props.get("products") or props.get("line_items") or []
    lines = []
    for item in raw_lines if isinstance(raw_lines, list) else []:
        if not isinstance(item, dict):
            continue
        qty = formatting.to_decimal(_first(item, "quantity")) or 1
        price = formatting.to_decimal(_first(item, "price"))
        lines.append(
            {
                "title": _first(item, "title", "name", "sku", "product_id") or "",
                "variant": _first(item, "variant_title", "variant") or "",
                "sku": item.get("sku"),
                "quantity": int(qty),
                "price": price,
                "total": price * qty if price is not None else None,
                "url": _first(item, "url"),
                "image_url": _first(item, "image_url", "image"),
            }
        )
    total = formatting.to_decimal(_first(props, "total", "value", "total_price", "revenue"))
    if total is None and lines and all(line["total"] is not None for line in lines):
        total = sum(line["total"] for line in lines)
    return {
        "id": _first(props, "checkout_id", "token", "checkout_token", "cart_id"),
        "lines": lines,
        "total": total,
        "currency": _currency(_first(props, "currency", "presentment_currency")),
        "url": _first(props, "abandoned_checkout_url", "checkout_url", "recovery_url", "url"),
    }


def build_context(
    *,
    profile: dict[str, Any],
    trigger: dict[str, Any] | None = None,
    journey: dict[str, Any] | None = None,
    links: dict[str, str] | None = None,
    message: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    now: Any = None,
) -> dict[str, Any]:
    trigger = trigger if isinstance(trigger, dict) else {}
    return {
        "profile": profile,
        "trigger": trigger,
        "cart": cart_from_properties(trigger.get("properties") or {}),
        "journey": journey or {},
        "links": links or {},
        "message": message or {},
        "extra": extra or {},
        "now": now,
    }


def sample_context(*, locale: str = "en") -> dict[str, Any]:
    """The context used for previews without a profile and for save-time trial renders."""
    trigger = {
        "event": "Checkout Started",
        "properties": {
            "checkout_id": "7c1b2d0f9a4e4f6b8c3d2e1f0a9b8c7d",
            "currency": "DKK",
            "value": 1249.0,
            "abandoned_checkout_url": "https://shop.example.com/checkouts/7c1b/recover",
            "products": [
                {
                    "title": "Regnjakke Aarhus",
                    "variant_title": "M / Navy",
                    "sku": "RJ-AAR-M-NV",
                    "price": 899.0,
                    "quantity": 1,
                },
                {
                    "title": "Uldsokker 3-pak",
                    "variant_title": "39-42",
                    "sku": "US-3P-3942",
                    "price": 175.0,
                    "quantity": 2,
                },
            ],
        },
        "timestamp": "2026-11-20T08:14:03+00:00",
    }
    profile = {
        "id": "prof_sample",
        "traits": {"first_name": "Mette", "country": "DK"},
        "email": "mette@example.com",
        "phone": "+4520123456",
        "locale": locale,
        "timezone": "Europe/Copenhagen",
        "user_id": "cust-1",
    }
    links = {
        "unsubscribe": "https://rejse.example/u/sample",
        "preferences": "https://rejse.example/p/sample",
    }
    return {
        **build_context(
            profile=profile,
            trigger=trigger,
            journey={"key": "abandoned-cart", "version": 1, "step": "reminder_1"},
            links=links,
            message={"id": "msg_sample"},
            extra={},
        ),
        "locale": locale,
    }
