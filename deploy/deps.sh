#!/bin/sh
# deps.sh: installs what dealflow needs to build and test, from Debian 12's packages.
set -eu
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config clang libclang-rt-14-dev \
    libuv1-dev libzmq3-dev liblmdb-dev libmsgpack-dev libjansson-dev libsodium-dev \
    libsystemd-dev systemd \
    libmicrohttpd-dev libcurl4-openssl-dev python3-prometheus-client \
    lmdb-utils python3 python3-zmq python3-msgpack >/dev/null
