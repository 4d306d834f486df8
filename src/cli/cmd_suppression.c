/* lightr suppression add|list|remove: the suppression list of a sending domain (issue 7), as
 * /api/v1/suppressions does. Addresses are folded as the server folds them (lower-cased, the
 * sub-address tag removed with smtp.subaddress_separator), so "Bob+news@Example.com" and
 * "bob@example.com" are one entry. Mail to a listed address is not attempted. */
#include <stdio.h>
#include <string.h>

#include "cli_private.h"
#include "mail/addr.h"
#include "util/clock.h"

#define SUPPRESS_REASON_MAX 32

static const char *const suppress_reasons[] = {"manual", "hard_bounce", "soft_bounces", "complaint",
                                               NULL};

/* The sub-address separator of the configuration ('\0' for none); -1 when it cannot load. */
static int
suppress_sep(struct cli_ctx *ctx, char *sep_r)
{
	struct config *cfg = cli_config(ctx);
	if (cfg == NULL)
		return -1;
	const char *s = cfg->smtp.subaddress_separator;
	*sep_r = s == NULL || strcmp(s, "none") == 0 ? '\0' : s[0];
	return 0;
}

/* The checked arguments of add and remove (--domain D into domain, ADDRESS into address), the
 * sub-address separator and the store. Returns the store, or NULL after printing why. */
static struct store *
suppress_open(struct cli_ctx *ctx, const struct cli_args *a, char domain[ADDR_DOMAIN_MAX + 1],
              char address[ADDR_MAX + 1], char *sep_r)
{
	if (cli_domain_arg(a->val[0], domain, ADDR_DOMAIN_MAX + 1) < 0 ||
	    cli_address_arg(a->pos[0], false, address, ADDR_MAX + 1) < 0)
		return NULL;
	if (suppress_sep(ctx, sep_r) < 0)
		return NULL;
	return cli_store(ctx);
}

static int
suppression_add(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr suppression add ADDRESS --domain D [--reason R]";
	static const struct cli_opt opts[] = {
	    {"--domain", true}, {"--reason", true}, {NULL, false}};
	PARSE_ARGS(opts, usage,
	           "Puts ADDRESS on the suppression list of domain D: mail from D to it is not\n"
	           "attempted. --reason is manual (default), hard_bounce, soft_bounces or\n"
	           "complaint.\n",
	           1, 1);
	if (a.val[0] == NULL)
		return cli_usage_error(usage, "--domain is required");
	const char *reason = a.val[1] ? a.val[1] : "manual";
	bool known = false;
	for (size_t i = 0; suppress_reasons[i] && !known; i++)
		known = strcmp(suppress_reasons[i], reason) == 0;
	if (!known)
		return cli_usage_error(
		    usage, "--reason must be manual, hard_bounce, soft_bounces or complaint");
	char domain[ADDR_DOMAIN_MAX + 1], address[ADDR_MAX + 1], sep;
	struct store *st = suppress_open(ctx, &a, domain, address, &sep);
	if (st == NULL)
		return EXIT_FAIL;
	bool added = false;
	struct err err;
	if (store_suppress_add(st, domain, address, sep, reason, "cli", clock_now(), &added, &err) <
	    0)
		return cli_store_error(domain, &err);
	char folded[ADDR_MAX + 1];
	store_suppress_fold(address, sep, folded, sizeof folded);
	printf("%s %s for %s\n", folded, added ? "suppressed" : "was already suppressed", domain);
	return EXIT_OK;
}

static int
suppression_list(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr suppression list DOMAIN";
	PARSE_ARGS(NULL, usage,
	           "Lists the suppressed addresses of DOMAIN: address, reason, source and the\n"
	           "time it was added.\n",
	           1, 1);
	char domain[ADDR_DOMAIN_MAX + 1];
	if (cli_domain_arg(a.pos[0], domain, sizeof domain) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	if (st == NULL)
		return EXIT_FAIL;
	struct err err;
	struct store_domain d;
	if (store_domain_get(st, domain, &d, &err) < 0)
		return cli_store_error(domain, &err);
	store_domain_deinit(&d);
	struct store_suppression *v;
	size_t n;
	if (store_suppress_list(st, domain, &v, &n, &err) < 0)
		return cli_store_error(domain, &err);
	if (n > 0)
		printf("%-40s %-14s %-20s %s\n", "ADDRESS", "REASON", "CREATED", "SOURCE");
	for (size_t i = 0; i < n; i++) {
		char created[32];
		cli_fmt_time(v[i].created, created, sizeof created);
		printf("%-40s %-14s %-20s %s\n", v[i].address, v[i].reason ? v[i].reason : "-",
		       created, v[i].source && v[i].source[0] ? v[i].source : "-");
	}
	store_suppression_list_free(&v, n);
	return EXIT_OK;
}

static int
suppression_remove(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr suppression remove ADDRESS --domain D";
	static const struct cli_opt opts[] = {{"--domain", true}, {NULL, false}};
	PARSE_ARGS(opts, usage,
	           "Takes ADDRESS off the suppression list of domain D: mail to it is attempted\n"
	           "again.\n",
	           1, 1);
	if (a.val[0] == NULL)
		return cli_usage_error(usage, "--domain is required");
	char domain[ADDR_DOMAIN_MAX + 1], address[ADDR_MAX + 1], sep;
	struct store *st = suppress_open(ctx, &a, domain, address, &sep);
	if (st == NULL)
		return EXIT_FAIL;
	struct err err;
	if (store_suppress_remove(st, domain, address, sep, &err) < 0)
		return cli_store_error(address, &err);
	char folded[ADDR_MAX + 1];
	store_suppress_fold(address, sep, folded, sizeof folded);
	printf("%s no longer suppressed for %s\n", folded, domain);
	return EXIT_OK;
}

int
cmd_suppression(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"add", suppression_add, "suppress an address for a domain"},
	    {"list", suppression_list, "list a domain's suppressed addresses"},
	    {"remove", suppression_remove, "take an address off the list"},
	    {NULL, NULL, NULL},
	};
	return cli_dispatch(ctx, "suppression", subs, argc, argv);
}
