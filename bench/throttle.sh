#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Throttling that slows, never stalls: `trs process` restoring many small
# objects to an S3 sink behind bench/relay.c, which delays each direction
# by DELAY_MS and answers SHARE of the requests 503 SlowDown (S3's error,
# on the same keep-alive connection, after the same round trip), against
# the same restore with no SlowDown through the same relay (-s 0). Prints
# the medians of RUNS runs of each, interleaved, and the throughput with
# SlowDowns as a share of the throughput without them.
#
# TRS_BEFORE=PATH runs another build (e.g. the main branch's) interleaved
# with this one, so the two ratios come from the same run.
# usage: bench/throttle.sh [OBJECTS] [OBJECT_BYTES] [DELAY_MS] [SHARE] [RUNS]
#   SINK=nginx (env, default) nginx WebDAV as the S3 sink: cheap, shows the client
#   SINK=moto  (env) moto_server: full S3, slower per request
#   STANDARD=1 (env) also this build with AWS_RETRY_MODE=standard (the SDKs'
#              standard mode: the retry budget, no limit on requests in flight)
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
[ -n "${TRS:-}" ] || [ -x build/cli/trs ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
top=$PWD
objects=${1:-2000}
object_bytes=${2:-2048}
delay_ms=${3:-10}
share=${4:-0.05}
runs=${5:-5}
trs=${TRS:-$top/build/cli/trs}
before=${TRS_BEFORE:-}
sink_kind=${SINK:-nginx}

need() { command -v "$1" >/dev/null 2>&1; }
case $sink_kind in
nginx) need nginx || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null ;;
moto) need moto_server || { echo "moto_server is needed (pip/pyenv)"; exit 2; } ;;
*) echo "SINK is nginx or moto" >&2; exit 2 ;;
esac

work=$(mktemp -d /tmp/trs-throttle.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
${CC:-cc} -O2 -o "$work/relay" bench/relay.c

# The archive, built the source side's way (trs pack: objects first, manifest last).
mkdir -p "$work/in"
python3 - "$work/in" "$objects" "$object_bytes" <<'PY'
import os, random, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(7)
alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 {}:,\n"
for i in range(n):
    d = os.path.join(root, "part-%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "obj-%06d.json" % i), "wb") as f:
        f.write(bytes(rnd.choice(alphabet) for _ in range(size)))
PY
"$trs" pack "$work/in" -o "$work/a.tar.zst" --target eu-west-1:dest-a >/dev/null 2>&1
rm -rf "$work/in"

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchbenchbench AWS_DEFAULT_REGION=eu-west-1 \
	AWS_EC2_METADATA_DISABLED=true AWS_REGION=eu-west-1
unset AWS_RETRY_MODE AWS_MAX_ATTEMPTS

port=$(free_port)
case $sink_kind in
nginx)
	mkdir -p "$work/root/dest-a" "$work/tmp"
	chmod 755 "$work"
	chmod -R a+rwX "$work/root" "$work/tmp" # nginx's workers run as an unprivileged user
	nginx_webdav_conf "$work/nginx.conf" "$port" "$work/root" "$work/tmp" "$work"
	nginx -c "$work/nginx.conf" -g 'daemon off;' &
	pids+=($!)
	;;
moto)
	moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
	pids+=($!)
	;;
esac
wait_port "$port"

# Between runs: an empty bucket, and a check that the last run wrote every object.
s3py() { python3 - "$port" "$@" <<'PY'
import sys, boto3
port, what = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:%s" % port, region_name="eu-west-1")
if what == "create":
    s3.create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sys.exit(0)
n = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="dest-a"):
    keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
    n += len(keys)
    if what == "empty" and keys:
        s3.delete_objects(Bucket="dest-a", Delete={"Objects": keys, "Quiet": True})
print(n)
PY
}
[ "$sink_kind" = nginx ] || s3py create
stored() {
	case $sink_kind in
	nginx) find "$work/root/dest-a" -type f | wc -l ;;
	moto) s3py count ;;
	esac
}
reset_sink() {
	case $sink_kind in
	nginx) rm -rf "$work/root/dest-a" && mkdir -m 777 -p "$work/root/dest-a" ;;
	moto) s3py empty >/dev/null ;;
	esac
}

# Two relays to the one sink: with SlowDowns and without (same framing path).
start_relay() { # share port
	"$work/relay" -s "$1" -r 7 "$2" "$port" "$delay_ms" >"$work/relay-$1.out" 2>"$work/relay-$1.err" &
	pids+=($!)
	wait_port "$2"
}
port_clean=$(free_port)
start_relay 0 "$port_clean"
port_slow=$(free_port)
start_relay "$share" "$port_slow"

# One restore: appends "seconds throttled decreases lowest" to FILE.
run_one() { # trs file relay_port [retry mode]
	local t0 t1
	reset_sink
	t0=$(date +%s.%N)
	env ${4:+AWS_RETRY_MODE=$4} "$1" process "$work/a.tar.zst" --endpoint-url "http://127.0.0.1:$3" --region eu-west-1 --no-progress \
		--log-level error --json >"$work/last.json" 2>"$work/last-err" ||
		{ echo "FAILED: $1 through port $3" >&2; tail -5 "$work/last-err" >&2; exit 1; }
	t1=$(date +%s.%N)
	local n
	n=$(stored)
	[ "$n" -eq "$objects" ] || { echo "$1 stored $n objects of $objects" >&2; exit 1; }
	python3 - "$t0" "$t1" "$work/last.json" >>"$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[3]))["retries"]
print("%.3f %d %d %g" % (float(sys.argv[2]) - float(sys.argv[1]), r["throttled"], r["limit_decreases"],
                         r["limit_lowest"]))
PY
}

builds=(this)
[ -z "$before" ] || builds+=(before)
[ -z "${STANDARD:-}" ] || builds+=(standard)
for i in $(seq "$runs"); do
	for b in "${builds[@]}"; do
		bin=$trs mode=""
		[ "$b" != before ] || bin=$before
		[ "$b" != standard ] || mode=standard
		run_one "$bin" "$work/$b-clean.t" "$port_clean" $mode
		run_one "$bin" "$work/$b-slow.t" "$port_slow" $mode
	done
done

col() { awk -v c="$1" '{print $c}' "$2" | median; }
printf 'archive: %d objects of %d bytes; relay %s ms each way; SlowDown to %s of requests; sink %s; %d runs interleaved; %s, %s cores\n' \
	"$objects" "$object_bytes" "$delay_ms" "$share" "$sink_kind" "$runs" \
	"$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)"
printf '%-8s %22s %22s %8s %10s %10s %7s\n' build "no SlowDown s (obj/s)" "SlowDown s (obj/s)" ratio throttled decreases lowest
for b in "${builds[@]}"; do
	tc=$(col 1 "$work/$b-clean.t")
	ts=$(col 1 "$work/$b-slow.t")
	printf '%-8s %11.2f (%8.1f) %11.2f (%8.1f) %7.0f%% %10.0f %10.0f %7.0f\n' "$b" "$tc" \
		"$(echo "$objects/$tc" | bc -l)" "$ts" "$(echo "$objects/$ts" | bc -l)" "$(echo "100*$tc/$ts" | bc -l)" \
		"$(col 2 "$work/$b-slow.t")" "$(col 3 "$work/$b-slow.t")" "$(col 4 "$work/$b-slow.t")"
	printf '        runs without: %s\n        runs with:    %s\n' "$(awk '{printf "%s ", $1}' "$work/$b-clean.t")" \
		"$(awk '{printf "%s ", $1}' "$work/$b-slow.t")"
done
echo "(ratio: throughput with SlowDowns over throughput without, from the medians; throttled, decreases and"
echo " the lowest limit on requests in flight are medians of the runs with SlowDowns, from trs process --json;"
echo " standard: this build with AWS_RETRY_MODE=standard)"
