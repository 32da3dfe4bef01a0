#!/usr/bin/env bash
# Installs the Debian 12 packages Coffer needs, when they are missing.
# Uses sudo only when not running as root. Safe to run repeatedly: it does nothing when
# everything is present.
set -euo pipefail

packages=(
  build-essential cmake g++ make ccache pkg-config git
  libssl-dev openssl
  libboost-dev
  nlohmann-json3-dev
  libspdlog-dev libfmt-dev
  libcli11-dev
  libsqlite3-dev
  libeigen3-dev
  liblua5.4-dev
  libcbor-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format
  curl
  # Only for `make bench`: the three-member etcd cluster that replicated writes are compared with.
  etcd-server
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
