"""Command-line habits every trs command shares (awscli, rclone, zstd, git):
a mistyped command or option gets the nearest real one named, an abbreviated
option is refused (getopt would take it silently), `trs help CMD`, -v/-vv/-q."""
import json
import os

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
