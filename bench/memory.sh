#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bounded memory: peak RSS of `trs process` restoring one very large object
# (random bytes, manifest last, as the source side writes it) with a small
# --max-memory, to a local directory and, when moto_server is installed, to
# S3 on loopback. Peak RSS must stay under max-memory plus a small fixed
# overhead whatever the object size.
# Then peak RSS against the object count: archives of COUNTS objects of
# 2 KiB each (manifest last), restored to a directory with the same
# --max-memory; what grows beyond the manifest's own size is per-object
# state.
# usage: [COUNTS="1000 10000 100000"] bench/memory.sh [OBJECT_MIB] [MAX_MEMORY_BYTES]
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps
[ -n "${TRS:-}" ] || [ -x build/cli/trs ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
top=$PWD
mib=${1:-600}
max=${2:-67108864}
trs=${TRS:-$top/build/cli/trs}
work=$(mktemp -d /tmp/trs-membench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/in/big"
head -c $((mib << 20)) /dev/urandom >"$work/in/big/object.bin"
"$trs" pack "$work/in" -o "$work/a.tar.zst" --target eu-west-1:bench >/dev/null 2>&1
rm -rf "$work/in"
printf 'archive: one object of %d MiB, %.1f MiB compressed; --max-memory %d (%d MiB)\n' "$mib" \
	"$(echo "$(stat -c %s "$work/a.tar.zst")/1048576" | bc -l)" "$max" $((max >> 20))

rss() { # command... -> prints peak RSS in KiB, fails if the command fails
	/usr/bin/time -o "$work/rss" -f %M "$@" >/dev/null 2>"$work/err" || { tail -5 "$work/err" >&2; return 1; }
	cat "$work/rss"
}
fs=$(rss "$trs" process "$work/a.tar.zst" --dest "file://$work/out" --region eu-west-1 --no-progress --max-memory "$max")
[ "$(stat -c %s "$work/out/bench/big/object.bin")" -eq $((mib << 20)) ] || { echo "restored size differs" >&2; exit 1; }
rm -rf "$work/out"
printf 'to a local directory   peak RSS %6d KiB (%.0f MiB)\n' "$fs" "$(echo "$fs/1024" | bc -l)"

for n in ${COUNTS:-1000 10000 100000}; do
	rm -rf "$work/many" "$work/many-out"
	python3 bench/many_objects.py "$work/many" "$n"
	"$trs" pack "$work/many" -o "$work/many.tar.zst" --target eu-west-1:bench >/dev/null 2>&1
	rm -rf "$work/many"
	man=$(zstd -dc "$work/many.tar.zst" | tar -xO manifest.json | wc -c)
	r=$(rss "$trs" process "$work/many.tar.zst" --dest "file://$work/many-out" --region eu-west-1 --no-progress \
		--max-memory "$max")
	[ "$(find "$work/many-out" -type f | wc -l)" -eq "$n" ] || { echo "restored count differs" >&2; exit 1; }
	rm -rf "$work/many-out"
	if [ -z "${n0:-}" ]; then
		n0=$n r0=$r man0=$man
		printf '%6d objects of 2 KiB  manifest %5.1f MiB  peak RSS %6d KiB (%.0f MiB)\n' \
			"$n" "$(echo "$man/1048576" | bc -l)" "$r" "$(echo "$r/1024" | bc -l)"
	else
		# Since the smallest count: what peak RSS grew per object, and what the manifest's JSON did.
		printf '%6d objects of 2 KiB  manifest %5.1f MiB  peak RSS %6d KiB (%.0f MiB)  +%.0f B/object (manifest +%.0f)\n' \
			"$n" "$(echo "$man/1048576" | bc -l)" "$r" "$(echo "$r/1024" | bc -l)" \
			"$(echo "($r - $r0)*1024/($n - $n0)" | bc -l)" "$(echo "($man - $man0)/($n - $n0)" | bc -l)"
	fi
done

if command -v moto_server >/dev/null && command -v aws >/dev/null; then
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
		sleep 0.1
	done
	export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=eu-west-1 AWS_REGION=eu-west-1
	aws --endpoint-url "http://127.0.0.1:$port" s3 mb s3://bench --region eu-west-1 >/dev/null
	s3=$(rss "$trs" process "$work/a.tar.zst" --endpoint-url "http://127.0.0.1:$port" --region eu-west-1 --no-progress \
		--max-memory "$max")
	printf 'to S3 (moto)           peak RSS %6d KiB (%.0f MiB)\n' "$s3" "$(echo "$s3/1024" | bc -l)"
else
	echo "to S3: skipped (moto_server and awscli are not installed)"
fi
