#!/usr/bin/env bash
# The one run command (make run): set up, load the demo (Toronto, its 2018 requests moved so
# the newest was made yesterday; bilingual Greater Sudbury), serve on the embedded default
# (SQLite file ./open311.db) unless OPEN311_DB__URL points at PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
# A person reads this terminal: plain log lines (production keeps JSON, the default).
export OPEN311_LOG_FORMAT="${OPEN311_LOG_FORMAT:-text}"
# The demo has two jurisdictions (Toronto; Greater Sudbury, bilingual): calls without
# jurisdiction_id are Toronto's, Sudbury's name it (jurisdiction_id=greatersudbury.ca).
export OPEN311_DEFAULT_JURISDICTION="${OPEN311_DEFAULT_JURISDICTION:-toronto.ca}"
# The reports key opens the compliance dashboard: /web/reports/key-metrics.html?api_key=...
.venv/bin/open311 demo --api-key "${OPEN311_DEMO_API_KEY:-toronto-demo-key}" \
    --reports-key "${OPEN311_DEMO_REPORTS_KEY:-toronto-reports-key}"
exec .venv/bin/open311 serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
