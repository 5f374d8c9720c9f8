# SPDX-License-Identifier: Apache-2.0
"""Error text with long keys: S3 allows keys of 1,024 bytes, and an error
message has 1,024 bytes. The message shows names shortened in the middle
("first…last (N bytes)", cut between characters), so that the reason and
what to do always fit; the log line's `key` field and the report keep the
full key; every log line is valid UTF-8 and valid JSON for a strict reader."""

import json
import os
import urllib.parse
from xml.sax.saxutils import escape as xml_escape

import faultproxy
import mkarchive
import util
from util import REGION

from test_serve import Serve

ELLIPSIS = "\u2026"


def long_key(nbytes, unit):
    """A key of exactly `nbytes` UTF-8 bytes: segments of `unit` (each under
    a directory name's 255 bytes) joined by '/', padded with 'a'."""
    segments, size = [], 0
    while True:
        seg = ""
        while len((seg + unit).encode()) <= 200 and size + (1 if segments else 0) + len((seg + unit).encode()) <= nbytes:
            seg += unit
        if not seg:
            break
        size += (1 if segments else 0) + len(seg.encode())
        segments.append(seg)
    key = "/".join(segments)
    key += "a" * (nbytes - len(key.encode()))
    assert len(key.encode()) == nbytes and "/" in key
    return key


def entry(key, data):
    """A manifest entry whose destination key is `key` (prefix + name)."""
    prefix, name = key.rsplit("/", 1)
    return {"relative_key": key, "source_prefix": prefix, "object_name": name, "data": data}


def strict_records(raw):
    """Every line of `raw` (bytes) decoded as strict UTF-8 and parsed as JSON."""
    records = []
    for number, line in enumerate(raw.splitlines(), 1):
        try:
            text = line.decode("utf-8", errors="strict")
        except UnicodeDecodeError as e:
            raise AssertionError("line %d is not valid UTF-8 (%s): %r" % (number, e, line[-200:]))
        try:
            records.append(json.loads(text))
        except ValueError as e:
            raise AssertionError("line %d is not JSON (%s): %r" % (number, e, text[-200:]))
        assert isinstance(records[-1], dict), text
    return records


def strict_report(raw):
    try:
        return json.loads(raw.decode("utf-8", errors="strict"))
    except (UnicodeDecodeError, ValueError) as e:
        raise AssertionError("the --json report is not strict UTF-8 JSON (%s): %r" % (e, raw[-300:]))


def check_shortened(message, name):
    """The sentence names `name` shortened, never whole: "first…last (N bytes)",
    with at least 30 bytes of each end."""
    count = " (%d bytes)" % len(name.encode())
    assert name not in message, "the whole name is in the sentence: %r" % message[:300]
    at = message.find(count)
    assert at > 0, "no %r in %r" % (count, message)
    cut = message.rfind(ELLIPSIS, 0, at)
    assert cut > 0, message
    tail = message[cut + 1:at]
    assert name.endswith(tail) and len(tail.encode()) >= 30, (tail, message)
    before = message[:cut]
    head = next((h for h in range(min(len(before), len(name)), 0, -1) if before.endswith(name[:h])), 0)
    assert len(name[:head].encode()) >= 30, "the start of the name is not before the cut: %r" % message


KEYS = {
    "1-byte characters": long_key(1024, "a"),
    "3-byte characters": long_key(1024, "\u65e5"),
}


def test_long_keys_refused_by_a_directory_keep_the_reason_in_strict_json_lines():
    with util.tempdir() as d:
        out = os.path.join(d, "out")
        objects = [entry(key, ("data %d" % i).encode()) for i, key in enumerate(KEYS.values())]
        objects.append(entry("ok/fine.txt", b"fine"))
        archive = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(archive, objects, [{"region": REGION, "bucket": "dest"}])
        # Each long key is taken by a directory: a file cannot stand there.
        for key in KEYS.values():
            os.makedirs(os.path.join(out, "dest", key))
        res = util.run_trs(["process", archive, "--dest", "file://" + out, "--json", "--no-progress",
                            "--log-format", "json", "--log-level", "debug"])
        util.expect_exit(res, 1, "two objects refused")
        records = strict_records(res.stderr)
        report = strict_report(res.stdout)
        assert report["objects_written"] == 1 and report["objects_failed"] == 2, report
        for what, key in KEYS.items():
            # each object's own line (at debug: the cause is said once at error, with the count)
            errors = [r for r in records if r.get("level") == "debug" and r.get("key") == key]
            assert len(errors) == 1, "%s: no line with the full key: %s" % (what, res.describe())
            message = errors[0]["message"]
            assert "a directory already stands there" in message and "so it cannot be a file" in message, \
                "%s: the reason is lost: %r" % (what, message)
            assert errors[0]["error"] == "TRS_EEXISTS" and errors[0]["relative_key"] == key, errors[0]
            check_shortened(message, key)
            failures = [f for f in report["failures"] if f["key"] == key]
            assert len(failures) == 1, "%s: the report lacks the full key: %r" % (what, report["failures"])
            assert "a directory already stands there" in failures[0]["message"], failures[0]
            assert failures[0]["relative_key"] == key, failures[0]
        with open(os.path.join(out, "dest", "ok", "fine.txt"), "rb") as f:
            assert f.read() == b"fine"
        # the cause, said once at error: both keys, shortened, and the reason
        causes = [r for r in records if r.get("level") == "error" and r.get("bucket") == "dest"]
        assert len(causes) == 1 and causes[0]["objects_failed"] == 2, causes
        assert "a directory already stands there" in causes[0]["message"], causes[0]


def _user_without_put(m):
    """moto with IAM on: a user that may read but not write objects."""
    iam = m.client("iam")
    iam.create_user(UserName="reader")
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                                                 "Resource": "*"}]}))
    return key["AccessKeyId"], key["SecretAccessKey"]


def refused_puts(res, keys):
    """Each key's put failed with S3's AccessDenied: one strict JSON error line
    with the full key in `key`, S3's code and the advice in the sentence, and
    the report's failure with the full key."""
    util.expect_exit(res, 1, "every put refused")
    records = strict_records(res.stderr)
    report = strict_report(res.stdout)
    assert report["objects_failed"] == len(keys) and report["objects_written"] == 0, report
    for what, key in keys.items():
        errors = [r for r in records if r.get("level") == "debug" and r.get("key") == key]
        assert len(errors) == 1, "%s: no error line with the full key: %s" % (what, res.describe())
        message = errors[0]["message"]
        assert "HTTP 403 AccessDenied" in message, "%s: S3's code is lost: %r" % (what, message)
        assert message.endswith("What to do: check that the IAM policy of these credentials allows this call on "
                                "the bucket (and the KMS key, when one is set)"), \
            "%s: the advice is lost: %r" % (what, message)
        assert errors[0]["bucket"] == "dest-a" and errors[0]["error"] == "TRS_EAUTH", errors[0]
        check_shortened(message, key)
        failures = [f for f in report["failures"] if f["key"] == key]
        assert len(failures) == 1 and "AccessDenied" in failures[0]["message"] and \
            "What to do:" in failures[0]["message"], (what, report["failures"])


def test_long_keys_refused_by_moto_iam_with_403_keep_access_denied_and_what_to_do():
    """A user without s3:PutObject. Keys of ASCII only: moto's signature check
    reads the request path as Latin-1 and refuses any other key (boto3's
    requests too), so 3-byte characters are in the next test."""
    keys = {"1,024 bytes": KEYS["1-byte characters"], "953 bytes": long_key(953, "k")}
    # four calls before moto checks credentials: the user, its key, its policy, the bucket
    with util.MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "4"}) as m, util.tempdir() as d:
        creds = _user_without_put(m)
        m.client("s3").create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        archive = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(archive, [entry(k, b"x%d" % i) for i, k in enumerate(keys.values())],
                                [{"region": REGION, "bucket": "dest-a"}])
        res = util.run_trs(["process", archive, "--json", "--no-progress", "--log-format", "json",
                            "--log-level", "debug"],
                           env=m.env(key=creds), timeout=180)
        refused_puts(res, keys)


def deny_puts(method, target, headers):
    """PutObject to dest-a refused as S3 refuses it today: 403 AccessDenied
    with a message that names the whole key (cut to 300 bytes in the
    sentence, inside a character when the key's are 3 bytes long)."""
    if method != "PUT" or not target.startswith("/dest-a/"):
        return None
    key = urllib.parse.unquote(target.split("?", 1)[0][len("/dest-a/"):])
    message = ('User: arn:aws:iam::123456789012:user/reader is not authorized to perform: s3:PutObject on '
               'resource: "arn:aws:s3:::dest-a/%s" because no identity-based policy allows the s3:PutObject action'
               % key)
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>%s</Message>'
            '<RequestId>FAULTPROXY</RequestId><HostId>faultproxy</HostId></Error>' % xml_escape(message))
    return faultproxy.Reply(403, [("Content-Type", "application/xml"), ("x-amz-request-id", "FAULTPROXY")],
                            body.encode())


def test_long_keys_refused_by_s3_with_403_keep_access_denied_and_what_to_do():
    keys = dict(KEYS)
    keys["953 bytes"] = long_key(953, "k")
    with util.MotoServer() as m, util.tempdir() as d, \
            faultproxy.FaultProxy(m.url, respond=deny_puts, time_limit=120) as proxy:
        m.client("s3").create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        archive = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(archive, [entry(k, b"x%d" % i) for i, k in enumerate(keys.values())],
                                [{"region": REGION, "bucket": "dest-a"}])
        env = m.env()
        env["AWS_ENDPOINT_URL_S3"] = proxy.url
        res = util.run_trs(["process", archive, "--json", "--no-progress", "--log-format", "json",
                            "--log-level", "debug"], env=env,
                           timeout=180)
        assert proxy.counts["answered"] >= len(keys), proxy.counts
        refused_puts(res, keys)


def test_serve_with_a_long_archive_key_and_long_object_keys_logs_strict_json():
    """trs serve on a dir:// queue: the archive's own staging key is 1,024
    bytes of 3-byte characters, its objects fail as above; the serve lines
    (archive started, failed) carry the full keys in their fields."""
    with util.tempdir() as d:
        q, stg, out = (os.path.join(d, n) for n in ("q", "stg", "out"))
        archive_key = long_key(1020, "\u8a9e") + ".zst"
        assert len(archive_key.encode()) == 1024
        path = os.path.join(stg, "staging", archive_key)
        os.makedirs(os.path.dirname(path))
        mkarchive.build_archive(path, [entry(key, b"v") for key in KEYS.values()],
                                [{"region": REGION, "bucket": "dest"}])
        for key in KEYS.values():
            os.makedirs(os.path.join(out, "dest", key))
        os.makedirs(q)
        body = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                             "s3": {"bucket": {"name": "staging"},
                                    "object": {"key": urllib.parse.quote_plus(archive_key, safe="/")}}}]}
        with open(os.path.join(q, "1.json"), "w") as f:
            json.dump(body, f)
        with Serve(["--queue", "dir://" + q, "--staging", "file://" + stg, "--dest", "file://" + out,
                    "--poll-interval", "1", "--visibility-timeout", "60", "--log-format", "json",
                    "--log-level", "debug"],
                   util.clean_env()) as srv:
            srv.wait_log("archive failed; archive and message kept for a retry", 60)
            rc, _ = srv.stop()
            assert rc == 0, srv.log()[-2000:]
            srv.err.seek(0)
            records = strict_records(srv.err.read())
        failed = [r for r in records if r["message"] == "archive failed; archive and message kept for a retry"]
        assert len(failed) == 1 and failed[0]["key"] == archive_key and failed[0]["bucket"] == "staging", failed
        assert failed[0]["code"] == "TRS_EPARTIAL" and "2 of 2 objects failed" in failed[0]["error"], failed[0]
        check_shortened(failed[0]["error"], "s3://staging/" + archive_key)
        for key in KEYS.values():
            errors = [r for r in records if r.get("level") == "debug" and r.get("key") == key]
            assert len(errors) == 1, srv.log()[-3000:]
            assert "a directory already stands there" in errors[0]["message"], errors[0]
            assert errors[0]["archive"].endswith(archive_key), errors[0]
            check_shortened(errors[0]["message"], key)


def test_names_that_are_not_utf8_are_written_with_replacement_characters():
    """A caller's string that is not UTF-8 (here an archive's file name: a
    byte of Latin-1, a character cut after two of its three bytes, a
    surrogate's encoding) becomes U+FFFD, one per bad sequence, in the log
    lines and in the report: both stay strict JSON."""
    with util.tempdir() as d:
        name = b"bad-\xe9-\xe6\x97-\xed\xa0\x80-\xe6\x97\xa5.tar.zst"
        path = os.path.join(os.fsencode(d), name)
        mkarchive.build_archive(os.fsdecode(path), [entry("p/k.txt", b"k")], [{"region": REGION, "bucket": "dest"}])
        res = util.run_trs(["process", os.fsdecode(path), "--dest", "file://" + os.path.join(d, "out"), "--json",
                            "--no-progress", "--log-format", "json"])
        util.expect_exit(res, 0, "restored")
        want = os.path.join(d, "bad-\ufffd-\ufffd-\ufffd\ufffd\ufffd-\u65e5.tar.zst")
        restored = [r for r in strict_records(res.stderr) if r["message"] == "archive restored"]
        assert len(restored) == 1 and restored[0]["archive"] == want, (restored, res.describe())
        assert strict_report(res.stdout)["archive"] == want
