#!/usr/bin/env bash
# Sets up Fleetgraph on a fresh Debian machine with Node 20: pnpm, nats-server, the
# dependencies (better-sqlite3 compiles from source) and the build. Safe to run again.
# With --test, also the tools the tests check artifacts with (cloud-init's validator, kubectl) and
# the browser the dashboard's tests drive (Debian's chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
for_tests=false
[ "${1:-}" = "--test" ] && for_tests=true

PNPM_VERSION=10.34.9
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  echo "==> installing pnpm $PNPM_VERSION"
  as_root npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi

if ! command -v nats-server >/dev/null && [ -z "${NATS_URL:-}" ]; then
  echo "==> installing nats-server from Debian's packages"
  if ! { as_root apt-get update -qq && as_root apt-get install -y -qq nats-server; }; then
    echo "nats-server is missing and could not be installed: install it (apt-get install nats-server)" >&2
    echo "or point NATS_URL at a NATS server with JetStream enabled." >&2
    exit 1
  fi
fi

# better-sqlite3 has no prebuilt binary here: it compiles against the running Node's headers,
# which needs python3, make and a C++ compiler.
if ! command -v make >/dev/null || ! command -v g++ >/dev/null || ! command -v python3 >/dev/null; then
  echo "==> installing build tools for better-sqlite3"
  as_root apt-get update -qq && as_root apt-get install -y -qq python3 make g++
fi
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi

if $for_tests && ! command -v cloud-init >/dev/null; then
  # The tests validate the nodes' user data with cloud-init's own schema check. On a machine
  # that did not boot with cloud-init, it is kept from running at the next boot.
  echo "==> installing cloud-init (its validator checks the nodes' user data in the tests)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends cloud-init >/dev/null
  as_root mkdir -p /etc/cloud && as_root touch /etc/cloud/cloud-init.disabled
fi

if $for_tests && ! command -v kubectl >/dev/null; then
  # The tests render deploy/kubernetes with `kubectl kustomize`.
  echo "==> installing kubectl (Debian's kubernetes-client: the tests render the Kustomize overlays)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq kubernetes-client >/dev/null
fi

if $for_tests && ! command -v chromium >/dev/null; then
  # The dashboard's browser tests drive Debian's Chromium with playwright-core (no browser download).
  echo "==> installing chromium (the dashboard's browser tests run in it)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi

echo "==> installing dependencies"
pnpm install --frozen-lockfile --reporter=append-only | grep -vE '^(Progress|\s*$)' || true
test -d node_modules/.pnpm || { echo "pnpm install failed" >&2; exit 1; }

echo "==> building"
pnpm build
