# SPDX-License-Identifier: Apache-2.0
"""Backup targets (FORMAT.md §5): the archive stored unchanged plus a JSON
Lines catalog; trs restore-backup."""

import datetime
import json
import os
import re

import mkarchive
import util
from util import REGION, OTHER_REGION
from test_serve import Serve, wait_until, queue_counts, staging_keys, setup_moto


BACKUP_KEY = re.compile(r"^logs/2025/backup_(\d+)\.tar\.zst$")

OBJECTS = [
    {"relative_key": "a/one.txt", "data": b"one", "source_prefix": "logs/2025",
     "creation_time": "2024-12-31 23:59:59"},
    {"relative_key": "two words.bin", "data": bytes(range(256)) * 40, "source_prefix": "logs/2025"},
    {"relative_key": "ü/three.txt", "data": b"three", "source_prefix": "logs/2025", "size": 5},
]


def keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def check_catalog(rows, backup_key, backup_buckets, objects=OBJECTS):
    ms = int(BACKUP_KEY.match(backup_key).group(1))
    day = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc).strftime("%Y-%m-%d")
    assert len(rows) == len(objects), rows
    for row, o in zip(rows, objects):
        entry = mkarchive.manifest_entry(o)
        want = {
            "backup_file": backup_key,
            "backup_timestamp": ms // 1000,
            "backup_date": day,
            "source_bucket": entry["source_bucket"],
            "source_prefix": entry["source_prefix"],
            "object_name": entry["object_name"],
            "object_path": mkarchive.destination_key(o),
            "object_size": len(o["data"]),
            "creation_time": entry["creation_time"],
            "creation_date": entry["creation_time"][:10],
            "target_buckets": backup_buckets,
        }
        assert row == want, (row, want)


def catalog_prefix(backup_key):
    ms = int(BACKUP_KEY.match(backup_key).group(1))
    d = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return "src-bucket/logs/2025/year=%04d/month=%02d/day=%02d/" % (d.year, d.month, d.day)


def test_serve_mixed_normal_and_backup_targets_with_catalog():
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m, ("dest-a", "backup-b", "catalog"))
        targets = [{"region": REGION, "bucket": "dest-a"},
                   {"region": REGION, "bucket": "backup-b", "backup": True, "storage_class": "STANDARD_IA"},
                   {"region": OTHER_REGION, "bucket": "backup-elsewhere", "backup": True}]
        with util.tempdir() as d:
            path = os.path.join(d, "x.tar.zst")
            mkarchive.build_archive(path, OBJECTS, targets, level=3)
            with open(path, "rb") as f:
                original = f.read()
            s3.put_object(Bucket="staging", Key="src-bucket/logs/2025/abc.tar.zst", Body=original)
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "30",
                    "--catalog-bucket", "catalog"], m.env()) as srv:
            wait_until(lambda: not staging_keys(s3) and queue_counts(sqs, url) == (0, 0), 60,
                       "the archive restored and its message deleted: " + srv.log()[-1500:])
            rc, _ = srv.stop()
            assert rc == 0, srv.log()[-2000:]
            recs = srv.records()
        assert any(r.get("message") == "archive copied to its backup target" for r in recs), recs
        # the normal target: the objects, exactly
        assert keys(s3, "dest-a") == sorted(mkarchive.destination_key(o) for o in OBJECTS)
        for o in OBJECTS:
            assert s3.get_object(Bucket="dest-a", Key=mkarchive.destination_key(o))["Body"].read() == o["data"]
        # the backup target: the archive, byte for byte, with the target's class
        bkeys = keys(s3, "backup-b")
        assert len(bkeys) == 1 and BACKUP_KEY.match(bkeys[0]), bkeys
        got = s3.get_object(Bucket="backup-b", Key=bkeys[0])
        assert got["Body"].read() == original
        assert got.get("StorageClass") == "STANDARD_IA", got.get("StorageClass")
        # the catalog
        ckeys = keys(s3, "catalog")
        assert ckeys == [catalog_prefix(bkeys[0]) + os.path.basename(bkeys[0]) + ".jsonl"], ckeys
        body = s3.get_object(Bucket="catalog", Key=ckeys[0])["Body"].read().decode()
        assert body.endswith("\n")
        check_catalog([json.loads(line) for line in body.splitlines()], bkeys[0], ["backup-b"])
        assert "backup-elsewhere" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert staging_keys(s3) == [] and queue_counts(sqs, url) == (0, 0)


def test_all_backup_archive_is_copied_without_walking_objects():
    with util.MotoServer() as m:
        s3 = m.client("s3")
        for b in ("staging", "backup-b", "catalog"):
            s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
        targets = [{"region": REGION, "bucket": "backup-b", "backup": True}]
        with util.tempdir() as d:
            path = os.path.join(d, "x.tar.zst")
            mkarchive.build_archive(path, OBJECTS, targets, level=3)
            with open(path, "rb") as f:
                original = f.read()
        s3.put_object(Bucket="staging", Key="in/all-backup.tar.zst", Body=original)
        res = util.run_trs(["process", "s3://staging/in/all-backup.tar.zst", "--json", "--catalog-bucket", "catalog"],
                           env=m.env())
        util.expect_exit(res, 0)
        rep = res.json()
        assert rep["objects_written"] == 0 and rep["puts_written"] == 0, rep
        assert rep["backups_written"] == 1 and rep["backups_failed"] == 0, rep
        assert rep["catalog_rows"] == len(OBJECTS), rep
        assert rep["backups"][0]["copied"] is True, rep
        assert rep["catalog"]["written"] is True, rep
        bkeys = keys(s3, "backup-b")
        assert len(bkeys) == 1 and s3.get_object(Bucket="backup-b", Key=bkeys[0])["Body"].read() == original
        assert rep["backups"][0]["key"] == bkeys[0]
        assert keys(s3, "catalog") == [rep["catalog"]["key"]]


def test_process_local_archive_uploads_backup_to_file_dest():
    with util.tempdir() as d:
        sb = util.Sandbox(d)
        targets = [{"region": REGION, "bucket": "dest-a"},
                   {"region": REGION, "bucket": "backup-b", "backup": True},
                   {"region": REGION, "bucket": "backup-c", "backup": True}]
        path = sb.path("x.tar.zst")
        mkarchive.build_archive(path, OBJECTS, targets)
        res = util.process(path, sb.out, "--catalog-bucket", "catalog", json_report=True)
        util.expect_exit(res, 0)
        rep = res.json()
        assert rep["objects_written"] == len(OBJECTS) and rep["backups_written"] == 2, rep
        assert [b["copied"] for b in rep["backups"]] == [False, True], rep  # uploaded once, then copied
        with open(path, "rb") as f:
            original = f.read()
        for b in ("backup-b", "backup-c"):
            found = []
            for root, _, files in os.walk(os.path.join(sb.out, b)):
                found += [os.path.relpath(os.path.join(root, f), os.path.join(sb.out, b)) for f in files]
            assert len(found) == 1 and BACKUP_KEY.match(found[0]), found
            with open(os.path.join(sb.out, b, found[0]), "rb") as f:
                assert f.read() == original
        ckey = rep["catalog"]["key"]
        assert ckey.startswith(catalog_prefix(rep["backups"][0]["key"])), ckey
        with open(os.path.join(sb.out, "catalog", ckey)) as f:
            rows = [json.loads(line) for line in f]
        check_catalog(rows, rep["backups"][0]["key"], ["backup-b", "backup-c"])


def test_backup_target_without_catalog_bucket_is_a_clear_error():
    with util.tempdir() as d:
        sb = util.Sandbox(d)
        targets = [{"region": REGION, "bucket": "dest-a"}, {"region": REGION, "bucket": "backup-b", "backup": True}]
        path = sb.path("x.tar.zst")
        mkarchive.build_archive(path, OBJECTS, targets)
        res = util.process(path, sb.out)
        util.expect_exit(res, 2)
        assert "CATALOG_BUCKET" in res.err, res.describe()
        assert os.listdir(sb.out) == [], os.listdir(sb.out)  # nothing written
        env = util.clean_env(extra={"CATALOG_BUCKET": "catalog"})
        util.expect_exit(util.process(path, sb.out, env=env), 0)
        assert os.path.isdir(os.path.join(sb.out, "catalog"))


def test_serve_keeps_archive_and_message_when_the_backup_bucket_is_missing():
    with util.MotoServer() as m:
        s3, sqs, url = setup_moto(m, ("dest-a", "catalog"))
        targets = [{"region": REGION, "bucket": "dest-a"},
                   {"region": REGION, "bucket": "no-such-backup", "backup": True}]
        with util.tempdir() as d:
            path = os.path.join(d, "x.tar.zst")
            mkarchive.build_archive(path, OBJECTS, targets, level=3)
            with open(path, "rb") as f:
                s3.put_object(Bucket="staging", Key="in/fails.tar.zst", Body=f.read())
        with Serve(["--queue", url, "--poll-interval", "1", "--visibility-timeout", "2",
                    "--catalog-bucket", "catalog"], m.env()) as srv:
            srv.wait_log("archive failed; archive and message kept for a retry")
            rc, _ = srv.stop()
            assert rc == 0, srv.log()[-2000:]
            log = srv.log()
        assert staging_keys(s3) == ["in/fails.tar.zst"]
        visible, invisible = queue_counts(sqs, url)
        assert visible + invisible == 1, (visible, invisible, log[-1500:])
        assert "no-such-backup" in log and "NoSuchBucket" in log, log[-2000:]
        assert keys(s3, "catalog") == []  # no backup stored: no catalog pointing at nothing


def test_restore_backup_two_chosen_objects():
    with util.MotoServer() as m:
        s3 = m.client("s3")
        for b in ("backup-b", "restored"):
            s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
        with util.tempdir() as d:
            path = os.path.join(d, "x.tar.zst")
            mkarchive.build_archive(path, OBJECTS, [{"region": REGION, "bucket": "backup-b", "backup": True}])
            with open(path, "rb") as f:
                s3.put_object(Bucket="backup-b", Key="logs/2025/backup_1700000000000.tar.zst", Body=f.read())
        src = "s3://backup-b/logs/2025/backup_1700000000000.tar.zst"
        # an all-backup manifest has no target to restore to: say so
        res = util.run_trs(["restore-backup", src, "--object", "one.txt"], env=m.env())
        util.expect_exit(res, 2)
        assert "--to-bucket" in res.err, res.describe()
        res = util.run_trs(["restore-backup", src, "--object", "one.txt", "--object", "ü/three.txt",
                            "--to-bucket", "restored", "--json"], env=m.env())
        util.expect_exit(res, 0)
        rep = res.json()
        assert rep["objects_written"] == 2 and rep["objects_unselected"] == 1, rep
        chosen = [OBJECTS[0], OBJECTS[2]]
        assert keys(s3, "restored") == sorted(mkarchive.destination_key(o) for o in chosen)
        for o in chosen:
            assert s3.get_object(Bucket="restored", Key=mkarchive.destination_key(o))["Body"].read() == o["data"]
        assert keys(s3, "backup-b") == ["logs/2025/backup_1700000000000.tar.zst"]  # no new backup
        # to a local directory, and a name that is not there fails
        with util.tempdir() as out:
            res = util.run_trs(["restore-backup", src, "--object", "two words.bin", "--object", "nope",
                                "--to-bucket", "chosen", "--dest", "file://" + out], env=m.env())
            util.expect_exit(res, 1)
            assert "nope" in res.err
            with open(os.path.join(out, "chosen", "logs/2025/two words.bin"), "rb") as f:
                assert f.read() == OBJECTS[1]["data"]
