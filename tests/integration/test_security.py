# SPDX-License-Identifier: Apache-2.0
"""Security checks: TLS verification is on by default (a self-signed
endpoint is refused) and --no-verify-ssl says loudly that it is off, for
`trs process` and `trs serve`; secrets (the secret key, the session token,
signatures, Authorization values) never reach stdout or stderr, even at
--log-level debug, through full restores to S3 and from an SQS queue."""

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mkarchive
import util
from util import REGION
from test_serve import Serve, setup_moto, put_archive, wait_until, queue_counts, staging_keys

MIB = 1 << 20
SECRET = "SECRETdoNotLog1234567890"
TOKEN = "TOKENdoNotLog0987654321SessionTokenValue"
ACCESS_KEY = "AKIDSECURITYTEST"
TLS_WARNING = "TLS certificate verification is OFF"


class _FakeS3(BaseHTTPRequestHandler):
    """Answers every PUT with 200 and the body's MD5 as its ETag."""
    protocol_version = "HTTP/1.1"

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with self.server.lock:
            self.server.puts.append(self.path)
        self.send_response(200)
        self.send_header("ETag", '"%s"' % hashlib.md5(body).hexdigest())
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class TlsFakeS3:
    def __init__(self, d):
        if not shutil.which("openssl"):
            raise util.Missing("openssl not installed")
        self.cert, self.key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                            "-days", "1", "-keyout", self.key, "-out", self.cert],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        assert r.returncode == 0, r.stdout[-500:]

    def __enter__(self):
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), _FakeS3)
        self.srv.daemon_threads = True
        self.srv.lock = threading.Lock()
        self.srv.puts = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        return self

    def puts(self):
        with self.srv.lock:
            return list(self.srv.puts)

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.srv.server_close()


def _objects():
    return [{"relative_key": "tls/a.txt", "data": b"over tls"}, {"relative_key": "tls/b.txt", "data": b"b" * 3000}]


def test_tls_verification_is_on_by_default_and_no_verify_ssl_warns():
    with util.tempdir() as d, TlsFakeS3(d) as fake:
        path = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(path, _objects(), [{"region": REGION, "bucket": "dest-a"}])
        env = util.clean_env(REGION, {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
        refused = util.run_trs(["process", path, "--endpoint-url", fake.url, "--no-progress"], env=env, timeout=60)
        util.expect_exit(refused, 1, "a self-signed endpoint without --no-verify-ssl")
        assert "certificate" in refused.err.lower(), refused.describe()
        assert TLS_WARNING not in refused.err
        assert fake.puts() == [], "an object went to an unverified endpoint: %s" % fake.puts()

        allowed = util.run_trs(["process", path, "--endpoint-url", fake.url, "--no-progress", "--no-verify-ssl"],
                               env=env, timeout=60)
        util.expect_exit(allowed, 0, "--no-verify-ssl")
        assert TLS_WARNING in allowed.err, allowed.describe()
        assert len(fake.puts()) == 2, fake.puts()


def test_serve_no_verify_ssl_warns_and_verifies_by_default():
    with util.tempdir() as d, TlsFakeS3(d) as fake:
        q, stg = os.path.join(d, "q"), os.path.join(d, "stg")
        os.makedirs(os.path.join(stg, "staging"))
        os.makedirs(q)
        mkarchive.build_archive(os.path.join(stg, "staging", "one.tar.zst"), _objects(),
                                [{"region": REGION, "bucket": "dest-a"}])
        body = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                             "s3": {"bucket": {"name": "staging"}, "object": {"key": "one.tar.zst"}}}]}
        with open(os.path.join(q, "1.json"), "w") as f:
            json.dump(body, f)
        env = util.clean_env(REGION, {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
        base = ["--queue", "dir://" + q, "--staging", "file://" + stg, "--endpoint-url", fake.url,
                "--poll-interval", "1", "--visibility-timeout", "30"]
        with Serve(base, env) as srv:
            srv.wait_log("archive failed; archive and message kept for a retry", timeout=30)
            rc, _ = srv.stop()
            log = srv.log()
        assert rc == 0, log[-2000:]
        assert "certificate" in log.lower(), log[-2000:]
        assert TLS_WARNING not in log
        assert fake.puts() == []
        # The claimed message comes back after its visibility timeout; put it back at once instead.
        inflight = os.path.join(q, ".inflight")
        for n in os.listdir(inflight):
            os.rename(os.path.join(inflight, n), os.path.join(q, "again.json"))
        with Serve(base + ["--no-verify-ssl"], env) as srv:
            srv.wait_log("archive restored", timeout=30)
            rc, _ = srv.stop()
            log = srv.log()
            recs = srv.records()
        assert rc == 0, log[-2000:]
        assert any(r.get("level") == "warn" and TLS_WARNING in r.get("message", "") for r in recs), log[-2000:]
        assert len(fake.puts()) == 2, fake.puts()


def _assert_no_secrets(what, *streams):
    text = "\n".join(s.decode("utf-8", "replace") if isinstance(s, bytes) else s for s in streams)
    for needle in (SECRET, TOKEN, "Signature=", "AWS4-HMAC-SHA256 Credential", "X-Amz-Security-Token:"):
        assert needle.lower() not in text.lower(), "%s: %r appears in the output: ...%s..." % (
            what, needle, text[max(0, text.lower().find(needle.lower()) - 300):][:600])
    assert '"authorization"' not in text.lower() and "authorization:" not in text.lower(), what


def test_no_secret_in_debug_logs_of_process_and_serve():
    with util.MotoServer() as m, util.tempdir() as d:
        s3, sqs, url = setup_moto(m)
        s3.create_bucket(Bucket="dest-b", CreateBucketConfiguration={"LocationConstraint": REGION})
        env = m.env(key=(ACCESS_KEY, SECRET))
        env["AWS_SESSION_TOKEN"] = TOKEN
        objects = [{"relative_key": "s/small.txt", "data": b"small", "tags": [{"a": "b"}]},
                   {"relative_key": "s/multi.bin", "data": os.urandom(11 * MIB)}]
        targets = [{"region": REGION, "bucket": "dest-a"}, {"region": REGION, "bucket": "dest-b"}]
        # trs process from s3:// to S3, multipart included
        path = os.path.join(d, "p.tar.zst")
        mkarchive.build_archive(path, objects, targets, level=1)
        with open(path, "rb") as f:
            s3.put_object(Bucket="dest-b", Key="staged/p.tar.zst", Body=f.read())
        res = util.run_trs(["process", "s3://dest-b/staged/p.tar.zst", "--log-level", "debug", "--json",
                            "--no-progress", "--multipart-threshold", "5242880", "--part-size", "5242880"],
                           env=env, timeout=120)
        util.expect_exit(res, 0, "process at debug level")
        assert b'"level":"debug"' in res.stderr or b"debug" in res.stderr, res.err[-500:]
        _assert_no_secrets("trs process", res.stdout, res.stderr)
        # trs serve on the queue, a real notification, a full restore
        put_archive(s3, "in/serve.tar.zst", objects, targets, d)
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "30", "--log-level", "debug"],
                   env) as srv:
            wait_until(lambda: not staging_keys(s3) and queue_counts(sqs, url) == (0, 0), 60,
                       "the archive restored: " + srv.log()[-1500:])
            rc, _ = srv.stop()
            srv.out.seek(0)
            out = srv.out.read()
            log = srv.log()
        assert rc == 0, log[-2000:]
        assert "archive restored" in log
        _assert_no_secrets("trs serve", out, log)
        got = s3.get_object(Bucket="dest-b", Key=mkarchive.destination_key(objects[1]))["Body"].read()
        assert got == objects[1]["data"]
