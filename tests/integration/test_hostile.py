# SPDX-License-Identifier: Apache-2.0
"""Hostile input for `trs process --dest file://DIR`: every case must end
with a clear error on stderr naming the archive, a non-zero exit (3 for an
unreadable archive, 1 for per-object failures), never a signal, nothing
written outside DIR, within a time bound."""

import json
import os
import random
import struct
import subprocess
import uuid

import mkarchive
import util
from util import OTHER_REGION as OTHER, REGION, expect_exit, process, sandbox

TIME_BOUND = 60          # seconds for any single hostile run
MEM_BOUND_KB = 200 * 1024

TARGETS = [{"region": REGION, "bucket": "dest-a"},
           {"region": REGION, "bucket": "dest-b"}]


def good_objects(n=3):
    return [{"relative_key": "good/%d.txt" % i, "source_prefix": "g",
             "object_name": "%d.txt" % i, "data": b"good %d\n" % i}
            for i in range(n)]


def valid_archive_bytes(**kw):
    objs = good_objects() + [{"relative_key": "big.bin",
                              "data": random.Random(5).randbytes(1 << 20)}]
    return mkarchive.build_archive(None, objects=objs, targets=TARGETS, **kw)


def hostile_run(sb, archive_path, code, *extra, name_in_err=True,
                bound=TIME_BOUND, json_report=False):
    """Run trs on archive_path; check exit code, no signal, error names the
    archive, nothing outside DIR, time bound. Returns the Result."""
    before = sb.snapshot_outside()
    res = process(archive_path, sb.out, *extra, timeout=bound * 3,
                  json_report=json_report)
    expect_exit(res, code)
    assert res.elapsed < bound, "took %.1fs (bound %ds)" % (res.elapsed, bound)
    if name_in_err:
        base = os.path.basename(archive_path)
        assert base in res.err, "stderr does not name the archive %r: %r" % (
            base, util._clip(res.err))
    after = sb.snapshot_outside()
    assert after == before, "written outside DIR: %r" % sorted(after - before)
    return res


def unreadable(data, name="hostile.tar.zst", must_mention=None):
    with sandbox() as sb:
        p = sb.write(name, data)
        res = hostile_run(sb, p, 3)
        assert not sb.result(), "objects written from an unreadable archive: " \
            "%r" % sorted(sb.result())
        if must_mention:
            low = res.err.lower()
            assert any(m in low for m in must_mention), \
                "error mentions none of %r: %r" % (must_mention,
                                                    util._clip(res.err))
        return res


# ------------------------------------------------------------ unreadable

def test_random_bytes():
    unreadable(random.Random(1).randbytes(1 << 20), "random.tar.zst")


def test_empty_file():
    unreadable(b"", "empty.tar.zst")


def test_zstd_of_garbage():
    unreadable(mkarchive.zstd_compress(random.Random(2).randbytes(1 << 20)),
               "garbage.tar.zst")


def test_zstd_of_text_not_tar():
    unreadable(mkarchive.zstd_compress(b"hello, this is not a tar\n" * 1000),
               "text.tar.zst")


def test_truncated_stream():
    z = valid_archive_bytes()
    unreadable(z[:len(z) // 2], "truncated.tar.zst")


def test_truncated_after_header():
    z = valid_archive_bytes()
    unreadable(z[:6], "six-bytes.tar.zst")


def test_corrupted_frame():
    z = bytearray(valid_archive_bytes())
    mid = len(z) // 2
    for i in range(mid, mid + 64):
        z[i] ^= 0xA5
    unreadable(bytes(z), "corrupt.tar.zst")


def test_no_manifest():
    data = mkarchive.build_archive(None, objects=good_objects(),
                                   targets=TARGETS, include_manifest=False)
    unreadable(data, "nomanifest.tar.zst", must_mention=["manifest"])


def test_manifest_not_json():
    data = mkarchive.build_archive(None, objects=good_objects(),
                                   targets=TARGETS,
                                   manifest_raw=b"{this is: not json,,,")
    unreadable(data, "notjson.tar.zst", must_mention=["manifest", "json"])


def test_manifest_not_an_object():
    data = mkarchive.build_archive(None, objects=good_objects(),
                                   targets=TARGETS, manifest_raw=b"[1, 2, 3]")
    unreadable(data, "array.tar.zst", must_mention=["manifest"])


def test_manifest_nested_200000_deep():
    raw = b"[" * 200000 + b"]" * 200000
    data = mkarchive.build_archive(None, objects=good_objects(),
                                   targets=TARGETS, manifest_raw=raw)
    unreadable(data, "deep.tar.zst")


def test_manifest_nested_inside_targets():
    raw = b'{"targets": ' + b'[{"a":' * 100000 + b'1' + b'}]' * 100000 + \
        b', "objects": []}'
    data = mkarchive.build_archive(None, objects=good_objects(),
                                   targets=TARGETS, manifest_raw=raw)
    with sandbox() as sb:
        p = sb.write("deep2.tar.zst", data)
        # a depth limit (3) or a well-formed manifest with useless targets
        # (0): either way no crash and no stack exhaustion
        hostile_run(sb, p, (0, 1, 3), name_in_err=False)


def test_manifest_nested_200000_deep_in_unknown_field():
    # unknown fields are ignored, so a parser may accept this (0, the good
    # objects written) or refuse it by a depth limit (3); it must not crash
    objs = good_objects()
    m = mkarchive.manifest_dict(objs, TARGETS)
    body = json.dumps(m).encode()
    raw = body[:-1] + b', "x-future": ' + b"[" * 200000 + b"]" * 200000 + \
        b', "y": ' + b'{"a":' * 100000 + b"1" + b"}" * 100000 + b"}"
    data = mkarchive.build_archive(None, objects=objs, targets=TARGETS,
                                   manifest_raw=raw)
    with sandbox() as sb:
        p = sb.write("deep3.tar.zst", data)
        res = hostile_run(sb, p, (0, 3), name_in_err=False)
        if res.returncode == 0:
            want = {mkarchive.destination_key(o): o["data"] for o in objs}
            assert sb.result().get("dest-a") == want, sb.result()
        else:
            assert "deep3.tar.zst" in res.err, util._clip(res.err)


def _manifest_with(mutate):
    objs = good_objects()
    m = mkarchive.manifest_dict(objs, TARGETS)
    mutate(m)
    return mkarchive.build_archive(None, objects=objs, targets=TARGETS,
                                   manifest_raw=json.dumps(m).encode())


def _wrong_type(mutate, field, name, codes=(3,)):
    with sandbox() as sb:
        p = sb.write(name, _manifest_with(mutate))
        res = hostile_run(sb, p, codes)
        assert field in res.err, "error does not name the field %r: %r" % (
            field, util._clip(res.err))
        return sb, res


def test_wrong_type_size_string():
    # a per-object field: a whole-manifest error (3) or that object failed (1)
    def mut(m):
        m["objects"][0]["size"] = str(m["objects"][0]["size"])
    _wrong_type(mut, "size", "size-string.tar.zst", (1, 3))


def test_wrong_type_tags_not_list():
    def mut(m):
        m["objects"][1]["tags"] = "team=finance"
    _wrong_type(mut, "tags", "tags-string.tar.zst", (1, 3))


def test_wrong_type_targets_not_list():
    def mut(m):
        m["targets"] = {"region": REGION, "bucket": "dest-a"}
    _wrong_type(mut, "targets", "targets-object.tar.zst", (3,))


def test_wrong_type_objects_not_list():
    def mut(m):
        m["objects"] = "everything"
    _wrong_type(mut, "objects", "objects-string.tar.zst", (3,))


def test_negative_size():
    def mut(m):
        m["objects"][0]["size"] = -5
    _wrong_type(mut, "size", "negative-size.tar.zst", (1, 3))


def _maxrss_ok(res):
    assert res.maxrss_kb < MEM_BOUND_KB, "peak RSS %d KiB >= %d KiB" % (
        res.maxrss_kb, MEM_BOUND_KB)


def test_manifest_header_claims_8_gib_pax():
    with sandbox() as sb:
        p = sb.write("huge-pax.tar.zst",
                     mkarchive.huge_manifest_archive(8 << 30, "pax"))
        res = hostile_run(sb, p, 3)
        _maxrss_ok(res)


def test_manifest_header_claims_8_gib_gnu_base256():
    with sandbox() as sb:
        p = sb.write("huge-gnu.tar.zst",
                     mkarchive.huge_manifest_archive(8 << 30, "gnu"))
        res = hostile_run(sb, p, 3)
        _maxrss_ok(res)


def test_manifest_header_claims_8_gib_complete_objects_first():
    # objects first, then a manifest.json member claiming 8 GiB (truncated)
    objs = good_objects()
    tar = mkarchive.build_tar(objs, TARGETS, include_manifest=False)
    tar = tar.rstrip(b"\0")
    tar += b"\0" * ((-len(tar)) % 512)
    tar += mkarchive.huge_member_header("manifest.json", 8 << 30) + \
        b"{" * 100000
    with sandbox() as sb:
        p = sb.write("huge-last.tar.zst", mkarchive.zstd_compress(tar))
        res = hostile_run(sb, p, 3)
        _maxrss_ok(res)
        assert not sb.result(), sorted(sb.result())


def test_window_larger_than_2_31_refused():
    # hand-made frame header: no single-segment flag, Window_Descriptor
    # exponent 22 -> windowLog 32 (4 GiB), then one raw last block
    payload = b"x" * 100
    frame = struct.pack("<I", 0xFD2FB528) + bytes([0x00, (32 - 10) << 3])
    frame += struct.pack("<I", (len(payload) << 3) | 1)[:3] + payload
    res = unreadable(frame, "bigwindow.tar.zst")
    low = res.err.lower()
    assert "window" in low or "memory" in low, util._clip(res.err)


# ------------------------------------------------------------ per object

def _escape_case(bad_objects, name, code=1):
    """Good objects + hostile ones; good ones written, nothing outside."""
    objs = good_objects() + bad_objects
    with sandbox() as sb:
        p = sb.archive(name, objects=objs, targets=TARGETS)
        res = hostile_run(sb, p, code, json_report=True)
        tree = sb.result()
        for b in ("dest-a", "dest-b"):
            for o in good_objects():
                k = mkarchive.destination_key(o)
                assert tree.get(b, {}).get(k) == o["data"], \
                    "%s/%s not written: %s" % (b, k, res.describe())
        return sb, res, tree


def test_dotdot_object_name():
    canary = "trs-escape-%s.txt" % uuid.uuid4().hex
    bad = [{"relative_key": "evil1.txt", "object_name": "../../" + canary,
            "data": b"escape"},
           {"relative_key": "evil2.txt", "object_name": "a/../../../" + canary,
            "data": b"escape"},
           {"relative_key": "evil3.txt", "source_prefix": "..",
            "object_name": canary, "data": b"escape"},
           {"relative_key": "evil4.txt", "source_prefix": "x/../..",
            "object_name": canary, "data": b"escape"}]
    sb, res, tree = _escape_case(bad, "dotdot.tar.zst")
    for d in (sb.root, os.path.dirname(sb.root), sb.out,
              os.path.join(sb.out, "dest-a")):
        assert not os.path.exists(os.path.join(d, canary)), \
            "escaped to " + os.path.join(d, canary)
    for b in tree.values():
        for k in b:
            assert canary not in k, "escaping key written as %r" % k
    rep = res.json()
    failed = {f.get("relative_key") for f in rep.get("failures", [])}
    for o in bad:
        assert o["relative_key"] in failed, "%s not in failures %r" % (
            o["relative_key"], failed)


def test_absolute_object_name():
    canary_dir = "/tmp/trs-abs-%s" % uuid.uuid4().hex
    bad = [{"relative_key": "abs1.txt", "object_name": canary_dir + "/x",
            "data": b"abs"},
           {"relative_key": "abs2.txt", "source_prefix": canary_dir,
            "object_name": "y", "data": b"abs"}]
    try:
        _escape_case(bad, "absolute.tar.zst")
        assert not os.path.exists(canary_dir), "wrote into %s" % canary_dir
    finally:
        if os.path.isdir(canary_dir):
            import shutil
            shutil.rmtree(canary_dir, ignore_errors=True)


def test_key_over_1024_bytes():
    bad = [{"relative_key": "toolong.txt", "object_name": "n" * 1100,
            "data": b"long key"}]
    sb, res, tree = _escape_case(bad, "longkey.tar.zst")
    for b in tree.values():
        assert not any(len(k.encode()) > 1024 for k in b), "over-long key written"
    fails = res.json().get("failures", [])
    assert any(f.get("relative_key") == "toolong.txt" for f in fails), fails


def test_key_1024_bytes_multibyte_over_limit():
    # 400 x 3-byte char = 1200 bytes of UTF-8 but only 400 characters
    bad = [{"relative_key": "utf8long.txt", "object_name": "\u65e5" * 400,
            "data": b"long utf8 key"}]
    _escape_case(bad, "utf8longkey.tar.zst")


def test_members_outside_objects_are_skipped():
    canary = "trs-outside-%s.txt" % uuid.uuid4().hex
    extra = [{"name": "etc/passwd", "data": b"root:x:0:0\n"},
             {"name": "../" + canary, "data": b"dotdot member"},
             {"name": "/tmp/" + canary, "data": b"absolute member"},
             {"name": "objects.txt", "data": b"not under objects/"},
             {"name": "objects/../" + canary, "data": b"sneaky",
              "position": "after"},
             {"name": "other/manifest.json", "data": b"{}"}]
    objs = good_objects()
    with sandbox() as sb:
        p = sb.archive("outside.tar.zst", objects=objs, targets=TARGETS,
                       extra_members=extra)
        before = sb.snapshot_outside()
        res = process(p, sb.out)
        expect_exit(res, 0)
        assert sb.snapshot_outside() == before
        assert not os.path.exists("/tmp/" + canary)
        tree = sb.result()
        want = {mkarchive.destination_key(o): o["data"] for o in objs}
        for b in ("dest-a", "dest-b"):
            assert tree.get(b) == want, "%s: %r" % (b, sorted(tree.get(b, {})))
        for name in ("etc/passwd", "objects.txt", "other/manifest.json"):
            assert name in res.err, "no warning naming %r: %s" % (
                name, util._clip(res.err))


def test_links_and_special_members_are_skipped():
    extra = [{"name": "objects/g", "type": "symlink", "linkname": "/tmp"},
             {"name": "objects/passwd", "type": "symlink",
              "linkname": "../../../../etc/passwd"},
             {"name": "objects/hl", "type": "hardlink",
              "linkname": "/etc/passwd"},
             {"name": "objects/fifo", "type": "fifo"},
             {"name": "objects/chr", "type": "chr"},
             {"name": "objects/blk", "type": "blk"},
             {"name": "objects/after-link", "type": "symlink",
              "linkname": "good", "position": "after"}]
    objs = good_objects()
    with sandbox() as sb:
        p = sb.archive("links.tar.zst", objects=objs, targets=TARGETS,
                       extra_members=extra)
        res = process(p, sb.out)
        expect_exit(res, 0)
        tree = sb.result()
        want = {mkarchive.destination_key(o): o["data"] for o in objs}
        for b in ("dest-a", "dest-b"):
            assert tree.get(b) == want, "%s: %r" % (b, tree.get(b))


def test_manifest_entry_pointing_at_symlink_fails():
    # the manifest names a member that is a symlink: never followed
    objs = good_objects() + [{"relative_key": "link.txt", "data": b"x",
                              "member": False}]
    extra = [{"name": "objects/link.txt", "type": "symlink",
              "linkname": "/etc/passwd"}]
    with sandbox() as sb:
        p = sb.archive("symentry.tar.zst", objects=objs, targets=TARGETS,
                       extra_members=extra)
        res = hostile_run(sb, p, 1)
        for b in sb.result().values():
            assert "link.txt" not in b, "symlink entry written"


def test_an_entry_held_as_a_link_or_device_says_so():
    # it was reported as "the archive does not hold it (lost upstream)",
    # which is wrong: the archive holds it, as a link
    held = {"sym.txt": ("symlink", "as a symbolic link"),
            "hard.txt": ("hardlink", "as a hard link"),
            "fifo.txt": ("fifo", "as a device, FIFO or socket")}
    for position in ("before", "after"):   # the manifest last (usual), or first
        objs = good_objects() + [{"relative_key": k, "data": b"x", "member": False} for k in held]
        objs.append({"relative_key": "gone.txt", "data": b"x", "member": False})
        extra = [{"name": "objects/" + k, "type": t, "linkname": "/etc/passwd" if t != "fifo" else ""}
                 for k, (t, _) in held.items()]
        with sandbox() as sb:
            p = sb.archive("held.tar.zst", objects=objs, targets=TARGETS, extra_members=extra,
                           manifest_position="last" if position == "before" else "first")
            res = hostile_run(sb, p, 1, json_report=True)
            messages = {}
            for f in res.json()["failures"]:
                messages.setdefault(f["relative_key"], set()).add(f["message"].split(": ", 1)[1])
            assert set(messages) == set(held) | {"gone.txt"}, messages
            for k, (_, words) in held.items():
                assert len(messages[k]) == 1, messages[k]
                msg = messages[k].pop()
                assert msg.startswith("the archive holds this object " + words), (position, k, msg)
                assert "lost upstream" not in msg, msg
            assert messages["gone.txt"] == {
                "the manifest lists this object but the archive does not hold it (lost upstream)"}, messages
            for b in sb.result().values():
                assert not set(b) & set(held), "a link's entry written: %r" % sorted(b)


def test_duplicate_member_names():
    # the same objects/<key> twice: whatever wins must match size and MD5
    objs = good_objects()
    extra = [{"name": "objects/good/0.txt", "data": b"impostor bytes!",
              "position": "after"}]
    with sandbox() as sb:
        p = sb.archive("dup.tar.zst", objects=objs, targets=TARGETS,
                       extra_members=extra)
        res = process(p, sb.out)
        expect_exit(res, (0, 1))
        got = sb.result().get("dest-a", {}).get("g/0.txt")
        assert got in (None, b"good 0\n"), "impostor bytes written: %r" % got


def test_relative_key_with_dotdot():
    canary = "trs-rk-%s.txt" % uuid.uuid4().hex
    objs = good_objects() + [{"relative_key": "../" + canary,
                              "object_name": "fine.txt", "data": b"rk"}]
    with sandbox() as sb:
        p = sb.archive("rkdotdot.tar.zst", objects=objs, targets=TARGETS)
        before = sb.snapshot_outside()
        res = process(p, sb.out)
        expect_exit(res, (0, 1))
        assert sb.snapshot_outside() == before
        assert not os.path.exists(os.path.join(os.path.dirname(sb.root),
                                               canary))


# ------------------------------------------------------------ bombs

def test_decompression_bomb_max_ratio():
    with sandbox() as sb:
        z = mkarchive.zero_bomb_archive(200 << 20, TARGETS[:1])
        assert len(z) < 64 << 10, "bomb is %d bytes" % len(z)
        p = sb.write("bomb.tar.zst", z)
        res = hostile_run(sb, p, 3, "--max-ratio", "100")
        assert "ratio" in (res.err + res.out).lower(), util._clip(res.err)
        _maxrss_ok(res)
        assert not sb.result().get("dest-a"), "bomb object written"


# ------------------------------------------------------------ targets

def _failures_by_bucket(res):
    by = {}
    for f in res.json().get("failures", []):
        by.setdefault(f["bucket"], []).append(f["message"])
    return by


def test_kms_key_ids_s3_would_refuse_fail_their_target_alone():
    # cut at the NUL it names another key; a blank reaches S3 as no key at
    # all; 9,000 characters are a 9 KB header, past S3's 8 KB
    bad = {"kms-nul": ("alias/x\u0000y", "kms_key_arn holds a NUL byte"),
           "kms-blank": (" ", "kms_key_arn holds a blank"),
           "kms-control": ("alias/a\u0007b", "kms_key_arn holds a control character"),
           "kms-long": ("arn:aws:kms:%s:111122223333:alias/%s" % (REGION, "a" * 9000),
                        "longer than the 2048 characters")}
    good_kms = "arn:aws:kms:%s:111122223333:alias/%s" % (REGION, "a" * 1900)
    targets = [{"region": REGION, "bucket": b, "kms_key_arn": k} for b, (k, _) in bad.items()]
    targets.append({"region": REGION, "bucket": "kms-good", "kms_key_arn": good_kms})
    objs = good_objects()
    with sandbox() as sb:
        p = sb.archive("kms.tar.zst", objects=objs, targets=targets)
        res = hostile_run(sb, p, 1, json_report=True)
        tree = sb.result()
        want = {mkarchive.destination_key(o): o["data"] for o in objs}
        assert tree == {"kms-good": want}, sorted(tree)
        for key in want:
            assert sb.meta("kms-good", key).get("kms_key_id") == good_kms
        failures = _failures_by_bucket(res)
        assert set(failures) == set(bad), sorted(failures)
        for bucket, (_, why) in bad.items():
            assert len(failures[bucket]) == len(objs), failures[bucket]
            assert all(why in m for m in failures[bucket]), failures[bucket]
        assert res.json()["objects_failed"] == len(objs)


def test_backup_target_with_a_refused_kms_key_id_is_not_stored():
    targets = [{"region": REGION, "bucket": "dest-a"},
               {"region": REGION, "bucket": "dest-backup", "backup": True,
                "kms_key_arn": "alias/x\u0000y"}]
    objs = good_objects()
    with sandbox() as sb:
        p = sb.archive("kms-backup.tar.zst", objects=objs, targets=targets)
        res = hostile_run(sb, p, 1, "--catalog-bucket", "catalog", json_report=True)
        tree = sb.result()
        assert tree == {"dest-a": {mkarchive.destination_key(o): o["data"] for o in objs}}, sorted(tree)
        failures = _failures_by_bucket(res)
        assert list(failures) == ["dest-backup"], failures
        assert "kms_key_arn holds a NUL byte" in failures["dest-backup"][0], failures


def test_target_repeated_65536_times_is_written_once_with_one_warning():
    objs = good_objects()
    targets = [{"region": REGION, "bucket": "dest-a"}] * 65536
    with sandbox() as sb:
        p = sb.archive("repeated.tar.zst", objects=objs, targets=targets)
        res = hostile_run(sb, p, 0, name_in_err=False, json_report=True)
        assert sb.result() == {"dest-a": {mkarchive.destination_key(o): o["data"] for o in objs}}
        rep = res.json()
        # one put per object: it was 65,536 (written, or found already current)
        puts = rep["puts_written"] + rep["puts_current"] + rep["puts_kept_newer"] + rep["puts_failed"]
        assert rep["puts_written"] == puts == len(objs), rep
        warnings = [line for line in res.err.splitlines() if "repeats" in line]
        assert len(warnings) == 1, warnings
        assert "targets[1] repeats targets[0] (region '%s', bucket 'dest-a'); 65535 repeats" % REGION \
            in warnings[0], warnings


def test_more_targets_than_the_limit_refuse_the_archive_naming_it():
    # 65,536 passed and 65,537 were refused as "more than 100000"; the limit
    # is TRS_MANIFEST_MAX_TARGETS distinct targets (docs/formats.md)
    for count, code in ((1000, 0), (1001, 3), (65537, 3)):
        targets = [{"region": OTHER, "bucket": "b-%d" % i} for i in range(count - 1)]
        targets.append({"region": REGION, "bucket": "dest-a"})
        with sandbox() as sb:
            p = sb.archive("targets-%d.tar.zst" % count, objects=good_objects(), targets=targets)
            res = hostile_run(sb, p, code, name_in_err=code != 0)
            if code:
                assert "more than 1000 targets (TRS_MANIFEST_MAX_TARGETS" in res.err, res.describe()
                assert not sb.result()
            else:
                assert set(sb.result()) == {"dest-a"}


# ------------------------------------------------------------ repeated warnings

def _ustar(name, data=b"", typeflag=b"0"):
    """One ustar member (header and padded data): built by hand, as tarfile
    takes half a minute for 400,000 members."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % len(data)
    h[136:148] = b"%011o\0" % 1700000000
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    h[257:265] = b"ustar\x0000"
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + data + b"\0" * (-len(data) % 512)


def test_400000_unmatched_members_and_entries_log_a_bounded_number_of_lines():
    # 400,000 members without an entry and 400,000 entries without a member:
    # a line for each was 800,000 lines; now the first 100 members and a line
    # with the count of the rest, and one line for the one cause of the 400,000
    # failed puts, while the report counts them all
    n = 400000
    good = b"the one object here\n"
    entries = ['{"object_name": "good.txt", "size": %d}' % len(good)]
    entries += ['{"object_name": "k%d"}' % i for i in range(n)]
    manifest = ('{"targets": [{"region": "%s", "bucket": "dest-a"}], "objects": [%s]}'
                % (REGION, ", ".join(entries))).encode()
    with sandbox() as sb:
        path = sb.path("unmatched.tar.zst")
        with open(path, "wb") as out:
            z = subprocess.Popen(["zstd", "-q", "-c", "-3", "-T1"], stdin=subprocess.PIPE, stdout=out)
            for start in range(0, n, 20000):
                z.stdin.write(b"".join(_ustar(b"objects/u%d" % i) for i in range(start, start + 20000)))
            z.stdin.write(_ustar(b"objects/good.txt", good) + _ustar(b"manifest.json", manifest) + b"\0" * 1024)
            z.stdin.close()
            assert z.wait() == 0
        assert os.path.getsize(path) < 4 << 20
        res = hostile_run(sb, path, 1, "--log-format", "text")
        assert sb.result() == {"dest-a": {"good.txt": good}}
        lines = [line for line in res.err.splitlines() if line.startswith("trs: ")]
        assert len(lines) <= 2 * 100 + 10, "%d log lines: %s" % (len(lines), util._clip(res.err))
        unlisted = [line for line in lines if "member has no manifest entry" in line]
        lost = [line for line in lines if "archive does not hold it (lost upstream)" in line]
        # the members, 100 lines and a count; the failed puts, one cause said once with its count
        assert len(unlisted) == 100 and len(lost) == 1, (len(unlisted), len(lost))
        assert "400000 objects failed to bucket dest-a for one cause" in lost[0], lost[0]
        assert any("399900 more lines about members skipped for want of a manifest entry were not logged"
                   in line for line in lines), util._clip(res.err)
        # the counts stay exact
        assert "1 written, 400000 failed, 0 for other regions, 400000 members skipped" in res.err, \
            util._clip(res.err)
