# SPDX-License-Identifier: Apache-2.0
"""trs under valgrind (memcheck): a full `trs process` into file:// and to
moto S3, and a `trs serve --queue dir://...` cycle that restores one archive
and stops on SIGTERM. No memory errors, and no definitely lost bytes.

Skipped when valgrind is missing, and in sanitizer builds (TRS_SANITIZED=1):
an ASan binary cannot run under valgrind.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import mkarchive
import util
from util import REGION

VALGRIND_ERROR = 99


def _valgrind():
    if os.environ.get("TRS_SANITIZED") == "1":
        raise util.Skip("sanitizer build: ASan binaries cannot run under valgrind")
    exe = shutil.which("valgrind")
    if not exe:
        raise util.Missing("valgrind not installed")
    return exe


def _argv(log_path, args):
    return [_valgrind(), "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--error-exitcode=%d" % VALGRIND_ERROR, "--log-file=" + log_path, util.trs_bin()] + [str(a) for a in args]


def _check(rc, log_path, what, trs_stderr=b""):
    with open(log_path, "r", errors="replace") as f:
        log = f.read()
    assert rc != VALGRIND_ERROR, "%s: valgrind found errors:\n%s" % (what, log[-4000:])
    m = re.search(r"definitely lost: ([\d,]+) bytes", log)
    assert m is None or m.group(1) == "0", "%s: %s" % (what, log[-4000:])
    assert "Invalid read" not in log and "Invalid write" not in log and "uninitialised" not in log, log[-4000:]
    assert "ERROR SUMMARY: 0 errors" in log, "%s: did valgrind run? %s" % (what, log[-2000:])
    return log


def _run(args, env, what, timeout=120):
    with tempfile.NamedTemporaryFile(prefix="trs-vg-", suffix=".log") as vlog, \
            tempfile.TemporaryFile() as err:
        p = subprocess.run(_argv(vlog.name, args), env=env, stdout=subprocess.PIPE, stderr=err,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        err.seek(0)
        trs_err = err.read()
        _check(p.returncode, vlog.name, what)
        assert p.returncode == 0, "%s: exit %d: %s" % (what, p.returncode, trs_err[-1500:])
        return p


def _objects():
    return [{"relative_key": "v/a.txt", "data": b"alpha" * 100, "tags": [{"t": "1"}]},
            {"relative_key": "v/b.bin", "data": bytes(range(256)) * 300},
            {"relative_key": "v/empty", "data": b""}]


def test_process_to_file_dest_under_valgrind():
    _valgrind()
    with util.tempdir() as d:
        path = os.path.join(d, "a.tar.zst")
        targets = [{"region": REGION, "bucket": "dest-a"}, {"region": REGION, "bucket": "dest-b"}]
        mkarchive.build_archive(path, _objects(), targets)
        out = os.path.join(d, "out")
        p = _run(["process", path, "--dest", "file://" + out, "--json", "--no-progress"], util.clean_env(),
                 "process to file://")
        assert json.loads(p.stdout)["objects_written"] == 3
        tree = util.read_tree(out)
        assert tree["dest-a"][mkarchive.destination_key(_objects()[0])] == b"alpha" * 100


def test_process_to_moto_s3_under_valgrind():
    _valgrind()
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        s3.create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        path = os.path.join(d, "a.tar.zst")
        mkarchive.build_archive(path, _objects(), [{"region": REGION, "bucket": "dest-a"}])
        p = _run(["process", path, "--json", "--no-progress"], m.env(), "process to S3")
        assert json.loads(p.stdout)["objects_written"] == 3
        got = s3.get_object(Bucket="dest-a", Key=mkarchive.destination_key(_objects()[1]))["Body"].read()
        assert got == _objects()[1]["data"]


def _drained(q):
    inflight = os.path.join(q, ".inflight")
    return [n for n in os.listdir(q) if n != ".inflight"] == [] and \
        (not os.path.isdir(inflight) or not os.listdir(inflight))


def test_serve_dir_queue_cycle_under_valgrind():
    _valgrind()
    with util.tempdir() as d:
        q, stg, out = (os.path.join(d, n) for n in ("q", "stg", "out"))
        os.makedirs(os.path.join(stg, "staging"))
        os.makedirs(q)
        mkarchive.build_archive(os.path.join(stg, "staging", "one.tar.zst"), _objects(),
                                [{"region": REGION, "bucket": "dest-a"}])
        body = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                             "s3": {"bucket": {"name": "staging"}, "object": {"key": "one.tar.zst"}}}]}
        with open(os.path.join(q, "1.json"), "w") as f:
            json.dump(body, f)
        with tempfile.NamedTemporaryFile(prefix="trs-vg-", suffix=".log") as vlog, \
                tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(_argv(vlog.name, ["serve", "--queue", "dir://" + q, "--staging",
                                                      "file://" + stg, "--dest", "file://" + out,
                                                      "--poll-interval", "1", "--visibility-timeout", "60"]),
                                    env=util.clean_env(), stdout=subprocess.DEVNULL, stderr=err,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    if _drained(q) and not os.path.exists(os.path.join(stg, "staging", "one.tar.zst")):
                        break
                    assert proc.poll() is None, "trs serve exited early"
                    time.sleep(0.2)
                else:
                    err.seek(0)
                    raise AssertionError("the archive was not restored: %s" % err.read()[-1500:])
                proc.send_signal(signal.SIGTERM)
                rc = proc.wait(60)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            err.seek(0)
            trs_err = err.read()
            _check(rc, vlog.name, "serve dir:// cycle")
            assert rc == 0, "serve exit %d: %s" % (rc, trs_err[-1500:])
        assert util.read_tree(out)["dest-a"][mkarchive.destination_key(_objects()[0])] == b"alpha" * 100
