# SPDX-License-Identifier: Apache-2.0
"""`trs process ARCHIVE --dest file://DIR` against archives built exactly the
way the source side builds them (tests/fixtures/mkarchive.py)."""

import json
import os
import random
import stat

import mkarchive
import util
from util import REGION, OTHER_REGION, expect_exit, process, sandbox

KMS = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

TARGETS = [
    {"region": REGION, "bucket": "dest-a"},
    {"region": REGION, "bucket": "dest-b", "storage_class": "GLACIER_IR",
     "kms_key_arn": KMS},
    {"region": OTHER_REGION, "bucket": "dest-c"},
    {"region": REGION.upper(), "bucket": "dest-upper"},  # not an exact match
]
IN_REGION = ["dest-a", "dest-b"]


def rnd(n, seed):
    return random.Random(seed).randbytes(n)


def acceptance_objects():
    """Names with spaces, '+', '%', unicode, a path over 100 bytes, an empty
    file, a 3 MiB object, plus a member without a manifest entry."""
    long_dir = "long/" + "d" * 70 + "/" + "e" * 40
    long_name = "f" * 80 + ".bin"
    objs = [
        {"relative_key": "2025/01/report final.csv",
         "source_prefix": "data/2025/01", "object_name": "report final.csv",
         "tags": [{"team": "finance"}, {"pii": "no"}],
         "data": b"id,amount\n1,10\n2,20\n"},
        {"relative_key": "plus/a+b c+d.txt", "source_prefix": "plus",
         "object_name": "a+b c+d.txt", "data": b"plus signs\n"},
        {"relative_key": "pct/100%25 done%.txt", "source_prefix": "pct",
         "object_name": "100%25 done%.txt", "data": b"percent\n"},
        {"relative_key": "uni/caf\u00e9 \u2615 \u65e5\u672c\u8a9e/\u00fcber.txt",
         "source_prefix": "uni/caf\u00e9 \u2615 \u65e5\u672c\u8a9e",
         "object_name": "\u00fcber.txt", "data": "\u00fcber\n".encode()},
        {"relative_key": long_dir + "/" + long_name,
         "source_prefix": long_dir, "object_name": long_name,
         "data": rnd(1000, 1)},
        {"relative_key": "empty", "object_name": "empty", "data": b""},
        {"relative_key": "big/three-mib.bin", "source_prefix": "big",
         "object_name": "three-mib.bin", "data": rnd(3 << 20, 2),
         "storage_class": "STANDARD_IA",
         "extra": {"unknown_field": {"nested": [1, 2]}}},
        {"relative_key": "stray/not-in-manifest.txt", "data": b"stray\n",
         "in_manifest": False},
    ]
    assert len(("objects/" + objs[4]["relative_key"]).encode()) > 100
    return objs


EXTRA_LINKS = [
    {"name": "objects/link-to-passwd", "type": "symlink",
     "linkname": "/etc/passwd"},
    {"name": "objects/hardlink.txt", "type": "hardlink",
     "linkname": "objects/plus/a+b c+d.txt", "position": "after"},
]


def expected_keys(objects):
    return {mkarchive.destination_key(o): o["data"] for o in objects
            if o.get("in_manifest", True) and o.get("member", True)}


def check_restored(sb, objects, targets=TARGETS, in_region=IN_REGION):
    tree = sb.result()
    want = expected_keys(objects)
    for bucket in in_region:
        got = tree.get(bucket, {})
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        assert not missing, "%s: missing keys %r" % (bucket, missing)
        assert not extra, "%s: unexpected files %r" % (bucket, extra)
        for k, data in want.items():
            assert got[k] == data, "%s/%s: bytes differ (%d vs %d bytes)" % (
                bucket, k, len(got[k]) if isinstance(got[k], bytes) else -1,
                len(data))
            m = sb.meta(bucket, k)
            assert m.get("bucket") == bucket and m.get("key") == k, m
            assert m.get("size") == len(data), m
            assert m.get("md5") == util.md5(data), m
    others = {t["bucket"] for t in targets} - set(in_region)
    for bucket in others:
        assert not tree.get(bucket), "%s (not this region) got %r" % (
            bucket, sorted(tree[bucket])[:5])
    stray = set(tree) - set(in_region)
    assert not stray, "unexpected top-level entries in DIR: %r" % sorted(stray)


def run_acceptance(**build):
    objects = acceptance_objects()
    with sandbox() as sb:
        build.setdefault("extra_members", EXTRA_LINKS)
        a = sb.archive(objects=objects, targets=TARGETS, **build)
        res = process(a, sb.out, json_report=True)
        expect_exit(res, 0)
        check_restored(sb, objects)
        rep = res.json()
        assert rep.get("objects_failed") == 0, "report: %r" % rep
        assert rep.get("failures") == [], "report failures: %r" % rep
        assert isinstance(rep.get("objects_written"), int) and \
            rep["objects_written"] > 0, "report: %r" % rep
        assert "objects_skipped" in rep, "report lacks objects_skipped: %r" % rep
        # a warning naming each skipped member, not silence
        skipped = ["stray/not-in-manifest.txt"] + [
            m["name"] for m in build["extra_members"] if m.get("type") != "dir"]
        for name in skipped:
            assert name in res.err, "no warning naming skipped member %r: %s" \
                % (name, util._clip(res.err))
        return rep


# ------------------------------------------------------------ acceptance

def test_source_side_archive_pax_manifest_last():
    rep = run_acceptance()
    assert rep.get("manifest_position") == "last", rep


def test_manifest_first():
    rep = run_acceptance(manifest_position="first")
    assert rep.get("manifest_position") == "first", rep


def test_manifest_middle():
    rep = run_acceptance(manifest_position="middle")
    assert rep.get("manifest_position") == "middle", rep


def test_three_zstd_frames():
    run_acceptance(frames=3)


def test_level_19():
    run_acceptance(level=19)


def test_level_22_ultra():
    run_acceptance(level=22)


def test_gnu_format():
    run_acceptance(tar_format="gnu")


def test_ustar_format():
    run_acceptance(tar_format="ustar")


def test_skippable_frame_prepended():
    run_acceptance(skippable=True, frames=2)


def test_directory_entries_ignored():
    run_acceptance(dir_entries=True, extra_members=EXTRA_LINKS + [
        {"name": "objects/plus/", "type": "dir"}])


def test_text_report_without_json():
    objects = acceptance_objects()[:2]
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=TARGETS)
        res = process(a, sb.out)
        expect_exit(res, 0)
        check_restored(sb, objects)


def test_rerun_is_idempotent():
    objects = acceptance_objects()[:3]
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=TARGETS)
        expect_exit(process(a, sb.out), 0, "first run")
        expect_exit(process(a, sb.out), 0, "second run")
        check_restored(sb, objects)


def test_200_mib_object_bounded_memory():
    # Decompressed bytes stream to the destination within --max-memory: peak
    # RSS stays under the budget plus a small fixed overhead (48 MiB), far
    # under the object size, although the manifest comes after the object.
    size = 200 << 20
    with sandbox() as sb:
        z = mkarchive.zero_bomb_archive(size, TARGETS[:1])
        a = sb.write("zeros.tar.zst", z)
        res = process(a, sb.out, "--max-memory", str(64 << 20), json_report=True)
        expect_exit(res, 0)
        p = util.object_path(sb.out, "dest-a", "zeros.bin")
        assert os.path.getsize(p) == size, os.path.getsize(p)
        assert util.file_md5(p) == sb.meta("dest-a", "zeros.bin")["md5"]
        limit = (64 + 48) * 1024 * (3 if os.environ.get("TRS_SANITIZED") == "1" else 1)
        assert res.maxrss_kb < limit, "peak RSS %d KiB for a %d MiB " \
            "object" % (res.maxrss_kb, size >> 20)


def test_long_window_2_31_accepted():
    objects = acceptance_objects()[:3]
    with sandbox() as sb:
        tar = mkarchive.build_tar(objects, TARGETS)
        z = mkarchive.zstd_compress(tar, 3, extra_args=["--long=31"])
        a = sb.write("long.tar.zst", z)
        res = process(a, sb.out)
        expect_exit(res, 0)
        check_restored(sb, objects)


# ------------------------------------------------------------ region

def _region_case(args=(), env_extra=None, region=REGION):
    objects = acceptance_objects()[:2]
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=TARGETS)
        env = util.clean_env(region, env_extra)
        res = process(a, sb.out, *args, env=env)
        expect_exit(res, 0)
        check_restored(sb, objects)


def test_region_flag_wins_over_env():
    _region_case(["--region", REGION], region=OTHER_REGION)


def test_region_from_aws_default_region():
    _region_case(env_extra={"AWS_DEFAULT_REGION": REGION}, region=None)


def test_aws_region_before_aws_default_region():
    _region_case(env_extra={"AWS_DEFAULT_REGION": OTHER_REGION})


def test_other_region_gets_nothing():
    objects = acceptance_objects()[:2]
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=TARGETS)
        res = process(a, sb.out, "--region", OTHER_REGION, json_report=True)
        expect_exit(res, 0)
        tree = sb.result()
        want = expected_keys(objects)
        assert set(tree.get("dest-c", {})) == set(want), sorted(tree)
        for b in ("dest-a", "dest-b", "dest-upper"):
            assert not tree.get(b), "%s written from %s" % (b, OTHER_REGION)


def test_region_with_no_target_fails_and_writes_nothing():
    # The source side's replication sends an archive here for a target here: none is a wrong
    # region or a wrong rule, never a quiet success.
    objects = acceptance_objects()[:2]
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=TARGETS)
        res = process(a, sb.out, "--region", "ap-south-1", json_report=True)
        expect_exit(res, 4)
        assert not sb.result(), "objects written: %r" % sb.result()
        rep = res.json()
        assert rep["ok"] is False and rep["exit_code"] == 4, rep
        assert rep.get("objects_written") == 0, rep
        for region in ("eu-west-1", "us-east-1"):
            assert region in rep["error"] and region in rep["target_regions"], rep
        assert "ap-south-1" in rep["error"] and "--foreign-archives skip" in rep["error"], rep


def test_region_with_no_target_is_nothing_to_do_with_foreign_archives_skip():
    objects = acceptance_objects()[:2]
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=TARGETS)
        for how in (["--foreign-archives", "skip"], []):
            env = util.clean_env(extra={"TRS_FOREIGN_ARCHIVES": "skip"}) if not how else None
            res = process(a, sb.out, "--region", "ap-south-1", *how, json_report=True, env=env)
            expect_exit(res, 0)
            assert not sb.result(), "objects written: %r" % sb.result()
            rep = res.json()
            assert rep.get("objects_written") == 0 and rep.get("objects_skipped") == len(objects), rep


def test_region_not_shaped_like_an_aws_region_is_a_usage_error_naming_the_nearest():
    with sandbox() as sb:
        a = sb.archive(objects=acceptance_objects()[:1], targets=TARGETS)
        res = process(a, sb.out, "--region", "eu-west-l")
        expect_exit(res, 2)
        assert "did you mean eu-west-1" in res.err and "eu-west-l" in res.err, res.describe()
        res = process(a, sb.out, region="eu-central-l")
        expect_exit(res, 2)
        assert "did you mean eu-central-1" in res.err and "AWS_REGION" in res.err, res.describe()
        assert not sb.result()


def test_backup_target_gets_no_objects():
    objects = acceptance_objects()[:2]
    targets = [{"region": REGION, "bucket": "dest-a"},
               {"region": REGION, "bucket": "dest-backup", "backup": True}]
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=targets)
        res = process(a, sb.out, "--catalog-bucket", "catalog")
        expect_exit(res, 0)
        tree = sb.result()
        want = expected_keys(objects)
        assert set(tree.get("dest-a", {})) == set(want), sorted(tree)
        leaked = set(tree.get("dest-backup", {})) & set(want)
        assert not leaked, "backup target received objects %r" % sorted(leaked)
        # it gets the archive itself instead (tests/integration/test_backup.py)
        assert [os.path.basename(k).startswith("backup_") for k in tree.get("dest-backup", {})] == [True], sorted(tree)


def test_no_targets_is_nothing_to_do():
    objects = acceptance_objects()[:2]
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=[])
        res = process(a, sb.out)
        expect_exit(res, 0)
        assert not sb.result(), sb.result()


# ------------------------------------------------------------ meta

def _single(obj, targets=None, code=0, extra=()):
    """Process an archive of ``obj`` (+ a neighbour); return (sb-free) the
    metadata per in-region bucket and the tree."""
    targets = targets or TARGETS[:2]
    with sandbox() as sb:
        a = sb.archive(objects=[obj], targets=targets)
        res = process(a, sb.out, *extra)
        expect_exit(res, code)
        key = mkarchive.destination_key(obj)
        metas = {}
        tree = sb.result()
        for t in targets:
            if t["region"] == REGION and not t.get("backup"):
                if key in tree.get(t["bucket"], {}):
                    metas[t["bucket"]] = sb.meta(t["bucket"], key)
        return metas, tree, res


def _tags(n, prefix="k"):
    return [{"%s%02d" % (prefix, i): "v%d" % i} for i in range(n)]


def test_meta_basic_fields_class_and_kms():
    data = b"hello meta\n"
    obj = {"relative_key": "m/hello.txt", "source_prefix": "pre/fix",
           "object_name": "hello.txt", "tags": [{"team": "finance"},
                                                {"pii": "no"}],
           "creation_time": "2025-01-23 10:15:00",
           "storage_class": "STANDARD_IA", "data": data}
    metas, tree, _ = _single(obj)
    key = "pre/fix/hello.txt"
    assert tree["dest-a"][key] == data and tree["dest-b"][key] == data
    a, b = metas["dest-a"], metas["dest-b"]
    for m, bucket in ((a, "dest-a"), (b, "dest-b")):
        assert m.get("bucket") == bucket, m
        assert m.get("key") == key, m
        assert m.get("size") == len(data), m
        assert m.get("md5") == util.md5(data), m
        assert m.get("tags") == {"team": "finance", "pii": "no",
                                 "OriginalCreationTime": "2025-01-23 10:15:00",
                                 "OriginalETag": util.md5(data)}, m
        assert list(m["tags"])[:2] == ["team", "pii"], "tag order: %r" % m
        assert m.get("metadata", {}) == {"original-creation-time": "2025-01-23 10:15:00",
                                         "original-etag": util.md5(data)}, m
    assert a.get("storage_class") == "STANDARD_IA", a   # object's own class
    assert "kms_key_id" not in a, a
    assert b.get("storage_class") == "GLACIER_IR", b    # target override
    assert b.get("kms_key_id") == KMS, b


def test_meta_storage_class_defaults_to_standard():
    obj = {"relative_key": "nc.txt", "data": b"x",
           "storage_class": mkarchive.OMIT}
    targets = [{"region": REGION, "bucket": "dest-a"},
               {"region": REGION, "bucket": "dest-e", "storage_class": ""}]
    metas, _, _ = _single(obj, targets)
    assert metas["dest-a"].get("storage_class") == "STANDARD", metas
    assert metas["dest-e"].get("storage_class") == "STANDARD", metas


def test_meta_empty_target_class_uses_object_class():
    obj = {"relative_key": "oc.txt", "data": b"x", "storage_class": "ONEZONE_IA"}
    targets = [{"region": REGION, "bucket": "dest-e", "storage_class": ""}]
    metas, _, _ = _single(obj, targets)
    assert metas["dest-e"].get("storage_class") == "ONEZONE_IA", metas


def test_meta_tag_merge_later_duplicate_wins():
    obj = {"relative_key": "dup.txt", "data": b"d",
           "tags": [{"a": "1"}, {"b": "2"}, {"a": "3"}]}
    metas, _, _ = _single(obj)
    tags = metas["dest-a"]["tags"]
    assert tags.get("a") == "3" and tags.get("b") == "2", tags
    assert len(tags) == 4, tags


def test_meta_10_original_tags_overflow_both():
    data = b"ten tags"
    obj = {"relative_key": "t10.txt", "data": data, "tags": _tags(10)}
    metas, _, _ = _single(obj)
    m = metas["dest-a"]
    assert m["tags"] == {"k%02d" % i: "v%d" % i for i in range(10)}, m
    assert m.get("metadata") == {
        "original-creation-time": mkarchive.DEFAULT_CREATION_TIME,
        "original-etag": util.md5(data)}, m


def test_meta_9_original_tags_overflow_etag_only():
    data = b"nine tags"
    obj = {"relative_key": "t9.txt", "data": data, "tags": _tags(9)}
    metas, _, _ = _single(obj)
    m = metas["dest-a"]
    want = {"k%02d" % i: "v%d" % i for i in range(9)}
    want["OriginalCreationTime"] = mkarchive.DEFAULT_CREATION_TIME
    assert m["tags"] == want, m
    assert len(m["tags"]) == 10
    # the originals are metadata too (a HEAD returns metadata, not tags: the version a write compares with)
    assert m.get("metadata") == {"original-etag": util.md5(data),
                                 "original-creation-time": "2025-01-23 10:15:00"}, m


def test_meta_8_original_tags_all_fit():
    data = b"eight tags"
    obj = {"relative_key": "t8.txt", "data": data, "tags": _tags(8)}
    m = _single(obj)[0]["dest-a"]
    assert len(m["tags"]) == 10, m
    assert m["tags"].get("OriginalETag") == util.md5(data), m
    assert m.get("metadata", {}) == {"original-creation-time": mkarchive.DEFAULT_CREATION_TIME,
                                     "original-etag": util.md5(data)}, m


def test_meta_empty_creation_time_and_etag():
    obj = {"relative_key": "noct.txt", "data": b"no ct", "creation_time": "",
           "etag": ""}
    m = _single(obj)[0]["dest-a"]
    assert "OriginalCreationTime" not in m["tags"], m
    assert "OriginalETag" not in m["tags"], m
    assert m.get("md5") == util.md5(b"no ct"), m


def test_zero_byte_object():
    obj = {"relative_key": "zero/empty.bin", "source_prefix": "zero",
           "object_name": "empty.bin", "data": b""}
    metas, tree, _ = _single(obj)
    assert tree["dest-a"]["zero/empty.bin"] == b"", tree
    m = metas["dest-a"]
    assert m.get("size") == 0 and m.get("md5") == util.md5(b""), m


def test_multipart_etag_not_md5_checked():
    etag = "0123456789abcdef0123456789abcdef-3"
    obj = {"relative_key": "mp.bin", "data": rnd(5000, 9), "etag": etag}
    metas, tree, _ = _single(obj)
    assert tree["dest-a"]["mp.bin"] == obj["data"]
    assert metas["dest-a"]["tags"].get("OriginalETag") == etag, metas


def test_source_prefix_empty_vs_set():
    objects = [
        {"relative_key": "p/one.txt", "source_prefix": "", "object_name":
         "one.txt", "data": b"1"},
        {"relative_key": "p/two.txt", "source_prefix": "some/prefix",
         "object_name": "two.txt", "data": b"2"},
        {"relative_key": "three.txt", "source_prefix": mkarchive.OMIT,
         "object_name": "three.txt", "data": b"3"},
    ]
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=TARGETS[:1])
        expect_exit(process(a, sb.out), 0)
        got = sb.result().get("dest-a", {})
        assert got == {"one.txt": b"1", "some/prefix/two.txt": b"2",
                       "three.txt": b"3"}, sorted(got)


def test_relative_key_defaults_to_object_name():
    obj = {"relative_key": "dflt.txt", "object_name": "dflt.txt",
           "data": b"default rk"}
    m = mkarchive.manifest_dict([obj], TARGETS[:1])
    del m["objects"][0]["relative_key"]   # member stays objects/dflt.txt
    with sandbox() as sb:
        a = sb.archive(objects=[obj], targets=TARGETS[:1],
                       manifest_raw=json.dumps(m, indent=2).encode())
        expect_exit(process(a, sb.out), 0)
        assert sb.result().get("dest-a") == {"dflt.txt": b"default rk"}


def test_size_as_float_accepted():
    obj = {"relative_key": "f.txt", "data": b"float size", "size": 10.0}
    _, tree, _ = _single(obj)
    assert tree["dest-a"]["f.txt"] == b"float size"


# ------------------------------------------------------------ failures

def _good(n=3):
    return [{"relative_key": "good/%d.txt" % i, "source_prefix": "g",
             "object_name": "%d.txt" % i, "data": b"good %d\n" % i}
            for i in range(n)]


def _failure_case(bad, absent_key=None):
    objects = _good() + [bad]
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=TARGETS[:2])
        res = process(a, sb.out, json_report=True)
        expect_exit(res, 1)
        tree = sb.result()
        good = expected_keys(_good())
        for b in IN_REGION:
            for k, d in good.items():
                assert tree.get(b, {}).get(k) == d, "%s/%s not written" % (b, k)
            if absent_key:
                assert absent_key not in tree.get(b, {}), \
                    "%s/%s written despite the failure" % (b, absent_key)
        rep = res.json()
        assert rep.get("objects_failed", 0) >= 1, rep
        fails = rep.get("failures") or []
        assert any(f.get("relative_key") == bad["relative_key"] for f in fails), \
            "failures do not name %r: %r" % (bad["relative_key"], fails)
        for f in fails:
            for field in ("relative_key", "bucket", "key", "message"):
                assert field in f, "failure lacks %s: %r" % (field, f)
        return rep, res


def test_missing_member_fails_that_object():
    _failure_case({"relative_key": "lost.txt", "data": b"lost",
                   "member": False}, absent_key="lost.txt")


def test_size_mismatch_not_written():
    _failure_case({"relative_key": "short.txt", "data": b"twelve bytes",
                   "wrong_size": True}, absent_key="short.txt")


def test_member_longer_than_manifest_size_not_written():
    _failure_case({"relative_key": "long.txt", "data": b"abc",
                   "member_data": b"abcdef", "etag": ""},
                  absent_key="long.txt")


def test_md5_mismatch_not_written():
    _failure_case({"relative_key": "bad-md5.txt", "data": b"content",
                   "wrong_etag": True}, absent_key="bad-md5.txt")


def test_md5_mismatch_same_size_not_written():
    _failure_case({"relative_key": "flip.bin", "data": rnd(4 << 20, 3),
                   "member_data": rnd(4 << 20, 4)}, absent_key="flip.bin")


def test_target_without_bucket_fails():
    objects = _good(2)
    targets = [{"region": REGION, "bucket": "dest-a"}, {"region": REGION}]
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=targets)
        res = process(a, sb.out)
        expect_exit(res, 1)
        assert set(sb.result().get("dest-a", {})) == set(expected_keys(objects))


# ------------------------------------------------------------ usage

def test_usage_errors_exit_2():
    with sandbox() as sb:
        a = sb.archive(objects=_good(1), targets=TARGETS[:1])
        for args in (["process"], ["process", a, "--dest", "ftp://x"],
                     ["process", a, "--dest", "file://" + sb.out,
                      "--no-such-flag"],
                     ["process", a, "--dest", "file://" + sb.out,
                      "--max-ratio", "lots"],
                     ["no-such-command"]):
            res = util.run_trs(args)
            expect_exit(res, 2, " ".join(map(str, args[:1] + args[2:])))
            assert res.err.strip(), "no message for " + repr(args)


def test_missing_archive_file():
    with sandbox() as sb:
        res = process(os.path.join(sb.inp, "nope.tar.zst"), sb.out)
        assert res.returncode in (2, 3), res.describe()
        assert "nope.tar.zst" in res.err, res.describe()


# ------------------------------------------------------------ pipeline

def _pipeline_objects(n=60, size=40_000):
    return [{"relative_key": "p/obj-%03d.bin" % i, "data": rnd(size, 500 + i)} for i in range(n)]


def test_manifest_last_within_budget_is_one_pass():
    objects = _pipeline_objects()
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=TARGETS)
        res = process(a, sb.out, json_report=True)
        expect_exit(res, 0)
        report = json.loads(res.out)
        assert report["passes"] == 1, report
        assert report["manifest_position"] == "last", report
        check_restored(sb, objects)


def test_manifest_last_over_budget_stages_on_disk_in_one_pass():
    # 60 x 40 KB before the manifest with a 1 MiB budget: into a directory the
    # objects are staged on disk as they arrive and moved into place when the
    # manifest comes, so the archive is read once and nothing stays staged.
    objects = _pipeline_objects()
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=TARGETS)
        res = process(a, sb.out, "--max-memory", "1M", "--workers", "2", json_report=True)
        expect_exit(res, 0)
        report = json.loads(res.out)
        assert report["passes"] == 1, report
        assert report["objects_written"] == len(objects), report
        assert report["puts_written"] == 2 * len(objects), report  # two targets in this region
        check_restored(sb, objects)
        leftovers = [n for n in os.listdir(sb.out) if n.startswith(".trs-staging")]
        assert leftovers == [], leftovers


def test_staged_objects_link_new_keys_and_replace_old_ones_and_symlinks():
    # Staged objects go into place by a link (a new key) or a rename (a key
    # that exists): the second restore replaces every object, and a symlink
    # planted at one key, without following it; each object is one regular
    # file with its own metadata, and no staged name stays linked to it.
    first = _pipeline_objects(20)
    second = [dict(o, data=rnd(40_000, 900 + i), creation_time="2025-01-23 10:16:00") for i, o in enumerate(first)]
    with sandbox() as sb:
        expect_exit(process(sb.archive(name="v1.tar.zst", objects=first, targets=TARGETS), sb.out,
                            "--max-memory", "1M", "--workers", "2"), 0, "first run")
        outside = os.path.join(sb.root, "outside.bin")
        with open(outside, "wb") as f:
            f.write(b"not yours")
        planted = util.object_path(sb.out, "dest-a", "obj-007.bin")
        os.unlink(planted)
        os.symlink(outside, planted)
        res = process(sb.archive(name="v2.tar.zst", objects=second, targets=TARGETS), sb.out,
                      "--max-memory", "1M", "--workers", "2", json_report=True)
        expect_exit(res, 0, "second run")
        assert json.loads(res.out)["objects_written"] == len(second)
        with open(outside, "rb") as f:
            assert f.read() == b"not yours"
        for o in second:
            key = o["relative_key"].split("/")[-1]
            for bucket in IN_REGION:
                path = util.object_path(sb.out, bucket, key)
                st = os.lstat(path)
                assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1, (path, st)
                with open(path, "rb") as f:
                    assert f.read() == o["data"], path
                assert sb.meta(bucket, key)["md5"] == util.md5(o["data"]), path
        assert [n for n in os.listdir(sb.out) if n.startswith(".trs-staging")] == []


def test_staged_object_with_a_bad_md5_is_not_published():
    objects = _pipeline_objects(5)
    objects[2]["wrong_etag"] = True
    with sandbox() as sb:
        a = sb.archive(objects=objects, targets=TARGETS)
        res = process(a, sb.out, json_report=True)
        expect_exit(res, 1)
        report = json.loads(res.out)
        assert report["objects_failed"] == 1 and report["objects_written"] == 4, report
        assert not os.path.exists(util.object_path(sb.out, "dest-a", objects[2]["relative_key"].split("/")[-1]))
        assert [n for n in os.listdir(sb.out) if n.startswith(".trs-staging")] == []


def test_newer_then_older_into_a_directory_leaves_the_newer_whatever_the_path():
    # Small objects (held, or spooled before the manifest), a large one staged in the directory,
    # and the same archive manifest-first (streamed): the older archive writes nothing over the
    # newer, the newer again writes nothing (current), a newest one replaces them all.
    def objs(when, tag, seed):
        return [{"relative_key": "small.txt", "data": b"%s small" % tag, "creation_time": when},
                {"relative_key": "big.bin", "data": rnd(9 << 20, seed), "creation_time": when}]
    with sandbox() as sb:
        for where in ("last", "first"):
            out = os.path.join(sb.root, "out-" + where)
            def run(name, when, tag, seed):
                a = mkarchive.build_archive(sb.path("%s-%s.tar.zst" % (name, where)), objs(when, tag, seed),
                                            [{"region": REGION, "bucket": "dest-a"}], manifest_position=where)
                res = process(a, out, json_report=True)
                expect_exit(res, 0, name)
                return res.json()
            rep = run("new", "2025-01-23 10:05:00", b"new", 1)
            assert rep["objects_written"] == 2, rep
            rep = run("old", "2025-01-23 10:00:00", b"old", 2)
            assert rep["objects_written"] == 0 and rep["objects_kept_newer"] == 2, rep
            rep = run("new", "2025-01-23 10:05:00", b"new", 1)
            assert rep["objects_written"] == 0 and rep["objects_current"] == 2, rep
            with open(os.path.join(out, "dest-a", "small.txt"), "rb") as f:
                assert f.read() == b"new small"
            with open(os.path.join(out, "dest-a", "big.bin"), "rb") as f:
                assert f.read() == rnd(9 << 20, 1)
            rep = run("newest", "2025-01-23 10:06:00", b"newest", 3)
            assert rep["objects_written"] == 2, rep
            with open(os.path.join(out, "dest-a", "big.bin"), "rb") as f:
                assert f.read() == rnd(9 << 20, 3)
            assert sorted(os.listdir(os.path.join(out, "dest-a"))) == ["big.bin", "small.txt"]
            assert [n for n in os.listdir(out) if n.startswith(".trs-")] == []
