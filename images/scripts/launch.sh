# Starts an installed server directly: no resolution, no registry. First checks that the install is
# the one its lock describes (the hash of its package-lock.json or requirements.txt), then that its
# files are the ones installed: the stat signature recorded at install time (~20 ms), and only when
# that differs (a volume copied or restored) the content hash (every file read). tree-hash.sh is
# put in front of this file. Run by mcpbox as:
#   sh -c "$(cat tree-hash.sh launch.sh)" mcpbox-launch DIR LOCKFILE BINDIR TREE SIGNATURE CONTENT EXECUTABLE [ARG...]
# BINDIR is where the tree keeps its executables (node_modules/.bin, venv/bin), relative to DIR.
set -eu
dir=$1 lockfile=$2 bindir=$3 tree=$4 signature=$5 content=$6 executable=$7
shift 7
if [ ! -f "$dir/.mcpbox-install.json" ]; then
  echo "mcpbox: the install at $dir is missing; run: mcpbox update" >&2
  exit 76
fi
actual=$(sha256sum "$dir/$lockfile" | cut -d' ' -f1)
if [ "$actual" != "$tree" ]; then
  echo "mcpbox: integrity mismatch: $dir/$lockfile is not the one mcpbox installed and locked (sha256 $actual, locked $tree); refusing to run it (hint: mcpbox update reinstalls it from the registry)" >&2
  exit 76
fi
if [ "$(stat_signature "$dir")" != "$signature" ] && [ "$(content_hash "$dir")" != "$content" ]; then
  echo "mcpbox: integrity mismatch: files of the install at $dir changed since mcpbox installed them; refusing to run it (hint: mcpbox update reinstalls it from the registry)" >&2
  exit 76
fi
PATH="$dir/$bindir:$PATH"
export PATH
exec "$executable" "$@"
