/* Helpers shared by the subcommands: argument parsing, config and store opening (with the
 * privilege drop for root), password input, and output formatting. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/passwd.h"
#include "cli_private.h"
#include "mail/addr.h"
#include "util/privs.h"
#include "util/rand.h"
#include "util/strconv.h"

void
cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("lightr: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;
	fputs("lightr: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\n", usage);
	return -1;
}

int
cli_args_parse(int argc, char **argv, const struct cli_opt *opts, const char *usage,
               const char *help, struct cli_args *out)
{
	memset(out, 0, sizeof *out);
	bool only_pos = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			printf("usage: %s\n%s", usage, help ? help : "");
			return 1;
		}
		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (!only_pos && a[0] == '-' && a[1] != '\0') {
			const char *eq = strchr(a, '=');
			size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
			int k = -1;
			for (int j = 0; opts && opts[j].name; j++)
				if (strlen(opts[j].name) == nlen &&
				    strncmp(opts[j].name, a, nlen) == 0)
					k = j;
			if (k < 0)
				return cli_usage_error(usage, "unknown option %.*s", (int)nlen, a);
			if (!opts[k].takes_value) {
				if (eq)
					return cli_usage_error(usage, "%s takes no value",
					                       opts[k].name);
				out->val[k] = "";
			} else if (eq) {
				out->val[k] = eq + 1;
			} else if (i + 1 < argc) {
				out->val[k] = argv[++i];
			} else {
				return cli_usage_error(usage, "%s needs a value", opts[k].name);
			}
			continue;
		}
		if (out->n_pos >= CLI_MAX_POS)
			return cli_usage_error(usage, "too many arguments");
		out->pos[out->n_pos++] = a;
	}
	return 0;
}

int
cli_args_count(const struct cli_args *a, int min, int max, const char *usage)
{
	if (a->n_pos < min)
		return cli_usage_error(usage, "missing argument");
	if (a->n_pos > max)
		return cli_usage_error(usage, "unexpected argument '%s'", a->pos[max]);
	return 0;
}

int
cli_dispatch(struct cli_ctx *ctx, const char *group, const struct cli_sub *subs, int argc,
             char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "--help") != 0 && strcmp(argv[0], "-h") != 0) {
		for (const struct cli_sub *s = subs; s->name; s++)
			if (strcmp(s->name, argv[0]) == 0)
				return s->run(ctx, argc - 1, argv + 1);
		cli_error("unknown command '%s %s'", group, argv[0]);
	}
	FILE *f = argc >= 1 && argv[0][0] == '-' ? stdout : stderr;
	fprintf(f, "usage: lightr %s <command> [options]\ncommands:\n", group);
	for (const struct cli_sub *s = subs; s->name; s++)
		fprintf(f, "  %-8s %s\n", s->name, s->summary);
	fprintf(f, "Run 'lightr %s <command> --help' for details.\n", group);
	return f == stdout ? EXIT_OK : EXIT_USAGE;
}

struct config *
cli_config(struct cli_ctx *ctx)
{
	if (ctx->cfg)
		return ctx->cfg;
	struct buf errs;
	buf_init(&errs, 64 * 1024);
	ctx->cfg = config_load(config_find_path(ctx->config_path), &errs);
	if (ctx->cfg == NULL)
		fprintf(stderr, "%s", buf_cstr(&errs));
	buf_deinit(&errs);
	return ctx->cfg;
}

/* As root: give the data directory to the service user and become that user, as the server does,
 * so that no database file is left owned by root. */
static int
cli_become_service_user(const struct config *cfg)
{
	if (geteuid() != 0)
		return 0;
	uid_t uid;
	gid_t gid;
	struct err err;
	if (privs_lookup(cfg->user, &uid, &gid, &err) < 0 ||
	    privs_chown_tree(cfg->data_dir, uid, gid, &err) < 0 || privs_drop(uid, gid, &err) < 0) {
		cli_error("%s", err.msg);
		return -1;
	}
	return 0;
}

struct store *
cli_store(struct cli_ctx *ctx)
{
	if (ctx->store)
		return ctx->store;
	struct config *cfg = cli_config(ctx);
	if (cfg == NULL)
		return NULL;
	struct err err;
	if (privs_mkdir(cfg->data_dir, &err) < 0) {
		cli_error("%s", err.msg);
		return NULL;
	}
	if (cli_become_service_user(cfg) < 0)
		return NULL;
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/lightr.db", cfg->data_dir) >= (int)sizeof path) {
		cli_error("data_dir is too long");
		return NULL;
	}
	if (store_open(path, &ctx->store, &err) < 0) {
		cli_error("%s: %s", path, err.msg);
		return NULL;
	}
	return ctx->store;
}

int
cli_read_password(char *out, size_t n)
{
	size_t len = 0;
	int c;
	while ((c = getchar()) != EOF && c != '\n') {
		if (len + 1 >= n || len >= AUTH_PASSWORD_MAX) {
			cli_error("password is longer than %d bytes", AUTH_PASSWORD_MAX);
			return -1;
		}
		out[len++] = (char)c;
	}
	if (len > 0 && out[len - 1] == '\r')
		len--;
	out[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) {
			cli_error("password contains a control character");
			return -1;
		}
	if (len == 0) {
		cli_error("no password on standard input");
		return -1;
	}
	if (len < CLI_PASSWORD_MIN) {
		cli_error("password is shorter than %d characters", CLI_PASSWORD_MIN);
		return -1;
	}
	return 0;
}

void
cli_gen_password(char *out, size_t n)
{
	size_t len = n - 1 < 24 ? n - 1 : 24;
	rand_token(out, len);
}

int
cli_domain_arg(const char *in, char *out, size_t n)
{
	struct slice s = slice_from(in);
	if (!addr_domain_is_valid(s) || addr_lower(s, out, n) < 0) {
		cli_error("'%s' is not a valid domain name", in);
		return -1;
	}
	return 0;
}

int
cli_address_arg(const char *in, bool allow_catchall, char *out, size_t n)
{
	struct slice local, domain, s = slice_from(in);
	if (allow_catchall && in[0] == '@') {
		if (n < 2 || cli_domain_arg(in + 1, out + 1, n - 1) < 0)
			return -1;
		out[0] = '@';
		return 0;
	}
	if (!addr_parse(s, &local, &domain) || local.len + 1 + domain.len >= n) {
		cli_error("'%s' is not a valid address (local@domain%s)", in,
		          allow_catchall ? " or @domain" : "");
		return -1;
	}
	memcpy(out, local.p, local.len);
	out[local.len] = '@';
	return addr_lower(domain, out + local.len + 1, n - local.len - 1);
}

int
cli_id_store(struct cli_ctx *ctx, const char *in, const char *usage, int64_t *id_r,
             struct store **st_r)
{
	uint64_t id;
	if (strconv_u64(slice_from(in), INT64_MAX, &id) < 0 || id == 0)
		return cli_usage_error(usage, "ID must be a positive number");
	*id_r = (int64_t)id;
	*st_r = cli_store(ctx);
	return *st_r ? 0 : EXIT_FAIL;
}

int
cli_secret_shown(const char *what, char *secret, size_t n)
{
	fflush(stdout);
	fprintf(stderr, "lightr: the %s is shown only this once; store it safely\n", what);
	memset(secret, 0, n);
	return EXIT_OK;
}

struct store *
cli_store_domain_opt(struct cli_ctx *ctx, const char *opt, char *domain, size_t n)
{
	if (opt && cli_domain_arg(opt, domain, n) < 0)
		return NULL;
	return cli_store(ctx);
}

int
cli_store_error(const char *what, const struct err *err)
{
	cli_error("%s: %s", what, err->msg);
	return EXIT_FAIL;
}

void
cli_fmt_size(uint64_t v, char *out, size_t n)
{
	static const char *units[] = {"GiB", "MiB", "KiB"};
	for (int i = 0; i < 3; i++) {
		uint64_t m = 1ULL << (10 * (3 - i));
		if (v >= m && v % m == 0) {
			snprintf(out, n, "%llu%s", (unsigned long long)(v / m), units[i]);
			return;
		}
	}
	snprintf(out, n, "%llu", (unsigned long long)v);
}

void
cli_fmt_time(int64_t t, char *out, size_t n)
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
