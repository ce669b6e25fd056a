# Installs a Python tool once into the cache volume, inside the sandbox: uv resolves the requirements
# to exact versions with hashes, then installs them hash-checked into a virtual environment.
# Run by mcpbox as:
#   sh -c "$(cat uvx-install.sh)" mcpbox-install PREFIX PYTHON REQUIREMENT...
# PYTHON is a --python request or "-" for uv's default. The install lands in
# PREFIX-<first 12 of its tree hash> (resolved first, because a virtual environment can't be moved).
# With MCPBOX_LOCKFILE set (a locked, hash-pinned requirements.txt), that exact tree is installed
# instead of resolving again.
# stdout: "MCPBOX-TREE <sha256 of requirements.txt>", "MCPBOX-DIR <dir>", "MCPBOX-BINS <names…>",
# then requirements.txt; everything else goes to stderr.
set -eu
prefix=$1
python=$2
shift 2
if [ "$python" = "-" ]; then py=""; else py="--python=$python"; fi
stage="$prefix.stage-$$"
rm -rf "$stage"
mkdir -p "$stage"
if [ -n "${MCPBOX_LOCKFILE:-}" ]; then
  printf '%s' "$MCPBOX_LOCKFILE" > "$stage/requirements.txt"
else
  printf '%s\n' "$@" > "$stage/requirements.in"
  uv pip compile $py --quiet --generate-hashes --no-header --no-annotate \
    --output-file "$stage/requirements.txt" "$stage/requirements.in" 1>&2
fi
tree=$(sha256sum "$stage/requirements.txt" | cut -d' ' -f1)
final="$prefix-$(printf '%s' "$tree" | cut -c1-12)"
# The same tree installed before is kept, unless what is there no longer matches it.
if [ ! -f "$final/.mcpbox-install.json" ] || [ "$(sha256sum "$final/requirements.txt" | cut -d' ' -f1)" != "$tree" ]; then
  rm -rf "$final"
  mkdir -p "$final"
  cp "$stage/requirements.txt" "$final/requirements.txt"
  uv venv $py --quiet "$final/venv" 1>&2
  # Bytecode now: at run time the install is read-only, and Python would recompile on every start.
  uv pip install --quiet --require-hashes --compile-bytecode --python "$final/venv/bin/python" --requirement "$final/requirements.txt" 1>&2
  # Written last: its presence means the install is complete.
  printf '{"tree":"%s"}\n' "$tree" > "$final/.mcpbox-install.json"
fi
rm -rf "$stage"
find "$(dirname "$prefix")" -maxdepth 1 -name "$(basename "$prefix")-*" ! -path "$final" -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
echo "MCPBOX-TREE $tree"
echo "MCPBOX-DIR $final"
echo "MCPBOX-BINS $(cd "$final/venv/bin" && for f in *; do [ -f "$f" ] && [ -x "$f" ] && printf '%s ' "$f"; done)"
cat "$final/requirements.txt"
