# SPDX-License-Identifier: Apache-2.0
"""trs serve and its SQS queue: what docs/operations.md promises of the
receives, heartbeats and deletes, against moto's SQS.

SQS goes through tests/fixtures/faultproxy.py (AWS_ENDPOINT_URL_SQS), which
records every call and bends chosen ones: a corrupted MD5OfBody, a receipt
handle moto does not know, failing receives, a delete held back. S3 is
moto's behind the strict checker (util.MotoServer), through a second proxy
where a test holds the archives' GETs to keep them in flight."""

import hashlib
import json
import threading
import time
import zlib

import faultproxy
import util
from util import REGION
from test_serve import Serve, put_archive, queue_counts, rnd, setup_moto, staging_keys, wait_until
from test_serve_concurrency import slow_gets

TARGETS = [{"region": REGION, "bucket": "dest-a"}]
MESSAGE_SKIPPED = "SQS message body does not match its MD5; skipped"


class SqsWatch:
    """The proxy's hooks for SQS: records each call trs made (wall time,
    action, request JSON) and each message the ReceiveMessage answers
    carried, as trs got them. Subclasses bend calls through refuse()
    (an answer instead of forwarding), bend_request() and bend_answer()
    (the JSON to send instead, or None)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []     # (time, action, request JSON), forwarded or refused
        self.received = []  # (time, message JSON) of every answer, as sent to trs

    def proxy(self, upstream):
        return faultproxy.FaultProxy(upstream, time_limit=240, respond=self._respond,
                                     edit_request=self._edit_request, edit_answer=self._edit_answer)

    def refuse(self, action):
        return None

    def bend_request(self, action, request):
        return None

    def bend_answer(self, action, request, answer):
        return None

    def _respond(self, method, target, headers):
        action = faultproxy.sqs_action(headers)
        answer = self.refuse(action) if action else None
        if answer is not None:
            with self.lock:
                self.calls.append((time.time(), action, None))
        return answer

    def _edit_request(self, method, target, headers, body):
        action = faultproxy.sqs_action(headers)
        if not action:
            return None
        request = json.loads(body or b"{}")
        bent = self.bend_request(action, request)
        with self.lock:
            self.calls.append((time.time(), action, bent if bent is not None else request))
        return json.dumps(bent).encode() if bent is not None else None

    def _edit_answer(self, method, target, headers, body, status, answer_headers, answer_body):
        action = faultproxy.sqs_action(headers)
        if not action or status != 200 or not answer_body:
            return None
        answer = json.loads(answer_body)
        bent = self.bend_answer(action, json.loads(body or b"{}"), answer)
        if action == "ReceiveMessage":
            with self.lock:
                now = time.time()
                self.received += [(now, m) for m in (bent or answer).get("Messages", [])]
        return json.dumps(bent).encode() if bent is not None else None

    def requests(self, action):
        with self.lock:
            return [(t, req) for t, a, req in self.calls if a == action]

    def deliveries(self, pred):
        """The messages received whose body satisfies pred, in order."""
        with self.lock:
            return [m for _, m in self.received if pred(m["Body"])]


def serve_env(m, sqs_proxy, s3_proxy=None):
    env = m.env()
    env["AWS_ENDPOINT_URL_SQS"] = sqs_proxy.url
    if s3_proxy:
        env["AWS_ENDPOINT_URL_S3"] = s3_proxy.url
    return env


def indices(recs, message, pred=lambda r: True):
    return [i for i, r in enumerate(recs) if r.get("message") == message and pred(r)]


def objects(name):
    """The one object of the archive in/NAME.tar.zst, restored to dest-a as NAME.bin."""
    return [{"relative_key": name + ".bin", "data": rnd(3000, zlib.crc32(name.encode()))}]


def put(s3, name, d):
    put_archive(s3, "in/%s.tar.zst" % name, objects(name), TARGETS, d)


def check_restored(s3, name):
    got = s3.get_object(Bucket="dest-a", Key=name + ".bin")["Body"].read()
    assert got == objects(name)[0]["data"], name


def test_a_message_failing_its_md5_is_skipped_and_restored_when_it_comes_back():
    """The first two deliveries of one message carry a wrong MD5OfBody: each is
    skipped (not deleted, not worked on), the message comes back after its
    visibility timeout and is restored then. The other message is restored
    as usual. A receive whose every message is skipped keeps nothing."""
    class Corrupt(SqsWatch):
        def __init__(self):
            super().__init__()
            self.corrupted = []

        def bend_answer(self, action, request, answer):
            if action != "ReceiveMessage":
                return None
            bent = False
            for msg in answer.get("Messages", []):
                if "md5-0" in msg["Body"] and len(self.corrupted) < 2:
                    msg["MD5OfBody"] = hashlib.md5(b"not this body").hexdigest()
                    self.corrupted.append(msg["MessageId"])
                    bent = True
            return answer if bent else None

    watch = Corrupt()
    with util.MotoServer() as m, watch.proxy(m.moto_url) as proxy:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            put(s3, "md5-0", d)
            put(s3, "good-0", d)
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "2", "--batch", "10",
                    "--metrics", "none"], serve_env(m, proxy)) as srv:
            wait_until(lambda: staging_keys(s3) == [] and queue_counts(sqs, url) == (0, 0), 60,
                       "both archives restored and their messages deleted: " + srv.log()[-2000:])
            rc, _ = srv.stop()
            recs = srv.records()
            log = srv.log()
        assert rc == 0, log[-3000:]
        check_restored(s3, "md5-0")
        check_restored(s3, "good-0")
    assert len(watch.corrupted) == 2 and len(set(watch.corrupted)) == 1, watch.corrupted
    bad_id = watch.corrupted[0]
    skipped = indices(recs, MESSAGE_SKIPPED)
    assert [recs[i]["message_id"] for i in skipped] == watch.corrupted, log[-3000:]
    assert all(recs[i]["level"] == "warn" for i in skipped)
    started = indices(recs, "archive started", lambda r: r["message_id"] == bad_id)
    assert len(started) == 1 and started[0] > skipped[-1], log[-3000:]
    assert recs[started[0]]["key"] == "in/md5-0.tar.zst"
    # Skipped, not deleted: SQS delivered it again after each skip.
    assert len(watch.deliveries(lambda body: "md5-0" in body)) == 3, watch.received
    assert len(indices(recs, "archive restored")) == 2, log[-3000:]


def test_heartbeats_keep_a_long_archive_invisible_past_its_visibility_timeout():
    """A visibility timeout of 3 s and an archive whose GET takes 8 s: a
    ChangeMessageVisibility of 3 s every second keeps the message from
    coming back, so the archive is restored once and nobody sees the
    message meanwhile."""
    watch = SqsWatch()
    with util.MotoServer() as m, watch.proxy(m.moto_url) as sqs_proxy, \
            faultproxy.FaultProxy(m.url, respond=slow_gets(8.0), time_limit=120) as s3_proxy:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            put(s3, "slow-0", d)
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "3", "--batch", "10",
                    "--metrics", "none"], serve_env(m, sqs_proxy, s3_proxy)) as srv:
            srv.wait_log("archive started", timeout=30)
            started = time.monotonic()
            time.sleep(5)  # past the 3 s the receive asked for; the GET is still held
            assert time.monotonic() - started < 7.5, "too slow to look while the archive is in flight"
            assert queue_counts(sqs, url) == (0, 1), "the message came back while its archive was in flight"
            wait_until(lambda: staging_keys(s3) == [] and queue_counts(sqs, url) == (0, 0), 60,
                       "the archive restored and its message deleted: " + srv.log()[-2000:])
            rc, _ = srv.stop()
            recs = srv.records()
            log = srv.log()
        assert rc == 0, log[-3000:]
        check_restored(s3, "slow-0")
    delivered = watch.deliveries(lambda body: "slow-0" in body)
    assert len(delivered) == 1, "delivered again while its archive was in flight: %s" % delivered
    msg = delivered[0]
    received_at = [t for t, m in watch.received if m["MessageId"] == msg["MessageId"]][0]
    beats = [(t, req) for t, req in watch.requests("ChangeMessageVisibility")
             if req["ReceiptHandle"] == msg["ReceiptHandle"]]
    assert len(beats) >= 5, beats
    assert all(req["VisibilityTimeout"] == 3 for _, req in beats), beats
    times = [received_at] + [t for t, _ in beats]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Every third of the timeout, from the receipt (one a second; the keeper looks every 50 ms).
    assert all(0.7 <= g <= 2.0 for g in gaps), gaps
    assert len(indices(recs, "archive started")) == 1, log[-3000:]


def test_messages_finished_together_are_deleted_with_one_delete_message_batch():
    """While a DeleteMessageBatch is held for 3 s, the other archives finish;
    their messages go in one DeleteMessageBatch, which moto answers entry by
    entry, and every message is gone from the queue."""
    class HoldFirstDelete(SqsWatch):
        def __init__(self):
            super().__init__()
            self.held = False

        def refuse(self, action):
            if action == "DeleteMessageBatch":
                with self.lock:
                    first, self.held = not self.held, True
                if first:
                    time.sleep(3)
            return None

    watch = HoldFirstDelete()
    with util.MotoServer() as m, watch.proxy(m.moto_url) as proxy:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            for i in range(4):
                put(s3, "batch-%d" % i, d)
        with Serve(["--queue", url, "--poll-interval", "1", "--archives", "4", "--batch", "10",
                    "--visibility-timeout", "60", "--metrics", "none"], serve_env(m, proxy)) as srv:
            wait_until(lambda: staging_keys(s3) == [] and queue_counts(sqs, url) == (0, 0), 60,
                       "every archive restored and every message deleted: " + srv.log()[-2000:])
            rc, _ = srv.stop()
            recs = srv.records()
            log = srv.log()
        assert rc == 0, log[-3000:]
        for i in range(4):
            check_restored(s3, "batch-%d" % i)
    batches = [req["Entries"] for _, req in watch.requests("DeleteMessageBatch")]
    assert max(len(b) for b in batches) >= 2, batches
    for entries in batches:
        assert len({e["Id"] for e in entries}) == len(entries), entries
    # Four archives and the bucket notification's test event, each deleted once.
    assert sum(len(b) for b in batches) == 5, batches
    assert len(indices(recs, "message deleted")) == 5, log[-3000:]
    assert "message not deleted" not in log
    stopped = indices(recs, "serve stopped")
    assert int(recs[stopped[0]]["messages_deleted"]) == 5, recs[stopped[0]]


def test_a_failed_message_delete_is_logged_and_the_redelivery_is_deleted_without_work():
    """moto refuses one message's delete (its receipt handle is replaced by
    one it never gave): a warning, the message comes back after its
    visibility timeout, its archive is already gone from staging, so it is
    counted as done and deleted without being restored again."""
    class RefuseOneDelete(SqsWatch):
        def __init__(self):
            super().__init__()
            self.refused = []

        def bend_request(self, action, request):
            if action != "DeleteMessageBatch" or self.refused:
                return None
            with self.lock:
                bodies = {m["ReceiptHandle"]: m for _, m in self.received}
            for e in request["Entries"]:
                msg = bodies.get(e["ReceiptHandle"])
                if msg and "undeletable-0" in msg["Body"]:
                    self.refused.append(msg["MessageId"])
                    e["ReceiptHandle"] = "not-a-handle-moto-gave"
                    return request
            return None

    watch = RefuseOneDelete()
    with util.MotoServer() as m, watch.proxy(m.moto_url) as proxy:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            put(s3, "undeletable-0", d)
            put(s3, "ok-0", d)
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "2", "--batch", "10",
                    "--metrics", "none"], serve_env(m, proxy)) as srv:
            wait_until(lambda: watch.refused and queue_counts(sqs, url) == (0, 0), 60,
                       "the refused message received again and deleted: " + srv.log()[-2000:])
            rc, _ = srv.stop()
            recs = srv.records()
            log = srv.log()
        assert rc == 0, log[-3000:]
        assert staging_keys(s3) == []
        check_restored(s3, "undeletable-0")
        check_restored(s3, "ok-0")
    (bad_id,) = watch.refused
    of_bad = lambda r: r.get("message_id") == bad_id  # noqa: E731
    warned = indices(recs, "message not deleted; it will be received again and its archives are already done",
                     of_bad)
    assert len(warned) == 1, log[-3000:]
    w = recs[warned[0]]
    assert w["level"] == "warn" and w["code"] == "TRS_ENOTFOUND" and "ReceiptHandleIsInvalid" in w["error"], w
    redelivered = indices(recs, "archive not in staging; counted as done (a redelivery after an earlier success)",
                          of_bad)
    deleted = indices(recs, "message deleted", of_bad)
    assert len(redelivered) == 1 and redelivered[0] > warned[0], log[-3000:]
    assert len(deleted) == 1 and deleted[0] > redelivered[0], log[-3000:]
    assert len(indices(recs, "archive restored")) == 2, log[-3000:]
    assert len(watch.deliveries(lambda body: "undeletable-0" in body)) == 2, watch.received
    # The other message of that DeleteMessageBatch was deleted: no warning for it.
    assert log.count("message not deleted") == 1, log[-3000:]


def test_receive_failures_are_retried_with_a_growing_backoff():
    """After the first receive, six ReceiveMessage calls fail with 500
    InternalError: with two tries per request that is three failed receives,
    each logged, each followed by a longer wait (1 s, 2 s, 4 s). Then SQS
    answers again and an archive sent meanwhile is restored."""
    class FailReceives(SqsWatch):
        def __init__(self):
            super().__init__()
            self.receives = 0

        def refuse(self, action):
            if action != "ReceiveMessage":
                return None
            with self.lock:
                self.receives += 1
                n = self.receives
            return faultproxy.sqs_error(500, "InternalError") if 2 <= n <= 7 else None

    watch = FailReceives()
    with util.MotoServer() as m, watch.proxy(m.moto_url) as proxy:
        s3, sqs, url = setup_moto(m)
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "30", "--max-attempts", "2",
                    "--metrics", "none"], serve_env(m, proxy)) as srv:
            srv.wait_log("receive failed; retrying", timeout=30)
            with util.tempdir() as d:
                put(s3, "later-0", d)
            wait_until(lambda: staging_keys(s3) == [] and queue_counts(sqs, url) == (0, 0), 60,
                       "the archive restored once SQS answered again: " + srv.log()[-2000:])
            rc, _ = srv.stop()
            recs = srv.records()
            log = srv.log()
        assert rc == 0, log[-3000:]
        check_restored(s3, "later-0")
    failed = [recs[i] for i in indices(recs, "receive failed; retrying")]
    assert len(failed) == 3, log[-3000:]
    assert all(r["level"] == "error" and r["code"] == "TRS_EHTTP" and "InternalError" in r["error"]
               for r in failed), failed
    retried = indices(recs, "SQS request failed; retrying", lambda r: r.get("op") == "ReceiveMessage")
    assert len(retried) == 3, log[-3000:]
    # Requests 2-7 failed, two per receive; each failed receive waits before
    # the next: 1 s, then 2 s, then 4 s (the proxy's clock).
    t = [ts for ts, _ in watch.requests("ReceiveMessage")]
    assert len(t) >= 8, watch.calls
    waits = [t[3] - t[2], t[5] - t[4], t[7] - t[6]]
    assert waits[0] >= 0.95 and waits[1] >= 1.95 and waits[2] >= 3.9, waits
    assert waits[0] < waits[1] < waits[2], waits


def test_credentials_refused_on_the_first_receive_exit_2_and_later_refusals_are_retried():
    """moto checking credentials (INITIAL_NO_AUTH_ACTION_COUNT: that many
    requests pass unchecked, then every key is unknown): refused on the
    first receive, trs serve exits 2 at once and says what to check;
    refused after a receive went through, it logs and retries."""
    with util.MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "1"}) as m:
        url = m.client("sqs").create_queue(QueueName="trs-inbound")["QueueUrl"]
        res = util.run_trs(["serve", "--queue", url, "--poll-interval", "1", "--metrics", "none"], env=m.env(),
                           timeout=60)
    util.expect_exit(res, 2, "credentials refused on the first receive")
    assert "HTTP 403" in res.err and "check that these credentials may call sqs:ReceiveMessage" in res.err, \
        res.err[-2000:]
    assert "retrying" not in res.err, res.err[-2000:]
    assert res.elapsed < 10 * util.SLOWDOWN, res.elapsed

    with util.MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "2"}) as m:
        url = m.client("sqs").create_queue(QueueName="trs-inbound")["QueueUrl"]
        with Serve(["--queue", url, "--poll-interval", "1", "--metrics", "none"], m.env()) as srv:
            wait_until(lambda: srv.log().count("receive failed; retrying") >= 2 or srv.proc.poll() is not None,
                       30, "two refused receives retried: " + srv.log()[-2000:])
            assert srv.proc.poll() is None, "trs serve stopped on a refusal after its first receive: " + \
                srv.log()[-2000:]
            rc, _ = srv.stop()
            recs = srv.records()
    assert rc == 0, srv.log()[-2000:]
    failed = [recs[i] for i in indices(recs, "receive failed; retrying")]
    assert failed and all(r["code"] == "TRS_EAUTH" for r in failed), failed


def test_every_runner_busy_is_logged_once_and_receives_ask_for_no_more_than_free_runners():
    """One archive runner, a batch of 10 and three archives held in flight:
    the log says once that every runner is busy, each receive asks for one
    message (the free runners, not the batch), and the archives are
    restored one at a time."""
    watch = SqsWatch()
    with util.MotoServer() as m, watch.proxy(m.moto_url) as sqs_proxy, \
            faultproxy.FaultProxy(m.url, respond=slow_gets(1.5), time_limit=120) as s3_proxy:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            for i in range(3):
                put(s3, "slow-%d" % i, d)
        with Serve(["--queue", url, "--poll-interval", "1", "--archives", "1", "--batch", "10",
                    "--visibility-timeout", "60", "--metrics", "none"], serve_env(m, sqs_proxy, s3_proxy)) as srv:
            wait_until(lambda: staging_keys(s3) == [] and queue_counts(sqs, url) == (0, 0), 60,
                       "every archive restored and every message deleted: " + srv.log()[-2000:])
            rc, _ = srv.stop()
            recs = srv.records()
            log = srv.log()
        assert rc == 0, log[-3000:]
        for i in range(3):
            check_restored(s3, "slow-%d" % i)
    busy = indices(recs, "every archive runner is busy; receiving waits for one to finish (logged once; raise "
                         "--archives for more in flight)")
    assert len(busy) == 1 and int(recs[busy[0]]["archives"]) == 1, log[-3000:]
    asked = [req["MaxNumberOfMessages"] for _, req in watch.requests("ReceiveMessage")]
    assert asked and set(asked) == {1}, asked
    stopped = recs[indices(recs, "serve stopped")[0]]
    assert int(stopped["peak_archives_in_flight"]) == 1, stopped
    assert len(indices(recs, "archive restored")) == 3, log[-3000:]
