"""CRM calls are counted by operation and result (rejse_crm_calls_total): two 503s from the
fake HubSpot over real HTTP are `transient`, the call that then succeeds is `ok`."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.leads.conftest import new_profile, new_rep
from tests.leads.test_crm import _run_handoff


def calls(operation: str, status: str) -> float:
    labels = {"operation": operation, "status": status}
    return REGISTRY.get_sample_value("rejse_crm_calls_total", labels) or 0.0


async def test_crm_calls_are_counted_by_result(trt, session, model, hubspot, time_env):
    before = {
        key: calls(*key)
        for key in [
            ("upsert_contact", "transient"),
            ("upsert_contact", "ok"),
            ("create_task", "ok"),
        ]
    }
    pid = new_profile(session)
    new_rep(session, "Anna")
    hubspot.fail_next(503, times=2)
    _, _, lead = await _run_handoff(trt, time_env, hubspot, pid)
    assert lead.crm_status == "synced"
    assert calls("upsert_contact", "transient") - before[("upsert_contact", "transient")] == 2
    assert calls("upsert_contact", "ok") - before[("upsert_contact", "ok")] == 1
    assert calls("create_task", "ok") - before[("create_task", "ok")] == 1
