/* SPDX-License-Identifier: Apache-2.0 */
/*
 * credential_process: a profile's command that prints credentials as JSON
 * on its stdout (the AWS CLI's contract):
 *
 *   {"Version": 1, "AccessKeyId": "...", "SecretAccessKey": "...",
 *    "SessionToken": "...", "Expiration": "2025-01-01T00:00:00Z"}
 *
 * The command runs through /bin/sh -c (as the AWS SDKs for Go and Java do
 * on Unix), with stdin from /dev/null and stderr shared with ours, so its
 * own messages reach the operator. It gets 60 seconds; its stdout at most
 * 64 KiB. The output holds secrets: it is scrubbed and never logged.
 */
#include "credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#define PROCESS_TIMEOUT_MS 60000
#define PROCESS_MAX_OUTPUT (64u << 10)

extern char **environ;

/* Read the child's stdout until EOF, the limit, the deadline or cancellation. */
static int read_output(const trs_ctx *ctx, int fd, trs__buf *out, const char *profile, trs_error *err)
{
	double deadline = trs__now() + PROCESS_TIMEOUT_MS / 1000.0;
	char chunk[4096];
	for (;;) {
		if (trs__canceled(ctx))
			return trs__error_set(err, TRS_ECANCELED, "canceled while credential_process ran");
		double left = deadline - trs__now();
		if (left <= 0)
			return trs__error_set(err, TRS_EAUTH,
					      "credential_process of profile '%s' did not finish within %d s",
					      profile, PROCESS_TIMEOUT_MS / 1000);
		struct pollfd pfd = {fd, POLLIN, 0};
		int pr = poll(&pfd, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1);
		if (pr < 0 && errno != EINTR)
			return trs__error_errno(err, errno, "reading credential_process output");
		if (pr <= 0)
			continue;
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return trs__error_errno(err, errno, "reading credential_process output");
		if (n == 0)
			return 0;
		if (out->len + (size_t)n > PROCESS_MAX_OUTPUT)
			return trs__error_set(err, TRS_EAUTH, "credential_process of profile '%s' printed more than %u bytes",
					      profile, PROCESS_MAX_OUTPUT);
		int rc = trs__buf_put(out, chunk, (size_t)n, err);
		if (rc < 0)
			return rc;
	}
}

static const char *json_str(yajl_val root, const char *key)
{
	const char *path[] = {key, NULL};
	yajl_val v = yajl_tree_get(root, path, yajl_t_string);
	return v ? YAJL_GET_STRING(v) : NULL;
}

/* The credentials in the command's output. */
static int parse_output(const char *json, const char *profile, trs__aws_credentials *out, trs_error *err)
{
	yajl_val root = yajl_tree_parse(json, NULL, 0);
	if (!root || !YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		return trs__error_set(err, TRS_EAUTH,
				      "credential_process of profile '%s' did not print a JSON object on stdout", profile);
	}
	const char *version_path[] = {"Version", NULL};
	yajl_val version = yajl_tree_get(root, version_path, yajl_t_number);
	const char *ak = json_str(root, "AccessKeyId"), *sk = json_str(root, "SecretAccessKey");
	const char *token = json_str(root, "SessionToken"), *exp = json_str(root, "Expiration");
	int rc;
	if (!version || !YAJL_IS_INTEGER(version) || YAJL_GET_INTEGER(version) != 1)
		rc = trs__error_set(err, TRS_EAUTH, "credential_process of profile '%s' printed no \"Version\": 1",
				    profile);
	else if (!ak || !*ak || !sk || !*sk)
		rc = trs__error_set(err, TRS_EAUTH,
				    "credential_process of profile '%s' printed no AccessKeyId or SecretAccessKey", profile);
	else if (exp && !trs__parse_iso8601(exp))
		rc = trs__error_set(err, TRS_EAUTH,
				    "credential_process of profile '%s' printed an Expiration that is not an ISO 8601 time",
				    profile);
	else
		rc = trs__aws_credentials_set(out, ak, sk, token, exp ? trs__parse_iso8601(exp) : 0,
					      "credential-process", err);
	yajl_tree_free(root);
	return rc;
}

int trs__credential_process(const trs_ctx *ctx, const char *profile, const char *command, trs__aws_credentials *out,
			    trs_error *err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return trs__error_errno(err, errno, "credential_process: cannot create a pipe");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	char *argv[] = {"sh", "-c", (char *)command, NULL};
	pid_t pid;
	int sr = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (sr != 0) {
		close(pipefd[0]);
		return trs__error_set(err, TRS_EAUTH, "credential_process of profile '%s': cannot run /bin/sh: %s",
				      profile, strerror(sr));
	}
	trs__buf output = TRS_BUF_INIT;
	int rc = read_output(ctx, pipefd[0], &output, profile, err);
	close(pipefd[0]);
	if (rc < 0)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		if (WIFEXITED(status))
			rc = trs__error_set(err, TRS_EAUTH,
					    "credential_process of profile '%s' exited with status %d (its messages are "
					    "on stderr above)",
					    profile, WEXITSTATUS(status));
		else
			rc = trs__error_set(err, TRS_EAUTH, "credential_process of profile '%s' was killed by signal %d",
					    profile, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	}
	if (rc == 0)
		rc = trs__buf_puts(&output, "", err);
	if (rc == 0)
		rc = parse_output(output.data, profile, out, err);
	if (output.data)
		memset(output.data, 0, output.len);
	trs__buf_free(&output);
	if (rc == 0)
		trs__log(ctx, TRS_LOG_DEBUG, "AWS credentials from credential_process", "profile", profile, NULL);
	return rc;
}
