#!/usr/bin/env python3
"""The production workload of `trs serve`: a stream of small archives.

Driven by bench/stream.sh (which installs the servers). Builds ARCHIVES
archives of OBJECTS objects of BYTES bytes the source side's way
(tests/fixtures/mkarchive.py: PAX, objects first, manifest last, zstd),
puts them in a staging bucket, queues one S3 event per archive, and times
`trs serve` draining the queue: from its "serving" log line to its last
"message deleted" line. S3 and SQS are reached through bench/relay.py, which
delays each direction by DELAY_MS. Every run checks every object's bytes,
that staging is empty and that the queue is drained.

Configurations, interleaved run by run:
  s3rver --archives 1   the named baseline (one archive at a time)
  s3rver --archives A   A archives in flight (default 16)
  nginx  --archives A   nginx WebDAV as a fast S3 sink: the client's own ceiling
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
    def __init__(self, work, delay_ms, s3rver, nginx):
        self.procs = []
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
        self.relay_s3 = self.relay(self.s3_port, delay_ms)
        self.relay_sqs = self.relay(self.moto_port, delay_ms)
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
            self.relay_nginx = self.relay(self.nginx_port, delay_ms)

    def start(self, argv, what, env=None):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.procs.append(p)
        return p

    def relay(self, target, delay_ms):
        port = free_port()
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "relay.py"), str(port), str(target),
                              str(delay_ms)], stdout=subprocess.PIPE)
        self.procs.append(p)
        assert p.stdout.readline().strip() == b"ready"
        return port

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

    def run(self, sink, archives):
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
        argv = ["/usr/bin/time", "-f", "%M", "-o", rss, self.a.trs, "serve", "--queue", queue,
                "--endpoint-url", "http://127.0.0.1:%d" % port, "--batch", "10", "--poll-interval", "1",
                "--max-idle", "2", "--archives", str(archives), "--metrics", "none", "--log-format", "json",
                "--visibility-timeout", "120"]
        with open(log, "wb") as f:
            rc = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=f, env=env, timeout=900)
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
            peak_kib = int(f.read().split()[-1])
        return max(deleted) - start, peak_kib


def main():
    # SIGTERM stops like Ctrl-C: the servers this started are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("--trs", required=True)
    ap.add_argument("--s3rver", required=True)
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--in-flight", type=int, default=16)
    ap.add_argument("archives", type=int)
    ap.add_argument("objects", type=int)
    ap.add_argument("bytes", type=int)
    ap.add_argument("delay_ms", type=float)
    ap.add_argument("runs", type=int)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="trs-stream.", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    srv = None
    try:
        srv = Servers(work, a.delay_ms, a.s3rver, a.nginx)
        arch = build_archives(work, a.archives, a.objects, a.bytes)
        b = Bench(a, srv, arch, work)
        configs = [("s3rver", 1), ("s3rver", a.in_flight)] + ([("nginx", a.in_flight)] if a.nginx else [])
        times = {c: [] for c in configs}
        rss = {c: 0 for c in configs}
        for r in range(a.runs):
            for c in configs:
                t, peak = b.run(*c)
                times[c].append(t)
                rss[c] = max(rss[c], peak)
                print("run %d %-6s --archives %-3d %.3f s (%.1f archives/s), peak RSS %d KiB"
                      % (r + 1, c[0], c[1], t, a.archives / t, peak), flush=True)
        base = statistics.median(times[configs[0]])
        print("\n%d archives x %d objects x %d bytes, %g ms each way, median of %d runs "
              "(every object checked, staging emptied, queue drained):" % (a.archives, a.objects, a.bytes,
                                                                            a.delay_ms, a.runs))
        print("%-8s %-12s %10s %12s %11s %9s %14s" % ("sink", "config", "seconds", "archives/s", "objects/s",
                                                     "ratio", "peak RSS MiB"))
        for c in configs:
            m = statistics.median(times[c])
            print("%-8s %-12s %10.3f %12.1f %11.0f %8.2fx %14.1f" % (
                c[0], "--archives %d" % c[1], m, a.archives / m, a.archives * a.objects / m, base / m,
                rss[c] / 1024.0))
    finally:
        if srv:
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
