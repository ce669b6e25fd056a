# Starts an installed server directly: no resolution, no registry. First checks that the install is
# the one its lock describes (the hash of its package-lock.json or requirements.txt).
# Run by mcpbox as:
#   sh -c "$(cat launch.sh)" mcpbox-launch DIR LOCKFILE TREE EXECUTABLE [ARG...]
set -eu
dir=$1 lockfile=$2 tree=$3 executable=$4
shift 4
if [ ! -f "$dir/.mcpbox-install.json" ]; then
  echo "mcpbox: the install at $dir is missing; run: mcpbox update" >&2
  exit 76
fi
actual=$(sha256sum "$dir/$lockfile" | cut -d' ' -f1)
if [ "$actual" != "$tree" ]; then
  echo "mcpbox: integrity mismatch: $dir/$lockfile is not the one mcpbox installed and locked (sha256 $actual, locked $tree); refusing to run it (hint: mcpbox update reinstalls it from the registry)" >&2
  exit 76
fi
case "$lockfile" in
  package-lock.json) PATH="$dir/node_modules/.bin:$PATH" ;;
  *) PATH="$dir/venv/bin:$PATH" ;;
esac
export PATH
exec "$executable" "$@"
