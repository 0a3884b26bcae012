"""CRM configuration (`REJSE_CRM_*`): which adapter, its base URL and credentials."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class CrmSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REJSE_CRM_", env_file=".env", extra="ignore")

    kind: Literal["none", "hubspot", "salesforce", "webhook"] = "none"
    timeout: float = 10.0

    hubspot_base_url: str = "https://api.hubapi.com"
    hubspot_token: str | None = None

    salesforce_base_url: str | None = None  # the instance URL, https://xx.my.salesforce.com
    salesforce_token: str | None = None
    salesforce_api_version: str = "v60.0"
    salesforce_external_id_field: str = "Rejse_Profile_Id__c"

    webhook_url: str | None = None
    webhook_secret: str | None = None
