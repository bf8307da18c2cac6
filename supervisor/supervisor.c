/*
 * supervisor.c: palyrad's entry point.
 * Runs as the privileged supervisor. Reads the config file and the command
 * line, prepares the state directory and the listening sockets, then starts
 * and supervises palyra-journald, palyra-front and the palyra-workers of
 * each tenant, which start on first use. It never reads network or tenant data.
 */
#include <sys/stat.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "config.h"
#include "log.h"
#include "proc.h"
#include "sup.h"
#include "vault.h"

#ifndef PALYRA_DEFAULT_CONFIG
#define PALYRA_DEFAULT_CONFIG "/etc/palyra/palyrad.conf"
#endif

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: palyrad [-dnv] [-f file]\n");
	exit(PROC_EXIT_USAGE);
}

/* The helpers live next to our own executable: ../libexec/palyra in an
 * installed PREFIX (sbin/palyrad, libexec/palyra/palyra-front, as make
 * install lays them out), ../libexec in the build tree (bin/palyrad,
 * libexec/palyra-front). No compiled-in path, so a DESTDIR works too. */
static int
find_libexec(struct sup_ctx *ctx)
{
	char exe[PATH_MAX], *dir;
	struct stat st;
	ssize_t n;

	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return -1;
	exe[n] = '\0';
	dir = dirname(exe);
	snprintf(ctx->libexec, sizeof(ctx->libexec), "%s/../libexec/palyra",
	    dir);
	if (stat(ctx->libexec, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	snprintf(ctx->libexec, sizeof(ctx->libexec), "%s/../libexec", dir);
	return 0;
}

static void
stop_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sup_ctx *ctx = arg;

	sup_children_kill(ctx);
	event_base_loopexit(ctx->base, NULL);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct sup_ctx *ctx = arg;
	char err[CFG_ERR_LEN];
	struct timeval tv = { SUP_STOP_DEADLINE_MS / 1000,
	    (SUP_STOP_DEADLINE_MS % 1000) * 1000 };

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		if (ctx->stopping)
			return;
		log_info("received %s; stopping", sig == SIGTERM ?
		    "SIGTERM" : "SIGINT");
		evtimer_add(ctx->stop_timer, &tv);
		sup_children_stop(ctx);
		if (sup_children_all_stopped(ctx))
			event_base_loopexit(ctx->base, NULL);
		break;
	case SIGHUP:
		if (!ctx->stopping)
			(void)sup_reload(ctx, "SIGHUP", err, sizeof(err));
		break;
	default:
		break;
	}
}

int
main(int argc, char *argv[])
{
	struct sup_ctx ctx;
	char err[CFG_ERR_LEN];
	const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	int ch, check_only = 0;
	size_t i;

	memset(&ctx, 0, sizeof(ctx));
	ctx.config_path = PALYRA_DEFAULT_CONFIG;
	ctx.grpc_fd = ctx.http_fd = -1;
	while ((ch = getopt(argc, argv, "df:nv")) != -1) {
		switch (ch) {
		case 'd':
			ctx.foreground = 1;
			break;
		case 'f':
			ctx.config_path = optarg;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'v':
			ctx.verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (getcwd(ctx.start_dir, sizeof(ctx.start_dir)) == NULL)
		fatal("getcwd");
	if (cfg_load(ctx.config_path, ctx.start_dir, &ctx.cfg, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return PROC_EXIT_FATAL;
	}
	/* Secret files others may read and a state directory others may
	 * write are refused before anything uses them. */
	if (sup_safety_check(ctx.cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		cfg_free(ctx.cfg);
		return PROC_EXIT_FATAL;
	}
	/* The certificate and key files must be readable now (and the keys
	 * private), not only when the front starts. */
	if (sup_tls_check(ctx.cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "palyrad: tls: %s\n", err);
		cfg_free(ctx.cfg);
		return PROC_EXIT_FATAL;
	}
	if (sup_wire_check(ctx.cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		cfg_free(ctx.cfg);
		return PROC_EXIT_FATAL;
	}
	/* Every vault key must unwrap with master.key: another master key
	 * (a restore that mixed two hosts) is refused before any start. */
	if (sup_vault_check(ctx.cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "palyrad: %s\n", err);
		cfg_free(ctx.cfg);
		return PROC_EXIT_FATAL;
	}
	if (check_only) {
		if (ctx.verbose)
			cfg_dump(ctx.cfg, stdout);
		fprintf(stderr, "%s: configuration OK\n", ctx.config_path);
		cfg_free(ctx.cfg);
		return PROC_EXIT_OK;
	}

	log_init("palyrad", NULL, ctx.verbose, 1);
	if (sodium_init() == -1)
		fatalx("sodium_init failed");
	if (find_libexec(&ctx) == -1)
		fatal("cannot locate the libexec directory");
	ctx.started_ms = sup_now_ms();
	/* The tenants created through the admin API join those of the
	 * file once the state directory exists. */
	if (sup_state_init(&ctx) == -1 ||
	    sup_tenants_merge(ctx.cfg->state_dir, ctx.cfg) == -1 ||
	    sup_uids_init(&ctx) == -1 ||
	    sup_state_own(&ctx) == -1 || sup_listeners_open(&ctx) == -1)
		return PROC_EXIT_FATAL;
	if (!ctx.foreground) {
		if (daemon(0, 0) == -1)
			fatal("daemon");
		log_init("palyrad", NULL, ctx.verbose, 0);
	}
	signal(SIGPIPE, SIG_IGN);
	/* After daemon(): in v2 palyrad moves its own pid into a leaf. */
	sup_cgroup_init(&ctx);

	if ((ctx.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		ctx.signals[i] = evsignal_new(ctx.base, sigs[i], signal_cb,
		    &ctx);
		if (ctx.signals[i] == NULL ||
		    evsignal_add(ctx.signals[i], NULL) == -1)
			fatalx("cannot handle signal %d", sigs[i]);
	}
	if ((ctx.stop_timer = evtimer_new(ctx.base, stop_deadline_cb,
	    &ctx)) == NULL)
		fatalx("evtimer_new failed");
	if (sup_children_init(&ctx) != 0)
		fatalx("cannot set up the children");
	log_info("starting: config %s, state %s", ctx.config_path,
	    ctx.cfg->state_dir);
	sup_children_start(&ctx);

	event_base_dispatch(ctx.base);

	sup_children_kill(&ctx);
	sup_cgroup_cleanup(&ctx);
	sup_children_free(&ctx);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		event_free(ctx.signals[i]);
	event_free(ctx.stop_timer);
	event_base_free(ctx.base);
	close(ctx.grpc_fd);
	close(ctx.http_fd);
	sodium_memzero(ctx.token_hash_key, sizeof(ctx.token_hash_key));
	free(ctx.uids);
	cfg_free(ctx.cfg);
	log_info("stopped");
	return PROC_EXIT_OK;
}
