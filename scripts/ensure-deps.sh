#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for vouch's demo and tests, and nothing else:
# the software TPM and TSS packages and Chromium for the browser tests (apt), then the npm
# dependencies (npm ci).
# Safe to run again: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(swtpm swtpm-tools tpm2-tools libtss2-dev chromium postgresql)

missing=()
command -v swtpm >/dev/null 2>&1 || missing+=(swtpm)
command -v swtpm_setup >/dev/null 2>&1 || missing+=(swtpm-tools)
command -v tpm2_quote >/dev/null 2>&1 || missing+=(tpm2-tools)
ldconfig -p 2>/dev/null | grep -q 'libtss2-esys.so' || missing+=(libtss2-dev)
# test/browser drives Debian's Chromium with playwright-core, which never downloads a browser.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# PostgreSQL server binaries for the store tests, which start their own servers (test/helpers/postgres.ts).
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)

if [ ${#missing[@]} -gt 0 ]; then
  echo "vouch: installing ${missing[*]} (Debian packages) ..." >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "vouch: need root (or sudo) to install: ${APT_PACKAGES[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  # No 'main' cluster from Debian's postgresql package: the tests never use one.
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' | $SUDO tee /etc/postgresql-common/createcluster.d/vouch-no-main-cluster.conf >/dev/null
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
fi

# npm dependencies: install when absent or older than the lockfile.
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "vouch: installing npm dependencies (npm ci) ..." >&2
  npm ci --no-audit --no-fund >&2
fi
