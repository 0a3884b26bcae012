"""Events in: Segment-compatible ingestion, webhooks, the outbox and its processor."""
