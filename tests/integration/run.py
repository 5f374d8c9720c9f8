#!/usr/bin/env python3
"""libtrs integration test runner (no pytest: stdlib only).

    tests/integration/run.py [-k SUBSTRING] [--timeout S] [FILE[::TEST] ...]

Without FILE arguments, runs every tests/integration/test_*.py. Each
top-level function named test_* runs in definition order; one line per test:

    PASS <file>::<name>
    FAIL <file>::<name>: <one-line reason>      (traceback indented below)
    SKIP <file>::<name>: <reason>               (the test raised util.Skip)

The last line is "N passed, N failed[, N skipped]"; the exit status is 1 when
any test failed. Each test is bounded by a timeout (TRS_TEST_TIMEOUT, default
300 s, or --timeout). The trs binary is $TRS_BUILD_DIR/cli/trs
(TRS_BUILD_DIR defaults to <repo>/build).
"""

import argparse
import glob
import importlib.util
import os
import signal
import sys
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
            signal.alarm(a.timeout)
            try:
                fn()
            except util.Skip as e:
                signal.alarm(0)
                skipped += 1
                print("SKIP %s: %s" % (label, " ".join(str(e).split())
                                       or "skipped"))
            except BaseException as e:
                signal.alarm(0)
                if isinstance(e, KeyboardInterrupt):
                    raise
                failed += 1
                print("FAIL %s: %s" % (label, one_line(e)))
                print(_indent(traceback.format_exc()))
            else:
                signal.alarm(0)
                passed += 1
                print("PASS %s%s" % (label, " (%.1fs)" % (time.monotonic() - t0)
                                     if a.verbose else ""))
            sys.stdout.flush()
    summary = "%d passed, %d failed" % (passed, failed)
    if skipped:
        summary += ", %d skipped" % skipped
    print(summary)
    return 1 if failed else 0


def _indent(s):
    return "\n".join("    " + line for line in s.rstrip().splitlines())


if __name__ == "__main__":
    sys.exit(main())
