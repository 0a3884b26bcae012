# rejse: one image for every process (api, worker, scheduler, migrate); the command picks one.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    REJSE_DATA_DIR=/var/lib/rejse REJSE_API_HOST=0.0.0.0 REJSE_TEMPLATES_DIR=/app/templates

WORKDIR /app
COPY pyproject.toml README.md ./
COPY rejse ./rejse
COPY api ./api
COPY workflows ./workflows
COPY activities ./activities
COPY templates ./templates
RUN pip install . \
 && useradd --system --home-dir /var/lib/rejse --create-home rejse

USER rejse
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
ENTRYPOINT ["rejse"]
CMD ["api"]
