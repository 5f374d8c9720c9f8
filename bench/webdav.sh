# Sourced by the benchmarks: nginx with WebDAV as a fast S3 sink on
# 127.0.0.1 (PUT /bucket/key stores a file under ROOT; DELETE removes it).
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
