# Installs npm packages once into the server's install volume, inside the sandbox (install scripts
# run here, never on the host), and reports what it installed. Run by mcpbox as:
#   sh -c "$(cat tree-hash.sh install-common.sh npx-install.sh)" mcpbox-install PREFIX SPEC...
# First the specs are resolved to a package-lock.json (no install scripts run for that); with
# MCPBOX_LOCKFILE set (a locked package-lock.json), that one is used instead. The tree is then
# installed with npm ci, which fetches every package by name and version from the registry and
# checks its integrity against the lock: `resolved` URLs are dropped first, so a lock can't point a
# package at a tarball of its choosing. It lands in a directory of its own (install-common.sh,
# place), unless mcpbox names an intact earlier install of the same tree (reusable).
# stdout: the report (install-common.sh); everything else goes to stderr.
set -eu
prefix=$1
shift
cache_check
# Concurrent first runs of one server share the volume (and, in their own PID namespaces, the PID).
mkdir -p "$(dirname "$prefix")"
stage=$(mktemp -d "$prefix.stage-XXXXXX")
# Installed as nobody, run as whichever uid the server gets: the tree must be readable by all.
chmod 755 "$stage"
cd "$stage"
if [ -n "${MCPBOX_LOCKFILE:-}" ]; then
  printf '%s' "$MCPBOX_LOCKFILE" > package-lock.json
else
  printf '{"name":"mcpbox-install","private":true}\n' > package.json
  # The release-age cooldown (MCPBOX_CUTOFF): the whole tree as the registry stood then (npm-gate.cjs).
  before=""
  if [ -n "${MCPBOX_CUTOFF:-}" ]; then
    gate_times=$(node -e "$npm_gate_js" times "$MCPBOX_CUTOFF" "$@")
    before="--before=$(printf '%s' "$gate_times" | sed 's/.*"before":"\([^"]*\)".*/\1/')"
  fi
  npm install --package-lock-only --ignore-scripts --no-audit --no-fund --no-update-notifier --loglevel=warn $before "$@" 1>&2
fi
# Registry signatures and provenance, before anything is fetched to install (exit 77: refused).
if [ "${MCPBOX_PROVENANCE:-warn}" != off ]; then
  gate_verify=$(node -e "$npm_gate_js" verify "${MCPBOX_PROVENANCE:-warn}" ${MCPBOX_GATE_NAMES:-}) || {
    status=$?
    cd .. && rm -rf "$stage"
    [ $status -eq 3 ] && exit 77
    exit 1
  }
fi
gate_json="{\"times\":${gate_times:-null},\"verify\":${gate_verify:-null}}"
tree=$(sha256sum package-lock.json | cut -d' ' -f1)
if reusable "$tree" package-lock.json; then
  final=$MCPBOX_REUSE_DIR
  cd ..
  rm -rf "$stage"
else
  # npm ci wants the package.json the lock was made from (its root entry says what that held) and
  # installs from a copy without `resolved`; the lock as recorded is put back for the tree check.
  cp package-lock.json .mcpbox-lock.json
  node -e '
    const fs = require("fs");
    const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
    for (const entry of Object.values(lock.packages || {})) delete entry.resolved;
    fs.writeFileSync("package-lock.json", JSON.stringify(lock, null, 2) + "\n");
    const root = (lock.packages || {})[""] || {};
    fs.writeFileSync("package.json", JSON.stringify({ name: "mcpbox-install", private: true, dependencies: root.dependencies || {} }));
  '
  npm ci --no-audit --no-fund --no-update-notifier --loglevel=warn 1>&2
  mv -f .mcpbox-lock.json package-lock.json
  printf '{"tree":"%s"}\n' "$tree" > .mcpbox-install.json
  cd ..
  final=$(place "$stage" "$prefix" "$tree")
fi
cleanup_old "$prefix" "$final"
report "$final" "$tree" package-lock.json "$(ls "$final/node_modules/.bin" 2>/dev/null | tr '\n' ' ')"
