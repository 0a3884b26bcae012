"""Prometheus metrics (prometheus-client). Labels carry route templates and names, never PII."""

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "rejse_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "rejse_http_request_duration_seconds", "HTTP request duration", ["method", "route"]
)
