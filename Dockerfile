# Rollbot as a service. Build: docker build -t rollbot .   Run: see docs/deploy.md
FROM python:3.11-slim

# ROLLBOT_HOST=0.0.0.0: a container is reached through its published port, never on its own loopback.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT=3000 ROLLBOT_HOST=0.0.0.0
WORKDIR /app

# The runbook's sample scripts are bash; real deployments mount their own scripts and runbook.
RUN apt-get update && apt-get install -y --no-install-recommends bash && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml README.md manifest.yml ./
COPY bot ./bot
COPY handlers ./handlers
COPY actions ./actions
COPY runbooks ./runbooks
COPY examples ./examples
RUN pip install --no-cache-dir -e . && useradd --create-home rollbot
USER rollbot

EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import os,urllib.request;urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz')"
# Migrations run at start-up too; `rollbot db upgrade` runs them alone (e.g. as a release step).
CMD ["rollbot", "serve"]
