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
#   TLS=1 (env) https endpoints, as production: nginx terminates TLS in front
#                of s3rver, moto and the nginx sink, with a throwaway CA's
#                certificate (bench/common.sh, tls_cert) that trs trusts
#                through AWS_CA_BUNDLE; TLS=both: http and https interleaved
#                run by run (the "TLS/plain" column); TLS=0 (default) http
#   CONNECT_RTTS=1 (env) round trips bench/relay.c charges each new
#                connection before its first bytes (TCP's handshake; TLS's
#                own round trips are charged by the delay)
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
scripts/install-deps
[ -n "${TRS:-}" ] || [ -x build/cli/trs ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
trs=${TRS:-$PWD/build/cli/trs}
case ${TLS:-0} in
0) tls=http ;;
1) tls=https ;;
both) tls=both ;;
*) echo "TLS is 0, 1 or both" >&2; exit 2 ;;
esac

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
[ "$tls" = http ] || need nginx || { echo "TLS=$TLS needs nginx" >&2; exit 2; }
bin=$(mktemp -d "${TMPDIR:-/tmp}/trs-relay.XXXXXX")
trap 'rm -rf "$bin"' EXIT
relay=()
if [ "${RELAY:-c}" != python ]; then
	${CC:-cc} -O2 -o "$bin/relay" bench/relay.c
	relay=(--relay "$bin/relay" --connect-rtts "${CONNECT_RTTS:-1}")
fi
tls_args=(--tls "$tls")
if [ "$tls" != http ]; then
	chmod 755 "$bin" # nginx's master reads the certificates
	tls_cert "$bin"
	tls_args+=(--tls-dir "$bin")
fi

python3 bench/stream.py --trs "$trs" --s3rver "$s3rver" --in-flight "${IN_FLIGHT:-16}" "${relay[@]}" "${tls_args[@]}" \
	${TRS_BEFORE:+--trs-before "$TRS_BEFORE"} \
	$(need nginx && echo --nginx) "${1:-100}" "${2:-10}" "${3:-2048}" "${4:-10}" "${5:-5}"
