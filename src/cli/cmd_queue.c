/* lightr queue list|show|retry|hold|release|drop: the outbound queue as the store holds it. The
 * CLI is another process than the server: its changes are committed to the database and the
 * server's scheduler sees them at its next poll (within a second, queue/sched.h). */
#include <stdio.h>
#include <string.h>

#include "cli_private.h"
#include "util/clock.h"
#include "util/strconv.h"

static const char *const queue_states[] = {"queued",    "deferred", "delivering", "held",
                                           "delivered", "bounced",  "expired",    NULL};

static int
id_arg(const char *s, int64_t *id_r)
{
	uint64_t v;
	if (strconv_u64(slice_from(s), INT64_MAX, &v) < 0 || v == 0) {
		cli_error("not a queue id: %s", s);
		return -1;
	}
	*id_r = (int64_t)v;
	return 0;
}

static const char *
or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static void
print_item(const struct store_queue_item *it, bool with_id)
{
	char next[40] = "-";
	if (!strcmp(it->status, "queued") || !strcmp(it->status, "deferred"))
		cli_fmt_time(it->next_attempt, next, sizeof next);
	if (with_id)
		printf("%lld ", (long long)it->msg_id);
	printf("%s %s attempts=%u next=%s", it->rcpt, it->status, it->attempts, next);
	if (it->last_dsn)
		printf(" dsn=%s", it->last_dsn);
	if (it->relay)
		printf(" relay=%s", it->relay);
	if (it->last_error)
		printf(" error=\"%s\"", it->last_error);
	printf("\n");
}

static int
queue_list(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{"--state", true}, {"--domain", true}, {NULL, false}};
	PARSE_ARGS(opts, "lightr queue list [--state STATE] [--domain DOMAIN]",
	           "Lists queued recipients, one line each: queue id, recipient, state, attempts,\n"
	           "next attempt, and the last reply. STATE is one of queued, deferred,\n"
	           "delivering, held, delivered, bounced, expired.\n",
	           0, 0);
	const char *state = a.val[0];
	if (state) {
		bool ok = false;
		for (size_t i = 0; queue_states[i]; i++)
			ok |= strcmp(state, queue_states[i]) == 0;
		if (!ok)
			return cli_usage_error(
			    "lightr queue list [--state STATE] [--domain DOMAIN]",
			    "unknown state %s", state);
	}
	char dom[256];
	if (a.val[1] && cli_domain_arg(a.val[1], dom, sizeof dom) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	if (st == NULL)
		return EXIT_FAIL;
	struct store_queue_item *v;
	size_t n;
	struct err err;
	if (store_queue_items(st, state, a.val[1] ? dom : NULL, &v, &n, &err) < 0)
		return cli_store_error("queue list", &err);
	for (size_t i = 0; i < n; i++)
		print_item(&v[i], true);
	store_queue_items_free(&v, n);
	return EXIT_OK;
}

static int
queue_show(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr queue show ID", "Shows a queued message and its recipients.\n", 1,
	           1);
	int64_t id;
	if (id_arg(a.pos[0], &id) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	if (st == NULL)
		return EXIT_FAIL;
	struct store_queue_msg m;
	struct store_queue_item *v;
	size_t n;
	struct err err;
	if (store_queue_show(st, id, &m, &v, &n, &err) < 0)
		return cli_store_error(a.pos[0], &err);
	char created[40];
	cli_fmt_time(m.created, created, sizeof created);
	printf("id: %lld\n", (long long)m.id);
	printf("created: %s\n", created);
	printf("mail_from: <%s>\n", m.mail_from);
	printf("return_path: %s\n", or_dash(m.return_path));
	printf("dsn_to: %s\n", or_dash(m.dsn_to));
	printf("auth_user: %s\n", or_dash(m.auth_user));
	printf("ret: %s\n", or_dash(m.ret));
	printf("envid: %s\n", or_dash(m.envid));
	printf("size: %llu\n", (unsigned long long)m.size);
	printf("flags:%s%s%s\n", m.requiretls ? " requiretls" : "", m.smtputf8 ? " smtputf8" : "",
	       m.eightbit ? " 8bitmime" : "");
	printf("recipients: %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		printf("  ");
		print_item(&v[i], false);
	}
	store_queue_items_free(&v, n);
	store_queue_msg_deinit(&m);
	return EXIT_OK;
}

/* retry/hold/release/drop of one id, or of all with --all when allow_all. */
static int
queue_cmd(struct cli_ctx *ctx, int argc, char **argv, enum store_queue_cmd cmd, const char *name,
          const char *usage, const char *help, bool allow_all)
{
	static const struct cli_opt all_opts[] = {{"--all", false}, {NULL, false}};
	PARSE_ARGS(allow_all ? all_opts : NULL, usage, help, 0, 1);
	bool all = allow_all && a.val[0] != NULL;
	if (all == (a.n_pos == 1))
		return cli_usage_error(usage,
		                       all ? "give an ID or --all, not both" : "missing queue ID");
	int64_t id = 0;
	if (!all && id_arg(a.pos[0], &id) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	if (st == NULL)
		return EXIT_FAIL;
	size_t n = 0;
	struct err err;
	if (store_queue_command(st, cmd, id, clock_now(), &n, &err) < 0)
		return cli_store_error(all ? "queue" : a.pos[0], &err);
	if (cmd == STORE_QUEUE_DROP)
		printf("queue %s dropped\n", a.pos[0]);
	else if (all)
		printf("queue: %s %zu recipient(s)\n", name, n);
	else
		printf("queue %s: %s %zu recipient(s)\n", a.pos[0], name, n);
	return EXIT_OK;
}

static int
queue_retry(struct cli_ctx *ctx, int argc, char **argv)
{
	return queue_cmd(ctx, argc, argv, STORE_QUEUE_RETRY, "retry", "lightr queue retry ID|--all",
	                 "Makes the queued and deferred recipients of a message (or of all\n"
	                 "messages) due now.\n",
	                 true);
}

static int
queue_hold(struct cli_ctx *ctx, int argc, char **argv)
{
	return queue_cmd(ctx, argc, argv, STORE_QUEUE_HOLD, "held", "lightr queue hold ID",
	                 "Holds the pending recipients of a message: no delivery until released.\n",
	                 false);
}

static int
queue_release(struct cli_ctx *ctx, int argc, char **argv)
{
	return queue_cmd(ctx, argc, argv, STORE_QUEUE_RELEASE, "released",
	                 "lightr queue release ID",
	                 "Releases the held recipients of a message; they are due now.\n", false);
}

static int
queue_drop(struct cli_ctx *ctx, int argc, char **argv)
{
	return queue_cmd(ctx, argc, argv, STORE_QUEUE_DROP, "dropped", "lightr queue drop ID",
	                 "Deletes a message from the queue with all its recipients, without any\n"
	                 "notice to the sender.\n",
	                 false);
}

int
cmd_queue(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"list", queue_list, "list queued recipients"},
	    {"show", queue_show, "show a queued message"},
	    {"retry", queue_retry, "make a message (or all) due now"},
	    {"hold", queue_hold, "hold a message"},
	    {"release", queue_release, "release a held message"},
	    {"drop", queue_drop, "delete a message from the queue"},
	    {NULL, NULL, NULL},
	};
	return cli_dispatch(ctx, "queue", subs, argc, argv);
}
