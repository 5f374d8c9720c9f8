# SPDX-License-Identifier: Apache-2.0
"""Scale-out: several `trs serve` processes on one queue (competing
consumers). Two consumers share a moto SQS queue fed by the staging bucket's
real event notification; SQS alone keeps them from restoring the same
archive at the same time, which the test proves from each process's own
JSON log: the intervals between an archive's "archive started" and its
"archive restored" never overlap between the two processes."""

import datetime
import os
import random

import mkarchive
import util
from util import REGION
from test_serve import Serve, queue_counts, setup_moto, staging_keys, wait_until

ARCHIVES = 8
MIB = 1 << 20


def _when(record):
    stamp = record["timestamp"]  # 2025-01-02T03:04:05.678Z
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def intervals(records):
    """{archive key: [(start, end), ...]} from one process's log records."""
    open_at, out = {}, {}
    for r in records:
        msg, key = r.get("message"), r.get("key")
        if msg == "archive started":
            assert key not in open_at, "%s started twice in one process without ending" % key
            open_at[key] = _when(r)
        elif msg in ("archive restored", "archive failed; archive and message kept for a retry",
                     "archive canceled; its message goes back to the queue",
                     "archive already gone from staging; counted as done"):
            assert key in open_at, "%r for %s without 'archive started'" % (msg, key)
            out.setdefault(key, []).append((open_at.pop(key), _when(r), msg))
    assert not open_at, "archives never finished: %r" % sorted(open_at)
    return out


def test_two_consumers_share_one_queue_without_restoring_an_archive_twice_at_once():
    rng = random.Random(9)
    targets = [{"region": REGION, "bucket": "dest-a"},
               {"region": REGION, "bucket": "dest-b", "storage_class": "STANDARD_IA"}]
    archives = {}
    for i in range(ARCHIVES):
        # A few hundred KiB to a couple of MiB each (one over the 16 MiB
        # multipart threshold would make the run slow on two cores): enough
        # that an archive is in flight while the other consumer polls.
        objs = [{"relative_key": "batch-%d/obj-%d.bin" % (i, j),
                 "source_prefix": "scale/%d" % i, "object_name": "obj-%d.bin" % j,
                 "data": rng.randbytes(rng.randrange(64 << 10, 768 << 10)),
                 "tags": [{"archive": str(i)}]} for j in range(3)]
        archives["in/archive-%02d.tar.zst" % i] = objs

    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m, ("dest-a", "dest-b"))
        args = ["--queue", url, "--poll-interval", "1", "--visibility-timeout", "60", "--workers", "2",
                "--metrics", "none"]
        with Serve(args, m.env()) as one, Serve(args, m.env()) as two:
            # Both consumers poll before the first archive lands.
            one.wait_log("serving")
            two.wait_log("serving")
            with util.tempdir() as d:
                for key, objs in archives.items():
                    path = os.path.join(d, "a.tar.zst")
                    mkarchive.build_archive(path, objs, targets, level=1)
                    with open(path, "rb") as f:
                        s3.put_object(Bucket="staging", Key=key, Body=f.read())
            wait_until(lambda: not staging_keys(s3) and queue_counts(sqs, url) == (0, 0), 45,
                       "every archive restored and every message deleted: %s\n---\n%s" % (
                           one.log()[-1500:], two.log()[-1500:]))
            rc1, took1 = one.stop()
            rc2, took2 = two.stop()
            assert rc1 == 0 and rc2 == 0, "exit codes %d, %d: %s\n---\n%s" % (
                rc1, rc2, one.log()[-1500:], two.log()[-1500:])
            assert took1 < 10 and took2 < 10, (took1, took2)
            logs = [one.records(), two.records()]
        # Every object exact, with its tags and class, on both targets.
        for objs in archives.values():
            for o in objs:
                dkey = mkarchive.destination_key(o)
                for t in targets:
                    got = s3.get_object(Bucket=t["bucket"], Key=dkey)
                    assert got["Body"].read() == o["data"], "%s/%s differs" % (t["bucket"], dkey)
                    assert got.get("StorageClass", "STANDARD") == t.get("storage_class", "STANDARD"), \
                        (t["bucket"], dkey, got.get("StorageClass"))
                    tags = {x["Key"]: x["Value"] for x in
                            s3.get_object_tagging(Bucket=t["bucket"], Key=dkey)["TagSet"]}
                    assert tags.get("archive") == o["tags"][0]["archive"], (dkey, tags)
        assert queue_counts(sqs, url) == (0, 0)

    # Each message was received by one consumer; no interval of one process
    # overlaps an interval of the other for the same archive.
    per_process = [intervals(recs) for recs in logs]
    restored = {}
    for n, iv in enumerate(per_process):
        for key, spans in iv.items():
            for start, end, msg in spans:
                assert end >= start, (key, start, end)
                if msg == "archive restored":
                    restored.setdefault(key, []).append(n)
    assert sorted(restored) == sorted(archives), "restored %r, want %r" % (sorted(restored), sorted(archives))
    for key in archives:
        for a_start, a_end, _ in per_process[0].get(key, []):
            for b_start, b_end, _ in per_process[1].get(key, []):
                assert a_end < b_start or b_end < a_start, \
                    "%s was restored by both consumers at once: [%.3f, %.3f] and [%.3f, %.3f]" % (
                        key, a_start, a_end, b_start, b_end)
    # With a 60 s visibility timeout and no failure, no message comes back:
    # each archive was restored exactly once, and each consumer took a share.
    dup = {k: v for k, v in restored.items() if len(v) != 1}
    assert not dup, "archives restored more than once: %r" % dup
    shares = [sum(1 for v in restored.values() if v == [n]) for n in (0, 1)]
    assert all(shares), "one consumer did all the work (%r): the queue was not shared" % shares
    for n, recs in enumerate(logs):
        deleted = [r for r in recs if r.get("message") == "message deleted"]
        assert len(deleted) >= shares[n], "consumer %d deleted %d messages for %d archives" % (
            n, len(deleted), shares[n])
