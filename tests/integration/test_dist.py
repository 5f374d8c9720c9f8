# SPDX-License-Identifier: Apache-2.0
"""A release tarball (`meson dist`) builds from a clean tree, and its trs runs."""
import glob
import os
import shutil
import subprocess
import tarfile

import util

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_meson_dist_tarball_builds_and_runs():
    if os.environ.get("TRS_SANITIZED") == "1":
        raise util.Skip("the plain build covers packaging")
    if not os.path.exists(os.path.join(REPO, ".git")):  # a directory, or a file in a git worktree
        raise util.Skip("needs a git checkout (this is an unpacked tarball)")
    if not shutil.which("meson"):
        raise util.Missing("meson not installed")
    with util.tempdir() as d:
        build = os.path.join(d, "b")
        run = lambda *a, **kw: subprocess.run(list(a), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              timeout=600, **kw)
        p = run("meson", "setup", build, REPO)
        assert p.returncode == 0, p.stdout.decode(errors="replace")[-2000:]
        p = run("meson", "dist", "-C", build, "--no-tests", "--allow-dirty", "--formats", "xztar")
        assert p.returncode == 0, p.stdout.decode(errors="replace")[-2000:]
        tarballs = glob.glob(os.path.join(build, "meson-dist", "libtrs-*.tar.xz"))
        assert len(tarballs) == 1, tarballs
        with tarfile.open(tarballs[0]) as t:
            names = t.getnames()
            assert any(n.endswith("/include/trs.h") for n in names), names[:20]
            assert not any("/.git/" in n for n in names)
            t.extractall(d)
        src = os.path.join(d, os.path.basename(tarballs[0])[:-len(".tar.xz")])
        p = run("meson", "setup", os.path.join(d, "x"), src)
        assert p.returncode == 0, p.stdout.decode(errors="replace")[-2000:]
        p = run("ninja", "-C", os.path.join(d, "x"), "cli/trs")
        assert p.returncode == 0, p.stdout.decode(errors="replace")[-2000:]
        v = run(os.path.join(d, "x", "cli", "trs"), "--version")
        assert v.returncode == 0 and b"trs 0." in v.stdout, v.stdout


def test_the_license_and_an_spdx_line_in_every_source_file():
    # Apache-2.0, as debian/copyright says: the LICENSE text, and a machine-readable line in each file.
    if not os.path.exists(os.path.join(REPO, ".git")):
        raise util.Skip("needs a git checkout to list the sources (this is an unpacked tarball)")
    with open(os.path.join(REPO, "LICENSE")) as f:
        text = f.read()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    files = subprocess.run(["git", "-C", REPO, "ls-files"], capture_output=True, text=True,
                           check=True).stdout.split()
    exts = (".c", ".h", ".py", ".sh", ".map")
    named = ("meson.build", "meson_options.txt", "Makefile", "Dockerfile", "tests/run", ".ci/run",
             "scripts/demo", "scripts/build-deb", "scripts/container-check", "scripts/install-deps")
    skip = ("tests/fixtures/sigv4-test-suite/", "fuzz/corpus/", "examples/data/", "docs/", "debian/")
    missing = []
    checked = 0
    for name in files:
        if name.startswith(skip):
            continue
        path = os.path.join(REPO, name)
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        if not (name.endswith(exts) or name.endswith(named)):
            with open(path, "rb") as f:
                if f.read(2) != b"#!":
                    continue
        checked += 1
        with open(path, encoding="utf-8", errors="replace") as f:
            head = [f.readline() for _ in range(3)]
        if not any("SPDX-License-Identifier: Apache-2.0" in line for line in head):
            missing.append(name)
    assert checked > 200, checked
    assert not missing, "no SPDX line in the first 3 lines of: %s" % missing
