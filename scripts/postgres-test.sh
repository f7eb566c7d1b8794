#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests: `start` prints its admin URL, `stop` stops it.
# Installs Debian's postgresql when no initdb is present. The cluster lives in DIR (default
# .test-tmp/pg; its parent must be enterable by the `postgres` user) and listens on 127.0.0.1:PORT
# only (default 55400). initdb refuses root, so as
# root the cluster runs as the `postgres` user. synchronous_commit=off is what the SQLite broker does
# too (WAL, synchronous=NORMAL): a power cut may lose the last commits, a killed process none.
#   bash scripts/postgres-test.sh start [DIR] [PORT]   ->  postgres://postgres@127.0.0.1:PORT/postgres
#   bash scripts/postgres-test.sh stop  [DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmd=${1:?start or stop}
DIR=$(realpath -m "${2:-$ROOT/.test-tmp/pg}")
PORT=${3:-55400}

bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n "$d" && -x "$d/initdb" ]] && echo "$d"
}

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

case "$cmd" in
  start)
    if ! bin >/dev/null; then
      [[ $(id -u) -eq 0 ]] || { echo "postgresql is not installed and this is not root" >&2; exit 1; }
      echo "[pg] installing Debian's postgresql" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql >&2
    fi
    B=$(bin)
    mkdir -p "$DIR"
    [[ $(id -u) -eq 0 ]] && chown postgres "$DIR"
    if [[ ! -f "$DIR/data/PG_VERSION" ]]; then
      as_owner "$B/initdb" -D "$DIR/data" -A trust -U postgres >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
    fi
    if ! as_owner "$B/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      as_owner "$B/pg_ctl" -D "$DIR/data" -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c synchronous_commit=off" -l "$DIR/pg.log" -w start >&2
    fi
    echo "postgres://postgres@127.0.0.1:$PORT/postgres"
    ;;
  stop)
    B=$(bin) || exit 0
    [[ -f "$DIR/data/PG_VERSION" ]] || exit 0
    as_owner "$B/pg_ctl" -D "$DIR/data" -m fast stop >&2 || true
    ;;
  *)
    echo "usage: $0 start|stop [DIR] [PORT]" >&2
    exit 2
    ;;
esac
