# SPDX-License-Identifier: Apache-2.0
# Sourced by the shell benchmarks (bench/s3.sh, bench/serve_large.sh).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
	for _ in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "server on port $1 did not start" >&2
	return 1
}

# The median of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# nginx with WebDAV as a fast S3 sink on 127.0.0.1 (PUT /bucket/key stores a
# file under ROOT; DELETE removes it).
# nginx_webdav_conf CONF PORT ROOT TMP WORK: write the configuration CONF
# (pid and error log in WORK, request bodies in TMP).
nginx_webdav_conf() {
	local conf=$1 port=$2 root=$3 tmp=$4 work=$5
	cat >"$conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $tmp;
	client_max_body_size 0;
	server {
		listen 127.0.0.1:$port reuseport;
		root $root;
		location / {
			dav_methods PUT DELETE;
			create_full_put_path on;
			dav_access user:rw group:r all:r;
		}
	}
}
CONF
}
