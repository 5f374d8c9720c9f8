# SPDX-License-Identifier: Apache-2.0
"""Failures an operator can act on (issue: ready to release and to run): a
service that cannot be reached names the endpoint settings and exits 5, not
3 ("the archive cannot be read"); a limit that refuses an archive names its
flag, and the report still says what the manifest claimed."""
import json
import socket

import mkarchive
import util
from util import REGION, expect_exit, process, sandbox


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def test_an_unreachable_endpoint_exits_5_and_names_the_endpoint_settings():
    env = util.clean_env(extra={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_MAX_ATTEMPTS": "1"})
    for url in ("http://127.0.0.1:%d" % _closed_port(), "http://no-such-host.invalid:9"):
        res = util.run_trs(["process", "s3://staging/a.tar.zst", "--endpoint-url", url, "--no-progress"], env=env)
        expect_exit(res, 5, url)
        assert "--endpoint-url" in res.err and "AWS_ENDPOINT_URL" in res.err, res.err


def test_https_against_a_plain_http_endpoint_exits_5():
    with util.MotoServer() as m:
        env = dict(m.env(), AWS_MAX_ATTEMPTS="1")
        url = m.url.replace("http://", "https://")
        res = util.run_trs(["process", "s3://staging/a.tar.zst", "--endpoint-url", url, "--no-progress"], env=env)
        expect_exit(res, 5)
        assert "http or https" in res.err, res.err


def test_a_manifest_over_the_limit_names_the_flag_and_the_report_its_size():
    objs = [{"relative_key": "o%04d-%s" % (i, "x" * 100), "data": b"x"} for i in range(200)]
    with sandbox() as sb:
        a = sb.archive(objects=objs, targets=[{"region": REGION, "bucket": "dest-a"}])
        res = process(a, sb.out, "--max-manifest", "16K", json_report=True)
        expect_exit(res, 3)
        rep = json.loads(res.out)
        assert "--max-manifest" in rep["error"], rep["error"]
        want = len(mkarchive.manifest_bytes(objs, [{"region": REGION, "bucket": "dest-a"}]))
        assert rep["manifest_bytes"] == want, (rep["manifest_bytes"], want)


def test_one_missing_bucket_is_one_line_not_one_per_object():
    # 47 objects to a bucket that does not exist, and to one that does: the cause is said once, with
    # its count and the first keys; each object's own line only at debug; the report lists all 47.
    objs = [{"relative_key": "o%02d.txt" % i, "data": b"x%d" % i} for i in range(47)]
    targets = [{"region": REGION, "bucket": "dest-a"}, {"region": REGION, "bucket": "no-such-bucket"}]
    with util.MotoServer() as m, util.tempdir() as d:
        m.client("s3").create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        path = mkarchive.build_archive(d + "/a.tar.zst", objs, targets)
        res = util.run_trs(["process", path, "--no-progress", "--log-format", "json"], env=m.env(), timeout=180)
        expect_exit(res, 1)
        lines = [json.loads(x) for x in res.err.splitlines()]
        errors = [x for x in lines if x["level"] == "error"]
        grouped = [x for x in errors if x.get("bucket") == "no-such-bucket"]
        assert len(grouped) == 1, errors
        g = grouped[0]
        assert g["objects_failed"] == 47 and g["aws_code"] == "NoSuchBucket", g
        assert g["first_keys"] == "o00.txt, o01.txt, o02.txt" or len(g["first_keys"].split(", ")) == 3, g
        assert "47 objects failed to bucket no-such-bucket" in g["message"], g
        assert "What to do: create the bucket" in g["message"], g
        assert len(errors) == 2, errors  # the cause, and the archive's own line
        res = util.run_trs(["process", path, "--no-progress", "--json"], env=m.env(), timeout=180)
        rep = json.loads(res.stdout)
        assert len(rep["failures"]) == 47 and rep["objects_failed"] == 47, rep["objects_failed"]
        # the text summary: one FAILED line for the cause
        res = util.run_trs(["process", path, "--no-progress", "--log-format", "text"], env=m.env(), timeout=180)
        failed = [x for x in res.err.splitlines() if x.strip().startswith("FAILED")]
        assert len(failed) == 1 and "47 objects to bucket no-such-bucket" in failed[0], res.err


def test_a_missing_staging_bucket_is_named_as_where_the_archive_is_read_from():
    with util.MotoServer() as m:
        res = util.run_trs(["process", "s3://no-such-staging/in/a.tar.zst", "--no-progress"], env=m.env())
        expect_exit(res, 3)
        assert "NoSuchBucket" in res.err and "staging bucket" in res.err, res.err
        assert "of this target" not in res.err, res.err


def test_a_second_pass_says_each_member_without_an_entry_once():
    # --max-memory 1M to S3: the objects before the manifest do not all fit, the archive is read twice;
    # members without an entry were said (and counted) twice.
    import os
    objs = [{"relative_key": "o%d.bin" % i, "data": os.urandom(300 << 10)} for i in range(8)]
    objs += [{"relative_key": "stray%d.bin" % i, "data": b"no entry", "in_manifest": False} for i in range(2)]
    with util.MotoServer() as m, util.tempdir() as d:
        m.client("s3").create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        path = mkarchive.build_archive(d + "/a.tar.zst", objs, [{"region": REGION, "bucket": "dest-a"}])
        res = util.run_trs(["process", path, "--no-progress", "--json", "--max-memory", "1M"], env=m.env(),
                           timeout=180)
        expect_exit(res, 0)
        rep = json.loads(res.stdout)
        assert rep["passes"] == 2, rep["passes"]
        assert rep["members_skipped"] == 2 and rep["objects_written"] == 8, rep
        said = [x for x in res.err.splitlines() if "no manifest entry" in x]
        assert len(said) == 2, said


def test_a_refused_value_says_what_the_option_takes():
    cases = [
        (["process", "a.tar.zst", "--max-memory", "64K"], "--max-memory: it takes a size of at least 1M (bytes"),
        (["process", "a.tar.zst", "--part-size", "1M"], "--part-size: it takes a size from 5M to 5G"),
        (["process", "a.tar.zst", "--overwrite", "sometimes"], "--overwrite: it takes newer or always"),
        (["process", "a.tar.zst", "--log-level", "loud"], "--log-level: it takes error, warn, info or debug"),
        (["serve", "--queue", "dir:///tmp/q", "--batch", "11"], "--batch: it takes a whole number of messages "
                                                                 "from 1 to 10"),
        (["serve", "--queue", "dir:///tmp/q", "--visibility-timeout", "0"], "seconds from 1 to 43200"),
        (["inspect", "a.tar.zst", "--max-manifest", "lots"], "--max-manifest: it takes a size above 0"),
        (["pack", "d", "-o", "x.tar.zst", "--level", "30"], "--level: it takes a zstd level from 1 to 22"),
    ]
    for args, want in cases:
        res = util.run_trs(args)
        expect_exit(res, 2, " ".join(args))
        assert want in res.err, (args, res.err)


def test_inspect_takes_the_manifest_limit():
    objs = [{"relative_key": "o%04d-%s" % (i, "x" * 100), "data": b"x"} for i in range(200)]
    with sandbox() as sb:
        a = sb.archive(objects=objs, targets=[{"region": REGION, "bucket": "dest-a"}])
        res = util.run_trs(["inspect", a, "--max-manifest", "16K"])
        expect_exit(res, 3)
        assert "--max-manifest" in res.err, res.err
        res = util.run_trs(["inspect", a, "--max-manifest", "1M", "--json"])
        expect_exit(res, 0)
        assert json.loads(res.out)["manifest_bytes"] > 16 << 10
