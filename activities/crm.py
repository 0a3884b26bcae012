"""CRM side effects of `LeadHandoffWorkflow`: upsert the person, then give the owner a task.

Retry semantics are `rejse.outbound`'s, in their Temporal form (`application_error`, kind
"Crm"); the workflow's retry policy retries everything not marked otherwise:
- 5xx / 408 / network errors: retryable `CrmTransient`, retried with backoff;
- 429: `CrmTransient` with `next_retry_delay` = Retry-After;
- other 4xx: recorded on the lead, then raised non-retryable (`CrmRejected`).
Idempotency: the contact upsert is idempotent by email / external id; the task is created only
while the lead has no `crm_task_id`, and its id is recorded in the same activity attempt."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity

from rejse.crm.base import CrmAdapter, CrmLead
from rejse.crm.factory import make_adapter
from rejse.crm.settings import CrmSettings
from rejse.db import session_scope
from rejse.leads import service as leads
from rejse.leads.runtypes import CRM_TASK, CRM_UPSERT, LeadStep
from rejse.logging import get_logger
from rejse.metrics import CRM_CALLS
from rejse.models.leads import Lead, SalesRep
from rejse.outbound import RateLimited, Rejected, Transient, application_error
from rejse.profiles.service import load_snapshot
from rejse.runtime import Runtime

log = get_logger("rejse.crm")

_T = TypeVar("_T")


def _now() -> dt.datetime:
    return activity.info().current_attempt_scheduled_time.astimezone(dt.UTC)


class CrmActivities:
    def __init__(
        self,
        runtime: Runtime,
        *,
        adapter: CrmAdapter | None = None,
        settings: CrmSettings | None = None,
    ) -> None:
        self.runtime = runtime
        self._adapter = adapter
        self._settings = settings

    def all(self) -> list[Callable[..., Any]]:
        return [self.upsert_contact, self.create_task]

    @property
    def adapter(self) -> CrmAdapter | None:
        if self._adapter is None and (self._settings or CrmSettings()).kind != "none":
            self._adapter = make_adapter(self._settings or CrmSettings())
        return self._adapter

    def _crm_lead(self, lead: Lead) -> CrmLead:
        with session_scope(self.runtime.engine) as session:
            snapshot = load_snapshot(session, profile_id=lead.profile_id)
            rep = session.get(SalesRep, lead.rep_id) if lead.rep_id else None
        traits = snapshot.traits if snapshot else {}
        company = traits.get("company")
        if isinstance(company, dict):
            company = company.get("name")
        return CrmLead(
            lead_id=lead.id,
            profile_id=lead.profile_id,
            email=snapshot.email if snapshot else None,
            phone=snapshot.phone if snapshot else None,
            first_name=traits.get("first_name") or traits.get("firstName"),
            last_name=traits.get("last_name") or traits.get("lastName"),
            company=str(company) if company else None,
            country=str(traits["country"]) if traits.get("country") else None,
            score=lead.score,
            reason=lead.reason,
            owner_id=rep.crm_owner_id if rep else None,
            due_at=lead.due_at,
        )

    def _lead(self, lead_id: str) -> Lead:
        with session_scope(self.runtime.engine) as session:
            return leads.get_lead(session, lead_id=lead_id)

    def _call(self, lead_id: str, fn: Callable[[], _T], *, operation: str) -> _T:
        try:
            result = fn()
        except RateLimited as exc:
            CRM_CALLS.labels(operation, "rate_limited").inc()
            log.info("crm_rate_limited", lead_id=lead_id, retry_after=exc.retry_after)
            raise application_error(exc, kind="Crm") from None
        except Transient as exc:
            CRM_CALLS.labels(operation, "transient").inc()
            log.info("crm_transient", lead_id=lead_id, error=str(exc)[:100])
            raise application_error(exc, kind="Crm") from None
        except Rejected as exc:
            CRM_CALLS.labels(operation, "rejected").inc()
            log.warning("crm_rejected", lead_id=lead_id, status=exc.status)
            with session_scope(self.runtime.engine) as session:
                leads.mark(
                    session,
                    lead_id=lead_id,
                    kind="crm_failed",
                    now=_now(),
                    detail=f"{exc}: {exc.detail}" if exc.detail else str(exc),
                )
            raise application_error(exc, kind="Crm") from None
        CRM_CALLS.labels(operation, "ok").inc()
        return result

    @activity.defn(name=CRM_UPSERT)
    def upsert_contact(self, step: LeadStep) -> bool:
        """Returns False when no CRM is configured."""
        adapter = self.adapter
        if adapter is None:
            return False
        lead = self._lead(step.lead_id)
        ref = self._call(
            lead.id,
            lambda: adapter.upsert_contact(self._crm_lead(lead)),
            operation="upsert_contact",
        )
        with session_scope(self.runtime.engine) as session:
            leads.record_crm(session, lead_id=lead.id, ref=ref, now=_now())
        return True

    @activity.defn(name=CRM_TASK)
    def create_task(self, step: LeadStep) -> None:
        adapter = self.adapter
        lead = self._lead(step.lead_id)
        if adapter is None or lead.crm_task_id or not lead.crm_ref:
            return
        task_id = self._call(
            lead.id,
            lambda: adapter.create_task(self._crm_lead(lead), contact_ref=lead.crm_ref or ""),
            operation="create_task",
        )
        with session_scope(self.runtime.engine) as session:
            leads.record_crm(session, lead_id=lead.id, task_id=task_id or "-", now=_now())
