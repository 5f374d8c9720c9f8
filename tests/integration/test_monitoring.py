# SPDX-License-Identifier: Apache-2.0
"""examples/deploy/monitoring.yaml, the alarms and dashboard of trs serve:
cfn-lint accepts it; CloudFormation (moto) deploys it with and without a
dead-letter queue and an SNS topic; and every metric an alarm or a widget
reads is one trs serve emits, with the dimensions it emits it with. The
emitted set is not a list kept here: it is what a real `trs serve --metrics
emf` writes while it restores, skips and fails archives that produce each
metric.

moto's CloudFormation makes the dashboard but skips AWS::CloudWatch::Alarm
(moto 5.2 has no CloudFormation model for alarms: it warns and leaves them
out). The alarms are therefore made from the template's own resources with
PutMetricAlarm, whose parameters are the resource's properties: the
template's intrinsic functions are resolved here, and that resolver is
checked against moto's CloudFormation on the dashboard, which both make."""

import json
import os
import re
import shutil
import subprocess
import time

import faultproxy
import mkarchive
import util
from util import REGION, OTHER_REGION
from test_serve import Serve

TEMPLATE = os.path.join(util.REPO, "examples", "deploy", "monitoring.yaml")
NAMESPACE = "trs-monitoring-it"
SQS_METRICS = {"ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
               "ApproximateAgeOfOldestMessage"}
ACCOUNT = "123456789012"  # moto's


# ---------------------------------------------------------------- the template

def _load_template():
    try:
        import yaml
    except ImportError:
        raise util.Missing("PyYAML not installed")

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader, suffix, node):
        # CloudFormation's short forms: !Ref X, !GetAtt A.B, !Sub ..., !If [...], ...
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {"Fn::" + suffix: value}

    Loader.add_multi_constructor("!", tag)
    with open(TEMPLATE) as f:
        return yaml.load(f, Loader=Loader)


NO_VALUE = object()


class Resolver:
    """The intrinsic functions the template uses, as CloudFormation evaluates them."""

    def __init__(self, template, params, stack_name):
        self.template = template
        self.params = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
        self.params.update(params)
        self.pseudo = {"AWS::StackName": stack_name, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
                       "AWS::Partition": "aws"}
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        assert name in self.params, "Ref to %s, which is no parameter: teach the resolver" % name
        return self.params[name]

    def sub(self, text, names):
        def one(m):
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            assert "." not in name, "Fn::Sub with GetAtt %s: teach the resolver" % name
            return str(names[name]) if name in names else str(self.ref(name))
        return re.sub(r"\$\{([^}]*)\}", one, text)

    def resolve(self, node):
        if isinstance(node, list):
            return [x for x in (self.resolve(v) for v in node) if x is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                text, names = arg
                return self.sub(text, {k: self.resolve(v) for k, v in names.items()})
            if fn == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if fn == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return a == b
            if fn == "Fn::Not":
                return not self.resolve(arg[0])
            if fn == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if fn == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if fn == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self.resolve(items))
            assert not fn.startswith("Fn::"), "%s: teach the resolver" % fn
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items()) if v is not NO_VALUE}

    def resources(self, kind):
        """{logical id: resolved properties} of the resources of `kind` whose condition holds."""
        out = {}
        for name, r in self.template["Resources"].items():
            if r["Type"] == kind and ("Condition" not in r or self.condition(r["Condition"])):
                out[name] = self.resolve(r.get("Properties", {}))
        return out


def _put_alarm(cw, props):
    """PutMetricAlarm with an AWS::CloudWatch::Alarm's properties (the same names), numbers as numbers."""
    p = dict(props)
    for k in ("EvaluationPeriods", "DatapointsToAlarm", "Period"):
        if k in p:
            p[k] = int(p[k])
    p["Threshold"] = float(p["Threshold"])
    if "Metrics" in p:
        p["Metrics"] = [dict(q) for q in p["Metrics"]]
        for q in p["Metrics"]:
            if "Period" in q:
                q["Period"] = int(q["Period"])
            if "MetricStat" in q:
                q["MetricStat"] = dict(q["MetricStat"], Period=int(q["MetricStat"]["Period"]))
    cw.put_metric_alarm(**p)


# ---------------------------------------------------------------- what reads what

SELECT = re.compile(r'^SELECT\s+(?:AVG|COUNT|MAX|MIN|SUM)\((\w+)\)\s+FROM\s+SCHEMA\("([^"]+)"((?:\s*,\s*\w+)*)\)'
                    r'(?:\s+GROUP BY\s+(\w+)(?:\s+ORDER BY\s+\w+\(\)\s+(?:ASC|DESC))?)?$')
SEARCH = re.compile(r"^SEARCH\('\{([^,}]+)((?:,\w+)*)\} MetricName=\"(\w+)\"', '(?:Sum|Average|Maximum|Minimum|"
                    r"SampleCount|p\d+)', \d+\)$")


def _from_expression(expr):
    """(namespace, metric, dimension names) a Metrics Insights query or a SEARCH reads; None for metric math."""
    m = SELECT.match(expr)
    if m:
        dims = frozenset(d.strip() for d in m.group(3).split(",") if d.strip())
        assert m.group(4) is None or m.group(4) in dims, "GROUP BY %s, not in SCHEMA: %s" % (m.group(4), expr)
        return m.group(2), m.group(1), dims
    m = SEARCH.match(expr)
    if m:
        return m.group(1), m.group(3), frozenset(d for d in m.group(2).split(",") if d)
    assert not expr.startswith(("SELECT", "SEARCH")), "a query this test cannot read: %s" % expr
    return None


def _alarm_reads(alarm):
    """[(namespace, metric, dimensions {name: value})] one alarm reads (describe_alarms' form)."""
    if alarm.get("MetricName"):
        return [(alarm["Namespace"], alarm["MetricName"], {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])})]
    reads, ids = [], {q["Id"] for q in alarm["Metrics"]}
    assert sum(1 for q in alarm["Metrics"] if q.get("ReturnData", True)) == 1, alarm["AlarmName"]
    for q in alarm["Metrics"]:
        if "MetricStat" in q:
            m = q["MetricStat"]["Metric"]
            reads.append((m["Namespace"], m["MetricName"], {d["Name"]: d["Value"] for d in m.get("Dimensions", [])}))
            continue
        got = _from_expression(q["Expression"])
        if got:
            reads.append((got[0], got[1], {d: None for d in got[2]}))
        else:  # metric math: it may name only the alarm's own queries
            names = set(re.findall(r"\b([a-z][A-Za-z0-9_]*)\b(?!\s*\()", q["Expression"]))
            assert names <= ids, "%s: %s names %s, not a query of the alarm" % (
                alarm["AlarmName"], q["Expression"], names - ids)
    return reads


def _widget_reads(widget):
    reads = []
    for row in widget["properties"].get("metrics", []):
        if isinstance(row[0], dict):
            got = _from_expression(row[0]["expression"])
            assert got, "a widget's expression this test cannot read: %s" % row[0]
            reads.append((got[0], got[1], {d: None for d in got[2]}))
            continue
        fields = [x for x in row if not isinstance(x, dict)]
        assert "." not in fields and len(fields) % 2 == 0, "a metric row this test cannot read: %r" % row
        reads.append((fields[0], fields[1], dict(zip(fields[2::2], fields[3::2]))))
    return reads


def _check_reads(what, reads, emitted, queues):
    for ns, metric, dims in reads:
        if ns == "AWS/SQS":
            assert metric in SQS_METRICS and set(dims) == {"QueueName"} and dims["QueueName"] in queues, \
                "%s reads AWS/SQS %s %r (queues %r)" % (what, metric, dims, queues)
            continue
        assert ns == NAMESPACE, "%s reads namespace %s, not the service's %s" % (what, ns, NAMESPACE)
        assert (metric, frozenset(dims)) in emitted, \
            "%s reads %s with dimensions %s, which trs serve does not emit; it emits: %s" % (
                what, metric, sorted(dims), sorted("%s%s" % (n, sorted(d)) for n, d in emitted))


# ---------------------------------------------------------------- what trs serve emits

_emitted = None


def _event(q, name, key):
    body = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                         "s3": {"bucket": {"name": "staging"}, "object": {"key": key}}}]}
    with open(os.path.join(q, "." + name), "w") as f:
        json.dump(body, f)
    os.rename(os.path.join(q, "." + name), os.path.join(q, name))


def _outcomes(srv):
    done = ("archive restored", "archive failed; archive and message kept for a retry",
            "archive has no target in this region; archive and message kept for the dead-letter queue")
    return [r["message"] for r in srv.records() if r.get("message") in done]


def _wait_outcomes(srv, n):
    deadline = time.monotonic() + 60 * util.SLOWDOWN
    while len(_outcomes(srv)) < n:
        assert time.monotonic() < deadline, "%d archive outcomes of %d: %s" % (
            len(_outcomes(srv)), n, srv.log()[-3000:])
        assert srv.proc.poll() is None, "trs serve exited: %s" % srv.log()[-3000:]
        time.sleep(0.1)


def emitted_metrics():
    """{(metric, frozenset(dimension names))} of the EMF lines a real `trs serve` writes under
    NAMESPACE while it restores archives into S3 (moto), keeps newer objects, finds current ones,
    writes unchecked where HEAD is refused, and fails on a missing bucket, an unreadable archive
    and an archive for another region."""
    global _emitted
    if _emitted is not None:
        return _emitted
    a, unchecked, missing = "dest-a", "dest-unchecked", "dest-missing"
    here = [{"region": REGION, "bucket": a}]
    with util.MotoServer() as m, util.tempdir() as d:
        s3 = m.client("s3")
        for b in (a, unchecked):
            s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=unchecked, Key="u.txt", Body=b"written by someone else")
        q, stg = os.path.join(d, "q"), os.path.join(d, "stg")
        os.makedirs(q)
        os.makedirs(os.path.join(stg, "staging"))

        def archive(name, objects, targets):
            mkarchive.build_archive(os.path.join(stg, "staging", name), objects, targets)

        # The role may not read dest-unchecked: S3 refuses its HEADs.
        def refuse_heads(method, target, headers):
            return (403, "AccessDenied") if method == "HEAD" and target.startswith("/" + unchecked + "/") else None

        with faultproxy.FaultProxy(m.url, respond=refuse_heads) as proxy:
            env = m.env()
            env.update({"AWS_ENDPOINT_URL": proxy.url, "STACK_NAME": NAMESPACE})
            with Serve(["--queue", "dir://" + q, "--staging", "file://" + stg, "--metrics", "emf",
                        "--poll-interval", "1", "--visibility-timeout", "600"], env) as srv:
                archive("first.tar.zst", [
                    {"relative_key": "k/current.txt", "data": b"current"},
                    {"relative_key": "k/newer.txt", "data": b"newer", "creation_time": "2025-06-01 00:00:00"}],
                    here)
                _event(q, "1.json", "first.tar.zst")
                _wait_outcomes(srv, 1)
                archive("again.tar.zst", [  # one object as it stands, one older than what stands
                    {"relative_key": "k/current.txt", "data": b"current"},
                    {"relative_key": "k/newer.txt", "data": b"older", "creation_time": "2025-01-01 00:00:00"}],
                    here)
                archive("unchecked.tar.zst", [{"relative_key": "u.txt", "data": b"mine"}],
                        [{"region": REGION, "bucket": unchecked}])
                archive("missing.tar.zst", [{"relative_key": "m.txt", "data": b"nowhere"}],
                        [{"region": REGION, "bucket": missing}])
                archive("foreign.tar.zst", [{"relative_key": "f.txt", "data": b"elsewhere"}],
                        [{"region": OTHER_REGION, "bucket": "dest-elsewhere"}])
                with open(os.path.join(stg, "staging", "corrupt.tar.zst"), "wb") as f:
                    f.write(b"not zstd at all " * 64)
                for i, name in enumerate(("again", "unchecked", "missing", "foreign", "corrupt")):
                    _event(q, "%d.json" % (i + 2), name + ".tar.zst")
                _wait_outcomes(srv, 6)
                rc, _ = srv.stop(within=30)
                assert rc == 0, srv.log()[-2000:]
                outcomes = _outcomes(srv)
                srv.out.seek(0)
                out = srv.out.read().decode("utf-8", "replace")
        assert outcomes.count("archive restored") == 3 and len(outcomes) == 6, (outcomes, srv.log()[-2000:])
        assert s3.get_object(Bucket=a, Key="newer.txt")["Body"].read() == b"newer"  # object_name: no prefix
        assert s3.get_object(Bucket=unchecked, Key="u.txt")["Body"].read() == b"mine"
    emitted = set()
    for line in out.splitlines():
        doc = json.loads(line)  # stdout holds EMF lines only
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == NAMESPACE, directive
            for dims in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    emitted.add((metric["Name"], frozenset(dims)))
    _emitted = emitted
    return emitted


# ---------------------------------------------------------------- the tests

def test_cfn_lint_accepts_the_template():
    exe = shutil.which("cfn-lint")
    if not exe:
        raise util.Missing("cfn-lint not installed (PyPI: cfn-lint; scripts/install-deps tries pip)")
    p = subprocess.run([exe, TEMPLATE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert p.returncode == 0, "cfn-lint:\n%s" % p.stdout.decode(errors="replace")[-3000:]


def _deploy(m, template, stack, params):
    cf = m.client("cloudformation")
    with open(TEMPLATE) as f:
        body = f.read()
    cf.create_stack(StackName=stack, TemplateBody=body,
                    Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    cf.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cf.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    resolver = Resolver(template, params, stack)
    cw = m.client("cloudwatch")
    # The dashboard, as moto's CloudFormation made it, is the one the resolver makes.
    (name, props), = resolver.resources("AWS::CloudWatch::Dashboard").items()
    assert outputs["DashboardUrl"].endswith("#dashboards:name=" + props["DashboardName"]), outputs
    deployed = json.loads(cw.get_dashboard(DashboardName=props["DashboardName"])["DashboardBody"])
    assert deployed == json.loads(props["DashboardBody"]), "the resolver and CloudFormation differ on the dashboard"
    for props in resolver.resources("AWS::CloudWatch::Alarm").values():
        _put_alarm(cw, props)
    alarms = [a for a in cw.describe_alarms(AlarmNamePrefix=stack + "-")["MetricAlarms"]]
    return deployed, alarms


def test_the_template_deploys_and_reads_only_what_trs_serve_emits():
    emitted = emitted_metrics()
    template = _load_template()
    with util.MotoServer() as m:
        topic = m.client("sns").create_topic(Name="trs-alarms")["TopicArn"]
        full = {"Namespace": NAMESPACE, "InboundQueueName": "trs-inbound", "DeadLetterQueueName": "trs-inbound-dlq",
                "AlarmTopicArn": topic, "MaxArchives": "8"}
        bare = {"Namespace": NAMESPACE, "InboundQueueName": "trs-inbound"}
        for stack, params in (("trs-monitoring", full), ("trs-monitoring-bare", bare)):
            dashboard, alarms = _deploy(m, template, stack, params)
            queues = {params["InboundQueueName"], params.get("DeadLetterQueueName")}
            names = {a["AlarmName"] for a in alarms}
            assert (stack + "-dead-letters" in names) == ("DeadLetterQueueName" in params), names
            assert len(alarms) == (11 if "DeadLetterQueueName" in params else 10), names
            for alarm in alarms:
                actions = [topic] if "AlarmTopicArn" in params else []
                assert alarm["AlarmActions"] == actions and alarm["OKActions"] == actions, alarm
                assert alarm["AlarmDescription"], alarm["AlarmName"]
                _check_reads("alarm " + alarm["AlarmName"], _alarm_reads(alarm), emitted, queues)
            # The alarm widget shows exactly the stack's alarms.
            widgets = dashboard["widgets"]
            (shown,) = [w["properties"]["alarms"] for w in widgets if w["type"] == "alarm"]
            assert sorted(shown) == sorted(a["AlarmArn"] for a in alarms), (shown, names)
            for w in widgets:
                if w["type"] == "metric":
                    _check_reads("widget '%s'" % w["properties"]["title"], _widget_reads(w), emitted, queues)
            # What the issue asks to watch is watched: failed uploads and archives, replication lag,
            # archives in flight, throttling.
            watched = {metric for a in alarms for _, metric, _ in _alarm_reads(a)}
            for metric in ("FailedTargetUploads", "FailedDecompressions", "ReplicationLagSeconds",
                           "ArchivesInFlight", "S3ThrottledRequests"):
                assert metric in watched, (metric, sorted(watched))
            saturated = [a for a in alarms if a["AlarmName"] == stack + "-consumers-saturated"][0]
            assert saturated["Threshold"] == float(params.get("MaxArchives", 16)), saturated


def test_the_check_catches_a_metric_trs_serve_does_not_emit():
    """The comparison would fail on a typo, a metric without its dimension, or another namespace."""
    emitted = {("FailedTargetUploads", frozenset({"TargetBucket"})), ("ReplicationLagSeconds", frozenset())}
    good = [(NAMESPACE, "FailedTargetUploads", {"TargetBucket": None}), (NAMESPACE, "ReplicationLagSeconds", {})]
    _check_reads("good", good, emitted, {"q"})
    for bad in ((NAMESPACE, "FailedTargetUpload", {"TargetBucket": None}),
                (NAMESPACE, "FailedTargetUploads", {}),
                (NAMESPACE, "ReplicationLagSeconds", {"TargetBucket": "b"}),
                ("S3Compressor-other", "ReplicationLagSeconds", {}),
                ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "another"})):
        try:
            _check_reads("bad", [bad], emitted, {"q"})
        except AssertionError:
            continue
        raise AssertionError("not caught: %r" % (bad,))
    assert _from_expression('SELECT SUM(FailedTargetUploads) FROM SCHEMA("ns", TargetBucket) GROUP BY TargetBucket '
                            'ORDER BY SUM() DESC') == ("ns", "FailedTargetUploads", frozenset({"TargetBucket"}))
    assert _from_expression("SEARCH('{ns,TargetBucket} MetricName=\"ObjectsProcessed\"', 'Sum', 300)") == \
        ("ns", "ObjectsProcessed", frozenset({"TargetBucket"}))
    assert _from_expression("IF(waiting > 0 AND FILL(restored, 0) == 0, 1, 0)") is None
