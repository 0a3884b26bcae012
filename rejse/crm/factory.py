"""Build the configured adapter."""

from __future__ import annotations

from rejse.crm.base import CrmAdapter
from rejse.crm.hubspot import HubSpotAdapter
from rejse.crm.salesforce import SalesforceAdapter
from rejse.crm.settings import CrmSettings
from rejse.crm.webhook import WebhookAdapter
from rejse.settings import ConfigError


def make_adapter(settings: CrmSettings) -> CrmAdapter | None:
    """None when no CRM is configured (`REJSE_CRM_KIND=none`)."""
    if settings.kind == "none":
        return None
    if settings.kind == "hubspot":
        if not settings.hubspot_token:
            raise ConfigError("crm: REJSE_CRM_HUBSPOT_TOKEN is required for HubSpot")
        return HubSpotAdapter(
            base_url=settings.hubspot_base_url,
            token=settings.hubspot_token,
            timeout=settings.timeout,
        )
    if settings.kind == "salesforce":
        if not (settings.salesforce_base_url and settings.salesforce_token):
            raise ConfigError(
                "crm: REJSE_CRM_SALESFORCE_BASE_URL and _TOKEN are required for Salesforce"
            )
        return SalesforceAdapter(
            base_url=settings.salesforce_base_url,
            token=settings.salesforce_token,
            api_version=settings.salesforce_api_version,
            external_id_field=settings.salesforce_external_id_field,
            timeout=settings.timeout,
        )
    if not (settings.webhook_url and settings.webhook_secret):
        raise ConfigError("crm: REJSE_CRM_WEBHOOK_URL and _SECRET are required for the webhook CRM")
    return WebhookAdapter(
        url=settings.webhook_url, secret=settings.webhook_secret, timeout=settings.timeout
    )
