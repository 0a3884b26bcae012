"""FastAPI control plane and ingestion."""
