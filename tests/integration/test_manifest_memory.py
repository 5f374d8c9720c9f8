# SPDX-License-Identifier: Apache-2.0
"""The parsed manifest's memory is counted against --max-manifest, as its
JSON is, and both figures are in the --json reports of process and inspect."""

import json

from util import REGION, expect_exit, process, run_trs, sandbox

TARGETS = [{"region": REGION, "bucket": "dest"}]
N = 3000


def tiny_manifest():
    """Many small entries: more bytes parsed than bytes of JSON."""
    objs = [{"object_name": "k%d" % i, "size": 1} for i in range(N)]
    return json.dumps({"targets": TARGETS, "objects": objs}, separators=(",", ":")).encode()


def archive(sb):
    raw = tiny_manifest()
    members = [{"relative_key": "k%d" % i, "data": b"x"} for i in range(N)]
    return sb.archive("tiny.tar.zst", objects=members, targets=TARGETS, manifest_raw=raw), len(raw)


def test_json_reports_manifest_bytes_and_memory():
    with sandbox() as sb:
        p, nbytes = archive(sb)
        res = process(p, sb.out, json_report=True)
        expect_exit(res, 0)
        rep = res.json()
        assert rep["manifest_bytes"] == nbytes
        assert isinstance(rep["manifest_memory"], int)
        # each entry holds at least its strings' pointers, beyond the JSON's 30 bytes
        assert rep["manifest_memory"] > 64 * N
        assert rep["objects_written"] == N
        ins = run_trs(["inspect", p, "--json"])
        expect_exit(ins, 0)
        doc = ins.json()
        assert doc["manifest_bytes"] == nbytes
        assert doc["manifest_memory"] == rep["manifest_memory"]


def test_manifest_whose_memory_passes_the_limit_is_refused():
    with sandbox() as sb:
        p, nbytes = archive(sb)
        res = process(p, sb.out, json_report=True)
        expect_exit(res, 0)
        need = res.json()["manifest_memory"]
        assert need > nbytes
        with sandbox() as sb2:
            limit = (nbytes + need) // 2  # the JSON fits, its parsed form does not
            res = process(p, sb2.out, "--max-manifest", str(limit))
            expect_exit(res, 3)
            err = res.stderr.decode()
            assert "tiny.tar.zst" in err
            assert "bytes of memory once parsed" in err and "--max-manifest" in err
            assert sb2.result() == {}
            res = process(p, sb2.out, "--max-manifest", str(need))
            expect_exit(res, 0)
            assert len(sb2.result()["dest"]) == N
