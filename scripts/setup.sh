#!/usr/bin/env bash
# Installs what Hearth itself needs on a fresh machine (Node packages, built once) and builds it.
# Idempotent: a second run with nothing changed does nothing but a quick check.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[setup] %s\n' "$*"; }

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if ((major < 20)); then
  log "Hearth needs Node.js 20 or newer (found $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
# better-sqlite3 has no prebuilt binary reachable here and compiles with node-gyp.
for tool in python3 make g++; do
  command -v "$tool" >/dev/null || { log "missing $tool (needed to compile better-sqlite3): apt-get install -y python3 make g++" >&2; exit 1; }
done

# npm ci when node_modules is absent or older than the lock file.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "installing Node packages (npm ci; compiling better-sqlite3 takes about a minute the first time)"
  npm ci --no-audit --no-fund
else
  log "Node packages up to date"
fi
node -e "require('better-sqlite3')(':memory:').close()" || { log "better-sqlite3 did not load; try: npm rebuild better-sqlite3" >&2; exit 1; }

# The worker sandboxes jobs with bubblewrap; without it (no root, no apt) `--sandbox auto` runs
# them unsandboxed with a warning, so this never fails setup.
if ! command -v bwrap >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing bubblewrap (the worker's job sandbox)"
    { apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq bubblewrap >/dev/null; } ||
      log "could not install bubblewrap; jobs will run unsandboxed" >&2
  else
    log "bubblewrap (bwrap) is missing: jobs will run unsandboxed (as root: apt-get install bubblewrap)" >&2
  fi
fi

# Each session gets a network namespace of its own; its internet goes through slirp4netns (user-mode
# NAT; session-network.ts says why not pasta), behind routes set with iproute2's ip. Without them
# a root worker's sessions get loopback only, with a warning, so this never fails setup.
if ! command -v slirp4netns >/dev/null || ! { command -v ip >/dev/null || [[ -x /usr/sbin/ip || -x /sbin/ip ]]; }; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing slirp4netns and iproute2 (the sessions' own networks)"
    { apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq slirp4netns iproute2 >/dev/null; } ||
      log "could not install slirp4netns; sessions will have no internet" >&2
  else
    log "slirp4netns or ip is missing: sessions will have no internet (as root: apt-get install slirp4netns iproute2)" >&2
  fi
fi

# A worker run as root hands each job to an unprivileged user with setpriv, and without cgroups
# limits jobs with prlimit: both are util-linux, present on Debian and Ubuntu unless stripped.
for tool in setpriv prlimit unshare nsenter; do
  command -v "$tool" >/dev/null || log "missing $tool (util-linux): a root worker cannot run jobs without setpriv; apt-get install util-linux" >&2
done

# Notebooks run on a kernel: the worker picks a Python with ipykernel and jupyter_client (python3,
# else Debian's /usr/bin/python3). Without one, scripts still run and notebooks fail with why.
if ! python3 -c 'import ipykernel, jupyter_client' 2>/dev/null && ! { [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import ipykernel, jupyter_client' 2>/dev/null; }; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing Debian's python3-ipykernel and python3-jupyter-client (notebooks on the worker)"
    { apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends python3-ipykernel python3-jupyter-client >/dev/null; } ||
      log "could not install ipykernel; notebooks will not run on this worker" >&2
  else
    log "no Python here has ipykernel: notebooks will not run on this worker (pip install ipykernel, or as root: apt-get install python3-ipykernel python3-jupyter-client)" >&2
  fi
fi

log "building"
npm run -s build
