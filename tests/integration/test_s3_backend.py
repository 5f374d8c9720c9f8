#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The s3 storage backend against moto_server, through the public C API.

Each test starts moto_server on a 127.0.0.1 port (util.start_moto), prepares buckets
with boto3, runs $TRS_BUILD_DIR/tests/s3_put_driver (trs_storage_s3_new +
trs_upload / trs_storage_get / head / copy / delete) and checks the result
with boto3: bytes, tags, storage class, SSE-KMS key, metadata, multipart
ETags, awkward keys, and - with moto's IAM checks on - SigV4 signatures.

Run with tests/integration/run.py, or alone:
    python3 tests/integration/test_s3_backend.py
"""

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
REGION = "eu-west-1"
MIB = 1024 * 1024


sys.path.insert(0, HERE)
import util  # noqa: E402

Skip = util.Skip  # run.py reports util.Skip as SKIP

sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
from s3checker import S3Checker  # noqa: E402


def build_dir():
    return os.environ.get("TRS_BUILD_DIR", os.path.join(REPO, "build"))


def driver_path():
    path = os.path.join(build_dir(), "tests", "s3_put_driver")
    if not os.access(path, os.X_OK):
        raise AssertionError("s3_put_driver not found at %s (build with `ninja -C %s`)"
                             % (path, build_dir()))
    return path


class Moto:
    """moto_server on 127.0.0.1 with an optional environment (IAM checks)."""

    def __init__(self, env=None):
        self.extra_env = env or {}
        self.proc = None
        self.log = None
        self.url = None
        self.checker = None

    def __enter__(self):
        self.log = tempfile.TemporaryFile()
        self.proc, port = util.start_moto(self.log, self.extra_env)
        self.url = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            # The socket listens already: wait for moto to answer (/moto-api/ is no
            # AWS action, so it does not use up moto's no-auth actions).
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=max(1, deadline - time.monotonic())):
                    pass
            except urllib.error.HTTPError:
                pass  # it answers
            except OSError:
                time.sleep(0.1)
                continue
            # Tests talk to the strict S3 checker in front of moto (util.MotoServer's).
            self.checker = S3Checker(self.url).start()
            self.url = self.checker.url
            return self
        self.__exit__()
        raise AssertionError("moto_server did not start")

    def __exit__(self, *exc):
        if self.checker:
            self.checker.stop()
            self.checker = None
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.log:
            self.log.close()
        self.proc = self.log = None

    def client(self, service, key="testing", secret="testing"):
        import boto3
        return boto3.client(service, region_name=REGION, endpoint_url=self.url,
                            aws_access_key_id=key, aws_secret_access_key=secret)

    def bucket(self, name, client=None):
        (client or self.client("s3")).create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        return name


def run_driver(moto, args, key="testing", secret="testing", options=(), timeout=120, endpoint=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"})
    cmd = [driver_path()]
    if endpoint:
        cmd += ["--endpoint", moto.url]
    else:
        env["AWS_ENDPOINT_URL_S3"] = moto.url
    cmd += ["--region", REGION] + list(options) + list(args)
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def ok(res, what):
    rc, out, err = res
    assert rc == 0, "%s: exit %d: %s" % (what, rc, err.strip()[-600:])
    return out


def write_temp(data):
    f = tempfile.NamedTemporaryFile(prefix="trs-s3-", delete=False)
    f.write(data)
    f.close()
    return f.name


def head_lines(out):
    fields, tags, meta = {}, {}, {}
    for line in out.splitlines():
        if line.startswith("tag:"):
            k, _, v = line[4:].partition("=")
            tags[k] = v
        elif line.startswith("meta:"):
            k, _, v = line[5:].partition("=")
            meta[k] = v
        else:
            k, _, v = line.partition("=")
            fields[k] = v
    return fields, tags, meta


def tagset(s3, bucket, key):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


# ---------------------------------------------------------------- tests

def test_put_carries_bytes_tags_class_and_metadata():
    with Moto() as m:
        s3 = m.client("s3")
        b = m.bucket("dest-a")
        data = b"report,total\n1,2\n" * 100
        path = write_temp(data)
        try:
            ok(run_driver(m, ["put", b, "2025/01/report final.csv", path,
                              "--tag", "team=finance", "--tag", "OriginalCreationTime=2025-01-23 10:15:00",
                              "--meta", "origin=caf\u00e9", "--meta", "source-bucket=src-bucket",
                              "--class", "STANDARD_IA",
                              "--md5", hashlib.md5(data).hexdigest()]), "put")
        finally:
            os.unlink(path)
        got = s3.get_object(Bucket=b, Key="2025/01/report final.csv")
        assert got["Body"].read() == data, "bytes differ"
        assert got.get("StorageClass") == "STANDARD_IA", got.get("StorageClass")
        assert tagset(s3, b, "2025/01/report final.csv") == {
            "team": "finance", "OriginalCreationTime": "2025-01-23 10:15:00"}
        assert got["Metadata"].get("source-bucket") == "src-bucket", got["Metadata"]
        # Non-ASCII metadata travels RFC 2047-encoded, as S3 stores it; head decodes it.
        fields, tags, meta = head_lines(ok(run_driver(m, ["head", b, "2025/01/report final.csv"]), "head"))
        assert meta.get("origin") == "caf\u00e9", meta
        assert fields["size"] == str(len(data)) and fields["class"] == "STANDARD_IA", fields
        assert tags == {"team": "finance", "OriginalCreationTime": "2025-01-23 10:15:00"}, tags


def test_put_with_sse_kms_key():
    with Moto() as m:
        s3 = m.client("s3")
        key_id = m.client("kms").create_key(Description="trs test")["KeyMetadata"]["Arn"]
        b = m.bucket("dest-kms")
        path = write_temp(b"secret bytes")
        try:
            ok(run_driver(m, ["put", b, "enc.bin", path, "--kms", key_id, "--class", "GLACIER_IR"]),
               "put")
        finally:
            os.unlink(path)
        h = s3.head_object(Bucket=b, Key="enc.bin")
        assert h.get("ServerSideEncryption") == "aws:kms", h
        assert h.get("SSEKMSKeyId") == key_id, (h.get("SSEKMSKeyId"), key_id)
        assert h.get("StorageClass") == "GLACIER_IR", h.get("StorageClass")
        fields, _, _ = head_lines(ok(run_driver(m, ["head", b, "enc.bin"]), "head"))
        assert fields["kms"] == key_id, fields


def test_23_mib_object_goes_multipart_in_5_parts():
    with Moto() as m:
        s3 = m.client("s3")
        b = m.bucket("dest-big")
        data = os.urandom(23 * MIB)
        path = write_temp(data)
        try:
            ok(run_driver(m, ["put", b, "big/object.bin", path, "--tag", "kind=big",
                              "--class", "STANDARD_IA", "--meta", "m=1"],
                          options=["--threshold", str(5 * MIB), "--part-size", str(5 * MIB)]), "put")
        finally:
            os.unlink(path)
        got = s3.get_object(Bucket=b, Key="big/object.bin")
        body = got["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest(), "bytes differ"
        assert got["ETag"].strip('"').endswith("-5"), got["ETag"]
        assert got.get("StorageClass") == "STANDARD_IA", got.get("StorageClass")
        assert got["Metadata"] == {"m": "1"}, got["Metadata"]
        assert tagset(s3, b, "big/object.bin") == {"kind": "big"}
        assert s3.list_multipart_uploads(Bucket=b).get("Uploads", []) == []
        # Ranged and whole reads back through the library.
        out = write_temp(b"")
        try:
            ok(run_driver(m, ["get", b, "big/object.bin", out, "--offset", str(5 * MIB - 10),
                              "--length", "20"]), "ranged get")
            with open(out, "rb") as f:
                assert f.read() == data[5 * MIB - 10:5 * MIB + 10], "ranged bytes differ"
            ok(run_driver(m, ["get", b, "big/object.bin", out]), "get")
            with open(out, "rb") as f:
                assert f.read() == data, "whole-object bytes differ"
        finally:
            os.unlink(out)


def test_failing_body_leaves_no_object_and_no_parts():
    with Moto() as m:
        s3 = m.client("s3")
        b = m.bucket("dest-fail")
        # Multipart: fails in the third part; single: fails at the last byte.
        rc, _, err = run_driver(m, ["put-failing", b, "multi", str(14 * MIB), str(11 * MIB)],
                                options=["--threshold", str(5 * MIB), "--part-size", str(5 * MIB)])
        assert rc == 1 and "TRS_EINTEGRITY" in err, err
        rc, _, err = run_driver(m, ["put-failing", b, "single", "1000", "999"])
        assert rc == 1 and "TRS_EINTEGRITY" in err, err
        assert s3.list_objects_v2(Bucket=b).get("KeyCount", 0) == 0, "an object became visible"
        assert s3.list_multipart_uploads(Bucket=b).get("Uploads", []) == [], "parts left behind"


AWKWARD_KEYS = [
    "dir/report final.csv",
    "a+b=c&d.txt",
    "100% done.txt",
    "unicode/d\u00e9j\u00e0 vu/\u65e5\u672c\u8a9e.txt",
    "punct/!*'();:@&=$,.txt",
    "tilde~and-dash_and.dot",
    "deep/" + "x" * 200 + "/end",
]


def test_awkward_keys_round_trip():
    with Moto() as m:
        s3 = m.client("s3")
        b = m.bucket("dest-keys")
        for i, key in enumerate(AWKWARD_KEYS):
            data = ("object %d: %s" % (i, key)).encode()
            path = write_temp(data)
            out = write_temp(b"")
            try:
                ok(run_driver(m, ["put", b, key, path, "--tag", "k=v %d" % i]), "put %r" % key)
                assert s3.get_object(Bucket=b, Key=key)["Body"].read() == data, "bytes of %r" % key
                assert tagset(s3, b, key) == {"k": "v %d" % i}, "tags of %r" % key
                ok(run_driver(m, ["get", b, key, out]), "get %r" % key)
                with open(out, "rb") as f:
                    assert f.read() == data, "get bytes of %r" % key
                fields, _, _ = head_lines(ok(run_driver(m, ["head", b, key]), "head %r" % key))
                assert fields["size"] == str(len(data)), fields
                ok(run_driver(m, ["copy", b, key, b, key + ".copy"]), "copy %r" % key)
                assert s3.get_object(Bucket=b, Key=key + ".copy")["Body"].read() == data
            finally:
                os.unlink(path)
                os.unlink(out)
        listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"])
        assert listed == sorted(AWKWARD_KEYS + [k + ".copy" for k in AWKWARD_KEYS]), listed
        for key in AWKWARD_KEYS:
            ok(run_driver(m, ["delete", b, key]), "delete %r" % key)
        assert s3.list_objects_v2(Bucket=b).get("KeyCount") == len(AWKWARD_KEYS)


def test_copy_replaces_tags_metadata_and_class():
    with Moto() as m:
        s3 = m.client("s3")
        src = m.bucket("src-bucket")
        dst = m.bucket("dest-copy")
        s3.put_object(Bucket=src, Key="in.txt", Body=b"copied bytes", Tagging="old=1",
                      Metadata={"old": "meta"})
        ok(run_driver(m, ["copy", src, "in.txt", dst, "out.txt", "--tag", "new=2",
                          "--meta", "fresh=yes", "--class", "STANDARD_IA"]), "copy")
        got = s3.get_object(Bucket=dst, Key="out.txt")
        assert got["Body"].read() == b"copied bytes"
        assert got["Metadata"] == {"fresh": "yes"}, got["Metadata"]
        assert got.get("StorageClass") == "STANDARD_IA", got.get("StorageClass")
        assert tagset(s3, dst, "out.txt") == {"new": "2"}


def test_delete_head_and_errors_name_bucket_and_key():
    with Moto() as m:
        b = m.bucket("dest-del")
        path = write_temp(b"x")
        try:
            ok(run_driver(m, ["put", b, "gone.txt", path]), "put")
            ok(run_driver(m, ["delete", b, "gone.txt"]), "delete")
            ok(run_driver(m, ["delete", b, "gone.txt"]), "delete of a missing object")
            rc, _, err = run_driver(m, ["head", b, "gone.txt"])
            assert rc == 1 and "TRS_ENOTFOUND" in err and "s3://dest-del/gone.txt" in err, err
            rc, _, err = run_driver(m, ["put", "no-such-bucket-here", "k", path])
            assert rc == 1 and "aws=NoSuchBucket" in err and "s3://no-such-bucket-here/k" in err, err
            assert "What to do" in err, err
        finally:
            os.unlink(path)


def test_endpoint_comes_from_aws_endpoint_url_s3():
    with Moto() as m:
        s3 = m.client("s3")
        b = m.bucket("dest-env")
        path = write_temp(b"via env")
        try:
            ok(run_driver(m, ["put", b, "k", path], endpoint=False), "put")
        finally:
            os.unlink(path)
        assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"via env"


def test_sigv4_signatures_are_verified_by_moto():
    # moto checks signatures and IAM policies after its first N actions: the
    # four setup calls below. Everything after must be signed correctly.
    with Moto({"INITIAL_NO_AUTH_ACTION_COUNT": "4"}) as m:
        iam = m.client("iam")
        iam.create_user(UserName="trs")
        key = iam.create_access_key(UserName="trs")["AccessKey"]
        iam.put_user_policy(UserName="trs", PolicyName="all", PolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'))
        ak, sk = key["AccessKeyId"], key["SecretAccessKey"]
        s3 = m.client("s3", ak, sk)
        b = m.bucket("dest-signed", s3)
        data = os.urandom(12 * MIB + 7)
        path = write_temp(data)
        out = write_temp(b"")
        try:
            # Content-MD5 is signed too. (moto does not check the digest itself; the
            # header's value is held by tests/unit/test_s3_backend.c.)
            ok(run_driver(m, ["put", b, "plain/key.bin", path, "--tag", "signed=yes",
                              "--class", "STANDARD_IA", "--meta", "a=b",
                              "--md5", hashlib.md5(data).hexdigest()], ak, sk), "signed put")
            ok(run_driver(m, ["put", b, "plain/multi.bin", path], ak, sk,
                          options=["--threshold", str(5 * MIB), "--part-size", str(5 * MIB)]),
               "signed multipart put")
            ok(run_driver(m, ["get", b, "plain/multi.bin", out, "--offset", "3", "--length", "100"],
                          ak, sk), "signed ranged get")
            with open(out, "rb") as f:
                assert f.read() == data[3:103]
            fields, tags, _ = head_lines(ok(run_driver(m, ["head", b, "plain/key.bin"], ak, sk),
                                            "signed head"))
            assert tags == {"signed": "yes"} and fields["class"] == "STANDARD_IA", (fields, tags)
            ok(run_driver(m, ["copy", b, "plain/key.bin", b, "plain/copy.bin", "--tag", "c=1"], ak, sk),
               "signed copy")
            ok(run_driver(m, ["delete", b, "plain/copy.bin"], ak, sk), "signed delete")
            got = s3.get_object(Bucket=b, Key="plain/multi.bin")
            assert got["Body"].read() == data and got["ETag"].strip('"').endswith("-3")
            # The check is real: a wrong secret is refused, at once and without retries.
            rc, _, err = run_driver(m, ["put", b, "plain/bad.bin", path], ak, sk + "x")
            assert rc == 1 and "aws=SignatureDoesNotMatch" in err and "TRS_EAUTH" in err, err
            assert sk not in err, "the secret key leaked into an error message"
        finally:
            os.unlink(path)
            os.unlink(out)


def _main():
    failed = 0
    for name, fn in [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]:
        try:
            fn()
            print("PASS %s" % name)
        except Skip as e:
            print("SKIP %s: %s" % (name, e))
        except Exception as e:  # noqa: BLE001 - report every failure as a line
            failed += 1
            print("FAIL %s: %s" % (name, " ".join(str(e).split())[:400] or type(e).__name__))
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_main())
