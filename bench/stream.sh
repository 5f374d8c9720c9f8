#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `trs serve` at the production workload: a stream of small archives, each
# announced by its own S3 event, S3 (s3rver) and SQS (moto) on loopback
# behind a relay that delays each direction by DELAY_MS (bench/relay.c, built
# here; RELAY=python uses bench/relay.py, the asyncio one, instead).
# Times the queue drained with --archives 1 (the named baseline: one archive
# at a time) and with --archives IN_FLIGHT, and against nginx WebDAV as a
# fast S3 sink (the client's own ceiling). Medians of RUNS runs, interleaved.
# usage: bench/stream.sh [ARCHIVES] [OBJECTS] [OBJECT_BYTES] [DELAY_MS] [RUNS]
#   IN_FLIGHT=16 (env) archives in flight for the concurrent runs
#   RELAY=python (env) the asyncio relay instead of bench/relay.c
#   TRS_BEFORE=PATH (env) another trs build run interleaved, compared in "vs before"
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps
[ -n "${TRS:-}" ] || [ -x build/cli/trs ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
trs=${TRS:-$PWD/build/cli/trs}

need() { command -v "$1" >/dev/null 2>&1; }
pkgs=""
need nginx || pkgs="$pkgs nginx-light"
need npm || pkgs="$pkgs npm" # not when Node.js ships its own: Debian's npm conflicts with it
[ -z "$pkgs" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
s3rver=${S3RVER:-/opt/trs-bench/node_modules/.bin/s3rver}
if [ ! -x "$s3rver" ]; then
	mkdir -p /opt/trs-bench
	(cd /opt/trs-bench && npm install --silent s3rver@3 >/dev/null)
fi
need moto_server || { echo "moto_server is needed (pip/pyenv)"; exit 2; }
relay=()
if [ "${RELAY:-c}" != python ]; then
	bin=$(mktemp -d "${TMPDIR:-/tmp}/trs-relay.XXXXXX")
	trap 'rm -rf "$bin"' EXIT
	${CC:-cc} -O2 -o "$bin/relay" bench/relay.c
	relay=(--relay "$bin/relay")
fi

python3 bench/stream.py --trs "$trs" --s3rver "$s3rver" --in-flight "${IN_FLIGHT:-16}" "${relay[@]}" \
	${TRS_BEFORE:+--trs-before "$TRS_BEFORE"} \
	$(need nginx && echo --nginx) "${1:-100}" "${2:-10}" "${3:-2048}" "${4:-10}" "${5:-5}"
