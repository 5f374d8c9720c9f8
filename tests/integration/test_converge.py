# SPDX-License-Identifier: Apache-2.0
"""trs serve converges (issue: converge, never regress): every object ends at
its newest source version in the right region, or the work stays queued.

A wrong region keeps the message and the staging archive; a redelivered
message sends no body for objects already current; two consumers on one
queue, fed archives of one key's versions in shuffled order, one of them
killed with SIGKILL midway and started again, leave every key at its newest
version, in a versioned bucket with increasing versions and none twice.
"""
import json
import os
import random
import signal
import time

import mkarchive
import util
from util import REGION
from test_serve import Serve, setup_moto, staging_keys, queue_counts, wait_until


def emf(srv):
    srv.out.seek(0)
    docs = []
    for line in srv.out.read().decode("utf-8", "replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if "_aws" in doc:
            docs.append(doc)
    return docs


def test_serve_region_typo_is_refused_at_start_naming_the_region():
    env = util.clean_env(region="eu-west-l")
    res = util.run_trs(["serve", "--queue", "dir:///tmp/trs-none"], env=env, timeout=20)
    util.expect_exit(res, 2)
    assert "eu-west-l" in res.err and "did you mean eu-west-1" in res.err, res.err


def test_serve_dir_queue_archive_for_another_region_keeps_message_and_archive():
    with util.tempdir() as d:
        q, stg, out = (os.path.join(d, n) for n in ("q", "stg", "out"))
        os.makedirs(os.path.join(stg, "staging"))
        os.makedirs(q)
        mkarchive.build_archive(os.path.join(stg, "staging", "a.tar.zst"), [{"relative_key": "x.txt", "data": b"x"}],
                                [{"region": "eu-west-1", "bucket": "dest-a"}])
        with open(os.path.join(q, "1.json"), "w") as f:
            json.dump({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": "staging"}, "object": {"key": "a.tar.zst"}}}]}, f)
        env = util.clean_env(region="us-east-2")
        with Serve(["--queue", "dir://" + q, "--staging", "file://" + stg, "--dest", "file://" + out,
                    "--poll-interval", "1", "--visibility-timeout", "60"], env) as srv:
            srv.wait_log("archive has no target in this region; archive and message kept for the dead-letter queue")
            rc, _ = srv.stop()
            assert rc == 0, srv.log()
            recs = srv.records()
        line = [r for r in recs if r.get("message", "").startswith("archive has no target")][0]
        assert line["level"] == "error" and line["region"] == "us-east-2" and line["target_regions"] == "eu-west-1"
        assert "--foreign-archives skip" in line["error"], line
        assert not any(r.get("message") == "archive restored" for r in recs)
        assert os.path.exists(os.path.join(stg, "staging", "a.tar.zst")), "the staging archive was deleted"
        held = os.listdir(q) + os.listdir(os.path.join(q, ".inflight"))
        assert any(n.startswith("1.json") for n in held), held
        assert not os.path.exists(os.path.join(out, "dest-a"))


def test_serve_sqs_archive_for_another_region_is_counted_and_left_for_the_dead_letter_queue():
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            path = os.path.join(d, "a.tar.zst")
            mkarchive.build_archive(path, [{"relative_key": "x.txt", "data": b"x"}],
                                    [{"region": "ap-south-1", "bucket": "dest-a"}])
            s3.upload_file(path, "staging", "in/a.tar.zst")
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "30", "--metrics", "emf"],
                   m.env()) as srv:
            srv.wait_log("archive has no target in this region; archive and message kept for the dead-letter queue")
            rc, _ = srv.stop()
            assert rc == 0, srv.log()
            docs = emf(srv)
        assert any(doc.get("ForeignArchives") == 1 for doc in docs), docs
        assert not any("FailedDecompressions" in doc for doc in docs), docs
        assert staging_keys(s3) == ["in/a.tar.zst"]
        visible, invisible = queue_counts(sqs, url)
        assert visible + invisible == 1, (visible, invisible)


def test_serve_redelivery_sends_no_body_for_objects_already_current():
    # An earlier delivery wrote every object and died before deleting the archive and the message:
    # the next delivery (ApproximateReceiveCount 2) looks at each key first and writes nothing.
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m)
        s3.put_bucket_versioning(Bucket="dest-a", VersioningConfiguration={"Status": "Enabled"})
        objects = [{"relative_key": "o%d.bin" % i, "data": os.urandom(4096)} for i in range(6)]
        with util.tempdir() as d:
            path = os.path.join(d, "a.tar.zst")
            mkarchive.build_archive(path, objects, [{"region": REGION, "bucket": "dest-a"}])
            # the test event, then the archive's event
            s3.upload_file(path, "staging", "in/a.tar.zst")
            first = util.run_trs(["process", "s3://staging/in/a.tar.zst", "--no-progress"], env=m.env())
            util.expect_exit(first, 0, "the earlier delivery")
        # the earlier delivery received the message: its count is 1 now, the next receive makes it 2
        got = []
        deadline = time.monotonic() + 10
        while not any("a.tar.zst" in x["Body"] for x in got) and time.monotonic() < deadline:
            got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                       WaitTimeSeconds=1).get("Messages", [])
        assert any("a.tar.zst" in x["Body"] for x in got), got
        before = dict(m.checker.ops)
        bytes_before = m.checker.body_bytes
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "30"], m.env()) as srv:
            wait_until(lambda: not staging_keys(s3) and queue_counts(sqs, url) == (0, 0), 60,
                       "the archive restored and its message deleted: " + srv.log()[-1500:])
            rc, _ = srv.stop()
            assert rc == 0, srv.log()
            recs = srv.records()
        done = [r for r in recs if r.get("message") == "archive restored"]
        assert done and done[0]["objects_current"] == len(objects) and done[0]["objects_written"] == 0, done
        ops = {k: v - before.get(k, 0) for k, v in m.checker.ops.items() if v != before.get(k, 0)}
        assert ops.get("PutObject", 0) == 0 and ops.get("HeadObject") == len(objects), ops
        assert m.checker.body_bytes == bytes_before
        for o in objects:
            versions = s3.list_object_versions(Bucket="dest-a", Prefix=o["relative_key"])["Versions"]
            assert len(versions) == 1, versions


KEYS, VERSIONS, FILLER = 50, 4, 2


def _version_time(v):
    return "2025-01-23 10:%02d:00" % (10 + v)


def test_two_consumers_one_killed_converge_on_the_newest_versions():
    # 200 archives: each of 50 keys in 4 of them with increasing creation_time, plus objects of their
    # own; put in shuffled order; two `trs serve` on one queue; one SIGKILLed midway and started again.
    rng = random.Random(20)
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m)
        s3.put_bucket_versioning(Bucket="dest-a", VersioningConfiguration={"Status": "Enabled"})
        plan = [(k, v) for k in range(KEYS) for v in range(VERSIONS)]
        rng.shuffle(plan)
        targets = [{"region": REGION, "bucket": "dest-a"}]
        with util.tempdir() as d:
            for n, (k, v) in enumerate(plan):
                objs = [{"relative_key": "key-%02d" % k, "data": b"key %d version %d" % (k, v),
                         "creation_time": _version_time(v)}]
                objs += [{"relative_key": "filler-%03d-%d" % (n, i), "data": os.urandom(512)} for i in range(FILLER)]
                path = os.path.join(d, "a.tar.zst")
                mkarchive.build_archive(path, objs, targets, level=1)
                s3.upload_file(path, "staging", "in/%03d.tar.zst" % n)
        args = ["--queue", url, "--poll-interval", "1", "--visibility-timeout", "5", "--archives", "8",
                "--batch", "10"]
        a = Serve(args, m.env())
        b = Serve(args, m.env())
        try:
            wait_until(lambda: len(staging_keys(s3)) <= len(plan) * 2 // 3, 120, "a third restored")
            a.kill()  # SIGKILL, mid-archive: its messages come back after their visibility timeout
            restarted = Serve(args, m.env())
            try:
                wait_until(lambda: not staging_keys(s3) and queue_counts(sqs, url) == (0, 0), 240,
                           "every archive restored and every message deleted: " + b.log()[-1500:])
                for srv in (b, restarted):
                    rc, _ = srv.stop(within=30)
                    assert rc == 0, srv.log()[-2000:]
                failed = [r for srv in (b, restarted) for r in srv.records() if r.get("level") == "error"]
                assert not failed, failed[:5]
            finally:
                restarted.__exit__()
        finally:
            a.__exit__()
            b.__exit__()
        for k in range(KEYS):
            key = "key-%02d" % k
            got = s3.get_object(Bucket="dest-a", Key=key)["Body"].read()
            assert got == b"key %d version %d" % (k, VERSIONS - 1), (key, got)
            # S3 lists a key's versions newest first
            versions = [v for v in s3.list_object_versions(Bucket="dest-a", Prefix=key)["Versions"]
                        if v["Key"] == key][::-1]
            assert versions[-1]["IsLatest"], versions
            times = [s3.head_object(Bucket="dest-a", Key=key, VersionId=v["VersionId"])
                     ["Metadata"]["original-creation-time"] for v in versions]
            assert times == sorted(set(times)), (key, times)  # increasing, none twice
            assert times[-1] == _version_time(VERSIONS - 1), (key, times)
        fillers = s3.list_object_versions(Bucket="dest-a", Prefix="filler-")["Versions"]
        assert len(fillers) == len(plan) * FILLER, len(fillers)
