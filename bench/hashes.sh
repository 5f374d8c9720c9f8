#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Throughput of the checksums a restore can compute over its bodies, on
# this machine: SHA-256 and MD5 (OpenSSL), CRC-32 (zlib, ISA-L), CRC-32C
# (ISA-L). Medians of RUNS runs, interleaved. What chose ISA-L's CRC-32 for
# multipart parts over https (docs/performance.md, "Parts over TLS").
# usage: bench/hashes.sh [RUNS]
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps --build
dpkg -s zlib1g-dev >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zlib1g-dev >/dev/null
out=$(mktemp -d /tmp/trs-hashes.XXXXXX)
trap 'rm -rf "$out"' EXIT
${CC:-cc} -O2 -o "$out/hashes" bench/hashes.c $(pkg-config --cflags --libs libcrypto zlib libisal)
"$out/hashes" "${1:-5}"
