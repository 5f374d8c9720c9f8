/* SPDX-License-Identifier: Apache-2.0 */
/* trs serve: the queue consumer (arguments and environment only; the loop is trs_serve). */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char usage[] =
	"usage: trs serve --queue URL [options]\n"
	"\n"
	"Receive S3 notifications of new archives from a queue and restore each archive\n"
	"to its targets in this region; delete the archive and the message when every\n"
	"object was written. SIGTERM/SIGINT stop gracefully (a second one stops at once).\n"
	"\n"
	"  --queue URL              SQS queue URL, or dir://PATH (a spool directory of *.json\n"
	"                           messages; ?max_receives=N[&dead_letter=DIR] moves a message\n"
	"                           received N times to DIR, default PATH/.dead) [SQS_QUEUE_URL]\n"
	"  --dest URL               file://DIR restores into DIR/<bucket>/<key>; default: S3\n"
	"  --staging URL            where archives are read: file://DIR reads the event's\n"
	"                           bucket/key under DIR; default: S3\n"
	"  --batch N                messages per receive, 1..10 [MAX_MESSAGES_PER_BATCH, 1]\n"
	"  --visibility-timeout S   seconds a message stays invisible; heartbeats extend it\n"
	"                           [VISIBILITY_TIMEOUT, 300]\n"
	"  --workers N              parallel writers of the whole consumer; also the default\n"
	"                           of --max-inflight [MAX_WORKERS, cpu count]\n"
	"  --max-inflight N         S3 transfers in flight, all archives together (--workers\n"
	"                           when given, else 32)\n"
	"  --max-memory BYTES       object data buffered in flight, all archives together (256M)\n"
	"  --archives N             archives restored at once, 1..256 [MAX_ARCHIVES, 16]; they\n"
	"                           share --max-memory, --max-inflight and --workers: one alone\n"
	"                           may use all, each running is sure of 1/N\n"
	"  --max-attempts N         tries per AWS request, 1..100 [AWS_MAX_ATTEMPTS, 5]\n"
	"  --poll-interval S        long-poll wait, 0..20 [POLL_INTERVAL, 20]\n"
	"  --shutdown-grace S       seconds the archives in progress may take after SIGTERM (30)\n"
	"  --max-idle S             exit 0 after S seconds with no message (batch jobs); 0: never\n"
	"  --health-file PATH       touch PATH at every turn of the loop (liveness probe:\n"
	"                           trs health) [TRS_HEALTH_FILE]\n"
	"  --region R               this service's region [AWS_REGION, AWS_DEFAULT_REGION]\n"
	"  --endpoint-url URL       S3-compatible endpoint for staging and destination\n"
	"                           (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS)\n"
	"  --catalog-bucket B       bucket of the backup catalogs (needed by archives with a\n"
	"                           backup target in this region) [CATALOG_BUCKET]\n"
	"  --metrics SINK           emf (JSON lines on stdout, as the Python container),\n"
	"                           cloudwatch (PutMetricData) or none [TRS_METRICS; emf,\n"
	"                           none for dir:// queues]; namespace [STACK_NAME, S3Compressor]\n"
	"  --no-verify-ssl          do not verify TLS certificates (test endpoints only)\n"
	"  --profile NAME           AWS profile of ~/.aws/config and ~/.aws/credentials (keys,\n"
	"                           credential_process, role_arn + source_profile) [AWS_PROFILE]\n"
	"  --ca-bundle FILE         PEM file of the CAs to trust for TLS [AWS_CA_BUNDLE]\n"
	"  --overwrite WHEN         newer (default): an object replaces only an older version of\n"
	"                           itself (S3 conditional writes); always: write whatever\n"
	"                           stands there (servers without conditional writes)\n"
	"                           [TRS_OVERWRITE]\n"
	"  --foreign-archives A     fail (default): an archive with targets but none in this\n"
	"                           region fails; archive and message are kept for the\n"
	"                           dead-letter queue; skip: nothing to do [TRS_FOREIGN_ARCHIVES]\n"
	"  -q, --quiet              only errors are logged\n"
	"  -v, --verbose            info records (the default); -vv: debug records too\n"
	"  --log-level L            error, warn, info (default), debug\n"
	"  --log-format F           json (default when stderr is not a terminal) or text\n";

static volatile int stop_flag;
static volatile int cancel_flag;

/* The library's threads read the flags with atomic loads, and the handler may
 * run on any thread: atomic stores (lock-free, so async-signal-safe). */
static void on_signal(int sig)
{
	(void)sig;
	if (__atomic_exchange_n(&stop_flag, 1, __ATOMIC_SEQ_CST))
		__atomic_store_n(&cancel_flag, 1, __ATOMIC_SEQ_CST); /* the second signal: stop now */
}

/* A flag's value as an unsigned number in [lo, hi], marked as set; false when bad. */
static bool flag_uint(const char *arg, unsigned long long lo, unsigned long long hi, unsigned long long *out,
		      bool *set)
{
	unsigned long long v;
	if (!cli_parse_uint(arg, hi, &v) || v < lo)
		return false;
	*out = v;
	*set = true;
	return true;
}

typedef struct serve_config {
	const char *queue, *dest, *staging, *endpoint, *catalog, *health_file;
	unsigned long long workers, grace, max_idle, attempts, inflight;
	bool workers_set, grace_set, inflight_set;
	uint64_t max_memory;
	trs_metrics_sink metrics;
	bool metrics_set;
	int no_verify_ssl;
} serve_config;

static int make_storages(trs_ctx *ctx, const serve_config *cfg, trs_storage **dest, trs_storage **staging,
			 trs_error *err)
{
	trs_s3_options s3o = TRS_S3_OPTIONS_INIT;
	s3o.endpoint_url = cfg->endpoint;
	s3o.no_verify_ssl = cfg->no_verify_ssl;
	s3o.max_attempts = (unsigned)cfg->attempts;
	int rc = cfg->dest ? trs_storage_open(dest, ctx, cfg->dest, err) : trs_storage_s3_new(dest, ctx, &s3o, err);
	if (rc < 0)
		return rc;
	if (cfg->staging)
		return trs_storage_open(staging, ctx, cfg->staging, err);
	if (!cfg->dest)
		return 0; /* S3 serves both */
	return trs_storage_s3_new(staging, ctx, &s3o, err);
}

int cmd_serve(int argc, char **argv)
{
	enum {
		O_QUEUE = 256, O_DEST, O_STAGING, O_BATCH, O_VIS, O_WORKERS, O_POLL, O_GRACE, O_METRICS, O_CATALOG,
		O_ARCHIVES, O_MAX_IDLE, O_HEALTH, O_ATTEMPTS, O_INFLIGHT, O_MEM
	};
	static const struct option opts[] = {
		CLI_COMMON_OPTIONS,
		CLI_WRITE_OPTIONS,
		{"queue", required_argument, 0, O_QUEUE},
		{"dest", required_argument, 0, O_DEST},
		{"staging", required_argument, 0, O_STAGING},
		{"batch", required_argument, 0, O_BATCH},
		{"visibility-timeout", required_argument, 0, O_VIS},
		{"workers", required_argument, 0, O_WORKERS},
		{"poll-interval", required_argument, 0, O_POLL},
		{"shutdown-grace", required_argument, 0, O_GRACE},
		{"metrics", required_argument, 0, O_METRICS},
		{"catalog-bucket", required_argument, 0, O_CATALOG},
		{"archives", required_argument, 0, O_ARCHIVES},
		{"max-idle", required_argument, 0, O_MAX_IDLE},
		{"health-file", required_argument, 0, O_HEALTH},
		{"max-attempts", required_argument, 0, O_ATTEMPTS},
		{"max-inflight", required_argument, 0, O_INFLIGHT},
		{"max-memory", required_argument, 0, O_MEM},
		CLI_VERBOSITY_OPTIONS,
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	cli_log log;
	cli_log_init(&log);
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	serve_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	/* As the Python container: EMF lines on stdout, which CloudWatch Logs turns into metrics. */
	cfg.metrics = TRS_METRICS_EMF;
	/* The environment first (the library reads the Python container's names); flags win below. */
	trs_serve_options so = TRS_SERVE_OPTIONS_INIT;
	trs_serve_env senv = TRS_SERVE_ENV_INIT;
	trs_error err = TRS_ERROR_INIT;
	if (trs_serve_options_from_env(&so, &senv, &err) < 0) {
		fprintf(stderr, "trs serve: %s\n", err.message);
		return EXIT_USAGE;
	}
	cfg.queue = senv.queue_url;
	cfg.catalog = senv.catalog_bucket;
	cfg.workers = senv.workers;
	cfg.workers_set = senv.workers != 0;
	const char *env_metrics = getenv("TRS_METRICS");
	cfg.metrics_set = env_metrics && *env_metrics;
	if (env_metrics && *env_metrics && trs_metrics_sink_parse(env_metrics, &cfg.metrics) < 0) {
		fprintf(stderr, "trs serve: bad value '%s' for TRS_METRICS (cloudwatch, emf or none)\n", env_metrics);
		return EXIT_USAGE;
	}
	trs_process_options po = TRS_PROCESS_OPTIONS_INIT;
	if (trs_process_options_from_env(&po, &err) < 0) {
		fprintf(stderr, "trs serve: %s\n", err.message);
		return EXIT_USAGE;
	}
	cli_common cc = {0};
	unsigned long long v;
	bool set;
	int c, taken;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "hqv", opts, "serve")) != -1) {
		if (cli_verbosity_option(c, &log))
			continue;
		if ((taken = cli_common_option(c, optarg, &cc, &log)) < 0 ||
		    (!taken && (taken = cli_write_option(c, optarg, &po)) < 0))
			goto bad_value;
		if (taken)
			continue;
		switch (c) {
		case O_QUEUE: cfg.queue = optarg; break;
		case O_DEST: cfg.dest = optarg; break;
		case O_STAGING: cfg.staging = optarg; break;
		case O_CATALOG:
			if (!*optarg)
				goto bad_value;
			cfg.catalog = optarg;
			break;
		case O_BATCH:
			if (!flag_uint(optarg, 1, TRS_QUEUE_MAX_MESSAGES, &v, &set))
				goto bad_value;
			so.max_messages = (unsigned)v;
			break;
		case O_VIS:
			if (!flag_uint(optarg, 1, TRS_QUEUE_MAX_VISIBILITY, &v, &set))
				goto bad_value;
			so.visibility_timeout = (unsigned)v;
			break;
		case O_WORKERS:
			if (!flag_uint(optarg, 1, 1024, &cfg.workers, &cfg.workers_set))
				goto bad_value;
			break;
		case O_POLL:
			if (!flag_uint(optarg, 0, TRS_QUEUE_MAX_WAIT, &v, &set))
				goto bad_value;
			so.wait_seconds = (unsigned)v;
			so.wait_set = 1;
			break;
		case O_ARCHIVES:
			if (!flag_uint(optarg, 1, TRS_SERVE_MAX_ARCHIVES, &v, &set))
				goto bad_value;
			so.archives = (unsigned)v;
			break;
		case O_ATTEMPTS:
			if (!flag_uint(optarg, 1, 100, &cfg.attempts, &set))
				goto bad_value;
			break;
		case O_INFLIGHT:
			if (!flag_uint(optarg, 1, 1024, &cfg.inflight, &cfg.inflight_set))
				goto bad_value;
			break;
		case O_MEM:
			if (!cli_parse_bytes(optarg, &cfg.max_memory) || cfg.max_memory < (1u << 20))
				goto bad_value;
			break;
		case O_MAX_IDLE:
			if (!flag_uint(optarg, 0, 86400, &cfg.max_idle, &set))
				goto bad_value;
			break;
		case O_HEALTH:
			if (!*optarg)
				goto bad_value;
			cfg.health_file = optarg;
			break;
		case O_GRACE:
			if (!flag_uint(optarg, 0, 3600, &cfg.grace, &cfg.grace_set))
				goto bad_value;
			break;
		case O_METRICS:
			if (trs_metrics_sink_parse(optarg, &cfg.metrics) < 0)
				goto bad_value;
			cfg.metrics_set = true;
			break;
		case 'h': fputs(usage, stdout); return EXIT_OK;
		default: return cli_usage_error("serve", NULL);
		}
		continue;
	bad_value:
		return cli_bad_value("serve", optarg, cli_option_name(opts, c));
	}
	cli_common_apply(&cc, &co);
	cfg.endpoint = cc.endpoint;
	cfg.no_verify_ssl = cc.no_verify_ssl;
	if (optind != argc) {
		return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
	}
	if (!cfg.queue) {
		fprintf(stderr, "trs serve: no queue: pass --queue URL or set SQS_QUEUE_URL\n");
		return EXIT_USAGE;
	}
	/* A dir:// spool runs without AWS: no metrics unless asked for. */
	if (!cfg.metrics_set && strncmp(cfg.queue, "dir://", 6) == 0)
		cfg.metrics = TRS_METRICS_NONE;
	co.log = cli_log_sink;
	co.log_level = log.level;
	co.log_userdata = &log;
	co.cancel = &cancel_flag;
	/* MAX_WORKERS / --workers: the consumer's parallel writers, local or remote,
	 * unless --max-inflight sets the remote ones. */
	if (cfg.workers_set) {
		co.workers = (unsigned)cfg.workers;
		co.max_inflight = (unsigned)cfg.workers;
	}
	if (cfg.inflight_set)
		co.max_inflight = (unsigned)cfg.inflight;
	co.max_memory = cfg.max_memory;

	trs_ctx *ctx = NULL;
	trs_queue *queue = NULL;
	trs_storage *dest = NULL, *staging = NULL;
	trs_metrics *metrics = NULL;
	int rc = trs_ctx_new(&ctx, &co, &err);
	if (rc == 0 && !*trs_ctx_region(ctx)) {
		rc = TRS_EINVAL;
		snprintf(err.message, sizeof(err.message),
			 "no region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION (only targets in this "
			 "service's region are restored)");
	}
	if (rc == 0 && (strncasecmp(cfg.queue, "https://", 8) == 0 || strncasecmp(cfg.queue, "http://", 7) == 0)) {
		/* SQS gets the same TLS setting as S3 and CloudWatch. */
		trs_sqs_options qo = TRS_SQS_OPTIONS_INIT;
		qo.queue_url = cfg.queue;
		qo.no_verify_ssl = cfg.no_verify_ssl;
		qo.max_attempts = (unsigned)cfg.attempts;
		rc = trs_queue_sqs_new(&queue, ctx, &qo, &err);
	} else if (rc == 0) {
		rc = trs_queue_open(&queue, ctx, cfg.queue, &err);
	}
	if (rc == 0)
		rc = make_storages(ctx, &cfg, &dest, &staging, &err);
	if (rc == 0 && cfg.metrics != TRS_METRICS_NONE) {
		trs_metrics_options mo = TRS_METRICS_OPTIONS_INIT;
		mo.sink = cfg.metrics;
		mo.no_verify_ssl = cfg.no_verify_ssl;
		rc = trs_metrics_new(&metrics, ctx, &mo, &err);
	}
	if (rc < 0) {
		cli_log_msg(&log, TRS_LOG_ERROR, err.message, "code", trs_strerror(rc));
		trs_metrics_free(metrics);
		trs_storage_free(staging);
		trs_storage_free(dest);
		trs_queue_free(queue);
		trs_ctx_free(ctx);
		return EXIT_USAGE;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	so.shutdown_grace = cfg.grace_set ? (cfg.grace ? (double)cfg.grace : -1) : 30;
	so.stop = &stop_flag;
	so.staging = staging;
	so.metrics = metrics;
	so.queue_label = cfg.queue;
	so.max_idle = (double)cfg.max_idle;
	if (cfg.health_file)
		so.health_file = cfg.health_file; /* else TRS_HEALTH_FILE's, if any */
	po.catalog_bucket = cfg.catalog;
	so.process = &po;
	rc = trs_serve(ctx, queue, dest, &so, &err);
	if (rc < 0)
		cli_log_msg(&log, TRS_LOG_ERROR, err.message, "code", trs_strerror(rc));
	trs_metrics_free(metrics);
	trs_storage_free(staging);
	trs_storage_free(dest);
	trs_queue_free(queue);
	trs_ctx_free(ctx);
	/* A queue that does not exist or refuses us is a configuration error. */
	return rc == 0 ? EXIT_OK : rc == TRS_ENOTFOUND || rc == TRS_EAUTH || rc == TRS_EINVAL ? EXIT_USAGE : 1;
}
