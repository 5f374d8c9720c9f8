# SPDX-License-Identifier: Apache-2.0
"""Duplicates, as trs handles them into a directory (the staging path):
names twice in the tar, entries sharing a relative_key or a destination
key, keys twice in the manifest's JSON. Python's tarfile and json, which
the source side uses, take the last copy; so does trs, and it warns."""

import json

from util import REGION, expect_exit, process, sandbox

TARGETS = [{"region": REGION, "bucket": "dest"}]


def test_tar_member_twice_the_last_copy_wins():
    for position in ("before", "after"):
        # "before": both copies precede the manifest (staged); "after": the
        # older copy comes first, the manifest between them
        objs = [{"relative_key": "x.txt", "data": b"the last copy"}]
        extra = [{"name": "objects/x.txt", "data": b"an older copy", "position": "before"}]
        with sandbox() as sb:
            p = sb.archive("dup.tar.zst", objects=objs, targets=TARGETS, extra_members=extra,
                           manifest_position="last" if position == "before" else "first")
            res = process(p, sb.out)
            expect_exit(res, 0)
            assert sb.result()["dest"]["x.txt"] == b"the last copy"
            assert "the last copy wins" in res.stderr.decode()


def test_two_entries_with_one_relative_key_never_exit_0():
    objs = [{"relative_key": "r.bin", "object_name": "one", "data": b"bytes"},
            {"relative_key": "r.bin", "object_name": "two", "data": b"bytes", "member": False}]
    with sandbox() as sb:
        p = sb.archive("rk.tar.zst", objects=objs, targets=TARGETS)
        res = process(p, sb.out, json_report=True)
        expect_exit(res, 1)
        tree = sb.result()["dest"]
        assert tree == {"one": b"bytes"}
        report = json.loads(res.stdout)
        assert [f["key"] for f in report["failures"]] == ["two"]
        assert "same relative_key" in report["failures"][0]["message"]


def test_two_entries_to_one_key_the_later_wins():
    objs = [{"relative_key": "a", "object_name": "k", "data": b"earlier"},
            {"relative_key": "b", "object_name": "k", "data": b"later"}]
    for order in (0, 1):
        with sandbox() as sb:
            # the tar order does not matter, the manifest's does
            p = sb.archive("key.tar.zst", objects=objs if order else objs[::-1], targets=TARGETS)
            res = process(p, sb.out)
            expect_exit(res, 0)
            want = b"later" if order else b"earlier"
            assert sb.result()["dest"]["k"] == want
            assert "both write key 'k'" in res.stderr.decode()


def test_manifest_keys_twice_the_last_wins():
    manifest = ('{"targets": [{"region": "%s", "bucket": "first"}], '
                '"objects": [{"object_name": "x.txt", "size": 2, "size": 3}], '
                '"targets": [{"region": "%s", "bucket": "second"}]}' % (REGION, REGION))
    objs = [{"relative_key": "x.txt", "data": b"abc"}]
    with sandbox() as sb:
        p = sb.archive("keys.tar.zst", objects=objs, targets=TARGETS, manifest_raw=manifest.encode())
        res = process(p, sb.out)
        expect_exit(res, 0)
        assert sb.result() == {"second": {"x.txt": b"abc"}}
        assert "targets appears twice" in res.stderr.decode()
        assert "objects[0].size appears twice" in res.stderr.decode()
