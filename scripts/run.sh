#!/usr/bin/env bash
# Serve the app with gunicorn (or, with the argument `seed`, load the demo slates only).
# Redis and Neo4j come from REDIS_URL / NEO4J_URI when the caller sets both; otherwise the local
# services are started under .run/ and fill in whatever the caller left unset.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${REDIS_URL:-}" || -z "${NEO4J_URI:-}" ]]; then
  scripts/services.sh up
  while IFS= read -r line; do
    assignment=${line#export }
    name=${assignment%%=*}
    [[ -n "${!name:-}" ]] || eval "export ${assignment}"
  done < .run/services.env
fi

.venv/bin/flask --app app.wsgi seed --if-empty
if [[ "${1:-}" == "seed" ]]; then
  exit 0
fi
exec .venv/bin/gunicorn -c gunicorn.conf.py
