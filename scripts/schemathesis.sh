#!/bin/sh
# Fuzzes Revisit's API from its own OpenAPI document with schemathesis
# (`pip install schemathesis`; not needed by `cargo test`).
#
#   scripts/schemathesis.sh                 # builds, starts `serve --demo` on a fresh SQLite file
#   MAX_EXAMPLES=50 scripts/schemathesis.sh
#
# It runs every check (no 5xx, status codes and answers as documented, content types, headers)
# for every operation, logged in as the demo's tech01 (whose role is refused more often), then as
# its admin (whose fuzzed changes may lock tech01 out), and fails if any check fails. The server's log is left in $WORK/revisit.log.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${PORT:-18790}
MAX_EXAMPLES=${MAX_EXAMPLES:-25}
WORK=$(mktemp -d)
cargo build --quiet --manifest-path "$ROOT/Cargo.toml"
cd "$WORK"
REVISIT_LISTEN=127.0.0.1:$PORT REVISIT_LOG=warn "$ROOT/target/debug/revisit" serve --demo > revisit.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
until curl -sf "localhost:$PORT/readyz" > /dev/null; do sleep 0.2; done
token() {
  curl -s "localhost:$PORT/createjwt" -H 'content-type: application/json' \
       -d "{\"username\":\"$1\",\"password\":\"$1\"}" | sed 's/.*"token":"\([^"]*\)".*/\1/'
}
status=0
for user in tech01 admin; do
  echo "== schemathesis as $user"
  schemathesis run "http://127.0.0.1:$PORT/seiapi/v3/openapi.json" \
      --header "x-access-token: $(token $user)" --checks all \
      --max-examples "$MAX_EXAMPLES" --generation-deterministic \
      --report junit --report-dir "$WORK/report-$user" || status=1
done
echo "reports and the server log: $WORK"
exit $status
