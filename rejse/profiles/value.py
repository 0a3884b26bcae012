"""Customer value on the profile, kept by the event processor as orders arrive.

Rules (Segment e-commerce spec v2; the Shopify mapping in `rejse.events.webhooks` gives all
three amount fields):
- `Order Completed` counts one order and adds its amount; `Order Refunded` subtracts its amount
  (never below zero) and leaves the order count alone.
- The amount is `properties.revenue`, else `total`, else `value`: the first of them the event
  carries (not null). A number or a string of a number, finite and not negative; anything else
  is ignored (the order still counts).
- Currency: the profile keeps the currency of its first order with one (`properties.currency`,
  ISO 4217, upper-cased). An order in another currency counts as an order but its amount is
  not added (there is no exchange rate here, and mixing currencies silently would make the sum
  meaningless); so is an order whose currency is not a three-letter code. An order without a
  currency is taken to be in the profile's currency. Refunds follow the same rule.
- An order is counted once: a second `Order Completed` of the profile with an `order_id` that
  an earlier one had (a Shopify export imported after the live webhook, a source that sends
  twice under new message ids) changes nothing. Deliveries of one message (same messageId) are
  stored once, and the processor applies each stored event once.
- First and last order time are the earliest and latest order timestamps, so events arriving
  out of order give the same result.
- A merge adds the merged-away profile's value to the survivor's (`combine`, called by
  `rejse.profiles.identity.merge_profiles`, once per merge); a GDPR erase clears it (`clear`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from rejse.contracts import ProcessedEvent
from rejse.models.events import Event
from rejse.models.profiles import Profile

ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"
AMOUNT_FIELDS = ("revenue", "total", "value")
EVENT = Event.__table__  # type: ignore[attr-defined]
_SEEN_KEY = "rejse.customer_value.orders"  # session.info: orders counted in this transaction
_DIGITS = 6  # revenue is rounded so that sums of decimal amounts do not drift


def amount_of(properties: dict[str, Any]) -> float | None:
    """The order's amount, or None when it has none that is usable."""
    for name in AMOUNT_FIELDS:
        value = properties.get(name)
        if value is None:
            continue
        if isinstance(value, bool):
            return None
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                return None
        if not isinstance(value, int | float):
            return None
        number = float(value)
        return number if math.isfinite(number) and number >= 0 else None
    return None


_MISSING = ""  # the order names no currency


def currency_of(properties: dict[str, Any]) -> str | None:
    """`_MISSING` when the order names no currency, the upper-cased ISO 4217 code, or None when
    what it names is not a currency code."""
    value = properties.get("currency")
    if value is None:
        return _MISSING
    if isinstance(value, str):
        code = value.strip().upper()
        if len(code) == 3 and code.isascii() and code.isalpha():
            return code
    return None


def _order_id(properties: dict[str, Any]) -> str | None:
    value = properties.get("order_id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text[:200] if text else None


class CustomerValueSubscriber:
    """Per order event: one primary-key read of the profile (and, when the order has an id, one
    indexed look at the profile's earlier orders), one update. Other events are not touched."""

    name = "customer_value"

    def wants(self, session: Session, event: ProcessedEvent) -> bool:
        return event.type == "track" and event.event in (ORDER_COMPLETED, ORDER_REFUNDED)

    def apply(
        self, session: Session, event: ProcessedEvent
    ) -> Sequence[tuple[str, dict[str, Any]]]:
        if not self.wants(session, event):
            return []
        profile = session.get(Profile, event.profile_id, populate_existing=True)
        if profile is None or profile.erased_at is not None:
            return []
        properties = event.properties or {}
        if event.event == ORDER_COMPLETED:
            if self._counted_before(session, event):
                return []
            record_order(profile, properties, event.timestamp)
        else:
            record_refund(profile, properties)
        session.add(profile)
        return []

    def _counted_before(self, session: Session, event: ProcessedEvent) -> bool:
        """Whether this order (by `order_id`) was counted for the profile already: in this
        transaction, or by an earlier processed event (merged profiles' events included)."""
        order_id = _order_id(event.properties or {})
        if order_id is None:
            return False
        seen: set[tuple[str, str]] = session.info.setdefault(_SEEN_KEY, set())
        key = (event.profile_id, order_id)
        if key in seen:
            return True
        seen.add(key)
        found = session.connection().execute(
            sa.select(sa.literal(1))
            .where(
                EVENT.c.profile_id == event.profile_id,
                EVENT.c.type == "track",
                EVENT.c.event == ORDER_COMPLETED,
                EVENT.c.id != event.event_id,
                EVENT.c.processed_at.is_not(None),
                sa.cast(EVENT.c.properties["order_id"].as_string(), sa.String) == order_id,
            )
            .limit(1)
        )
        return found.first() is not None


def _adds(profile: Profile, currency: str | None) -> bool:
    """Whether an amount in `currency` may be added to (or taken from) the profile's revenue;
    sets the profile's currency from its first order that names one."""
    if currency is None:
        return False
    if currency == _MISSING:
        return True
    if profile.currency is None:
        profile.currency = currency
        return True
    return profile.currency == currency


def record_order(profile: Profile, properties: dict[str, Any], at: dt.datetime) -> None:
    profile.order_count = (profile.order_count or 0) + 1
    amount = amount_of(properties)
    if _adds(profile, currency_of(properties)) and amount is not None:
        profile.revenue = round((profile.revenue or 0.0) + amount, _DIGITS)
    profile.first_order_at = min((t for t in (profile.first_order_at, at) if t), default=None)
    profile.last_order_at = max((t for t in (profile.last_order_at, at) if t), default=None)


def record_refund(profile: Profile, properties: dict[str, Any]) -> None:
    amount = amount_of(properties)
    currency = currency_of(properties)
    if amount is None or currency is None:
        return
    if currency != _MISSING and profile.currency is not None and currency != profile.currency:
        return  # a refund in another currency than the one the revenue is kept in
    profile.revenue = max(0.0, round((profile.revenue or 0.0) - amount, _DIGITS))


def combine(survivor: Profile, other: Profile) -> None:
    """Fold `other`'s value into `survivor` (a merge): orders add up; revenue adds up when both
    are in one currency (or one side has none); first/last order are the extremes."""
    survivor.order_count = (survivor.order_count or 0) + (other.order_count or 0)
    if survivor.currency is None or other.currency in (None, survivor.currency):
        survivor.currency = survivor.currency or other.currency
        survivor.revenue = round((survivor.revenue or 0.0) + (other.revenue or 0.0), _DIGITS)
    survivor.first_order_at = min(
        (t for t in (survivor.first_order_at, other.first_order_at) if t), default=None
    )
    survivor.last_order_at = max(
        (t for t in (survivor.last_order_at, other.last_order_at) if t), default=None
    )


def clear(profile: Profile) -> None:
    """GDPR erase: no value is left on the profile."""
    profile.order_count = 0
    profile.revenue = 0.0
    profile.currency = None
    profile.first_order_at = profile.last_order_at = None
