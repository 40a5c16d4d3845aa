#!/usr/bin/env bash
# Regenerates the initial migration from recovery/store/schema/ (only while no release exists).
# Later hand-written revisions (0002: PostgreSQL's composite row types, which autogenerate cannot see) are set
# aside while 0001 is generated, then put back on top of it.
set -euo pipefail
versions=recovery/store/migrations/versions
aside=$(mktemp -d)
trap 'mv "$aside"/*.py "$versions"/ 2>/dev/null || true; rmdir "$aside"' EXIT
for file in "$versions"/*.py; do
  case "$(basename "$file")" in 0001_*) rm -f "$file" ;; *) mv "$file" "$aside"/ ;; esac
done
rm -f /tmp/gen.db
.venv/bin/python - <<'PY'
from alembic import command
from recovery.store.migrate import alembic_config
command.revision(alembic_config("sqlite:////tmp/gen.db"), message="initial schema", autogenerate=True, rev_id="0001")
PY
.venv/bin/ruff check --fix -q recovery/store/migrations || true
.venv/bin/ruff format -q recovery/store/migrations
