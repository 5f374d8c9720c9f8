# SPDX-License-Identifier: Apache-2.0
"""Over https a single PUT that carries Content-MD5 (which S3 checks), and a
multipart part that carries its CRC-32 (an upload created with
x-amz-checksum-algorithm CRC32), is signed as UNSIGNED-PAYLOAD, as the AWS
SDKs sign bodies that carry a checksum: its bytes are not hashed a second
time for the signature; a single PUT without Content-MD5 (the source's ETag
is a multipart one, not an MD5) carries its CRC-32 the same way. Over http, and with TRS_S3_SIGN_PAYLOAD=1, every
body's SHA-256 is signed. The strict checker still verifies each Content-MD5
and each CRC-32: a damaged body is refused."""
import base64
import hashlib
import os
import re
import zlib

import mkarchive
import util
from util import REGION
from test_ca_bundle import TlsRelay, self_signed


def _put_hashes(m, run):
    """The x-amz-content-sha256 of every PutObject the checker forwards during run(), with its body's MD5."""
    seen = []

    def hook(method, target, headers):
        h = dict((n.lower(), v) for n, v in headers)
        if method == "PUT" and "content-md5" in h and "x-amz-copy-source" not in h:
            seen.append(h.get("x-amz-content-sha256"))
    m.checker.before_forward = hook
    try:
        run()
    finally:
        m.checker.before_forward = None
    return seen


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _crc_puts(m, run):
    """(x-amz-content-sha256, x-amz-checksum-crc32) of every PutObject without Content-MD5 during run()."""
    seen = []

    def hook(method, target, headers):
        h = dict((n.lower(), v) for n, v in headers)
        if method == "PUT" and "content-md5" not in h and "x-amz-copy-source" not in h and "?" not in target:
            seen.append((h.get("x-amz-content-sha256"), h.get("x-amz-checksum-crc32")))
    m.checker.before_forward = hook
    try:
        run()
    finally:
        m.checker.before_forward = None
    return seen


def test_https_puts_with_content_md5_are_signed_unsigned_payload_http_ones_are_hashed():
    with util.MotoServer() as m, util.tempdir() as d:
        cert, key = self_signed(d)
        m.client("s3").create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        objs = [{"relative_key": "u/%d.bin" % i, "data": os.urandom(4096 + i)} for i in range(4)]
        arc = mkarchive.build_archive(os.path.join(d, "a.tar.zst"), objs, [{"region": REGION, "bucket": "dest-a"}])
        relay = TlsRelay(m.checker.port, cert, key)
        try:
            https = dict(m.env(), AWS_ENDPOINT_URL="https://127.0.0.1:%d" % relay.port, AWS_CA_BUNDLE=cert)
            base = ["process", arc, "--no-progress", "--overwrite", "always"]

            def run(env):
                util.expect_exit(util.run_trs(base, env=env), 0)
            hashes = _put_hashes(m, lambda: run(https))
            assert hashes == ["UNSIGNED-PAYLOAD"] * len(objs), hashes
            for o in objs:
                got = m.client("s3").get_object(Bucket="dest-a", Key=mkarchive.destination_key(o))
                assert got["Body"].read() == o["data"]
            # the switch: every body signed, also over https
            hashes = _put_hashes(m, lambda: run(dict(https, TRS_S3_SIGN_PAYLOAD="1")))
            want = sorted(hashlib.sha256(o["data"]).hexdigest() for o in objs)
            assert sorted(hashes) == want, hashes
            # plain http: signed as before
            hashes = _put_hashes(m, lambda: run(m.env()))
            assert sorted(hashes) == want, hashes
            # no MD5 to send (the source's ETag is a multipart one), over https: the body's CRC-32
            # instead, verified by the checker; over http its SHA-256 signed
            mp = [dict(o, etag="0123456789abcdef0123456789abcdef-2") for o in objs]
            arc2 = mkarchive.build_archive(os.path.join(d, "mp.tar.zst"), mp, [{"region": REGION, "bucket": "dest-a"}])
            base2 = ["process", arc2, "--no-progress", "--overwrite", "always"]
            crcs = _crc_puts(m, lambda: util.expect_exit(util.run_trs(base2, env=https), 0))
            assert sorted(crcs) == sorted(("UNSIGNED-PAYLOAD", crc32_b64(o["data"])) for o in objs), crcs
            assert not m.checker.refusals, m.checker.refusals
            crcs = _crc_puts(m, lambda: util.expect_exit(util.run_trs(base2, env=m.env()), 0))
            assert sorted(crcs) == sorted((hashlib.sha256(o["data"]).hexdigest(), None) for o in objs), crcs
        finally:
            relay.stop()


def test_a_damaged_body_sent_unsigned_is_still_refused_by_its_content_md5():
    with util.MotoServer() as m, util.tempdir() as d:
        cert, key = self_signed(d)
        m.client("s3").create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        objs = [{"relative_key": "bad.bin", "data": os.urandom(5000), "wrong_etag": True},
                {"relative_key": "good.bin", "data": os.urandom(5000)}]
        arc = mkarchive.build_archive(os.path.join(d, "a.tar.zst"), objs, [{"region": REGION, "bucket": "dest-a"}])
        relay = TlsRelay(m.checker.port, cert, key)
        try:
            env = dict(m.env(), AWS_ENDPOINT_URL="https://127.0.0.1:%d" % relay.port, AWS_CA_BUNDLE=cert)
            res = util.run_trs(["process", arc, "--no-progress"], env=env)
            util.expect_exit(res, 1)
            assert m.checker.refusals.get("BadDigest") == 1, m.checker.refusals
            assert "not the ones the manifest's etag names" in res.err, res.err
        finally:
            relay.stop()


def _part_headers(m, run):
    """(x-amz-content-sha256, x-amz-checksum-crc32) of every UploadPart, and the
    x-amz-checksum-algorithm of every CreateMultipartUpload, the checker forwards during run()."""
    parts, creates = [], []

    def hook(method, target, headers):
        h = dict((n.lower(), v) for n, v in headers)
        if method == "PUT" and "partNumber=" in target:
            parts.append((h.get("x-amz-content-sha256"), h.get("x-amz-checksum-crc32")))
        elif method == "POST" and re.search(r"[?&]uploads(=|&|$)", target):
            creates.append(h.get("x-amz-checksum-algorithm"))
    m.checker.before_forward = hook
    try:
        run()
    finally:
        m.checker.before_forward = None
    return parts, creates


def test_https_parts_carry_their_crc32_and_are_sent_unsigned_http_ones_are_hashed():
    with util.MotoServer() as m, util.tempdir() as d:
        cert, key = self_signed(d)
        m.client("s3").create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        data = os.urandom((10 << 20) + 12345)  # three parts of 5 MiB
        objs = [{"relative_key": "big.bin", "data": data}]
        arc = mkarchive.build_archive(os.path.join(d, "a.tar.zst"), objs, [{"region": REGION, "bucket": "dest-a"}])
        relay = TlsRelay(m.checker.port, cert, key)
        try:
            https = dict(m.env(), AWS_ENDPOINT_URL="https://127.0.0.1:%d" % relay.port, AWS_CA_BUNDLE=cert)
            base = ["process", arc, "--no-progress", "--overwrite", "always", "--multipart-threshold", "5M",
                    "--part-size", "5M"]
            dest = mkarchive.destination_key(objs[0])

            def run(env):
                util.expect_exit(util.run_trs(base, env=env), 0)
                assert m.client("s3").get_object(Bucket="dest-a", Key=dest)["Body"].read() == data
            parts, creates = _part_headers(m, lambda: run(https))
            assert creates == ["CRC32"], creates
            assert len(parts) == 3 and all(p[0] == "UNSIGNED-PAYLOAD" for p in parts), parts
            # the checker verified each part's CRC-32 and the Complete's list of them
            assert m.checker.checksums.checksummed_parts == 3 and not m.checker.refusals, m.checker.refusals
            # the switch, and plain http: every part's SHA-256 signed, no checksum asked for
            for env in (dict(https, TRS_S3_SIGN_PAYLOAD="1"), m.env()):
                parts, creates = _part_headers(m, lambda: run(env))
                assert creates == [None], creates
                assert len(parts) == 3, parts
                assert all(len(p[0]) == 64 and p[1] is None for p in parts), parts
            assert m.checker.checksums.checksummed_parts == 3
        finally:
            relay.stop()
