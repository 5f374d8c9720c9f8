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
also logs each request line; bench/relay.py, asyncio, without --relay). Every
run checks every object's bytes, that staging is empty and that the queue is
drained. Each run also reports the CPU seconds of trs serve and of each
server and relay (/proc/PID/stat deltas), and the requests per archive.

Configurations, interleaved run by run:
  s3rver --archives 1   the named baseline (one archive at a time)
  s3rver --archives A   A archives in flight (default 16)
  nginx  --archives A   nginx WebDAV as a fast S3 sink: the client's own ceiling
each with --trs, and again with --trs-before when given (another build, e.g.
the main branch's, compared in the same run: the "vs before" column).
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


class Servers:
    def __init__(self, work, delay_ms, s3rver, nginx, relay_bin):
        self.procs = []
        self.labels = []
        self.relay_bin = relay_bin
        self.request_logs = {}
        self.work = work
        env = dict(os.environ)
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
        self.relay_s3 = self.relay(self.s3_port, delay_ms, "s3rver")
        self.relay_sqs = self.relay(self.moto_port, delay_ms, "sqs")
        self.nginx_root = None
        if nginx:
            self.nginx_port = free_port()
            self.nginx_root = os.path.join(work, "nginx-root")
            for b in ("staging", "dest-a"):
                os.makedirs(os.path.join(self.nginx_root, b))
            os.makedirs(os.path.join(work, "nginx-tmp"))
            for d in (work, self.nginx_root, os.path.join(self.nginx_root, "staging"),
                      os.path.join(self.nginx_root, "dest-a"), os.path.join(work, "nginx-tmp")):
                os.chmod(d, 0o777)
            conf = os.path.join(work, "nginx.conf")
            with open(conf, "w") as f:
                f.write("""worker_processes 2;
pid %(w)s/nginx.pid;
error_log %(w)s/nginx-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %(w)s/nginx-tmp;
	client_max_body_size 0;
	server {
		listen 127.0.0.1:%(p)d;
		root %(r)s;
		location / {
			dav_methods PUT DELETE;
			create_full_put_path on;
			dav_access user:rw group:rw all:rw;
		}
	}
}
""" % {"w": work, "p": self.nginx_port, "r": self.nginx_root})
            self.start(["nginx", "-c", conf, "-g", "daemon off;"], "nginx")
            wait_port(self.nginx_port, "nginx")
            self.relay_nginx = self.relay(self.nginx_port, delay_ms, "nginx")

    def start(self, argv, what, env=None):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.procs.append(p)
        self.labels.append(what)
        return p

    def relay(self, target, delay_ms, name):
        port = free_port()
        if self.relay_bin:  # bench/relay.c, which also logs each request line
            log = os.path.join(self.work, "requests-%s.log" % name)
            self.request_logs[name] = log
            argv = [self.relay_bin, str(port), str(target), str(delay_ms), log]
        else:
            argv = [sys.executable, os.path.join(HERE, "relay.py"), str(port), str(target), str(delay_ms)]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE)
        self.procs.append(p)
        self.labels.append("relay")
        assert p.stdout.readline().strip() == b"ready"
        return port

    def request_log_sizes(self):
        return {k: os.path.getsize(v) for k, v in self.request_logs.items()}

    def requests_since(self, sizes):
        """Requests sent through each relay since `sizes`: {"s3rver GET": n, "sqs POST": n, ...}."""
        out = {}
        for name, path in self.request_logs.items():
            with open(path, "rb") as f:
                f.seek(sizes.get(name, 0))
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        k = "%s %s" % ("S3" if name != "sqs" else "SQS", parts[2].decode())
                        out[k] = out.get(k, 0) + 1
        return out

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

    def run(self, sink, archives, trs):
        self.clear_dest(sink)
        self.stage(sink)
        port = self.srv.relay_nginx if sink == "nginx" else self.srv.relay_s3
        queue = "http://127.0.0.1:%d%s" % (self.srv.relay_sqs, self.queue_path)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
                   AWS_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
        for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
            env.pop(k, None)
        log = os.path.join(self.work, "serve.log")
        rss = os.path.join(self.work, "rss")
        argv = ["/usr/bin/time", "-f", "%M %U %S", "-o", rss, trs, "serve", "--queue", queue,
                "--endpoint-url", "http://127.0.0.1:%d" % port, "--batch", "10", "--poll-interval", "1",
                "--max-idle", "2", "--archives", str(archives), "--metrics", "none", "--log-format", "json",
                "--visibility-timeout", "120"]
        cpu0, req0 = self.srv.cpu(), self.srv.request_log_sizes()
        with open(log, "wb") as f:
            rc = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=f, env=env, timeout=900)
        cpu1, requests = self.srv.cpu(), self.srv.requests_since(req0)
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
        return max(deleted) - start, int(peak), cpu, requests


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
    ap.add_argument("archives", type=int)
    ap.add_argument("objects", type=int)
    ap.add_argument("bytes", type=int)
    ap.add_argument("delay_ms", type=float)
    ap.add_argument("runs", type=int)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="trs-stream.", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    srv = None
    try:
        srv = Servers(work, a.delay_ms, a.s3rver, a.nginx, a.relay)
        arch = build_archives(work, a.archives, a.objects, a.bytes)
        b = Bench(a, srv, arch, work)
        builds = [("this", a.trs)] + ([("before", a.trs_before)] if a.trs_before else [])
        configs = [(sink, n, label) for label, _ in builds
                   for sink, n in [("s3rver", 1), ("s3rver", a.in_flight)] + ([("nginx", a.in_flight)] if a.nginx else [])]
        binary = dict(builds)

        def name(c):
            return "%-8s %-12s %-7s" % (c[0], "--archives %d" % c[1], c[2])
        times = {c: [] for c in configs}
        rss = {c: 0 for c in configs}
        cpus = {c: [] for c in configs}
        reqs = {c: [] for c in configs}
        for r in range(a.runs):
            for c in configs:
                t, peak, cpu, requests = b.run(c[0], c[1], binary[c[2]])
                times[c].append(t)
                rss[c] = max(rss[c], peak)
                cpus[c].append(cpu)
                reqs[c].append(requests)
                print("run %d %s %.3f s (%.1f archives/s), peak RSS %d KiB, CPU s: %s"
                      % (r + 1, name(c), t, a.archives / t, peak,
                         " ".join("%s %.2f" % kv for kv in sorted(cpu.items()))), flush=True)
        print("\n%d archives x %d objects x %d bytes, %g ms each way, median of %d runs "
              "(every object checked, staging emptied, queue drained):" % (a.archives, a.objects, a.bytes,
                                                                            a.delay_ms, a.runs))
        print("%-8s %-12s %-7s %10s %12s %11s %9s %10s %14s" % ("sink", "config", "trs", "seconds", "archives/s",
                                                              "objects/s", "ratio", "vs before", "peak RSS MiB"))
        for c in configs:
            m = statistics.median(times[c])
            base = statistics.median(times[("s3rver", 1, c[2])])  # the same build's --archives 1
            before = ("%9.2fx" % (statistics.median(times[(c[0], c[1], "before")]) / m)
                      if a.trs_before and c[2] == "this" else "%10s" % "")
            print("%s %10.3f %12.1f %11.0f %8.2fx %s %14.1f" % (
                name(c), m, a.archives / m, a.archives * a.objects / m, base / m, before, rss[c] / 1024.0))
        print("\nCPU seconds per run, median (trs serve includes its --max-idle wait, which costs no CPU; "
              "servers counted over the whole run):")
        kinds = sorted({k for c in configs for run in cpus[c] for k in run})
        print("%-8s %-12s %-7s " % ("sink", "config", "trs") + " ".join("%9s" % k for k in kinds) + " %9s %12s"
              % ("all", "cores busy"))
        for c in configs:
            med = {k: statistics.median(run.get(k, 0) for run in cpus[c]) for k in kinds}
            print(name(c) + " " + " ".join("%9.2f" % med[k] for k in kinds)
                  + " %9.2f %12.2f" % (sum(med.values()), sum(med.values()) / statistics.median(times[c])))
        if srv.request_logs:
            print("\nRequests per archive through the relays, median (SQS: receives, message deletes and "
                  "heartbeats together; the idle tail's empty receives included):")
            kinds = sorted({k for c in configs for run in reqs[c] for k in run})
            print("%-8s %-12s %-7s " % ("sink", "config", "trs") + " ".join("%11s" % k for k in kinds)
                  + " %11s %12s" % ("ms/archive", "RTTs/archive"))
            for c in configs:
                med = {k: statistics.median(run.get(k, 0) for run in reqs[c]) / a.archives for k in kinds}
                ms = statistics.median(times[c]) * 1000.0 / a.archives
                print(name(c) + " " + " ".join("%11.2f" % med[k] for k in kinds)
                      + " %11.1f %12.1f" % (ms, ms / (2 * a.delay_ms) if a.delay_ms else 0))
    finally:
        if srv:
            srv.stop()
        if a.keep:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
