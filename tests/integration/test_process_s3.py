# SPDX-License-Identifier: Apache-2.0
"""`trs process` to S3 and from s3://, against moto_server (issue: S3 backend).

Every object of the core archives lands with the right bytes, the merged
tags, the storage class (target override, else the object's own), SSE-KMS
with the target's key; ten original tags keep all ten and carry the
Original* values as metadata; a 23 MiB object goes multipart with 5 MiB
parts; an archive read from s3://staging/key restores the same as from a
local file. Plain keys run with moto's SigV4 checking on; keys needing
percent-encoding (unicode, '+', '%', spaces) with it off, because moto's
checker rejects those wrongly.
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
import mkarchive  # noqa: E402
import util  # noqa: E402
from util import REGION, OTHER_REGION  # noqa: E402

MIB = 1 << 20


def rnd(n, seed):
    out = bytearray()
    h = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


def tags_of(s3, bucket, key):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def make_buckets(s3, *names):
    for b in names:
        s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})


def plain_objects():
    return [
        {"relative_key": "docs/report.csv", "source_prefix": "data/2025", "object_name": "report.csv",
         "data": rnd(5000, 1), "tags": [{"team": "finance"}, {"pii": "no"}, {"team": "risk"}],
         "storage_class": "STANDARD_IA"},
        {"relative_key": "empty.bin", "data": b""},
        {"relative_key": "three.bin", "data": rnd(3 * MIB, 2), "storage_class": "GLACIER_IR"},
        {"relative_key": "tagged10.txt", "data": b"ten tags",
         "tags": [{"k%d" % i: "v%d" % i} for i in range(10)]},
    ]


def awkward_objects():
    return [
        {"relative_key": "a b/c+d%e.txt", "data": b"space plus percent"},
        {"relative_key": "ünïcødé/数据.json", "data": "{\"ok\": true}".encode()},
        {"relative_key": "x/" + "long-" * 30 + ".bin", "data": rnd(777, 3)},
        {"relative_key": "odd!*'();:@&=$,.txt", "data": b"punctuation"},
    ]


def check_restored(s3, objects, targets, kms_arn=None):
    for o in objects:
        key = mkarchive.destination_key(o)
        entry = mkarchive.manifest_entry(o)
        for t in targets:
            if t["region"] != REGION or t.get("backup"):
                continue
            got = s3.get_object(Bucket=t["bucket"], Key=key)
            body = got["Body"].read()
            assert body == o["data"], "%s/%s: bytes differ" % (t["bucket"], key)
            want_class = t.get("storage_class") or entry.get("storage_class") or "STANDARD"
            assert got.get("StorageClass", "STANDARD") == want_class, (t["bucket"], key, got.get("StorageClass"), want_class)
            tags = tags_of(s3, t["bucket"], key)
            merged = {}
            for d in entry.get("tags", []):
                merged.update(d)
            for k, v in merged.items():
                assert tags.get(k) == v, (key, tags)
            if len(merged) <= 8:
                assert tags.get("OriginalCreationTime") == entry["creation_time"], tags
                assert tags.get("OriginalETag") == entry["etag"], tags
            if t.get("kms_key_arn"):
                assert got.get("ServerSideEncryption") == "aws:kms", got
                assert kms_arn in (got.get("SSEKMSKeyId") or ""), got.get("SSEKMSKeyId")


def run_case(m, objects, env, kms=False, extra=()):
    s3 = m.client("s3")
    kms_arn = None
    if kms:
        kms_arn = m.client("kms").create_key()["KeyMetadata"]["Arn"]
    make_buckets(s3, "dest-a", "dest-b")
    targets = [{"region": REGION, "bucket": "dest-a"},
               {"region": REGION, "bucket": "dest-b", "storage_class": "STANDARD_IA"},
               {"region": OTHER_REGION, "bucket": "dest-elsewhere"}]
    if kms:
        targets[1]["kms_key_arn"] = kms_arn
    with util.tempdir() as d:
        path = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(path, objects, targets, level=3, threads=2)
        res = util.run_trs(["process", path, "--json", "--no-progress"] + list(extra), env=env, timeout=180)
        util.expect_exit(res, 0, "process to S3")
        report = json.loads(res.stdout)
        assert report["objects_written"] == len(objects), report
    check_restored(s3, objects, targets, kms_arn)
    return s3


def test_restore_to_s3_plain_keys_with_sigv4_checked():
    with util.MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "4"}) as m:
        iam = m.client("iam")
        iam.create_user(UserName="trs")
        key = iam.create_access_key(UserName="trs")["AccessKey"]
        iam.put_user_policy(UserName="trs", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        creds = (key["AccessKeyId"], key["SecretAccessKey"])
        s3 = m.client("s3", key=creds)
        make_buckets(s3, "dest-a", "dest-b")
        objects = plain_objects()
        targets = [{"region": REGION, "bucket": "dest-a"},
                   {"region": REGION, "bucket": "dest-b", "storage_class": "STANDARD_IA"},
                   {"region": OTHER_REGION, "bucket": "dest-elsewhere"}]
        with util.tempdir() as d:
            path = os.path.join(d, "a.tar.zst")
            mkarchive.build_archive(path, objects, targets)
            res = util.run_trs(["process", path, "--json", "--no-progress"], env=m.env(key=creds), timeout=180)
            util.expect_exit(res, 0, "process to S3 with SigV4 checked")
            # a wrong secret is refused: the archive stops at the first refusal and
            # says so once (exit 2: configuration), instead of failing object by object
            bad = util.run_trs(["process", path, "--no-progress"], env=m.env(key=(creds[0], "wrong")), timeout=180)
            assert bad.returncode == 2, bad.returncode
            assert b"SignatureDoesNotMatch" in bad.stderr or b"403" in bad.stderr, bad.stderr[-600:]
            assert b"no object can be written with these credentials" in bad.stderr, bad.stderr[-600:]
            assert b"wrong" not in bad.stderr
        check_restored(s3, objects, targets)
        # ten original tags: all ten kept, the Original* values as metadata
        head = s3.head_object(Bucket="dest-a", Key="tagged10.txt")
        assert len(tags_of(s3, "dest-a", "tagged10.txt")) == 10
        meta = head["Metadata"]
        assert meta.get("original-creation-time") == mkarchive.DEFAULT_CREATION_TIME, meta
        assert meta.get("original-etag") == mkarchive.md5_hex(b"ten tags"), meta


def test_restore_to_s3_awkward_keys_and_kms():
    with util.MotoServer() as m:
        run_case(m, awkward_objects() + plain_objects()[:2], m.env(), kms=True)


def test_multipart_object_23_mib():
    with util.MotoServer() as m:
        objects = [{"relative_key": "big/23mib.bin", "object_name": "big/23mib.bin", "data": rnd(23 * MIB, 4)},
                   {"relative_key": "small.txt", "data": b"small"}]
        s3 = run_case(m, objects, m.env(),
                      extra=["--multipart-threshold", "5242880", "--part-size", "5242880"])
        etag = s3.head_object(Bucket="dest-a", Key="big/23mib.bin")["ETag"].strip('"')
        assert etag.endswith("-5"), etag
        assert "-" not in s3.head_object(Bucket="dest-a", Key="small.txt")["ETag"]
        assert s3.list_multipart_uploads(Bucket="dest-a").get("Uploads", []) == []


def test_archive_from_s3_restores_the_same_as_from_a_file():
    with util.MotoServer() as m:
        s3 = m.client("s3")
        make_buckets(s3, "staging", "dest-a")
        objects = plain_objects() + awkward_objects()[:1]
        targets = [{"region": REGION, "bucket": "dest-a"}]
        with util.tempdir() as d:
            path = os.path.join(d, "a.tar.zst")
            mkarchive.build_archive(path, objects, targets, level=19)
            s3.upload_file(path, "staging", "src-bucket/data/2025/01/arch ive+1.tar.zst")
            out_s3 = os.path.join(d, "from-s3")
            out_file = os.path.join(d, "from-file")
            env = m.env()
            r1 = util.run_trs(["process", "s3://staging/src-bucket/data/2025/01/arch ive+1.tar.zst",
                               "--dest", "file://" + out_s3, "--no-progress"], env=env)
            util.expect_exit(r1, 0, "process s3:// into a directory")
            r2 = util.run_trs(["process", path, "--dest", "file://" + out_file, "--no-progress"], env=env)
            util.expect_exit(r2, 0, "process the same file")
            assert util.read_tree(out_s3) == util.read_tree(out_file)
            # and straight from staging to S3
            r3 = util.run_trs(["process", "s3://staging/src-bucket/data/2025/01/arch ive+1.tar.zst",
                               "--no-progress"], env=env)
            util.expect_exit(r3, 0, "process s3:// to S3")
        check_restored(s3, objects, targets)


def test_large_archive_from_s3_spools_to_a_file_in_parallel_ranges():
    # Over the 64 MiB memory spool: the compressed bytes go to an unlinked temp file.
    with util.MotoServer() as m:
        s3 = m.client("s3")
        make_buckets(s3, "staging")
        objects = [{"relative_key": "r%d.bin" % i, "data": rnd(24 * MIB, 10 + i)} for i in range(3)]
        targets = [{"region": REGION, "bucket": "dest-a"}]
        with util.tempdir() as d:
            path = os.path.join(d, "big.tar.zst")
            mkarchive.build_archive(path, objects, targets, level=1)
            assert os.path.getsize(path) > 64 * MIB
            s3.upload_file(path, "staging", "big.tar.zst")
            spool = os.path.join(d, "spool")
            os.mkdir(spool)
            env = m.env()
            env["TMPDIR"] = spool
            out = os.path.join(d, "out")
            res = util.run_trs(["process", "s3://staging/big.tar.zst", "--dest", "file://" + out,
                                "--no-progress"], env=env, timeout=300)
            util.expect_exit(res, 0, "process a large s3:// archive")
            assert os.listdir(spool) == [], os.listdir(spool)  # nothing left behind
            for o in objects:
                with open(os.path.join(out, "dest-a", o["relative_key"]), "rb") as f:
                    assert f.read() == o["data"]


def test_s3_archive_spools_in_memory_only_within_a_quarter_of_max_memory():
    # A 12 MiB archive spools in memory by default (64 MiB limit), but to a
    # file under --max-memory 16M (limit 4 MiB): the spool counts toward the
    # memory bound too.
    with util.MotoServer() as m:
        s3 = m.client("s3")
        make_buckets(s3, "staging")
        objects = [{"relative_key": "s%d.bin" % i, "data": rnd(4 * MIB, 30 + i)} for i in range(3)]
        with util.tempdir() as d:
            path = os.path.join(d, "a.tar.zst")
            mkarchive.build_archive(path, objects, [{"region": REGION, "bucket": "dest-a"}], level=1)
            assert 8 * MIB < os.path.getsize(path) < 64 * MIB
            s3.upload_file(path, "staging", "a.tar.zst")
            spools = []
            for extra in ([], ["--max-memory", "16M"]):
                out = os.path.join(d, "out%d" % len(spools))
                res = util.run_trs(["process", "s3://staging/a.tar.zst", "--dest", "file://" + out, "--no-progress",
                                    "--log-level", "debug", "--log-format", "json"] + extra, env=m.env(), timeout=120)
                util.expect_exit(res, 0, "process s3:// %s" % extra)
                lines = [json.loads(x) for x in res.stderr.decode().splitlines() if x.startswith("{")]
                spools += [x["spool"] for x in lines if x.get("message") == "downloading archive"]
                for o in objects:
                    with open(os.path.join(out, "dest-a", o["relative_key"]), "rb") as f:
                        assert f.read() == o["data"]
            assert spools == ["memory", "file"], spools


def test_missing_s3_archive_is_a_clear_error():
    with util.MotoServer() as m:
        make_buckets(m.client("s3"), "staging")
        res = util.run_trs(["process", "s3://staging/nope.tar.zst", "--dest", "file:///tmp/unused-trs",
                            "--no-progress"], env=m.env())
        assert res.returncode == 3, res.returncode
        assert b"nope.tar.zst" in res.stderr, res.stderr[-500:]


def test_over_budget_before_the_manifest_spools_small_objects_and_takes_a_second_pass_for_large_ones():
    # Objects before the manifest that do not fit --max-memory cannot be held
    # for S3 (no staging there). Small ones (up to 64 KiB) go to a spool file
    # in TMPDIR, which leaves nothing behind; larger ones are read again in a
    # second pass. Every object is written exactly once.
    for sizes, passes in (([40_000] * 40, 1), ([40_000] * 20 + [100_000] * 12, 2)):
        with util.MotoServer() as m:
            s3 = m.client("s3")
            make_buckets(s3, "dest-a")
            objects = [{"relative_key": "p/obj-%03d.bin" % i, "object_name": "p/obj-%03d.bin" % i,
                        "data": rnd(size, 700 + i)} for i, size in enumerate(sizes)]
            targets = [{"region": REGION, "bucket": "dest-a"}]
            with util.tempdir() as d, util.tempdir() as tmp:
                path = os.path.join(d, "a.tar.zst")
                mkarchive.build_archive(path, objects, targets)
                env = dict(m.env(), TMPDIR=tmp)
                res = util.run_trs(["process", path, "--json", "--no-progress", "--max-memory", "1M"], env=env,
                                   timeout=180)
                util.expect_exit(res, 0, "over-budget restore to S3")
                report = json.loads(res.stdout)
                assert report["passes"] == passes, report
                assert report["objects_written"] == len(objects) and report["puts_written"] == len(objects), report
                assert os.listdir(tmp) == [], os.listdir(tmp)
            for o in objects:
                assert s3.get_object(Bucket="dest-a", Key=o["relative_key"])["Body"].read() == o["data"]


def test_200_mib_object_to_s3_bounded_memory():
    # The object comes before the manifest and does not fit the budget: it
    # streams to a multipart upload in the second pass. Pipeline chunks and
    # part buffers share --max-memory, so peak RSS stays under it plus the
    # same fixed overhead as a local restore (48 MiB).
    size = 200 << 20
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        make_buckets(s3, "dest-a")
        path = os.path.join(d, "zeros.tar.zst")
        with open(path, "wb") as f:
            f.write(mkarchive.zero_bomb_archive(size, [{"region": REGION, "bucket": "dest-a"}]))
        res = util.run_trs(["process", path, "--json", "--no-progress", "--max-memory", str(64 << 20)],
                           env=m.env(), timeout=300)
        util.expect_exit(res, 0, "200 MiB object to S3 within 64 MiB")
        head = s3.head_object(Bucket="dest-a", Key="zeros.bin")
        assert head["ContentLength"] == size, head
        assert "-" in head["ETag"], head["ETag"]  # multipart
        limit = (64 + 48) * 1024 * (3 if os.environ.get("TRS_SANITIZED") == "1" else 1)
        assert res.maxrss_kb < limit, "peak RSS %d KiB for a %d MiB object to S3" % (res.maxrss_kb, size >> 20)


def test_missing_credentials_stop_the_archive_with_one_clear_error():
    with util.MotoServer() as m:
        make_buckets(m.client("s3"), "dest-a")
        objects = [{"relative_key": "n/%04d.txt" % i, "object_name": "n/%04d.txt" % i, "data": b"x%d" % i}
                   for i in range(400)]
        env = m.env()
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        env["HOME"] = "/nonexistent"  # no ~/.aws either
        with util.tempdir() as d:
            path = os.path.join(d, "a.tar.zst")
            mkarchive.build_archive(path, objects, [{"region": REGION, "bucket": "dest-a"}])
            res = util.run_trs(["process", path, "--no-progress", "--max-inflight", "4"], env=env)
        assert res.returncode == 2, (res.returncode, res.stderr[-500:])
        assert b"no AWS credentials found" in res.stderr
        assert b"no object can be written with these credentials" in res.stderr
        # a handful of transfers were already in flight; not one line per object
        assert res.stderr.count(b"\n") < 20, res.stderr.count(b"\n")
