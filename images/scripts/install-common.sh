# Shared by npx-install.sh and uvx-install.sh: mcpbox puts this file in front of either.
# Puts the staged install in place as FINAL: an atomic rename when FINAL doesn't exist; kept as it
# is when a concurrent install of the same tree got there first; replaced when what is there is broken.
settle() { # settle STAGE FINAL TREE LOCKFILE
  mv -T "$1" "$2" 2>/dev/null && return 0
  if [ -f "$2/.mcpbox-install.json" ] && [ "$(sha256sum "$2/$4" | cut -d' ' -f1)" = "$3" ]; then
    rm -rf "$1"
    return 0
  fi
  old=$(mktemp -d "$2.old-XXXXXX")
  rm -rf "$old"
  mv "$2" "$old" 2>/dev/null || true
  mv -T "$1" "$2" 2>/dev/null || mv "$1" "$2"
  rm -rf "$old"
}
