/* lightr domain add|list|show|remove|dns|limit. */
#include <stdio.h>
#include <string.h>

#include "cli_private.h"
#include "server/server.h"
#include "mail/addr.h"
#include "util/clock.h"

static int
domain_add(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr domain add DOMAIN",
	           "Adds a mail domain this server receives mail for.\n", 1, 1);
	char name[ADDR_DOMAIN_MAX + 1];
	if (cli_domain_arg(a.pos[0], name, sizeof name) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_domain_add(st, name, &err) < 0)
		return cli_store_error(name, &err);
	printf("domain %s added\n", name);
	if (server_dkim_default_keys(st, name, &err) < 0) {
		cli_error("%s: DKIM keys: %s (add them with 'lightr dkim generate')", name,
		          err.msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int
domain_dns(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr domain dns DOMAIN",
	           "Prints the DNS records DOMAIN needs as zone-file lines: MX, SPF, one DKIM TXT\n"
	           "record per active or published key, and a starting-point DMARC record.\n",
	           1, 1);
	char name[ADDR_DOMAIN_MAX + 1];
	if (cli_domain_arg(a.pos[0], name, sizeof name) < 0)
		return EXIT_FAIL;
	struct config *cfg = cli_config(ctx);
	if (cfg == NULL)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	if (st == NULL)
		return EXIT_FAIL;
	struct err err;
	struct http_dns_record *v;
	size_t n;
	if (server_domain_dns(st, name, cfg->hostname, &v, &n, &err) < 0)
		return cli_store_error(name, &err);
	struct buf zone;
	buf_init(&zone, 0);
	http_dns_zone(name, v, n, &zone);
	fputs(buf_cstr(&zone), stdout);
	buf_deinit(&zone);
	http_dns_records_free(&v, n);
	return EXIT_OK;
}

static int
domain_list(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr domain list", "Lists the mail domains.\n", 0, 0);
	struct store *st = cli_store(ctx);
	struct store_domain *v;
	size_t n;
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_domain_list(st, &v, &n, &err) < 0)
		return cli_store_error("domain list", &err);
	if (n > 0)
		printf("%-40s %8s %8s  %s\n", "DOMAIN", "ACCOUNTS", "ALIASES", "CREATED");
	for (size_t i = 0; i < n; i++) {
		char when[32];
		cli_fmt_time(v[i].created, when, sizeof when);
		printf("%-40s %8lld %8lld  %s\n", v[i].name, (long long)v[i].n_accounts,
		       (long long)v[i].n_aliases, when);
	}
	store_domain_list_free(&v, n);
	return EXIT_OK;
}

static int
domain_show(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr domain show DOMAIN",
	           "Shows a domain with its accounts, aliases and sending limits.\n", 1, 1);
	char name[ADDR_DOMAIN_MAX + 1];
	if (cli_domain_arg(a.pos[0], name, sizeof name) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	struct store_domain d;
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_domain_get(st, name, &d, &err) < 0)
		return cli_store_error(name, &err);
	char when[32];
	cli_fmt_time(d.created, when, sizeof when);
	printf("domain:   %s\ncreated:  %s\naccounts: %lld\naliases:  %lld\n", d.name, when,
	       (long long)d.n_accounts, (long long)d.n_aliases);
	store_domain_deinit(&d);

	struct store_account *accts;
	struct store_alias *aliases;
	size_t na, nl;
	if (store_account_list(st, name, &accts, &na, &err) < 0)
		return cli_store_error(name, &err);
	for (size_t i = 0; i < na; i++)
		printf("  account %s%s\n", accts[i].address,
		       accts[i].disabled ? " (disabled)" : "");
	store_account_list_free(&accts, na);
	if (store_alias_list(st, name, &aliases, &nl, &err) < 0)
		return cli_store_error(name, &err);
	for (size_t i = 0; i < nl; i++) {
		printf("  alias   %s ->", aliases[i].address);
		for (size_t j = 0; j < aliases[i].n_targets; j++)
			printf(" %s", aliases[i].targets[j]);
		printf("\n");
	}
	store_alias_list_free(&aliases, nl);
	return cli_limits_print(ctx, st, true, name);
}

static int
domain_limit(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr domain limit DOMAIN RULE VALUE|none";
	PARSE_ARGS(
	    NULL, usage,
	    "Overrides a sending limit shared by all senders of the domain (0 = unlimited);\n"
	    "'none' removes the override, so the configured default (limits.domain.*)\n"
	    "applies again. RULE is messages_per_minute, messages_per_hour,\n"
	    "messages_per_day, recipients_per_day or recipients_per_message.\n",
	    3, 3);
	char name[ADDR_DOMAIN_MAX + 1];
	if (cli_domain_arg(a.pos[0], name, sizeof name) < 0)
		return EXIT_FAIL;
	return cli_limit_set(ctx, true, name, a.pos[1], a.pos[2], usage);
}

static int
domain_remove(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{"--force", false}, {NULL, false}};
	PARSE_ARGS(
	    opts, "lightr domain remove DOMAIN [--force]",
	    "Removes a domain. A domain that still has accounts or aliases is removed only with\n"
	    "--force, which removes them too, with all their mail.\n",
	    1, 1);
	char name[ADDR_DOMAIN_MAX + 1];
	if (cli_domain_arg(a.pos[0], name, sizeof name) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_domain_remove(st, name, a.val[0] != NULL, &err) < 0) {
		if (err.code == STORE_EBUSY) {
			cli_error("%s: %s; use --force to remove them too", name, err.msg);
			return EXIT_FAIL;
		}
		return cli_store_error(name, &err);
	}
	printf("domain %s removed\n", name);
	return EXIT_OK;
}

int
cmd_domain(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"add", domain_add, "add a domain"},
	    {"list", domain_list, "list domains"},
	    {"show", domain_show, "show a domain with its accounts and aliases"},
	    {"remove", domain_remove, "remove a domain (--force: with its accounts)"},
	    {"dns", domain_dns, "print the DNS records (MX, SPF, DKIM, DMARC) of a domain"},
	    {"limit", domain_limit, "override a sending limit of a domain (VALUE|none)"},
	    {NULL, NULL, NULL},
	};
	return cli_dispatch(ctx, "domain", subs, argc, argv);
}
