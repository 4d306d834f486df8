/* lightr: the one binary. Git-style subcommands (DESIGN.md §6); the config file is -c FILE
 * (before or after the subcommand), else $LIGHTR_CONFIG, else ./lightr.yaml, else the built-in
 * defaults. Exit status 0 ok, 1 failure, 2 usage. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_private.h"
#include "util/log.h"

static const struct cli_sub commands[] = {
    {"serve", cmd_serve, "run the server"},
    {"quickstart", cmd_quickstart, "write a config and create a first domain and account"},
    {"config", cmd_config, "check or dump the configuration"},
    {"domain", cmd_domain, "add, list, show or remove mail domains"},
    {"account", cmd_account, "add, list, show, change or remove accounts"},
    {"alias", cmd_alias, "add, list or remove aliases and catch-alls"},
    {"dkim", cmd_dkim, "generate, list, rotate or export DKIM signing keys"},
    {"send", cmd_send, "send a message from standard input (as submission does)"},
    {"queue", cmd_queue, "list, show, retry, hold, release or drop queued mail"},
    {"apikey", cmd_apikey, "create, list or revoke REST API keys"},
    {"webhook", cmd_webhook, "add, list or remove webhooks"},
    {"suppression", cmd_suppression, "add, list or remove suppressed addresses"},
    {"backup", cmd_backup, "write a consistent copy of the database"},
    {"version", cmd_version, "print the version"},
    {NULL, NULL, NULL},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: lightr [-c FILE] <command> [options]\n\ncommands:\n");
	for (const struct cli_sub *s = commands; s->name; s++)
		fprintf(f, "  %-11s %s\n", s->name, s->summary);
	fprintf(
	    f, "\nThe config file is -c FILE, else $LIGHTR_CONFIG, else ./lightr.yaml when it "
	       "exists,\nelse the built-in defaults. Run 'lightr <command> --help' for details.\n");
}

/* Removes "-c FILE", "--config FILE" and "--config=FILE" wherever they appear. */
static int
take_config_opt(int *argc, char **argv, const char **path_r)
{
	int o = 1;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			while (i < *argc)
				argv[o++] = argv[i++];
			break;
		}
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= *argc) {
				cli_error("%s needs a file name", a);
				return -1;
			}
			*path_r = argv[++i];
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0) {
			*path_r = a + 9;
			continue;
		}
		argv[o++] = argv[i];
	}
	*argc = o;
	argv[o] = NULL;
	return 0;
}

/* Idle IMAP connections (DESIGN.md §1: a thread each) must stay small: glibc keeps up to 7 freed
 * chunks per size class in a per-thread cache (tcache) that nothing but thread exit empties, so
 * memory SQLite freed on an IDLE thread stays resident (measured: 49 KiB per idle connection with
 * the cache, 21 KiB without). Tunables are read only at process start, so "serve" re-executes
 * itself once with the cache off. Other allocators (ASan) ignore the variable. */
static void
serve_tune_malloc(int argc, char **argv)
{
	static const char tunable[] = "glibc.malloc.tcache_count=0";
	bool serve = false;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "serve") == 0)
			serve = true;
	const char *cur = getenv("GLIBC_TUNABLES");
	if (!serve || (cur && strstr(cur, "tcache_count") != NULL))
		return;
	char val[512];
	int n = cur && *cur ? snprintf(val, sizeof val, "%s:%s", cur, tunable)
	                    : snprintf(val, sizeof val, "%s", tunable);
	if (n < 0 || (size_t)n >= sizeof val || setenv("GLIBC_TUNABLES", val, 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	/* Not fatal: the server works, idle connections just cost more. */
}

int
main(int argc, char **argv)
{
	serve_tune_malloc(argc, argv);
	struct cli_ctx ctx = {0};
	if (take_config_opt(&argc, argv, &ctx.config_path) < 0)
		return EXIT_USAGE;
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(name, "--version") == 0)
		name = "version";
	/* Administrative commands report their result on stdout and problems on stderr; the
	 * store's info-level lines are for the server log, not for the operator's terminal. */
	if (strcmp(name, "serve") != 0)
		log_set_level(LOG_WARN);
	int rc = -1;
	bool found = false;
	for (const struct cli_sub *s = commands; s->name && !found; s++)
		if (strcmp(s->name, name) == 0) {
			found = true;
			rc = s->run(&ctx, argc - 2, argv + 2);
		}
	if (!found) {
		cli_error("unknown command '%s'", name);
		usage(stderr);
	}
	if (rc < 0) /* a usage error reported by the command (cli_usage_error) */
		rc = EXIT_USAGE;
	store_close(&ctx.store);
	config_unref(&ctx.cfg);
	return rc;
}
