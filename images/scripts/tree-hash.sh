# Shared by the install scripts and launch.sh: two fingerprints of an installed tree, taken inside
# it (paths relative, so they survive the move into place).
#   stat_signature: every entry's path, type, size, inode, change and modification times, mode and
#     link target. No file is read: ~20 ms for 4,500 files. ctime can't be set back by a process
#     without root, so any change to a file shows here.
#   content_hash: every regular file's sha256 and every symlink's target. The slow, exact check,
#     used when the signature differs (a volume copied or restored keeps content, not inodes).
stat_signature() { # DIR
  (cd "$1" && find . -mindepth 1 -printf '%p %y %s %i %C@ %T@ %m %l\n' 2>/dev/null) | sha256sum | cut -c1-64
}
content_hash() { # DIR
  (
    cd "$1" &&
      find . -mindepth 1 -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum &&
      find . -mindepth 1 -type l | LC_ALL=C sort | while IFS= read -r l; do printf '%s -> %s\n' "$l" "$(readlink "$l")"; done
  ) | sha256sum | cut -c1-64
}
