# Production-like image of the Open311 server (used by docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/open311
# The runtime lock first, every file checked against its sha256 (its own layer: it is rebuilt
# only when the lock changes), then the project alone: its dependencies are the lock's.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-deps . && useradd --system --home /srv/open311 open311
USER open311
EXPOSE 8000
CMD ["open311", "serve", "--host", "0.0.0.0", "--port", "8000"]
