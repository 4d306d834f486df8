/* lightr account add|list|show|passwd|remove (and disable|enable|admin|limit). Passwords come from
 * stdin with
 * --password-stdin, or are generated and printed once; only the argon2id hash is stored. */
#include <stdio.h>
#include <string.h>

#include "auth/passwd.h"
#include "cli_private.h"
#include "mail/addr.h"
#include "server/server.h"
#include "util/strconv.h"

#define CLI_LIMIT_VALUE_MAX 1000000000000ull /* as the REST API's overrides */

/* Gets the password from stdin or generates one; hashes it into hash. *generated_r tells the
 * caller to print it. */
static int
account_password(bool from_stdin, char *pw, size_t n, bool *generated_r, char hash[AUTH_HASH_MAX])
{
	*generated_r = !from_stdin;
	if (from_stdin) {
		if (cli_read_password(pw, n) < 0)
			return -1;
	} else {
		cli_gen_password(pw, n);
	}
	if (auth_init(1) < 0 || auth_hash(pw, strlen(pw), hash) < 0) {
		cli_error("cannot hash the password");
		return -1;
	}
	return 0;
}

static int
account_add(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{"--password-stdin", false},
	                                      {"--quota", true},
	                                      {"--domain-admin", false},
	                                      {NULL, false}};
	PARSE_ARGS(
	    opts, "lightr account add ADDRESS [--password-stdin] [--quota SIZE] [--domain-admin]",
	    "Adds an account (its domain must exist) with the mailboxes INBOX, Sent, Drafts,\n"
	    "Trash, Junk and Archive. With --password-stdin the password is read from the first\n"
	    "line of standard input (at least 8 characters); otherwise one is generated and\n"
	    "printed once. --quota limits the stored mail (e.g. 2GiB; 0 = unlimited).\n"
	    "--domain-admin lets the account send as any address of its domain.\n",
	    1, 1);
	char addr[ADDR_MAX + 1], pw[AUTH_PASSWORD_MAX + 2], hash[AUTH_HASH_MAX];
	uint64_t quota = 0;
	bool generated;
	if (cli_address_arg(a.pos[0], false, addr, sizeof addr) < 0)
		return EXIT_FAIL;
	if (a.val[1] && strconv_size(slice_from(a.val[1]), UINT64_MAX / 2, &quota) < 0) {
		cli_error("--quota: '%s' is not a size like 2GiB", a.val[1]);
		return EXIT_FAIL;
	}
	struct store *st = cli_store(ctx);
	if (st == NULL || account_password(a.val[0] != NULL, pw, sizeof pw, &generated, hash) < 0)
		return EXIT_FAIL;
	struct err err;
	if (store_account_add(st, addr, hash, quota, &err) < 0 ||
	    (a.val[2] && store_account_set_domain_admin(st, addr, true, &err) < 0))
		return cli_store_error(addr, &err);
	printf("account %s added%s\n", addr, a.val[2] ? " (domain admin)" : "");
	if (generated)
		printf("password: %s\n", pw);
	return EXIT_OK;
}

static int
account_passwd(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{"--password-stdin", false}, {NULL, false}};
	PARSE_ARGS(
	    opts, "lightr account passwd ADDRESS [--password-stdin]",
	    "Sets a new password: read from standard input with --password-stdin, otherwise\n"
	    "generated and printed once.\n",
	    1, 1);
	char addr[ADDR_MAX + 1], pw[AUTH_PASSWORD_MAX + 2], hash[AUTH_HASH_MAX];
	bool generated;
	if (cli_address_arg(a.pos[0], false, addr, sizeof addr) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	if (st == NULL || account_password(a.val[0] != NULL, pw, sizeof pw, &generated, hash) < 0)
		return EXIT_FAIL;
	struct err err;
	if (store_account_set_password(st, addr, hash, &err) < 0)
		return cli_store_error(addr, &err);
	printf("password of %s changed\n", addr);
	if (generated)
		printf("password: %s\n", pw);
	return EXIT_OK;
}

static int
account_list(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr account list [DOMAIN]",
	           "Lists all accounts, or those of one domain.\n", 0, 1);
	char dom[ADDR_DOMAIN_MAX + 1];
	if (a.n_pos == 1 && cli_domain_arg(a.pos[0], dom, sizeof dom) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	struct store_account *v;
	size_t n;
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_account_list(st, a.n_pos ? dom : NULL, &v, &n, &err) < 0)
		return cli_store_error("account list", &err);
	if (n > 0)
		printf("%-48s %10s %10s  %s\n", "ADDRESS", "USED", "QUOTA", "STATUS");
	for (size_t i = 0; i < n; i++) {
		char used[32], quota[32];
		cli_fmt_size(v[i].used, used, sizeof used);
		if (v[i].quota)
			cli_fmt_size(v[i].quota, quota, sizeof quota);
		else
			snprintf(quota, sizeof quota, "unlimited");
		printf("%-48s %10s %10s  %s\n", v[i].address, used, quota,
		       v[i].disabled ? "disabled" : "active");
	}
	store_account_list_free(&v, n);
	return EXIT_OK;
}

static int
account_show(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr account show ADDRESS",
	           "Shows an account, its mailboxes and its sending limits with today's usage\n"
	           "(never its password).\n",
	           1, 1);
	char addr[ADDR_MAX + 1];
	if (cli_address_arg(a.pos[0], false, addr, sizeof addr) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	struct store_account acct;
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_account_get(st, addr, &acct, &err) < 0)
		return cli_store_error(addr, &err);
	char used[32], quota[32], when[32];
	cli_fmt_size(acct.used, used, sizeof used);
	if (acct.quota)
		cli_fmt_size(acct.quota, quota, sizeof quota);
	else
		snprintf(quota, sizeof quota, "unlimited");
	cli_fmt_time(acct.created, when, sizeof when);
	printf("address:  %s\ndomain:   %s\nstatus:   %s\nadmin:    %s\nquota:    %s\n"
	       "used:     %s\ncreated:  %s\nmailboxes:\n",
	       acct.address, acct.domain, acct.disabled ? "disabled" : "active",
	       acct.domain_admin ? "domain admin" : "no", quota, used, when);
	store_account_deinit(&acct);

	struct store_mailbox *mb;
	size_t n;
	if (store_mailbox_list(st, addr, &mb, &n, &err) < 0)
		return cli_store_error(addr, &err);
	for (size_t i = 0; i < n; i++)
		printf("  %-20s %-10s %6llu messages  uidvalidity=%u uidnext=%u%s\n", mb[i].name,
		       mb[i].special_use ? mb[i].special_use : "",
		       (unsigned long long)mb[i].n_messages, mb[i].uidvalidity, mb[i].uidnext,
		       mb[i].subscribed ? "" : " (unsubscribed)");
	store_mailbox_list_free(&mb, n);
	return cli_limits_print(ctx, st, false, addr);
}

/* ---- rate limits (issue 8) ---- */

int
cli_limits_print(struct cli_ctx *ctx, struct store *st, bool domain, const char *name)
{
	/* The effective limits need the configured defaults: make the loaded config current. */
	struct config *cur = config_current();
	if (cur == NULL) {
		struct config *cfg = cli_config(ctx);
		if (cfg == NULL)
			return EXIT_FAIL;
		config_set_current(config_ref(cfg));
	}
	config_unref(&cur);
	struct server_limit_usage u[SERVER_LIMIT_RULES];
	struct err err;
	if (server_limit_usage(st, domain ? SERVER_LIMIT_DOMAIN : SERVER_LIMIT_ACCOUNT, name, u,
	                       &err) < 0)
		return cli_store_error(name, &err);
	printf("limits:\n  %-24s %12s %12s %10s\n", "RULE", "LIMIT", "USED TODAY", "RESETS IN");
	bool windowed = false;
	for (size_t i = 0; i < SERVER_LIMIT_RULES; i++) {
		char lim[32], used[32], resets[32];
		bool daily = strstr(u[i].rule, "_per_day") != NULL;
		bool per_msg = strstr(u[i].rule, "_per_message") != NULL;
		if (u[i].limit)
			snprintf(lim, sizeof lim, "%llu", (unsigned long long)u[i].limit);
		else
			snprintf(lim, sizeof lim, "unlimited");
		/* Per-minute and per-hour windows live in the running server's memory only. */
		if (daily)
			snprintf(used, sizeof used, "%llu", (unsigned long long)u[i].used);
		else
			snprintf(used, sizeof used, "-");
		if (daily && u[i].resets_in_s > 0)
			snprintf(resets, sizeof resets, "%llds", (long long)u[i].resets_in_s);
		else
			snprintf(resets, sizeof resets, "-");
		windowed = windowed || (!daily && !per_msg);
		printf("  %-24s %12s %12s %10s%s\n", u[i].rule, lim, used, resets,
		       u[i].overridden ? "  (override)" : "");
	}
	if (windowed)
		printf("  (per-minute and per-hour usage is kept by the running server: GET "
		       "/api/v1/%s/%s/limits)\n",
		       domain ? "domains" : "accounts", name);
	return EXIT_OK;
}

int
cli_limit_set(struct cli_ctx *ctx, bool domain, const char *name, const char *rule,
              const char *value, const char *usage)
{
	bool known = false;
	for (size_t i = 0; server_limit_rule_names[i] && !known; i++)
		known = strcmp(server_limit_rule_names[i], rule) == 0;
	if (!known) {
		char list[256] = "";
		size_t off = 0;
		for (size_t i = 0; server_limit_rule_names[i]; i++) {
			int w = snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "",
			                 server_limit_rule_names[i]);
			if (w < 0 || (size_t)w >= sizeof list - off)
				break;
			off += (size_t)w;
		}
		return cli_usage_error(usage, "unknown rule '%s' (one of: %s)", rule, list);
	}
	bool set = strcmp(value, "none") != 0;
	uint64_t v = 0;
	if (set && strconv_u64(slice_from(value), CLI_LIMIT_VALUE_MAX, &v) < 0)
		return cli_usage_error(usage, "'%s' is neither a number (0 = unlimited) nor none",
		                       value);
	struct store *st = cli_store(ctx);
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_limit_override_set(st, domain ? STORE_LIMIT_DOMAIN : STORE_LIMIT_ACCOUNT, name,
	                             rule, set, v, &err) < 0)
		return cli_store_error(name, &err);
	if (!set)
		printf("%s %s: %s back to the default\n", domain ? "domain" : "account", name,
		       rule);
	else if (v == 0)
		printf("%s %s: %s unlimited\n", domain ? "domain" : "account", name, rule);
	else
		printf("%s %s: %s %llu\n", domain ? "domain" : "account", name, rule,
		       (unsigned long long)v);
	printf("a running server applies it to the next message\n");
	return EXIT_OK;
}

static int
account_limit(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr account limit ADDRESS RULE VALUE|none";
	PARSE_ARGS(NULL, usage,
	           "Overrides a sending limit of the account (0 = unlimited); 'none' removes the\n"
	           "override, so the configured default (limits.account.*) applies again. RULE is\n"
	           "messages_per_minute, messages_per_hour, messages_per_day, recipients_per_day\n"
	           "or recipients_per_message.\n",
	           3, 3);
	char addr[ADDR_MAX + 1];
	if (cli_address_arg(a.pos[0], false, addr, sizeof addr) < 0)
		return EXIT_FAIL;
	return cli_limit_set(ctx, false, addr, a.pos[1], a.pos[2], usage);
}

static int
account_remove(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr account remove ADDRESS",
	           "Removes an account with all its mailboxes and mail.\n", 1, 1);
	char addr[ADDR_MAX + 1];
	if (cli_address_arg(a.pos[0], false, addr, sizeof addr) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_account_remove(st, addr, &err) < 0)
		return cli_store_error(addr, &err);
	printf("account %s removed\n", addr);
	return EXIT_OK;
}

static int
account_set_disabled(struct cli_ctx *ctx, int argc, char **argv, bool disabled)
{
	PARSE_ARGS(NULL,
	           disabled ? "lightr account disable ADDRESS" : "lightr account enable ADDRESS",
	           "A disabled account keeps its mail but cannot log in or send.\n", 1, 1);
	char addr[ADDR_MAX + 1];
	if (cli_address_arg(a.pos[0], false, addr, sizeof addr) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_account_set_disabled(st, addr, disabled, &err) < 0)
		return cli_store_error(addr, &err);
	printf("account %s %s\n", addr, disabled ? "disabled" : "enabled");
	return EXIT_OK;
}

static int
account_admin(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr account admin ADDRESS on|off";
	PARSE_ARGS(NULL, usage,
	           "A domain admin may use any address of its domain as sender on submission;\n"
	           "other accounts only their own address and the aliases that point to them.\n",
	           2, 2);
	char addr[ADDR_MAX + 1];
	bool on = strcmp(a.pos[1], "on") == 0;
	if (!on && strcmp(a.pos[1], "off") != 0)
		return cli_usage_error(usage, "'%s' is neither on nor off", a.pos[1]);
	if (cli_address_arg(a.pos[0], false, addr, sizeof addr) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_account_set_domain_admin(st, addr, on, &err) < 0)
		return cli_store_error(addr, &err);
	printf("account %s domain admin %s\n", addr, on ? "on" : "off");
	return EXIT_OK;
}

static int
account_disable(struct cli_ctx *ctx, int argc, char **argv)
{
	return account_set_disabled(ctx, argc, argv, true);
}

static int
account_enable(struct cli_ctx *ctx, int argc, char **argv)
{
	return account_set_disabled(ctx, argc, argv, false);
}

int
cmd_account(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"add", account_add, "add an account"},
	    {"list", account_list, "list accounts"},
	    {"show", account_show, "show an account and its mailboxes"},
	    {"passwd", account_passwd, "set a new password"},
	    {"remove", account_remove, "remove an account and its mail"},
	    {"disable", account_disable, "stop an account from logging in and sending"},
	    {"enable", account_enable, "re-enable a disabled account"},
	    {"admin", account_admin, "let an account send as any address of its domain (on|off)"},
	    {"limit", account_limit, "override a sending limit of an account (VALUE|none)"},
	    {NULL, NULL, NULL},
	};
	return cli_dispatch(ctx, "account", subs, argc, argv);
}
