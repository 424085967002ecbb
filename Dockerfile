# sla-bot: one image for the single-process SQLite setup and for PostgreSQL replicas.
#   docker build -t sla-bot .
#   docker run -e SLACK_BOT_TOKEN=… -e SLACK_SIGNING_SECRET=… -v sla-bot-data:/data -p 3000:3000 sla-bot
# Replicas: see docker-compose.yml (PostgreSQL and two replicas).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=3000 \
    SLA_BOT_MATRIX=/app/manifests/matrix.yaml \
    SLA_BOT_DB=/data/sla-bot.db \
    SLA_BOT_LOG_FORMAT=json

WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
COPY bot ./bot
COPY matrix_engine ./matrix_engine
COPY storage ./storage
COPY manifests ./manifests
# The runtime dependencies of pyproject.toml, each at the version pinned in requirements.lock
# (the lock's test and lint tools stay out of the image).
RUN pip install --constraint requirements.lock . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin slabot \
    && mkdir -p /data && chown slabot /data

USER slabot
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '3000')}/healthz\", timeout=4); sys.exit(0)"]
CMD ["sla-bot", "serve"]
