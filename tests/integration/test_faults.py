# SPDX-License-Identifier: Apache-2.0
"""Reliability under faults: a flaky network (tests/fixtures/faultproxy.py in
front of moto: 503 SlowDown, dropped and cut connections, stalls), a
credentials endpoint that fails once, a full spool disk, kill -9 of
`trs serve` in the middle of an archive, an empty archive in staging, and an
outage of the destination that spends the retry budget.

What is restored is checked with boto3 straight against moto, never through
the proxy.
"""

import json
import os
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import faultproxy
import mkarchive
import util
from util import REGION, OTHER_REGION
from test_serve import Serve, setup_moto, put_archive, wait_until, queue_counts, staging_keys

MIB = 1 << 20


def rnd(n, seed):
    import random
    return random.Random(seed).randbytes(n)


def tags_of(s3, bucket, key):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def make_buckets(s3, *names):
    for b in names:
        s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})


def check_exact(s3, objects, buckets):
    for o in objects:
        key = mkarchive.destination_key(o)
        for b in buckets:
            got = s3.get_object(Bucket=b, Key=key)
            assert got["Body"].read() == o["data"], "%s/%s: bytes differ" % (b, key)
            tags = tags_of(s3, b, key)
            for d in o.get("tags", []):
                for k, v in d.items():
                    assert tags.get(k) == v, (b, key, tags)
            assert tags.get("OriginalETag") == util.md5(o["data"]), (b, key, tags)


def no_multipart_uploads(s3, *buckets):
    for b in buckets:
        ups = s3.list_multipart_uploads(Bucket=b).get("Uploads", [])
        assert not ups, "orphan multipart uploads in %s: %s" % (b, [(u["Key"], u["UploadId"]) for u in ups])


def test_restore_exact_through_a_faulty_network():
    objects = [{"relative_key": "small/%02d.txt" % i, "data": rnd(1000 + 977 * i, i),
                "tags": [{"n": str(i)}, {"team": "faults"}]} for i in range(8)]
    objects.append({"relative_key": "big/23mib.bin", "data": rnd(23 * MIB, 99), "tags": [{"size": "big"}]})
    targets = [{"region": REGION, "bucket": "dest-a"},
               {"region": REGION, "bucket": "dest-b", "storage_class": "STANDARD_IA"},
               {"region": OTHER_REGION, "bucket": "dest-elsewhere"}]
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        make_buckets(s3, "staging", "dest-a", "dest-b")
        path = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(path, objects, targets, level=1)
        with open(path, "rb") as f:
            s3.put_object(Bucket="staging", Key="in/faulty.tar.zst", Body=f.read())
        # Every kind at least once (the schedule), then 15% 503s, 5% drops, 3% cuts and 2% stalls.
        with faultproxy.FaultProxy(m.url, slowdown=0.15, drop=0.05, cut=0.03, stall=0.02, seed=7,
                                   stall_seconds=4, schedule={1: "slowdown", 4: "stall", 7: "drop", 10: "cut"},
                                   time_limit=240) as proxy:
            env = m.env()
            env["AWS_ENDPOINT_URL"] = proxy.url
            env["TRS_HTTP_LOW_SPEED_TIME_S"] = "1"
            res = util.run_trs(["process", "s3://staging/in/faulty.tar.zst", "--json", "--no-progress",
                                "--multipart-threshold", "5242880", "--part-size", "5242880"],
                               env=env, timeout=150)
            counts = proxy.summary()
        util.expect_exit(res, 0, "process through the fault proxy (%s)" % counts)
        report = res.json()
        assert report["objects_written"] == len(objects), report
        for k in ("slowdown", "drop", "cut", "stall"):
            assert counts[k] > 0, "no %s fault was injected: %s" % (k, counts)
        assert counts["pass"] > 0 and counts["errors"] == 0, counts
        assert b"retrying" in res.stderr, res.err[-1500:]
        check_exact(s3, objects, ["dest-a", "dest-b"])
        assert s3.head_object(Bucket="dest-b", Key=mkarchive.destination_key(objects[-1]))["StorageClass"] \
            == "STANDARD_IA"
        no_multipart_uploads(s3, "dest-a", "dest-b")


class _CredsHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.calls.append((self.path, self.headers.get("Authorization")))
            n = len(srv.calls)
        if self.path != "/creds" or n == 1:
            self.send_response(500)
            body = b'{"message": "agent not ready"}'
        else:
            self.send_response(200)
            exp = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = json.dumps({"AccessKeyId": "testing", "SecretAccessKey": "testing",
                               "Token": "ecs-session-token", "Expiration": exp}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_restore_succeeds_when_the_ecs_credentials_endpoint_fails_once():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _CredsHandler)
    srv.lock = threading.Lock()
    srv.calls = []
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        objects = [{"relative_key": "c/%d.txt" % i, "data": rnd(2000 + i, 50 + i)} for i in range(3)]
        targets = [{"region": REGION, "bucket": "dest-a"}]
        with util.MotoServer() as m, util.tempdir() as d:
            s3 = m.client("s3")
            make_buckets(s3, "dest-a")
            path = os.path.join(d, "a.tar.zst")
            mkarchive.build_archive(path, objects, targets)
            env = util.clean_env(REGION, {
                "AWS_ENDPOINT_URL": m.url,
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:%d/creds" % srv.server_address[1],
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": "agent-token",
                "AWS_SHARED_CREDENTIALS_FILE": os.path.join(d, "none"),
                "AWS_CONFIG_FILE": os.path.join(d, "none"),
                "HOME": d})
            res = util.run_trs(["process", path, "--json", "--no-progress"], env=env, timeout=60)
            util.expect_exit(res, 0, "process with an ECS endpoint that fails once")
            assert res.json()["objects_written"] == 3
            check_exact(s3, objects, ["dest-a"])
        calls = list(srv.calls)
        assert len(calls) >= 2, calls
        assert calls[0] == ("/creds", "agent-token"), calls
        assert b"agent-token" not in res.stderr and b"ecs-session-token" not in res.stderr
    finally:
        srv.shutdown()
        srv.server_close()


def _tiny_tmpfs(d):
    mnt = os.path.join(d, "tiny")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    if r.returncode != 0:
        raise util.Skip("cannot mount a tmpfs (%s)" % r.stdout.decode(errors="replace").strip()[:200])
    return mnt


def test_full_spool_disk_is_a_clear_error_and_the_message_stays():
    with util.tempdir() as d:
        mnt = _tiny_tmpfs(d)
        try:
            with util.MotoServer() as m:
                s3, sqs, url = setup_moto(m)
                # Incompressible, so the compressed archive is over the 64 MiB memory spool.
                objects = [{"relative_key": "huge%d.bin" % i, "data": rnd(24 * MIB, 300 + i)} for i in range(3)]
                put_archive(s3, "in/huge.tar.zst", objects, [{"region": REGION, "bucket": "dest-a"}], d)
                assert s3.head_object(Bucket="staging", Key="in/huge.tar.zst")["ContentLength"] > 64 * MIB
                out = os.path.join(d, "out")
                env = m.env()
                env["TMPDIR"] = mnt
                res = util.run_trs(["process", "s3://staging/in/huge.tar.zst", "--dest", "file://" + out,
                                    "--no-progress"], env=env, timeout=60)
                util.expect_exit(res, (1, 3), "process with a full spool disk")
                assert mnt in res.err and "space" in res.err, res.describe()
                assert os.listdir(mnt) == [], os.listdir(mnt)

                with Serve(["--queue", url, "--dest", "file://" + out, "--poll-interval", "1",
                            "--visibility-timeout", "30"], env) as srv:
                    srv.wait_log("archive failed; archive and message kept for a retry", timeout=40)
                    rc, _ = srv.stop()
                    log = srv.log()
                assert rc == 0, log[-2000:]
                assert mnt in log and "space" in log, log[-2000:]
                assert staging_keys(s3) == ["in/huge.tar.zst"]
                visible, invisible = queue_counts(sqs, url)
                assert visible + invisible == 1, (visible, invisible, log[-1500:])
                assert os.listdir(mnt) == [], os.listdir(mnt)
        finally:
            subprocess.run(["umount", "-l", mnt], timeout=20)


def test_kill_9_mid_archive_then_restart_completes_the_restore():
    with util.MotoServer() as m, util.tempdir() as d:
        s3, sqs, url = setup_moto(m)
        objects = [{"relative_key": "k9/big%d.bin" % i, "data": rnd(24 * MIB, 900 + i)} for i in range(3)]
        put_archive(s3, "in/k9.tar.zst", objects, [{"region": REGION, "bucket": "dest-a"}], d)
        tmp = os.path.join(d, "tmp")
        os.makedirs(tmp)
        env = m.env()
        env["TMPDIR"] = tmp
        args = ["--queue", url, "--visibility-timeout", "5", "--poll-interval", "1", "--workers", "1"]
        def written():
            return [o["Key"] for o in s3.list_objects_v2(Bucket="dest-a").get("Contents", [])]

        def uploading():
            return s3.list_multipart_uploads(Bucket="dest-a").get("Uploads", [])

        with Serve(args, env) as first:
            first.wait_log("archive started", timeout=30)
            # Kill it in the middle: while a multipart upload of an object is under way.
            wait_until(lambda: uploading() or first.proc.poll() is not None, 60, "a multipart upload started")
            first.kill()
            log1 = first.log()
        orphans = {u["UploadId"] for u in uploading()}
        if "archive restored" in log1 or len(written()) == len(objects):
            raise util.Skip("the archive finished before kill -9 arrived")
        assert staging_keys(s3) == ["in/k9.tar.zst"]
        t0 = time.monotonic()
        with Serve(args, env) as second:
            wait_until(lambda: not staging_keys(s3) and queue_counts(sqs, url) == (0, 0), 90,
                       "the restore completed after the restart")
            took = time.monotonic() - t0
            rc, _ = second.stop()
            recs = second.records()
        assert rc == 0
        restored = [r for r in recs if r.get("message") == "archive restored"]
        assert [r["key"] for r in restored] == ["in/k9.tar.zst"], restored
        assert took > 1.0, "the message came back before its visibility timeout?"
        for o in objects:
            got = s3.get_object(Bucket="dest-a", Key=mkarchive.destination_key(o))["Body"].read()
            assert got == o["data"], o["relative_key"]
        assert os.listdir(tmp) == [], os.listdir(tmp)
        # The killed consumer's uploads stay behind (a lifecycle rule's job, docs/security.md); no other one does.
        left = {u["UploadId"] for u in uploading()}
        assert left <= orphans, (left, orphans)


def is_complete(method, target, headers=None):
    return method == "POST" and "uploadId=" in target


def restore_multipart_via(objects, check, before=None, **proxy_args):
    """Restore `objects` to moto's bucket dest-a through a FaultProxy built
    with `proxy_args`, in 5 MiB parts; `before(s3)` runs first, and
    `check(s3, res, counts)` while moto is still up."""
    targets = [{"region": REGION, "bucket": "dest-a"}]
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        make_buckets(s3, "dest-a")
        path = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(path, objects, targets, level=1)
        if before:
            before(s3)
        with faultproxy.FaultProxy(m.url, time_limit=120, **proxy_args) as proxy:
            env = m.env()
            env["AWS_ENDPOINT_URL"] = proxy.url
            res = util.run_trs(["process", path, "--json", "--no-progress", "--multipart-threshold", "5242880",
                                "--part-size", "5242880"], env=env, timeout=60)
            counts = proxy.summary()
        check(s3, res, counts)


def test_lost_complete_multipart_answer_still_restores():
    """CompleteMultipartUpload reached the server but its answer was cut: the
    client sends it again (moto, like S3 shortly after a completion, accepts
    the repeat) and the object is there, whole, with no upload left over."""
    objects = [{"relative_key": "lost/complete.bin", "data": rnd(11 * MIB, 77)}]

    def check(s3, res, counts):
        assert counts["cut"] == 1, counts
        util.expect_exit(res, 0, "process with a lost CompleteMultipartUpload answer")
        check_exact(s3, objects, ["dest-a"])
        no_multipart_uploads(s3, "dest-a")

    restore_multipart_via(objects, check, cut=1.0, eligible=is_complete, max_faults_per_request=1,
                          cut_methods=("POST",))


def test_lost_complete_answer_then_nosuchupload_still_restores():
    """As above, but the repeat finds no upload (404 NoSuchUpload), as S3
    answers once it has forgotten a completed upload's id: trs sees the
    object standing with its parts' ETag, and the restore succeeds."""
    objects = [{"relative_key": "lost/forgotten.bin", "data": rnd(11 * MIB, 78)}]

    def check(s3, res, counts):
        assert counts["cut"] == 1 and counts["forgotten"] == 1, counts
        util.expect_exit(res, 0, "process with a lost CompleteMultipartUpload answer, then NoSuchUpload")
        assert b"an earlier attempt completed it" in res.stderr, res.stderr[-2000:]
        check_exact(s3, objects, ["dest-a"])
        no_multipart_uploads(s3, "dest-a")
        assert s3.head_object(Bucket="dest-a", Key=mkarchive.destination_key(objects[0]))["ETag"].endswith('-3"')

    restore_multipart_via(objects, check, cut=1.0, eligible=is_complete, max_faults_per_request=1,
                          cut_methods=("POST",), forget_completed=True)


def test_nosuchupload_with_another_object_standing_is_an_error():
    """CompleteMultipartUpload answered NoSuchUpload while the key holds some
    other object (or none): the restore fails, takes no stranger for ours,
    and leaves no upload behind."""
    objects = [{"relative_key": "lost/stranger.bin", "data": rnd(11 * MIB, 79)},
               {"relative_key": "lost/nothing.bin", "data": rnd(11 * MIB, 80)}]
    stranger = mkarchive.destination_key(objects[0])

    def before(s3):
        s3.put_object(Bucket="dest-a", Key=stranger, Body=b"someone else's bytes")

    def check(s3, res, counts):
        assert counts["answered"] >= 2, counts
        assert res.returncode != 0, res.stderr[-2000:]
        assert b"NoSuchUpload" in res.stderr, res.stderr[-2000:]
        assert b"an earlier attempt completed it" not in res.stderr
        assert s3.get_object(Bucket="dest-a", Key=stranger)["Body"].read() == b"someone else's bytes"
        assert "Contents" not in s3.list_objects_v2(Bucket="dest-a", Prefix=mkarchive.destination_key(objects[1]))
        no_multipart_uploads(s3, "dest-a")

    restore_multipart_via(objects, check, before,
                          respond=lambda method, target, headers:
                          (404, "NoSuchUpload") if is_complete(method, target) else None)


def test_an_empty_staging_archive_fails_and_its_message_stays():
    """A 0-byte object in staging (S3 refuses a range of it, 416): `trs
    process` says the archive cannot be read (exit 3); `trs serve` logs the
    archive failed and keeps it and its message."""
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m)
        s3.put_object(Bucket="staging", Key="in/empty.tar.zst", Body=b"")
        res = util.run_trs(["process", "s3://staging/in/empty.tar.zst", "--no-progress"], env=m.env(), timeout=60)
        util.expect_exit(res, 3, "process of an empty archive")
        assert "in/empty.tar.zst" in res.err, res.describe()
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "30", "--metrics", "none"],
                   m.env()) as srv:
            srv.wait_log("archive failed; archive and message kept for a retry", timeout=30)
            rc, _ = srv.stop()
            recs = srv.records()
            log = srv.log()
        assert rc == 0, log[-2000:]
        (failed,) = [r for r in recs if r.get("message") == "archive failed; archive and message kept for a retry"]
        assert failed["key"] == "in/empty.tar.zst" and failed["code"] == "TRS_EARCHIVE", failed
        assert staging_keys(s3) == ["in/empty.tar.zst"]
        visible, invisible = queue_counts(sqs, url)
        assert visible + invisible == 1, (visible, invisible, log[-1500:])


def test_an_s3_outage_spends_the_retry_budget_once_and_it_recovers():
    """Every PUT to the destination answers 500 InternalError: the retries
    (5 tokens each from 500) soon spend the S3 client's budget, which the
    log says once; the archive fails and its message comes back. Once S3
    answers again, the successes refill the budget (said once), the archive
    is restored, and the `S3 retries` line counts what the budget refused."""
    outage = threading.Event()
    outage.set()

    def refuse_puts(method, target, headers):
        if outage.is_set() and method == "PUT" and target.startswith("/dest-a/"):
            return 500, "InternalError"
        return None

    objects = [{"relative_key": "o/%02d.txt" % i, "data": rnd(200 + i, 500 + i)} for i in range(60)]
    with util.MotoServer() as m, faultproxy.FaultProxy(m.url, respond=refuse_puts, time_limit=180) as proxy:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            put_archive(s3, "in/outage.tar.zst", objects, [{"region": REGION, "bucket": "dest-a"}], d)
        env = m.env()
        env["AWS_ENDPOINT_URL_S3"] = proxy.url
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "2", "--metrics", "none"],
                   env) as srv:
            srv.wait_log("archive failed; archive and message kept for a retry", timeout=60)
            assert "retry budget spent" in srv.log(), srv.log()[-3000:]
            outage.clear()
            wait_until(lambda: staging_keys(s3) == [] and queue_counts(sqs, url) == (0, 0), 60,
                       "the archive restored after the outage: " + srv.log()[-2000:])
            rc, _ = srv.stop()
            recs = srv.records()
            log = srv.log()
        assert rc == 0, log[-3000:]
        check_exact(s3, objects, ["dest-a"])
    spent = [i for i, r in enumerate(recs) if r.get("message", "").startswith("retry budget spent")]
    back = [i for i, r in enumerate(recs) if r.get("message", "").startswith("retry budget recovered")]
    assert len(spent) == 1 and recs[spent[0]]["service"] == "S3" and recs[spent[0]]["level"] == "warn", log[-3000:]
    assert len(back) == 1 and recs[back[0]]["service"] == "S3" and back[0] > spent[0], log[-3000:]
    restored = [i for i, r in enumerate(recs) if r.get("message") == "archive restored"]
    assert len(restored) == 1 and restored[0] > spent[0], log[-3000:]
    (retries,) = [r for r in recs if r.get("message") == "S3 retries"]
    assert int(retries["retries_refused_by_budget"]) > 0 and int(retries["retries"]) >= 100, retries
