# SPDX-License-Identifier: Apache-2.0
"""Credentials operators use, against moto with IAM enforced
(INITIAL_NO_AUTH_ACTION_COUNT): a profile's credential_process, a profile
with role_arn + source_profile (STS AssumeRole), --profile, the region of
the profile, and SSO profiles refused with the command that exports their
credentials."""
import json
import os

import mkarchive
import util
from util import REGION

ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def objects():
    return [{"relative_key": "c/%d.txt" % i, "data": b"credential test %d\n" % i * 40} for i in range(3)]


class Moto:
    """moto enforcing IAM once set up: an admin key, a bucket, and what each test adds."""

    def __enter__(self):
        # Three unauthenticated calls make the admin; everything after them is checked.
        self.m = util.MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}).start()
        iam = self.m.client("iam")
        iam.create_user(UserName="admin")
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
        self.admin = (key["AccessKeyId"], key["SecretAccessKey"])
        self.s3 = self.m.client("s3", key=self.admin)
        self.s3.create_bucket(Bucket="dest-a", CreateBucketConfiguration={"LocationConstraint": REGION})
        return self

    def __exit__(self, *exc):
        self.m.stop()

    def iam(self):
        return self.m.client("iam", key=self.admin)


def env_for(m, d, config, credentials="", region=REGION, **extra):
    """No keys in the environment: only the shared files."""
    conf = os.path.join(d, "config")
    cred = os.path.join(d, "credentials")
    with open(conf, "w") as f:
        f.write(config)
    with open(cred, "w") as f:
        f.write(credentials)
    env = util.clean_env(region, {"AWS_ENDPOINT_URL": m.m.url, "AWS_CONFIG_FILE": conf,
                                  "AWS_SHARED_CREDENTIALS_FILE": cred})
    env.update(extra)
    return env


def restore(m, d, env, *args):
    arc = mkarchive.build_archive(os.path.join(d, "a.tar.zst"), objects(), [{"region": REGION, "bucket": "dest-a"}])
    return util.run_trs(["process", arc, "--no-progress", "--log-format", "json"] + list(args), env=env)


def restored(m):
    for o in objects():
        body = m.s3.get_object(Bucket="dest-a", Key=mkarchive.destination_key(o))["Body"].read()
        assert body == o["data"], mkarchive.destination_key(o)
    return True


def process_script(d, key, marker):
    """A credential_process command printing `key`, and leaving a marker that it ran."""
    path = os.path.join(d, "creds.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\ntouch %s\nprintf '%%s' '%s'\n" % (marker, json.dumps(
            {"Version": 1, "AccessKeyId": key[0], "SecretAccessKey": key[1]})))
    os.chmod(path, 0o755)
    return path


def test_aws_profile_with_credential_process_restores_an_archive():
    with Moto() as m, util.tempdir() as d:
        marker = os.path.join(d, "ran")
        script = process_script(d, m.admin, marker)
        env = env_for(m, d, "[profile proc]\ncredential_process = %s\n" % script, AWS_PROFILE="proc")
        res = restore(m, d, env)
        util.expect_exit(res, 0)
        assert os.path.exists(marker), "credential_process did not run"
        assert restored(m)
        assert m.admin[1] not in res.err
        # The same profile named by --profile instead of AWS_PROFILE.
        os.unlink(marker)
        env.pop("AWS_PROFILE")
        util.expect_exit(restore(m, d, env, "--profile", "proc"), 0)
        assert os.path.exists(marker)


def test_aws_profile_with_role_arn_and_source_profile_assumes_the_role():
    with Moto() as m, util.tempdir() as d:
        iam = m.iam()
        # The source identity may only assume the role; the role may write to S3.
        iam.create_user(UserName="ops")
        ops = iam.create_access_key(UserName="ops")["AccessKey"]
        iam.put_user_policy(UserName="ops", PolicyName="assume", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Resource": "*"}]}))
        user_arn = iam.get_user(UserName="ops")["User"]["Arn"]
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                          "Principal": {"AWS": user_arn}}]}
        role = iam.create_role(RoleName="restorer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName="restorer", PolicyName="s3", PolicyDocument=json.dumps(ALLOW_ALL))
        credentials = "[ops]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (
            ops["AccessKeyId"], ops["SecretAccessKey"])
        config = "[profile restorer]\nrole_arn = %s\nsource_profile = ops\nrole_session_name = trs-test\n" % role
        # The source keys alone are refused by S3: the restore proves the role was assumed.
        direct = restore(m, d, env_for(m, d, config, credentials, AWS_PROFILE="ops"))
        util.expect_exit(direct, (1, 2, 3))
        assert "AccessDenied" in direct.err or "403" in direct.err, direct.describe()
        res = restore(m, d, env_for(m, d, config, credentials, AWS_PROFILE="restorer"))
        util.expect_exit(res, 0)
        assert restored(m)
        assert ops["SecretAccessKey"] not in res.err


def test_service_region_comes_from_the_profile():
    with Moto() as m, util.tempdir() as d:
        config = "[profile here]\nregion = %s\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (
            REGION, m.admin[0], m.admin[1])
        env = env_for(m, d, config, region=None, AWS_PROFILE="here")
        util.expect_exit(restore(m, d, env), 0)
        assert restored(m)


def test_sso_profile_names_the_export_command():
    with util.tempdir() as d, util.MotoServer() as moto:
        class M:
            m = moto
        config = ("[profile corp]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Admin\n"
                  "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = %s\n" % REGION)
        res = restore(M, d, env_for(M, d, config, AWS_PROFILE="corp"))
        util.expect_exit(res, (2, 3))
        assert "aws configure export-credentials --profile corp --format env" in res.err, res.describe()
        assert "no AWS credentials found" not in res.err, res.describe()
