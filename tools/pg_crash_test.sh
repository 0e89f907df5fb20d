#!/usr/bin/env bash
# The crash test (tools/crash_test.py: SIGKILL under load, restart, exactly one final result
# per accepted request) with lps on PostgreSQL: a fresh database on the server tools/pg.sh
# runs in DIR, handed to lps through its environment (the URL never on a command line).
#
#   tools/pg_crash_test.sh DIR [crash_test.py options...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: pg_crash_test.sh DIR [crash_test.py options...]}
shift
url=$(bash "$here/pg.sh" url "$dir")
db=lps_crash_$$
psql "$url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
trap 'psql "$url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true' EXIT
export LLM_PROVIDER_SERVICE_STORE_BACKEND=postgres
export LLM_PROVIDER_SERVICE_POSTGRES_URL="${url%/*}/$db"
python3 "$here/crash_test.py" "$@"
