/* lightr quickstart EMAIL: the first five minutes. Writes a config file, creates the data
 * directory, the domain and the account with a generated password, and prints what to do next. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/passwd.h"
#include "cli_private.h"
#include "server/server.h"
#include "mail/addr.h"

static const char *const public_listeners =
    "listeners:\n"
    "  - {role: mx,          address: \"0.0.0.0:25\"}\n"
    "  - {role: submission,  address: \"0.0.0.0:587\"}\n"
    "  - {role: submissions, address: \"0.0.0.0:465\"}\n"
    "  - {role: imap,        address: \"0.0.0.0:143\"}\n"
    "  - {role: imaps,       address: \"0.0.0.0:993\"}\n"
    "  - {role: http,        address: \"127.0.0.1:8080\", tls: false}\n";

static const char *const local_listeners =
    "# Loopback ports for a first try; `lightr quickstart --public` writes the public ones\n"
    "# (25, 587, 465, 143, 993), which need root to bind (lightr then drops to `user`).\n"
    "listeners:\n"
    "  - {role: mx,          address: \"127.0.0.1:2525\"}\n"
    "  - {role: submission,  address: \"127.0.0.1:2587\"}\n"
    "  - {role: submissions, address: \"127.0.0.1:2465\"}\n"
    "  - {role: imap,        address: \"127.0.0.1:2143\"}\n"
    "  - {role: imaps,       address: \"127.0.0.1:2993\"}\n"
    "  - {role: http,        address: \"127.0.0.1:8080\", tls: false}\n";

static int
write_config(const char *path, bool force, const char *hostname, const char *data_dir, bool public)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0644);
	if (fd < 0) {
		if (errno == EEXIST)
			cli_error("%s already exists; use --force to overwrite it", path);
		else
			cli_error("%s: %m", path);
		return -1;
	}
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	char when[32];
	cli_fmt_time(time(NULL), when, sizeof when);
	fprintf(
	    f,
	    "# Lightr configuration, written by `lightr quickstart` on %s.\n"
	    "# Every parameter and its default: `lightr config dump --defaults`.\n"
	    "hostname: %s\n"
	    "data_dir: %s\n"
	    "# tls: {cert: /etc/lightr/cert.pem, key: /etc/lightr/key.pem}  # absent: self-signed\n"
	    "%s",
	    when, hostname, data_dir, public ? public_listeners : local_listeners);
	if (fclose(f) != 0) {
		cli_error("%s: %m", path);
		return -1;
	}
	return 0;
}

static void
print_next_steps(const struct config *cfg, const char *path, const char *addr, const char *pw,
                 const char *domain)
{
	printf("Lightr is set up for %s.\n\n", domain);
	printf("  config file:  %s\n  data dir:     %s\n  account:      %s\n", path, cfg->data_dir,
	       addr);
	printf("  password:     %s   (shown once; change it with: lightr account passwd %s)\n\n",
	       pw, addr);
	printf("Start the server:\n  lightr -c %s serve\n\nListeners:\n", path);
	for (size_t i = 0; i < cfg->n_listeners; i++)
		printf("  %-12s %s%s\n", config_role_name(cfg->listeners[i].role),
		       cfg->listeners[i].address, cfg->listeners[i].tls ? " (TLS)" : "");
	printf("\nDNS records to publish for %s (replace 203.0.113.10 with this server's public\n"
	       "address):\n",
	       domain);
	printf("  %s.  A    203.0.113.10\n", cfg->hostname);
	printf("  %s.  MX   10 %s.\n", domain, cfg->hostname);
	printf("  %s.  TXT  \"v=spf1 mx -all\"\n", domain);
	printf("  _dmarc.%s.  TXT  \"v=DMARC1; p=quarantine; rua=mailto:postmaster@%s\"\n", domain,
	       domain);
	printf("  and a PTR record for 203.0.113.10 pointing to %s.\n", cfg->hostname);
	printf("\nMore accounts: lightr -c %s account add NAME@%s\n", path, domain);
}

int
cmd_quickstart(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
	    {"--force", false}, {"--public", false}, {"--data-dir", true}, {NULL, false}};
	PARSE_ARGS(
	    opts, "lightr [-c FILE] quickstart EMAIL [--public] [--data-dir DIR] [--force]",
	    "Writes a config file (-c FILE, else ./lightr.yaml) with hostname mail.<domain>,\n"
	    "creates the data directory (default ./lightr-data), the domain and the account EMAIL\n"
	    "with a generated password, and prints the next steps and the DNS records to publish.\n"
	    "--public writes the standard public ports instead of loopback test ports; --force\n"
	    "overwrites an existing config file.\n",
	    1, 1);
	char addr[ADDR_MAX + 1];
	if (cli_address_arg(a.pos[0], false, addr, sizeof addr) < 0)
		return EXIT_FAIL;
	const char *domain = strchr(addr, '@') + 1;
	const char *path = ctx->config_path ? ctx->config_path : "lightr.yaml";
	char hostname[ADDR_DOMAIN_MAX + 8], data_dir[PATH_MAX];
	if (snprintf(hostname, sizeof hostname, "mail.%s", domain) >= (int)sizeof hostname ||
	    !addr_domain_is_valid(slice_from(hostname)))
		snprintf(hostname, sizeof hostname, "%s", domain);
	const char *dd = a.val[2] ? a.val[2] : "lightr-data";
	if (dd[0] == '/') {
		if (snprintf(data_dir, sizeof data_dir, "%s", dd) >= (int)sizeof data_dir)
			return cli_usage_error("--data-dir", "path too long"), EXIT_USAGE;
	} else {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof cwd) == NULL ||
		    snprintf(data_dir, sizeof data_dir, "%s/%s", cwd, dd) >= (int)sizeof data_dir) {
			cli_error("cannot resolve the data directory");
			return EXIT_FAIL;
		}
	}
	if (strpbrk(data_dir, "\"'\n\\#:") != NULL) {
		cli_error("%s: the data directory must not contain quotes, '#', ':' or newlines",
		          data_dir);
		return EXIT_FAIL;
	}
	if (write_config(path, a.val[0] != NULL, hostname, data_dir, a.val[1] != NULL) < 0)
		return EXIT_FAIL;
	ctx->config_path = path;
	struct store *st = cli_store(ctx);
	if (st == NULL)
		return EXIT_FAIL;

	struct err err;
	if (store_domain_add(st, domain, &err) < 0) {
		if (err.code != STORE_EEXIST)
			return cli_store_error(domain, &err);
	} else if (server_dkim_default_keys(st, domain, &err) < 0) {
		cli_error("%s: DKIM keys: %s (add them with 'lightr dkim generate')", domain,
		          err.msg);
		return EXIT_FAIL;
	}
	char pw[32], hash[AUTH_HASH_MAX];
	cli_gen_password(pw, sizeof pw);
	if (auth_init(1) < 0 || auth_hash(pw, strlen(pw), hash) < 0) {
		cli_error("cannot hash the password");
		return EXIT_FAIL;
	}
	if (store_account_add(st, addr, hash, 0, &err) < 0)
		return cli_store_error(addr, &err);
	print_next_steps(ctx->cfg, path, addr, pw, domain);
	return EXIT_OK;
}
