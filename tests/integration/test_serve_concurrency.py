# SPDX-License-Identifier: Apache-2.0
"""trs serve with several archives in flight (--archives): a slow archive
holds only its own message, a failing one or a poison message does not stop
the others, and a stop finishes or releases every archive in flight.

S3 goes through tests/fixtures/faultproxy.py, whose respond() hook holds the
GET of the archives named slow-* for a few seconds; SQS is moto's, wired to
the staging bucket by a real bucket notification (test_serve.setup_moto).
Timings are loose: the tests assert the order of events, not durations."""

import os
import signal
import time

import faultproxy
import util
from util import REGION
from test_serve import Serve, put_archive, queue_counts, rnd, setup_moto, staging_keys, wait_until


def slow_gets(seconds):
    def respond(method, target, headers):
        if method == "GET" and "/slow-" in target:
            time.sleep(seconds)
        return None
    return respond


def small(name, i):
    return [{"relative_key": "%s/%d.txt" % (name, i), "data": rnd(3000, hash(name) & 0xffff)}]


def started_keys(recs):
    """message_id -> archive key, from the "archive started" records."""
    return {r["message_id"]: r["key"] for r in recs if r.get("message") == "archive started"}


def first_index(recs, message, pred):
    for i, r in enumerate(recs):
        if r.get("message") == message and pred(r):
            return i
    return None


def serve_env(m, proxy):
    env = m.env()
    env["AWS_ENDPOINT_URL_S3"] = proxy.url
    return env


def test_fast_archives_are_deleted_before_the_slow_ones_finish():
    targets = [{"region": REGION, "bucket": "dest-a"}]
    with util.MotoServer() as m, faultproxy.FaultProxy(m.url, respond=slow_gets(4.0), time_limit=120) as proxy:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            for i in range(2):
                put_archive(s3, "in/slow-%d.tar.zst" % i, small("slow", i), targets, d)
            for i in range(8):
                put_archive(s3, "in/fast-%d.tar.zst" % i, small("fast", i), targets, d)
        with Serve(["--queue", url, "--poll-interval", "1", "--archives", "4", "--batch", "10",
                    "--metrics", "none"], serve_env(m, proxy)) as srv:
            wait_until(lambda: staging_keys(s3) == [], 60, "every archive restored: " + srv.log()[-2000:])
            wait_until(lambda: srv.log().count('"message deleted"') >= 10, 20, "every message deleted")
            rc, _ = srv.stop()
            recs = srv.records()
        assert rc == 0, srv.log()[-2000:]
        wait_until(lambda: queue_counts(sqs, url) == (0, 0), 10, "the queue drained")
    keys = started_keys(recs)
    slow_done = [first_index(recs, "archive restored", lambda r, k=k: r["key"] == k)
                 for k in ("in/slow-0.tar.zst", "in/slow-1.tar.zst")]
    assert None not in slow_done, srv.log()[-3000:]
    fast_ids = [mid for mid, k in keys.items() if "/fast-" in k]
    assert len(fast_ids) == 8, keys
    for mid in fast_ids:
        deleted = first_index(recs, "message deleted", lambda r: r["message_id"] == mid)
        assert deleted is not None and deleted < min(slow_done), (keys[mid], deleted, slow_done)
    peak = [r for r in recs if r.get("message") == "serve stopped"][0]["peak_archives_in_flight"]
    assert int(peak) >= 3, peak
    # The bucket notification's eventTime gives each archive's replication lag.
    lags = [float(r["replication_lag_seconds"]) for r in recs if r.get("message") == "archive restored"]
    assert len(lags) == 10 and all(0 <= x < 120 for x in lags), lags
    slow_lags = [float(r["replication_lag_seconds"]) for r in recs
                 if r.get("message") == "archive restored" and "/slow-" in r["key"]]
    assert min(slow_lags) >= 3.5, slow_lags
    retries = [r for r in recs if r.get("message") == "S3 retries"]
    assert len(retries) == 1 and int(retries[0]["retries_refused_by_budget"]) == 0, retries


def test_a_poison_message_and_a_failing_archive_do_not_stop_the_good_ones():
    good = [{"region": REGION, "bucket": "dest-a"}]
    bad = [{"region": REGION, "bucket": "no-such-bucket"}]
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m)
        sqs.send_message(QueueUrl=url, MessageBody="{poison")
        with util.tempdir() as d:
            put_archive(s3, "in/bad.tar.zst", small("bad", 0), bad, d)
            for i in range(6):
                put_archive(s3, "in/good-%d.tar.zst" % i, small("good", i), good, d)
        with Serve(["--queue", url, "--poll-interval", "1", "--archives", "3", "--batch", "10",
                    "--visibility-timeout", "60", "--metrics", "none"], m.env()) as srv:
            wait_until(lambda: staging_keys(s3) == ["in/bad.tar.zst"], 60, "the good archives restored: " +
                       srv.log()[-2000:])
            wait_until(lambda: srv.log().count('"message deleted"') >= 7, 20, "the good messages deleted")
            rc, _ = srv.stop()
            log = srv.log()
        assert rc == 0, log[-2000:]
        for i in range(6):
            key = "good/%d.txt" % i
            assert s3.get_object(Bucket="dest-a", Key=key.split("/")[-1])["Body"].read() == small("good", i)[0]["data"]
        assert "poison message left for the queue's redrive policy" in log
        assert "archive failed; archive and message kept for a retry" in log
        # The poison message and the failing archive's stay on the queue (invisible until their timeout).
        visible, invisible = queue_counts(sqs, url)
        assert visible + invisible == 2, (visible, invisible)


def deny_staging_deletes(method, target, headers):
    """The staging DELETE of archives named deny-* is refused, as without s3:DeleteObject."""
    if method == "DELETE" and "/in/deny-" in target:
        return 403, "AccessDenied"
    return None


def test_a_refused_staging_delete_is_a_warning_and_the_message_is_deleted():
    targets = [{"region": REGION, "bucket": "dest-a"}]
    with util.MotoServer() as m, faultproxy.FaultProxy(m.url, respond=deny_staging_deletes, time_limit=120) as proxy:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            put_archive(s3, "in/deny-9.tar.zst", small("deny", 9), targets, d)
            for i in range(3):
                put_archive(s3, "in/ok-%d.tar.zst" % i, small("ok", i), targets, d)
        with Serve(["--queue", url, "--poll-interval", "1", "--archives", "2", "--batch", "10",
                    "--visibility-timeout", "60", "--metrics", "none"], serve_env(m, proxy)) as srv:
            # Four archives and the test event of the bucket notification.
            wait_until(lambda: srv.log().count('"message deleted"') >= 5, 60, "every message deleted: " +
                       srv.log()[-2000:])
            rc, _ = srv.stop()
            recs = srv.records()
            log = srv.log()
        assert rc == 0, log[-2000:]
        wait_until(lambda: queue_counts(sqs, url) == (0, 0), 10, "the queue drained")
        assert staging_keys(s3) == ["in/deny-9.tar.zst"]  # the refused one stays in staging
        for name, i in [("deny", 9)] + [("ok", i) for i in range(3)]:
            obj = small(name, i)[0]
            assert s3.get_object(Bucket="dest-a", Key=obj["relative_key"].split("/")[-1])["Body"].read() == obj["data"]
    warn = [r for r in recs if "could not be deleted from staging" in r.get("message", "")]
    assert len(warn) == 1, log[-3000:]
    assert warn[0]["level"] == "warn" and warn[0]["bucket"] == "staging" and warn[0]["key"] == "in/deny-9.tar.zst"
    assert "archive failed" not in log
    stopped = [r for r in recs if r.get("message") == "serve stopped"][0]
    assert int(stopped["archives_done"]) == 4 and int(stopped["archives_failed"]) == 0, stopped


def sigterm_with_slow_archives_in_flight(grace, check, signals=1, sig=signal.SIGTERM):
    """Three slow archives in flight, then SIGTERM (or `sig`); check(s3, sqs, url, log, recs, took) while moto is up."""
    targets = [{"region": REGION, "bucket": "dest-a"}]
    with util.MotoServer() as m, faultproxy.FaultProxy(m.url, respond=slow_gets(3.0), time_limit=120) as proxy:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            for i in range(3):
                put_archive(s3, "in/slow-%d.tar.zst" % i, small("slow", i), targets, d)
        with Serve(["--queue", url, "--poll-interval", "1", "--archives", "4", "--batch", "10",
                    "--visibility-timeout", "120", "--shutdown-grace", str(grace), "--metrics", "none"],
                   serve_env(m, proxy)) as srv:
            wait_until(lambda: srv.log().count('"archive started"') >= 3, 30, "three archives in flight: " +
                       srv.log()[-2000:])
            for _ in range(signals - 1):
                srv.proc.send_signal(sig)
                time.sleep(0.1)
            rc, took = srv.stop(within=30, sig=sig)
            log = srv.log()
            recs = srv.records()
        assert rc == 0, log[-2000:]
        check(s3, sqs, url, log, recs, took)


def deleted_archives(recs):
    keys = started_keys(recs)
    return sorted(keys[r["message_id"]] for r in recs
                  if r.get("message") == "message deleted" and r["message_id"] in keys)


def test_sigterm_with_archives_in_flight_and_no_grace_releases_each_message():
    def check(s3, sqs, url, log, recs, took):
        assert took < 10, took
        assert log.count("message made visible again for another consumer") == 3, log[-3000:]
        # One warn line per archive for the stop, and none of them is reported as a failure.
        assert log.count("archive canceled by the stop") == 3, log[-3000:]
        assert "archive failed" not in log
        assert deleted_archives(recs) == []
        assert sorted(staging_keys(s3)) == ["in/slow-%d.tar.zst" % i for i in range(3)]
        wait_until(lambda: queue_counts(sqs, url) == (3, 0), 5, "the messages visible again at once")
    sigterm_with_slow_archives_in_flight(0, check)


def test_sigint_stops_as_sigterm_does_and_releases_each_message():
    """SIGINT (Ctrl-C in a terminal) is a stop request too: no grace here, so
    each archive in flight is canceled and its message made visible again."""
    def check(s3, sqs, url, log, recs, took):
        assert took < 10, took
        assert "stop requested; finishing the archives in progress" in log, log[-3000:]
        assert log.count("message made visible again for another consumer") == 3, log[-3000:]
        assert "archive failed" not in log
        assert sorted(staging_keys(s3)) == ["in/slow-%d.tar.zst" % i for i in range(3)]
        wait_until(lambda: queue_counts(sqs, url) == (3, 0), 5, "the messages visible again at once")
    sigterm_with_slow_archives_in_flight(0, check, sig=signal.SIGINT)


def test_sigterm_with_archives_in_flight_and_a_grace_finishes_each():
    def check(s3, sqs, url, log, recs, took):
        assert log.count("archive restored") == 3, log[-3000:]
        assert deleted_archives(recs) == ["in/slow-%d.tar.zst" % i for i in range(3)], log[-3000:]
        assert "message made visible again" not in log
        assert staging_keys(s3) == []
        wait_until(lambda: queue_counts(sqs, url) == (0, 0), 5, "the queue drained")
    sigterm_with_slow_archives_in_flight(30, check)


def test_the_environment_configures_archives_and_writers_and_the_health_file_is_touched():
    """MAX_ARCHIVES and MAX_WORKERS are read by the library (trs_serve_options_from_env):
    MAX_WORKERS is the consumer's writers in all, shared by the archives in flight."""
    with util.tempdir() as d:
        q = os.path.join(d, "q")
        os.makedirs(q)
        health = os.path.join(d, "alive")
        env = util.clean_env()
        env.update({"MAX_ARCHIVES": "2", "MAX_WORKERS": "8"})
        with Serve(["--queue", "dir://" + q, "--poll-interval", "1", "--health-file", health, "--metrics", "none"],
                   env) as srv:
            srv.wait_log("serving")
            wait_until(lambda: os.path.exists(health), 10, "the health file")
            first = os.stat(health).st_mtime_ns
            wait_until(lambda: os.stat(health).st_mtime_ns > first, 10, "the health file touched again")
            rc, _ = srv.stop()
            serving = [r for r in srv.records() if r.get("message") == "serving"][0]
        assert rc == 0
        assert int(serving["archives"]) == 2 and int(serving["writers"]) == 8, serving
        assert int(serving["writers_reserved_per_archive"]) == 4, serving
    for extra, args, want in (({"MAX_ARCHIVES": "0"}, [], "MAX_ARCHIVES"), ({}, ["--archives", "257"], "--archives"),
                              ({"MAX_WORKERS": "many"}, [], "MAX_WORKERS")):
        env = util.clean_env()
        env.update(extra)
        res = util.run_trs(["serve", "--queue", "dir:///tmp/x"] + args, env=env, timeout=20)
        util.expect_exit(res, 2, repr((extra, args)))
        assert want in res.err, (want, res.err)


def test_a_second_sigterm_cancels_at_once_and_still_releases_each_message():
    def check(s3, sqs, url, log, recs, took):
        assert took < 10, took  # not the 30 s grace
        assert log.count("message made visible again for another consumer") == 3, log[-3000:]
        assert "could not make the message visible again" not in log
        assert sorted(staging_keys(s3)) == ["in/slow-%d.tar.zst" % i for i in range(3)]
        wait_until(lambda: queue_counts(sqs, url) == (3, 0), 5, "the messages visible again at once")
    sigterm_with_slow_archives_in_flight(30, check, signals=2)


def test_a_stop_during_the_puts_is_one_warn_line_per_archive_and_no_error():
    """Objects canceled by a stop were refused by nothing: no error line per object."""
    def slow_puts(method, target, headers):
        if method == "PUT" and "/dest-a/" in target:
            time.sleep(2.0)
        return None
    targets = [{"region": REGION, "bucket": "dest-a"}]
    objs = [{"relative_key": "many/%d.txt" % i, "data": rnd(1000, i)} for i in range(40)]
    with util.MotoServer() as m, faultproxy.FaultProxy(m.url, respond=slow_puts, time_limit=120) as proxy:
        s3, sqs, url = setup_moto(m)
        with util.tempdir() as d:
            put_archive(s3, "in/many.tar.zst", objs, targets, d)
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "120", "--shutdown-grace", "0",
                    "--metrics", "none"], serve_env(m, proxy)) as srv:
            srv.wait_log("archive started", timeout=30)
            time.sleep(0.5)
            rc, took = srv.stop(within=30)
            recs = srv.records()
        assert rc == 0
        errors = [r for r in recs if r.get("level") == "error"]
        assert errors == [], errors[:3]
        assert sum(r.get("message", "").startswith("archive canceled by the stop") for r in recs) == 1
        wait_until(lambda: queue_counts(sqs, url) == (1, 0), 5, "the message visible again at once")
