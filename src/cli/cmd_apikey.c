/* lightr apikey create|list|revoke: REST API keys (issue 6). A token is printed once, by
 * "create", as the first line of stdout; the store keeps only its SHA-256 and a display prefix,
 * so a lost token cannot be shown again (revoke it and create another). */
#include <stdio.h>
#include <string.h>

#include "auth/passwd.h"
#include "cli_private.h"
#include "mail/addr.h"
#include "util/clock.h"

#define APIKEY_NAME_MAX 128

static int
apikey_create(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr apikey create [--domain D] [--name N]";
	static const struct cli_opt opts[] = {{"--domain", true}, {"--name", true}, {NULL, false}};
	PARSE_ARGS(opts, usage,
	           "Creates a REST API key and prints its token once (first line of stdout).\n"
	           "With --domain the key may only act for that domain; without it, it is an\n"
	           "admin key for everything. --name is a label for the listing.\n",
	           0, 0);
	const char *name = a.val[1] ? a.val[1] : "";
	size_t nlen = strlen(name);
	if (nlen > APIKEY_NAME_MAX)
		return cli_usage_error(usage, "--name must be at most %d bytes", APIKEY_NAME_MAX);
	for (size_t i = 0; i < nlen; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return cli_usage_error(usage, "--name must not contain control characters");
	char domain[ADDR_DOMAIN_MAX + 1];
	struct store *st = cli_store_domain_opt(ctx, a.val[0], domain, sizeof domain);
	if (st == NULL)
		return EXIT_FAIL;
	char token[AUTH_APIKEY_TOKEN_SIZE], hash[65], prefix[AUTH_APIKEY_PREFIX_SIZE];
	auth_apikey_new(token, hash, prefix);
	struct err err;
	int64_t id;
	if (store_apikey_add(st, hash, prefix, name, a.val[0] ? domain : NULL, clock_now(), &id,
	                     &err) < 0) {
		memset(token, 0, sizeof token);
		return cli_store_error(a.val[0] ? domain : "apikey create", &err);
	}
	printf("%s\n", token);
	printf("id %lld scope %s%s%s\n", (long long)id, a.val[0] ? domain : "admin",
	       nlen ? " name " : "", name);
	return cli_secret_shown("token", token, sizeof token);
}

static int
apikey_list(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr apikey list [--domain D]";
	static const struct cli_opt opts[] = {{"--domain", true}, {NULL, false}};
	PARSE_ARGS(opts, usage,
	           "Lists API keys (all, or those of one domain): id, token prefix, scope\n"
	           "(\"admin\" or the domain), name, creation time and revocation time.\n",
	           0, 0);
	char domain[ADDR_DOMAIN_MAX + 1];
	struct store *st = cli_store_domain_opt(ctx, a.val[0], domain, sizeof domain);
	if (st == NULL)
		return EXIT_FAIL;
	struct err err;
	if (a.val[0]) {
		struct store_domain d;
		if (store_domain_get(st, domain, &d, &err) < 0)
			return cli_store_error(domain, &err);
		store_domain_deinit(&d);
	}
	struct store_apikey *v;
	size_t n;
	if (store_apikey_list(st, a.val[0] ? domain : NULL, &v, &n, &err) < 0)
		return cli_store_error(a.val[0] ? domain : "apikey list", &err);
	if (n > 0)
		printf("%-6s %-15s %-30s %-20s %-20s %-20s\n", "ID", "PREFIX", "SCOPE", "NAME",
		       "CREATED", "REVOKED");
	for (size_t i = 0; i < n; i++) {
		char created[32], revoked[32] = "-", pfx[40];
		cli_fmt_time(v[i].created, created, sizeof created);
		if (v[i].revoked)
			cli_fmt_time(v[i].revoked, revoked, sizeof revoked);
		(void)snprintf(pfx, sizeof pfx, "%s...", v[i].prefix ? v[i].prefix : "");
		printf("%-6lld %-15s %-30s %-20s %-20s %-20s\n", (long long)v[i].id, pfx,
		       v[i].domain ? v[i].domain : "admin",
		       v[i].name && v[i].name[0] ? v[i].name : "-", created, revoked);
	}
	store_apikey_list_free(&v, n);
	return EXIT_OK;
}

static int
apikey_revoke(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr apikey revoke ID";
	PARSE_ARGS(NULL, usage,
	           "Revokes an API key (see 'lightr apikey list' for ids): requests with it are\n"
	           "refused from now on. The key stays listed as revoked.\n",
	           1, 1);
	int64_t id;
	struct store *st;
	int rc = cli_id_store(ctx, a.pos[0], usage, &id, &st);
	if (rc != 0)
		return rc;
	struct err err;
	if (store_apikey_revoke(st, id, clock_now(), &err) < 0)
		return cli_store_error("apikey revoke", &err);
	printf("api key %lld revoked\n", (long long)id);
	return EXIT_OK;
}

int
cmd_apikey(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"create", apikey_create, "create a key and print its token once"},
	    {"list", apikey_list, "list keys with scope and state"},
	    {"revoke", apikey_revoke, "revoke a key"},
	    {NULL, NULL, NULL},
	};
	return cli_dispatch(ctx, "apikey", subs, argc, argv);
}
