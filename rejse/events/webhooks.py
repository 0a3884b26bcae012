"""Webhooks in: signature verification (Shopify HMAC, Stripe-style timestamped HMAC), source
secrets (database + environment) and the mapping of Shopify topics to Segment events."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets as pysecrets
from collections.abc import Iterable
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlmodel import Session, col, select

from rejse.db import utcnow
from rejse.errors import Conflict, DomainError, NotFound
from rejse.events.service import event_row
from rejse.events.store import bucket_for
from rejse.ids import new_id
from rejse.models.events import WebhookSource
from rejse.profiles.consent import SHOPIFY_CHECKOUT, SHOPIFY_CUSTOMER

KINDS = ("shopify", "generic")


class WebhookEnv(BaseSettings):
    """Secrets from the environment: `REJSE_SHOPIFY_SECRET` (any shop) and
    `REJSE_WEBHOOK_SECRETS` = JSON map
    `{"shopify:<shop domain>": "...", "generic:<source>": "..."}`."""

    model_config = SettingsConfigDict(env_prefix="REJSE_", extra="ignore")
    shopify_secret: str | None = None
    webhook_secrets: dict[str, str] = {}


# ----------------------------------------------------------------------------- sources


def create_source(
    session: Session, *, kind: str, name: str, secret: str | None = None
) -> WebhookSource:
    if kind not in KINDS:
        raise DomainError(f"kind must be one of {', '.join(KINDS)}", field="kind")
    existing = session.exec(
        select(WebhookSource).where(
            WebhookSource.kind == kind,
            WebhookSource.name == name,
            col(WebhookSource.disabled_at).is_(None),
        )
    ).first()
    if existing is not None:
        raise Conflict(f"an active {kind} source named {name!r} exists", field="name")
    old = session.exec(
        select(WebhookSource).where(WebhookSource.kind == kind, WebhookSource.name == name)
    ).first()
    if old is not None:  # re-create a disabled one with a fresh secret
        session.delete(old)
        session.flush()
    row = WebhookSource(
        id=new_id("whs"), kind=kind, name=name, secret=secret or pysecrets.token_urlsafe(32)
    )
    session.add(row)
    session.flush()
    return row


def list_sources(session: Session) -> list[WebhookSource]:
    return list(session.exec(select(WebhookSource).order_by(col(WebhookSource.created_at))))


def disable_source(session: Session, *, source_id: str) -> WebhookSource:
    row = session.get(WebhookSource, source_id)
    if row is None:
        raise NotFound(f"no webhook source {source_id!r}", field="source_id")
    row.disabled_at = row.disabled_at or utcnow()
    session.add(row)
    return row


def mask(secret: str) -> str:
    return f"{secret[:4]}…{len(secret)} chars" if len(secret) > 8 else "…"


def secrets_for(session: Session, *, kind: str, name: str | None) -> list[str]:
    """Every secret that may sign a delivery from this source (rotation: several)."""
    env = WebhookEnv()
    out: list[str] = []
    names = [name, "*"] if name else ["*"]
    for row in session.exec(
        select(WebhookSource).where(
            WebhookSource.kind == kind, col(WebhookSource.disabled_at).is_(None)
        )
    ):
        if row.name in names:
            out.append(row.secret)
    for key in (f"{kind}:{name}" if name else None, f"{kind}:*"):
        if key and env.webhook_secrets.get(key):
            out.append(env.webhook_secrets[key])
    if kind == "shopify" and env.shopify_secret:
        out.append(env.shopify_secret)
    return out


# ----------------------------------------------------------------------------- signatures


def verify_shopify(body: bytes, signature: str | None, secrets: Iterable[str]) -> bool:
    """`X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the raw body; constant-time compare."""
    if not signature:
        return False
    given = signature.strip().encode()
    ok = False
    for secret in secrets:
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
        ok |= hmac.compare_digest(expected, given)
    return ok


def sign_shopify(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# ----------------------------------------------------------------------------- Shopify mapping


def _money(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _time(value: Any, default: dt.datetime) -> dt.datetime:
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return (
                parsed.replace(tzinfo=dt.UTC)
                if parsed.tzinfo is None
                else parsed.astimezone(dt.UTC)
            )
        except ValueError:
            pass
    return default


def _products(payload: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for item in payload.get("line_items") or []:
        if not isinstance(item, dict):
            continue
        out.append(
            {
                k: v
                for k, v in {
                    "product_id": str(item["product_id"])
                    if item.get("product_id") is not None
                    else None,
                    "variant_id": str(item["variant_id"])
                    if item.get("variant_id") is not None
                    else None,
                    "sku": item.get("sku"),
                    "name": item.get("title"),
                    "variant": item.get("variant_title"),
                    "price": _money(item.get("price")),
                    "quantity": item.get("quantity"),
                }.items()
                if v is not None
            }
        )
    return out


def _identity(payload: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    given = payload.get("customer")
    customer: dict[str, Any] = given if isinstance(given, dict) else {}
    traits = {
        k: v
        for k, v in {
            "email": payload.get("email") or customer.get("email"),
            "phone": payload.get("phone") or customer.get("phone"),
        }.items()
        if v
    }
    external = []
    if customer.get("id") is not None:
        external.append({"type": "shopify_customer_id", "id": str(customer["id"])})
    return traits, external


NAME_MAX = 255


def _names(payload: dict[str, Any]) -> dict[str, str]:
    """The buyer's first/last name: the Shopify customer's, else the billing address's (a
    guest checkout). Both from one place, so a name is never half one person's, half another's."""
    for where in ("customer", "billing_address"):
        given = payload.get(where)
        if not isinstance(given, dict):
            continue
        names = {
            key: value.strip()[:NAME_MAX]
            for key in ("first_name", "last_name")
            if isinstance(value := given.get(key), str) and value.strip()
        }
        if names:
            return names
    return {}


SHOPIFY_TOPICS = {
    "checkouts/create": "Checkout Started",
    "checkouts/update": "Checkout Started",
    "orders/create": "Order Completed",
    "customers/create": None,
    "customers/update": None,
}


def map_shopify(
    topic: str,
    payload: dict[str, Any],
    *,
    message_id: str,
    shop: str | None,
    received_at: dt.datetime,
) -> list[tuple[dict[str, Any], int]]:
    """The event rows of a Shopify delivery (none for topics we do not use): one event, and
    for a checkout that names its buyer an identify before it, so the names become traits
    (a track event's traits do not touch the profile)."""
    if topic not in SHOPIFY_TOPICS:
        return []
    traits, external = _identity(payload)
    context: dict[str, Any] = {
        "traits": traits,
        "externalIds": external,
        "integration": {"name": "shopify", "shop": shop, "topic": topic},
    }
    anonymous = f"shopify-cart:{payload['cart_token']}" if payload.get("cart_token") else None
    if payload.get("customer_locale"):
        context["locale"] = payload["customer_locale"]
    if topic.startswith("checkouts/"):
        token = payload.get("token") or payload.get("checkout_token")
        accepts = payload.get("buyer_accepts_marketing")
        if isinstance(accepts, bool):
            context["consent"] = {"email": accepts, "source": SHOPIFY_CHECKOUT}
        properties = {
            "checkout_id": token,
            "checkout_token": token,
            "cart_id": payload.get("cart_token"),
            "abandoned_checkout_url": payload.get("abandoned_checkout_url"),
            "value": _money(payload.get("total_price")),
            "total": _money(payload.get("total_price")),
            "subtotal": _money(payload.get("subtotal_price")),
            "discount": _money(payload.get("total_discounts")),
            "currency": payload.get("currency"),
            "products": _products(payload),
        }
        row_type, name = "track", "Checkout Started"
        ts = _time(payload.get("updated_at") or payload.get("created_at"), received_at)
    elif topic == "orders/create":
        properties = {
            "order_id": str(payload["id"]) if payload.get("id") is not None else None,
            "order_number": payload.get("order_number"),
            "checkout_id": payload.get("checkout_token"),
            "checkout_token": payload.get("checkout_token"),
            "cart_id": payload.get("cart_token"),
            "total": _money(payload.get("total_price")),
            "revenue": _money(payload.get("total_price")),
            "value": _money(payload.get("total_price")),
            "currency": payload.get("currency"),
            "financial_status": payload.get("financial_status"),
            "products": _products(payload),
        }
        row_type, name = "track", "Order Completed"
        ts = _time(payload.get("processed_at") or payload.get("created_at"), received_at)
    else:  # customers/create|update -> identify
        traits, external = _identity(
            {"customer": payload, "email": payload.get("email"), "phone": payload.get("phone")}
        )
        context.update({"traits": traits, "externalIds": external})
        accepts = payload.get("accepts_marketing")
        if isinstance(accepts, bool):
            context["consent"] = {"email": accepts, "source": SHOPIFY_CUSTOMER}
        properties = {}
        row_type, name = "identify", None
        traits = {
            **traits,
            **{k: payload[k] for k in ("first_name", "last_name") if payload.get(k)},
        }
        ts = _time(payload.get("updated_at") or payload.get("created_at"), received_at)
        anonymous = None
    if not traits and not external and not anonymous:
        return []  # nobody to attach it to
    key = (traits.get("email") or "").lower() or (
        external[0]["id"] if external else anonymous or ""
    )
    rows = []
    names = _names(payload) if topic.startswith("checkouts/") else {}
    if names:
        rows.append(
            event_row(
                type="identify",
                message_id=f"{message_id}:identify",
                timestamp=ts,
                received_at=received_at,
                anonymous_id=anonymous,
                traits={**traits, **names},
                # the consent flag travels once, with the checkout
                context={k: v for k, v in context.items() if k != "consent"},
                source=f"shopify:{topic}"[:60],
            )
        )
    rows.append(
        event_row(
            type=row_type,
            message_id=message_id,
            timestamp=ts,
            received_at=received_at,
            event=name,
            anonymous_id=anonymous,
            properties={k: v for k, v in properties.items() if v is not None},
            traits=traits if row_type == "identify" else {},
            context=context,
            source=f"shopify:{topic}"[:60],
        )
    )
    return [(row, bucket_for(key)) for row in rows]
