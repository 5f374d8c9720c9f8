# SPDX-License-Identifier: Apache-2.0
"""Newest wins on S3 (issue: converge, never regress), against moto behind the
strict checker, which holds conditional writes to S3's rules (412, 409, 404).

An object replaces what stands at its key only when it is a newer version of
the source object: newer, older, then newer again into a versioned bucket
leaves the newer in exactly one version. A new key costs one request, an
update three (the refused PUT, a HEAD, the PUT under If-Match), an older
version two and no second body; a large upload looks first and never starts
when it would lose. Credentials that may write but not read a bucket (the
sample stack's task role) write as before, said once per bucket and counted.
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
import mkarchive  # noqa: E402
import util  # noqa: E402
from util import REGION  # noqa: E402

MIB = 1 << 20
OLD, NEW = "2025-01-23 10:00:00", "2025-01-23 10:05:00"


def rnd(n, seed):
    out = bytearray()
    h = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


def bucket(s3, name, versioned=False):
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def archive(d, name, when, datas, targets=None):
    objs = [{"relative_key": "k%d.bin" % i, "data": data, "creation_time": when} for i, data in enumerate(datas)]
    return mkarchive.build_archive(os.path.join(d, name), objs, targets or [{"region": REGION, "bucket": "dest-a"}])


def restore(m, path, *extra, env=None, code=0):
    res = util.run_trs(["process", path, "--json", "--no-progress"] + list(extra), env=env or m.env(), timeout=180)
    util.expect_exit(res, code, os.path.basename(path))
    return json.loads(res.stdout), res


def ops_of(m, before):
    now = dict(m.checker.ops)
    return {k: now.get(k, 0) - before.get(k, 0) for k in set(now) | set(before) if now.get(k, 0) != before.get(k, 0)}


def test_newer_older_newer_into_a_versioned_bucket_leaves_one_version_of_the_newer():
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        bucket(s3, "dest-a", versioned=True)
        new = archive(d, "new.tar.zst", NEW, [b"new 0", b"new 1"])
        old = archive(d, "old.tar.zst", OLD, [b"old 0", b"old 1"])
        rep, _ = restore(m, new)
        assert rep["objects_written"] == 2, rep
        rep, res = restore(m, old)
        assert rep["objects_written"] == 0 and rep["objects_kept_newer"] == 2, rep
        assert rep["puts_kept_newer"] == 2 and rep["ok"], rep
        lines = [json.loads(x) for x in res.err.splitlines() if "newer version" in x]
        assert len(lines) == 2 and all(x["level"] == "info" for x in lines), res.err
        rep, _ = restore(m, new)
        assert rep["objects_written"] == 0 and rep["objects_current"] == 2, rep
        for i in range(2):
            key = "k%d.bin" % i
            assert s3.get_object(Bucket="dest-a", Key=key)["Body"].read() == b"new %d" % i
            versions = [v for v in s3.list_object_versions(Bucket="dest-a", Prefix=key).get("Versions", [])
                        if v["Key"] == key]
            assert len(versions) == 1, versions
            head = s3.head_object(Bucket="dest-a", Key=key)
            assert head["Metadata"]["original-creation-time"] == NEW, head["Metadata"]
        assert m.checker.refusals.get("PreconditionFailed", 0) >= 4, m.checker.refusals


def test_requests_per_object_for_a_new_key_an_update_an_older_version_and_a_redelivery():
    with util.MotoServer() as m, util.tempdir() as d:
        bucket(m.client("s3"), "dest-a")
        n = 5
        first = archive(d, "v1.tar.zst", OLD, [rnd(2048, i) for i in range(n)])
        newer = archive(d, "v2.tar.zst", NEW, [rnd(2048, 100 + i) for i in range(n)])
        before = dict(m.checker.ops)
        restore(m, first)
        assert ops_of(m, before) == {"PutObject": n}, ops_of(m, before)  # a new key: one request
        before = dict(m.checker.ops)
        bytes_before = m.checker.body_bytes
        rep, _ = restore(m, newer)
        assert rep["objects_written"] == n, rep
        # an update: the refused PUT, a HEAD, the PUT under If-Match (the body twice)
        assert ops_of(m, before) == {"PutObject": 2 * n, "HeadObject": n}, ops_of(m, before)
        assert m.checker.body_bytes - bytes_before == 2 * n * 2048
        before = dict(m.checker.ops)
        rep, _ = restore(m, first)
        assert rep["objects_kept_newer"] == n, rep
        assert ops_of(m, before) == {"PutObject": n, "HeadObject": n}, ops_of(m, before)


def test_a_large_older_object_is_never_uploaded():
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        bucket(s3, "dest-a")
        mp = ["--multipart-threshold", "5M", "--part-size", "5M"]
        new = archive(d, "new.tar.zst", NEW, [rnd(12 * MIB, 1)])
        old = archive(d, "old.tar.zst", OLD, [rnd(12 * MIB, 2)])
        before = dict(m.checker.ops)
        restore(m, new, *mp)
        # a large upload looks first: the key is empty, then three parts and a Complete under If-None-Match
        assert ops_of(m, before) == {"HeadObject": 1, "CreateMultipartUpload": 1, "UploadPart": 3,
                                     "CompleteMultipartUpload": 1}, ops_of(m, before)
        before = dict(m.checker.ops)
        rep, _ = restore(m, old, *mp)
        assert rep["objects_kept_newer"] == 1, rep
        assert ops_of(m, before) == {"HeadObject": 1}, ops_of(m, before)
        assert s3.get_object(Bucket="dest-a", Key="k0.bin")["Body"].read() == rnd(12 * MIB, 1)
        assert s3.list_multipart_uploads(Bucket="dest-a").get("Uploads", []) == []


def test_a_complete_refused_by_a_newer_writer_looks_again_and_aborts():
    # The large object looked first (nothing there), then another writer put a newer version before
    # its CompleteMultipartUpload: the Complete is refused (412), the key looked at again, the upload
    # aborted, and the newer object stands.
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        bucket(s3, "dest-a")
        old = archive(d, "old.tar.zst", OLD, [rnd(7 * MIB, 3)])
        import boto3
        direct = boto3.client("s3", region_name=REGION, endpoint_url=m.moto_url, aws_access_key_id="testing",
                              aws_secret_access_key="testing")

        def sneak_in(method, target, headers):
            # straight to moto: the checker holds the key while it forwards this Complete
            if method == "POST" and "uploadId=" in target and not sneak_in.done:
                sneak_in.done = True
                direct.put_object(Bucket="dest-a", Key="k0.bin", Body=b"newer",
                                  Metadata={"original-creation-time": NEW, "original-etag": "ffff"})
        sneak_in.done = False
        m.checker.before_forward = sneak_in
        rep, _ = restore(m, old, "--multipart-threshold", "5M", "--part-size", "5M")
        m.checker.before_forward = None
        assert sneak_in.done
        assert rep["objects_kept_newer"] == 1 and rep["objects_written"] == 0, rep
        assert s3.get_object(Bucket="dest-a", Key="k0.bin")["Body"].read() == b"newer"
        assert s3.list_multipart_uploads(Bucket="dest-a").get("Uploads", []) == []


def test_overwrite_always_writes_whatever_stands_there():
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        bucket(s3, "dest-a")
        restore(m, archive(d, "new.tar.zst", NEW, [b"new"]))
        env = util.clean_env(extra=dict(m.env(), TRS_OVERWRITE="always"))
        rep, _ = restore(m, archive(d, "old.tar.zst", OLD, [b"old"]), env=env)
        assert rep["objects_written"] == 1, rep
        assert s3.get_object(Bucket="dest-a", Key="k0.bin")["Body"].read() == b"old"
        bad = util.run_trs(["process", os.path.join(d, "old.tar.zst"), "--overwrite", "sometimes"], env=m.env())
        util.expect_exit(bad, 2)


def test_an_object_written_before_versions_were_metadata_is_compared_by_its_tags():
    # Objects the Python service wrote carry their version in tags only: GetObjectTagging reads it.
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        bucket(s3, "dest-a")
        s3.put_object(Bucket="dest-a", Key="k0.bin", Body=b"python's newer",
                      Tagging="OriginalCreationTime=2025-01-23%2010%3A05%3A00&OriginalETag=abc")
        rep, _ = restore(m, archive(d, "old.tar.zst", OLD, [b"old"]))
        assert rep["objects_kept_newer"] == 1, rep
        assert s3.get_object(Bucket="dest-a", Key="k0.bin")["Body"].read() == b"python's newer"


def _task_role(m, *extra_actions):
    """A user with the sample stack's target task role on dest-a (PutObject, PutObjectTagging,
    PutObjectAcl), plus extra_actions; moto enforces IAM after the setup calls."""
    iam = m.client("iam")
    iam.create_user(UserName="task")
    key = iam.create_access_key(UserName="task")["AccessKey"]
    actions = ["s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectAcl"] + list(extra_actions)
    iam.put_user_policy(UserName="task", PolicyName="target", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions,
                                                 "Resource": ["arn:aws:s3:::dest-a", "arn:aws:s3:::dest-a/*"]}]}))
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_credentials_that_may_not_read_write_as_before_warn_once_and_count():
    with util.MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "5"}) as m, util.tempdir() as d:
        creds = _task_role(m)
        s3 = m.client("s3", key=creds)
        bucket(m.client("s3", key=("testing", "testing")), "dest-a")  # still within the free calls
        env = m.env(key=creds)
        rep, _ = restore(m, archive(d, "new.tar.zst", NEW, [b"n0", b"n1", b"n2"]), env=env)
        assert rep["objects_written"] == 3 and rep["puts_unchecked"] == 0, rep  # new keys need no read
        rep, res = restore(m, archive(d, "old.tar.zst", OLD, [b"o0", b"o1", b"o2"]), "--metrics", "emf", env=env)
        # the drop-in behaviour: written as the Python service writes, never a failure
        assert rep["objects_written"] == 3 and rep["puts_unchecked"] == 3, rep
        warns = [json.loads(x) for x in res.err.splitlines() if "compare versions" in x]
        assert len(warns) == 1, res.err
        assert warns[0]["level"] == "warn" and warns[0]["bucket"] == "dest-a" and \
            warns[0]["permission"] == "s3:GetObject", warns[0]
        emf = [json.loads(x) for x in res.err.splitlines() if '"_aws"' in x] + \
              [json.loads(x) for x in res.out.splitlines()[1:] if '"_aws"' in x]
        assert any(doc.get("UncheckedWrites") == 3 for doc in emf), emf
        del s3


def test_credentials_that_may_read_keep_the_newer():
    with util.MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "5"}) as m, util.tempdir() as d:
        creds = _task_role(m, "s3:GetObject", "s3:GetObjectTagging")
        bucket(m.client("s3", key=("testing", "testing")), "dest-a")
        env = m.env(key=creds)
        restore(m, archive(d, "new.tar.zst", NEW, [b"n0", b"n1"]), env=env)
        rep, res = restore(m, archive(d, "old.tar.zst", OLD, [b"o0", b"o1"]), env=env)
        assert rep["objects_kept_newer"] == 2 and rep["puts_unchecked"] == 0, rep
        assert "compare versions" not in res.err
        s3 = m.client("s3", key=creds)
        assert s3.get_object(Bucket="dest-a", Key="k0.bin")["Body"].read() == b"n0"
