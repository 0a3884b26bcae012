"""What reps are told: the chat push text (no contact data: chat tools are third parties) and
the context of the email template `templates/email/sales/new_lead/{da,sv,en}`."""

from __future__ import annotations

from typing import Any

from rejse.leads.schemas import Contact
from rejse.models.leads import Lead, SalesRep

EMAIL_TEMPLATE = "sales/new_lead"


def push_text(kind: str, lead: Lead, *, link: str) -> str:
    due = lead.due_at.strftime("%Y-%m-%d %H:%M UTC") if lead.due_at else "-"
    if kind == "reminder":
        return (
            f"Reminder: lead {lead.id} (score {lead.score:.0f}) is waiting for contact; "
            f"due {due}. {link}"
        )
    if kind == "escalated":
        return f"Lead {lead.id} was not contacted within the SLA and has been reassigned. {link}"
    if kind == "reassigned":
        return (
            f"Lead reassigned to you (score {lead.score:.0f}): {lead.reason}. "
            f"Contact by {due}. {link}"
        )
    return f"New lead for you (score {lead.score:.0f}): {lead.reason}. Contact by {due}. {link}"


def email_context(
    kind: str, lead: Lead, rep: SalesRep, contact: Contact, *, link: str
) -> dict[str, Any]:
    """The messaging template context: what is ours sits under `extra`, the link under `links`."""
    return {
        "profile": {},
        "links": {"lead": link},
        "extra": {
            "kind": kind,
            "rep": {"name": rep.name},
            "lead": {
                "id": lead.id,
                "score": lead.score,
                "reason": lead.reason,
                "due_at": lead.due_at.strftime("%Y-%m-%d %H:%M UTC") if lead.due_at else None,
            },
            "contact": {"name": contact.name, "company": contact.company},
        },
    }
