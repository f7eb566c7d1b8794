#!/usr/bin/env bash
# Every test: installs what the tests need (Node packages, Debian's Python packages, Chromium and
# code-server for the VS Code tests), then lint, typecheck, unit, integration and end-to-end tests.
# Ends with one line "N passed, N failed, N skipped" summed over all mocha runs.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '\n[test] %s\n' "$*"; }
LOGDIR="$ROOT/.test-tmp/logs"
mkdir -p "$LOGDIR"
rm -f "$LOGDIR"/*.log

bash scripts/setup.sh || exit 1

# Debian's Python with PyTorch for the test that trains a real model on CPU.
if [[ -x /usr/bin/python3 ]] && ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  if [[ $(id -u) -eq 0 ]]; then
    log "installing python3-torch (Debian) for the real-training test"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends python3-torch >/dev/null \
      || log "python3-torch could not be installed; the real-training test will be skipped"
  else
    log "python3-torch missing and not root; the real-training test will be skipped"
  fi
fi
# matplotlib for the notebook tests' figures (setup.sh brings ipykernel).
if [[ -x /usr/bin/python3 ]] && ! /usr/bin/python3 -c 'import matplotlib, matplotlib_inline' 2>/dev/null && [[ $(id -u) -eq 0 ]]; then
  log "installing python3-matplotlib (Debian) for the notebook tests"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends python3-matplotlib python3-matplotlib-inline >/dev/null \
    || log "python3-matplotlib could not be installed; the notebook figure test will fail"
fi
bash scripts/setup-e2e.sh || exit 1

status=0
step() {
  local name=$1
  shift
  log "$name: $*"
  "$@" 2>&1 | tee "$LOGDIR/$name.log"
  local rc=${PIPESTATUS[0]}
  if ((rc != 0)); then
    log "$name FAILED (exit $rc)"
    status=1
  fi
}
step lint npx eslint .
step typecheck npm run -s typecheck
step unit npx mocha --config .mocharc.json 'test/unit/**/*.test.ts'
step integration npx mocha --config .mocharc.json --timeout 180000 'test/integration/**/*.test.ts'
# The broker-facing tests again on PostgreSQL (a private cluster on a loopback port of this run's
# own, stopped on exit; each broker a test starts gets a database of its own), and the tests of
# several replicas on one database, which need PostgreSQL.
PG_DIR="$ROOT/.test-tmp/pg"
PG_PORT=${HEARTH_TEST_PG_PORT:-55432}
trap 'bash scripts/postgres-test.sh stop "$PG_DIR" >/dev/null 2>&1' EXIT
if PG_URL=$(bash scripts/postgres-test.sh start "$PG_DIR" "$PG_PORT"); then
  export HEARTH_TEST_DATABASE="$PG_URL"
  step unit-postgres npx mocha --config .mocharc.json test/unit/broker-cancel.test.ts test/unit/broker-event-cap.test.ts test/unit/broker-replicas.test.ts \
    test/unit/spend-repository.test.ts test/unit/ledger.test.ts test/unit/broker-secrets.test.ts
  step integration-postgres npx mocha --config .mocharc.json --timeout 180000 \
    test/integration/broker-log-attacks.test.ts test/integration/broker-http-attacks.test.ts test/integration/security.test.ts \
    test/integration/worker-reconnect.test.ts test/integration/resilience.test.ts test/integration/run.test.ts \
    test/integration/kernel-session.test.ts test/integration/panel-feed.test.ts test/integration/broker-replicas.test.ts \
    test/integration/spend.test.ts test/integration/market-trust.test.ts test/integration/ledger.test.ts test/integration/secrets.test.ts test/integration/s3-blobs.test.ts test/integration/cli.test.ts \
    test/integration/lease-limits.test.ts
  unset HEARTH_TEST_DATABASE
else
  log "PostgreSQL could not be started; the PostgreSQL runs FAILED"
  status=1
fi
# The .vsix is a deliverable: build it (production bundle, no native modules) and let the UI
# tests install it into code-server.
step package bash scripts/package.sh
step e2e node --import tsx test/e2e/run.ts

sum() { cat "$LOGDIR"/*.log | grep -Eo "^ *[0-9]+ $1" | awk '{ s += $1 } END { print s + 0 }'; }
passed=$(sum passing)
failed=$(sum failing)
skipped=$(sum pending)
if ((status != 0 && failed == 0)); then failed=1; fi
printf '\n%s passed, %s failed, %s skipped\n' "$passed" "$failed" "$skipped"
exit $status
