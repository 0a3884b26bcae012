"""CRM adapters (HubSpot v3, Salesforce, generic signed webhook) over httpx.

Adapters classify every answer: `CrmRateLimited` (429, with Retry-After), `CrmTransient`
(5xx, 408, network) and `CrmRejected` (other 4xx: validation, never retried). The hand-off
activity turns these into Temporal retry decisions."""
