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
# With `multipart` first: the same as `cpu` with objects of 17 to 64 MiB,
# which go multipart (16 MiB parts), to s3rver (nginx's WebDAV has no
# multipart), over https through the same TLS proxy as the default mode.
# With `small` first: CPU microseconds (user + system) per object restored by
# trs to the nginx sink, OBJECTS objects of OBJECT_BYTES (20,000 of 2 KiB),
# beside what a user would otherwise spend: `zstd -dc | tar -x` and then
# `rclone copy --transfers 32` of the directory (their CPU added, in the same
# runs; RCLONE=0 leaves it out).
# Both report the wall time and the connections nginx accepted per restore.
# usage: bench/s3.sh [OBJECTS] [OBJECT_BYTES] [RUNS] [AWS_RUNS]
#        bench/s3.sh cpu [MIB] [RUNS]
#        bench/s3.sh multipart [MIB] [RUNS]
#        bench/s3.sh small [OBJECTS] [OBJECT_BYTES] [RUNS]
#   TLS=1 (env)    https, as production: nginx terminates TLS with a throwaway
#                  CA's certificate (in front of s3rver as a reverse proxy, which
#                  then carries the plain runs too), the clients trust it
#                  (AWS_CA_BUNDLE, rclone --ca-cert); TLS=both: plain http and
#                  https (cpu and small: interleaved run by run; the default
#                  mode: one after the other on each server); TLS=0 (default) http
#   DELAY_MS=N (env) the clients reach the servers through bench/relay.c, N ms
#                  each way, CONNECT_RTTS (env, default 1) round trips charged
#                  to every new connection before its first bytes
#   TRS_BEFORE=PATH (env, cpu and small) another trs build, interleaved run by run
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
scripts/install-deps
[ -n "${TRS:-}" ] || [ -x build/cli/trs ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
top=$PWD
mode=wall
case ${1:-} in
cpu | multipart)
	mode=$1
	shift
	cpu_mib=${1:-1024}
	set -- 0 0 "${2:-5}"
	;;
small)
	mode=small
	shift
	;;
esac
objects=${1:-20000}
object_bytes=${2:-2048}
runs=${3:-5}
aws_runs=${4:-$runs}
trs=${TRS:-$top/build/cli/trs}
before=${TRS_BEFORE:-}
servers=${SERVERS:-"nginx s3rver"}
case ${TLS:-0} in
0) schemes=http ;;
1) schemes=https ;;
both) schemes="http https" ;;
*) echo "TLS is 0, 1 or both" >&2; exit 2 ;;
esac
delay_ms=${DELAY_MS:-}
connect_rtts=${CONNECT_RTTS:-1}

need() { command -v "$1" >/dev/null 2>&1; }
# Only what is missing: a machine whose Node.js ships its own npm refuses
# Debian's npm package (it conflicts with that nodejs).
pkgs=""
need nginx || pkgs="$pkgs nginx-light"
if [ "$mode" = wall ] || { [ "$mode" = small ] && [ "${RCLONE:-1}" = 1 ]; }; then
	need rclone || pkgs="$pkgs rclone"
fi
s3rver=${S3RVER:-/opt/trs-bench/node_modules/.bin/s3rver}
if [ "$mode" = wall ] || [ "$mode" = multipart ]; then need npm || pkgs="$pkgs npm"; fi
[ -z "$pkgs" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
if { [ "$mode" = wall ] || [ "$mode" = multipart ]; } && [ ! -x "$s3rver" ]; then
	mkdir -p /opt/trs-bench
	(cd /opt/trs-bench && npm install --silent s3rver@3 >/dev/null)
fi
[ "$mode" != wall ] || need aws || { echo "awscli is needed (pip/pyenv)"; exit 2; }

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
chmod 755 "$work" # nginx's master reads the certificates, its workers the sink under it
tls=$work/tls
if [ "$schemes" != http ]; then
	mkdir -p "$tls"
	tls_cert "$tls"
fi
[ -z "$delay_ms" ] || ${CC:-cc} -O2 -o "$work/relay" bench/relay.c

# The archive, built the source side's way (trs pack: PAX, objects first, manifest last).
mkdir -p "$work/in"
case $mode in cpu | multipart) ;; *) python3 - "$work/in" "$objects" "$object_bytes" ;; esac <<'PY'
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
case $mode in cpu | multipart) ;; *) "$trs" pack "$work/in" -o "$work/a.tar.zst" --target eu-west-1:dest-a >/dev/null 2>&1 ;; esac
rm -rf "$work/in"

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchbenchbench AWS_DEFAULT_REGION=eu-west-1 \
	AWS_EC2_METADATA_DISABLED=true AWS_REGION=eu-west-1

# Each server's endpoints: "$server http" and "$server https" in url (through
# a relay with DELAY_MS), and where the connections they accept are counted
# (nginx's stub_status; none for s3rver over plain http). Its processes are
# in server_pids, stopped together.
declare -A url status
server_pids=()
stop_pids() { # stop these processes and forget them
	local p q keep=()
	for p in "$@"; do kill "$p" 2>/dev/null || true; done
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
	for q in "${pids[@]}"; do
		for p in "$@"; do [ "$q" != "$p" ] || continue 2; done
		keep+=("$q")
	done
	pids=("${keep[@]}")
}
started() { pids+=("$1"); server_pids+=("$1"); }

# url["SERVER SCHEME"] for the clients: PORT itself, or a relay in front of it.
endpoint() { # server scheme port
	local port=$3
	if [ -n "$delay_ms" ]; then
		port=$(free_port)
		"$work/relay" -c "$connect_rtts" "$port" "$3" "$delay_ms" >/dev/null 2>&1 &
		started $!
		wait_port "$port"
	fi
	url["$1 $2"]=$2://127.0.0.1:$port
}

start_nginx() {
	local root=$sink/nginx-root port tls_port="" st
	port=$(free_port)
	st=$(free_port)
	[ "$schemes" = http ] || tls_port=$(free_port)
	mkdir -p "$root/dest-a" "$sink/nginx-tmp"
	chmod 755 "$work" "$sink"
	chmod -R a+rwX "$root" "$sink/nginx-tmp" # nginx's workers run as an unprivileged user
	nginx_webdav_conf "$work/nginx.conf" "$port" "$root" "$sink/nginx-tmp" "$work" "$tls_port" "$tls" "$st"
	nginx -c "$work/nginx.conf" -g 'daemon off;' &
	started $!
	wait_port "$port"
	wait_port "$st"
	endpoint nginx http "$port"
	status["nginx http"]=$st
	if [ -n "$tls_port" ]; then
		wait_port "$tls_port"
		endpoint nginx https "$tls_port"
		status["nginx https"]=$st
	fi
}

s3rver_port=""
s3rver_pid=""
run_s3rver() {
	mkdir -p "$sink/s3rver"
	"$s3rver" -d "$sink/s3rver" -a 127.0.0.1 -p "$s3rver_port" --silent --configure-bucket dest-a >/dev/null 2>&1 &
	s3rver_pid=$!
	pids+=("$s3rver_pid")
	wait_port "$s3rver_port"
}
start_s3rver() {
	local tls_port plain_port st
	s3rver_port=$(free_port)
	run_s3rver
	status["s3rver http"]=""
	if [ "$schemes" = http ]; then
		endpoint s3rver http "$s3rver_port"
		return
	fi
	# TLS in front of s3rver, as S3's front ends terminate it; plain http
	# through the same proxy, so that the two differ by TLS alone.
	tls_port=$(free_port)
	plain_port=$(free_port)
	st=$(free_port)
	mkdir -p "$sink/proxy-tmp" && chmod a+rwX "$sink/proxy-tmp"
	nginx_tls_proxy_conf "$work/proxy.conf" "$work" "$sink/proxy-tmp" "$tls" "$tls_port" "$s3rver_port" "$st" \
		"$plain_port"
	nginx -c "$work/proxy.conf" -g 'daemon off;' &
	started $!
	wait_port "$tls_port"
	wait_port "$st"
	endpoint s3rver http "$plain_port"
	endpoint s3rver https "$tls_port"
	status["s3rver http"]=$st
	status["s3rver https"]=$st
}

# The clients trust the throwaway CA over https only: plain runs are as production's plain runs.
unset AWS_CA_BUNDLE
ca_env() { # scheme: an environment assignment for env(1)
	if [ "$1" = https ]; then echo "AWS_CA_BUNDLE=$tls/ca-bundle.pem"; else echo "TRS_BENCH_SCHEME=http"; fi
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
	s3rver) stop_pids "$s3rver_pid"; rm -rf "$sink/s3rver/dest-a"; run_s3rver ;;
	esac
}

# Each unpack goes to a new directory, deleted only at the end (see bench/local.sh).
n_unpack=0
unpack() {
	n_unpack=$((n_unpack + 1))
	out=$work/out-$n_unpack
	mkdir -p "$out" && zstd -dc "$work/a.tar.zst" | tar -x -C "$out"
}
run_trs() { env "$(ca_env "$2")" "$trs" process "$work/a.tar.zst" --endpoint-url "$1" --region eu-west-1 --no-progress --log-level error; }
upload_secs() { # time the upload step alone into file $1
	local t0 file=$1
	shift
	t0=$(date +%s.%N)
	"$@" || return 1
	echo "$(date +%s.%N) - $t0" | bc -l >>"$file"
}
run_aws() {
	unpack && upload_secs "$work/aws-up.t" env "$(ca_env "$2")" aws s3 cp --recursive --only-show-errors "$out/objects" \
		s3://dest-a/ --endpoint-url "$1"
}
run_rclone() {
	local ca=()
	[ "$2" = http ] || ca=(--ca-cert "$tls/ca-bundle.pem")
	unpack && upload_secs "$work/rclone-up.t" env -u AWS_CA_BUNDLE RCLONE_CONFIG_SINK_TYPE=s3 RCLONE_CONFIG_SINK_PROVIDER=Other RCLONE_CONFIG_SINK_ENDPOINT=$1 \
		RCLONE_CONFIG_SINK_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_SINK_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
		rclone copy "$out/objects" sink:dest-a --transfers 32 --no-check-dest --s3-no-check-bucket --s3-no-head "${ca[@]}"
}

machine() {
	printf '%s, %s cores (shared)' "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)"
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
network() {
	if [ -n "$delay_ms" ]; then
		printf 'relay %s ms each way, %s round trip(s) per new connection' "$delay_ms" "$connect_rtts"
	else
		printf 'loopback, no relay'
	fi
}

# One restore by trs to the sink (nginx; s3rver in the multipart mode),
# checked whole: appends "CPU_SECONDS WALL_SECONDS CONNECTIONS" to FILE.
# measure FILE SCHEME TRS [trs process options...]
bench_sink=nginx
[ "$mode" != multipart ] || bench_sink=s3rver
stored_objects() {
	case $bench_sink in
	nginx) find "$sink/nginx-root/dest-a" -type f | wc -l ;;
	s3rver) find "$sink/s3rver/dest-a" -type f -name '*._S3rver_object' | wc -l ;;
	esac
}
measure() {
	local file=$1 scheme=$2 bin=$3 a0 a1 t0 wall stored st
	shift 3
	reset_sink "$bench_sink"
	st=${status[$bench_sink $scheme]}
	a0=$(nginx_accepts "$st")
	t0=$(date +%s.%N)
	env "$(ca_env "$scheme")" /usr/bin/time -o "$work/cpu" -f '%U %S' "$bin" process "$work/a.tar.zst" \
		--endpoint-url "${url[$bench_sink $scheme]}" --region eu-west-1 --no-progress --log-level error "$@" \
		>/dev/null 2>"$work/last-err" || { echo "FAILED: $bin over $scheme" >&2; tail -5 "$work/last-err" >&2; exit 1; }
	wall=$(echo "$(date +%s.%N) - $t0" | bc -l)
	a1=$(nginx_accepts "$st")
	stored=$(stored_objects)
	[ "$stored" -eq "$n" ] || { echo "$bin over $scheme stored $stored objects of $n" >&2; exit 1; }
	# The second status query's own connection is among the accepted.
	awk -v w="$wall" -v c=$((a1 - a0 - 1)) '{print $1 + $2, w, c}' "$work/cpu" >>"$file"
}
# The user's way, to the nginx sink: unpack (zstd and tar, their CPU
# together) and upload the directory with rclone; appends "CPU_SECONDS
# WALL_SECONDS CONNECTIONS" like measure, CPU and wall of both steps.
measure_rclone() { # file scheme
	local file=$1 scheme=$2 a0 a1 t0 wall stored unpack_cpu
	reset_sink nginx
	t0=$(date +%s.%N)
	rm -rf "$sink/rc-out" && mkdir -p "$sink/rc-out" # on tmpfs, as the sink
	/usr/bin/time -o "$work/cpu-unpack" -f '%U %S' bash -c 'zstd -dc "$1" | tar -x -C "$2"' - "$work/a.tar.zst" \
		"$sink/rc-out" || { echo "FAILED: unpack" >&2; exit 1; }
	unpack_cpu=$(awk '{print $1 + $2}' "$work/cpu-unpack")
	a0=$(nginx_accepts "${status[nginx $scheme]}")
	local ca=()
	[ "$scheme" = http ] || ca=(--ca-cert "$tls/ca-bundle.pem")
	env -u AWS_CA_BUNDLE RCLONE_CONFIG_SINK_TYPE=s3 RCLONE_CONFIG_SINK_PROVIDER=Other \
		RCLONE_CONFIG_SINK_ENDPOINT="${url[nginx $scheme]}" RCLONE_CONFIG_SINK_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \
		RCLONE_CONFIG_SINK_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY /usr/bin/time -o "$work/cpu" -f '%U %S' \
		rclone copy "$sink/rc-out/objects" sink:dest-a --transfers 32 --no-check-dest --s3-no-check-bucket \
		--s3-no-head "${ca[@]}" >/dev/null 2>"$work/last-err" ||
		{ echo "FAILED: rclone over $scheme" >&2; tail -5 "$work/last-err" >&2; exit 1; }
	wall=$(echo "$(date +%s.%N) - $t0" | bc -l)
	a1=$(nginx_accepts "${status[nginx $scheme]}")
	stored=$(find "$sink/nginx-root/dest-a" -type f | wc -l)
	[ "$stored" -eq "$n" ] || { echo "rclone over $scheme stored $stored objects of $n" >&2; exit 1; }
	awk -v w="$wall" -v c=$((a1 - a0 - 1)) -v u="$unpack_cpu" '{print $1 + $2 + u, w, c}' "$work/cpu" >>"$file"
}
col() { awk -v c="$1" '{print $c}' "$2" | median; }
runs_of() { awk -v c="$1" '{printf "%s ", $c}' "$2"; }

# The configurations of the cpu and small modes, interleaved run by run:
# "SCHEME BUILD OPTION" (OPTION - for none).
configs=()
for scheme in $schemes; do
	configs+=("$scheme this -")
	[ "$mode" != cpu ] || configs+=("$scheme this --verify-local")
	[ -z "$before" ] || configs+=("$scheme before -")
	[ "$mode" != small ] || [ "${RCLONE:-1}" != 1 ] || configs+=("$scheme rclone -")
done
run_configs() {
	local c scheme build option bin
	for i in $(seq "$runs"); do
		for c in "${configs[@]}"; do
			read -r scheme build option <<<"$c"
			bin=$trs
			[ "$build" = this ] || bin=$before
			[ "$option" = - ] && option=""
			if [ "$build" = rclone ]; then
				measure_rclone "$work/${c// /_}.t" "$scheme"
				continue
			fi
			measure "$work/${c// /_}.t" "$scheme" "$bin" $option
		done
	done
}
# A ratio of two configurations' medians of column COL: "A / B" as a number.
ratio() { # col config_a config_b
	echo "$(col "$1" "$work/${2// /_}.t") / $(col "$1" "$work/${3// /_}.t")" | bc -l
}
ratios() { # col what
	local scheme
	for scheme in $schemes; do
		[ -z "$before" ] || printf '  %s, this / before: %.3f\n' "$scheme" "$(ratio "$1" "$scheme this -" "$scheme before -")"
		[ ! -f "$work/${scheme}_rclone_-.t" ] ||
			printf '  %s, this / (zstd|tar + rclone): %.3f\n' "$scheme" "$(ratio "$1" "$scheme this -" "$scheme rclone -")"
		[ "$mode" != cpu ] ||
			printf '  %s, default / --verify-local: %.3f\n' "$scheme" "$(ratio "$1" "$scheme this -" "$scheme this --verify-local")"
	done
	if [ "$schemes" = "http https" ]; then
		printf '  this, https / http: %.3f\n' "$(ratio "$1" "https this -" "http this -")"
		[ -z "$before" ] || printf '  before, https / http: %.3f\n' "$(ratio "$1" "https before -" "http before -")"
	fi
}

if [ "$mode" = cpu ] || [ "$mode" = multipart ]; then
	# cpu: objects of 1 to 8 MiB (below the 16 MiB multipart threshold: single PUTs);
	# multipart: 17 to 64 MiB (16 MiB parts). Random bytes.
	lo=1 hi=8
	[ "$mode" = cpu ] || lo=17 hi=64
	mkdir -p "$work/in"
	python3 - "$work/in" "$cpu_mib" "$lo" "$hi" <<'PY'
import os, random, sys
root, total, lo, hi = sys.argv[1], int(sys.argv[2]) << 20, int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(11)
i = done = 0
while done < total:
    n = min(rnd.randint(lo << 20, hi << 20), total - done)
    with open(os.path.join(root, "obj-%04d.bin" % i), "wb") as f:
        f.write(rnd.randbytes(n))
    done += n
    i += 1
PY
	n=$(ls "$work/in" | wc -l)
	"$trs" pack "$work/in" -o "$work/a.tar.zst" --target eu-west-1:dest-a --level 1 >/dev/null 2>&1
	rm -rf "$work/in"
	if [ "$bench_sink" = nginx ]; then
		start_nginx
	else
		start_s3rver
		export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER # s3rver checks its default key
	fi
	load0=$(loadavg)
	run_configs
	gib=$(echo "$cpu_mib/1024" | bc -l)
	printf 'archive: %d objects of %d to %d MiB, %d MiB; %s sink, %s; %d runs interleaved; %s\n' "$n" "$lo" "$hi" \
		"$cpu_mib" "$bench_sink" "$(network)" "$runs" "$(machine)"
	printf 'load average at the start %s, at the end %s\n' "$load0" "$(loadavg)"
	printf '%-6s %-7s %-32s %10s %8s %12s  %s\n' scheme build "trs process" "CPU s/GiB" "wall s" connections "CPU s of each run"
	for c in "${configs[@]}"; do
		read -r scheme build option <<<"$c"
		what="default (MD5 left to the server)"
		[ "$mode" = cpu ] || what="default (MD5 here: multipart)"
		[ "$option" = - ] || what=$option
		f=$work/${c// /_}.t
		printf '%-6s %-7s %-32s %10.2f %8.2f %12s  %s\n' "$scheme" "$build" "$what" "$(echo "$(col 1 "$f")/$gib" | bc -l)" \
			"$(col 2 "$f")" "$(col 3 "$f")" "$(runs_of 1 "$f")"
	done
	[ "${#configs[@]}" -eq 1 ] || echo "ratios of the CPU medians:"
	ratios 1
	exit 0
fi

if [ "$mode" = small ]; then
	n=$objects
	start_nginx
	load0=$(loadavg)
	run_configs
	printf 'archive: %d objects of %d bytes, %.1f MiB compressed; nginx WebDAV sink, %s; %d runs interleaved; %s\n' \
		"$objects" "$object_bytes" "$(echo "$(stat -c %s "$work/a.tar.zst")/1048576" | bc -l)" "$(network)" "$runs" \
		"$(machine)"
	printf 'load average at the start %s, at the end %s\n' "$load0" "$(loadavg)"
	printf '%-6s %-7s %14s %8s %10s %12s  %s\n' scheme build "CPU us/object" "wall s" objects/s connections \
		"CPU s of each run"
	for c in "${configs[@]}"; do
		read -r scheme build option <<<"$c"
		f=$work/${c// /_}.t
		printf '%-6s %-7s %14.1f %8.2f %10.0f %12s  %s\n' "$scheme" "$build" "$(echo "$(col 1 "$f")*1000000/$n" | bc -l)" \
			"$(col 2 "$f")" "$(echo "$n/$(col 2 "$f")" | bc -l)" "$(col 3 "$f")" "$(runs_of 1 "$f")"
	done
	[ "${#configs[@]}" -eq 1 ] || echo "ratios of the CPU medians:"
	ratios 1
	exit 0
fi

printf 'archive: %d objects of %d bytes, %.1f MiB compressed; %d runs (awscli %d); %s; %s\n' "$objects" \
	"$object_bytes" "$(echo "$(stat -c %s "$work/a.tar.zst")/1048576" | bc -l)" "$runs" "$aws_runs" "$(network)" "$(machine)"
for server in $servers; do
	server_pids=()
	case $server in
	nginx) start_nginx ;;
	s3rver) start_s3rver
		export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER ;; # s3rver checks its default key
	esac
	for scheme in $schemes; do
		u=${url[$server $scheme]}
		st=${status[$server $scheme]}
		: >"$work/trs.t"; : >"$work/aws.t"; : >"$work/rclone.t"; : >"$work/aws-up.t"; : >"$work/rclone-up.t"
		: >"$work/conns"
		for i in $(seq "$runs"); do
			reset_sink "$server"
			a0=$([ -z "$st" ] || nginx_accepts "$st")
			secs run_trs "$u" "$scheme" >>"$work/trs.t"
			[ -z "$st" ] || echo $(($(nginx_accepts "$st") - a0 - 1)) >>"$work/conns"
			reset_sink "$server"; secs run_rclone "$u" "$scheme" >>"$work/rclone.t"
			if [ "$i" -le "$aws_runs" ]; then reset_sink "$server"; secs run_aws "$u" "$scheme" >>"$work/aws.t"; fi
		done
		count=$(case $server in nginx) find "$sink/nginx-root/dest-a" -type f | wc -l ;; *) echo "?" ;; esac)
		env "$(ca_env "$scheme")" /usr/bin/time -o "$work/rss" -f %M "$trs" process "$work/a.tar.zst" --endpoint-url "$u" \
			--region eu-west-1 --no-progress --log-level error >/dev/null 2>&1 || true
		t_trs=$(median <"$work/trs.t"); t_aws=$(median <"$work/aws.t"); t_rc=$(median <"$work/rclone.t")
		echo "== $server over $scheme (objects in the bucket after the last run: $count)"
		printf '  trs process                      median %7.2f s  (%s)\n' "$t_trs" "$(tr '\n' ' ' <"$work/trs.t")"
		[ ! -s "$work/conns" ] || printf '      connections opened by trs    median %7s\n' "$(median <"$work/conns")"
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
	done
	stop_pids "${server_pids[@]}" $s3rver_pid
	s3rver_pid=""
done
