# SPDX-License-Identifier: Apache-2.0
"""`trs process --metrics emf|cloudwatch` (issue: metrics, FORMAT.md §4).

EMF: JSON lines on stdout, one per dimension set, in namespace S3Compressor
(or $STACK_NAME), with TargetBucket per target bucket of this region and
Stage on ProcessingTimeByStage; an archive for other regions only reports
TargetBucket "none"; an unreadable archive reports FailedDecompressions.
CloudWatch: PutMetricData against moto_server, read back with boto3
(list_metrics, get_metric_statistics); an unreachable CloudWatch never
changes the exit code or the restored objects.
"""
import datetime
import json
import os
import time

import mkarchive
import util
from util import REGION, OTHER_REGION, expect_exit, process, sandbox

TARGETS = [
    {"region": REGION, "bucket": "dest-a"},
    {"region": REGION, "bucket": "dest-b"},
    {"region": OTHER_REGION, "bucket": "dest-c"},
]
IN_REGION = ["dest-a", "dest-b"]

ARCHIVE_METRICS = {
    "DecompressionRatio": "None", "CompressedSize": "Bytes", "DecompressedSize": "Bytes",
    "DecompressionTimeSeconds": "Seconds", "ObjectRestoreTime": "Seconds",
    "ObjectsProcessed": "Count", "SkippedObjects": "Count", "FailedTargetUploads": "Count",
}


def objects(n=5):
    return [{"relative_key": "m/obj-%d.txt" % i, "data": (b"metric line %d\n" % i) * (50 + i)}
            for i in range(n)]


def emf_docs(res):
    """Every stdout line as an EMF document, checked for the EMF shape."""
    docs = []
    for line in res.out.splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        aws = d["_aws"]
        assert isinstance(aws["Timestamp"], int), line
        (directive,) = aws["CloudWatchMetrics"]
        (dims,) = directive["Dimensions"]
        for name in dims:
            assert name in d, "dimension %s has no value: %s" % (name, line)
        for m in directive["Metrics"]:
            assert isinstance(d[m["Name"]], (int, float)), line
        docs.append(d)
    assert docs, "no EMF lines: " + res.describe()
    return docs


def directive(d):
    return d["_aws"]["CloudWatchMetrics"][0]


def test_emf_archive_metrics_once_per_archive_and_counts_per_bucket():
    with sandbox() as sb:
        objs = objects(5)
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objs, TARGETS)
        res = process(arc, sb.out, "--metrics", "emf", "--no-progress")
        expect_exit(res, 0)
        docs = emf_docs(res)
        bucket_docs = {d["TargetBucket"]: d for d in docs if directive(d)["Dimensions"] == [["TargetBucket"]]}
        assert sorted(bucket_docs) == IN_REGION, bucket_docs.keys()
        size = os.path.getsize(arc)
        # The archive's values once, under the first target bucket of this region.
        d = bucket_docs["dest-a"]
        assert directive(d)["Namespace"] == "S3Compressor"
        units = {m["Name"]: m["Unit"] for m in directive(d)["Metrics"]}
        assert units == ARCHIVE_METRICS, units
        assert d["ObjectsProcessed"] == 5, d
        assert d["FailedTargetUploads"] == 0 and d["SkippedObjects"] == 0, d
        assert d["CompressedSize"] == size, (d["CompressedSize"], size)
        assert abs(d["DecompressionRatio"] - d["DecompressedSize"] / size) < 1e-9, d
        assert d["ObjectRestoreTime"] >= d["DecompressionTimeSeconds"] >= 0, d
        # The other bucket: its own counts only.
        d = bucket_docs["dest-b"]
        units = {m["Name"]: m["Unit"] for m in directive(d)["Metrics"]}
        assert units == {"ObjectsProcessed": "Count", "FailedTargetUploads": "Count"}, units
        assert d["ObjectsProcessed"] == 5 and d["FailedTargetUploads"] == 0, d
        assert sum(1 for d in docs if "CompressedSize" in d) == 1, docs
        stages = [d for d in docs if directive(d)["Dimensions"] == [["TargetBucket", "Stage"]]]
        assert stages, "no ProcessingTimeByStage lines"
        for d in stages:
            assert [m["Name"] for m in directive(d)["Metrics"]] == ["ProcessingTimeByStage"]
            assert directive(d)["Metrics"][0]["Unit"] == "Seconds"
            assert d["Stage"] in ("download", "manifest", "decompress", "upload", "cleanup"), d
            assert d["ProcessingTimeByStage"] > 0
            assert d["TargetBucket"] == "dest-a", d
        assert {d["Stage"] for d in stages} >= {"upload"}
        assert len(bucket_docs) + len(stages) == len(docs)


def test_emf_goes_to_stderr_when_the_report_is_on_stdout():
    with sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(2), TARGETS)
        res = process(arc, sb.out, "--metrics", "emf", "--no-progress", "--log-format", "json",
                      json_report=True)
        expect_exit(res, 0)
        report = json.loads(res.out)  # stdout is the report alone
        assert report["objects_written"] == 2, res.out
        emf = [json.loads(x) for x in res.err.splitlines() if x.startswith('{"_aws"')]
        assert any(d.get("TargetBucket") == "dest-a" and "CompressedSize" in d for d in emf), res.err


def test_emf_namespace_is_stack_name_when_set():
    with sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(2), TARGETS)
        env = util.clean_env(extra={"STACK_NAME": "compressor-prod", "TRS_METRICS": "emf"})
        res = process(arc, sb.out, "--no-progress", env=env)
        expect_exit(res, 0)
        assert {directive(d)["Namespace"] for d in emf_docs(res)} == {"compressor-prod"}


def test_archive_for_other_regions_fails_as_foreign_not_as_a_decompression():
    # Targets, none here: the archive is read well but is a configuration error (exit 4);
    # the metric says so (ForeignArchives), not FailedDecompressions.
    with sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(3), [TARGETS[2]])
        res = process(arc, sb.out, "--metrics", "emf", "--no-progress")
        expect_exit(res, 4)
        docs = [d for d in emf_docs(res) if directive(d)["Dimensions"] == [["TargetBucket"]]]
        assert len(docs) == 1 and docs[0]["TargetBucket"] == "none", docs
        assert docs[0]["ForeignArchives"] == 1 and "FailedDecompressions" not in docs[0], docs[0]
        assert docs[0]["SkippedObjects"] == 3 and docs[0]["ObjectsProcessed"] == 0, docs[0]


def test_archive_for_other_regions_skipped_when_expected_reports_skipped_objects():
    with sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(3), [TARGETS[2]])
        res = process(arc, sb.out, "--metrics", "emf", "--no-progress", "--foreign-archives", "skip")
        expect_exit(res, 0)
        docs = [d for d in emf_docs(res) if directive(d)["Dimensions"] == [["TargetBucket"]]]
        assert len(docs) == 1 and docs[0]["TargetBucket"] == "none", docs
        assert docs[0]["SkippedObjects"] == 3 and docs[0]["ObjectsProcessed"] == 0, docs[0]
        assert "ForeignArchives" not in docs[0] and "FailedDecompressions" not in docs[0], docs[0]


def test_unreadable_archive_reports_failed_decompressions():
    with sandbox() as sb:
        bad = sb.write("bad.tar.zst", b"this is not zstd at all" * 10)
        res = process(bad, sb.out, "--metrics", "emf", "--no-progress")
        expect_exit(res, 3)
        docs = emf_docs(res)
        failed = [d for d in docs if "FailedDecompressions" in d]
        assert len(failed) == 1 and failed[0]["FailedDecompressions"] == 1, docs
        assert "DecompressionRatio" not in failed[0]


def test_metrics_none_and_default_print_nothing():
    with sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(2), TARGETS)
        for extra in ([], ["--metrics", "none"]):
            res = process(arc, sb.out, "--no-progress", "--log-level", "warn", *extra)
            expect_exit(res, 0)
            assert "_aws" not in res.out, res.describe()


def test_bad_metrics_value_is_a_usage_error():
    with sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(1), TARGETS)
        expect_exit(process(arc, sb.out, "--metrics", "statsd"), 2)


def test_cloudwatch_metrics_reach_the_endpoint():
    with util.MotoServer() as m, sandbox() as sb:
        n = 4
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(n), TARGETS)
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        res = process(arc, sb.out, "--metrics", "cloudwatch", "--no-progress", env=m.env())
        expect_exit(res, 0)
        cw = m.client("cloudwatch")
        listed = cw.list_metrics(Namespace="S3Compressor")["Metrics"]
        names = {x["MetricName"] for x in listed}
        for want in ("DecompressionRatio", "DecompressionTimeSeconds", "ObjectRestoreTime",
                     "ProcessingTimeByStage", "ObjectsProcessed"):
            assert want in names, (want, sorted(names))
        stage_dims = [{d["Name"] for d in x["Dimensions"]} for x in listed
                      if x["MetricName"] == "ProcessingTimeByStage"]
        assert stage_dims and all(d == {"TargetBucket", "Stage"} for d in stage_dims), stage_dims
        end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
        for bucket in IN_REGION:
            st = cw.get_metric_statistics(
                Namespace="S3Compressor", MetricName="ObjectsProcessed",
                Dimensions=[{"Name": "TargetBucket", "Value": bucket}],
                StartTime=start, EndTime=end, Period=3600, Statistics=["Sum"])
            total = sum(p["Sum"] for p in st["Datapoints"])
            assert total == n, (bucket, st["Datapoints"])
        # The objects were written for real.
        for bucket in IN_REGION:
            for o in objects(n):
                assert os.path.isfile(util.object_path(sb.out, bucket, mkarchive.destination_key(o)))


def test_cloudwatch_namespace_from_stack_name():
    with util.MotoServer() as m, sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(1), TARGETS)
        env = m.env()
        env["STACK_NAME"] = "stack-x"
        res = process(arc, sb.out, "--metrics", "cloudwatch", "--no-progress", env=env)
        expect_exit(res, 0)
        cw = m.client("cloudwatch")
        assert cw.list_metrics(Namespace="stack-x")["Metrics"]
        assert not cw.list_metrics(Namespace="S3Compressor")["Metrics"]


def test_unreachable_cloudwatch_never_fails_the_archive():
    with sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(3), TARGETS)
        env = util.clean_env(extra={
            "AWS_ACCESS_KEY_ID": "AKIAUNREACHABLE", "AWS_SECRET_ACCESS_KEY": "secret-never-logged",
            "AWS_ENDPOINT_URL_CLOUDWATCH": "http://127.0.0.1:%d" % util.free_port()})
        t0 = time.monotonic()
        res = process(arc, sb.out, "--metrics", "cloudwatch", "--no-progress", "--log-format", "json",
                      env=env, timeout=60)
        expect_exit(res, 0)
        assert time.monotonic() - t0 < 20, res.describe()
        assert "metrics not sent to CloudWatch" in res.err, res.describe()
        assert "secret-never-logged" not in res.err and "Signature=" not in res.err
        for bucket in IN_REGION:
            for o in objects(3):
                assert os.path.isfile(util.object_path(sb.out, bucket, mkarchive.destination_key(o)))


def test_cloudwatch_signature_checked_by_moto():
    with util.MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as m, sandbox() as sb:
        iam = m.client("iam")
        iam.create_user(UserName="trs")
        key = iam.create_access_key(UserName="trs")["AccessKey"]
        iam.put_user_policy(UserName="trs", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        creds = (key["AccessKeyId"], key["SecretAccessKey"])
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(2), TARGETS)
        res = process(arc, sb.out, "--metrics", "cloudwatch", "--no-progress", env=m.env(key=creds))
        expect_exit(res, 0)
        assert "metrics not sent" not in res.err, res.describe()
        names = {x["MetricName"] for x in m.client("cloudwatch", key=creds).list_metrics(
            Namespace="S3Compressor")["Metrics"]}
        assert "ObjectsProcessed" in names, names
        # A wrong secret is refused: logged, and the archive still succeeds.
        bad = process(arc, sb.out, "--metrics", "cloudwatch", "--no-progress",
                      env=m.env(key=(creds[0], "wrong-secret")))
        expect_exit(bad, 0)
        assert "metrics not sent to CloudWatch" in bad.err, bad.describe()
        assert "SignatureDoesNotMatch" in bad.err or "403" in bad.err, bad.describe()
        assert "wrong-secret" not in bad.err
