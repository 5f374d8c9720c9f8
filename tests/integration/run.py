#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""libtrs integration test runner (no pytest: stdlib only).

    tests/integration/run.py [-k SUBSTRING] [--timeout S] [FILE[::TEST] ...]

Without FILE arguments, runs every tests/integration/test_*.py. Each
top-level function named test_* runs in definition order; one line per test:

    PASS <file>::<name>
    FAIL <file>::<name>: <one-line reason>      (traceback indented below)
    SKIP <file>::<name>: <reason>               (the test raised util.Skip)

The last line is "N passed, N failed, N skipped"; the exit status is 1 when
any test failed, 2 when no test ran. Each test is bounded by a timeout
(TRS_TEST_TIMEOUT, default 300 s, or --timeout). The trs binary is
$TRS_BUILD_DIR/cli/trs (TRS_BUILD_DIR defaults to <repo>/build).

Under CI=true, a test that lacks a server or tool (util.Missing: moto_server,
boto3, a program scripts/install-deps installs) FAILs instead of skipping:
CI must have everything the tests need.

A sanitizer report (AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer,
ThreadSanitizer) FAILs the test that caused it, whatever the test asserted,
and is printed under it, so that a test expecting exit 1 cannot pass
through an abort. The reports are looked for in two places: the stderr of
each trs the test ran through util.run_trs or Serve (util.stderr_seen), and
files in a directory of the test's own, where the runtimes of every process
it starts write (log_path, added to ASAN_OPTIONS, UBSAN_OPTIONS, LSAN_OPTIONS
and TSAN_OPTIONS; GCC's UBSan in an ASan build ignores it and writes to
stderr).
"""

import argparse
import glob
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))

import util  # noqa: E402


class TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise TestTimeout("test exceeded its time limit")


def load(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def tests_of(mod):
    found = []
    for name, fn in vars(mod).items():
        if (name.startswith("test_") and callable(fn)
                and getattr(fn, "__module__", None) == mod.__name__):
            code = getattr(fn, "__code__", None)
            found.append((code.co_firstlineno if code else 0, name, fn))
    found.sort(key=lambda t: t[0])
    return [(n, f) for _, n, f in found]


def one_line(e):
    s = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__
    if isinstance(e, AssertionError) and str(e):
        s = str(e)
    s = " ".join(s.split())
    return s if len(s) <= 400 else s[:400] + " ..."


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="test files (FILE or FILE::TEST)")
    ap.add_argument("-k", dest="pattern", help="only tests whose name "
                    "contains this substring")
    ap.add_argument("--timeout", type=int,
                    default=int(os.environ.get("TRS_TEST_TIMEOUT", "300")))
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print each test's duration")
    a = ap.parse_args(argv)

    selected = []
    if a.files:
        for f in a.files:
            path, _, only = f.partition("::")
            if not os.path.exists(path) and os.path.exists(
                    os.path.join(HERE, path)):
                path = os.path.join(HERE, path)
            selected.append((path, only or None))
    else:
        selected = [(p, None) for p in
                    sorted(glob.glob(os.path.join(HERE, "test_*.py")))]

    signal.signal(signal.SIGALRM, _alarm)
    ci = os.environ.get("CI") == "true"
    passed = failed = skipped = 0
    for path, only in selected:
        fname = os.path.basename(path)
        try:
            mod = load(path)
        except Exception as e:  # an import error fails the whole file
            failed += 1
            print("FAIL %s::<import>: %s" % (fname, one_line(e)))
            print(_indent(traceback.format_exc()))
            continue
        for name, fn in tests_of(mod):
            if only and name != only:
                continue
            if a.pattern and a.pattern not in name:
                continue
            label = "%s::%s" % (fname, name)
            t0 = time.monotonic()
            outcome, reason, detail = "PASS", "", ""
            del util.stderr_seen[:]
            with SanitizerReports() as reports:
                signal.alarm(a.timeout)
                try:
                    fn()
                except util.Skip as e:
                    reason = " ".join(str(e).split()) or "skipped"
                    if ci and isinstance(e, util.Missing):
                        outcome = "FAIL"
                        reason = "missing under CI=true, where every server and tool must be installed " \
                                 "(scripts/install-deps): " + reason
                    else:
                        outcome = "SKIP"
                except BaseException as e:
                    if isinstance(e, KeyboardInterrupt):
                        raise
                    outcome, reason = "FAIL", one_line(e)
                    detail = _indent(traceback.format_exc())
                finally:
                    signal.alarm(0)
                found = reports.found()
            for what, text in util.stderr_seen:
                if util.sanitizer_reports(text):
                    found.append(("stderr of " + what, text))
            del util.stderr_seen[:]
            if found:
                why, text = sanitizer_failure(found)
                reason = why if outcome != "FAIL" else "%s; and %s" % (reason, why)
                detail = "\n".join(x for x in (detail, _indent(text)) if x)
                outcome = "FAIL"
            if outcome == "PASS":
                passed += 1
                print("PASS %s%s" % (label, " (%.1fs)" % (time.monotonic() - t0)
                                     if a.verbose else ""))
            elif outcome == "SKIP":
                skipped += 1
                print("SKIP %s: %s" % (label, reason))
            else:
                failed += 1
                print("FAIL %s: %s" % (label, reason))
                if detail:
                    print(detail)
            sys.stdout.flush()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    if passed + failed + skipped == 0:
        print("no test ran (check the FILE::TEST and -k arguments)", file=sys.stderr)
        return 2
    return 1 if failed else 0


SANITIZER_OPTIONS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS")
REPORT_LINES = 80


class SanitizerReports:
    """A directory where the sanitizer runtimes of the processes a test
    starts write their reports (log_path=DIR/report: one file per pid)."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="trs-sanitizer-")
        self.saved = {k: os.environ.get(k) for k in SANITIZER_OPTIONS}
        for k in SANITIZER_OPTIONS:
            base = self.saved[k]
            os.environ[k] = (base + ":" if base else "") + "log_path=" + os.path.join(self.dir, "report")
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(self.dir, ignore_errors=True)

    def found(self):
        """[(file name, text)] of the reports written, in name order."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.dir, "report*"))):
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            if text.strip():
                out.append((os.path.basename(path), text))
        return out


def sanitizer_failure(reports):
    """The one-line reason and the text to print for the reports of a test."""
    first = ""
    for _, text in reports:
        lines = util.sanitizer_reports(text)
        if lines:
            first = " ".join(lines[0].split())
            break
    body = []
    for name, text in reports:
        lines = text.rstrip().splitlines()
        starts = [i for i, line in enumerate(lines) if util.SANITIZER_REPORT.search(line)]
        lines = lines[max(0, starts[0] - 2):] if starts else lines  # from the report on, not a whole log
        body.append("%s:" % name)
        body += lines[:REPORT_LINES]
        if len(lines) > REPORT_LINES:
            body.append("... (%d more lines)" % (len(lines) - REPORT_LINES))
    return ("sanitizer report from %d process(es): %s" % (len(reports), first or "(see below)"),
            "\n".join(body))


def _indent(s):
    return "\n".join("    " + line for line in s.rstrip().splitlines())


if __name__ == "__main__":
    sys.exit(main())
