"""Prometheus metrics (prometheus-client). Labels carry route templates and names, never PII."""

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("rejse_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "rejse_http_request_duration_seconds", "HTTP request duration", ["method", "route"]
)

# Events: ingestion and the event processor.
EVENTS_ACCEPTED = Counter("rejse_events_accepted_total", "Events stored for processing", ["source"])
EVENTS_DUPLICATE = Counter(
    "rejse_events_duplicate_total", "Events ignored as duplicates", ["source"]
)
EVENTS_PROCESSED = Counter("rejse_events_processed_total", "Events applied and dispatched")
EVENTS_RETRIED = Counter("rejse_events_retried_total", "Event processing failures retried later")
EVENTS_DEAD_LETTERED = Counter("rejse_events_dead_lettered_total", "Events moved to dead letters")
PROFILE_MERGES = Counter("rejse_profile_merges_total", "Profiles merged by identity resolution")

# Every event by what became of it (the counters above, as one family a dashboard can stack):
# accepted, duplicate, processed, retried, dead_lettered, deferred (dispatching waits out a
# Temporal outage).
EVENTS_BY_OUTCOME = Counter("rejse_events_total", "Events by outcome", ["outcome"])

# Sends (the send activity's results): channel email|sms|in_app|webhook, status
# sent|skipped|deferred|failed, or error when the attempt raised and Temporal retries it.
MESSAGES = Counter(
    "rejse_messages_total", "Send attempts by channel and result", ["channel", "status"]
)

# CRM calls (HubSpot, Salesforce, webhook CRM) by operation and result: ok, rate_limited,
# transient (both retried by Temporal), rejected (for good).
CRM_CALLS = Counter(
    "rejse_crm_calls_total", "CRM calls by operation and result", ["operation", "status"]
)
