# SPDX-License-Identifier: Apache-2.0
"""Integrity checked by the server (issue: cost), against moto_server.

A single PUT carries Content-MD5 (the manifest's plain-MD5 etag), and S3
refuses bytes that do not match it (400 BadDigest, nothing written), so trs
does not hash those bodies itself. moto 5 ignores Content-MD5, so these
tests put a proxy in front of it that checks it the way S3 does (the
CheckingProxy below). A wrong MD5 is then refused by the "server": the
object is reported failed with S3's answer, nothing is written, the other
objects are, and the archive is left where it was; under `trs serve` the
archive stays in staging and the message in the queue. --verify-local (or
TRS_VERIFY_LOCAL=1) turns the local check back on for servers that ignore
Content-MD5: the object then fails before a byte is sent. Multipart uploads
are always checked locally (their ETag is not the MD5).

SSE-KMS puts ask for an S3 Bucket Key by default
(x-amz-server-side-encryption-bucket-key-enabled: true), and not with
--no-bucket-key or TRS_S3_BUCKET_KEY=false.
"""
import base64
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
import faultproxy  # noqa: E402
import mkarchive  # noqa: E402
import util  # noqa: E402
from util import REGION  # noqa: E402

MIB = 1 << 20


class CheckingProxy(faultproxy.FaultProxy):
    """Forwards every request, but answers a PUT whose body does not have
    its Content-MD5 with S3's 400 BadDigest, as S3 does; records the PUTs."""

    def __init__(self, upstream, **kw):
        super().__init__(upstream, time_limit=120, **kw)
        self.puts = []  # (method, target, {header: value}) of every PUT and POST forwarded or refused

    def _forward(self, method, target, headers, body):
        hdrs = {n.lower(): v for n, v in headers}
        if method in ("PUT", "POST"):
            with self.lock:
                self.puts.append((method, target, hdrs))
        if method == "PUT":
            md5 = hdrs.get("content-md5")
            if md5 is not None and base64.b64decode(md5) != hashlib.md5(body).digest():
                return 400, "Bad Request", [("Content-Type", "application/xml"),
                                            ("x-amz-request-id", "CHECKER")], faultproxy.error_body("BadDigest")
        return super()._forward(method, target, headers, body)

    def put_paths(self):
        """The paths of the PutObject requests (PUTs without a query)."""
        with self.lock:
            return [t for m, t, _ in self.puts if m == "PUT" and "?" not in t]

    def object_writes(self):
        """Headers of PutObject and CreateMultipartUpload requests."""
        with self.lock:
            return [h for m, t, h in self.puts if (m == "PUT" and "?" not in t) or t.endswith("?uploads") or
                    "?uploads=" in t]


def rnd(n, seed):
    import random
    return random.Random(seed).randbytes(n)


def make_buckets(s3, *names):
    for b in names:
        s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})


def keys_of(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def objects_with_one_wrong_md5(big=False):
    objs = [{"relative_key": "good/%d.bin" % i, "source_prefix": "good", "object_name": "%d.bin" % i,
             "data": rnd(3000 + i, i)} for i in range(3)]
    # The member's bytes are not the ones the manifest's etag names (same size).
    objs.append({"relative_key": "bad/wrong-md5.bin", "data": rnd(4096, 9), "wrong_etag": True})
    if big:
        objs.append({"relative_key": "bad/wrong-md5-multipart.bin", "data": rnd(6 * MIB, 10), "wrong_etag": True})
    return objs


def restore(m, proxy, objects, *extra, env_extra=None):
    s3 = m.client("s3")
    make_buckets(s3, "dest-a")
    with util.tempdir() as d:
        path = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(path, objects, [{"region": REGION, "bucket": "dest-a"}], level=1)
        env = m.env()
        env["AWS_ENDPOINT_URL"] = proxy.url
        env.update(env_extra or {})
        res = util.run_trs(["process", path, "--json", "--no-progress",
                            "--multipart-threshold", "5M", "--part-size", "5M"] + list(extra), env=env, timeout=120)
        assert os.path.exists(path), "the archive was removed"
    return s3, res


def test_wrong_md5_is_refused_by_the_server_not_written_and_reported():
    with util.MotoServer() as m, CheckingProxy(m.url) as proxy:
        objects = objects_with_one_wrong_md5(big=True)
        s3, res = restore(m, proxy, objects)
        util.expect_exit(res, 1, "a restore with one object the server refuses")
        report = res.json()
        assert report["objects_written"] == 3 and report["objects_failed"] == 2, report
        fails = {f["relative_key"]: f for f in report["failures"]}
        assert set(fails) == {"bad/wrong-md5.bin", "bad/wrong-md5-multipart.bin"}, report["failures"]
        small = fails["bad/wrong-md5.bin"]
        # Sent: the server, not trs, found it (no local hash of a single PUT).
        assert "/dest-a/" + mkarchive.destination_key(objects[3]) in proxy.put_paths(), proxy.put_paths()
        assert "BadDigest" in small["message"] and "dest-a" in small["message"], small
        assert small["code"] == "TRS_EINTEGRITY", small
        # Multipart: its ETag is not the MD5, so it is checked here and aborted, not completed.
        big = fails["bad/wrong-md5-multipart.bin"]
        assert big["code"] == "TRS_EINTEGRITY" and "MD5" in big["message"] and "BadDigest" not in big["message"], big
        assert keys_of(s3, "dest-a") == sorted(mkarchive.destination_key(o) for o in objects[:3]), keys_of(s3, "dest-a")
        assert s3.list_multipart_uploads(Bucket="dest-a").get("Uploads", []) == [], "parts left behind"
        for o in objects[:3]:
            assert s3.get_object(Bucket="dest-a", Key=mkarchive.destination_key(o))["Body"].read() == o["data"]


def test_verify_local_checks_before_sending_for_servers_that_ignore_content_md5():
    for extra, env_extra in ((["--verify-local"], None), ([], {"TRS_VERIFY_LOCAL": "1"})):
        with util.MotoServer() as m, CheckingProxy(m.url) as proxy:
            objects = objects_with_one_wrong_md5()
            s3, res = restore(m, proxy, objects, *extra, env_extra=env_extra)
            util.expect_exit(res, 1, "a restore with one wrong MD5 and %s" % (extra or env_extra))
            report = res.json()
            assert report["objects_written"] == 3 and report["objects_failed"] == 1, report
            (fail,) = report["failures"]
            assert "MD5" in fail["message"] and "BadDigest" not in fail["message"], fail
            assert "/dest-a/" + mkarchive.destination_key(objects[3]) not in proxy.put_paths(), "sent although checked locally"
            assert keys_of(s3, "dest-a") == sorted(mkarchive.destination_key(o) for o in objects[:3])


def test_sse_kms_asks_for_a_bucket_key_unless_switched_off():
    objects = [{"relative_key": "k/%d.bin" % i, "data": rnd(2000, i)} for i in range(2)]
    objects.append({"relative_key": "k/multipart.bin", "data": rnd(6 * MIB, 5)})
    for extra, env_extra, want in ((), None, True), (["--no-bucket-key"], None, False), \
            ((), {"TRS_S3_BUCKET_KEY": "false"}, False):
        with util.MotoServer() as m, CheckingProxy(m.url) as proxy:
            s3 = m.client("s3")
            arn = m.client("kms").create_key()["KeyMetadata"]["Arn"]
            make_buckets(s3, "dest-k")
            with util.tempdir() as d:
                path = os.path.join(d, "k.tar.zst")
                mkarchive.build_archive(path, objects, [{"region": REGION, "bucket": "dest-k", "kms_key_arn": arn}])
                env = m.env()
                env["AWS_ENDPOINT_URL"] = proxy.url
                env.update(env_extra or {})
                res = util.run_trs(["process", path, "--json", "--no-progress", "--multipart-threshold", "5M"] +
                                   list(extra), env=env, timeout=120)
                util.expect_exit(res, 0, "a restore with SSE-KMS")
            puts = proxy.object_writes()
            sent = [h.get("x-amz-server-side-encryption-bucket-key-enabled") for h in puts]
            assert sent and all(h.get("x-amz-server-side-encryption") == "aws:kms" for h in puts), puts
            assert sent == (["true"] * len(sent) if want else [None] * len(sent)), (extra, env_extra, sent)
            assert len(puts) == 3, puts  # two PutObject, one CreateMultipartUpload
            for o in objects[:2]:  # moto keeps BucketKeyEnabled of single puts only
                head = s3.head_object(Bucket="dest-k", Key=mkarchive.destination_key(o))
                assert head["ServerSideEncryption"] == "aws:kms", head
                assert head.get("BucketKeyEnabled", False) == want, (o["relative_key"], head.get("BucketKeyEnabled"))


def test_serve_keeps_archive_and_message_when_the_server_refuses_a_wrong_md5():
    from test_serve import Serve, put_archive, queue_counts, setup_moto, staging_keys
    with util.MotoServer() as m, CheckingProxy(m.url) as proxy:
        s3, sqs, url = setup_moto(m)
        objects = objects_with_one_wrong_md5()
        with util.tempdir() as d:
            put_archive(s3, "in/bad-md5.tar.zst", objects, [{"region": REGION, "bucket": "dest-a"}], d)
        env = m.env()
        env["AWS_ENDPOINT_URL_S3"] = proxy.url  # S3 through the Content-MD5 check, SQS straight to moto
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "2"], env) as srv:
            srv.wait_log("archive failed; archive and message kept for a retry", timeout=60)
            rc, _ = srv.stop()
            assert rc == 0, srv.log()[-2000:]
            log = srv.log()
        assert "BadDigest" in log, log[-2000:]
        assert "/dest-a/" + mkarchive.destination_key(objects[3]) in proxy.put_paths(), proxy.put_paths()
        assert staging_keys(s3) == ["in/bad-md5.tar.zst"], staging_keys(s3)
        visible, invisible = queue_counts(sqs, url)
        assert visible + invisible == 1, (visible, invisible, log[-1500:])
        assert keys_of(s3, "dest-a") == sorted(mkarchive.destination_key(o) for o in objects[:3])
