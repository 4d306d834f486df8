/* lightr dkim generate|list|rotate|export: DKIM signing keys per domain (issue 5). Private keys
 * are printed only by "dkim export". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_private.h"
#include "dkim/dkim.h"
#include "server/server.h"
#include "mail/addr.h"
#include "util/clock.h"
#include "util/strconv.h"

#define DKIM_KEEP_DAYS_DEFAULT 7
#define DKIM_KEEP_DAYS_MAX     3650

static int
dkim_algo_arg(const char *s, enum dkim_algo *algo_r, const char *usage)
{
	if (s == NULL) {
		*algo_r = DKIM_ALGO_ED25519;
		return 0;
	}
	if (dkim_algo_parse(s, algo_r) < 0) {
		cli_usage_error(usage, "--algo must be ed25519 or rsa");
		return -1;
	}
	return 0;
}

static int
dkim_generate(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] =
	    "lightr dkim generate DOMAIN [--algo ed25519|rsa] [--bits 2048|3072|4096] "
	    "[--selector S]";
	static const struct cli_opt opts[] = {
	    {"--algo", true}, {"--bits", true}, {"--selector", true}, {NULL, false}};
	PARSE_ARGS(opts, usage,
	           "Generates a new active DKIM key for DOMAIN (default: Ed25519). RSA keys have\n"
	           "2048 (default), 3072 or 4096 bits. The default selector is <algo>-<YYYYMMDD>.\n"
	           "Publish it with 'lightr domain dns DOMAIN'.\n",
	           1, 1);
	enum dkim_algo algo;
	if (dkim_algo_arg(a.val[0], &algo, usage) < 0)
		return EXIT_USAGE;
	unsigned bits = algo == DKIM_ALGO_RSA ? 2048 : 256;
	if (a.val[1]) {
		uint64_t b;
		if (algo != DKIM_ALGO_RSA)
			return cli_usage_error(usage, "--bits is only for --algo rsa");
		if (strconv_u64(slice_from(a.val[1]), 4096, &b) < 0 ||
		    (b != 2048 && b != 3072 && b != 4096))
			return cli_usage_error(usage, "--bits must be 2048, 3072 or 4096");
		bits = (unsigned)b;
	}
	char name[ADDR_DOMAIN_MAX + 1];
	if (cli_domain_arg(a.pos[0], name, sizeof name) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	if (st == NULL)
		return EXIT_FAIL;
	struct err err;
	struct store_domain d;
	if (store_domain_get(st, name, &d, &err) < 0)
		return cli_store_error(name, &err);
	store_domain_deinit(&d);
	char sel[SERVER_SELECTOR_MAX];
	int rc = server_dkim_generate(st, name, dkim_algo_name(algo), bits, a.val[2], clock_now(),
	                              sel, &err);
	if (rc == 0)
		printf("dkim key %s for %s added (%s, %u bits)\n", sel, name, dkim_algo_name(algo),
		       bits);
	return rc < 0 ? cli_store_error(name, &err) : EXIT_OK;
}

static int
dkim_list(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr dkim list [DOMAIN]",
	           "Lists DKIM keys (all domains, or one) with their state: active (signs),\n"
	           "published (rotated out, still in DNS until retire_at) or retired.\n",
	           0, 1);
	char name[ADDR_DOMAIN_MAX + 1];
	if (a.n_pos == 1 && cli_domain_arg(a.pos[0], name, sizeof name) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	if (st == NULL)
		return EXIT_FAIL;
	struct err err;
	struct store_dkim_key *v;
	size_t n;
	if (store_dkim_retire_due(st, clock_now(), NULL, &err) < 0)
		return cli_store_error("dkim list", &err);
	if (store_dkim_list(st, a.n_pos == 1 ? name : NULL, &v, &n, &err) < 0)
		return cli_store_error(a.n_pos == 1 ? name : "dkim list", &err);
	if (n == 0)
		printf("no DKIM keys%s%s (add them with 'lightr dkim generate DOMAIN')\n",
		       a.n_pos == 1 ? " for " : "", a.n_pos == 1 ? name : "");
	else
		printf("%-30s %-28s %-8s %5s %-9s %-20s %s\n", "DOMAIN", "SELECTOR", "ALGO", "BITS",
		       "STATE", "CREATED", "RETIRE_AT");
	for (size_t i = 0; i < n; i++) {
		char created[32], retire[32] = "-";
		cli_fmt_time(v[i].created, created, sizeof created);
		if (v[i].retire_at)
			cli_fmt_time(v[i].retire_at, retire, sizeof retire);
		printf("%-30s %-28s %-8s %5u %-9s %-20s %s\n", v[i].domain, v[i].selector,
		       v[i].algo, v[i].bits, v[i].state, created, retire);
	}
	store_dkim_list_free(&v, n);
	return EXIT_OK;
}

static int
dkim_rotate(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr dkim rotate DOMAIN [--keep-days N]";
	static const struct cli_opt opts[] = {{"--keep-days", true}, {NULL, false}};
	PARSE_ARGS(
	    opts, usage,
	    "Generates new Ed25519 and RSA-2048 keys that sign from now on; the old active\n"
	    "keys stay published in DNS for N days (default 7) so that mail in flight still\n"
	    "verifies, then retire.\n",
	    1, 1);
	uint64_t keep = DKIM_KEEP_DAYS_DEFAULT;
	if (a.val[0] && strconv_u64(slice_from(a.val[0]), DKIM_KEEP_DAYS_MAX, &keep) < 0)
		return cli_usage_error(usage, "--keep-days must be a number from 0 to %d",
		                       DKIM_KEEP_DAYS_MAX);
	char name[ADDR_DOMAIN_MAX + 1];
	if (cli_domain_arg(a.pos[0], name, sizeof name) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	if (st == NULL)
		return EXIT_FAIL;
	struct err err;
	struct store_domain d;
	if (store_domain_get(st, name, &d, &err) < 0)
		return cli_store_error(name, &err);
	store_domain_deinit(&d);
	int64_t now = clock_now();
	char sel[2][SERVER_SELECTOR_MAX];
	int rc = server_dkim_rotate(st, name, (unsigned)keep, now, sel, &err);
	if (rc == 0) {
		char when[32];
		cli_fmt_time(now + (int64_t)keep * 86400, when, sizeof when);
		printf("dkim keys of %s rotated: %s and %s sign now; old keys published until %s\n",
		       name, sel[0], sel[1], when);
	}
	return rc < 0 ? cli_store_error(name, &err) : EXIT_OK;
}

static int
dkim_export(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr dkim export DOMAIN SELECTOR",
	           "Prints the private key (PEM) of a DKIM key. Keep it secret.\n", 2, 2);
	char name[ADDR_DOMAIN_MAX + 1];
	if (cli_domain_arg(a.pos[0], name, sizeof name) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	if (st == NULL)
		return EXIT_FAIL;
	struct err err;
	char *pem;
	if (store_dkim_export(st, name, a.pos[1], &pem, &err) < 0)
		return cli_store_error(name, &err);
	fputs(pem, stdout);
	free(pem);
	return EXIT_OK;
}

int
cmd_dkim(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"generate", dkim_generate, "generate a new active key for a domain"},
	    {"list", dkim_list, "list keys with their state"},
	    {"rotate", dkim_rotate, "new keys sign; old ones stay published N days"},
	    {"export", dkim_export, "print a key's private PEM"},
	    {NULL, NULL, NULL},
	};
	return cli_dispatch(ctx, "dkim", subs, argc, argv);
}
