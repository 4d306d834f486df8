/* lightr webhook add|list|remove: webhooks (issue 7), as POST/GET/DELETE /api/v1/webhooks do.
 * "add" checks the URL as the API does (http/https; public addresses only unless
 * webhooks.allow_private_addresses) and prints the signing secret once, on the first line of
 * stdout; only the sender reads it from the store afterwards. */
#include <stdio.h>
#include <string.h>

#include "cli_private.h"
#include "events/events.h"
#include "mail/addr.h"
#include "util/clock.h"
#include "util/rand.h"

#define WEBHOOK_URL_MAX        2048
#define WEBHOOK_SECRET_PREFIX  "whsec_"
#define WEBHOOK_SECRET_RANDOM  32
#define WEBHOOK_TYPES_TEXT_MAX 512

static const char *const webhook_types[] = {
    "message.queued",  "message.delivered",  "message.deferred",
    "message.bounced", "message.suppressed", "message.opened",
    "message.clicked", "message.received",   "message.complained",
};
#define WEBHOOK_N_TYPES (sizeof webhook_types / sizeof webhook_types[0])

/* "a,b" of known types into out in table order without repeats; -1 after printing why. */
static int
webhook_types_arg(const char *usage, const char *in, char out[WEBHOOK_TYPES_TEXT_MAX])
{
	bool want[WEBHOOK_N_TYPES] = {false}, any = false;
	for (const char *p = in; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		bool found = false;
		for (size_t i = 0; i < WEBHOOK_N_TYPES && !found; i++)
			if (len > 0 && strlen(webhook_types[i]) == len &&
			    memcmp(webhook_types[i], p, len) == 0)
				found = want[i] = any = true;
		if (!found && len > 0)
			return cli_usage_error(usage, "unknown event type \"%.*s\"", (int)len, p);
		p += len + (e != NULL);
	}
	if (!any)
		return cli_usage_error(usage, "--events names no event type");
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < WEBHOOK_N_TYPES; i++) {
		if (!want[i])
			continue;
		int w = snprintf(out + n, WEBHOOK_TYPES_TEXT_MAX - n, "%s%s", n ? "," : "",
		                 webhook_types[i]);
		if (w < 0 || (size_t)w >= WEBHOOK_TYPES_TEXT_MAX - n)
			return cli_usage_error(usage, "--events is too long");
		n += (size_t)w;
	}
	return 0;
}

static int
webhook_add(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr webhook add URL [--events a,b] [--domain D]";
	static const struct cli_opt opts[] = {
	    {"--events", true}, {"--domain", true}, {NULL, false}};
	PARSE_ARGS(
	    opts, usage,
	    "Adds a webhook: events are POSTed to URL as signed JSON. --events limits it to\n"
	    "some types (message.queued, message.delivered, message.deferred,\n"
	    "message.bounced, message.suppressed, message.opened, message.clicked,\n"
	    "message.received, message.complained; default all); --domain to the events of\n"
	    "one domain (default all domains). Prints the id and the signing secret; the\n"
	    "secret (first line of stdout) is shown only this once.\n",
	    1, 1);
	const char *url = a.pos[0];
	if (strlen(url) > WEBHOOK_URL_MAX)
		return cli_usage_error(usage, "URL must be at most %d bytes", WEBHOOK_URL_MAX);
	char types[WEBHOOK_TYPES_TEXT_MAX] = "", domain[ADDR_DOMAIN_MAX + 1];
	if (a.val[0] && webhook_types_arg(usage, a.val[0], types) < 0)
		return EXIT_USAGE;
	if (a.val[1] && cli_domain_arg(a.val[1], domain, sizeof domain) < 0)
		return EXIT_FAIL;
	struct config *cfg = cli_config(ctx);
	if (cfg == NULL)
		return EXIT_FAIL;
	struct err err;
	if (events_url_check(url, cfg->webhooks.allow_private_addresses, NULL, NULL, &err) < 0) {
		cli_error("%s: %s", url, err.msg);
		return EXIT_FAIL;
	}
	struct store *st = cli_store(ctx);
	if (st == NULL)
		return EXIT_FAIL;
	char secret[sizeof WEBHOOK_SECRET_PREFIX + WEBHOOK_SECRET_RANDOM];
	memcpy(secret, WEBHOOK_SECRET_PREFIX, sizeof WEBHOOK_SECRET_PREFIX - 1);
	rand_token(secret + sizeof WEBHOOK_SECRET_PREFIX - 1, WEBHOOK_SECRET_RANDOM);
	int64_t id;
	if (store_webhook_add(st, url, secret, types, a.val[1] ? domain : NULL, clock_now(), &id,
	                      &err) < 0) {
		memset(secret, 0, sizeof secret);
		return cli_store_error(a.val[1] ? domain : "webhook add", &err);
	}
	printf("%s\n", secret);
	printf("id %lld url %s events %s domain %s\n", (long long)id, url, types[0] ? types : "all",
	       a.val[1] ? domain : "all");
	return cli_secret_shown("signing secret", secret, sizeof secret);
}

static int
webhook_list(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr webhook list [--domain D]";
	static const struct cli_opt opts[] = {{"--domain", true}, {NULL, false}};
	PARSE_ARGS(opts, usage,
	           "Lists webhooks (all, or those of one domain): id, domain (\"all\" for every\n"
	           "domain), event types, creation time and URL. Secrets are not shown.\n",
	           0, 0);
	char domain[ADDR_DOMAIN_MAX + 1];
	struct store *st = cli_store_domain_opt(ctx, a.val[0], domain, sizeof domain);
	if (st == NULL)
		return EXIT_FAIL;
	struct store_webhook *v;
	size_t n;
	struct err err;
	if (store_webhook_list(st, a.val[0] ? domain : NULL, &v, &n, &err) < 0)
		return cli_store_error(a.val[0] ? domain : "webhook list", &err);
	if (n > 0)
		printf("%-6s %-30s %-20s %-20s %s\n", "ID", "DOMAIN", "CREATED", "EVENTS", "URL");
	for (size_t i = 0; i < n; i++) {
		char created[32];
		cli_fmt_time(v[i].created, created, sizeof created);
		printf("%-6lld %-30s %-20s %-20s %s\n", (long long)v[i].id,
		       v[i].domain ? v[i].domain : "all", created,
		       v[i].types && v[i].types[0] ? v[i].types : "all", v[i].url);
	}
	store_webhook_list_free(&v, n);
	return EXIT_OK;
}

static int
webhook_remove(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "lightr webhook remove ID";
	PARSE_ARGS(NULL, usage,
	           "Removes a webhook (see 'lightr webhook list' for ids) with its pending\n"
	           "deliveries.\n",
	           1, 1);
	int64_t id;
	struct store *st;
	int rc = cli_id_store(ctx, a.pos[0], usage, &id, &st);
	if (rc != 0)
		return rc;
	struct err err;
	if (store_webhook_remove(st, id, &err) < 0)
		return cli_store_error("webhook remove", &err);
	printf("webhook %lld removed\n", (long long)id);
	return EXIT_OK;
}

int
cmd_webhook(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"add", webhook_add, "add a webhook and print its signing secret once"},
	    {"list", webhook_list, "list webhooks"},
	    {"remove", webhook_remove, "remove a webhook"},
	    {NULL, NULL, NULL},
	};
	return cli_dispatch(ctx, "webhook", subs, argc, argv);
}
