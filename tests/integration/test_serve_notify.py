# SPDX-License-Identifier: Apache-2.0
"""trs serve under systemd: the command of examples/deploy/trs.service, run
with NOTIFY_SOCKET and WATCHDOG_USEC as systemd sets them for a unit of
Type=notify, tells a unix datagram socket READY=1 once the queue answered,
WATCHDOG=1 at least every half of the watchdog (idle or restoring), STATUS=
lines, and STOPPING=1 on SIGTERM. dir:// queue, file:// storage: no AWS."""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time

import mkarchive
import util
from util import REGION
from test_serve import Serve

UNIT = os.path.join(util.REPO, "examples", "deploy", "trs.service")


def _unit():
    """The unit's [Service] settings (the last value of each) and ExecStart as argv for this build."""
    settings = {}
    with open(UNIT) as f:
        for line in f:
            m = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
            if m:
                settings[m.group(1)] = m.group(2)
    argv = shlex.split(settings["ExecStart"])
    assert argv[0].endswith("/trs") and argv[1] == "serve", settings["ExecStart"]
    return settings, [util.trs_bin()] + argv[1:]


class Manager:
    """The service manager's end: a datagram socket (a path, or @name in the
    abstract namespace) whose datagrams are kept with their arrival time."""

    def __init__(self, address):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.got = []  # (monotonic time, datagram text)
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.got.append((time.monotonic(), data.decode("utf-8", "replace")))

    def lines(self):
        """(time, "KEY=VALUE") for every line received so far."""
        with self.lock:
            return [(t, line) for t, d in self.got for line in d.split("\n") if line]

    def wait_for(self, assignment, timeout, srv, since=0.0):
        deadline = time.monotonic() + timeout * util.SLOWDOWN
        while time.monotonic() < deadline:
            hits = [t for t, line in self.lines() if line == assignment and t >= since]
            if hits:
                return hits[0]
            assert srv.proc.poll() is None or assignment == "STOPPING=1", \
                "trs serve exited: %s" % srv.log()[-2000:]
            time.sleep(0.05)
        raise AssertionError("no %s within %ss; got %r; log: %s" % (
            assignment, timeout, self.lines(), srv.log()[-1500:]))

    def close(self):
        self.done = True
        self.thread.join(5)
        self.sock.close()


def _spool(d):
    q, stg, out = (os.path.join(d, n) for n in ("q", "stg", "out"))
    os.makedirs(os.path.join(stg, "staging"))
    os.makedirs(q)
    return q, stg, out


def _message(q, name, key):
    body = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                         "s3": {"bucket": {"name": "staging"}, "object": {"key": key}}}]}
    tmp = os.path.join(q, "." + name)
    with open(tmp, "w") as f:
        json.dump(body, f)
    os.rename(tmp, os.path.join(q, name))  # whole, or not there: the consumer never reads half a file


def test_the_units_command_says_ready_watchdog_status_and_stopping():
    settings, argv = _unit()
    assert settings.get("Type") == "notify", "trs.service is Type=%s" % settings.get("Type")
    assert settings.get("NotifyAccess", "main") == "main", settings.get("NotifyAccess")
    assert int(settings.get("WatchdogSec", "0")) > 0, "trs.service has no WatchdogSec"
    watchdog = 4.0  # seconds: the unit's 120 s, shrunk so that the test sees many pings
    name = "@trs-it-notify-%d-%d" % (os.getpid(), int(time.monotonic() * 1000))
    with util.tempdir() as d:
        q, stg, out = _spool(d)
        mgr = Manager(name)
        env = util.clean_env(REGION, {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": str(int(watchdog * 1e6))})
        try:
            started = time.monotonic()
            # The default long poll (20 s) would outlast half the watchdog: trs serve shortens it.
            with Serve(argv[2:] + ["--queue", "dir://" + q, "--staging", "file://" + stg,
                                   "--dest", "file://" + out], env) as srv:
                ready = mgr.wait_for("READY=1", 15, srv)
                # Work arrives: the loop keeps its pace while a runner restores, and STATUS counts it.
                objects = [{"relative_key": "n/one.txt", "data": b"notified"}]
                mkarchive.build_archive(os.path.join(stg, "staging", "a.tar.zst"), objects,
                                        [{"region": REGION, "bucket": "dest-a"}])
                _message(q, "1.json", "a.tar.zst")
                deadline = time.monotonic() + 30 * util.SLOWDOWN
                while not any("1 archives restored" in line for _, line in mgr.lines()):
                    assert time.monotonic() < deadline, "no STATUS with the archive restored: %r; %s" % (
                        mgr.lines(), srv.log()[-1500:])
                    time.sleep(0.1)
                # A few more seconds of an idle loop, then the stop.
                time.sleep(max(0.0, ready + 2 * watchdog - time.monotonic()))
                term = time.monotonic()
                rc, _ = srv.stop(within=30)
                assert rc == 0, srv.log()[-2000:]
                mgr.wait_for("STOPPING=1", 5, srv, since=term)
                log = srv.log()
        finally:
            mgr.close()
        with open(os.path.join(out, "dest-a", mkarchive.destination_key(objects[0])), "rb") as f:
            assert f.read() == b"notified"
    lines = mgr.lines()
    assert lines[0][1].startswith("STATUS=starting: first receive from dir://"), lines[:3]
    pings = [t for t, line in lines if line == "WATCHDOG=1" and t < term]
    assert pings and pings[0] - started < watchdog / 2 * util.SLOWDOWN, (pings[:3], started)
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert len(pings) >= 4, "only %d pings in %.1f s" % (len(pings), term - started)
    assert max(gaps) <= watchdog / 2 * util.SLOWDOWN, "a gap of %.2f s between WATCHDOG=1 (at most %.1f s): %r" % (
        max(gaps), watchdog / 2, gaps)
    statuses = [line for _, line in lines if line.startswith("STATUS=")]
    assert any(s.startswith("STATUS=serving dir://") for s in statuses), statuses
    assert [line for _, line in lines if line.startswith("STATUS=stopping")], statuses
    # The long poll was shortened to fit the watchdog, and the log says so.
    records = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
    short = [r for r in records if r.get("message", "").startswith("the long poll is shortened")]
    assert short and str(short[0]["poll_interval"]) == "1" and str(short[0]["poll_interval_asked"]) == "20", short


def test_the_units_watchdog_leaves_the_long_poll_alone_and_a_path_socket_hears_it():
    settings, argv = _unit()
    watchdog = int(settings["WatchdogSec"])
    with util.tempdir() as d:
        q, stg, out = _spool(d)
        path = os.path.join(d, "notify")
        mgr = Manager(path)
        with open(os.path.join(q, "1.json"), "w") as f:  # an answer at once: READY without the 20 s wait
            json.dump({"Service": "Amazon S3", "Event": "s3:TestEvent"}, f)
        env = util.clean_env(REGION, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": str(watchdog * 1000000),
                                      "POLL_INTERVAL": "20"})
        try:
            with Serve(argv[2:] + ["--queue", "dir://" + q, "--staging", "file://" + stg,
                                   "--dest", "file://" + out], env) as srv:
                mgr.wait_for("READY=1", 15, srv)
                term = time.monotonic()
                rc, _ = srv.stop(within=30)
                assert rc == 0, srv.log()[-2000:]
                mgr.wait_for("STOPPING=1", 5, srv, since=term)
                log = srv.log()
        finally:
            mgr.close()
    records = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
    serving = [r for r in records if r.get("message") == "serving"]
    assert serving and str(serving[0]["poll_interval"]) == "20", serving
    assert not [r for r in records if r.get("message", "").startswith("the long poll is shortened")], log[-1500:]


def test_systemd_analyze_accepts_the_unit():
    exe = shutil.which("systemd-analyze")
    if not exe:
        raise util.Missing("systemd-analyze not installed (Debian: systemd)")
    settings, argv = _unit()
    with open(UNIT) as f:
        text = f.read()
    with util.tempdir() as d:
        env_file = os.path.join(d, "trs.env")
        with open(env_file, "w") as f:
            f.write("SQS_QUEUE_URL=dir:///nonexistent\n")
        unit = os.path.join(d, "trs.service")
        with open(unit, "w") as f:
            f.write(text.replace(shlex.split(settings["ExecStart"])[0], argv[0])
                    .replace(settings["EnvironmentFile"], env_file))
        p = subprocess.run([exe, "verify", "--man=no", unit], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, "systemd-analyze verify: %s" % p.stdout.decode(errors="replace")[-2000:]
    assert b"trs.service" not in p.stdout, p.stdout.decode(errors="replace")[-2000:]
