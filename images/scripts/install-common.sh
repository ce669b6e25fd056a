# Shared by npx-install.sh and uvx-install.sh: mcpbox puts tree-hash.sh and this file in front of either.
# stage dirs are PREFIX.stage-XXXXXX; installed trees PREFIX-<tree12>-XXXXXX.

# The cache volume may hold MCPBOX_CACHE_LIMIT_KB at most: an install refuses to grow it further.
cache_check() {
  [ -n "${MCPBOX_CACHE_LIMIT_KB:-}" ] || return 0
  used=$(du -sk /mcpbox/cache 2>/dev/null | cut -f1)
  if [ "${used:-0}" -gt "$MCPBOX_CACHE_LIMIT_KB" ]; then
    echo "mcpbox: the cache volume holds $((used / 1024)) MiB, over its limit of $((MCPBOX_CACHE_LIMIT_KB / 1024)) MiB (hint: docker volume rm the package's cache volume empties it; the cacheLimit setting raises the limit)" >&2
    exit 75
  fi
}

# The tree installed before is reused only when mcpbox names it with the content hash it recorded
# then (MCPBOX_REUSE_DIR, MCPBOX_REUSE_CONTENT) and it still has that content: a tree in the volume
# is otherwise never trusted, whatever its lock file says.
reusable() { # reusable TREE LOCKFILE
  [ -n "${MCPBOX_REUSE_DIR:-}" ] && [ -n "${MCPBOX_REUSE_CONTENT:-}" ] &&
    [ -f "$MCPBOX_REUSE_DIR/.mcpbox-install.json" ] &&
    [ "$(sha256sum "$MCPBOX_REUSE_DIR/$2" | cut -d' ' -f1)" = "$1" ] &&
    [ "$(content_hash "$MCPBOX_REUSE_DIR")" = "$MCPBOX_REUSE_CONTENT" ]
}

# Each install gets a directory of its own (concurrent first runs of one server never share one):
# the stage, renamed to PREFIX-<first 12 of the tree hash>-<the stage's own suffix>.
place() { # place STAGE PREFIX TREE → prints the final directory
  final="$2-$(printf '%s' "$3" | cut -c1-12)-${1##*-}"
  mv -T "$1" "$final"
  printf '%s' "$final"
}

# Earlier trees of this server, and stages of installs that died, that nothing has touched for a day.
cleanup_old() { # cleanup_old PREFIX FINAL
  find "$(dirname "$1")" -maxdepth 1 -name "$(basename "$1")[-.]*" ! -path "$2" -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
}

# stdout: the header mcpbox reads (src/lock.ts, parseInstallReport), then the lock file itself.
report() { # report FINAL TREE LOCKFILE BINS
  # What the supply-chain gates found (npm-gate.cjs, uv-gate.py), when they ran.
  [ -z "${gate_json:-}" ] || echo "MCPBOX-GATE $gate_json"
  echo "MCPBOX-TREE $2"
  echo "MCPBOX-DIR $1"
  echo "MCPBOX-STAT $(stat_signature "$1")"
  echo "MCPBOX-CONTENT $(content_hash "$1")"
  echo "MCPBOX-BINS $4"
  cat "$1/$3"
}
