#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# S3 restore benchmark on loopback: `trs process` to an S3 endpoint against
# what a user would otherwise run: unpack with `zstd -dc | tar -x`, then
# upload the directory with `aws s3 cp --recursive` (the plain way) or
# `rclone copy --transfers 32` (the fast way). Medians of RUNS runs each,
# interleaved, in one run, against two servers started here on 127.0.0.1:
#   nginx  - Debian's nginx with WebDAV storing PUT /bucket/key as files: a
#            fast sink that shows what the clients can do;
#   s3rver - npm's s3rver, full S3 semantics but slow per request.
#
# With `cpu` first: CPU seconds (user + system) per GiB restored by trs to
# the nginx sink, objects of 1 to 8 MiB sent as single PUTs, side by side:
# the default (S3 checks Content-MD5, no local hash) and --verify-local (the
# pipeline hashes every body first, as before). Medians of RUNS, interleaved.
# usage: bench/s3.sh [OBJECTS] [OBJECT_BYTES] [RUNS] [AWS_RUNS]
#        bench/s3.sh cpu [MIB] [RUNS]
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
scripts/install-deps
[ -n "${TRS:-}" ] || [ -x build/cli/trs ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
top=$PWD
mode=wall
if [ "${1:-}" = cpu ]; then
	mode=cpu
	shift
	cpu_mib=${1:-1024}
	set -- 0 0 "${2:-5}"
fi
objects=${1:-20000}
object_bytes=${2:-2048}
runs=${3:-5}
aws_runs=${4:-$runs}
trs=${TRS:-$top/build/cli/trs}
servers=${SERVERS:-"nginx s3rver"}

need() { command -v "$1" >/dev/null 2>&1; }
# Only what is missing: a machine whose Node.js ships its own npm refuses
# Debian's npm package (it conflicts with that nodejs).
pkgs=""
need nginx || pkgs="$pkgs nginx-light"
if [ "$mode" = wall ]; then
	need rclone || pkgs="$pkgs rclone"
	need npm || pkgs="$pkgs npm"
fi
[ -z "$pkgs" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
s3rver=${S3RVER:-/opt/trs-bench/node_modules/.bin/s3rver}
if [ "$mode" = wall ] && [ ! -x "$s3rver" ]; then
	mkdir -p /opt/trs-bench
	(cd /opt/trs-bench && npm install --silent s3rver@3 >/dev/null)
fi
[ "$mode" = cpu ] || need aws || { echo "awscli is needed (pip/pyenv)"; exit 2; }

work=$(mktemp -d /tmp/trs-s3bench.XXXXXX)
# The sink's files live in memory when /dev/shm can take them: deleting and
# re-creating 20,000 files per run sends ext4 into slow inode allocation,
# and then the benchmark times the disk instead of the clients. The unpack
# of the two baselines stays on disk, where a user would unpack.
sink=${SINK_DIR:-/dev/shm}
if [ -d "$sink" ] && [ -w "$sink" ]; then sink=$(mktemp -d "$sink/trs-s3bench.XXXXXX"); else sink=$work; fi
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work" "$sink"
}
trap cleanup EXIT


# The archive, built the source side's way (trs pack: PAX, objects first, manifest last).
mkdir -p "$work/in"
[ "$mode" = cpu ] || python3 - "$work/in" "$objects" "$object_bytes" <<'PY'
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
[ "$mode" = cpu ] || "$trs" pack "$work/in" -o "$work/a.tar.zst" --target eu-west-1:dest-a >/dev/null 2>&1
rm -rf "$work/in"

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchbenchbench AWS_DEFAULT_REGION=eu-west-1 \
	AWS_EC2_METADATA_DISABLED=true AWS_REGION=eu-west-1

start_nginx() {
	local port=$1 root=$sink/nginx-root
	mkdir -p "$root/dest-a" "$sink/nginx-tmp"
	chmod 755 "$work" "$sink"
	chmod -R a+rwX "$root" "$sink/nginx-tmp" # nginx's workers run as an unprivileged user
	nginx_webdav_conf "$work/nginx.conf" "$port" "$root" "$sink/nginx-tmp" "$work"
	nginx -c "$work/nginx.conf" -g 'daemon off;' &
	pids+=($!)
}

start_s3rver() {
	local port=$1
	mkdir -p "$sink/s3rver"
	"$s3rver" -d "$sink/s3rver" -a 127.0.0.1 -p "$port" --silent --configure-bucket dest-a >/dev/null 2>&1 &
	pids+=($!)
}


secs() { # run a command, print its wall seconds
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>"$work/last-err" || { echo "FAILED: $*" >&2; tail -5 "$work/last-err" >&2; return 1; }
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

reset_sink() { # empty the bucket between runs
	case $1 in
	nginx) rm -rf "$sink/nginx-root/dest-a" && mkdir -m 777 -p "$sink/nginx-root/dest-a" ;;
	s3rver) rm -rf "$sink/s3rver/dest-a" && mkdir -p "$sink/s3rver" && kill "${pids[-1]}" && wait "${pids[-1]}" 2>/dev/null || true
		unset 'pids[-1]'; start_s3rver "$2"; wait_port "$2" ;;
	esac
}

# Each unpack goes to a new directory, deleted only at the end (see bench/local.sh).
n_unpack=0
unpack() {
	n_unpack=$((n_unpack + 1))
	out=$work/out-$n_unpack
	mkdir -p "$out" && zstd -dc "$work/a.tar.zst" | tar -x -C "$out"
}
run_trs() { "$trs" process "$work/a.tar.zst" --endpoint-url "$1" --region eu-west-1 --no-progress --log-level error; }
upload_secs() { # time the upload step alone into file $1
	local t0 file=$1
	shift
	t0=$(date +%s.%N)
	"$@" || return 1
	echo "$(date +%s.%N) - $t0" | bc -l >>"$file"
}
run_aws() { unpack && upload_secs "$work/aws-up.t" aws s3 cp --recursive --only-show-errors "$out/objects" s3://dest-a/ --endpoint-url "$1"; }
run_rclone() {
	unpack && upload_secs "$work/rclone-up.t" env -u AWS_CA_BUNDLE RCLONE_CONFIG_SINK_TYPE=s3 RCLONE_CONFIG_SINK_PROVIDER=Other RCLONE_CONFIG_SINK_ENDPOINT=$1 \
		RCLONE_CONFIG_SINK_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_SINK_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
		rclone copy "$out/objects" sink:dest-a --transfers 32 --no-check-dest --s3-no-check-bucket --s3-no-head
}

if [ "$mode" = cpu ]; then
	# Objects of 1 to 8 MiB (below the 16 MiB multipart threshold: single PUTs), random bytes.
	mkdir -p "$work/in"
	python3 - "$work/in" "$cpu_mib" <<'PY'
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2]) << 20
rnd = random.Random(11)
i = done = 0
while done < total:
    n = min(rnd.randint(1 << 20, 8 << 20), total - done)
    with open(os.path.join(root, "obj-%04d.bin" % i), "wb") as f:
        f.write(rnd.randbytes(n))
    done += n
    i += 1
PY
	n=$(ls "$work/in" | wc -l)
	"$trs" pack "$work/in" -o "$work/a.tar.zst" --target eu-west-1:dest-a --level 1 >/dev/null 2>&1
	rm -rf "$work/in"
	port=$(free_port)
	start_nginx "$port"
	wait_port "$port"
	url=http://127.0.0.1:$port
	cpu_secs() { # user + system seconds of one restore
		/usr/bin/time -o "$work/cpu" -f '%U %S' "$trs" process "$work/a.tar.zst" --endpoint-url "$url" --region eu-west-1 \
			--no-progress --log-level error "$@" >/dev/null 2>"$work/last-err" || { tail -5 "$work/last-err" >&2; return 1; }
		awk '{print $1 + $2}' "$work/cpu"
	}
	: >"$work/server.t"; : >"$work/local.t"
	for i in $(seq "$runs"); do
		reset_sink nginx "$port"; cpu_secs >>"$work/server.t"
		reset_sink nginx "$port"; cpu_secs --verify-local >>"$work/local.t"
	done
	gib=$(echo "$cpu_mib/1024" | bc -l)
	c_srv=$(median <"$work/server.t"); c_loc=$(median <"$work/local.t")
	printf 'archive: %d objects of 1 to 8 MiB, %d MiB; %d runs; %s, %s cores (shared)\n' "$n" "$cpu_mib" "$runs" \
		"$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)"
	printf 'trs process, MD5 left to the server  median %6.2f CPU s/GiB  (%s)\n' "$(echo "$c_srv/$gib" | bc -l)" \
		"$(tr '\n' ' ' <"$work/server.t")"
	printf 'trs process --verify-local           median %6.2f CPU s/GiB  (%s)\n' "$(echo "$c_loc/$gib" | bc -l)" \
		"$(tr '\n' ' ' <"$work/local.t")"
	printf 'ratio default / --verify-local       %.2f\n' "$(echo "$c_srv/$c_loc" | bc -l)"
	exit 0
fi

printf 'archive: %d objects of %d bytes, %.1f MiB compressed; %d runs (awscli %d); %s, %s cores\n' "$objects" \
	"$object_bytes" "$(echo "$(stat -c %s "$work/a.tar.zst")/1048576" | bc -l)" "$runs" "$aws_runs" \
	"$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)"
for server in $servers; do
	port=$(free_port)
	case $server in
	nginx) start_nginx "$port" ;;
	s3rver) start_s3rver "$port"
		export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER ;; # s3rver checks its default key
	esac
	wait_port "$port"
	url=http://127.0.0.1:$port
	: >"$work/trs.t"; : >"$work/aws.t"; : >"$work/rclone.t"; : >"$work/aws-up.t"; : >"$work/rclone-up.t"
	for i in $(seq "$runs"); do
		reset_sink "$server" "$port"; secs run_trs "$url" >>"$work/trs.t"
		reset_sink "$server" "$port"; secs run_rclone "$url" >>"$work/rclone.t"
		if [ "$i" -le "$aws_runs" ]; then reset_sink "$server" "$port"; secs run_aws "$url" >>"$work/aws.t"; fi
	done
	count=$(case $server in nginx) find "$sink/nginx-root/dest-a" -type f | wc -l ;; *) echo "?" ;; esac)
	/usr/bin/time -o "$work/rss" -f %M "$trs" process "$work/a.tar.zst" --endpoint-url "$url" --region eu-west-1 \
		--no-progress --log-level error >/dev/null 2>&1 || true
	t_trs=$(median <"$work/trs.t"); t_aws=$(median <"$work/aws.t"); t_rc=$(median <"$work/rclone.t")
	echo "== $server (objects in the bucket after the last run: $count)"
	printf '  trs process                      median %7.2f s  (%s)\n' "$t_trs" "$(tr '\n' ' ' <"$work/trs.t")"
	printf '  zstd|tar + rclone --transfers 32 median %7.2f s  (%s)\n' "$t_rc" "$(tr '\n' ' ' <"$work/rclone.t")"
	printf '      rclone upload alone          median %7.2f s\n' "$(median <"$work/rclone-up.t")"
	if [ -s "$work/aws.t" ]; then
		printf '  zstd|tar + aws s3 cp --recursive median %7.2f s  (%s)\n' "$t_aws" "$(tr '\n' ' ' <"$work/aws.t")"
	fi
	[ ! -s "$work/aws-up.t" ] || printf '      aws upload alone             median %7.2f s\n' "$(median <"$work/aws-up.t")"
	if [ -s "$work/aws.t" ]; then
		printf '  speed-up vs rclone %.1fx, vs awscli %.1fx; trs peak RSS %s KiB\n' \
			"$(echo "$t_rc/$t_trs" | bc -l)" "$(echo "$t_aws/$t_trs" | bc -l)" "$(cat "$work/rss")"
	else
		printf '  speed-up vs rclone %.1fx (awscli not run); trs peak RSS %s KiB\n' \
			"$(echo "$t_rc/$t_trs" | bc -l)" "$(cat "$work/rss")"
	fi
	kill "${pids[-1]}" 2>/dev/null || true
	wait "${pids[-1]}" 2>/dev/null || true
	unset 'pids[-1]'
done
