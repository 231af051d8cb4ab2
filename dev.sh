#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   ./dev.sh sample   install what is missing, build, run the sample GoogleTest suite on sample_resources/
#   ./dev.sh test     install what is missing, build with -Werror, run every test
#   ./dev.sh deps     only install the build and test dependencies
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DIR=${BUILD_DIR:-build}
PACKAGES=(build-essential cmake ninja-build git python3 pkg-config
  libgtest-dev nlohmann-json3-dev libcurl4-openssl-dev libboost-dev libboost-regex-dev
  libcli11-dev libcpp-httplib-dev libbenchmark-dev etcd-server
  clang clang-format libclang-rt-14-dev python3-junitparser python3-prometheus-client chromium
  openssl)

install_deps() {
  local missing=()
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "dev.sh: installing ${missing[*]}" >&2
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
}

configure_and_build() {
  # -g1: line tables keep file:line in backtraces and sanitizer reports; full debug info (-g)
  # makes the build a third slower. Configure a Debug build of your own for gdb sessions.
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCKABLE_WERROR=ON \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "$@"
  cmake --build "$BUILD_DIR" -j "$(nproc)"
}

case "${1:-}" in
  deps) install_deps ;;
  sample)
    install_deps
    configure_and_build
    cmake --build "$BUILD_DIR" --target run_sample
    ;;
  test)
    install_deps
    configure_and_build
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
    ;;
  *)
    echo "usage: ./dev.sh sample|test|deps" >&2
    exit 2
    ;;
esac
