# Installs a Python tool once into the server's install volume, inside the sandbox: uv resolves the
# requirements to exact versions with hashes, then installs them hash-checked into a (relocatable)
# virtual environment. Run by mcpbox as:
#   sh -c "$(cat tree-hash.sh install-common.sh uvx-install.sh)" mcpbox-install PREFIX PYTHON REQUIREMENT...
# PYTHON is a --python request or "-" for uv's default. With MCPBOX_LOCKFILE set (a locked,
# hash-pinned requirements.txt, checked by mcpbox to hold nothing but pins and hashes), that exact
# tree is installed instead of resolving again. It lands in a directory of its own (install-common.sh,
# place), unless mcpbox names an intact earlier install of the same tree (reusable).
# stdout: the report (install-common.sh); everything else goes to stderr.
set -eu
prefix=$1
python=$2
shift 2
if [ "$python" = "-" ]; then py=""; else py="--python=$python"; fi
# A Python uv downloads (below) lives beside the trees, in the install volume: the server's venv
# points at it, and at run time the cache is a throwaway.
UV_PYTHON_INSTALL_DIR="$(dirname "$prefix")/python"
export UV_PYTHON_INSTALL_DIR
cache_check
# Concurrent first runs of one server share the volume (and, in their own PID namespaces, the PID).
mkdir -p "$(dirname "$prefix")"
stage=$(mktemp -d "$prefix.stage-XXXXXX")
# Installed as nobody, run as whichever uid the server gets: the tree must be readable by all.
chmod 755 "$stage"
cd "$stage"
if [ -n "${MCPBOX_LOCKFILE:-}" ]; then
  printf '%s' "$MCPBOX_LOCKFILE" > requirements.txt
else
  printf '%s\n' "$@" > requirements.in
  # The release-age cooldown (MCPBOX_CUTOFF): the whole tree as PyPI stood then (uv-gate.py).
  exclude=""
  if [ -n "${MCPBOX_CUTOFF:-}" ]; then
    uv pip compile $py --quiet --no-deps --no-header --no-annotate requirements.in > newest.txt 2>/dev/null || : > newest.txt
    gate_times=$(python3 -c "$uv_gate_py" "$MCPBOX_CUTOFF" newest.txt "$@")
    exclude="--exclude-newer=$(printf '%s' "$gate_times" | sed 's/.*"before":"\([^"]*\)".*/\1/')"
    rm -f newest.txt
  fi
  gate_json="{\"times\":${gate_times:-null},\"verify\":null}"
  compile() { uv pip compile $py $exclude --quiet --generate-hashes --no-header --no-annotate --output-file requirements.txt requirements.in 2>compile.err; }
  if ! compile; then
    # Like uvx: a package that needs a newer Python than the image's gets one of uv's managed Pythons
    # (downloaded where the install may reach its host; else the egress refusal says which host).
    need=$(grep -o 'Python>=[0-9.]*' compile.err | head -n 1 | cut -d= -f2)
    if [ -n "$py" ] || [ -z "$need" ]; then cat compile.err >&2; exit 1; fi
    echo "mcpbox: the image's $(python3 -V 2>&1 || echo Python) is older than the package needs (Python>=$need): asking uv for a managed Python $need" >&2
    py="--python=$need"
    compile || { cat compile.err >&2; exit 1; }
  fi
  rm -f compile.err
fi
tree=$(sha256sum requirements.txt | cut -d' ' -f1)
if reusable "$tree" requirements.txt; then
  final=$MCPBOX_REUSE_DIR
  cd ..
  rm -rf "$stage"
else
  # Relocatable: the environment is built in the stage and moved into place whole.
  uv venv $py --relocatable --quiet venv 1>&2
  # Bytecode now: at run time the install is read-only, and Python would recompile on every start.
  uv pip install --quiet --require-hashes --compile-bytecode --python venv/bin/python --requirement requirements.txt 1>&2
  printf '{"tree":"%s"}\n' "$tree" > .mcpbox-install.json
  cd ..
  final=$(place "$stage" "$prefix" "$tree")
fi
cleanup_old "$prefix" "$final"
report "$final" "$tree" requirements.txt "$(cd "$final/venv/bin" && for f in *; do [ -f "$f" ] && [ -x "$f" ] && printf '%s ' "$f"; done)"
