#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Local restore benchmark: `trs process --dest file://` against `zstd -dc | tar -x`
# on the same archive, medians of N runs each, interleaved, in one run.
# `trs process --verify size` (sizes and zstd's frame checksum, no MD5) runs
# beside them. Then the same for an archive of MANY objects of 2 KiB
# (100,000 by default, 0 skips it; manifest last, --max-memory 64M), with
# trs's peak RSS; then (FIRST=0 skips it) the same objects with the manifest
# first, beside tar again.
# usage: [FS=tmp|loop|shm] [SETTLE=SECONDS] [MANY=N] [FIRST=0|1] bench/local.sh [SMALL_OBJECTS] [LARGE_MIB] [RUNS]
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps
[ -n "${TRS:-}" ] || [ -x build/cli/trs ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
small=${1:-4000}
large_mib=${2:-24}
runs=${3:-5}
trs=${TRS:-build/cli/trs}
# FS=shm: run in /dev/shm (tmpfs), where writing costs only CPU: this shows
# what each tool spends on its own work.
work=$(mktemp -d "$([ "${FS:-tmp}" = shm ] && echo /dev/shm || echo /tmp)/trs-bench.XXXXXX")
# FS=loop: run on a new ext4 filesystem (with a journal, as most servers
# have) in a loop device, so that nothing done on this disk before the run
# can slow either tool (needs root). Default: the disk under /tmp as it is.
img=
if [ "${FS:-tmp}" = loop ]; then
	img=$work.img
	truncate -s $(((runs * 3 + 4) * 320 + (runs * 3 + 2) * 700))M "$img"
	mkfs.ext4 -q "$img"
	mount -o loop "$img" "$work"
fi
cleanup() {
	if [ -n "$img" ]; then
		umount "$work"
		rm -f "$img"
	fi
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/in/small" "$work/in/large"
python3 - "$work/in" "$small" "$large_mib" <<'PY'
import os, random, sys
root, small, large_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(42)
words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz ") for _ in range(8)) for _ in range(512)]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += rnd.choice(words)
    return bytes(out[:n])
for i in range(small):
    with open(f"{root}/small/obj-{i:06d}.json", "wb") as f:
        f.write(text(rnd.randint(1024, 40 * 1024)))
for i in range(6):  # large objects incompressible, like media or already compressed data
    with open(f"{root}/large/blob-{i}.bin", "wb") as f:
        f.write(rnd.randbytes(large_mib << 20))
PY
"$trs" pack "$work/in" -o "$work/a.tar.zst" --target eu-west-1:bench >/dev/null 2>&1
size=$(stat -c %s "$work/a.tar.zst")
tar_bytes=$(zstd -dc "$work/a.tar.zst" | wc -c)
sleep "${SETTLE:-0}"

time_cmd() { # prints seconds
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: >"$work/trs.txt"
: >"$work/size.txt"
: >"$work/tar.txt"
# Every run restores into a new directory and nothing is deleted until the
# end. This disk's ext4 has no journal, and without one ext4 will not reuse
# an inode freed in the last 60 to 360 seconds: every file created after a
# large delete first walks past thousands of such inodes (perf shows
# find_get_block_common and recently_deleted). Deleting the last run's
# output before each run made whichever tool came next pay for it, several
# times over. A restore on a machine that has not just deleted tens of
# thousands of files never pays it, so the benchmark does not either. For
# the same reason, run it at least six minutes after any large delete on
# this disk (such as the end of the last benchmark or test run), or set
# SETTLE=SECONDS to wait that long after building the archive.
for i in $(seq "$runs"); do
	sync
	time_cmd "$trs" process "$work/a.tar.zst" --dest "file://$work/out-trs-$i" --region eu-west-1 --no-progress >>"$work/trs.txt"
	sync
	time_cmd "$trs" process "$work/a.tar.zst" --dest "file://$work/out-size-$i" --region eu-west-1 --no-progress \
		--verify size >>"$work/size.txt"
	mkdir -p "$work/out-tar-$i"
	sync
	time_cmd sh -c "zstd -dc '$work/a.tar.zst' | tar -x -C '$work/out-tar-$i'" >>"$work/tar.txt"
done
t_trs=$(median <"$work/trs.txt")
t_size=$(median <"$work/size.txt")
t_tar=$(median <"$work/tar.txt")
/usr/bin/time -o "$work/rss.txt" -f '%M' "$trs" process "$work/a.tar.zst" --dest "file://$work/out-rss" \
	--region eu-west-1 --no-progress >/dev/null 2>&1 || true
rss=$(tail -1 "$work/rss.txt")
printf 'filesystem: %s\n' "$(df -T "$work" | awk 'NR==2 {print $2, "on", $1}')"
printf 'archive: %d small + 6 x %d MiB objects, %.1f MiB compressed, %.1f MiB tar\n' "$small" "$large_mib" \
	"$(echo "$size/1048576" | bc -l)" "$(echo "$tar_bytes/1048576" | bc -l)"
printf 'trs process --dest file://   median %.3f s  (%s)\n' "$t_trs" "$(tr '\n' ' ' <"$work/trs.txt")"
printf 'zstd -dc | tar -x            median %.3f s  (%s)\n' "$t_tar" "$(tr '\n' ' ' <"$work/tar.txt")"
printf 'trs --verify size            median %.3f s  (%s)\n' "$t_size" "$(tr '\n' ' ' <"$work/size.txt")"
printf 'ratio trs/tar                %.2f\n' "$(echo "$t_trs/$t_tar" | bc -l)"
printf 'ratio trs --verify size/tar  %.2f\n' "$(echo "$t_size/$t_tar" | bc -l)"
printf 'trs peak RSS                 %s KiB\n' "$rss"

many=${MANY:-100000}
[ "$many" -gt 0 ] || exit 0
rm -rf "$work"/out-* "$work/in"
python3 bench/many_objects.py "$work/many" "$many"
"$trs" pack "$work/many" -o "$work/m.tar.zst" --target eu-west-1:bench >/dev/null 2>&1
[ "${FIRST:-1}" = 0 ] || "$trs" pack "$work/many" -o "$work/f.tar.zst" --target eu-west-1:bench --manifest-first >/dev/null 2>&1
rm -rf "$work/many"
sleep "${SETTLE:-0}"
: >"$work/mtrs.txt"
: >"$work/msize.txt"
: >"$work/mtar.txt"
for i in $(seq "$runs"); do
	sync
	time_cmd "$trs" process "$work/m.tar.zst" --dest "file://$work/mout-trs-$i" --region eu-west-1 --no-progress \
		--max-memory 64M >>"$work/mtrs.txt"
	sync
	time_cmd "$trs" process "$work/m.tar.zst" --dest "file://$work/mout-size-$i" --region eu-west-1 --no-progress \
		--max-memory 64M --verify size >>"$work/msize.txt"
	mkdir -p "$work/mout-tar-$i"
	sync
	time_cmd sh -c "zstd -dc '$work/m.tar.zst' | tar -x -C '$work/mout-tar-$i'" >>"$work/mtar.txt"
done
/usr/bin/time -o "$work/rss.txt" -f '%M' "$trs" process "$work/m.tar.zst" --dest "file://$work/mout-rss" \
	--region eu-west-1 --no-progress --max-memory 64M >/dev/null 2>&1 || true
[ "$(find "$work/mout-rss" -type f | wc -l)" -eq "$many" ] || { echo "restored count differs" >&2; exit 1; }
t_trs=$(median <"$work/mtrs.txt")
t_size=$(median <"$work/msize.txt")
t_tar=$(median <"$work/mtar.txt")
printf 'archive: %d x 2 KiB objects, manifest last (%.1f MiB), %.1f MiB compressed; --max-memory 64M\n' "$many" \
	"$(echo "$(zstd -dc "$work/m.tar.zst" | tar -xO manifest.json | wc -c)/1048576" | bc -l)" \
	"$(echo "$(stat -c %s "$work/m.tar.zst")/1048576" | bc -l)"
printf 'trs process --dest file://   median %.3f s  (%s)\n' "$t_trs" "$(tr '\n' ' ' <"$work/mtrs.txt")"
printf 'trs --verify size            median %.3f s  (%s)\n' "$t_size" "$(tr '\n' ' ' <"$work/msize.txt")"
printf 'zstd -dc | tar -x            median %.3f s  (%s)\n' "$t_tar" "$(tr '\n' ' ' <"$work/mtar.txt")"
printf 'ratio trs/tar                %.2f\n' "$(echo "$t_trs/$t_tar" | bc -l)"
printf 'ratio trs --verify size/tar  %.2f\n' "$(echo "$t_size/$t_tar" | bc -l)"
printf 'trs peak RSS                 %s KiB\n' "$(tail -1 "$work/rss.txt")"

[ "${FIRST:-1}" = 0 ] && exit 0
# The same objects, manifest first: no staging or spool, each object created at its key at once.
# tmpfs holds every restore in memory; on a disk nothing is deleted (see above).
[ "${FS:-tmp}" != shm ] || rm -rf "$work"/mout-*
: >"$work/ftrs.txt"
: >"$work/ftar.txt"
for i in $(seq "$runs"); do
	sync
	time_cmd "$trs" process "$work/f.tar.zst" --dest "file://$work/fout-trs-$i" --region eu-west-1 --no-progress \
		--max-memory 64M >>"$work/ftrs.txt"
	mkdir -p "$work/fout-tar-$i"
	sync
	time_cmd sh -c "zstd -dc '$work/f.tar.zst' | tar -x -C '$work/fout-tar-$i'" >>"$work/ftar.txt"
done
[ "$(find "$work/fout-trs-1" -type f | wc -l)" -eq "$many" ] || { echo "restored count differs (manifest first)" >&2; exit 1; }
t_trs=$(median <"$work/ftrs.txt")
t_tar=$(median <"$work/ftar.txt")
printf 'archive: the same %d objects, manifest first; --max-memory 64M\n' "$many"
printf 'trs process --dest file://   median %.3f s  (%s)\n' "$t_trs" "$(tr '\n' ' ' <"$work/ftrs.txt")"
printf 'zstd -dc | tar -x            median %.3f s  (%s)\n' "$t_tar" "$(tr '\n' ' ' <"$work/ftar.txt")"
printf 'ratio trs/tar                %.2f\n' "$(echo "$t_trs/$t_tar" | bc -l)"
