# SPDX-License-Identifier: Apache-2.0
"""The installed library, as a user outside the tree sees it: `meson install`
into a staging directory, then the examples built with nothing but
`cc prog.c $(pkg-config --cflags --libs libtrs)` and run against the
installed libtrs.so; the exported symbols; the installed headers."""

import atexit
import os
import re
import shutil
import subprocess
import tempfile

import mkarchive
import util
from util import REGION, OTHER_REGION

EXAMPLES = os.path.join(util.REPO, "examples")

_installed = None


class Install:
    """A `meson install --destdir` of $TRS_BUILD_DIR, made once per run."""

    def __init__(self):
        meson = shutil.which("meson")
        if not meson:
            raise util.Missing("meson not installed")
        if not shutil.which("pkg-config"):
            raise util.Missing("pkg-config not installed")
        build = util.build_dir()
        if not os.path.isfile(os.path.join(build, "build.ninja")):
            raise AssertionError("no meson build at %s" % build)
        self.root = tempfile.mkdtemp(prefix="trs-install-")
        atexit.register(shutil.rmtree, self.root, True)
        # Not --no-rebuild: a build configured before a header was added to
        # include/meson.build would install a trs.h that includes a file it
        # does not install.
        p = subprocess.run([meson, "install", "-C", build,
                            "--destdir", self.root],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert p.returncode == 0, "meson install failed: %s" % \
            p.stdout.decode(errors="replace")[-1500:]
        self.pc = None
        for dirpath, _, files in os.walk(self.root):
            if "libtrs.pc" in files:
                self.pc = os.path.join(dirpath, "libtrs.pc")
        assert self.pc, "meson install put no libtrs.pc under %s" % self.root
        self.libdir = os.path.dirname(os.path.dirname(self.pc))
        self.so = os.path.join(self.libdir, "libtrs.so")
        assert os.path.exists(self.so), "no libtrs.so next to the .pc (%s)" % \
            self.libdir
        # The .pc names the real prefix (/usr/local); the sysroot maps it into
        # the staging directory, as a packager's build root would.
        self.env = dict(os.environ)
        self.env["PKG_CONFIG_PATH"] = os.path.dirname(self.pc)
        self.env["PKG_CONFIG_SYSROOT_DIR"] = self.root
        self.run_env = dict(self.env)
        self.run_env["LD_LIBRARY_PATH"] = self.libdir
        self.includedir = self._pkgconfig("--variable=includedir")
        self.includedir = self.root + self.includedir \
            if not self.includedir.startswith(self.root) else self.includedir

    def _pkgconfig(self, *args):
        p = subprocess.run(["pkg-config"] + list(args) + ["libtrs"],
                           env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        assert p.returncode == 0, "pkg-config %s libtrs: %s" % (
            " ".join(args), p.stderr.decode(errors="replace"))
        return p.stdout.decode().strip()

    def flags(self):
        return self._pkgconfig("--cflags", "--libs")


def installed():
    global _installed
    if _installed is None:
        _installed = Install()
    return _installed


def cc():
    """The compiler command for the examples. Against an ASan-built libtrs
    (TRS_SANITIZED=1) the programs are built with the sanitizers too: the
    runtime must come first, and preloading it into an uninstrumented program
    can deadlock in glibc's locale code."""
    compiler = os.environ.get("CC", "cc")
    if not shutil.which(compiler):
        raise util.Missing("no C compiler (%s)" % compiler)
    if os.environ.get("TRS_SANITIZED") == "1":
        return compiler + " -fsanitize=address,undefined"
    return compiler


def build_example(inst, name, workdir):
    """Copy examples/NAME.c out of the tree and build it exactly as the
    example's comment says; returns the executable's path."""
    src = os.path.join(workdir, name + ".c")
    shutil.copy(os.path.join(EXAMPLES, name + ".c"), src)
    cmd = '%s %s.c $(pkg-config --cflags --libs libtrs) -o %s' % (
        cc(), name, name)
    p = subprocess.run(["sh", "-c", cmd], cwd=workdir, env=inst.env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.returncode == 0, "`%s` failed: %s" % (
        cmd, p.stdout.decode(errors="replace")[-2000:])
    exe = os.path.join(workdir, name)
    assert_uses_installed_library(inst, exe)
    return exe


def assert_uses_installed_library(inst, exe):
    if not shutil.which("ldd"):
        return
    p = subprocess.run(["ldd", exe], env=inst.run_env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode(errors="replace")
    m = re.search(r"libtrs\.so\.\S*\s*=>\s*(\S+)", out)
    assert m, "%s does not link libtrs.so: %s" % (exe, out)
    assert os.path.realpath(m.group(1)).startswith(
        os.path.realpath(inst.libdir)), \
        "%s resolves libtrs to %s, not the installed %s" % (
            exe, m.group(1), inst.libdir)


def run(inst, argv, **kw):
    return subprocess.run([str(a) for a in argv], env=inst.run_env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=120, **kw)


# ---------------------------------------------------------------- tests

def test_pkgconfig_reports_the_installed_version():
    inst = installed()
    version = inst._pkgconfig("--modversion")
    with open(os.path.join(inst.includedir, "trs", "common.h")) as f:
        header = re.search(r'#define TRS_VERSION "([^"]+)"', f.read()).group(1)
    assert version == header, "pkg-config says %s, trs/common.h says %s" % (
        version, header)
    flags = inst.flags()
    assert "-ltrs" in flags.split(), "no -ltrs in %r" % flags


def test_parse_manifest_example_lists_every_destination_key():
    inst = installed()
    objects = [
        {"relative_key": "2025/01/report final.csv",
         "source_prefix": "data/2025/01", "object_name": "report final.csv",
         "tags": [{"team": "finance"}], "data": b"a,b\n"},
        {"relative_key": "caf\u00e9/\u00fcber.txt", "source_prefix": "caf\u00e9",
         "object_name": "\u00fcber.txt", "data": b"x"},
        {"relative_key": "top-level.bin", "data": b"\0\1"},
    ] + [{"relative_key": "many/%03d" % i, "source_prefix": "many",
          "object_name": "%03d" % i, "data": b"%d" % i} for i in range(40)]
    targets = [{"region": REGION, "bucket": "b"}]
    with util.tempdir() as d:
        exe = build_example(inst, "parse_manifest", d)
        path = os.path.join(d, "manifest.json")
        with open(path, "wb") as f:
            f.write(mkarchive.manifest_bytes(objects, targets))
        p = run(inst, [exe, path])
        assert p.returncode == 0, "parse_manifest exit %d: %s" % (
            p.returncode, p.stderr.decode(errors="replace"))
        lines = p.stdout.decode("utf-8").splitlines()
        assert lines[0] == "%d objects" % len(objects), \
            "first line %r, want %d objects" % (lines[0], len(objects))
        want = [mkarchive.destination_key(o) for o in objects]
        assert lines[1:] == want, "keys %r, want %r" % (lines[1:6], want[:5])

        # A broken manifest: a non-zero exit and the library's message.
        with open(path, "wb") as f:
            f.write(b'{"objects": [{"object_name": 7}]}')
        p = run(inst, [exe, path])
        assert p.returncode == 1, "exit %d for a bad manifest" % p.returncode
        assert b"object_name" in p.stderr, "message does not name the field: %r" % \
            p.stderr


def test_restore_example_restores_byte_identical_objects():
    inst = installed()
    objects = [
        {"relative_key": "reports/q1 final.csv", "source_prefix": "reports",
         "object_name": "q1 final.csv", "tags": [{"team": "finance"}],
         "data": b"id,amount\n1,10\n"},
        {"relative_key": "uni/\u65e5\u672c\u8a9e.txt", "source_prefix": "uni",
         "object_name": "\u65e5\u672c\u8a9e.txt",
         "data": "\u3053\u3093\u306b\u3061\u306f\n".encode()},
        {"relative_key": "blob.bin", "data": os.urandom(300_000)},
        {"relative_key": "empty", "data": b""},
    ]
    targets = [{"region": REGION, "bucket": "dest-a"},
               {"region": REGION, "bucket": "dest-b",
                "storage_class": "STANDARD_IA"},
               {"region": OTHER_REGION, "bucket": "dest-elsewhere"}]
    with util.tempdir() as d:
        exe = build_example(inst, "restore", d)
        archive = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(archive, objects, targets)
        dest = os.path.join(d, "restored")
        p = run(inst, [exe, archive, dest, REGION])
        assert p.returncode == 0, "restore exit %d: %s %s" % (
            p.returncode, p.stdout.decode(errors="replace"),
            p.stderr.decode(errors="replace"))
        out = p.stdout.decode("utf-8")
        assert re.search(r"^written:\s+%d\b" % len(objects), out, re.M), \
            "report does not say %d written: %s" % (len(objects), out)
        tree = util.read_tree(dest)
        assert sorted(tree) == ["dest-a", "dest-b"], \
            "buckets restored: %r" % sorted(tree)
        want = {mkarchive.destination_key(o): o["data"] for o in objects}
        for bucket in ("dest-a", "dest-b"):
            got = tree[bucket]
            assert sorted(got) == sorted(want), "%s holds %r" % (
                bucket, sorted(got))
            for key, data in want.items():
                assert got[key] == data, "%s/%s differs (%d bytes, want %d)" % (
                    bucket, key, len(got[key]), len(data))

        # An unreadable archive: exit 3, nothing written.
        bad = os.path.join(d, "bad.tar.zst")
        with open(bad, "wb") as f:
            f.write(b"not zstd at all")
        dest2 = os.path.join(d, "restored2")
        p = run(inst, [exe, bad, dest2, REGION])
        assert p.returncode == 3, "exit %d for garbage" % p.returncode
        assert not util.read_tree(dest2), "something was written from garbage"


def test_examples_makefile_builds_against_pkgconfig():
    inst = installed()
    if not shutil.which("make"):
        raise util.Missing("make not installed")
    cc()
    with util.tempdir() as d:
        for name in ("Makefile", "parse_manifest.c", "restore.c", "tar_stdout_backend.c", "custom_queue.c",
                     "staging_backend.c"):
            shutil.copy(os.path.join(EXAMPLES, name), d)
        p = subprocess.run(["make", "-C", d, "CC=" + cc(), "CFLAGS=-O1 -Wall -Wextra -Werror -std=c11"],
                           env=inst.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        assert p.returncode == 0, "make failed: %s" % \
            p.stdout.decode(errors="replace")[-2000:]
        for exe in ("parse_manifest", "restore", "tar_stdout_backend", "custom_queue", "staging_backend"):
            path = os.path.join(d, exe)
            assert os.access(path, os.X_OK), "make did not build %s" % exe
            r = run(inst, [path])
            assert r.returncode == 2 and b"usage" in r.stderr, \
                "%s without arguments: exit %d %r" % (exe, r.returncode,
                                                       r.stderr)


def _exported(so):
    if not shutil.which("nm"):
        raise util.Missing("nm not installed")
    p = subprocess.run(["nm", "-D", "--defined-only", so],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode == 0, "nm failed: %s" % p.stderr.decode(errors="replace")
    names = []
    for line in p.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, name = parts[1], parts[2]
        if kind == "A":  # a version node (e.g. LIBTRS_0), not a symbol
            continue
        names.append(name.split("@")[0])
    return names


def test_shared_library_exports_only_trs_symbols():
    inst = installed()
    names = _exported(inst.so)
    assert names, "libtrs.so exports nothing"
    foreign = sorted(n for n in names if not n.startswith("trs_"))
    assert not foreign, "libtrs.so exports non-trs_ symbols: %r" % foreign[:20]
    internal = sorted(n for n in names if n.startswith("trs__"))
    assert not internal, "libtrs.so exports internal trs__ symbols: %r" % \
        internal[:20]

    # Every function the installed headers declare is really there.
    declared = set()
    for dirpath, _, files in os.walk(inst.includedir):
        for fn in files:
            if fn.endswith(".h"):
                with open(os.path.join(dirpath, fn), encoding="utf-8") as f:
                    declared.update(re.findall(
                        r"TRS_EXTERN\([^)]*\)\s*\**\s*(trs_\w+)\s*\(", f.read()))
    assert declared, "no TRS_EXTERN declarations found in %s" % inst.includedir
    missing = sorted(declared - set(names))
    assert not missing, "declared in the headers but not exported: %r" % missing


def test_installed_headers_compile_pedantic():
    inst = installed()
    compiler = cc()
    headers = []
    for dirpath, _, files in os.walk(inst.includedir):
        for fn in files:
            if fn.endswith(".h"):
                headers.append(os.path.relpath(os.path.join(dirpath, fn),
                                               inst.includedir))
    assert "trs.h" in headers and "trs/sys/storage.h" in headers, \
        "installed headers: %r" % sorted(headers)
    flags = inst._pkgconfig("--cflags").split()
    with util.tempdir() as d:
        for h in sorted(headers):
            # Each header on its own (it must include what it needs), twice
            # (include guards), in a TU that uses nothing else.
            src = os.path.join(d, "h.c")
            with open(src, "w") as f:
                f.write("#include <%s>\n#include <%s>\n"
                        "int trs_header_check(void);\n"
                        "int trs_header_check(void) { return 0; }\n" % (h, h))
            cmd = compiler.split() + ["-std=c11", "-Wall", "-Wextra", "-Werror",
                   "-pedantic", "-Wstrict-prototypes", "-c", src, "-o",
                   os.path.join(d, "h.o")] + flags
            p = subprocess.run(cmd, env=inst.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            assert p.returncode == 0, "<%s> does not compile cleanly: %s" % (
                h, p.stdout.decode(errors="replace")[-1500:])


def test_pc_file_names_each_private_library_once_and_leaks_no_include_path():
    inst = installed()
    with open(inst.pc) as f:
        text = f.read()
    fields = dict(line.split(":", 1) for line in text.splitlines()
                  if re.match(r"^[A-Z][\w.]*:", line))
    assert fields.get("Cflags", "").split() == ["-I${includedir}"], \
        "Cflags must be the include directory only: %r" % fields.get("Cflags")
    assert "URL" not in fields or "invalid" not in fields["URL"], \
        "placeholder URL: %r" % fields["URL"]
    # Every private library once, in Requires.private or Libs.private.
    named = re.findall(r"[\w+-]+", re.sub(r"[<>=]+\s*[\d.]+", "",
                                          fields.get("Requires.private", "")))
    named = [{"libzstd": "zstd", "libarchive": "archive", "libcrypto": "crypto",
              "libcurl": "curl"}.get(n, n) for n in named]
    named += [w[2:] for w in fields.get("Libs.private", "").split()
              if w.startswith("-l")]
    named = [{"libisal": "isal"}.get(n, n) for n in named]
    for lib in ("zstd", "archive", "yajl", "crypto", "curl", "expat", "isal"):
        assert named.count(lib) == 1, "%s is named %d times in %r" % (
            lib, named.count(lib), named)
    cflags = inst._pkgconfig("--cflags")
    assert "yajl" not in cflags, "pkg-config --cflags libtrs leaks %r" % cflags


def test_every_exported_symbol_is_bound_to_the_LIBTRS_0_version_node():
    inst = installed()
    if not shutil.which("nm"):
        raise util.Missing("nm not installed")
    p = subprocess.run(["nm", "-D", "--defined-only", "--with-symbol-versions",
                        inst.so], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode == 0, "nm failed: %s" % p.stderr.decode(errors="replace")
    rows = [line.split() for line in p.stdout.decode().splitlines()]
    nodes = [r[2] for r in rows if len(r) >= 3 and r[1] == "A"]
    assert nodes == ["LIBTRS_0"], "version nodes: %r" % nodes
    symbols = [r[2] for r in rows if len(r) >= 3 and r[1] != "A"]
    assert symbols, "libtrs.so exports nothing"
    unversioned = [s for s in symbols if not s.endswith("@@LIBTRS_0")]
    assert not unversioned, "symbols outside LIBTRS_0: %r" % unversioned[:10]
