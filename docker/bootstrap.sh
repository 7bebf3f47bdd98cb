#!/usr/bin/env bash
# Installs what deckhand needs on Debian 12 and builds it into ./build.
# Idempotent; run as root. Used by the README's two commands, by .ci/run and
# by the Dockerfiles.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libcaf-dev cppzmq-dev libzmq3-dev libmsgpack-cxx-dev libboost-test-dev
  libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libcli11-dev
  libcurl4-openssl-dev libarchive-dev libssl-dev libcpp-httplib-dev
  runc busybox-static iproute2 nftables iptables conntrack skopeo umoci docker-registry libcrypt-dev
  clang libclang-rt-14-dev procps psmisc util-linux openssl
)
# kubectl (for its tests) is not a Debian package; .ci/run says how CI treats
# a machine without it.
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${DECKHAND_CMAKE_ARGS:-}
ninja -C build -j"${DECKHAND_JOBS:-2}"
