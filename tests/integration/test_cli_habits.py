# SPDX-License-Identifier: Apache-2.0
"""Command-line habits every trs command shares (awscli, rclone, zstd, git):
a mistyped command or option gets the nearest real one named, an abbreviated
option is refused (getopt would take it silently), `trs help CMD`, -v/-vv/-q,
`-` for stdin (inspect) and stdout (pack)."""
import json
import os
import shutil
import subprocess
import time

import mkarchive
import util
from util import REGION, expect_exit, sandbox

TARGETS = [{"region": REGION, "bucket": "dest-a"}]
COMMANDS = ("process", "inspect", "pack", "head", "serve", "restore-backup")


def objects(n=3):
    return [{"relative_key": "h/%d.txt" % i, "data": b"habit %d\n" % i * (5 + i)} for i in range(n)]


def usage_error(args, first_line, cmd):
    """trs ARGS exits 2 with exactly `first_line` and the hint of `cmd`."""
    res = util.run_trs(args)
    expect_exit(res, 2, " ".join(args))
    hint = "Try 'trs%s --help' for more information." % (" " + cmd if cmd else "")
    assert res.err.splitlines() == [first_line, hint], (args, res.err)
    assert res.out == "", (args, res.out)
    return res


def test_a_mistyped_command_names_the_nearest_one():
    usage_error(["proces", "a.tar.zst"], "trs: unknown command 'proces'; did you mean 'process'?", None)
    usage_error(["inpsect"], "trs: unknown command 'inpsect'; did you mean 'inspect'?", None)
    usage_error(["restore"], "trs: unknown command 'restore'; did you mean 'restore-backup'?", None)
    usage_error(["--verison"], "trs: unknown option '--verison'; did you mean '--version'?", None)
    # nothing close: no guess
    usage_error(["frobnicate"], "trs: unknown command 'frobnicate'", None)
    usage_error(["help", "proces"], "trs: unknown command 'proces'; did you mean 'process'?", None)


def test_a_mistyped_option_names_the_nearest_one():
    cases = [
        (["process", "a.tar.zst", "--dryrun"], "process", "unknown option '--dryrun'; did you mean '--dry-run'?"),
        (["process", "a.tar.zst", "--max-inflght", "4"], "process",
         "unknown option '--max-inflght'; did you mean '--max-inflight'?"),
        (["process", "a.tar.zst", "-json"], "process", "unknown option '-json'; did you mean '--json'?"),
        (["inspect", "a.tar.zst", "--jsno"], "inspect", "unknown option '--jsno'; did you mean '--json'?"),
        (["pack", "d", "--levle", "3"], "pack", "unknown option '--levle'; did you mean '--level'?"),
        (["head", "--hlep"], "head", "unknown option '--hlep'; did you mean '--help'?"),
        (["serve", "--bacth", "2"], "serve", "unknown option '--bacth'; did you mean '--batch'?"),
        (["restore-backup", "a", "--object", "x", "--to-bukcet", "b"], "restore-backup",
         "unknown option '--to-bukcet'; did you mean '--to-bucket'?"),
        # far from every option: no guess
        (["process", "a.tar.zst", "--frobnicate"], "process", "unknown option '--frobnicate'"),
        (["process", "a.tar.zst", "-x"], "process", "unknown option '-x'"),
        (["process", "a.tar.zst", "--json=yes"], "process", "option '--json' takes no value"),
        (["process", "a.tar.zst", "--region"], "process", "option '--region' needs a value"),
    ]
    for args, cmd, message in cases:
        usage_error(args, "trs %s: %s" % (cmd, message), cmd)


def test_an_abbreviated_option_is_refused_naming_the_full_one():
    """getopt_long would take --dry for --dry-run: a script abbreviating works
    until another option shares the prefix. trs refuses it, and does nothing."""
    with sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(), TARGETS)
        dest = sb.path("not-created")
        usage_error(["process", arc, "--dest", "file://" + dest, "--dry"],
                    "trs process: unknown option '--dry'; did you mean '--dry-run'?", "process")
        usage_error(["process", arc, "--dest=file://" + dest, "--js"],
                    "trs process: unknown option '--js'; did you mean '--json'?", "process")
        usage_error(["process", arc, "--de", "file://" + dest],
                    "trs process: unknown option '--de'; did you mean '--dest'?", "process")
        usage_error(["process", arc, "--reg=" + REGION, "--dest", "file://" + dest],
                    "trs process: unknown option '--reg'; did you mean '--region'?", "process")
        usage_error(["pack", sb.inp, "--out", sb.path("x.tar.zst"), "--target", REGION + ":b"],
                    "trs pack: unknown option '--out'; did you mean '--output'?", "pack")
        usage_error(["inspect", arc, "--j"], "trs inspect: unknown option '--j'; did you mean '--json'?", "inspect")
        assert not os.path.exists(dest) and not os.path.exists(sb.path("x.tar.zst"))
        # written in full, the same options work
        res = util.run_trs(["process", arc, "--dest", "file://" + dest, "--dry-run", "--json"])
        expect_exit(res, 0)
        assert res.json()["dry_run"] is True


def test_help_command_prints_that_commands_help():
    top = util.run_trs(["--help"])
    expect_exit(top, 0)
    res = util.run_trs(["help"])
    expect_exit(res, 0)
    assert res.out == top.out and res.out.startswith("usage: trs <command>"), res.out[:200]
    for cmd in COMMANDS:
        own = util.run_trs([cmd, "--help"])
        expect_exit(own, 0)
        res = util.run_trs(["help", cmd])
        expect_exit(res, 0)
        assert res.out == own.out, (cmd, res.out[:200])
        assert res.out.startswith("usage: trs %s " % cmd), (cmd, res.out[:200])
    assert "trs help <command>" in top.out


def _levels(err):
    return [json.loads(line)["level"] for line in err.splitlines()]


def test_v_vv_and_q_set_what_is_logged():
    with sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(), TARGETS)
        base = ["process", arc, "--dest", "file://" + sb.out, "--log-format", "json"]
        res = util.run_trs(base + ["-vv"])
        expect_exit(res, 0)
        levels = _levels(res.err)
        assert "debug" in levels and "info" in levels, res.err
        assert any(json.loads(x)["message"] == "object written" for x in res.err.splitlines()), res.err
        # -v: info, as the default here; no debug
        for extra in (["-v"], ["--verbose"], []):
            res = util.run_trs(base + extra)
            expect_exit(res, 0)
            assert "info" in _levels(res.err) and "debug" not in _levels(res.err), (extra, res.err)
        # the last of -q, -v and --log-level wins
        res = util.run_trs(base + ["-q"])
        expect_exit(res, 0)
        assert res.err == "", res.err
        res = util.run_trs(base + ["-q", "-vv"])
        expect_exit(res, 0)
        assert "debug" in _levels(res.err), res.err
        res = util.run_trs(base + ["-vv", "--log-level", "warn"])
        expect_exit(res, 0)
        assert res.err == "", res.err

        # restore-backup: the same options
        rb = ["restore-backup", arc, "--object", "0.txt", "--dest", "file://" + sb.out, "--log-format", "json"]
        res = util.run_trs(rb + ["-vv"])
        expect_exit(res, 0)
        assert "debug" in _levels(res.err), res.err
        res = util.run_trs(rb + ["--quiet"])
        expect_exit(res, 0)
        assert res.err == "", res.err

        # serve: -vv logs debug records (the S3 staging backend's), -q only errors
        spool = sb.path("spool")
        os.makedirs(spool)
        sv = ["serve", "--queue", "dir://" + spool, "--dest", "file://" + sb.out,
              "--max-idle", "1", "--poll-interval", "1", "--log-format", "json"]
        res = util.run_trs(sv + ["-vv"], timeout=60)
        expect_exit(res, 0)
        assert "debug" in _levels(res.err) and "info" in _levels(res.err), res.err
        res = util.run_trs(sv + ["-q"], timeout=60)
        expect_exit(res, 0)
        assert res.err == "", res.err

        # pack: its warnings (a symbolic link is not packed) and its closing line; -q silences both
        d = sb.path("tree")
        os.makedirs(d)
        with open(os.path.join(d, "f.txt"), "wb") as f:
            f.write(b"f")
        os.symlink("f.txt", os.path.join(d, "link"))
        pk = ["pack", d, "--target", REGION + ":dest-a"]
        res = util.run_trs(pk + ["-o", sb.path("p1.tar.zst")])
        expect_exit(res, 0)
        assert "not a regular file; not packed" in res.err and "packed 1 objects" in res.err, res.err
        res = util.run_trs(pk + ["-o", sb.path("p2.tar.zst"), "-q"])
        expect_exit(res, 0)
        assert res.err == "", res.err
        res = util.run_trs(pk + ["-o", sb.path("p3.tar.zst"), "-v"])
        expect_exit(res, 0)
        assert "packed 1 objects" in res.err, res.err

        # inspect: -q and -v are taken
        for flag in ("-q", "-v", "-vv"):
            res = util.run_trs(["inspect", arc, flag])
            expect_exit(res, 0, flag)
            assert "summary   3 manifest entries" in res.out, res.out


def _pipe(args, data, timeout=60):
    """trs ARGS with `data` written to its stdin through a pipe (not a file: no rewinding)."""
    p = subprocess.run([util.trs_bin()] + args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=util.clean_env(), timeout=timeout)
    util.saw_stderr("trs " + " ".join(args[:2]), p.stderr)
    return p


def test_inspect_dash_reads_the_archive_from_stdin():
    with sandbox() as sb:
        objs = objects(4)
        objs.append({"relative_key": "h/no-member", "data": b"x", "member": False})
        for position in ("last", "first", "middle"):
            arc = mkarchive.build_archive(sb.path("a-%s.tar.zst" % position), objs, TARGETS,
                                          manifest_position=position,
                                          extra_members=[{"name": "stray.txt", "type": "file", "data": b"s"}])
            data = open(arc, "rb").read()
            want = util.run_trs(["inspect", arc, "--json"])
            expect_exit(want, 0)
            p = _pipe(["inspect", "-", "--json"], data)
            assert p.returncode == 0, (position, p.stderr)
            got = json.loads(p.stdout)
            expected = want.json()
            assert got["archive"] == "(stdin)", got["archive"]
            got.pop("archive")
            expected.pop("archive")
            # every member, the manifest's too, each joined or not as from the file
            assert got == expected, (position, got, expected)
            assert got["manifest_position"] == position
            assert any(m["path"] == "manifest.json" for m in got["members"])
            # the text form too
            p = _pipe(["inspect", "-"], data)
            assert p.returncode == 0, p.stderr
            text = p.stdout.decode()
            assert text.startswith("archive   (stdin)\n"), text[:200]
            assert "summary   5 manifest entries, 6 members, 4 joined, 1 missing" in text, text
        # not an archive on stdin: exit 3, and no temporary file left behind
        tmp = sb.path("tmp")
        os.makedirs(tmp)
        p = subprocess.run([util.trs_bin(), "inspect", "-"], input=b"not zstd" * 100, capture_output=True,
                           env=util.clean_env(extra={"TMPDIR": tmp}), timeout=60)
        util.saw_stderr("trs inspect -", p.stderr)
        assert p.returncode == 3, p
        assert os.listdir(tmp) == [], os.listdir(tmp)
        p = subprocess.run([util.trs_bin(), "inspect", "-"], input=open(arc, "rb").read(), capture_output=True,
                           env=util.clean_env(extra={"TMPDIR": tmp}), timeout=60)
        assert p.returncode == 0 and os.listdir(tmp) == [], (p.stderr, os.listdir(tmp))


def _tree(root, files):
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def test_pack_dash_writes_the_archive_to_stdout():
    with sandbox() as sb:
        files = {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(3000)}
        d = sb.path("tree")
        _tree(d, files)
        cwd = sb.path("cwd")
        os.makedirs(cwd)
        out = sb.path("piped.tar.zst")
        with open(out, "wb") as f:
            res = util.run_trs(["pack", d, "-o", "-", "--target", REGION + ":dest-a"], cwd=cwd)
            f.write(res.stdout)
        expect_exit(res, 0)
        assert os.listdir(cwd) == [], "pack wrote files: %r" % os.listdir(cwd)
        assert "packed 2 objects into stdout" in res.err, res.err
        # stdout holds the archive itself: it restores
        res = util.process(out, sb.out)
        expect_exit(res, 0)
        for name, data in files.items():
            with open(util.object_path(sb.out, "dest-a", name), "rb") as f:
                assert f.read() == data, name
        # to a pipe (not seekable), manifest first or last
        for flag in ([], ["--manifest-first"]):
            p = subprocess.Popen([util.trs_bin(), "pack", d, "-o", "-", "--target", REGION + ":dest-a"] + flag,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=util.clean_env(), cwd=cwd)
            insp = subprocess.run([util.trs_bin(), "inspect", "-", "--json"], stdin=p.stdout,
                                  capture_output=True, env=util.clean_env(), timeout=60)
            p.stdout.close()
            err = p.stderr.read()
            p.stderr.close()
            assert p.wait(60) == 0, err
            util.saw_stderr("trs pack", err)
            util.saw_stderr("trs inspect -", insp.stderr)
            assert insp.returncode == 0, insp.stderr
            rep = json.loads(insp.stdout)
            assert rep["joined"] == 2 and rep["manifest_position"] == ("first" if flag else "last"), rep
        assert os.listdir(cwd) == []


def test_pack_dash_refuses_a_terminal():
    """As zstd: a binary archive is never written to a terminal (tmux gives pack a real one)."""
    if not shutil.which("tmux"):
        raise util.Missing("tmux not installed (scripts/install-deps installs it)")
    with sandbox() as sb:
        d = sb.path("tree")
        _tree(d, {"a.txt": b"a"})
        session = "trs-pack-tty-%d" % os.getpid()
        cmd = "cd %s && %s pack %s -o - --target %s:dest-a; echo EXIT=$?; sleep 30" % (
            sb.root, util.trs_bin(), d, REGION)
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "10", cmd], check=True)
        try:
            deadline = time.monotonic() + 30
            pane = ""
            while time.monotonic() < deadline and "EXIT=" not in pane:
                time.sleep(0.1)
                pane = subprocess.run(["tmux", "capture-pane", "-p", "-J", "-t", session],
                                      capture_output=True, text=True).stdout
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], stderr=subprocess.DEVNULL)
        assert "EXIT=2" in pane, pane
        assert "trs pack: stdout is a terminal: redirect it (trs pack DIR -o - ... > OUT.tar.zst)" in pane, pane
        assert not os.path.exists(os.path.join(sb.root, "-")), "a file named - was written"


def _first_field(res_or_bytes):
    """The first (name, value) of a JSON document, in the order written."""
    raw = res_or_bytes.stdout if hasattr(res_or_bytes, "stdout") else res_or_bytes
    pairs = json.loads(raw, object_pairs_hook=lambda p: p)
    return pairs[0]


def test_every_json_report_starts_with_its_schema_version():
    """A reader checks "schema" first: 1 today, raised when a field is removed,
    renamed or changes its type or meaning (README, trs(1))."""
    with sandbox() as sb:
        objs = objects(3)
        objs[1]["wrong_etag"] = True  # a failure: the report of exit 1 too
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objs, TARGETS)
        docs = []
        res = util.process(arc, sb.out, json_report=True)
        expect_exit(res, 1)
        docs.append(("process", res))
        res = util.process(arc, sb.path("dry"), "--dry-run", json_report=True)
        expect_exit(res, 1)
        docs.append(("process --dry-run", res))
        res = util.run_trs(["restore-backup", arc, "--object", "0.txt", "--dest", "file://" + sb.out, "--json"])
        expect_exit(res, 0)
        docs.append(("restore-backup", res))
        res = util.run_trs(["inspect", arc, "--json"])
        expect_exit(res, 0)
        docs.append(("inspect", res))
        res = util.run_trs(["head", "file://" + sb.out, "dest-a", mkarchive.destination_key(objs[0])])
        expect_exit(res, 0)
        docs.append(("head", res))
        p = _pipe(["inspect", "-", "--json"], open(arc, "rb").read())
        assert p.returncode == 0, p.stderr
        docs.append(("inspect -", p))
        for what, doc in docs:
            name, value = _first_field(doc)
            assert name == "schema" and type(value) is int and value == 1, (what, name, value)
            assert json.loads(doc.stdout)["schema"] == 1
