# SPDX-License-Identifier: Apache-2.0
"""The demo archive examples/data/example.tar.zst restores as the README
says: every object byte for byte in both eu-west-1 buckets, nothing for the
us-east-1 target, tags kept; and examples/data/make-example.sh still makes
exactly that file."""

import io
import json
import os
import shutil
import subprocess
import tarfile

import util
from util import REGION, OTHER_REGION, expect_exit, process

EXAMPLE = os.path.join(util.REPO, "examples", "data", "example.tar.zst")
MAKE_EXAMPLE = os.path.join(util.REPO, "examples", "data", "make-example.sh")


def read_example():
    """(manifest dict, {relative_key: bytes}) straight from the archive, with
    the zstd CLI and Python's tarfile: independent of libtrs."""
    zstd = shutil.which("zstd")
    if not zstd:
        raise util.Missing("zstd CLI not installed")
    tar = subprocess.run([zstd, "-qdc", EXAMPLE], stdout=subprocess.PIPE,
                         check=True).stdout
    members = {}
    order = []
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
        all_members = tf.getmembers()
        # The source side writes PAX: a non-ASCII name travels in a PAX path.
        assert any("path" in m.pax_headers for m in all_members), \
            "no PAX path header: not the source side's tar format"
        for m in all_members:
            assert m.isfile(), "unexpected member type: %s" % m.name
            order.append(m.name)
            members[m.name] = tf.extractfile(m).read()
    assert order[-1] == "manifest.json", \
        "manifest.json is not the last member: %r" % order
    manifest = json.loads(members.pop("manifest.json"))
    prefix = "objects/"
    assert all(n.startswith(prefix) for n in members), sorted(members)
    return manifest, {n[len(prefix):]: d for n, d in members.items()}


def dest_key(entry):
    if entry.get("source_prefix"):
        return entry["source_prefix"] + "/" + entry["object_name"]
    return entry["object_name"]


def test_example_archive_is_small_and_in_the_source_format():
    assert os.path.getsize(EXAMPLE) < 50 * 1024, "example.tar.zst is too big"
    manifest, objects = read_example()
    entries = manifest["objects"]
    assert len(entries) >= 4 and len(objects) == len(entries)
    names = [e["relative_key"] for e in entries]
    assert any(n.endswith(".csv") for n in names), names
    assert any(n.endswith(".json") for n in names), names
    assert any(" " in n and any(ord(c) > 127 for c in n) for n in names), \
        "no name with a space and non-ASCII characters: %r" % names
    assert any(e.get("tags") for e in entries), "no object with tags"
    regions = {t["region"] for t in manifest["targets"]}
    assert regions == {REGION, OTHER_REGION}, regions
    buckets = {t["bucket"] for t in manifest["targets"]
               if t["region"] == REGION}
    assert "example-bucket" in buckets, buckets


def test_example_archive_restores_byte_for_byte():
    manifest, objects = read_example()
    in_region = [t["bucket"] for t in manifest["targets"]
                 if t["region"] == REGION]
    elsewhere = [t["bucket"] for t in manifest["targets"]
                 if t["region"] != REGION]
    with util.tempdir() as dest:
        res = process(EXAMPLE, dest, "--region", REGION, "--json",
                      region=None)
        expect_exit(res, 0, "trs process example.tar.zst")
        report = res.json()
        tree = util.read_tree(dest)
        assert sorted(tree) == sorted(in_region), \
            "buckets %r, want %r (nothing for %r)" % (sorted(tree), in_region,
                                                      elsewhere)
        for bucket in in_region:
            got = tree[bucket]
            want = {dest_key(e): objects[e["relative_key"]]
                    for e in manifest["objects"]}
            assert sorted(got) == sorted(want), "%s: keys %r, want %r" % (
                bucket, sorted(got), sorted(want))
            for key, data in want.items():
                assert got[key] == data, "%s/%s differs from the archive" % (
                    bucket, key)
        for e in manifest["objects"]:
            if not e.get("tags"):
                continue
            for bucket in in_region:
                meta = util.read_meta(dest, bucket, dest_key(e))
                tags = meta.get("tags", {})
                for tag in e["tags"]:
                    for k, v in tag.items():
                        assert tags.get(k) == v, \
                            "%s/%s: tag %s=%s not kept: %r" % (
                                bucket, dest_key(e), k, v, tags)
        n = len(manifest["objects"])
        assert report["objects_total"] == n and report["objects_written"] == n, \
            report
        assert report["puts_written"] == n * len(in_region), report


def test_make_example_regenerates_the_committed_archive():
    if not shutil.which("zstd"):
        raise util.Missing("zstd CLI not installed")
    with util.tempdir() as d:
        out = os.path.join(d, "example.tar.zst")
        p = subprocess.run(["sh", MAKE_EXAMPLE, out], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        assert p.returncode == 0, "make-example.sh failed: %s" % \
            p.stdout.decode(errors="replace")
        with open(out, "rb") as f:
            fresh = f.read()
        with open(EXAMPLE, "rb") as f:
            committed = f.read()
        if fresh != committed:
            # zstd's bytes may change between zstd versions; the tar inside
            # must not.
            a = subprocess.run(["zstd", "-qdc", out], stdout=subprocess.PIPE,
                               check=True).stdout
            b = subprocess.run(["zstd", "-qdc", EXAMPLE],
                               stdout=subprocess.PIPE, check=True).stdout
            assert a == b, "make-example.sh no longer makes example.tar.zst"
