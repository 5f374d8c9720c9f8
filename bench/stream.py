#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The production workload of `trs serve`: a stream of small archives.

Driven by bench/stream.sh (which installs the servers). Builds ARCHIVES
archives of OBJECTS objects of BYTES bytes the source side's way
(tests/fixtures/mkarchive.py: PAX, objects first, manifest last, zstd),
puts them in a staging bucket, queues one S3 event per archive, and times
`trs serve` draining the queue: from its "serving" log line to its last
"message deleted" line. S3 and SQS are reached through bench/relay.py, which
delays each direction by DELAY_MS (bench/relay.c, one epoll thread, which
also logs each request line and each connection, and charges each new
connection --connect-rtts round trips; bench/relay.py, asyncio, without
--relay). Every run checks every object's bytes, that staging is empty and
that the queue is drained. Each run also reports the CPU seconds of trs
serve and of each server and relay (/proc/PID/stat deltas), the requests
per archive and the connections opened per 100 archives.

With --tls https (or both: http and https interleaved), the S3 and SQS
endpoints are https, as in production: nginx terminates TLS (a reverse proxy
in front of s3rver and moto; the nginx sink itself) with the certificates of
bench/common.sh's tls_cert in --tls-dir, behind the same relays, so that
every handshake pays its round trips; trs trusts the throwaway CA through
AWS_CA_BUNDLE. The requests are then counted from nginx's access logs (the
relay sees only TLS records) and the connections from the relay's log. The
plain runs of --tls both go through the same proxy, without TLS, so that
the two differ by TLS alone (without --tls, trs reaches s3rver and moto
directly, as before: moto then closes every connection after its answer).

Configurations, interleaved run by run:
  s3rver --archives 1   the named baseline (one archive at a time)
  s3rver --archives A   A archives in flight (default 16)
  nginx  --archives A   nginx WebDAV as a fast S3 sink: the client's own ceiling
each with --trs, and again with --trs-before when given (another build, e.g.
the main branch's, compared in the same run: the "vs before" column), each
over http, https or both (the "TLS/plain" column).
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
import mkarchive  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

REGION = "eu-west-1"
ACCOUNT = "123456789012"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("%s did not start on port %d" % (what, port))


NGINX_WEBDAV = """
		root %(root)s;
		location / {
			dav_methods PUT DELETE;
			create_full_put_path on;
			dav_access user:rw group:rw all:rw;
		}
"""

NGINX_TLS = """
		ssl_certificate %(tls)s/server-chain.pem;
		ssl_certificate_key %(tls)s/server.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_session_cache shared:trsbench:10m;
		ssl_session_timeout 1h;
		access_log %(log)s relay;
"""

# nginx as S3's and SQS's TLS front end: the request passed as it came (path
# and Host, which the signature covers), bodies streamed, connections to the
# server kept alive (closed before s3rver's own 5 s idle timeout would race).
NGINX_PROXY = """
		location / {
			proxy_pass http://%(upstream)s;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $http_host;
			proxy_request_buffering off;
			proxy_buffering off;
		}
"""


def nginx_conf(path, work, name, servers, upstreams=""):
    """An nginx configuration: `servers` are server blocks' bodies."""
    with open(path, "w") as f:
        f.write("""worker_processes 2;
pid %(w)s/%(n)s.pid;
error_log %(w)s/%(n)s-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	log_format relay '$msec $connection $request';
	client_body_temp_path %(w)s/%(n)s-tmp;
	proxy_temp_path %(w)s/%(n)s-tmp;
	client_max_body_size 0;
%(u)s
""" % {"w": work, "n": name, "u": upstreams})
        for body in servers:
            f.write("\tserver {%s\t}\n" % body)
        f.write("}\n")
    os.makedirs(os.path.join(work, name + "-tmp"))
    os.chmod(os.path.join(work, name + "-tmp"), 0o777)


class Servers:
    def __init__(self, work, delay_ms, s3rver, nginx, relay_bin, schemes, tls_dir, connect_rtts):
        self.procs = []
        self.labels = []
        self.relay_bin = relay_bin
        self.connect_rtts = connect_rtts
        self.request_logs = {}  # (scheme, service): the log of its requests
        self.connection_logs = {}  # (scheme, service): the relay's log of its connections
        self.relay_ports = {}  # (scheme, service): the port trs is given
        self.work = work
        # s3rver's ListObjectsV2 continuation tokens are DES, which Node's OpenSSL 3
        # keeps in its legacy provider: without it, listing past 1,000 keys fails.
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        os.chmod(work, 0o777)
        # moto for SQS
        self.moto_port = free_port()
        self.start(["moto_server", "-H", "127.0.0.1", "-p", str(self.moto_port)], "moto")
        wait_port(self.moto_port, "moto")
        # s3rver for S3
        self.s3_port = free_port()
        self.s3_dir = os.path.join(work, "s3rver")
        os.makedirs(self.s3_dir)
        self.start([s3rver, "-d", self.s3_dir, "-a", "127.0.0.1", "-p", str(self.s3_port), "--silent",
                    "--configure-bucket", "staging", "--configure-bucket", "dest-a"], "s3rver", env)
        wait_port(self.s3_port, "s3rver")
        targets = {("http", "s3rver"): self.s3_port, ("http", "sqs"): self.moto_port}
        if "https" in schemes:
            # One nginx terminates TLS for both (its CPU: "proxy"), and carries
            # the plain runs too, so that http and https differ by TLS alone.
            targets = {(scheme, name): free_port() for scheme in schemes for name in ("s3rver", "sqs")}
            blocks = []
            for (scheme, name), port in targets.items():
                body = "\n\t\tlisten 127.0.0.1:%d%s;" % (port, " ssl" if scheme == "https" else "")
                if scheme == "https":
                    log = os.path.join(work, "requests-https-%s.log" % name)
                    self.request_logs[("https", name)] = log
                    body += NGINX_TLS % {"tls": tls_dir, "log": log}
                blocks.append(body + NGINX_PROXY % {"upstream": "moto" if name == "sqs" else "s3rver"})
            upstreams = ("\tupstream s3rver { server 127.0.0.1:%d; keepalive 64; keepalive_timeout 2s; }\n"
                         "\tupstream moto { server 127.0.0.1:%d; keepalive 64; keepalive_timeout 2s; }\n"
                         % (self.s3_port, self.moto_port))
            conf = os.path.join(work, "proxy.conf")
            nginx_conf(conf, work, "proxy", blocks, upstreams)
            self.start(["nginx", "-c", conf, "-g", "daemon off;"], "proxy")
            for (scheme, name), port in targets.items():
                wait_port(port, "nginx (%s for %s)" % (scheme, name))
        for scheme in schemes:
            for name in ("s3rver", "sqs"):
                self.relay(scheme, name, targets[(scheme, name)], delay_ms)
        self.nginx_root = None
        if nginx:
            self.nginx_root = os.path.join(work, "nginx-root")
            for b in ("staging", "dest-a"):
                os.makedirs(os.path.join(self.nginx_root, b))
            for d in (self.nginx_root, os.path.join(self.nginx_root, "staging"),
                      os.path.join(self.nginx_root, "dest-a")):
                os.chmod(d, 0o777)
            ports = {scheme: free_port() for scheme in schemes}
            blocks = []
            for scheme, port in ports.items():
                body = "\n\t\tlisten 127.0.0.1:%d%s;" % (port, " ssl" if scheme == "https" else "")
                if scheme == "https":
                    log = os.path.join(work, "requests-https-nginx.log")
                    self.request_logs[("https", "nginx")] = log
                    body += NGINX_TLS % {"tls": tls_dir, "log": log}
                blocks.append(body + NGINX_WEBDAV % {"root": self.nginx_root})
            conf = os.path.join(work, "nginx.conf")
            nginx_conf(conf, work, "nginx", blocks)
            self.start(["nginx", "-c", conf, "-g", "daemon off;"], "nginx")
            for scheme, port in ports.items():
                wait_port(port, "nginx")
                self.relay(scheme, "nginx", port, delay_ms)

    def start(self, argv, what, env=None):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.procs.append(p)
        self.labels.append(what)
        return p

    def relay(self, scheme, name, target, delay_ms):
        port = free_port()
        if self.relay_bin:  # bench/relay.c, which also logs each request line and connection
            log = os.path.join(self.work, "relay-%s-%s.log" % (scheme, name))
            self.connection_logs[(scheme, name)] = log
            if scheme == "http":
                self.request_logs[(scheme, name)] = log
            argv = [self.relay_bin, "-c", str(self.connect_rtts), str(port), str(target), str(delay_ms), log]
        else:
            argv = [sys.executable, os.path.join(HERE, "relay.py"), str(port), str(target), str(delay_ms)]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        self.labels.append("relay")
        assert p.stdout.readline().strip() == b"ready"
        self.relay_ports[(scheme, name)] = port
        return port

    def log_sizes(self):
        return {path: os.path.getsize(path) if os.path.exists(path) else 0
                for path in set(self.request_logs.values()) | set(self.connection_logs.values())}

    @staticmethod
    def lines_since(path, sizes):
        if not os.path.exists(path):
            return
        with open(path, "rb") as f:
            f.seek(sizes.get(path, 0))
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    yield parts[2].decode(errors="replace")

    def requests_since(self, sizes, scheme):
        """Requests and connections through each service since `sizes`, over
        `scheme`: {"S3 GET": n, "SQS POST": n, ...}, {"S3": n, "SQS": n}."""
        requests, connections = {}, {}
        for (sch, name), path in self.request_logs.items():
            if sch != scheme:
                continue
            for word in self.lines_since(path, sizes):
                if word != "open":
                    k = "%s %s" % ("S3" if name != "sqs" else "SQS", word)
                    requests[k] = requests.get(k, 0) + 1
        for (sch, name), path in self.connection_logs.items():
            if sch != scheme:
                continue
            k = "S3" if name != "sqs" else "SQS"
            connections[k] = connections.get(k, 0) + sum(1 for w in self.lines_since(path, sizes) if w == "open")
        return requests, connections

    def cpu(self):
        """CPU seconds used so far by each kind of server (a process and its children, nginx's workers)."""
        ticks = os.sysconf("SC_CLK_TCK")
        stat = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stat[int(d)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
        out = {}
        for p, what in zip(self.procs, self.labels):
            pids = {p.pid}
            grew = True
            while grew:
                kids = {q for q, (ppid, _) in stat.items() if ppid in pids} - pids
                grew = bool(kids)
                pids |= kids
            out[what] = out.get(what, 0.0) + sum(stat[q][1] for q in pids if q in stat) / ticks
        return out

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def client(service, port):
    return boto3.client(service, endpoint_url="http://127.0.0.1:%d" % port, region_name=REGION,
                        aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 10}))


def build_archives(work, n, objects, size):
    """n archives as (key, path, {dest key: md5})."""
    rnd = random.Random(7)
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 {}:,\n"
    out = []
    targets = [{"region": REGION, "bucket": "dest-a"}]
    for a in range(n):
        objs = []
        for i in range(objects):
            data = bytes(rnd.choice(alphabet) for _ in range(size))
            objs.append({"relative_key": "data/a%04d/obj-%02d.json" % (a, i), "source_prefix": "a%04d" % a,
                         "data": data})
        path = os.path.join(work, "a%04d.tar.zst" % a)
        mkarchive.build_archive(path, objs, targets, level=3)
        expect = {mkarchive.destination_key(o): hashlib.md5(o["data"]).hexdigest() for o in objs}
        out.append(("in/a%04d.tar.zst" % a, path, expect))
    return out


def event(key, size):
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "staging"}, "object": {"key": key, "size": size}}}]})


def ts(rec):
    return datetime.strptime(rec["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


class Bench:
    def __init__(self, args, srv, archives, work):
        self.a = args
        self.srv = srv
        self.archives = archives
        self.work = work
        self.s3 = client("s3", srv.s3_port)
        self.sqs = client("sqs", srv.moto_port)
        self.queue = self.sqs.create_queue(QueueName="bench", Attributes={"VisibilityTimeout": "120"})["QueueUrl"]
        self.queue_path = "/" + self.queue.split("/", 3)[3]

    def stage(self, sink):
        for key, path, _ in self.archives:
            if sink == "nginx":
                dst = os.path.join(self.srv.nginx_root, "staging", key)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.chmod(os.path.dirname(dst), 0o777)  # nginx's workers delete it as another user
                shutil.copyfile(path, dst)
            else:
                with open(path, "rb") as f:
                    self.s3.put_object(Bucket="staging", Key=key, Body=f.read())
        entries = [{"Id": str(i), "MessageBody": event(k, os.path.getsize(p))}
                   for i, (k, p, _) in enumerate(self.archives)]
        for i in range(0, len(entries), 10):
            self.sqs.send_message_batch(QueueUrl=self.queue, Entries=entries[i:i + 10])

    def clear_dest(self, sink):
        if sink == "nginx":
            d = os.path.join(self.srv.nginx_root, "dest-a")
            shutil.rmtree(d)
            os.makedirs(d)
            os.chmod(d, 0o777)
            return
        keys = [o["Key"] for p in self.s3.get_paginator("list_objects_v2").paginate(Bucket="dest-a")
                for o in p.get("Contents", [])]
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket="dest-a", Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})

    def check(self, sink):
        """Every object exact, staging empty, queue drained."""
        bad = 0
        for _, _, expect in self.archives:
            for key, md5 in expect.items():
                if sink == "nginx":
                    with open(os.path.join(self.srv.nginx_root, "dest-a", key), "rb") as f:
                        data = f.read()
                else:
                    data = self.s3.get_object(Bucket="dest-a", Key=key)["Body"].read()
                bad += hashlib.md5(data).hexdigest() != md5
        if sink == "nginx":
            left = [n for _, _, fs in os.walk(os.path.join(self.srv.nginx_root, "staging")) for n in fs]
        else:
            left = self.s3.list_objects_v2(Bucket="staging").get("KeyCount", 0)
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        queued = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        if bad or left or queued:
            raise SystemExit("run not exact: %d objects wrong, staging left %r, %d messages queued"
                             % (bad, left, queued))

    def run(self, sink, archives, trs, scheme):
        self.clear_dest(sink)
        self.stage(sink)
        port = self.srv.relay_ports[(scheme, "nginx" if sink == "nginx" else "s3rver")]
        queue = "%s://127.0.0.1:%d%s" % (scheme, self.srv.relay_ports[(scheme, "sqs")], self.queue_path)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
                   AWS_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
        for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE", "AWS_CA_BUNDLE"):
            env.pop(k, None)
        if scheme == "https":
            env["AWS_CA_BUNDLE"] = os.path.join(self.a.tls_dir, "ca-bundle.pem")
        log = os.path.join(self.work, "serve.log")
        rss = os.path.join(self.work, "rss")
        argv = ["/usr/bin/time", "-f", "%M %U %S", "-o", rss, trs, "serve", "--queue", queue,
                "--endpoint-url", "%s://127.0.0.1:%d" % (scheme, port), "--batch", "10", "--poll-interval", "1",
                "--max-idle", "2", "--archives", str(archives), "--metrics", "none", "--log-format", "json",
                "--visibility-timeout", "120"]
        cpu0, logs0 = self.srv.cpu(), self.srv.log_sizes()
        with open(log, "wb") as f:
            rc = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=f, env=env, timeout=900)
        # nginx writes its access log line once the answer is sent: let the last ones land.
        time.sleep(0.2)
        cpu1 = self.srv.cpu()
        requests, connections = self.srv.requests_since(logs0, scheme)
        recs = []
        with open(log, "rb") as f:
            for line in f:
                try:
                    recs.append(json.loads(line))
                except ValueError:
                    pass
        if rc != 0:
            raise SystemExit("trs serve exited %d: %s" % (rc, open(log).read()[-3000:]))
        start = next(ts(r) for r in recs if r.get("message") == "serving")
        deleted = [ts(r) for r in recs if r.get("message") == "message deleted"]
        if len(deleted) != len(self.archives):
            raise SystemExit("%d messages deleted, not %d: %s" % (len(deleted), len(self.archives),
                                                                 open(log).read()[-3000:]))
        self.check(sink)
        with open(rss) as f:
            peak, user, system = f.read().split()[-3:]
        cpu = {k: cpu1.get(k, 0) - cpu0.get(k, 0) for k in cpu1}
        cpu["trs"] = float(user) + float(system)
        # The run's CPU, not the idle tail: trs serve waits --max-idle after the last delete.
        return max(deleted) - start, int(peak), cpu, requests, connections


def main():
    # SIGTERM stops like Ctrl-C: the servers this started are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("--trs", required=True)
    ap.add_argument("--s3rver", required=True)
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--in-flight", type=int, default=16)
    ap.add_argument("--trs-before", help="a second trs (e.g. the main branch's), run interleaved with --trs")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (request logs, serve.log)")
    ap.add_argument("--relay", help="bench/relay.c built; without it, bench/relay.py (asyncio)")
    ap.add_argument("--connect-rtts", type=float, default=1,
                    help="round trips bench/relay.c charges each new connection (default 1: TCP's handshake)")
    ap.add_argument("--tls", choices=("http", "https", "both"), default="http",
                    help="the endpoints' scheme; both: http and https interleaved run by run")
    ap.add_argument("--tls-dir", help="bench/common.sh's tls_cert directory (with --tls https or both)")
    ap.add_argument("archives", type=int)
    ap.add_argument("objects", type=int)
    ap.add_argument("bytes", type=int)
    ap.add_argument("delay_ms", type=float)
    ap.add_argument("runs", type=int)
    a = ap.parse_args()
    schemes = ["http", "https"] if a.tls == "both" else [a.tls]
    if "https" in schemes and not a.tls_dir:
        ap.error("--tls %s needs --tls-dir" % a.tls)
    work = tempfile.mkdtemp(prefix="trs-stream.", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    srv = None
    try:
        srv = Servers(work, a.delay_ms, a.s3rver, a.nginx, a.relay, schemes, a.tls_dir, a.connect_rtts)
        arch = build_archives(work, a.archives, a.objects, a.bytes)
        b = Bench(a, srv, arch, work)
        builds = [("this", a.trs)] + ([("before", a.trs_before)] if a.trs_before else [])
        configs = [(sink, n, label, scheme) for label, _ in builds for scheme in schemes
                   for sink, n in [("s3rver", 1), ("s3rver", a.in_flight)] + ([("nginx", a.in_flight)] if a.nginx else [])]
        binary = dict(builds)
        load0 = os.getloadavg()

        def name(c):
            return "%-8s %-12s %-7s %-6s" % (c[0], "--archives %d" % c[1], c[2], c[3])
        head = "%-8s %-12s %-7s %-6s" % ("sink", "config", "trs", "scheme")
        times = {c: [] for c in configs}
        rss = {c: 0 for c in configs}
        cpus = {c: [] for c in configs}
        reqs = {c: [] for c in configs}
        conns = {c: [] for c in configs}
        for r in range(a.runs):
            for c in configs:
                t, peak, cpu, requests, connections = b.run(c[0], c[1], binary[c[2]], c[3])
                times[c].append(t)
                rss[c] = max(rss[c], peak)
                cpus[c].append(cpu)
                reqs[c].append(requests)
                conns[c].append(connections)
                print("run %d %s %.3f s (%.1f archives/s), peak RSS %d KiB, connections %s, CPU s: %s"
                      % (r + 1, name(c), t, a.archives / t, peak,
                         "+".join("%s %d" % kv for kv in sorted(connections.items())) or "-",
                         " ".join("%s %.2f" % kv for kv in sorted(cpu.items()))), flush=True)
        med_t = {c: statistics.median(times[c]) for c in configs}
        print("\n%d archives x %d objects x %d bytes, %g ms each way, %s, median of %d runs "
              "(every object checked, staging emptied, queue drained); load average %.2f %.2f %.2f at the start, "
              "%.2f %.2f %.2f at the end:" % ((
                  a.archives, a.objects, a.bytes, a.delay_ms,
                  "%g round trip(s) charged per new connection" % a.connect_rtts if a.relay else "asyncio relay",
                  a.runs) + load0 + os.getloadavg()))
        print(head + " %10s %12s %11s %9s %10s %10s %14s" % (
            "seconds", "archives/s", "objects/s", "ratio", "vs before", "TLS/plain", "peak RSS MiB"))
        for c in configs:
            m = med_t[c]
            base = med_t[("s3rver", 1, c[2], c[3])]  # the same build's --archives 1
            before = ("%9.2fx" % (med_t[(c[0], c[1], "before", c[3])] / m)
                      if a.trs_before and c[2] == "this" else "%10s" % "")
            # Throughput over https as a share of the same over http.
            plain = ("%9.2fx" % (med_t[(c[0], c[1], c[2], "http")] / m)
                     if len(schemes) > 1 and c[3] == "https" else "%10s" % "")
            print("%s %10.3f %12.1f %11.0f %8.2fx %s %s %14.1f" % (
                name(c), m, a.archives / m, a.archives * a.objects / m, base / m, before, plain, rss[c] / 1024.0))
        print("\nCPU seconds per run, median (trs serve includes its --max-idle wait, which costs no CPU; "
              "servers counted over the whole run):")
        kinds = sorted({k for c in configs for run in cpus[c] for k in run})
        print(head + " " + " ".join("%9s" % k for k in kinds) + " %9s %12s %14s"
              % ("all", "cores busy", "trs ms/archive"))
        for c in configs:
            med = {k: statistics.median(run.get(k, 0) for run in cpus[c]) for k in kinds}
            print(name(c) + " " + " ".join("%9.2f" % med[k] for k in kinds)
                  + " %9.2f %12.2f %14.2f" % (sum(med.values()), sum(med.values()) / med_t[c],
                                              med["trs"] * 1000.0 / a.archives))
        if srv.request_logs:
            print("\nRequests per archive, median, from the relays' logs (http) and nginx's (https) (SQS: receives, "
                  "message deletes and heartbeats together; the idle tail's empty receives included):")
            kinds = sorted({k for c in configs for run in reqs[c] for k in run})
            print(head + " " + " ".join("%11s" % k for k in kinds) + " %11s %12s" % ("ms/archive", "RTTs/archive"))
            for c in configs:
                med = {k: statistics.median(run.get(k, 0) for run in reqs[c]) / a.archives for k in kinds}
                ms = med_t[c] * 1000.0 / a.archives
                print(name(c) + " " + " ".join("%11.2f" % med[k] for k in kinds)
                      + " %11.1f %12.1f" % (ms, ms / (2 * a.delay_ms) if a.delay_ms else 0))
        if srv.connection_logs:
            print("\nConnections opened per 100 archives, median, from the relays' logs (the bound: "
                  "2 x (archives in flight + 4)):")
            print(head + " %9s %9s %9s %9s" % ("S3", "SQS", "all", "bound"))
            for c in configs:
                med = {k: statistics.median(run.get(k, 0) for run in conns[c]) * 100.0 / a.archives
                       for k in ("S3", "SQS")}
                total = statistics.median(sum(run.values()) for run in conns[c]) * 100.0 / a.archives
                bound = 2 * (c[1] + 4)
                print(name(c) + " %9.1f %9.1f %9.1f %6d %s" % (med["S3"], med["SQS"], total, bound,
                                                               "within" if total <= bound else "over"))
    finally:
        if srv:
            srv.stop()
        if a.keep:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
