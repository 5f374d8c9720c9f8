"""What operators watch, from `trs serve` (issue: metrics, logs): CloudWatch
metrics after a restore from moto's SQS, and no secret or signature in the
most verbose logs."""
import datetime
import json

import util
from util import REGION
from test_serve import Serve, setup_moto, put_archive, queue_counts, staging_keys, wait_until, rnd


def _restore_one(m, env, objects, args=()):
    s3, sqs, url = setup_moto(m)
    targets = [{"region": REGION, "bucket": "dest-a"}]
    with util.tempdir() as d:
        put_archive(s3, "src-bucket/data/obs.tar.zst", objects, targets, d)
    with Serve(["--queue", url, "--poll-interval", "1"] + list(args), env) as srv:
        wait_until(lambda: staging_keys(s3) == [] and queue_counts(sqs, url) == (0, 0), 60,
                   "the archive restored and cleaned up: " + srv.log()[-1500:])
        rc, secs = srv.stop()
        assert rc == 0, srv.log()[-1500:]
        out = srv.log()
        srv.out.seek(0)
        out += srv.out.read().decode("utf-8", "replace")
    for o in objects:
        assert s3.get_object(Bucket="dest-a", Key=o["relative_key"])["Body"].read() == o["data"]
    return out


def test_serve_sends_the_dashboards_metrics_to_cloudwatch_by_default():
    objects = [{"relative_key": "m%d.bin" % i, "object_name": "m%d.bin" % i, "data": rnd(3000 + i, i)}
               for i in range(5)]
    with util.MotoServer() as m:
        _restore_one(m, m.env(), objects)
        cw = m.client("cloudwatch")
        names = {x["MetricName"] for x in cw.list_metrics(Namespace="S3Compressor")["Metrics"]}
        for want in ("DecompressionRatio", "DecompressionTimeSeconds", "ObjectRestoreTime",
                     "ProcessingTimeByStage", "ObjectsProcessed"):
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
