# SPDX-License-Identifier: Apache-2.0
"""What operators watch, from `trs serve` (issue: metrics, logs): EMF lines
on stdout by default (the Python container's way), CloudWatch PutMetricData
by flag, after a restore from moto's SQS, and no secret or signature in the
most verbose logs."""
import datetime
import json

import util
from util import REGION
from test_serve import Serve, setup_moto, put_archive, queue_counts, staging_keys, wait_until, rnd


def _restore_one(m, env, objects, args=(), split=False):
    s3, sqs, url = setup_moto(m)
    targets = [{"region": REGION, "bucket": "dest-a"}]
    with util.tempdir() as d:
        put_archive(s3, "src-bucket/data/obs.tar.zst", objects, targets, d)
    with Serve(["--queue", url, "--poll-interval", "1"] + list(args), env) as srv:
        wait_until(lambda: staging_keys(s3) == [] and queue_counts(sqs, url) == (0, 0), 60,
                   "the archive restored and cleaned up: " + srv.log()[-1500:])
        rc, secs = srv.stop()
        assert rc == 0, srv.log()[-1500:]
        err = srv.log()
        srv.out.seek(0)
        out = srv.out.read().decode("utf-8", "replace")
    for o in objects:
        assert s3.get_object(Bucket="dest-a", Key=o["relative_key"])["Body"].read() == o["data"]
    return (out, err) if split else err + out


def test_serve_with_the_containers_environment_writes_emf_under_stack_name():
    """Only what the stack's task definition sets (plus moto's endpoint and
    keys): EMF lines on stdout in namespace STACK_NAME, nothing else there."""
    objects = [{"relative_key": "e%d.bin" % i, "object_name": "e%d.bin" % i, "data": rnd(4000 + i, i)}
               for i in range(3)]
    with util.MotoServer() as m:
        url = m.client("sqs").create_queue(QueueName="trs-inbound")["QueueUrl"]
        env = util.clean_env(region=None, extra={
            "SQS_QUEUE_URL": url, "AWS_DEFAULT_REGION": REGION, "STACK_NAME": "compressor-stack",
            "AWS_ENDPOINT_URL": m.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
        out, err = _restore_one(m, env, objects, split=True)
        cw = m.client("cloudwatch")
        for ns in ("compressor-stack", "S3Compressor"):
            assert not cw.list_metrics(Namespace=ns)["Metrics"], "PutMetricData was called"
    docs = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert docs, "nothing on stdout: " + err[-1500:]
    names = {}
    for d in docs:
        (directive,) = d["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "compressor-stack", d
        (dims,) = directive["Dimensions"]
        for metric in directive["Metrics"]:
            names.setdefault(metric["Name"], []).append(({k: d[k] for k in dims}, d[metric["Name"]]))
    for want in ("DecompressionRatio", "CompressedSize", "DecompressedSize", "DecompressionTimeSeconds",
                 "ObjectRestoreTime", "ObjectsProcessed", "ProcessingTimeByStage", "ProcessingTime"):
        assert want in names, (want, sorted(names))
    assert [dims for dims, _ in names["CompressedSize"]] == [{"TargetBucket": "dest-a"}]
    assert names["ObjectsProcessed"] == [({"TargetBucket": "dest-a"}, 3)], names["ObjectsProcessed"]
    functions = {dims["Function"] for dims, _ in names["ProcessingTime"]}
    assert functions == {"process_message_batch", "process_s3_object"}, names["ProcessingTime"]
    assert all(v >= 0 for _, v in names["ProcessingTime"])
    # The S3 retry layer, once per archive: nothing retried or throttled on a
    # clean run, and the limit on requests in flight at its ceiling.
    for name in ("S3RetriedRequests", "S3ThrottledRequests", "S3RetriesRefused"):
        assert names.get(name) == [({}, 0)], (name, names.get(name))
    ((_, limit),) = names["S3ConcurrencyLimit"]
    assert limit >= 1, names["S3ConcurrencyLimit"]
    assert '"_aws"' not in err, "EMF on stderr"


def test_serve_sends_metrics_to_cloudwatch_by_flag():
    objects = [{"relative_key": "m%d.bin" % i, "object_name": "m%d.bin" % i, "data": rnd(3000 + i, i)}
               for i in range(5)]
    with util.MotoServer() as m:
        out, _ = _restore_one(m, m.env(), objects, ["--metrics", "cloudwatch"], split=True)
        assert '"_aws"' not in out, out
        cw = m.client("cloudwatch")
        names = {x["MetricName"] for x in cw.list_metrics(Namespace="S3Compressor")["Metrics"]}
        for want in ("DecompressionRatio", "DecompressionTimeSeconds", "ObjectRestoreTime",
                     "ProcessingTimeByStage", "ObjectsProcessed", "S3ConcurrencyLimit", "S3ThrottledRequests"):
            assert want in names, (want, sorted(names))
        now = datetime.datetime.now(datetime.timezone.utc)
        stats = cw.get_metric_statistics(
            Namespace="S3Compressor", MetricName="ObjectsProcessed",
            Dimensions=[{"Name": "TargetBucket", "Value": "dest-a"}],
            StartTime=now - datetime.timedelta(hours=1), EndTime=now + datetime.timedelta(hours=1),
            Period=3600, Statistics=["Sum"])
        total = sum(p["Sum"] for p in stats["Datapoints"])
        assert total == len(objects), stats["Datapoints"]


def test_serve_debug_logs_hold_no_secret_or_signature():
    secret = "SECRETdoNotLog1234567890abcdefXYZ"
    token = "TOKENdoNotLog0987654321sessionABC"
    objects = [{"relative_key": "s.txt", "object_name": "s.txt", "data": b"secret-free"}]
    with util.MotoServer() as m:
        env = m.env(key=("AKIAEXAMPLEKEYID", secret))
        env["AWS_SESSION_TOKEN"] = token
        out = _restore_one(m, env, objects, ["--log-level", "debug", "--log-format", "json"])
    assert len(out) > 200, out  # debug logging did say things
    for needle in (secret, token, "Signature=", "AWS4-HMAC-SHA256 Credential", "X-Amz-Security-Token"):
        assert needle not in out, "%r found in the logs" % needle
    for line in out.splitlines():
        if line.startswith("{"):
            json.loads(line)  # every log line is a JSON record
