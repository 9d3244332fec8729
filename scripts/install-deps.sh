#!/usr/bin/env bash
# Install what jupyter-containers needs: Debian packages and the Python
# package itself (editable). `--test` adds what the test suite needs.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
  esac
done

# Runtime: overlayfs tools are in the kernel; the firewall (nftables or
# iptables) for bridge networking; a C compiler builds the container monitor.
apt_runtime=(gcc libc6-dev libseccomp2 nftables iptables)
# Tests: a real registry, real image tools to compare against, Debian images
# built from packages, a browser for the JupyterLab panel.
apt_test=(docker-registry skopeo umoci crun runc podman busybox-static mmdebstrap apache2-utils chromium)

missing=()
pkgs=("${apt_runtime[@]}")
[ "$want_test" = 1 ] && pkgs+=("${apt_test[@]}")
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  # Package maintainer scripts would start services (docker-registry); the
  # tests start their own on loopback.
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    added_policy=1
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
  [ "$added_policy" = 1 ] && $SUDO rm -f "$policy"
fi

extras=""
[ "$want_test" = 1 ] && extras="[test]"
python3 -m pip install -q --disable-pip-version-check -e ".${extras}"
