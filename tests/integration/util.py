# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the libtrs integration tests (stdlib + boto3 only).

Run the tests with tests/integration/run.py; it puts this directory and
tests/fixtures on sys.path, so tests can ``import util`` and
``import mkarchive``.
"""

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
if FIXTURES not in sys.path:
    sys.path.insert(0, FIXTURES)

import mkarchive  # noqa: E402  (tests/fixtures)

REGION = "eu-west-1"
OTHER_REGION = "us-east-1"
META_DIR = ".trs-meta"


class Skip(Exception):
    """Raise from a test to report it as SKIP with the given reason."""


class Missing(Skip):
    """A server, program or module the test needs is not installed: SKIP, but
    FAIL under CI=true (run.py), where scripts/install-deps must have put
    everything the tests need."""


# ---------------------------------------------------------------- sanitizers

# A sanitizer's report in a process's output (ASan and LSan: "==PID==ERROR:
# AddressSanitizer: ...", UBSan: "file.c:1:2: runtime error: ...", TSan:
# "WARNING: ThreadSanitizer: ...").
SANITIZER_REPORT = re.compile(r"^(?:==\d+==)?(?:ERROR|WARNING): (?:Address|Leak|Thread|UndefinedBehavior|Memory)"
                              r"Sanitizer\b|: runtime error: |^SUMMARY: \w+Sanitizer", re.M)

# The stderr of every trs a test ran through run_trs or Serve: run.py clears
# it before each test and FAILs the test when a sanitizer report is in it.
# (Reports also go to files, log_path: that is where run.py finds those of
# the other processes. GCC's UBSan, in a build with ASan, writes to stderr
# whatever log_path says.)
stderr_seen = []


def saw_stderr(what, data):
    """Keep a process's stderr (bytes or str) for run.py's sanitizer check."""
    stderr_seen.append((what, data.decode("utf-8", "replace") if isinstance(data, bytes) else data))


def sanitizer_reports(text):
    """The lines of `text` that start a sanitizer report."""
    return [line for line in text.splitlines() if SANITIZER_REPORT.search(line)]


# ---------------------------------------------------------------- binary

def build_dir():
    return os.environ.get("TRS_BUILD_DIR", os.path.join(REPO, "build"))


def trs_bin():
    """Path of the trs CLI; an AssertionError (test FAILs) when missing."""
    path = os.path.join(build_dir(), "cli", "trs")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError("trs binary not found at %s (build with "
                             "`ninja -C %s`)" % (path, build_dir()))
    return path


class Result:
    """Outcome of one trs run."""

    def __init__(self, args, returncode, stdout, stderr, elapsed, maxrss_kb,
                 cpu_seconds=None):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed
        self.maxrss_kb = maxrss_kb
        # user + system CPU time of trs: what a test of its cost measures
        # (the wall time of a loaded machine stretches at random)
        self.cpu_seconds = cpu_seconds

    @property
    def out(self):
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self):
        return self.stderr.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.stdout)
        except ValueError as e:
            raise AssertionError("stdout is not JSON (%s): %r" %
                                 (e, self.out[:500]))

    def describe(self):
        return ("exit %s after %.1fs, stdout=%r, stderr=%r" %
                (self.returncode, self.elapsed, _clip(self.out),
                 _clip(self.err)))


def _clip(s, n=600):
    s = s.strip()
    return s if len(s) <= n else s[:n // 2] + " ... " + s[-n // 2:]


def clean_env(region=REGION, extra=None):
    """An environment with the region set and no AWS endpoint/credential
    leakage from the caller."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and not k.startswith("TRS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["LC_ALL"] = env.get("LC_ALL", "C.UTF-8")
    if region is not None:
        env["AWS_REGION"] = region
    if extra:
        env.update(extra)
    return env


# How many times slower a sanitizer build (TRS_SANITIZED=1) runs the same
# code: a bound in seconds that holds for a plain build is multiplied by it.
SLOWDOWN = 10.0 if os.environ.get("TRS_SANITIZED") == "1" else 1.0


def run_trs(args, timeout=120, env=None, region=REGION, cwd=None,
            stdin=subprocess.DEVNULL):
    """Run trs with ``args``; returns a Result with the exit code (negative
    signal number when killed by a signal), output, wall time, the child's
    own peak RSS (KiB) and its CPU time.

    The peak comes from GNU time wrapped around trs when it is installed: a
    child forked straight from this (possibly large) Python process would
    report Python's RSS at the fork as its own peak. Without GNU time, wait4's
    ru_maxrss is used. On timeout the process is killed and an AssertionError
    raised."""
    binary = trs_bin()
    argv = [binary] + [str(a) for a in args]
    if env is None:
        env = clean_env(region)
    gnu_time = shutil.which("time", path="/usr/bin")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(prefix="trs-rss-") as rss_file:
        run_argv = ([gnu_time, "-o", rss_file.name, "-f", "%M %U %S"] + argv) if gnu_time else argv
        t0 = time.monotonic()
        p = subprocess.Popen(run_argv, stdout=out, stderr=err, stdin=stdin,
                             env=env, cwd=cwd, start_new_session=True)
        status = rusage = None
        try:
            while True:
                pid, status, rusage = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() - t0 > timeout:
                    _kill(p)
                    raise AssertionError("trs %s did not finish in %ss" %
                                         (" ".join(argv[1:2]), timeout))
                time.sleep(0.01)
        except BaseException:
            _kill(p)
            raise
        p.returncode = (-os.WTERMSIG(status) if os.WIFSIGNALED(status)
                        else os.WEXITSTATUS(status))
        maxrss = rusage.ru_maxrss
        cpu = rusage.ru_utime + rusage.ru_stime
        if gnu_time:
            report = open(rss_file.name).read()
            m = re.search(r"terminated by signal (\d+)", report)
            if m:
                p.returncode = -int(m.group(1))
            nums = re.findall(r"^(\d+) ([\d.]+) ([\d.]+)$", report, re.M)
            if nums:
                maxrss = int(nums[-1][0])
                cpu = float(nums[-1][1]) + float(nums[-1][2])
        elapsed = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        res = Result(argv, p.returncode, out.read(), err.read(), elapsed, maxrss, cpu)
        saw_stderr("trs " + " ".join(argv[1:3]), res.stderr)
        return res


def _kill(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(p.pid, 0)
    except ChildProcessError:
        pass


def process(archive, dest, *extra, json_report=False, **kw):
    """``trs process ARCHIVE --dest file://DEST [extra...] [--json]``."""
    args = ["process", archive, "--dest", "file://" + str(dest)]
    args += list(extra)
    if json_report:
        args.append("--json")
    return run_trs(args, **kw)


def expect_exit(res, code, what=""):
    """Assert the run was not killed by a signal and exited with ``code``
    (an int or a collection of ints)."""
    assert res.returncode >= 0, "killed by signal %d: %s" % (
        -res.returncode, res.describe())
    codes = (code,) if isinstance(code, int) else tuple(code)
    assert res.returncode in codes, "%sexpected exit %s, got %s" % (
        what + ": " if what else "", "/".join(map(str, codes)), res.describe())


# ---------------------------------------------------------------- files

@contextlib.contextmanager
def tempdir(prefix="trs-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Sandbox:
    """A temp root holding ``in/`` (archives) and ``out/`` (the --dest DIR),
    able to tell whether anything appeared outside out/."""

    def __init__(self, root):
        self.root = root
        self.inp = os.path.join(root, "in")
        self.out = os.path.join(root, "out")
        os.makedirs(self.inp)
        os.makedirs(self.out)

    def path(self, name):
        return os.path.join(self.inp, name)

    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def archive(self, name="archive.tar.zst", **kw):
        """mkarchive.build_archive into in/NAME; returns the path."""
        p = self.path(name)
        mkarchive.build_archive(p, **kw)
        return p

    def snapshot_outside(self):
        return _listing(self.root, skip=self.out)

    def result(self):
        return read_tree(self.out)

    def meta(self, bucket, key):
        return read_meta(self.out, bucket, key)


@contextlib.contextmanager
def sandbox():
    with tempdir() as d:
        yield Sandbox(d)


def _listing(root, skip=None):
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if skip and os.path.abspath(dirpath) == os.path.abspath(skip):
            dirnames[:] = []
            continue
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if skip and os.path.abspath(p) == os.path.abspath(skip):
                continue
            found.add(os.path.relpath(p, root))
    return found


def md5(data):
    return hashlib.md5(data).hexdigest()


def file_md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_tree(dest):
    """The fs backend's objects: {bucket: {key: bytes}} (skips .trs-meta and
    anything that is not a regular file; symlinks are reported as
    ('SYMLINK', target) so that tests can fail on them)."""
    tree = {}
    if not os.path.isdir(dest):
        return tree
    for bucket in sorted(os.listdir(dest)):
        if bucket == META_DIR:
            continue
        bdir = os.path.join(dest, bucket)
        if not os.path.isdir(bdir):
            tree.setdefault("", {})[bucket] = _read_entry(bdir)
            continue
        objs = tree.setdefault(bucket, {})
        for dirpath, dirnames, filenames in os.walk(bdir):
            for n in filenames + [d for d in dirnames
                                  if os.path.islink(os.path.join(dirpath, d))]:
                p = os.path.join(dirpath, n)
                key = os.path.relpath(p, bdir)
                objs[key] = _read_entry(p)
    return tree


def _read_entry(p):
    if os.path.islink(p):
        return ("SYMLINK", os.readlink(p))
    with open(p, "rb") as f:
        return f.read()


def read_meta(dest, bucket, key):
    """The metadata JSON the fs backend keeps for bucket/key: the object's
    user.trs.meta xattr, or a sidecar file where the filesystem has none."""
    obj = os.path.join(dest, bucket, key)
    p = os.path.join(dest, META_DIR, bucket, key)
    try:
        raw = os.getxattr(obj, "user.trs.meta", follow_symlinks=False)
        p = obj + " [user.trs.meta]"
    except OSError:
        assert os.path.isfile(p), "no metadata for %s (no xattr, no %s)" % (obj, p)
        with open(p, "rb") as f:
            raw = f.read()
    try:
        return json.loads(raw)
    except ValueError as e:
        raise AssertionError("metadata %s is not JSON: %s: %r" %
                             (p, e, raw[:300]))


def object_path(dest, bucket, key):
    return os.path.join(dest, bucket, key)


# ---------------------------------------------------------------- moto

def free_port():
    """A loopback port nothing listens on (for a test of a refused connection;
    a server takes a socket bound here instead, see start_moto)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(log, env=None):
    """Start moto_server on 127.0.0.1, its output to the file ``log``;
    returns (Popen, port).

    The listening socket is bound here and handed over: a port found free
    and bound later by moto could be taken in between by any other process
    on the machine (another test run, a connection's ephemeral port).
    Werkzeug serves on the socket of WERKZEUG_SERVER_FD in a process that
    WERKZEUG_RUN_MAIN marks as its reloaded child; connections made before
    moto is up wait in the socket's backlog."""
    exe = shutil.which("moto_server")
    if not exe:
        raise Missing("moto_server not installed (PyPI: moto[server]; scripts/install-deps tries pip)")
    if importlib.util.find_spec("boto3") is None:
        raise Missing("boto3 not installed for %s (PyPI; scripts/install-deps tries pip)" % sys.executable)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        port = s.getsockname()[1]
        penv = dict(os.environ)
        penv.update(env or {})
        penv.update({"WERKZEUG_RUN_MAIN": "true",
                     "WERKZEUG_SERVER_FD": str(s.fileno())})
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                                env=penv, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, pass_fds=[s.fileno()],
                                start_new_session=True)
    return proc, port


class MotoServer:
    """moto_server on a free loopback port: ``with MotoServer() as m:``;
    m.url is the endpoint, m.client('s3') a boto3 client for it.

    moto accepts what S3 refuses, so m.url is not moto itself but the strict
    S3 checker in front of it (tests/fixtures/s3checker.py): every S3 request
    of a test is refused there as S3 would refuse it. m.moto_url is moto's
    own address; m.checker counts what was refused."""

    def __init__(self, timeout=30, env=None):
        self.timeout = timeout
        self.server_env = env
        self.proc = None
        self.port = None
        self.url = None
        self.moto_url = None
        self.checker = None
        self._log = None

    def start(self):
        self._log = tempfile.TemporaryFile()
        self.proc, self.port = start_moto(self._log, self.server_env)
        self.moto_url = "http://127.0.0.1:%d" % self.port
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                # The socket listens already: this waits for moto to answer.
                with urllib.request.urlopen(self.moto_url + "/moto-api/",
                                            timeout=max(1, deadline - time.monotonic())):
                    return self._check()
            except urllib.error.HTTPError:
                return self._check()  # it answers
            except OSError:
                time.sleep(0.1)
        log = self.log()
        self.stop()
        raise AssertionError("moto_server did not start: %s" % log[-500:])

    def _check(self):
        from s3checker import S3Checker
        self.checker = S3Checker(self.moto_url).start()
        self.url = self.checker.url
        return self

    def log(self):
        if not self._log:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def stop(self):
        if self.checker:
            self.checker.stop()
            self.checker = None
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def env(self, region=REGION, key=("testing", "testing")):
        """Environment for trs talking to this server."""
        return clean_env(region, {
            "AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1],
            "AWS_ENDPOINT_URL": self.url})

    def client(self, service, region=REGION, key=("testing", "testing")):
        import boto3
        return boto3.client(service, region_name=region, endpoint_url=self.url,
                            aws_access_key_id=key[0],
                            aws_secret_access_key=key[1])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
