# SPDX-License-Identifier: Apache-2.0
"""trs serve: the queue consumer against moto (S3 + SQS wired by a real
bucket notification) and against a dir:// spool queue without AWS."""

import json
import os
import signal
import subprocess
import tempfile
import time

import mkarchive
import util
from util import REGION, OTHER_REGION


MIB = 1 << 20


def rnd(n, seed):
    import random
    return random.Random(seed).randbytes(n)


class Serve:
    """`trs serve ARGS` in the background; stop() sends SIGTERM (or `sig`) and waits."""

    def __init__(self, args, env):
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([util.trs_bin(), "serve"] + [str(a) for a in args],
                                     stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)

    def log(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")

    def records(self):
        recs = []
        for line in self.log().splitlines():
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
        return recs

    def wait_log(self, message, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(r.get("message") == message for r in self.records()):
                return
            assert self.proc.poll() is None, "trs serve exited early: %s" % self.log()[-2000:]
            time.sleep(0.05)
        raise AssertionError("no '%s' in the log after %ss: %s" % (message, timeout, self.log()[-2000:]))

    def stop(self, within=10, sig=signal.SIGTERM):
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(within)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("trs serve did not stop within %ss of %s: %s" % (
                within, signal.Signals(sig).name, self.log()[-2000:]))
        return rc, time.monotonic() - t0

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.kill()
        util.saw_stderr("trs serve", self.log())
        self.out.close()
        self.err.close()


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s" % what)


def queue_counts(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def staging_keys(s3, bucket="staging"):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def setup_moto(m, dest_buckets=("dest-a",)):
    """Staging bucket notifying a queue (moto sends the s3:TestEvent at once)."""
    s3, sqs = m.client("s3"), m.client("sqs")
    cfg = {"LocationConstraint": REGION}
    for b in ("staging",) + tuple(dest_buckets):
        s3.create_bucket(Bucket=b, CreateBucketConfiguration=cfg)
    url = sqs.create_queue(QueueName="trs-inbound")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket="staging", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    return s3, sqs, url


def put_archive(s3, key, objects, targets, d):
    path = os.path.join(d, "x.tar.zst")
    mkarchive.build_archive(path, objects, targets, level=3)
    with open(path, "rb") as f:
        s3.put_object(Bucket="staging", Key=key, Body=f.read())


def tags_of(s3, bucket, key):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def test_serve_restores_archives_from_real_bucket_notifications():
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m, ("dest-a", "dest-b"))
        targets = [{"region": REGION, "bucket": "dest-a"},
                   {"region": REGION, "bucket": "dest-b", "storage_class": "STANDARD_IA"},
                   {"region": OTHER_REGION, "bucket": "dest-elsewhere"}]
        archives = {
            "in/with space.tar.zst": [{"relative_key": "a b/one.txt", "data": b"one", "tags": [{"team": "fin"}]}],
            "in/with+plus.tar.zst": [{"relative_key": "c+d/two.bin", "data": rnd(70000, 2),
                                      "storage_class": "GLACIER_IR"}],
            "in/ü %41.tar.zst": [{"relative_key": "three.txt", "data": b"three", "source_prefix": "p"}],
        }
        with util.tempdir() as d:
            for key, objs in archives.items():
                put_archive(s3, key, objs, targets, d)
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "30"], m.env()) as srv:
            wait_until(lambda: not staging_keys(s3) and queue_counts(sqs, url) == (0, 0), 60,
                       "every archive restored and every message deleted: " + srv.log()[-1500:])
            rc, took = srv.stop()
            assert rc == 0, srv.log()[-2000:]
            assert took < 10, took
            recs = srv.records()
        assert any(r.get("message") == "test event; deleted without work" for r in recs), recs
        restored = [r for r in recs if r.get("message") == "archive restored"]
        assert sorted(r["key"] for r in restored) == sorted(archives), restored
        for objs in archives.values():
            for o in objs:
                dkey = mkarchive.destination_key(o)
                for t in targets[:2]:
                    got = s3.get_object(Bucket=t["bucket"], Key=dkey)
                    assert got["Body"].read() == o["data"], (t, dkey)
                    want = t.get("storage_class") or o.get("storage_class") or "STANDARD"
                    assert got.get("StorageClass", "STANDARD") == want, (dkey, got.get("StorageClass"))
                    for tag in o.get("tags", []):
                        for k, v in tag.items():
                            assert tags_of(s3, t["bucket"], dkey).get(k) == v
        assert "dest-elsewhere" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert queue_counts(sqs, url) == (0, 0)


def test_serve_keeps_archive_and_message_when_a_target_fails():
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m)
        targets = [{"region": REGION, "bucket": "no-such-bucket"}]
        with util.tempdir() as d:
            put_archive(s3, "in/fails.tar.zst", [{"relative_key": "f.txt", "data": b"f"}], targets, d)
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "2"], m.env()) as srv:
            srv.wait_log("archive failed; archive and message kept for a retry")
            rc, _ = srv.stop()
            assert rc == 0, srv.log()[-2000:]
            log = srv.log()
        assert staging_keys(s3) == ["in/fails.tar.zst"]
        visible, invisible = queue_counts(sqs, url)
        assert visible + invisible == 1, (visible, invisible, log[-1500:])
        assert "NoSuchBucket" in log


def test_serve_leaves_poison_message_for_the_redrive_policy():
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m)
        sqs.send_message(QueueUrl=url, MessageBody="this is not an S3 event")
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "1"], m.env()) as srv:
            srv.wait_log("poison message left for the queue's redrive policy")
            rc, _ = srv.stop()
            assert rc == 0
            recs = srv.records()
        poison = [r for r in recs if r.get("message") == "poison message left for the queue's redrive policy"]
        assert poison and poison[0].get("message_id"), poison
        assert all("receipt" not in k for r in recs for k in r), recs
        time.sleep(1.2)
        visible, invisible = queue_counts(sqs, url)
        assert visible + invisible == 1, (visible, invisible)


def test_serve_sigterm_during_a_long_archive_returns_the_message():
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m)
        objs = [{"relative_key": "big%d.bin" % i, "data": rnd(24 * MIB, 10 + i)} for i in range(4)]
        with util.tempdir() as d:
            put_archive(s3, "in/long.tar.zst", objs, [{"region": REGION, "bucket": "dest-a"}], d)
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "120", "--shutdown-grace", "0",
                    "--workers", "1"], m.env()) as srv:
            srv.wait_log("archive started", timeout=60)
            time.sleep(0.3)
            rc, took = srv.stop()
            assert rc == 0, srv.log()[-2000:]
            assert took < 10, took
            log = srv.log()
        if "archive restored" in log:
            raise util.Skip("the archive finished before SIGTERM arrived")
        assert "message made visible again for another consumer" in log, log[-2000:]
        assert staging_keys(s3) == ["in/long.tar.zst"]
        wait_until(lambda: queue_counts(sqs, url) == (1, 0), 5, "the message visible again at once")


def test_serve_dir_queue_end_to_end_without_aws():
    with util.tempdir() as d:
        q, stg, out = (os.path.join(d, n) for n in ("q", "stg", "out"))
        os.makedirs(os.path.join(stg, "staging"))
        os.makedirs(q)
        targets = [{"region": REGION, "bucket": "dest-a"}]
        mkarchive.build_archive(os.path.join(stg, "staging", "a b+c.tar.zst"),
                                [{"relative_key": "x/y.txt", "data": b"hello"}], targets)
        records = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                "s3": {"bucket": {"name": "staging"}, "object": {"key": "a+b%2Bc.tar.zst"}}}]}
        sns = {"Type": "Notification", "Message": json.dumps({"Records": [
            {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
             "s3": {"bucket": {"name": "staging"}, "object": {"key": "gone-already.tar.zst"}}}]})}
        for name, body in (("1.json", records), ("2.json", sns),
                           ("3.json", {"Service": "Amazon S3", "Event": "s3:TestEvent"})):
            with open(os.path.join(q, name), "w") as f:
                json.dump(body, f)
        with open(os.path.join(q, "4.json"), "w") as f:
            f.write("{poison")
        env = util.clean_env()
        with Serve(["--queue", "dir://" + q, "--staging", "file://" + stg, "--dest", "file://" + out,
                    "--poll-interval", "1", "--visibility-timeout", "60", "--batch", "10"], env) as srv:
            wait_until(lambda: sorted(os.listdir(q)) == [".inflight"] and
                       len(os.listdir(os.path.join(q, ".inflight"))) == 1, 20, "the queue drained: " + srv.log())
            rc, _ = srv.stop()
            assert rc == 0, srv.log()
        dkey = mkarchive.destination_key({"relative_key": "x/y.txt", "data": b"hello"})
        with open(os.path.join(out, "dest-a", dkey), "rb") as f:
            assert f.read() == b"hello"
        assert not os.path.exists(os.path.join(stg, "staging", "a b+c.tar.zst"))
        left = os.listdir(os.path.join(q, ".inflight"))
        assert len(left) == 1 and left[0].startswith("4.json@"), left


def test_serve_dir_queue_redrive_moves_poison_and_failing_messages_to_the_dead_letter_directory():
    """dir://PATH?max_receives=2: a poison body and a message whose archive
    keeps failing are received twice, then moved to PATH/.dead/ under their
    own names, as SQS's redrive policy moves them to a dead-letter queue;
    the good message is restored. --max-idle then fires, since only dead
    messages remain (they used to come back for ever, and a consumer with
    --max-idle never stopped)."""
    with util.tempdir() as d:
        q, stg, out = (os.path.join(d, n) for n in ("q", "stg", "out"))
        os.makedirs(os.path.join(stg, "staging"))
        os.makedirs(q)
        targets = [{"region": REGION, "bucket": "dest-a"}]
        good = {"relative_key": "x/ok.txt", "data": b"ok"}
        bad = {"relative_key": "y/taken.txt", "data": b"never"}
        mkarchive.build_archive(os.path.join(stg, "staging", "good.tar.zst"), [good], targets)
        mkarchive.build_archive(os.path.join(stg, "staging", "bad.tar.zst"), [bad], targets)
        # A directory where the bad archive's object goes: its write fails at every delivery.
        os.makedirs(os.path.join(out, "dest-a", mkarchive.destination_key(bad), "sub"))

        def record(key):
            return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                 "s3": {"bucket": {"name": "staging"}, "object": {"key": key}}}]}
        for name, body in (("1.json", json.dumps(record("good.tar.zst"))),
                           ("2.json", json.dumps(record("bad.tar.zst"))), ("3.json", "{poison")):
            with open(os.path.join(q, name), "w") as f:
                f.write(body)
        with Serve(["--queue", "dir://%s?max_receives=2" % q, "--staging", "file://" + stg, "--dest",
                    "file://" + out, "--poll-interval", "1", "--visibility-timeout", "1", "--batch", "10",
                    "--max-idle", "3", "--log-format", "json"], util.clean_env()) as srv:
            try:
                rc = srv.proc.wait(60 * util.SLOWDOWN)
            except subprocess.TimeoutExpired:
                raise AssertionError("--max-idle never fired: %s" % srv.log()[-3000:])
            records = srv.records()
            log = srv.log()
        assert rc == 0, log[-2000:]
        assert sorted(os.listdir(q)) == [".dead", ".inflight"], os.listdir(q)
        assert os.listdir(os.path.join(q, ".inflight")) == [], log[-2000:]
        assert sorted(os.listdir(os.path.join(q, ".dead"))) == ["2.json", "3.json"], log[-2000:]
        with open(os.path.join(q, ".dead", "3.json")) as f:
            assert f.read() == "{poison"
        with open(os.path.join(out, "dest-a", mkarchive.destination_key(good)), "rb") as f:
            assert f.read() == b"ok"
        poison = [r["receive_count"] for r in records
                  if r["message"] == "poison message left for the queue's redrive policy"]
        assert poison == [1, 2], log[-3000:]
        failed = [r for r in records if r["message"] == "archive failed; archive and message kept for a retry"]
        assert len(failed) == 2 and all(r["key"] == "bad.tar.zst" for r in failed), log[-3000:]
        dead = [r for r in records if r["message"].startswith("message moved to the dead-letter directory")]
        assert sorted(r["message_id"] for r in dead) == ["2", "3"], log[-3000:]
        assert all(r["level"] == "error" and r["receive_count"] == 2 and r["max_receives"] == 2 and
                   r["dead_letter"] == os.path.join(q, ".dead") and r["queue"] == "dir://%s?max_receives=2" % q
                   for r in dead), dead
        idle = [i for i, r in enumerate(records) if r["message"] == "idle for --max-idle seconds; stopping"]
        assert len(idle) == 1 and idle[0] > max(records.index(r) for r in dead), log[-3000:]


def test_serve_bad_configuration_exits_2():
    env = util.clean_env()
    cases = [
        ([], {}, "no queue"),
        (["--queue", "dir:///tmp/x", "--batch", "11"], {}, "--batch"),
        (["--queue", "dir:///tmp/x", "--poll-interval", "21"], {}, "--poll-interval"),
        (["--queue", "dir:///tmp/x"], {"MAX_MESSAGES_PER_BATCH": "0"}, "MAX_MESSAGES_PER_BATCH"),
        (["--queue", "dir:///tmp/x"], {"VISIBILITY_TIMEOUT": "soon"}, "VISIBILITY_TIMEOUT"),
        (["--queue", "dir:///tmp/x"], {"POLL_INTERVAL": "30"}, "POLL_INTERVAL"),
        (["--queue", "dir:///tmp/x"], {"MAX_WORKERS": "-1"}, "MAX_WORKERS"),
        (["--queue", "ftp://example/q"], {}, "neither"),
        (["--queue", "dir:///tmp/x", "--metrics", "carrier-pigeon"], {}, "--metrics"),
        (["--queue", "dir:///tmp/x?max_receives=0"], {}, "max_receives must be a whole number from 1 to 1000"),
        (["--queue", "dir:///tmp/x?dead_letter=/tmp/y"], {}, "dead_letter needs max_receives"),
        (["--queue", "dir:///tmp/x?maxReceiveCount=5"], {}, "'maxReceiveCount' is not a parameter"),
    ]
    for args, extra, want in cases:
        e = dict(env)
        e.update(extra)
        res = util.run_trs(["serve"] + args, env=e, timeout=20)
        util.expect_exit(res, 2, " ".join(args) + " " + json.dumps(extra))
        assert want in res.err, (want, res.err)
    # A queue that does not exist is a configuration error too.
    with util.MotoServer() as m:
        res = util.run_trs(["serve", "--queue", m.url + "/123456789012/nope", "--poll-interval", "1"],
                           env=m.env(), timeout=60)
        util.expect_exit(res, 2, "missing queue")
        assert "nope" in res.err
