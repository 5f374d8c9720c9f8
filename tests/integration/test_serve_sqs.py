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
