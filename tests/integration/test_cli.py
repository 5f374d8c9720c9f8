# SPDX-License-Identifier: Apache-2.0
"""Command-line habits of `trs process` (awscli, zstd, tar): the progress bar
on a terminal (tmux), --dry-run listing every planned put, `-` for stdin,
-q, JSON log numbers, SIGINT exiting 130, one-line usage errors."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import mkarchive
import util
from util import REGION, OTHER_REGION, expect_exit, sandbox

TARGETS = [{"region": REGION, "bucket": "dest-a", "kms_key_arn": "arn:aws:kms:%s:123456789012:key/k1" % REGION},
           {"region": REGION, "bucket": "dest-b", "storage_class": "GLACIER_IR"},
           {"region": OTHER_REGION, "bucket": "elsewhere"}]


def objects(n=4):
    return [{"relative_key": "cli/%d.txt" % i, "data": b"cli habit %d\n" % i * (10 + i)} for i in range(n)]


def test_dry_run_lists_every_planned_put_and_creates_nothing():
    with sandbox() as sb:
        objs = objects()
        objs[1]["storage_class"] = "STANDARD_IA"
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objs, TARGETS)
        dest = sb.path("not-created")
        res = util.run_trs(["process", arc, "--dest", "file://" + dest, "--dry-run", "--log-format", "json"])
        expect_exit(res, 0)
        assert not os.path.exists(dest), "the dry run created DIR"
        planned = sorted(tuple(line.split("\t")) for line in res.out.splitlines())
        want = []
        for o in objs:
            key = mkarchive.destination_key(o)
            size = str(len(o["data"]))
            want.append(("dest-a", key, size, o.get("storage_class", "STANDARD"), TARGETS[0]["kms_key_arn"]))
            want.append(("dest-b", key, size, "GLACIER_IR", "-"))
        assert planned == sorted(want), res.out
        summary = [json.loads(x) for x in res.err.splitlines()][-1]
        assert summary["message"] == "dry run: archive checked, nothing written", summary
        # --json: the report is stdout's only document, the puts are in it.
        res = util.run_trs(["process", arc, "--dest", "file://" + dest, "--dry-run", "--json"])
        expect_exit(res, 0)
        report = json.loads(res.out)
        assert report["dry_run"] is True
        got = sorted((p["bucket"], p["key"], str(p["size"]), p["storage_class"], p["kms_key_id"] or "-")
                     for p in report["planned"])
        assert got == sorted(want), report["planned"]
        assert not os.path.exists(dest)


def test_dry_run_still_checks_the_bytes():
    with sandbox() as sb:
        objs = objects(2)
        objs[0]["wrong_etag"] = True
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objs, TARGETS[:1])
        res = util.run_trs(["process", arc, "--dest", "file://" + sb.path("d"), "--dry-run"])
        expect_exit(res, 1)
        lines = res.out.splitlines()
        assert len(lines) == 1 and lines[0].split("\t")[1] == mkarchive.destination_key(objs[1]), res.out


def test_dash_reads_the_archive_from_stdin():
    with sandbox() as sb:
        objs = objects()
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objs, TARGETS, manifest_position="last")
        with open(arc, "rb") as f:
            res = util.run_trs(["process", "-", "--dest", "file://" + sb.out, "--log-format", "json"], stdin=f)
        expect_exit(res, 0)
        for o in objs:
            with open(util.object_path(sb.out, "dest-a", mkarchive.destination_key(o)), "rb") as g:
                assert g.read() == o["data"]
        assert '"archive":"(stdin)"' in res.err, res.err


def test_quiet_prints_nothing_on_success_and_log_numbers_are_numbers():
    with sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(), TARGETS)
        res = util.run_trs(["process", arc, "--dest", "file://" + sb.out, "-q"])
        expect_exit(res, 0)
        assert res.err == "" and res.out == "", res.describe()
        assert os.path.isfile(util.object_path(sb.out, "dest-b", "3.txt"))
        res = util.run_trs(["process", arc, "--dest", "file://" + sb.out, "--log-format", "json"])
        expect_exit(res, 0)
        rec = [json.loads(x) for x in res.err.splitlines() if '"archive restored"' in x][0]
        # the same archive again: every object is current already, and the counts are numbers
        assert rec["objects_written"] == 0 and rec["objects_current"] == 4 and rec["objects_failed"] == 0, rec
        assert isinstance(rec["bytes_written"], int) and isinstance(rec["duration_s"], float), rec
        assert isinstance(rec["archive"], str)


def test_numeric_names_stay_strings_in_json_logs():
    with sandbox() as sb:
        objs = [{"relative_key": "2025", "object_name": "2025", "data": b"x", "wrong_etag": True}]
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objs, [{"region": REGION, "bucket": "123"}])
        res = util.run_trs(["process", arc, "--dest", "file://" + sb.out, "--log-format", "json"])
        expect_exit(res, 1)
        recs = [json.loads(x) for x in res.err.splitlines()]
        failed = [r for r in recs if r.get("relative_key") == "2025"]
        assert failed and failed[0]["key"] == "2025" and failed[0]["bucket"] == "123", recs


def test_sigint_exits_130():
    with sandbox() as sb:
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objects(), TARGETS)
        data = open(arc, "rb").read()
        p = subprocess.Popen([util.trs_bin(), "process", "-", "--dest", "file://" + sb.out], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=util.clean_env())
        try:
            p.stdin.write(data[:len(data) // 2])  # the rest never comes: trs waits on stdin
            p.stdin.flush()
            time.sleep(0.5)
            p.send_signal(signal.SIGINT)
            rc = p.wait(15)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdin.close()
        err = p.stderr.read()
        p.stderr.close()
        util.saw_stderr("trs process -", err)
        assert rc == 130, (rc, err[-800:])


def test_usage_errors_are_one_line_and_a_hint():
    for args, cmd in ((["process", "--bogus", "x"], "process"), (["process"], "process"),
                      (["process", "--workers", "zero", "a"], "process"), (["serve", "--batch", "99"], "serve"),
                      (["restore-backup", "x"], "restore-backup"), (["inspect"], "inspect"), (["frobnicate"], None)):
        res = util.run_trs(args)
        expect_exit(res, 2)
        lines = res.err.splitlines()
        hint = "Try 'trs%s --help' for more information." % (" " + cmd if cmd else "")
        assert len(lines) == 2 and lines[1] == hint, (args, res.err)
        assert lines[0].startswith("trs"), (args, res.err)
        assert "usage:" not in res.err


# ---------------------------------------------------------------- the bar on a terminal

BAR = ("reading", "restoring")


def _pane(session):
    # -J joins a line the terminal wrapped: a bar too wide shows as one line longer than the pane
    return subprocess.run(["tmux", "capture-pane", "-p", "-J", "-t", session], capture_output=True, text=True).stdout


def _watch_bar(width, command, timeout=90):
    """Run `command` in a tmux pane `width` columns wide; every bar line seen
    (the last of each capture) and the final pane. At every capture the bar
    is one line at most, and shorter than the pane: a bar that wraps scrolls
    the screen with a copy of itself at each redraw."""
    if not shutil.which("tmux"):
        raise util.Missing("tmux not installed (scripts/install-deps installs it)")
    session = "trs-progress-%d-%d" % (os.getpid(), width)
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", "12",
                    command + "; echo EXIT=$?; sleep 60"], check=True)
    bars, pane = [], ""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pane = _pane(session)
            lines = [x for x in pane.splitlines() if x.startswith(BAR)]
            assert len(lines) <= 1, ("the bar repeats: the screen scrolled", width, pane)
            for x in lines:
                assert len(x) < width, ("a bar line of %d columns in a pane of %d" % (len(x), width), x)
            bars += lines[-1:]
            if "EXIT=" in pane:
                break
            time.sleep(0.05)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], stderr=subprocess.DEVNULL)
    assert "EXIT=0" in pane, pane
    return bars, pane


def _moto_restore(width):
    """A manifest-last archive to S3 (moto, 4 transfers at once): its objects are
    all written after the last byte was read, in a phase of a few seconds."""
    n = 1200
    objs = [{"relative_key": "p/%05d" % i, "data": b"%d" % i * 8} for i in range(n)]
    with util.MotoServer() as m, sandbox() as sb:
        m.client("s3").create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objs, [{"region": REGION, "bucket": "dest-a"}],
                                      manifest_position="last")
        env = " ".join("%s=%s" % (k, v) for k, v in m.env().items() if k.startswith("AWS_"))
        # The pane's own width (TIOCGWINSZ), whatever COLUMNS the tests run with.
        cmd = "env -u COLUMNS %s %s process %s --max-inflight 4" % (env, util.trs_bin(), arc)
        bars, _ = _watch_bar(width, cmd)
    done = [int(x.group(1)) for x in (re.search(r"restoring .* (\d+)/%d objects" % n, b) for b in bars) if x]
    during = sorted(set(d for d in done if 0 < d < n))
    assert len(during) >= 3, ("the restore phase did not advance", bars[-10:])
    assert done == sorted(done), "objects done went backwards"
    first_restoring = next(i for i, b in enumerate(bars) if b.startswith("restoring"))
    assert not any(b.startswith("reading") for b in bars[first_restoring:]), "the bar went back to reading"
    assert any("ETA" in b for b in bars if b.startswith("restoring")), bars[-10:]
    return n, bars


def _size(text):
    number, unit = text.split()
    return float(number) * {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[unit]


def test_progress_bar_fits_120_columns_and_every_figure_moves_while_restoring():
    """The restore phase of a manifest-last archive decompresses nothing: the bar
    shows the bytes written and their rate there, and both move."""
    n, bars = _moto_restore(120)
    restoring = [b for b in bars if b.startswith("restoring") and not re.search(r" %d/%d objects" % (n, n), b)]
    written = [_size(m.group(1)) for m in (re.search(r", ([\d.]+ \w+) written", b) for b in restoring) if m]
    assert len(set(written)) >= 3, ("the bytes written stood still", restoring[-10:])
    assert written == sorted(written), "bytes written went backwards"
    rates = set(m.group(1) for m in (re.search(r"written, ([\d.]+ \w+)/s", b) for b in restoring) if m)
    assert len(rates) >= 2, ("the rate stood still", restoring[-10:])
    # wide enough for every field: the bar at its full width
    assert any(re.match(r"restoring \[[#.]{24}\] \d+/%d objects, [\d.]+ \w+ written, [\d.]+ \w+/s, ETA \d+s$" % n, b)
               for b in restoring), restoring[-10:]


def test_progress_bar_fits_50_columns_dropping_fields():
    n, bars = _moto_restore(50)
    restoring = [b for b in bars if b.startswith("restoring")]
    # the phase and its count stay; what does not fit is dropped, not wrapped
    assert all(re.match(r"restoring (\[[#.]+\] )?\d+/%d objects" % n, b) for b in restoring), restoring[-10:]
    assert any(re.match(r"restoring \[[#.]+\] \d+/%d objects, ETA \d+s$" % n, b) for b in restoring), restoring


def test_progress_bar_fits_COLUMNS():
    """COLUMNS, when set, is the width (as git and ls take it), here 60 in a
    pane of 120: a slow pipe keeps the reading phase on screen."""
    with sandbox() as sb:
        objs = [{"relative_key": "c/%04d" % i, "data": os.urandom(1000)} for i in range(1500)]
        arc = mkarchive.build_archive(sb.path("a.tar.zst"), objs, [{"region": REGION, "bucket": "dest-a"}],
                                      manifest_position="first")
        feed = ("import sys, time; d = open(sys.argv[1], 'rb').read()\n"
                "for i in range(0, len(d), 65536):\n"
                "    sys.stdout.buffer.write(d[i:i + 65536]); sys.stdout.buffer.flush(); time.sleep(0.1)\n")
        script = sb.path("feed.py")
        with open(script, "w") as f:
            f.write(feed)
        cmd = "%s %s %s | env COLUMNS=60 AWS_REGION=%s %s process - --dest file://%s" % (
            sys.executable, script, arc, REGION, util.trs_bin(), sb.out)
        bars, _ = _watch_bar(120, cmd)
        assert len(bars) >= 5, bars
        assert all(len(b) < 60 for b in bars), [b for b in bars if len(b) >= 60]
        assert any(len(b) >= 50 for b in bars), ("the bar did not use the width", bars[-5:])
