# Installs npm packages once into the cache volume, inside the sandbox (install scripts run here,
# never on the host), and reports what it installed. Run by mcpbox as:
#   sh -c "$(cat install-common.sh npx-install.sh)" mcpbox-install PREFIX SPEC...
# The install is staged beside PREFIX and lands in PREFIX-<first 12 of its tree hash>. With
# MCPBOX_LOCKFILE set (a locked package-lock.json), that exact tree is installed (npm ci checks every
# package's integrity) instead of resolving the specs again.
# stdout: "MCPBOX-TREE <sha256 of package-lock.json>", "MCPBOX-DIR <dir>", "MCPBOX-BINS <names…>",
# then package-lock.json; everything else goes to stderr.
set -eu
prefix=$1
shift
# Concurrent first runs of one server share the volume (and, in their own PID namespaces, the PID).
mkdir -p "$(dirname "$prefix")"
stage=$(mktemp -d "$prefix.stage-XXXXXX")
cd "$stage"
if [ -n "${MCPBOX_LOCKFILE:-}" ]; then
  printf '%s' "$MCPBOX_LOCKFILE" > package-lock.json
  # npm ci wants the package.json the lock was made from: its root entry says what that held.
  node -e 'const l=require("./package-lock.json").packages[""]||{};require("fs").writeFileSync("package.json",JSON.stringify({name:"mcpbox-install",private:true,dependencies:l.dependencies||{}}))'
  npm ci --no-audit --no-fund --no-update-notifier --loglevel=warn 1>&2
else
  printf '{"name":"mcpbox-install","private":true}\n' > package.json
  npm install --no-audit --no-fund --no-update-notifier --loglevel=warn "$@" 1>&2
fi
tree=$(sha256sum package-lock.json | cut -d' ' -f1)
printf '{"tree":"%s"}\n' "$tree" > .mcpbox-install.json
cd ..
final="$prefix-$(printf '%s' "$tree" | cut -c1-12)"
settle "$stage" "$final" "$tree" package-lock.json
# Earlier trees of the same server that no run has touched for a day.
find "$(dirname "$prefix")" -maxdepth 1 -name "$(basename "$prefix")-*" ! -path "$final" -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
echo "MCPBOX-TREE $tree"
echo "MCPBOX-DIR $final"
echo "MCPBOX-BINS $(ls "$final/node_modules/.bin" 2>/dev/null | tr '\n' ' ')"
cat "$final/package-lock.json"
