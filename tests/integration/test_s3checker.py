# SPDX-License-Identifier: Apache-2.0
"""The strict S3 checker itself (tests/fixtures/s3checker.py): it refuses
each case as S3 does, with S3's status and error XML, and passes a valid
request, and anything that is not a signed S3 request, untouched; it holds
conditional writes to S3's rules in front of a real moto_server, and answers
chosen requests with a 200 whose body is no success."""

import base64
import hashlib
import http.client
import http.server
import os
import sys
import threading
import re
import time
import urllib.parse
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from s3checker import S3Checker  # noqa: E402

S3_AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20250123/eu-west-1/s3/aws4_request, "
           "SignedHeaders=host, Signature=0")
SQS_AUTH = S3_AUTH.replace("/s3/", "/sqs/")


class Upstream:
    """A stand-in for moto: answers 200 (HEAD: head_status) to everything and records what reached it."""

    def __init__(self, head_status=200):
        seen = self.seen = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_any(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                seen.append((self.command, self.path, dict(self.headers), body))
                self.send_response(head_status if self.command == "HEAD" else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(b"ok")

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_any

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def send(url, method, path, headers=None, body=b"", auth=S3_AUTH):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        hs = dict(headers or {})
        if auth:
            hs["Authorization"] = auth
        for n, v in hs.items():
            c.putheader(n, v.encode("utf-8").decode("latin-1"))
        c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def refused(status, body, code):
    assert status == 400, (status, body)
    assert b"<Code>%s</Code>" % code.encode() in body, body
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error>'), body


def with_checker(fn, **upstream):
    up = Upstream(**upstream)
    try:
        with S3Checker(up.url) as c:
            fn(c, up)
    finally:
        up.close()


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_checker_passes_a_valid_put_untouched():
    def run(c, up):
        body = b"hello"
        h = {"x-amz-meta-original-tags": "a=b", "x-amz-tagging": "team=fin+ance&k%C3%BC=v%40x",
             "Content-MD5": md5_b64(body)}
        status, rbody = send(c.url, "PUT", "/dest-bucket/a/b%20c.txt", h, body)
        assert (status, rbody) == (200, b"ok")
        assert len(up.seen) == 1 and up.seen[0][0] == "PUT" and up.seen[0][1] == "/dest-bucket/a/b%20c.txt"
        assert up.seen[0][3] == body
        assert c.refusals == {} and c.passed == 1
    with_checker(run)


def test_checker_refuses_what_s3_refuses():
    cases = [
        ("InvalidBucketName", "/Bad_Bucket/k", {}, b""),
        ("InvalidBucketName", "/ab/k", {}, b""),
        ("InvalidBucketName", "/a%00b/k", {}, b""),
        ("InvalidBucketName", "/192.168.1.1/k", {}, b""),
        ("KeyTooLongError", "/bucket/" + "k" * 1025, {}, b""),
        ("MetadataTooLarge", "/bucket/k", {"x-amz-meta-big": "v" * 2046}, b""),
        ("RequestHeaderSectionTooLarge", "/bucket/k", {"x-amz-h%d" % i: "v" * 1000 for i in range(9)}, b""),
        ("BadRequest", "/bucket/k", {"x-amz-tagging": "&".join("k%d=v" % i for i in range(11))}, b""),
        ("InvalidTag", "/bucket/k", {"x-amz-tagging": "k=" + "v" * 257}, b""),
        ("InvalidTag", "/bucket/k", {"x-amz-tagging": "k" * 129 + "=v"}, b""),
        ("InvalidTag", "/bucket/k", {"x-amz-tagging": "k=a%23b"}, b""),
        ("InvalidTag", "/bucket/k", {"x-amz-tagging": "k=%F0%9F%98%80"}, b""),
        ("InvalidTag", "/bucket/k", {"x-amz-tagging": "aws%3Aname=v"}, b""),
        ("InvalidTag", "/bucket/k", {"x-amz-tagging": "k=1&k=2"}, b""),
        ("BadDigest", "/bucket/k", {"Content-MD5": md5_b64(b"other")}, b"body"),
        ("InvalidDigest", "/bucket/k", {"Content-MD5": "not-base64!"}, b"body"),
        ("BadDigest", "/bucket/k", {"x-amz-checksum-crc32": crc32_b64(b"other")}, b"body"),
        ("BadDigest", "/bucket/k", {"x-amz-checksum-crc32c": "AAAAAA=="}, b"123456789"),
        ("BadDigest", "/bucket/k", {"x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(b"o").digest())
                                    .decode()}, b"body"),
        ("InvalidRequest", "/bucket/k", {"x-amz-checksum-crc32": md5_b64(b"body")}, b"body"),
    ]

    def run(c, up):
        for code, path, headers, body in cases:
            status, rbody = send(c.url, "PUT", path, headers, body)
            refused(status, rbody, code)
        assert up.seen == [], "a refused request reached the upstream"
        assert sum(c.refusals.values()) == len(cases), c.refusals
        # the edges S3 still takes
        ok = [("/abc/" + "k" * 1024, {}), ("/bucket/k", {"x-amz-meta-big": "v" * 2045}),
              ("/bucket/k", {"x-amz-tagging": "&".join("k%d=v" % i for i in range(10))}),
              ("/bucket/k", {"x-amz-tagging": "k=" + "\u00e9" * 256})]
        for path, headers in ok:
            status, _ = send(c.url, "PUT", path, {n: v if n != "x-amz-tagging" else
                                                  urllib.parse.quote(v, safe="=&") for n, v in headers.items()})
            assert status == 200, (path, headers)
        # checksums that are the body's: CRC-32 (zlib's), CRC-32C (check value 0xE3069283), SHA-256
        for headers, body in [({"x-amz-checksum-crc32": crc32_b64(b"body")}, b"body"),
                              ({"x-amz-checksum-crc32c": "4waSgw=="}, b"123456789"),
                              ({"x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(b"").digest()).decode()},
                               b"")]:
            status, _ = send(c.url, "PUT", "/bucket/k", headers, body)
            assert status == 200, headers
    with_checker(run)


def test_checker_refuses_bad_tags_in_put_object_tagging():
    xml = (b'<Tagging><TagSet>' + b"".join(b"<Tag><Key>k%d</Key><Value>v</Value></Tag>" % i for i in range(11))
           + b"</TagSet></Tagging>")

    def run(c, up):
        refused(*send(c.url, "PUT", "/bucket/k?tagging", {}, xml), "BadRequest")
        assert up.seen == []
    with_checker(run)


def test_checker_leaves_other_services_and_unsigned_requests_alone():
    def run(c, up):
        big = {"x-amz-meta-big": "v" * 3000}
        assert send(c.url, "POST", "/", big, b"Action=SendMessage", auth=SQS_AUTH)[0] == 200
        assert send(c.url, "GET", "/moto-api/", big, auth=None)[0] == 200
        assert len(up.seen) == 2 and c.refusals == {}
    with_checker(run)


def test_checker_keeps_connections_alive():
    def run(c, up):
        u = urllib.parse.urlsplit(c.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        try:
            for i in range(3):
                conn.request("GET", "/bucket/k%d" % i, headers={"Authorization": S3_AUTH})
                r = conn.getresponse()
                assert r.status == 200 and r.read() == b"ok"
        finally:
            conn.close()
        assert [s[1] for s in up.seen] == ["/bucket/k0", "/bucket/k1", "/bucket/k2"]
    with_checker(run)


# ---------------------------------------------------------------- conditional writes, against moto

BUCKET = "cond-bucket"


def s3_error(e):
    """(HTTP status, S3 error code) of a botocore ClientError."""
    return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]


def expect_error(status, code, fn, *a, **kw):
    from botocore.exceptions import ClientError
    try:
        fn(*a, **kw)
    except ClientError as e:
        assert s3_error(e) == (status, code), e.response
        return e.response
    raise AssertionError("%s succeeded; expected %d %s" % (fn.__name__, status, code))


def with_moto(fn, versioned=False, **checker):
    """fn(s3, checker, moto) with a bucket BUCKET in a real moto_server behind a checker of its own
    (keywords: S3Checker's); boto3 retries nothing, so every answer of the checker is seen as it is."""
    import boto3
    from botocore.config import Config
    import util
    with util.MotoServer() as m:
        c = S3Checker(m.moto_url, **checker).start()
        try:
            s3 = boto3.client("s3", region_name=util.REGION, endpoint_url=c.url, aws_access_key_id="testing",
                              aws_secret_access_key="testing",
                              config=Config(retries={"total_max_attempts": 1}, read_timeout=20, connect_timeout=5))
            s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": util.REGION})
            if versioned:
                s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
            fn(s3, c, m)
        finally:
            c.stop()


def body_of(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_if_none_match_refuses_an_existing_key_and_creates_a_new_one():
    def run(s3, c, m):
        s3.put_object(Bucket=BUCKET, Key="k", Body=b"first")
        r = expect_error(412, "PreconditionFailed", s3.put_object, Bucket=BUCKET, Key="k", Body=b"second",
                         IfNoneMatch="*")
        assert r["Error"]["Condition"] == "If-None-Match", r["Error"]
        assert body_of(s3, "k") == b"first"
        s3.put_object(Bucket=BUCKET, Key="new", Body=b"created", IfNoneMatch="*")
        assert body_of(s3, "new") == b"created"
        # S3 implements "*" only, and not both headers at once
        expect_error(501, "NotImplemented", s3.put_object, Bucket=BUCKET, Key="other", Body=b"x",
                     IfNoneMatch='"0123456789abcdef0123456789abcdef"')
        expect_error(501, "NotImplemented", s3.put_object, Bucket=BUCKET, Key="k", Body=b"x", IfNoneMatch="*",
                     IfMatch=s3.head_object(Bucket=BUCKET, Key="k")["ETag"])
        assert body_of(s3, "k") == b"first"
        assert "other" not in [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert c.refusals == {"PreconditionFailed": 1, "NotImplemented": 2}, c.refusals
        assert [r[0] for r in c.refused] == ["PUT"] * 3
    with_moto(run)


def test_if_match_writes_only_over_that_etag():
    def run(s3, c, m):
        stale = s3.put_object(Bucket=BUCKET, Key="k", Body=b"one")["ETag"]
        etag = s3.put_object(Bucket=BUCKET, Key="k", Body=b"two")["ETag"]
        r = expect_error(412, "PreconditionFailed", s3.put_object, Bucket=BUCKET, Key="k", Body=b"three",
                         IfMatch=stale)
        assert r["Error"]["Condition"] == "If-Match", r["Error"]
        assert body_of(s3, "k") == b"two"
        expect_error(404, "NoSuchKey", s3.put_object, Bucket=BUCKET, Key="missing", Body=b"x", IfMatch=etag)
        expect_error(404, "404", s3.head_object, Bucket=BUCKET, Key="missing")
        # the ETag with its quotes or without
        etag3 = s3.put_object(Bucket=BUCKET, Key="k", Body=b"three", IfMatch=etag)["ETag"]
        assert body_of(s3, "k") == b"three"
        s3.put_object(Bucket=BUCKET, Key="k", Body=b"four", IfMatch=etag3.strip('"'))
        assert body_of(s3, "k") == b"four"
        assert c.refusals == {"PreconditionFailed": 1, "NoSuchKey": 1}, c.refusals
        assert c.conditions["evaluated"] == 4, c.conditions
    with_moto(run)


def test_conditions_apply_to_the_current_version_of_a_versioned_key():
    def versions(s3):
        v = s3.list_object_versions(Bucket=BUCKET, Prefix="k")
        return [x["VersionId"] for x in v.get("Versions", []) + v.get("DeleteMarkers", [])]

    def run(s3, c, m):
        old = s3.put_object(Bucket=BUCKET, Key="k", Body=b"v1")["ETag"]
        cur = s3.put_object(Bucket=BUCKET, Key="k", Body=b"v2")["ETag"]
        before = versions(s3)
        assert len(before) == 2
        expect_error(412, "PreconditionFailed", s3.put_object, Bucket=BUCKET, Key="k", Body=b"v3", IfMatch=old)
        expect_error(412, "PreconditionFailed", s3.put_object, Bucket=BUCKET, Key="k", Body=b"v3",
                     IfNoneMatch="*")
        assert versions(s3) == before, "a refused write added a version"
        s3.put_object(Bucket=BUCKET, Key="k", Body=b"v3", IfMatch=cur)
        assert body_of(s3, "k") == b"v3" and len(versions(s3)) == 3
        # a delete marker as current version is no object, though older versions remain
        s3.delete_object(Bucket=BUCKET, Key="k")
        assert len(versions(s3)) == 4
        expect_error(404, "NoSuchKey", s3.put_object, Bucket=BUCKET, Key="k", Body=b"v4", IfMatch=cur)
        assert len(versions(s3)) == 4
        s3.put_object(Bucket=BUCKET, Key="k", Body=b"v4", IfNoneMatch="*")
        assert body_of(s3, "k") == b"v4" and len(versions(s3)) == 5
        assert c.refusals == {"PreconditionFailed": 2, "NoSuchKey": 1}, c.refusals
    with_moto(run, versioned=True)


def test_complete_multipart_upload_with_a_stale_if_match_is_refused_and_can_be_completed_later():
    def run(s3, c, m):
        stale = s3.put_object(Bucket=BUCKET, Key="k", Body=b"one")["ETag"]
        cur = s3.put_object(Bucket=BUCKET, Key="k", Body=b"two")["ETag"]
        up = s3.create_multipart_upload(Bucket=BUCKET, Key="k")["UploadId"]
        part = s3.upload_part(Bucket=BUCKET, Key="k", UploadId=up, PartNumber=1, Body=b"multipart")["ETag"]
        parts = {"Parts": [{"PartNumber": 1, "ETag": part}]}
        r = expect_error(412, "PreconditionFailed", s3.complete_multipart_upload, Bucket=BUCKET, Key="k",
                         UploadId=up, MultipartUpload=parts, IfMatch=stale)
        assert r["Error"]["Condition"] == "If-Match", r["Error"]
        expect_error(412, "PreconditionFailed", s3.complete_multipart_upload, Bucket=BUCKET, Key="k",
                     UploadId=up, MultipartUpload=parts, IfNoneMatch="*")
        assert body_of(s3, "k") == b"two"
        assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])] == [up]
        s3.complete_multipart_upload(Bucket=BUCKET, Key="k", UploadId=up, MultipartUpload=parts, IfMatch=cur)
        assert body_of(s3, "k") == b"multipart"
        assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
        assert c.refusals == {"PreconditionFailed": 2}, c.refusals
    with_moto(run)


def test_an_upload_created_with_a_checksum_needs_it_on_every_part_and_in_its_complete():
    def run(s3, c, m):
        status, body = send(c.url, "POST", "/%s/big?uploads" % BUCKET, {"x-amz-checksum-algorithm": "CRC32"})
        assert status == 200, body
        up = urllib.parse.quote(re.search(rb"<UploadId>([^<]+)</UploadId>", body).group(1).decode(), safe="")
        parts = [os.urandom(5 << 20), b"the last part"]

        def part_path(n):
            return "/%s/big?partNumber=%d&uploadId=%s" % (BUCKET, n, up)
        refused(*send(c.url, "PUT", part_path(1), {}, parts[0]), "InvalidRequest")
        refused(*send(c.url, "PUT", part_path(1), {"x-amz-checksum-crc32": crc32_b64(parts[1])}, parts[0]),
                "BadDigest")
        for n, data in enumerate(parts, 1):
            status, body = send(c.url, "PUT", part_path(n), {"x-amz-checksum-crc32": crc32_b64(data)}, data)
            assert status == 200, body
        assert c.checksums.checksummed_parts == 2

        def complete(checksums):
            xml = "<CompleteMultipartUpload>"
            for n, data in enumerate(parts, 1):
                xml += '<Part><PartNumber>%d</PartNumber><ETag>"%s"</ETag>%s</Part>' % (
                    n, hashlib.md5(data).hexdigest(), checksums[n - 1])
            return send(c.url, "POST", "/%s/big?uploadId=%s" % (BUCKET, up), {}, (xml + "</CompleteMultipartUpload>")
                        .encode())
        right = ["<ChecksumCRC32>%s</ChecksumCRC32>" % crc32_b64(d) for d in parts]
        refused(*complete([right[0], ""]), "InvalidPart")
        refused(*complete([right[1], right[1]]), "InvalidPart")
        assert complete(right)[0] == 200
        assert body_of(s3, "big") == parts[0] + parts[1]
        assert c.refusals == {"InvalidRequest": 1, "BadDigest": 1, "InvalidPart": 2}, c.refusals
    with_moto(run)


def test_copy_object_conditions_name_the_destination():
    def run(s3, c, m):
        s3.put_object(Bucket=BUCKET, Key="src", Body=b"source")
        stale = s3.put_object(Bucket=BUCKET, Key="dst", Body=b"dest")["ETag"]
        cur = s3.put_object(Bucket=BUCKET, Key="dst", Body=b"dest2")["ETag"]
        src = {"Bucket": BUCKET, "Key": "src"}
        r = expect_error(412, "PreconditionFailed", s3.copy_object, Bucket=BUCKET, Key="dst", CopySource=src,
                         IfNoneMatch="*")
        assert r["Error"]["Condition"] == "If-None-Match", r["Error"]
        expect_error(412, "PreconditionFailed", s3.copy_object, Bucket=BUCKET, Key="dst", CopySource=src,
                     IfMatch=stale)
        expect_error(404, "NoSuchKey", s3.copy_object, Bucket=BUCKET, Key="none", CopySource=src, IfMatch=cur)
        assert body_of(s3, "dst") == b"dest2"
        s3.copy_object(Bucket=BUCKET, Key="dst", CopySource=src, IfMatch=cur)
        assert body_of(s3, "dst") == b"source"
        s3.copy_object(Bucket=BUCKET, Key="fresh", CopySource=src, IfNoneMatch="*")
        assert body_of(s3, "fresh") == b"source"
        assert c.refusals == {"PreconditionFailed": 2, "NoSuchKey": 1}, c.refusals
    with_moto(run)


class Gate:
    """A before_forward hook that holds the first forwarded request for (method, target) until
    released, and tells when it holds it: two writes are then in flight at once, by construction."""

    def __init__(self, method, target):
        self.method, self.target = method, target
        self.holding = threading.Event()
        self.release = threading.Event()
        self.used = False

    def __call__(self, method, target, headers):
        if method == self.method and target == self.target and not self.used:
            self.used = True
            self.holding.set()
            self.release.wait(20)


def in_thread(fn, *a, **kw):
    """Run fn in a thread; returns a join() giving (result, ClientError or None)."""
    from botocore.exceptions import ClientError
    out = {}

    def go():
        try:
            out["r"] = fn(*a, **kw)
        except ClientError as e:
            out["e"] = e
    t = threading.Thread(target=go, daemon=True)
    t.start()

    def join():
        t.join(30)
        assert not t.is_alive(), "the request did not finish"
        return out.get("r"), out.get("e")
    return join


def test_concurrent_conditional_writes_to_one_key_get_409():
    gate = Gate("PUT", "/%s/k" % BUCKET)

    def run(s3, c, m):
        first = in_thread(s3.put_object, Bucket=BUCKET, Key="k", Body=b"first", IfNoneMatch="*")
        assert gate.holding.wait(20), "the first write never reached the upstream"
        r = expect_error(409, "ConditionalRequestConflict", s3.put_object, Bucket=BUCKET, Key="k",
                         Body=b"second", IfNoneMatch="*")
        assert "conflicting conditional operation" in r["Error"]["Message"], r["Error"]
        gate.release.set()
        res, err = first()
        assert err is None and res["ResponseMetadata"]["HTTPStatusCode"] == 200, err
        assert body_of(s3, "k") == b"first"
        assert c.refusals == {"ConditionalRequestConflict": 1}, c.refusals
        # the key is free again: a later conditional write is judged on the object, not refused as a conflict
        expect_error(412, "PreconditionFailed", s3.put_object, Bucket=BUCKET, Key="k", Body=b"third",
                     IfNoneMatch="*")
    with_moto(run, before_forward=gate)


def test_without_conflicts_a_conditional_write_waits_for_the_key():
    gate = Gate("PUT", "/%s/k" % BUCKET)

    def run(s3, c, m):
        first = in_thread(s3.put_object, Bucket=BUCKET, Key="k", Body=b"first", IfNoneMatch="*")
        assert gate.holding.wait(20), "the first write never reached the upstream"
        second = in_thread(s3.put_object, Bucket=BUCKET, Key="k", Body=b"second", IfNoneMatch="*")
        deadline = time.monotonic() + 20
        while c.conditions["waited"] < 1:
            assert time.monotonic() < deadline, "the second write never waited for the key"
            time.sleep(0.01)
        gate.release.set()
        res, err = first()
        assert err is None, err
        res, err = second()
        assert err is not None and s3_error(err) == (412, "PreconditionFailed"), (res, err)
        assert body_of(s3, "k") == b"first"
        assert c.refusals == {"PreconditionFailed": 1}, c.refusals
    with_moto(run, before_forward=gate, conflicts=False)


def test_a_complete_answered_409_loses_its_upload():
    gate = Gate("PUT", "/%s/k" % BUCKET)

    def run(s3, c, m):
        up = s3.create_multipart_upload(Bucket=BUCKET, Key="k")["UploadId"]
        part = s3.upload_part(Bucket=BUCKET, Key="k", UploadId=up, PartNumber=1, Body=b"multipart")["ETag"]
        first = in_thread(s3.put_object, Bucket=BUCKET, Key="k", Body=b"put", IfNoneMatch="*")
        assert gate.holding.wait(20), "the put never reached the upstream"
        expect_error(409, "ConditionalRequestConflict", s3.complete_multipart_upload, Bucket=BUCKET, Key="k",
                     UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part}]}, IfNoneMatch="*")
        gate.release.set()
        assert first()[1] is None
        # S3 tells the client to start the upload again: the upload is gone
        expect_error(404, "NoSuchUpload", s3.list_parts, Bucket=BUCKET, Key="k", UploadId=up)
        assert c.conditions["aborted"] == 1, c.conditions
        assert body_of(s3, "k") == b"put"
    with_moto(run, before_forward=gate)


def test_conditional_write_goes_unchecked_when_the_upstream_refuses_the_head():
    def run(c, up):
        status, _ = send(c.url, "PUT", "/bucket/k", {"If-None-Match": "*"}, b"x")
        assert status == 200
        assert [s[0] for s in up.seen] == ["HEAD", "PUT"], up.seen
        assert up.seen[0][2].get("Authorization") == S3_AUTH and "If-None-Match" not in up.seen[0][2]
        assert c.conditions["unchecked"] == 1 and c.refusals == {}
    with_checker(run, head_status=403)


def test_conditional_write_is_refused_on_what_the_head_says():
    def run(c, up):
        status, body = send(c.url, "PUT", "/bucket/k", {"If-None-Match": "*"}, b"x")
        assert status == 412 and b"<Condition>If-None-Match</Condition>" in body, body
        assert b"<Code>PreconditionFailed</Code>" in body and body.startswith(b'<?xml'), body
        assert [s[0] for s in up.seen] == ["HEAD"], up.seen
    with_checker(run)


# ---------------------------------------------------------------- a 200 is not always a success

def test_odd_answer_to_complete_creates_no_object_and_leaves_the_upload_open():
    from botocore.exceptions import ClientError

    def run(s3, c, m):
        up = s3.create_multipart_upload(Bucket=BUCKET, Key="big")["UploadId"]
        part = s3.upload_part(Bucket=BUCKET, Key="big", UploadId=up, PartNumber=1, Body=b"data")["ETag"]
        parts = {"Parts": [{"PartNumber": 1, "ETag": part}]}
        c.odd_answers("CompleteMultipartUpload", body=b"", times=1)
        r = s3.complete_multipart_upload(Bucket=BUCKET, Key="big", UploadId=up, MultipartUpload=parts)
        # boto3 takes the empty 200 for a success: only the missing ETag tells
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200 and "ETag" not in r, r
        assert c.odd_served == {"CompleteMultipartUpload": 1}
        expect_error(404, "404", s3.head_object, Bucket=BUCKET, Key="big")
        assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])] == [up]
        # one answer, then back to normal
        r = s3.complete_multipart_upload(Bucket=BUCKET, Key="big", UploadId=up, MultipartUpload=parts)
        assert r["ETag"] and body_of(s3, "big") == b"data"
        assert c.odd_served == {"CompleteMultipartUpload": 1}
        # a body that is no XML answer: boto3 retries it (here it may not), so it fails
        c.odd_answers("CopyObject", body="truncated", times=1)
        try:
            s3.copy_object(Bucket=BUCKET, Key="copy", CopySource={"Bucket": BUCKET, "Key": "big"})
            raise AssertionError("a truncated CopyObject answer was taken for a success")
        except ClientError:
            pass
        expect_error(404, "404", s3.head_object, Bucket=BUCKET, Key="copy")
        assert c.odd_served == {"CompleteMultipartUpload": 1, "CopyObject": 1}
        assert c.refusals == {}, c.refusals
    with_moto(run)


def test_odd_answer_bodies_as_sent():
    import xml.etree.ElementTree as ET

    def run(c, up):
        path = "/bucket/k?uploadId=abc"
        c.odd_answers("CompleteMultipartUpload", body="declaration", times=2)
        for _ in range(2):
            status, body = send(c.url, "POST", path, {}, b"<CompleteMultipartUpload/>")
            assert status == 200 and body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n'), body
            assert body.strip().endswith(b"?>"), body
        c.odd_answers("CreateMultipartUpload", body="truncated", times=1)
        status, body = send(c.url, "POST", "/bucket/k?uploads")
        assert status == 200 and b"<InitiateMultipartUploadResult" in body and b"</UploadId>" not in body, body
        try:
            ET.fromstring(body)
            raise AssertionError("the truncated answer is well-formed XML: %r" % body)
        except ET.ParseError:
            pass
        c.odd_answers("UploadPart", body="error", times=1)
        status, body = send(c.url, "PUT", "/bucket/k?partNumber=1&uploadId=abc", {}, b"part")
        assert status == 200 and b"<Error><Code>InternalError</Code>" in body, body
        c.odd_answers("ListParts", body=b"custom", times=1)
        assert send(c.url, "GET", "/bucket/k?uploadId=abc") == (200, b"custom")
        assert up.seen == [], "an odd answer was forwarded"
        assert c.odd_served == {"CompleteMultipartUpload": 2, "CreateMultipartUpload": 1, "UploadPart": 1,
                                "ListParts": 1}
        # back to normal, and other operations were never concerned
        assert send(c.url, "POST", path, {}, b"<CompleteMultipartUpload/>") == (200, b"ok")
        assert send(c.url, "PUT", "/bucket/k", {}, b"x") == (200, b"ok")
        assert [s[0] for s in up.seen] == ["POST", "PUT"]
    with_checker(run)
