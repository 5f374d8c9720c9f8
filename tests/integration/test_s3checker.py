"""The strict S3 checker itself (tests/fixtures/s3checker.py): it refuses
each case as S3 does, with S3's status and error XML, and passes a valid
request, and anything that is not a signed S3 request, untouched."""

import base64
import hashlib
import http.client
import http.server
import os
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from s3checker import S3Checker  # noqa: E402

S3_AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20250123/eu-west-1/s3/aws4_request, "
           "SignedHeaders=host, Signature=0")
SQS_AUTH = S3_AUTH.replace("/s3/", "/sqs/")


class Upstream:
    """A stand-in for moto: answers 200 to everything and records what reached it."""

    def __init__(self):
        seen = self.seen = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_any(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                seen.append((self.command, self.path, dict(self.headers), body))
                self.send_response(200)
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


def with_checker(fn):
    up = Upstream()
    try:
        with S3Checker(up.url) as c:
            fn(c, up)
    finally:
        up.close()


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


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
