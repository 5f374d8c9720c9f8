# SPDX-License-Identifier: Apache-2.0
"""A 200 is not always a success (issue: S3's odd answers): S3 documents that
CompleteMultipartUpload and the copies can fail after sending 200, and a
proxy that closes a 200 early leaves an empty or cut body. An answer whose
body is not its result is a failed attempt, retried; after the last attempt
the object fails, the archive is not reported restored, and `trs serve`
keeps its message and staging archive.

The strict checker (tests/fixtures/s3checker.py) answers chosen requests
200 OK with such a body without forwarding them, so the object is never
created behind the client's back.
"""
import json
import os

import mkarchive
import util
from util import REGION
from test_serve import Serve, setup_moto, staging_keys, queue_counts

MIB = 1 << 20
MP = ["--multipart-threshold", "5M", "--part-size", "5M"]


def _archive(d, objs, targets=None, manifest="last"):
    return mkarchive.build_archive(os.path.join(d, "a.tar.zst"), objs,
                                   targets or [{"region": REGION, "bucket": "dest-a"}], manifest_position=manifest)


def _bucket(s3, *names):
    for n in names:
        s3.create_bucket(Bucket=n, CreateBucketConfiguration={"LocationConstraint": REGION})


def _exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except Exception:
        return False


def test_an_odd_200_on_complete_is_retried_and_the_object_lands():
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        _bucket(s3, "dest-a")
        data = os.urandom(12 * MIB)
        path = _archive(d, [{"relative_key": "big.bin", "data": data}])
        for kind in ("empty", "declaration", "truncated"):
            s3.delete_object(Bucket="dest-a", Key="big.bin")
            m.checker.odd_answers("CompleteMultipartUpload", body=kind, times=1)
            res = util.run_trs(["process", path, "--json", "--no-progress"] + MP, env=m.env(), timeout=180)
            util.expect_exit(res, 0, kind)
            assert json.loads(res.stdout)["objects_written"] == 1, res.stdout
            assert s3.get_object(Bucket="dest-a", Key="big.bin")["Body"].read() == data, kind
            assert "instead of its result" in res.err, res.err[-2000:]
        assert m.checker.odd_served.get("CompleteMultipartUpload") == 3, m.checker.odd_served
        assert s3.list_multipart_uploads(Bucket="dest-a").get("Uploads", []) == []


def test_complete_answered_200_with_an_empty_body_every_time_fails_the_object():
    # Before, the first such 200 counted as success: exit 0, "restored", and no object.
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        _bucket(s3, "dest-a")
        path = _archive(d, [{"relative_key": "big.bin", "data": os.urandom(7 * MIB)},
                            {"relative_key": "small.txt", "data": b"small"}])
        m.checker.odd_answers("CompleteMultipartUpload", body="empty", times=100)
        res = util.run_trs(["process", path, "--json", "--no-progress"] + MP, env=m.env(), timeout=300)
        util.expect_exit(res, 1)
        rep = json.loads(res.stdout)
        assert rep["objects_written"] == 1 and rep["objects_failed"] == 1, rep
        failure = rep["failures"][0]
        assert failure["key"] == "big.bin" and "CompleteMultipartUpload" in failure["message"], failure
        assert "empty body" in failure["message"], failure
        assert not _exists(s3, "dest-a", "big.bin")
        assert s3.list_multipart_uploads(Bucket="dest-a").get("Uploads", []) == []  # aborted, not left


def test_odd_200s_on_create_and_copy_are_retried():
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        _bucket(s3, "dest-a", "dest-b")
        data = os.urandom(9 * MIB)  # manifest first: streamed to dest-a, copied to dest-b
        path = _archive(d, [{"relative_key": "big.bin", "data": data}],
                        [{"region": REGION, "bucket": "dest-a"}, {"region": REGION, "bucket": "dest-b"}], "first")
        m.checker.odd_answers("CreateMultipartUpload", body="truncated", times=1)
        m.checker.odd_answers("CopyObject", body="empty", times=1)
        res = util.run_trs(["process", path, "--json", "--no-progress", "--max-memory", "64M"] + MP,
                           env=m.env(), timeout=180)
        util.expect_exit(res, 0)
        assert m.checker.odd_served == {"CreateMultipartUpload": 1, "CopyObject": 1}, m.checker.odd_served
        for b in ("dest-a", "dest-b"):
            assert s3.get_object(Bucket=b, Key="big.bin")["Body"].read() == data, b


def test_serve_keeps_the_message_and_the_archive_when_complete_never_succeeds():
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            # over the 16 MiB multipart threshold of trs serve
            path = _archive(d, [{"relative_key": "big.bin", "data": os.urandom(17 * MIB)}])
            with open(path, "rb") as f:  # one PutObject: one event
                s3.put_object(Bucket="staging", Key="in/a.tar.zst", Body=f.read())
        m.checker.odd_answers("CompleteMultipartUpload", body="declaration", times=1000)
        env = dict(m.env(), AWS_MAX_ATTEMPTS="2")
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "60"], env) as srv:
            srv.wait_log("archive failed; archive and message kept for a retry", timeout=120)
            rc, _ = srv.stop()
            assert rc == 0, srv.log()[-2000:]
            recs = srv.records()
        assert not any(r.get("message") == "archive restored" for r in recs), recs
        assert staging_keys(s3) == ["in/a.tar.zst"]
        visible, invisible = queue_counts(sqs, url)
        assert visible + invisible == 1, (visible, invisible)
        assert not _exists(s3, "dest-a", "big.bin")
