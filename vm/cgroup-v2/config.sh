# What `build` and `run` share (sourced, not run): where the VM's cache lives and the key that
# names it, so a `run` never boots an image made from other guest files than its own.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source it

# Bump when the guest's package list, suite or root setup in `build` changes: the debootstrap
# root is keyed by it alone (it takes minutes to make again).
VM_VERSION=bookworm-1
SUITE=bookworm
MIRROR=http://deb.debian.org/debian

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_ROOT=${LOADGEN_VM_CACHE:-$HOME/.cache/loadgen-vm}
CACHE=$CACHE_ROOT/$VM_VERSION

# The files baked into the image besides Debian's own: a change to them remakes the image (not
# the root), so the key is the version plus their hash.
image_key() {
  local sum
  sum=$(cat "$VM_DIR/config.sh" "$VM_DIR"/guest/* | sha256sum)
  echo "$VM_VERSION-${sum:0:12}"
}
