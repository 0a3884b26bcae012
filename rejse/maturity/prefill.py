"""The customer-data answers (questions 4-6) as rejse's data suggests them.

Each is the share of *live* profiles (not erased; merged-away profiles have no row and their
events belong to the survivor) that carry the kind of data, turned into a 1-5 answer by
`rejse.maturity.model.answer_for_share`:

- structural: the profile's traits, or the traits of a group (account) it belongs to through a
  Segment `group` call, hold a value (not null, not an empty string) at one of
  `STRUCTURAL_TRAITS`: size, industry or region, the workbook's examples;
- transactional: the profile has at least one order in its customer value (`order_count`,
  kept by the processor from `Order Completed` events, one per order id, amount or not;
  Shopify orders and `rejse import` of past orders arrive as them; `rejse.profiles.value`);
- activity: the profile has at least one `page` or `screen` call, or a track event named in
  `ACTIVITY_EVENTS` (browsing, cart and checkout steps, app lifecycle): how, when and where
  the customer uses the shop or the app. Email engagement (opens, clicks) and rejse's own
  derived events are not activity with the product and do not count.

The shares are read from per-profile flags the event processor keeps (`rejse.maturity.flags`,
table `maturity_profile_data`): a count of the live profiles and three counts over the flags.
`recount` computes the same from the profiles and their events (one pass over the profiles and
a semi-join with their activity events: seconds at a million profiles); a test holds the two
equal."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from rejse.maturity.model import answer_for_share
from rejse.models.events import Event
from rejse.models.maturity import MaturityProfileData
from rejse.models.profiles import Profile

STRUCTURAL_TRAITS: tuple[str, ...] = (
    # size
    "employees",
    "company.employees",
    "company.employee_count",
    # industry
    "industry",
    "company.industry",
    # region
    "country",
    "region",
    "state",
    "city",
    "postal_code",
    "address.country",
    "address.region",
    "address.state",
    "address.city",
    "address.postal_code",
    "address.postalCode",
)
ACTIVITY_CALLS: tuple[str, ...] = ("page", "screen")
ACTIVITY_EVENTS: tuple[str, ...] = (
    "Products Searched",
    "Product List Viewed",
    "Product List Filtered",
    "Product Clicked",
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Product Added to Wishlist",
    "Product Shared",
    "Product Reviewed",
    "Cart Viewed",
    "Checkout Started",
    "Checkout Step Viewed",
    "Checkout Step Completed",
    "Payment Info Entered",
    "Application Installed",
    "Application Opened",
    "Application Backgrounded",
    "Application Updated",
    "Deep Link Opened",
)

PROFILE = Profile.__table__  # type: ignore[attr-defined]
EVENT = Event.__table__  # type: ignore[attr-defined]
FLAGS = MaturityProfileData.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Share:
    profiles: int  # live profiles that carry the kind of data
    share: float  # of all live profiles; 0 when there are none
    answer: int  # the suggested 1-5 answer


@dataclass(frozen=True)
class Prefill:
    live_profiles: int
    structural: Share
    transactional: Share
    activity: Share
    computed_at: dt.datetime


def _share(having: int, total: int) -> Share:
    return Share(
        profiles=having,
        share=having / total if total else 0.0,
        answer=answer_for_share(having, total),
    )


def _has_value(dialect: str, column: str, path: str) -> str:
    """SQL: the JSON document in `column` has a value (not null, not '') at the dotted path."""
    parts = path.split(".")
    if dialect == "postgresql":
        return f"NULLIF({column} #>> '{{{','.join(parts)}}}', '') IS NOT NULL"
    return f"NULLIF(json_extract({column}, '$.{path}'), '') IS NOT NULL"


def structural_sql(dialect: str) -> str:
    """SQL over `p` (a profile row): it carries structural data itself or through a group."""
    own = " OR ".join(_has_value(dialect, "p.traits", path) for path in STRUCTURAL_TRAITS)
    in_group = " OR ".join(
        _has_value(dialect, "g.value", f"traits.{path}") for path in STRUCTURAL_TRAITS
    )
    if dialect == "postgresql":
        groups = (
            "SELECT 1 FROM json_each(CASE WHEN json_typeof(p.groups) = 'object' "  # noqa: S608 - constant paths
            "THEN p.groups ELSE '{}'::json END) AS g "
            f"WHERE json_typeof(g.value) = 'object' AND ({in_group})"
        )
    else:
        groups = (
            "SELECT 1 FROM json_each(CASE WHEN json_type(p.groups) = 'object' "  # noqa: S608 - constant paths
            "THEN p.groups ELSE '{}' END) AS g "
            f"WHERE g.type = 'object' AND ({in_group})"
        )
    return f"({own}) OR EXISTS ({groups})"


def activity_sql() -> str:
    """SQL over `p` (a profile row): a correlated select of its activity events; parameters
    `c0..` are `ACTIVITY_CALLS`, `a0..` `ACTIVITY_EVENTS`."""
    calls = ", ".join(f":c{n}" for n in range(len(ACTIVITY_CALLS)))
    names = ", ".join(f":a{n}" for n in range(len(ACTIVITY_EVENTS)))
    return (
        "SELECT 1 FROM event e WHERE e.profile_id = p.id AND "  # noqa: S608 - constant names
        f"(e.type IN ({calls}) OR (e.type = 'track' AND e.event IN ({names})))"
    )


def _with_activity() -> sa.Select[Any]:
    """The number of live profiles with at least one activity event."""
    event = EVENT.alias("e")
    activity = sa.exists(
        sa.select(1)
        .select_from(event)
        .where(
            event.c.profile_id == PROFILE.c.id,
            sa.or_(
                event.c.type.in_(ACTIVITY_CALLS),
                sa.and_(event.c.type == "track", event.c.event.in_(ACTIVITY_EVENTS)),
            ),
        )
    )
    return sa.select(sa.func.count()).where(PROFILE.c.erased_at.is_(None), activity)


def prefill(session: Session, *, now: dt.datetime) -> Prefill:
    """The three shares of live profiles as of now (`now` is only stamped on the answer), from
    the flags the processor keeps."""
    live = session.execute(
        sa.select(sa.func.count()).select_from(PROFILE).where(PROFILE.c.erased_at.is_(None))
    ).scalar_one()
    row = session.execute(
        sa.select(
            sa.func.count().filter(FLAGS.c.structural.is_(True)),
            sa.func.count().filter(FLAGS.c.transactional.is_(True)),
            sa.func.count().filter(FLAGS.c.activity.is_(True)),
        )
    ).one()
    return Prefill(
        live_profiles=int(live),
        structural=_share(int(row[0]), int(live)),
        transactional=_share(int(row[1]), int(live)),
        activity=_share(int(row[2]), int(live)),
        computed_at=now,
    )


def recount(session: Session, *, now: dt.datetime) -> Prefill:
    """The same shares computed from the profiles and their events (tests, the benchmark)."""
    dialect = session.get_bind().dialect.name
    row = session.execute(
        sa.text(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN "  # noqa: S608 - constant paths
            f"{structural_sql(dialect)} THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN p.order_count > 0 THEN 1 ELSE 0 END), 0) "
            "FROM profile p WHERE p.erased_at IS NULL"
        )
    ).one()
    live, structural, transactional = int(row[0]), int(row[1]), int(row[2])
    activity = session.execute(_with_activity()).scalar_one()
    return Prefill(
        live_profiles=live,
        structural=_share(structural, live),
        transactional=_share(transactional, live),
        activity=_share(int(activity), live),
        computed_at=now,
    )
