#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One large archive through `trs serve --archives N`: does one archive alone
# get the whole budget (memory and writers) rather than 1/N of it?
#
# One archive of OBJECTS objects of OBJECT_KIB KiB (base64 of random bytes,
# so zstd has work), announced by one message on a dir:// queue, read from a
# file:// staging directory, restored to an S3 endpoint on 127.0.0.1:
#   nginx - Debian's nginx with WebDAV (PUT /bucket/key as files): objects
#           below the multipart threshold (16 MiB), single PUTs;
#   moto  - moto_server (S3 in memory, multipart): any object size.
# The time is the archive's own (`seconds` of its "archive restored" line);
# peak RSS from /usr/bin/time. Two binaries run interleaved in the same run:
# BASE (the named baseline, e.g. a build of the previous commit) and TRS.
# Every object's size is checked. DELAY_MS (env) puts bench/relay.py in front
# of the sink, delaying each direction by that much (a round trip of 2x, as to
# S3 in region): then what counts is how many requests are in flight.
# usage: BASE=/path/to/old/trs bench/serve_large.sh [OBJECTS] [OBJECT_KIB] [RUNS] [SINK] [ARCHIVES]
#   e.g. bench/serve_large.sh 64 8192 3 nginx 16;  bench/serve_large.sh 1 524288 3 moto 16
#        DELAY_MS=10 bench/serve_large.sh 2048 64 3 nginx 16
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
[ -n "${TRS:-}" ] || [ -x build/cli/trs ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
trs=${TRS:-$PWD/build/cli/trs}
base=${BASE:-}
objects=${1:-64}
object_kib=${2:-8192}
runs=${3:-3}
sink=${4:-nginx}
archives=${5:-16}

work=$(mktemp -d /tmp/trs-serve-large.XXXXXX)
root=$(mktemp -d /dev/shm/trs-serve-large.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work" "$root"
}
trap cleanup EXIT

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchbenchbench AWS_REGION=eu-west-1 \
	AWS_DEFAULT_REGION=eu-west-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_PROFILE 2>/dev/null || true

# The archive, the source side's way (trs pack: objects first, manifest last).
mkdir -p "$work/in" "$work/staging/staging" "$work/queue"
for i in $(seq "$objects"); do
	head -c $((object_kib * 768)) /dev/urandom | base64 -w0 >"$work/in/obj-$i.bin"
done
"$trs" pack "$work/in" -o "$work/a.tar.zst" --target eu-west-1:dest-a >/dev/null 2>&1
rm -rf "$work/in"
object_bytes=$((object_kib * 1024))

port=$(free_port)
case $sink in
nginx)
	mkdir -p "$root/www/dest-a" "$root/tmp"
	chmod 755 "$work" "$root"
	chmod -R a+rwX "$root/www" "$root/tmp"
	nginx_webdav_conf "$work/nginx.conf" "$port" "$root/www" "$root/tmp" "$work"
	nginx -c "$work/nginx.conf" -g 'daemon off;' &
	pids+=($!)
	;;
moto)
	moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	pids+=($!)
	;;
*) echo "SINK is nginx or moto" >&2; exit 2 ;;
esac
wait_port "$port"
endpoint=http://127.0.0.1:$port
if [ -n "${DELAY_MS:-}" ]; then
	relay_port=$(free_port)
	python3 bench/relay.py "$relay_port" "$port" "$DELAY_MS" >/dev/null &
	pids+=($!)
	wait_port "$relay_port"
	endpoint=http://127.0.0.1:$relay_port
fi

reset_sink() {
	if [ "$sink" = nginx ]; then
		rm -rf "$root/www/dest-a" && mkdir -m 777 -p "$root/www/dest-a"
	else
		python3 - "$endpoint" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
try:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="dest-a").get("Contents", [])]
    for k in keys:
        s3.delete_object(Bucket="dest-a", Key=k)
except s3.exceptions.NoSuchBucket:
    s3.create_bucket(Bucket="dest-a")
PY
	fi
}

check_sink() { # every object there, at its size
	if [ "$sink" = nginx ]; then
		local n
		n=$(find "$root/www/dest-a" -type f -size "${object_bytes}c" | wc -l)
		[ "$n" -eq "$objects" ] || { echo "only $n of $objects objects written" >&2; return 1; }
	else
		python3 - "$endpoint" "$objects" "$object_bytes" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
got = [o for o in s3.list_objects_v2(Bucket="dest-a").get("Contents", []) if o["Size"] == int(sys.argv[3])]
if len(got) != int(sys.argv[2]):
    sys.exit("only %d of %s objects written" % (len(got), sys.argv[2]))
PY
	fi
}

# One run of binary $1: prints "<archive seconds> <peak RSS KiB>".
run_once() {
	reset_sink
	ln "$work/a.tar.zst" "$work/staging/staging/a.tar.zst"
	printf '{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"staging"},"object":{"key":"a.tar.zst"}}}]}' \
		>"$work/queue/.m" && mv "$work/queue/.m" "$work/queue/m.json"
	/usr/bin/time -f %M -o "$work/rss" "$1" serve --queue "dir://$work/queue" --staging "file://$work/staging" \
		--endpoint-url "$endpoint" --archives "$archives" --max-idle 1 --poll-interval 0 --metrics none \
		--log-format json 2>"$work/log" || { tail -5 "$work/log" >&2; return 1; }
	check_sink
	local secs
	secs=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("message") == "archive restored":
        print(r["seconds"])
' "$work/log")
	[ -n "$secs" ] || { echo "no archive restored" >&2; tail -5 "$work/log" >&2; return 1; }
	echo "$secs $(cat "$work/rss")"
}

configs="new"
[ -z "$base" ] || configs="base new"
for r in $(seq "$runs"); do
	for c in $configs; do
		bin=$trs
		[ "$c" = new ] || bin=$base
		out=$(run_once "$bin")
		echo "$out" >>"$work/$c.times"
		echo "run $r $c: ${out% *} s, peak RSS ${out#* } KiB"
	done
done
echo
echo "one archive, $objects x $object_kib KiB, to $sink${DELAY_MS:+ behind a relay of $DELAY_MS ms each way}, trs serve --archives $archives, median of $runs runs:"
for c in $configs; do
	t=$(cut -d' ' -f1 "$work/$c.times" | median)
	m=$(cut -d' ' -f2 "$work/$c.times" | median)
	mibs=$(echo "$objects * $object_kib / 1024 / $t" | bc -l)
	printf '%-5s %8.2f s %8.1f MiB/s  peak RSS %6d MiB\n' "$c" "$t" "$mibs" $((${m%.*} / 1024))
	echo "$t" >"$work/$c.median"
done
if [ -n "$base" ]; then
	printf 'new / base: %.2fx the throughput\n' "$(echo "$(cat "$work/base.median") / $(cat "$work/new.median")" | bc -l)"
fi
