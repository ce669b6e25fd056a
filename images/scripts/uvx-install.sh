# Installs a Python tool once into the cache volume, inside the sandbox: uv resolves the requirements
# to exact versions with hashes, then installs them hash-checked into a (relocatable) virtual
# environment. Run by mcpbox as:
#   sh -c "$(cat install-common.sh uvx-install.sh)" mcpbox-install PREFIX PYTHON REQUIREMENT...
# PYTHON is a --python request or "-" for uv's default. The install is staged beside PREFIX and lands
# in PREFIX-<first 12 of its tree hash>. With MCPBOX_LOCKFILE set (a locked, hash-pinned
# requirements.txt), that exact tree is installed instead of resolving again.
# stdout: "MCPBOX-TREE <sha256 of requirements.txt>", "MCPBOX-DIR <dir>", "MCPBOX-BINS <names…>",
# then requirements.txt; everything else goes to stderr.
set -eu
prefix=$1
python=$2
shift 2
if [ "$python" = "-" ]; then py=""; else py="--python=$python"; fi
# Concurrent first runs of one server share the volume (and, in their own PID namespaces, the PID).
mkdir -p "$(dirname "$prefix")"
stage=$(mktemp -d "$prefix.stage-XXXXXX")
cd "$stage"
if [ -n "${MCPBOX_LOCKFILE:-}" ]; then
  printf '%s' "$MCPBOX_LOCKFILE" > requirements.txt
else
  printf '%s\n' "$@" > requirements.in
  uv pip compile $py --quiet --generate-hashes --no-header --no-annotate --output-file requirements.txt requirements.in 1>&2
fi
tree=$(sha256sum requirements.txt | cut -d' ' -f1)
final="$prefix-$(printf '%s' "$tree" | cut -c1-12)"
# The same tree installed before is kept, unless what is there no longer matches it.
if [ -f "$final/.mcpbox-install.json" ] && [ "$(sha256sum "$final/requirements.txt" | cut -d' ' -f1)" = "$tree" ]; then
  cd ..
  rm -rf "$stage"
else
  # Relocatable: the environment is built in the stage and moved into place whole.
  uv venv $py --relocatable --quiet venv 1>&2
  # Bytecode now: at run time the install is read-only, and Python would recompile on every start.
  uv pip install --quiet --require-hashes --compile-bytecode --python venv/bin/python --requirement requirements.txt 1>&2
  printf '{"tree":"%s"}\n' "$tree" > .mcpbox-install.json
  cd ..
  settle "$stage" "$final" "$tree" requirements.txt
fi
find "$(dirname "$prefix")" -maxdepth 1 -name "$(basename "$prefix")-*" ! -path "$final" -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
echo "MCPBOX-TREE $tree"
echo "MCPBOX-DIR $final"
echo "MCPBOX-BINS $(cd "$final/venv/bin" && for f in *; do [ -f "$f" ] && [ -x "$f" ] && printf '%s ' "$f"; done)"
cat "$final/requirements.txt"
