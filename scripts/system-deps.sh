#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, if missing and if this user may.
set -euo pipefail
needed=(chromium poppler-utils)
needed+=(postgresql)  # tests/test_cohort_postgres.py starts a throwaway server (initdb, pg_ctl)
# (Packages are appended here by the features that need them.)
missing=()
for pkg in "${needed[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: missing system packages (${missing[*]}); tests that need them will be skipped" >&2
  exit 0
fi
echo "installing system packages: ${missing[*]}" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
