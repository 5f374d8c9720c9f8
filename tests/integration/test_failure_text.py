"""Failures an operator can act on (issue: ready to release and to run): a
service that cannot be reached names the endpoint settings and exits 5, not
3 ("the archive cannot be read"); a limit that refuses an archive names its
flag, and the report still says what the manifest claimed."""
import json
import socket

import mkarchive
import util
from util import REGION, expect_exit, process, sandbox


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def test_an_unreachable_endpoint_exits_5_and_names_the_endpoint_settings():
    env = util.clean_env(extra={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_MAX_ATTEMPTS": "1"})
    for url in ("http://127.0.0.1:%d" % _closed_port(), "http://no-such-host.invalid:9"):
        res = util.run_trs(["process", "s3://staging/a.tar.zst", "--endpoint-url", url, "--no-progress"], env=env)
        expect_exit(res, 5, url)
        assert "--endpoint-url" in res.err and "AWS_ENDPOINT_URL" in res.err, res.err


def test_https_against_a_plain_http_endpoint_exits_5():
    with util.MotoServer() as m:
        env = dict(m.env(), AWS_MAX_ATTEMPTS="1")
        url = m.url.replace("http://", "https://")
        res = util.run_trs(["process", "s3://staging/a.tar.zst", "--endpoint-url", url, "--no-progress"], env=env)
        expect_exit(res, 5)
        assert "http or https" in res.err, res.err


def test_a_manifest_over_the_limit_names_the_flag_and_the_report_its_size():
    objs = [{"relative_key": "o%04d-%s" % (i, "x" * 100), "data": b"x"} for i in range(200)]
    with sandbox() as sb:
        a = sb.archive(objects=objs, targets=[{"region": REGION, "bucket": "dest-a"}])
        res = process(a, sb.out, "--max-manifest", "16K", json_report=True)
        expect_exit(res, 3)
        rep = json.loads(res.out)
        assert "--max-manifest" in rep["error"], rep["error"]
        want = len(mkarchive.manifest_bytes(objs, [{"region": REGION, "bucket": "dest-a"}]))
        assert rep["manifest_bytes"] == want, (rep["manifest_bytes"], want)
