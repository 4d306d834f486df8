/* Shared pieces of the command-line front end. Private to src/cli/. Exit statuses follow
 * DESIGN.md §6: 0 ok, 1 failure, 2 usage. Errors are one line on stderr: "lightr: ...". */
#ifndef LIGHTR_CLI_PRIVATE_H
#define LIGHTR_CLI_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "store/store.h"

#define EXIT_OK    0
#define EXIT_FAIL  1
#define EXIT_USAGE 2

struct cli_ctx {
	const char *config_path; /* from -c/--config, or NULL */
	struct config *cfg;      /* loaded by cli_config() */
	struct store *store;     /* opened by cli_store() */
};

/* One option a command accepts. takes_value: "--quota 1GiB" or "--quota=1GiB". */
struct cli_opt {
	const char *name;
	bool takes_value;
};

#define CLI_MAX_POS 64
struct cli_args {
	const char *pos[CLI_MAX_POS];
	int n_pos;
	const char *val[16]; /* val[i]: value of opts[i]; "" for a flag that was given; else NULL */
};

/* Parses argv (argv[0] is the first word after the subcommand) against opts (NULL-terminated
 * table, at most 16). On an unknown option or a missing value prints a usage error naming usage
 * and returns -1. "--help"/"-h" prints help and returns 1. Otherwise 0. */
int cli_args_parse(int argc, char **argv, const struct cli_opt *opts, const char *usage,
                   const char *help, struct cli_args *out);
/* Checks that the number of positionals is within [min, max]; prints the usage error if not. */
int cli_args_count(const struct cli_args *a, int min, int max, const char *usage);

/* Parses the command's arguments into a local "a" and returns from the command on --help or a
 * usage error (unsafe: declares a variable and returns, hence upper case). */
#define PARSE_ARGS(opts, usage, help, min, max)                                                    \
	struct cli_args a;                                                                         \
	int parsed_ = cli_args_parse(argc, argv, opts, usage, help, &a);                           \
	if (parsed_ != 0)                                                                          \
		return parsed_ < 0 ? EXIT_USAGE : EXIT_OK;                                         \
	if (cli_args_count(&a, min, max, usage) < 0)                                               \
	return EXIT_USAGE

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Loads the configuration (printing every error and returning NULL on failure). */
struct config *cli_config(struct cli_ctx *ctx);
/* Opens the store in the configured data directory, creating the directory when missing. Run as
 * root, it first hands the data directory to the configured user and drops to it, so that the
 * server (which runs as that user) can still write every file. Prints the error and returns NULL
 * on failure. */
struct store *cli_store(struct cli_ctx *ctx);
/* Reads a password from stdin (one line; the trailing newline is removed). Prints why and returns
 * -1 when it is empty, too short (< CLI_PASSWORD_MIN), too long, or contains control bytes. */
#define CLI_PASSWORD_MIN 8
int cli_read_password(char *out, size_t n);
/* A fresh random password of 24 letters and digits (~142 bits). */
void cli_gen_password(char *out, size_t n);
/* Validates and lower-cases a domain; prints the error on failure. */
int cli_domain_arg(const char *in, char *out, size_t n);
/* Validates "local@domain" (lower-cases the domain part); "@domain" too when allow_catchall. */
int cli_address_arg(const char *in, bool allow_catchall, char *out, size_t n);
/* For a command whose argument in is an ID: parses it as a positive integer (1..INT64_MAX) into
 * *id_r, then opens the store into *st_r as cli_store() does. Returns 0, else what the command
 * returns: -1 after the usage error "ID must be a positive number" naming usage (as
 * cli_usage_error() returns), EXIT_FAIL when the store cannot be opened. */
int cli_id_store(struct cli_ctx *ctx, const char *in, const char *usage, int64_t *id_r,
                 struct store **st_r);
/* After a command printed a secret that is shown once (and its id line) on stdout: flushes
 * stdout, says on stderr that the <what> is shown only this once, and wipes secret[n]. Returns
 * EXIT_OK. */
int cli_secret_shown(const char *what, char *secret, size_t n);
/* For a command's optional "--domain D" (opt NULL = not given): validates and lower-cases D into
 * domain[n], then opens the store as cli_store() does. Prints the error and returns NULL when
 * either fails. */
struct store *cli_store_domain_opt(struct cli_ctx *ctx, const char *opt, char *domain, size_t n);
/* Prints err as "lightr: <what>: <msg>". Returns EXIT_FAIL. */
int cli_store_error(const char *what, const struct err *err);
/* "25MiB"-style text for a byte count. */
void cli_fmt_size(uint64_t v, char *out, size_t n);
/* RFC 3339 UTC text for a unix time. */
void cli_fmt_time(int64_t t, char *out, size_t n);

int cmd_serve(struct cli_ctx *ctx, int argc, char **argv);
int cmd_config(struct cli_ctx *ctx, int argc, char **argv);
int cmd_domain(struct cli_ctx *ctx, int argc, char **argv);
int cmd_account(struct cli_ctx *ctx, int argc, char **argv);
int cmd_alias(struct cli_ctx *ctx, int argc, char **argv);
int cmd_quickstart(struct cli_ctx *ctx, int argc, char **argv);
int cmd_backup(struct cli_ctx *ctx, int argc, char **argv);
int cmd_version(struct cli_ctx *ctx, int argc, char **argv);
int cmd_dkim(struct cli_ctx *ctx, int argc, char **argv);
int cmd_send(struct cli_ctx *ctx, int argc, char **argv);
int cmd_queue(struct cli_ctx *ctx, int argc, char **argv);
int cmd_apikey(struct cli_ctx *ctx, int argc, char **argv);
int cmd_webhook(struct cli_ctx *ctx, int argc, char **argv);
int cmd_suppression(struct cli_ctx *ctx, int argc, char **argv);

/* Rate limits (issue 8, cmd_account.c). Prints the "limits:" block of `account show` /
 * `domain show` for the account (domain false) or domain name (server_limit_usage with the
 * loaded config). Returns EXIT_OK or EXIT_FAIL after printing why. */
int cli_limits_print(struct cli_ctx *ctx, struct store *st, bool domain, const char *name);
/* `lightr account|domain limit NAME RULE VALUE|none`: sets (VALUE, 0 = unlimited) or removes
 * (none) the override of RULE; pos = {NAME (already validated into name), RULE, VALUE}. */
int cli_limit_set(struct cli_ctx *ctx, bool domain, const char *name, const char *rule,
                  const char *value, const char *usage);

/* Creates the default DKIM keys of a new domain (cmd_dkim.c): one Ed25519 and one RSA-2048
 * active key with selectors <algo>-<YYYYMMDD>. Returns 0, or -1 with err set. */

/* Dispatches "<group> <sub> ..." through a table of subcommands. */
struct cli_sub {
	const char *name;
	int (*run)(struct cli_ctx *ctx, int argc, char **argv);
	const char *summary;
};
int cli_dispatch(struct cli_ctx *ctx, const char *group, const struct cli_sub *subs, int argc,
                 char **argv);

#ifndef LIGHTR_VERSION
#define LIGHTR_VERSION "0.1.0"
#endif

#endif
