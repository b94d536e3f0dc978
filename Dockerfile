# Production-like image of the Open311 server (used by docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/open311
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install . && useradd --system --home /srv/open311 open311
USER open311
EXPOSE 8000
CMD ["open311", "serve", "--host", "0.0.0.0", "--port", "8000"]
