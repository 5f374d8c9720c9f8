# SPDX-License-Identifier: Apache-2.0
"""The deployment recipes of examples/deploy/ do what their comments say:
the systemd recipe's install lines work on a host without /etc/trs; the
image's HEALTHCHECK, the ECS health check and the Kubernetes liveness probe
run one command that needs no shell on the one file `trs serve` touches,
with one timing, and that command tells a fresh health file from a stale or
missing one; the image carries OCI labels with the project's version; the
Dockerfile gives the runtime user a spool directory. (The image itself is
built and run by scripts/container-check, which needs podman and minutes.)"""

import json
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


def _runtime_stage():
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = f.read()
    return text[text.rindex("\nFROM "):]


def _seconds(v):
    m = re.fullmatch(r"(\d+)(s|m)?", str(v))
    assert m, "not a duration: %r" % v
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def _health_checks():
    """{recipe: (argv, health file, {interval, timeout, retries, start}, writable dirs)} of the
    image's HEALTHCHECK, the ECS task definition's healthCheck and the Kubernetes liveness probe."""
    checks = {}
    runtime = _runtime_stage()
    m = re.search(r"^HEALTHCHECK((?:[^\n]*\\\n)*[^\n]*)$", runtime, re.M)
    assert m, "the image has no HEALTHCHECK"
    line = re.sub(r"\\\n\s*", " ", m.group(1))
    opts = dict(re.findall(r"--([a-z-]+)=(\S+)", line))
    cmd = re.search(r"\bCMD\s+(\[.*\])\s*$", line)
    assert cmd, "HEALTHCHECK is not in exec form (CMD [...]): %s" % line
    env = re.search(r"^ENV TRS_HEALTH_FILE=(\S+)$", runtime, re.M)
    assert env, "the image sets no TRS_HEALTH_FILE"
    volumes = re.findall(r"^VOLUME \[?\"?([^\s\"\]]+)", runtime, re.M)
    checks["Dockerfile"] = (json.loads(cmd.group(1)), env.group(1),
                            {"interval": _seconds(opts["interval"]), "timeout": _seconds(opts["timeout"]),
                             "retries": int(opts["retries"]), "start": _seconds(opts["start-period"])}, volumes)

    with open(os.path.join(DEPLOY, "ecs-task-definition.json")) as f:
        c = json.load(f)["containerDefinitions"][0]
    hc = c["healthCheck"]
    assert hc["command"][0] == "CMD", "the ECS health check goes through a shell: %r" % hc["command"]
    env = {e["name"]: e["value"] for e in c["environment"]}
    checks["ECS"] = (hc["command"][1:], env.get("TRS_HEALTH_FILE"),
                     {"interval": hc["interval"], "timeout": hc["timeout"], "retries": hc["retries"],
                      "start": hc["startPeriod"]}, [mp["containerPath"] for mp in c["mountPoints"]])

    k = _deployment()["containers"][0]
    probe = k["livenessProbe"]
    env = {e["name"]: e["value"] for e in k["env"]}
    checks["Kubernetes"] = (probe["exec"]["command"], env.get("TRS_HEALTH_FILE"),
                            {"interval": probe["periodSeconds"], "timeout": probe["timeoutSeconds"],
                             "retries": probe["failureThreshold"], "start": probe["initialDelaySeconds"]},
                            [vm["mountPath"] for vm in k["volumeMounts"]])
    return checks


def test_the_image_ecs_and_kubernetes_run_one_health_check_on_one_file():
    checks = _health_checks()
    argv, path, timing, _ = checks["Dockerfile"]
    for recipe, (a, p, t, writable) in checks.items():
        assert a == argv, "%s runs %r, the image %r" % (recipe, a, argv)
        assert p == path, "%s watches %s, the image %s" % (recipe, p, path)
        assert t == timing, "%s checks %r, the image %r" % (recipe, t, timing)
        # The root filesystem is read-only in every recipe: the file needs a volume.
        assert os.path.dirname(p) in writable, "%s: %s is not on a volume (%r)" % (recipe, p, writable)
    assert os.path.basename(argv[0]) == "trs" and argv[1] == "health", "not trs health: %r" % argv
    max_age = int(argv[argv.index("--max-age") + 1])
    # trs serve touches the file at least every POLL_INTERVAL (at most 20 s) + 1 s while the queue
    # answers: the limit leaves room for a slow receive and its retry.
    assert max_age >= 3 * 21, max_age
    # ECS's bounds (interval 5-300, timeout 2-60, retries 1-10, startPeriod 0-300).
    assert 5 <= timing["interval"] <= 300 and 2 <= timing["timeout"] <= 60, timing
    assert 1 <= timing["retries"] <= 10 and 0 <= timing["start"] <= 300, timing
    assert timing["timeout"] < timing["interval"], timing


def _probe(health):
    """The recipes' health check run here, on HEALTH: (passes, its line)."""
    argv, _, _, _ = _health_checks()["Dockerfile"]
    argv = [util.trs_bin()] + argv[1:]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10,
                       env=util.clean_env(extra={"TRS_HEALTH_FILE": health}))
    assert p.returncode in (0, 1), "trs health exit %d: %r" % (p.returncode, p.stdout)
    return p.returncode == 0, p.stdout.decode(errors="replace")


def test_the_health_check_fails_on_a_stale_or_missing_health_file():
    with util.tempdir() as d:
        health = os.path.join(d, "healthy")
        ok, line = _probe(health)
        assert not ok and line.startswith("unhealthy: no "), "passes without a health file: %r" % line
        with open(health, "w"):
            pass
        ok, line = _probe(health)
        assert ok and line.startswith("healthy: "), "fails on a file touched just now: %r" % line
        old = time.time() - 3 * 60
        os.utime(health, (old, old))
        ok, line = _probe(health)
        assert not ok and "180 s ago" in line, "passes on a file three minutes old: %r" % line


def test_the_health_check_passes_while_trs_serve_runs_and_fails_after():
    p = subprocess.run([util.trs_bin(), "serve", "--help"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert b"TRS_HEALTH_FILE" in p.stdout, "trs serve --help does not name TRS_HEALTH_FILE: %r" % p.stdout[-2000:]
    with util.tempdir() as d:
        q, stg, out = (os.path.join(d, n) for n in ("q", "stg", "out"))
        os.makedirs(q)
        os.makedirs(stg)
        health = os.path.join(d, "healthy")
        # As in the recipes: the file is named by the environment, not by a flag.
        proc = subprocess.Popen(
            [util.trs_bin(), "serve", "--queue", "dir://" + q, "--staging",
             "file://" + stg, "--dest", "file://" + out, "--poll-interval", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, env=util.clean_env(extra={"TRS_HEALTH_FILE": health}))
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
            assert _probe(health)[0], "the check fails on the file trs serve just made"
            # Aged as a stuck loop would leave it: the next turn renews it.
            old = time.time() - 10 * 60
            os.utime(health, (old, old))
            assert not _probe(health)[0], "the check passes on a file ten minutes old"
            wait_for(lambda: _probe(health)[0], "trs serve to touch the file again")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
            util.saw_stderr("trs serve", proc.stderr.read())
            proc.stderr.close()
        assert rc == 0, "trs serve exit %d after SIGTERM" % rc
        # Nobody touches it any more: once it is old, the check fails.
        os.utime(health, (old, old))
        assert not _probe(health)[0], "the check passes after trs serve stopped"


def test_the_image_carries_oci_labels_with_the_projects_version():
    runtime = _runtime_stage()
    m = re.search(r"^LABEL((?:[^\n]*\\\n)*[^\n]*)$", runtime, re.M)
    assert m, "the runtime stage has no LABEL"
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z.]+)="([^"]*)"', m.group(1)))
    for key in ("title", "description", "version", "licenses", "base.name"):
        assert labels.get("org.opencontainers.image." + key), "no %s label: %r" % (key, labels)
    with open(os.path.join(util.REPO, "meson.build")) as f:
        project = f.read()
    version = re.search(r"version\s*:\s*'([^']+)'", project).group(1)
    license_ = re.search(r"license\s*:\s*'([^']+)'", project).group(1)
    assert labels["org.opencontainers.image.version"] == version, (labels, version)
    assert labels["org.opencontainers.image.licenses"] == license_, (labels, license_)


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
