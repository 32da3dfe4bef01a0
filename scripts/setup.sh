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
  # `make demo` reads the clean-room scenario index (scenario.json) with it.
  jq
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

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  sudo_cmd=(sudo)
fi

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Fallback data of the hospitals clean-room scenario (cleanroom/samples.h), used when
# ../shared/data/heart-disease is missing: the Wisconsin breast-cancer CSV shipped in Debian's
# python3-sklearn. Only the .deb is downloaded (nothing is installed) and only that one file
# is kept. A failure here leaves the rest of the setup valid.
fetch_breast_cancer() {
  local root cache csv member work
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cache="$root/build/cache/sklearn"
  csv="$cache/breast_cancer.csv"
  member="usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv"
  if [[ -s "$csv" ]]; then
    echo "setup: breast-cancer fallback present ($csv)"
    return 0
  fi
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/fetch.XXXXXX")
  # A machine whose package lists were never fetched (all packages already present) has
  # nothing to download from: fetch the lists once and try again.
  if ! (cd "$work" && apt-get download -qq python3-sklearn >/dev/null 2>&1) &&
    ! ("${sudo_cmd[@]}" apt-get update -qq && cd "$work" &&
      apt-get download -qq python3-sklearn >/dev/null 2>&1); then
    echo "setup: warning: apt-get download python3-sklearn failed; the hospitals scenario" \
      "needs ../shared/data/heart-disease" >&2
    rm -rf "$work"
    return 0
  fi
  if ! dpkg -x "$work"/python3-sklearn_*.deb "$work/root" || [[ ! -s "$work/root/$member" ]]; then
    echo "setup: warning: $member not found in python3-sklearn" >&2
    rm -rf "$work"
    return 0
  fi
  mv "$work/root/$member" "$csv"
  rm -rf "$work"
  echo "setup: breast-cancer fallback extracted to $csv"
}
fetch_breast_cancer
