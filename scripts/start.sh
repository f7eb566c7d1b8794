#!/usr/bin/env bash
# The quick start's main command: installs and builds what is missing, then `hearth up` —
# a broker and a worker for this machine (the embedded default). Arguments go to `hearth up`.
#
#   npm start -- [--vscode] [--vscode-port PORT] [--vscode-folder DIR] [--data-dir DIR] [--dry-run] [hearth up flags…]
#
# --vscode also opens VS Code in the browser with the extension and that local network:
# code-server 4.100.3 (installed into .tools/ on the first run) on 127.0.0.1:PORT (--vscode-port,
# else $HEARTH_VSCODE_PORT, else 8080), showing the sample project examples/quickstart (a small
# training script and a notebook), or --vscode-folder DIR. --data-dir (else $HEARTH_DATA_DIR,
# else ~/.hearth) is where the broker keeps its state and config.json; the extension is started
# with the same one, so it connects to this network. --dry-run prints what it would start and exits.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

vscode=0
dry_run=0
data_dir="${HEARTH_DATA_DIR:-$HOME/.hearth}"
vs_port="${HEARTH_VSCODE_PORT:-8080}"
folder="$ROOT/examples/quickstart"
up_args=()
need() { [[ $# -ge 2 && -n "$2" ]] || { echo "start.sh: $1 needs a value" >&2; exit 2; }; }
while (($#)); do
  case "$1" in
    --vscode) vscode=1 ;;
    --dry-run) dry_run=1 ;;
    --vscode-port) need "$@"; vs_port="$2"; shift ;;
    --vscode-port=*) vs_port="${1#*=}" ;;
    --vscode-folder) need "$@"; folder="$2"; shift ;;
    --vscode-folder=*) folder="${1#*=}" ;;
    --data-dir) need "$@"; data_dir="$2"; shift ;;
    --data-dir=*) data_dir="${1#*=}" ;;
    *) up_args+=("$1") ;;
  esac
  shift
done
[[ "$vs_port" =~ ^[0-9]+$ ]] && ((vs_port > 0 && vs_port < 65536)) || { echo "start.sh: --vscode-port takes a port number, not '$vs_port'" >&2; exit 2; }
data_dir="$(mkdir -p "$data_dir" && cd "$data_dir" && pwd)"
folder="$(cd "$folder" && pwd)"
hearth_up=(node "$ROOT/dist/cli.js" --data-dir "$data_dir" up ${up_args[@]+"${up_args[@]}"})

if ((dry_run)); then
  printf 'hearth up:   %s\n' "${hearth_up[*]}"
  if ((vscode)); then
    printf 'code-server: http://127.0.0.1:%s/?folder=%s\n' "$vs_port" "$folder"
    printf 'extension:   HEARTH_DATA_DIR=%s\n' "$data_dir"
  fi
  exit 0
fi

bash "$ROOT/scripts/setup.sh" >&2
if ((!vscode)); then
  exec "${hearth_up[@]}"
fi

vs_dir="$data_dir/vscode"
mkdir -p "$vs_dir/ud/User" "$vs_dir/exts" "$data_dir/logs"
bash "$ROOT/scripts/setup-e2e.sh" >&2
bash "$ROOT/scripts/package.sh" "$vs_dir/hearth.vsix" >&2
[[ -f "$vs_dir/ud/User/settings.json" ]] ||
  printf '{ "workbench.startupEditor": "none", "walkthroughs.openOnInstall": false }\n' >"$vs_dir/ud/User/settings.json"
code_server=(node "$ROOT/.tools/code-server/node_modules/code-server/out/node/entry.js"
  --user-data-dir "$vs_dir/ud" --extensions-dir "$vs_dir/exts")
"${code_server[@]}" --install-extension "$vs_dir/hearth.vsix" --force >&2

# Both run in this script's process group: Ctrl-C (or the end of either) stops the other too.
trap 'kill 0 2>/dev/null' EXIT INT TERM
"${hearth_up[@]}" &
# the extension host inherits this: it reads config.json (broker URL and token) from that data dir
HEARTH_DATA_DIR="$data_dir" "${code_server[@]}" --bind-addr "127.0.0.1:$vs_port" --auth none \
  --disable-telemetry --disable-update-check --disable-workspace-trust --disable-getting-started-override \
  "$folder" >"$data_dir/logs/code-server.log" 2>&1 &
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$vs_port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
printf '\nVS Code with Hearth: http://127.0.0.1:%s/?folder=%s\n' "$vs_port" "$folder"
wait -n
