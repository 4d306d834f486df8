/* lightr dkim generate|list|rotate|export: DKIM signing keys per domain (issue 5). Private keys
 * are printed only by "dkim export". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_private.h"
#include "dkim/dkim.h"
#include "mail/addr.h"
#include "util/clock.h"
#include "util/strconv.h"

#define DKIM_KEEP_DAYS_DEFAULT 7
#define DKIM_KEEP_DAYS_MAX     3650
#define DKIM_SELECTOR_TRIES    100

/* A selector "<algo>-<YYYYMMDD>" not yet used by domain ("-2", "-3"... appended when taken, also
 * against the names in taken[0..n_taken)). */
static int
dkim_default_selector(struct store *st, const char *domain, enum dkim_algo algo, int64_t now,
                      char *out, size_t n, struct err *err)
{
	time_t t = (time_t)now;
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL)
		return err_set(err, STORE_EINVAL, "bad time");
	char base[32];
	if (strftime(base, sizeof base, "%Y%m%d", &tm) == 0)
		return err_set(err, STORE_EINVAL, "bad time");
	struct store_dkim_key *v;
	size_t nv;
	if (store_dkim_list(st, domain, &v, &nv, err) < 0)
		return -1;
	int ret = -1;
	for (int i = 1; i <= DKIM_SELECTOR_TRIES; i++) {
		int w = i == 1 ? snprintf(out, n, "%s-%s", dkim_algo_name(algo), base)
		               : snprintf(out, n, "%s-%s-%d", dkim_algo_name(algo), base, i);
		if (w < 0 || (size_t)w >= n)
			break;
		bool used = false;
		for (size_t j = 0; j < nv && !used; j++)
			used = strcmp(v[j].selector, out) == 0;
		if (!used) {
			ret = 0;
			break;
		}
	}
	store_dkim_list_free(&v, nv);
	if (ret < 0)
		err_set(err, STORE_EEXIST, "no free selector for %s", dkim_algo_name(algo));
	return ret;
}

/* A freshly generated key, owning its strings. */
struct dkim_gen {
	char selector[64];
	char *pem, *pub;
	struct store_dkim_new k;
};

static void
dkim_gen_deinit(struct dkim_gen *g)
{
	free(g->pem);
	free(g->pub);
	g->pem = g->pub = NULL;
}

static int
dkim_gen_one(struct store *st, const char *domain, enum dkim_algo algo, unsigned bits,
             const char *selector, int64_t now, struct dkim_gen *g, struct err *err)
{
	memset(g, 0, sizeof *g);
	if (selector) {
		if (snprintf(g->selector, sizeof g->selector, "%s", selector) >=
		    (int)sizeof g->selector)
			return err_set(err, STORE_EINVAL, "selector too long");
	} else if (dkim_default_selector(st, domain, algo, now, g->selector, sizeof g->selector,
	                                 err) < 0) {
		return -1;
	}
	if (algo == DKIM_ALGO_ED25519)
		bits = 256;
	if (dkim_keygen(algo, algo == DKIM_ALGO_ED25519 ? 0 : bits, &g->pem, &g->pub, err) < 0)
		return -1;
	g->k = (struct store_dkim_new){.selector = g->selector,
	                               .algo = dkim_algo_name(algo),
	                               .bits = bits,
	                               .private_pem = g->pem,
	                               .public_b64 = g->pub};
	return 0;
}

/* For domain add (and quickstart): one Ed25519 and one RSA-2048 active key. */
int
cli_dkim_default_keys(struct store *st, const char *domain, struct err *err)
{
	int64_t now = clock_now();
	static const struct {
		enum dkim_algo algo;
		unsigned bits;
	} defs[2] = {{DKIM_ALGO_ED25519, 256}, {DKIM_ALGO_RSA, 2048}};
	for (size_t i = 0; i < 2; i++) {
		struct dkim_gen g;
		int rc = dkim_gen_one(st, domain, defs[i].algo, defs[i].bits, NULL, now, &g, err);
		if (rc == 0)
			rc = store_dkim_add(st, domain, &g.k, now, err);
		dkim_gen_deinit(&g);
		if (rc < 0)
			return -1;
	}
	return 0;
}

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
	int64_t now = clock_now();
	struct dkim_gen g;
	int rc = dkim_gen_one(st, name, algo, bits, a.val[2], now, &g, &err);
	if (rc == 0)
		rc = store_dkim_add(st, name, &g.k, now, &err);
	if (rc == 0)
		printf("dkim key %s for %s added (%s, %u bits)\n", g.selector, name,
		       dkim_algo_name(algo), bits);
	dkim_gen_deinit(&g);
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
	if (n > 0)
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
	struct dkim_gen g[2];
	memset(g, 0, sizeof g);
	int rc = dkim_gen_one(st, name, DKIM_ALGO_ED25519, 256, NULL, now, &g[0], &err);
	if (rc == 0)
		rc = dkim_gen_one(st, name, DKIM_ALGO_RSA, 2048, NULL, now, &g[1], &err);
	struct store_dkim_new keys[2] = {g[0].k, g[1].k};
	if (rc == 0)
		rc = store_dkim_rotate(st, name, keys, 2, now, (unsigned)keep, &err);
	if (rc == 0) {
		char when[32];
		cli_fmt_time(now + (int64_t)keep * 86400, when, sizeof when);
		printf("dkim keys of %s rotated: %s and %s sign now; old keys published until %s\n",
		       name, g[0].selector, g[1].selector, when);
	}
	dkim_gen_deinit(&g[0]);
	dkim_gen_deinit(&g[1]);
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
