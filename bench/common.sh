# SPDX-License-Identifier: Apache-2.0
# Sourced by the shell benchmarks (bench/s3.sh, bench/serve_large.sh, bench/throttle.sh).

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

# A throwaway PKI in DIR shaped like S3's: a root CA, an intermediate and a
# server certificate for 127.0.0.1 and localhost, RSA 2048 as S3's are, so
# that a handshake verifies what production's does (the intermediate and the
# leaf's signature). DIR/server-chain.pem and DIR/server.key go to nginx.
# DIR/ca-bundle.pem is what the clients trust (AWS_CA_BUNDLE): the system's
# CAs with the throwaway root appended, so loading it costs what loading the
# system bundle costs in production.
tls_cert() {
	local d=$1 ext
	ext=$d/ext.cnf
	printf '%s\n' '[ca]' 'basicConstraints=critical,CA:TRUE' 'keyUsage=critical,keyCertSign,cRLSign' \
		'[leaf]' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
		'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1,DNS:localhost' >"$ext"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=trs-bench-root -keyout "$d/root.key" \
		-out "$d/root.pem" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=trs-bench-intermediate -keyout "$d/int.key" -out "$d/int.csr" 2>/dev/null
	openssl x509 -req -in "$d/int.csr" -CA "$d/root.pem" -CAkey "$d/root.key" -CAcreateserial -days 2 \
		-extfile "$ext" -extensions ca -out "$d/int.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
	openssl x509 -req -in "$d/server.csr" -CA "$d/int.pem" -CAkey "$d/int.key" -CAcreateserial -days 2 \
		-extfile "$ext" -extensions leaf -out "$d/server.pem" 2>/dev/null
	cat "$d/server.pem" "$d/int.pem" >"$d/server-chain.pem"
	cat /etc/ssl/certs/ca-certificates.crt "$d/root.pem" 2>/dev/null >"$d/ca-bundle.pem" || cp "$d/root.pem" "$d/ca-bundle.pem"
	chmod 644 "$d/server.key" # nginx's master reads it as root; the bench's files are throwaway
}

# The TLS settings of an nginx server block: TLS 1.2 and 1.3 (curl and
# OpenSSL settle on 1.3, as with S3), session tickets and a session cache
# (resumption, when a client offers it).
nginx_tls_lines() { # TLS_DIR
	cat <<CONF
		ssl_certificate $1/server-chain.pem;
		ssl_certificate_key $1/server.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_session_cache shared:trsbench:10m;
		ssl_session_timeout 1h;
CONF
}

# A server block on STATUS_PORT answering nginx's counters (stub_status):
# "server accepts handled requests" counts connections accepted.
nginx_status_server() { # STATUS_PORT
	[ -n "$1" ] || return 0
	cat <<CONF
	server {
		listen 127.0.0.1:$1;
		location / { stub_status; }
	}
CONF
}

# Connections nginx has accepted so far on every port, the status query's own included.
nginx_accepts() { # STATUS_PORT
	python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$1/').read().split()[7].decode())"
}

# nginx with WebDAV as a fast S3 sink on 127.0.0.1 (PUT /bucket/key stores a
# file under ROOT; DELETE removes it).
# nginx_webdav_conf CONF PORT ROOT TMP WORK [TLS_PORT TLS_DIR] [STATUS_PORT]:
# write the configuration CONF (pid and error log in WORK, request bodies in
# TMP); with TLS_PORT the same sink over TLS there too (certificates from
# tls_cert TLS_DIR), with STATUS_PORT nginx's counters there.
nginx_webdav_conf() {
	local conf=$1 port=$2 root=$3 tmp=$4 work=$5 tls_port=${6:-} tls_dir=${7:-} status_port=${8:-}
	local tls=""
	[ -z "$tls_port" ] || tls="
	server {
		listen 127.0.0.1:$tls_port ssl reuseport;
$(nginx_tls_lines "$tls_dir")
		root $root;
		location / {
			dav_methods PUT DELETE;
			create_full_put_path on;
			dav_access user:rw group:r all:r;
		}
	}"
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
	}$tls
$(nginx_status_server "$status_port")
}
CONF
}

# nginx terminating TLS on TLS_PORT for a plain HTTP server on TARGET_PORT
# (s3rver, moto), as S3's front ends do: the request passed as it came
# (path, Host: the signature covers both), bodies streamed both ways, kept-
# alive connections to the server (closed after 2 s idle, before s3rver's own
# 5 s timeout can race a request). With PLAIN_PORT, the same proxy in plain
# HTTP there, so that http and https runs differ by TLS alone.
# nginx_tls_proxy_conf CONF WORK TMP TLS_DIR TLS_PORT TARGET_PORT [STATUS_PORT [PLAIN_PORT]]
nginx_tls_proxy_conf() {
	local conf=$1 work=$2 tmp=$3 tls_dir=$4 tls_port=$5 target=$6 status_port=${7:-} plain_port=${8:-}
	local plain=""
	[ -z "$plain_port" ] || plain="listen 127.0.0.1:$plain_port reuseport;"
	cat >"$conf" <<CONF
worker_processes 2;
pid $work/nginx-proxy.pid;
error_log $work/nginx-proxy-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $tmp;
	proxy_temp_path $tmp;
	client_max_body_size 0;
	upstream target { server 127.0.0.1:$target; keepalive 64; keepalive_timeout 2s; }
	server {
		listen 127.0.0.1:$tls_port ssl reuseport;
		$plain
$(nginx_tls_lines "$tls_dir")
		location / {
			proxy_pass http://target;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$http_host;
			proxy_request_buffering off;
			proxy_buffering off;
		}
	}
$(nginx_status_server "$status_port")
}
CONF
}
