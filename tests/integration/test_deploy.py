# SPDX-License-Identifier: Apache-2.0
"""The deployment recipes of examples/deploy/ do what their comments say:
the systemd recipe's install lines work on a host without /etc/trs, the
Kubernetes liveness probe tells a fresh health file from a stale or missing
one and watches the file `trs serve` is told to touch, and the Dockerfile
gives the runtime user a spool directory. (The image itself is built and
run by scripts/container-check, which needs podman and minutes.)"""

import os
import re
import shlex
import signal
import stat
import subprocess
import time

import util

DEPLOY = os.path.join(util.REPO, "examples", "deploy")


def test_systemd_recipe_installs_on_a_host_without_etc_trs():
    with open(os.path.join(DEPLOY, "trs.service")) as f:
        lines = [m.group(1) for m in
                 re.finditer(r"^#[ \t]+(install [^#\n]*?)[ \t]*(?:#.*)?$", f.read(), re.M)]
    assert len(lines) == 2, "install lines in trs.service: %r" % lines
    with util.tempdir() as root:
        os.makedirs(os.path.join(root, "etc", "systemd", "system"))
        for line in lines:
            argv = shlex.split(line)
            # Absolute destinations go under the scratch root.
            argv[-1] = root + argv[-1]
            p = subprocess.run(argv, cwd=DEPLOY, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            assert p.returncode == 0, "`%s` failed: %s" % (
                line, p.stdout.decode(errors="replace"))
        env = os.path.join(root, "etc", "trs", "trs.env")
        assert os.path.isfile(env), "trs.env not installed"
        assert stat.S_IMODE(os.stat(env).st_mode) == 0o640, \
            "trs.env mode %o" % stat.S_IMODE(os.stat(env).st_mode)
        with open(os.path.join(DEPLOY, "trs.service")) as f:
            unit = f.read()
        assert "EnvironmentFile=/etc/trs/trs.env" in unit, \
            "the unit does not read the file the recipe installs"


def _deployment():
    try:
        import yaml
    except ImportError:
        raise util.Missing("PyYAML not installed")
    with open(os.path.join(DEPLOY, "kubernetes.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    deps = [d for d in docs if d.get("kind") == "Deployment"]
    assert len(deps) == 1, "Deployments: %d" % len(deps)
    return deps[0]["spec"]["template"]["spec"]


def test_kubernetes_liveness_probe_fails_on_a_stale_or_missing_health_file():
    pod = _deployment()
    c = pod["containers"][0]
    args = c.get("args", [])
    assert "--health-file" in args, "trs serve gets no --health-file: %r" % args
    path = args[args.index("--health-file") + 1]
    probe = c["livenessProbe"]["exec"]["command"]
    assert any(path in a for a in probe), \
        "the probe %r does not look at %s" % (probe, path)
    # The file lives on a writable volume (the root filesystem is read-only).
    mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
    assert c["securityContext"].get("readOnlyRootFilesystem"), \
        "root filesystem is not read-only any more: revisit this test"
    assert any(os.path.dirname(path) == m for m in mounts), \
        "%s is on the read-only root (mounts: %r)" % (path, mounts)

    with util.tempdir() as d:
        health = os.path.join(d, "healthy")
        argv = [a.replace(path, health) for a in probe]

        def probe_ok():
            return subprocess.run(argv, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL,
                                  timeout=10).returncode == 0

        assert not probe_ok(), "probe passes without a health file"
        with open(health, "w"):
            pass
        assert probe_ok(), "probe fails on a file touched just now"
        old = time.time() - 3 * 60
        os.utime(health, (old, old))
        assert not probe_ok(), "probe passes on a file three minutes old"


def _probe(pod, health):
    """The Deployment's liveness probe command, watching HEALTH instead."""
    c = pod["containers"][0]
    args = c["args"]
    path = args[args.index("--health-file") + 1]
    argv = [a.replace(path, health) for a in c["livenessProbe"]["exec"]["command"]]
    return lambda: subprocess.run(argv, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL,
                                  timeout=10).returncode == 0


def test_kubernetes_liveness_probe_passes_while_trs_serve_runs_and_fails_after():
    pod = _deployment()
    p = subprocess.run([util.trs_bin(), "serve", "--help"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert b"--health-file" in p.stdout, "trs serve --help does not name --health-file: %r" % p.stdout[-2000:]
    with util.tempdir() as d:
        q, stg, out = (os.path.join(d, n) for n in ("q", "stg", "out"))
        os.makedirs(q)
        os.makedirs(stg)
        health = os.path.join(d, "healthy")
        probe_ok = _probe(pod, health)
        proc = subprocess.Popen(
            [util.trs_bin(), "serve", "--queue", "dir://" + q, "--staging",
             "file://" + stg, "--dest", "file://" + out, "--poll-interval", "1",
             "--health-file", health],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, env=util.clean_env())
        try:
            def wait_for(cond, what):
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    if cond():
                        return
                    assert proc.poll() is None, "trs serve exited: %s" % \
                        proc.stderr.read().decode(errors="replace")[-1500:]
                    time.sleep(0.2)
                raise AssertionError("timed out waiting for " + what)

            wait_for(lambda: os.path.exists(health), "the health file")
            assert probe_ok(), "probe fails on the file trs serve just made"
            # Aged as a stuck loop would leave it: the next turn renews it.
            old = time.time() - 10 * 60
            os.utime(health, (old, old))
            assert not probe_ok(), "probe passes on a file ten minutes old"
            wait_for(probe_ok, "trs serve to touch the file again")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
            proc.stderr.close()
        assert rc == 0, "trs serve exit %d after SIGTERM" % rc
        # Nobody touches it any more: once it is old, the probe fails.
        os.utime(health, (old, old))
        assert not probe_ok(), "probe passes after trs serve stopped"


def test_dockerfile_spool_belongs_to_the_runtime_user():
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = f.read()
    runtime = text[text.rindex("\nFROM "):]
    user = re.search(r"^USER (\d+)", runtime, re.M).group(1)
    # The runtime stage starts FROM scratch: its root filesystem is a
    # directory of the build stage, copied whole.
    root = re.search(r"^COPY --from=\S+ (/\S*?)/? /$", runtime, re.M)
    assert root, "the runtime stage copies no root filesystem from the build"
    m = re.search(r"install -d -o (\d+)\b.* %s(/\S+)[\s\\]*$" % re.escape(root.group(1)),
                  text, re.M)
    assert m, "no directory of %s is created for a user" % root.group(1)
    assert m.group(1) == user, "%s belongs to %s, trs runs as %s" % (
        m.group(2), m.group(1), user)
    spool = m.group(2)
    assert re.search(r"^VOLUME \[?\"?%s" % re.escape(spool), runtime, re.M), \
        "%s is not a VOLUME" % spool
    assert re.search(r"^ENV TMPDIR=%s$" % re.escape(spool), runtime, re.M), \
        "TMPDIR does not point at %s" % spool
    # Every meson setup names its libdir, so the cleanup paths are the real ones.
    for setup in re.findall(r"meson setup[^\n]*", text):
        assert "--libdir=" in setup, "meson setup without --libdir: %s" % setup
