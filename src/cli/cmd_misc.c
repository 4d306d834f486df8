/* lightr serve, config check|dump, backup, version. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_private.h"
#include "server/server.h"

int
cmd_serve(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(
	    NULL, "lightr [-c FILE] serve",
	    "Runs the server in the foreground, logging to standard error. SIGHUP reloads the\n"
	    "config file; SIGTERM or SIGINT stops it cleanly.\n",
	    0, 0);
	struct config *cfg = cli_config(ctx);
	if (cfg == NULL)
		return EXIT_FAIL;
	ctx->cfg = NULL; /* server_run takes the reference */
	return server_run(cfg);
}

static int
config_check(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr [-c FILE] config check",
	           "Checks the config file and prints every problem as FILE:LINE: KEY: MESSAGE.\n",
	           0, 0);
	const char *path = config_find_path(ctx->config_path);
	if (cli_config(ctx) == NULL)
		return EXIT_FAIL;
	printf("%s: ok\n", path ? path : "built-in defaults");
	return EXIT_OK;
}

static int
config_dump_cmd(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{"--defaults", false}, {NULL, false}};
	PARSE_ARGS(
	    opts, "lightr [-c FILE] config dump [--defaults]",
	    "Prints every parameter with its value in effect, as YAML that lightr can read back;\n"
	    "with --defaults, the built-in defaults.\n",
	    0, 0);
	struct config *cfg = cli_config(ctx);
	if (cfg == NULL)
		return EXIT_FAIL;
	struct buf out;
	buf_init(&out, 0);
	config_dump(cfg, a.val[0] != NULL, &out);
	fwrite(out.data, 1, out.len, stdout);
	buf_deinit(&out);
	return EXIT_OK;
}

int
cmd_config(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"check", config_check, "check the config file"},
	    {"dump", config_dump_cmd, "print the configuration in effect"},
	    {NULL, NULL, NULL},
	};
	return cli_dispatch(ctx, "config", subs, argc, argv);
}

int
cmd_backup(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr [-c FILE] backup DEST",
	           "Writes a consistent copy of the database to the new file DEST, also while the\n"
	           "server runs (SQLite online backup). Restore by putting it in place of\n"
	           "DATA_DIR/lightr.db while the server is stopped.\n",
	           1, 1);
	struct stat sb;
	if (stat(a.pos[0], &sb) == 0 || errno != ENOENT) {
		cli_error("%s: already exists", a.pos[0]);
		return EXIT_FAIL;
	}
	/* Resolve DEST before cli_store() may drop privileges; the service user must be able to
	 * write there. */
	struct store *st = cli_store(ctx);
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_backup(st, a.pos[0], &err) < 0)
		return cli_store_error(a.pos[0], &err);
	printf("backup written to %s\n", a.pos[0]);
	return EXIT_OK;
}

int
cmd_version(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr version", "Prints the version.\n", 0, 0);
	printf("lightr %s\n", LIGHTR_VERSION);
	return EXIT_OK;
}
