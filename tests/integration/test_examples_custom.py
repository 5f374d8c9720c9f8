# SPDX-License-Identifier: Apache-2.0
"""The backend examples, built against the installed library as a user
would (`cc prog.c $(pkg-config --cflags --libs libtrs ...)`), doing what
they say: examples/tar_stdout_backend.c (a custom storage backend behind
trs_process) and examples/custom_queue.c (a custom queue backend behind
trs_serve). And the installed prefix is relocatable: moved elsewhere, trs
still runs and the examples still build from its pkg-config file."""

import io
import os
import shutil
import subprocess
import tarfile

import mkarchive
import util
from util import REGION, OTHER_REGION
from test_pkgconfig import EXAMPLES, assert_uses_installed_library, cc, installed, run

MIB = 1 << 20


def build(inst, name, workdir, extra_pkgs="", env=None):
    src = os.path.join(workdir, name + ".c")
    shutil.copy(os.path.join(EXAMPLES, name + ".c"), src)
    cmd = "%s -std=c11 -Wall -Wextra -Werror -pedantic %s.c $(pkg-config --cflags --libs libtrs %s) -o %s" % (
        cc(), name, extra_pkgs, name)
    p = subprocess.run(["sh", "-c", cmd], cwd=workdir, env=env or inst.env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.returncode == 0, "`%s` failed: %s" % (cmd, p.stdout.decode(errors="replace")[-2000:])
    return os.path.join(workdir, name)


def rnd(n, seed):
    import random
    return random.Random(seed).randbytes(n)


def test_tar_stdout_backend_streams_every_restored_object_with_its_bytes():
    inst = installed()
    if subprocess.run(["pkg-config", "--exists", "libarchive"]).returncode != 0:
        raise util.Missing("libarchive's pkg-config file is not installed")
    objects = [
        {"relative_key": "reports/q1 final.csv", "source_prefix": "reports", "object_name": "q1 final.csv",
         "tags": [{"team": "finance"}], "data": b"id,amount\n1,10\n"},
        {"relative_key": "uni/\u65e5\u672c.txt", "source_prefix": "uni", "object_name": "\u65e5\u672c.txt",
         "data": "\u3053\u3093\u306b\u3061\u306f\n".encode()},
        # Above the library's in-memory size (8 MiB) in a manifest-first
        # archive (nothing held from a first pass): streamed to the first
        # target, then copy() to the second, which the example writes as a
        # hard-link member.
        {"relative_key": "big.bin", "data": rnd(9 * MIB, 1)},
        {"relative_key": "empty", "data": b""},
    ]
    targets = [{"region": REGION, "bucket": "dest-a"},
               {"region": REGION, "bucket": "dest-b", "storage_class": "STANDARD_IA"},
               {"region": OTHER_REGION, "bucket": "elsewhere"}]
    with util.tempdir() as d:
        exe = build(inst, "tar_stdout_backend", d, "libarchive")
        assert_uses_installed_library(inst, exe)
        archive = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(archive, objects, targets, level=1, manifest_position="first")
        p = run(inst, [exe, archive, REGION])
        assert p.returncode == 0, "exit %d: %s" % (p.returncode, p.stderr.decode(errors="replace")[-1500:])
        assert b"4 objects written (8 puts)" in p.stderr, p.stderr
        with tarfile.open(fileobj=io.BytesIO(p.stdout), mode="r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
            want = {"%s/%s" % (t["bucket"], mkarchive.destination_key(o)): (o, t)
                    for o in objects for t in targets[:2]}
            assert sorted(members) == sorted(want), "tar lists %r, want %r" % (sorted(members), sorted(want))
            for name, (o, t) in want.items():
                f = tar.extractfile(members[name])  # follows a hard link to its target's data
                assert f is not None, "%s has no data" % name
                assert f.read() == o["data"], "%s differs" % name
                pax = members[name].pax_headers
                assert not [k for k in pax if k.startswith("LIBARCHIVE.")], pax  # SCHILY only
                want_class = t.get("storage_class") or o.get("storage_class") or "STANDARD"
                assert pax.get("SCHILY.xattr.user.trs.storage_class", "STANDARD") == want_class, (name, pax)
                for tag in o.get("tags", []):
                    for k, v in tag.items():
                        assert pax.get("SCHILY.xattr.user.trs.tag." + k) == v, (name, pax)
            assert any(m.islnk() for m in members.values()), "no copy() became a hard link"

        # An unreadable archive: exit 3, and still a valid (empty) tar stream.
        bad = os.path.join(d, "bad.tar.zst")
        with open(bad, "wb") as f:
            f.write(b"not zstd")
        p = run(inst, [exe, bad, REGION])
        assert p.returncode == 3, "exit %d for garbage: %s" % (p.returncode, p.stderr)
        with tarfile.open(fileobj=io.BytesIO(p.stdout), mode="r:") as tar:
            assert tar.getmembers() == [], tar.getnames()


def event(bucket, *keys):
    import json
    import urllib.parse
    return json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": bucket},
                                           "object": {"key": urllib.parse.quote_plus(k)}}} for k in keys]})


def test_custom_queue_restores_the_archives_named_on_stdin():
    inst = installed()
    with util.tempdir() as d:
        exe = build(inst, "custom_queue", d)
        assert_uses_installed_library(inst, exe)
        staging, dest = os.path.join(d, "staging"), os.path.join(d, "restored")
        os.makedirs(os.path.join(staging, "stg"))
        targets = [{"region": REGION, "bucket": "dest-a"}, {"region": OTHER_REGION, "bucket": "elsewhere"}]
        archives = {
            "in/one.tar.zst": [{"relative_key": "a/one.txt", "data": b"one", "tags": [{"k": "v"}]}],
            "in/two words.tar.zst": [{"relative_key": "two.bin", "data": rnd(300_000, 2)}],
            "in/three.tar.zst": [{"relative_key": "x/three.txt", "source_prefix": "p", "object_name": "three.txt",
                                  "data": b"three"}],
        }
        for key, objs in archives.items():
            path = os.path.join(staging, "stg", key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            mkarchive.build_archive(path, objs, targets, level=1)
        lines = [
            event("stg", "in/one.tar.zst"),                               # message 1
            event("stg", "in/two words.tar.zst", "in/three.tar.zst"),     # message 2: two archives
            '{"Service":"Amazon S3","Event":"s3:TestEvent"}',             # message 3: deleted without work
            "this is not an event",                                       # message 4: poison
            event("stg", "in/one.tar.zst"),                               # message 5: a redelivery; already gone
        ]
        p = run(inst, [exe, staging, dest, REGION], input=("\n".join(lines) + "\n").encode())
        out = p.stdout.decode().splitlines()
        err = p.stderr.decode(errors="replace")
        # The poison message comes back after its 1 s visibility timeout,
        # three times, then goes to the dead-letter list: exit 1.
        assert p.returncode == 1, "exit %d: %s %s" % (p.returncode, out, err[-2000:])
        assert sorted(out) == ["dead-letter 4", "deleted 1", "deleted 2", "deleted 3", "deleted 5"], (out, err[-1500:])
        assert err.count("poison message left") == 3, err[-2000:]
        assert "4 messages deleted, 1 dead-lettered" in err, err[-500:]
        tree = util.read_tree(dest)
        assert sorted(tree) == ["dest-a"], sorted(tree)
        want = {mkarchive.destination_key(o): o["data"] for objs in archives.values() for o in objs}
        assert tree["dest-a"] == want, "restored %r, want %r" % (sorted(tree["dest-a"]), sorted(want))
        # Restored archives are removed from staging, as trs serve does.
        assert util.read_tree(staging) in ({}, {"stg": {}}), util.read_tree(staging)


def test_a_backend_outside_the_library_stages_early_objects_and_restores_in_one_pass():
    """examples/staging_backend.c: the version-4 stage_* members. In a manifest-last archive an object
    above the library's in-memory size (8 MiB) cannot be held until the manifest comes: without staging
    it takes a second pass over the archive; staged, it is written once and moved into place."""
    inst = installed()
    small = [{"relative_key": "s/%d.txt" % i, "data": rnd(1000 + i, 10 + i)} for i in range(5)]
    big = [{"relative_key": "big/one.bin", "data": rnd(9 * MIB, 3)}]
    targets = [{"region": REGION, "bucket": "dest-a"}, {"region": REGION, "bucket": "dest-b"},
               {"region": OTHER_REGION, "bucket": "elsewhere"}]
    with util.tempdir() as d:
        exe = build(inst, "staging_backend", d)
        assert_uses_installed_library(inst, exe)
        archive = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(archive, small + big, targets, level=1, manifest_position="last")
        dest = os.path.join(d, "restored")
        p = run(inst, [exe, archive, dest, REGION])
        out, err = p.stdout.decode(), p.stderr.decode(errors="replace")
        assert p.returncode == 0, "exit %d: %s %s" % (p.returncode, out, err[-1500:])
        fields = dict(f.split("=") for f in out.split())
        # One pass; the big object staged once and published to its first target (the second is a
        # copy, a hard link here); the small ones spooled, then put to both targets.
        assert fields == {"objects_written": "6", "objects_failed": "0", "passes": "1", "staged": "1",
                          "published": "1", "puts": "10", "spool_files": "1"}, out
        tree = util.read_tree(dest)
        want = {mkarchive.destination_key(o): o["data"] for o in small + big}
        assert sorted(tree) == ["dest-a", "dest-b"], sorted(tree)
        assert tree["dest-a"] == want and tree["dest-b"] == want
        a, b = (os.stat(os.path.join(dest, bucket, mkarchive.destination_key(big[0]))) for bucket in ("dest-a", "dest-b"))
        assert a.st_ino == b.st_ino, "the second target was not copied from the published first"
        # The staging area is gone.
        assert not [n for n in os.listdir(dest) if n.startswith(".staging")], os.listdir(dest)


def test_installed_prefix_is_relocatable():
    inst = installed()
    trs = None
    for dirpath, _, files in os.walk(inst.root):
        if "trs" in files and os.path.basename(dirpath) == "bin":
            trs = os.path.join(dirpath, "trs")
    assert trs, "no bin/trs under %s" % inst.root
    prefix = os.path.dirname(os.path.dirname(trs))
    assert os.path.isfile(os.path.join(prefix, "include", "trs.h")), prefix
    with util.tempdir() as d:
        moved = os.path.join(d, "moved", "trs-prefix")
        shutil.copytree(prefix, moved, symlinks=True)
        shutil.rmtree(prefix)  # the original is gone: nothing may still point at it
        try:
            env = util.clean_env()
            env.pop("LD_LIBRARY_PATH", None)
            p = subprocess.run([os.path.join(moved, "bin", "trs"), "--version"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            assert p.returncode == 0 and b"libtrs" in p.stdout, \
                "moved trs --version: exit %d %r %r (rpath not $ORIGIN-relative?)" % (
                    p.returncode, p.stdout, p.stderr)
            pc = None
            for dirpath, _, files in os.walk(moved):
                if "libtrs.pc" in files:
                    pc = dirpath
            assert pc, "no libtrs.pc in the moved prefix"
            benv = dict(os.environ)
            benv.pop("PKG_CONFIG_SYSROOT_DIR", None)
            benv["PKG_CONFIG_PATH"] = pc
            flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libtrs"], env=benv,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout.decode()
            assert moved in flags, \
                "libtrs.pc does not point into its own prefix: %r" % flags
            exe = build(inst, "restore", d, env=benv)
            renv = dict(inst.run_env)
            renv["LD_LIBRARY_PATH"] = os.path.dirname(pc)
            archive = os.path.join(d, "a.tar.zst")
            mkarchive.build_archive(archive, [{"relative_key": "k.txt", "data": b"moved"}],
                                    [{"region": REGION, "bucket": "dest-b"}])
            r = subprocess.run([exe, archive, os.path.join(d, "out"), REGION], env=renv,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            assert r.returncode == 0, "restore built from the moved prefix: exit %d %r" % (r.returncode, r.stderr)
            assert util.read_tree(os.path.join(d, "out")) == {"dest-b": {"k.txt": b"moved"}}
        finally:
            # Put the prefix back for the other tests of this run.
            shutil.copytree(moved, prefix, symlinks=True)
