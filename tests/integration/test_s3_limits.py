# SPDX-License-Identifier: Apache-2.0
"""Objects whose tags S3 would refuse, restored to S3 through the strict
checker (util.MotoServer's): 30 tags of 256 characters, tags of 256
non-ASCII characters, characters S3 refuses in tags. Every object is
written, with its originals first, and nothing is refused on the way."""

import os
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
import mkarchive  # noqa: E402
import util  # noqa: E402
from util import REGION  # noqa: E402


def test_tags_beyond_s3s_limits_never_fail_the_object():
    objects = [
        {"relative_key": "thirty.txt", "data": b"30 tags",
         "tags": [{"tag%02d" % i: chr(ord("a") + i % 26) * 256} for i in range(30)]},
        {"relative_key": "wide.txt", "data": b"wide tags",
         "tags": [{"k%d" % i + "\u00e9" * 120: "\u00e9" * 256} for i in range(10)]},
        {"relative_key": "odd.txt", "data": b"odd tags",
         "tags": [{"ok": "fine"}, {"a#b": "x"}, {"smile": "\U0001F600"}, {"aws:name": "v"}]},
    ]
    with util.MotoServer() as m:
        s3 = m.client("s3")
        s3.create_bucket(Bucket="dest", CreateBucketConfiguration={"LocationConstraint": REGION})
        with util.tempdir() as d:
            path = os.path.join(d, "a.tar.zst")
            mkarchive.build_archive(path, objects, [{"region": REGION, "bucket": "dest"}])
            res = util.run_trs(["process", path, "--no-progress"], env=m.env(), timeout=180)
            util.expect_exit(res, 0, "tags S3 refuses are carried or dropped, never the object")
        assert m.checker.refusals == {}, m.checker.refused
        assert m.checker.checked > 0

        head = s3.head_object(Bucket="dest", Key="thirty.txt")
        meta = head["Metadata"]
        assert {"original-creation-time", "original-etag"} <= set(meta), meta
        assert sum(len(k) + len(v) for k, v in meta.items()) <= 2048
        assert "original-tags" in meta
        assert b"dropped_tags" in res.stderr
        tags = s3.get_object_tagging(Bucket="dest", Key="thirty.txt")["TagSet"]
        assert len(tags) == 10

        tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket="dest", Key="odd.txt")["TagSet"]}
        assert tags.get("ok") == "fine" and "a#b" not in tags and "aws:name" not in tags
        carried = urllib.parse.parse_qs(s3.head_object(Bucket="dest", Key="odd.txt")["Metadata"]["original-tags"])
        assert carried == {"a#b": ["x"], "smile": ["\U0001F600"], "aws:name": ["v"]}, carried

        assert s3.get_object(Bucket="dest", Key="wide.txt")["Body"].read() == b"wide tags"


def test_dest_naming_a_bucket_is_refused_not_ignored():
    # the bucket was ignored and objects went to the manifest's buckets
    with util.tempdir() as d:
        path = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(path, [{"relative_key": "a.txt", "data": b"a"}], [{"region": REGION, "bucket": "dest"}])
        res = util.run_trs(["process", path, "--dest", "s3://my-bucket", "--no-progress"], timeout=60)
        util.expect_exit(res, 2, "--dest s3://my-bucket")
        assert b"'s3://my-bucket' names a bucket" in res.stderr, res.stderr
