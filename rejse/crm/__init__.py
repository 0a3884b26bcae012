"""CRM adapters (HubSpot v3, Salesforce, generic signed webhook) over httpx.

Adapters call through `rejse.outbound`, so every answer is classified by its one rule:
`RateLimited` (429, with Retry-After), `Transient` (5xx, 408, network) and `Rejected` (other
4xx: validation, never retried). The hand-off activity turns these into Temporal retry
decisions (`CrmTransient` / `CrmRejected`)."""
