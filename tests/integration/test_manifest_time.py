# SPDX-License-Identifier: Apache-2.0
"""A manifest built to hold a worker: one enormous JSON string. Parsing is
linear in its length, and one value over a quarter of --max-manifest is
refused as soon as it is seen, so neither time nor memory grows with it."""

import mkarchive
from util import REGION, SLOWDOWN, expect_exit, process, sandbox

TARGETS = [{"region": REGION, "bucket": "dest"}]


def manifest_with_string(n):
    return (b'{"targets": [{"region": "%s", "bucket": "dest"}], "note": "' % REGION.encode()
            + b"x" * n + b'", "objects": [{"object_name": "a.txt", "size": 3}]}')


def test_long_string_in_manifest_is_parsed_quickly():
    with sandbox() as sb:
        p = sb.archive("long.tar.zst", objects=[{"relative_key": "a.txt", "data": b"abc"}],
                       targets=TARGETS, manifest_raw=manifest_with_string(48 << 20), level=1)
        res = process(p, sb.out)
        expect_exit(res, 0)
        assert sb.result() == {"dest": {"a.txt": b"abc"}}
        # quadratic parsing took 10 s for 64 MiB; linear is well under one (CPU
        # seconds: the wall clock of a loaded machine says nothing about trs)
        assert res.cpu_seconds < 8 * SLOWDOWN, "a 48 MiB string took %.1f s of CPU" % res.cpu_seconds


def test_value_over_a_quarter_of_the_limit_is_refused():
    with sandbox() as sb:
        p = sb.archive("huge.tar.zst", objects=[{"relative_key": "a.txt", "data": b"abc"}],
                       targets=TARGETS, manifest_raw=manifest_with_string(60 << 20), level=1)
        res = process(p, sb.out, "--max-manifest", "64M")
        expect_exit(res, 3)
        assert b"one value of more than" in res.stderr
        assert sb.result() == {}
