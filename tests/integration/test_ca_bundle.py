# SPDX-License-Identifier: Apache-2.0
"""--ca-bundle and AWS_CA_BUNDLE: a TLS-inspecting proxy's CA. A loopback TLS
server with a self-signed certificate (openssl) relays to moto; trs trusts it
only when given the certificate, and says what to do when it is not."""
import os
import select
import shutil
import socket
import ssl
import subprocess
import threading

import mkarchive
import util
from util import REGION


class TlsRelay:
    """TLS on a loopback port, relayed as plain TCP to moto."""

    def __init__(self, target_port, certfile, keyfile):
        self.target_port = target_port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certfile, keyfile)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handshakes_failed = 0
        self.handshakes_ok = 0
        self.live = set()
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(10)
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            conn.close()
            return
        up = socket.create_connection(("127.0.0.1", self.target_port))
        with self.lock:
            self.handshakes_ok += 1
            self.live.add(tls)
        try:
            socks = [tls, up]
            while not self.stopping:
                readable, _, _ = select.select(socks, [], [], 0.2)
                if tls.pending() and tls not in readable:
                    readable.append(tls)
                done = False
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        done = True
                        break
                    (up if s is tls else tls).sendall(data)
                if done:
                    break
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self.lock:
                self.live.discard(tls)
            up.close()
            tls.close()

    def close_all(self):
        """Close every client connection: the next requests must connect again."""
        with self.lock:
            live = list(self.live)
        for t in live:
            try:
                t.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


def self_signed(d):
    if not shutil.which("openssl"):
        raise util.Missing("openssl not installed")
    cert, key = os.path.join(d, "ca.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def test_ca_bundle_trusts_a_self_signed_endpoint_and_its_absence_fails_clearly():
    with util.MotoServer() as m, util.tempdir() as d:
        cert, key = self_signed(d)
        m.client("s3").create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        objs = [{"relative_key": "tls/%d.txt" % i, "data": b"through the proxy %d\n" % i} for i in range(3)]
        arc = mkarchive.build_archive(os.path.join(d, "a.tar.zst"), objs, [{"region": REGION, "bucket": "dest-a"}])
        relay = TlsRelay(m.port, cert, key)
        try:
            url = "https://127.0.0.1:%d" % relay.port
            env = m.env()
            env["AWS_ENDPOINT_URL"] = url
            base = ["process", arc, "--no-progress", "--log-format", "json"]

            refused = util.run_trs(base, env=env)
            util.expect_exit(refused, (1, 3))
            assert "certificate is not trusted" in refused.err, refused.describe()
            assert "--ca-bundle" in refused.err and "AWS_CA_BUNDLE" in refused.err, refused.describe()
            assert relay.handshakes_failed >= 1

            ok = util.run_trs(base + ["--ca-bundle", cert], env=env)
            util.expect_exit(ok, 0)
            for o in objs:
                got = m.client("s3").get_object(Bucket="dest-a", Key=mkarchive.destination_key(o))
                assert got["Body"].read() == o["data"]

            env["AWS_CA_BUNDLE"] = cert
            util.expect_exit(util.run_trs(base, env=env), 0)

            missing = util.run_trs(base + ["--ca-bundle", os.path.join(d, "nope.pem")], env=env)
            util.expect_exit(missing, 2)
            assert "cannot read the CA bundle" in missing.err and "nope.pem" in missing.err, missing.describe()
        finally:
            relay.stop()


def test_the_ca_bundle_is_loaded_once_per_client_not_per_connection():
    """The CA certificates are loaded at the first https request and given to
    every connection after it: with the bundle deleted after the first
    archive and every connection closed, a second archive still connects
    (libcurl alone would read the file again for each new connection)."""
    import json
    import time
    from test_serve import Serve, wait_until
    with util.MotoServer() as m, util.tempdir() as d:
        cert, key = self_signed(d)
        bundle = os.path.join(d, "bundle.pem")
        shutil.copy(cert, bundle)
        s3 = m.client("s3")
        s3.create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        q, stg = os.path.join(d, "q"), os.path.join(d, "stg")
        os.makedirs(q)
        os.makedirs(os.path.join(stg, "staging"))
        relay = TlsRelay(m.checker.port, cert, key)

        def drop(name, n):
            objs = [{"relative_key": "%s/%s-%d.txt" % (name, name, i), "data": b"%s %d\n" % (name.encode(), i)}
                    for i in range(n)]
            mkarchive.build_archive(os.path.join(stg, "staging", name + ".tar.zst"), objs,
                                    [{"region": REGION, "bucket": "dest-a"}])
            event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                  "s3": {"bucket": {"name": "staging"}, "object": {"key": name + ".tar.zst"}}}]}
            with open(os.path.join(q, name + ".json.tmp"), "w") as f:
                json.dump(event, f)
            os.rename(os.path.join(q, name + ".json.tmp"), os.path.join(q, name + ".json"))
            return objs

        def stored(objs):
            def check():
                for o in objs:
                    try:
                        got = s3.get_object(Bucket="dest-a", Key=mkarchive.destination_key(o))["Body"].read()
                    except Exception:
                        return False
                    if got != o["data"]:
                        return False
                return True
            return check

        try:
            env = dict(m.env(), AWS_ENDPOINT_URL="https://127.0.0.1:%d" % relay.port, MAX_WORKERS="4")
            with Serve(["--queue", "dir://" + q, "--staging", "file://" + stg, "--ca-bundle", bundle,
                        "--poll-interval", "1", "--visibility-timeout", "60", "--log-level", "debug",
                        "--log-format", "json"], env) as srv:
                first = drop("first", 8)
                wait_until(stored(first), 30, "the first archive's objects: " + srv.log()[-2000:])
                os.unlink(bundle)
                relay.close_all()
                before = relay.handshakes_ok
                time.sleep(0.3)
                second = drop("second", 8)
                wait_until(stored(second), 30, "the second archive's objects: " + srv.log()[-2000:])
                rc, _ = srv.stop()
                assert rc == 0, srv.log()
                loads = [r for r in srv.records() if r.get("message") == "TLS: CA certificates loaded once for this client"]
                errors = [r for r in srv.records() if r.get("level") == "error"]
            assert len(loads) == 1, loads
            assert loads[0]["file"] == bundle and loads[0]["certificates"] >= 1, loads
            assert not errors, errors
            assert before >= 1 and relay.handshakes_ok > before, (before, relay.handshakes_ok)
            assert relay.handshakes_failed == 0
        finally:
            relay.stop()
