# SPDX-License-Identifier: Apache-2.0
"""--verify md5|size into a directory (issue: cost).

md5 (the default) refuses an object whose bytes do not have the manifest's
MD5, small (held whole) or large (streamed), manifest first or last. size
checks sizes only and records the manifest's MD5 as given: for trusted
local restores; a wrong size still fails, and zstd's frame checksum is
still checked by libzstd (a damaged checksum fails the archive).
"""
import os
import random

import mkarchive
import util
from util import REGION, expect_exit, process, sandbox

MIB = 1 << 20
TARGETS = [{"region": REGION, "bucket": "dest-a"}]


def rnd(n, seed):
    return random.Random(seed).randbytes(n)


def objects():
    return [
        {"relative_key": "ok-small.bin", "data": rnd(5000, 1)},
        {"relative_key": "ok-large.bin", "data": rnd(9 * MIB, 2)},  # above the 8 MiB held whole: streamed
        {"relative_key": "md5-small.bin", "data": rnd(5000, 3), "wrong_etag": True},
        {"relative_key": "md5-large.bin", "data": rnd(9 * MIB, 4), "wrong_etag": True},
        {"relative_key": "size-small.bin", "data": rnd(5000, 5), "wrong_size": True},
    ]


def failed_keys(rep):
    return sorted(f["relative_key"] for f in rep["failures"])


def test_verify_md5_and_size_manifest_last_and_first():
    for position in ("last", "first"):
        with sandbox() as sb:
            objs = objects()
            a = sb.archive(objects=objs, targets=TARGETS, manifest_position=position)
            res = process(a, os.path.join(sb.out, "md5"), json_report=True)
            expect_exit(res, 1, "default --verify md5, manifest %s" % position)
            rep = res.json()
            assert failed_keys(rep) == ["md5-large.bin", "md5-small.bin", "size-small.bin"], rep["failures"]
            for f in rep["failures"]:
                assert f["code"] == "TRS_EINTEGRITY", f

            res = process(a, os.path.join(sb.out, "size"), "--verify", "size", json_report=True)
            expect_exit(res, 1, "--verify size, manifest %s" % position)
            rep = res.json()
            assert failed_keys(rep) == ["size-small.bin"], rep["failures"]
            assert rep["objects_written"] == 4, rep
            out = os.path.join(sb.out, "size")
            for o in objs[:4]:
                key = mkarchive.destination_key(o)
                with open(util.object_path(out, "dest-a", key), "rb") as f:
                    assert f.read() == o["data"], key
                # The manifest's MD5 is recorded as given, not computed.
                assert util.read_meta(out, "dest-a", key)["md5"] == mkarchive.manifest_entry(o)["etag"], key


def test_verify_size_still_checks_the_zstd_frame_checksum():
    with sandbox() as sb:
        objs = objects()[:1]
        a = sb.archive(objects=objs, targets=TARGETS)
        with open(a, "rb") as f:
            z = bytearray(f.read())
        # One frame written by the zstd CLI, with its content checksum: the last 4 bytes.
        assert z[4] & 0x04, "the frame has no checksum flag"
        z[-1] ^= 0xFF
        bad = sb.write("bad.tar.zst", bytes(z))
        res = process(bad, os.path.join(sb.out, "x"), "--verify", "size", json_report=True)
        assert res.returncode not in (0, 1), res.describe()
        assert "checksum" in res.err.lower(), res.err


def test_verify_rejects_an_unknown_mode():
    with sandbox() as sb:
        a = sb.archive(objects=objects()[:1], targets=TARGETS)
        res = process(a, sb.out, "--verify", "sha1")
        expect_exit(res, 2, "--verify sha1")
        assert "--verify" in res.err, res.err
