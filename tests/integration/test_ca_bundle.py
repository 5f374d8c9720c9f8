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
            up.close()
            tls.close()

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
