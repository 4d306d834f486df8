/* lightr alias add|list|remove. An alias maps one address (or "@domain", the catch-all) of a
 * domain we serve to one or more target addresses, local or remote. */
#include <stdio.h>

#include "cli_private.h"
#include "mail/addr.h"

static int
alias_add(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(
	    NULL, "lightr alias add ADDRESS TARGET [TARGET...]",
	    "Adds targets to an alias, creating it when new. ADDRESS is local@domain or @domain\n"
	    "(catch-all: mail to any unknown address of the domain); its domain must exist.\n",
	    2, CLI_MAX_POS);
	char addr[ADDR_MAX + 1];
	static char targets[CLI_MAX_POS][ADDR_MAX + 1];
	const char *tp[CLI_MAX_POS];
	if (cli_address_arg(a.pos[0], true, addr, sizeof addr) < 0)
		return EXIT_FAIL;
	for (int i = 1; i < a.n_pos; i++) {
		if (cli_address_arg(a.pos[i], false, targets[i - 1], sizeof targets[0]) < 0)
			return EXIT_FAIL;
		tp[i - 1] = targets[i - 1];
	}
	struct store *st = cli_store(ctx);
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_alias_add(st, addr, tp, (size_t)(a.n_pos - 1), &err) < 0)
		return cli_store_error(addr, &err);
	printf("alias %s added\n", addr);
	return EXIT_OK;
}

static int
alias_list(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr alias list [DOMAIN]",
	           "Lists all aliases, or those of one domain.\n", 0, 1);
	char dom[ADDR_DOMAIN_MAX + 1];
	if (a.n_pos == 1 && cli_domain_arg(a.pos[0], dom, sizeof dom) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	struct store_alias *v;
	size_t n;
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_alias_list(st, a.n_pos ? dom : NULL, &v, &n, &err) < 0)
		return cli_store_error("alias list", &err);
	for (size_t i = 0; i < n; i++) {
		printf("%s ->", v[i].address);
		for (size_t j = 0; j < v[i].n_targets; j++)
			printf(" %s", v[i].targets[j]);
		printf("\n");
	}
	store_alias_list_free(&v, n);
	return EXIT_OK;
}

static int
alias_remove(struct cli_ctx *ctx, int argc, char **argv)
{
	PARSE_ARGS(NULL, "lightr alias remove ADDRESS [TARGET]",
	           "Removes an alias, or only one of its targets.\n", 1, 2);
	char addr[ADDR_MAX + 1], target[ADDR_MAX + 1];
	if (cli_address_arg(a.pos[0], true, addr, sizeof addr) < 0)
		return EXIT_FAIL;
	if (a.n_pos == 2 && cli_address_arg(a.pos[1], false, target, sizeof target) < 0)
		return EXIT_FAIL;
	struct store *st = cli_store(ctx);
	struct err err;
	if (st == NULL)
		return EXIT_FAIL;
	if (store_alias_remove(st, addr, a.n_pos == 2 ? target : NULL, &err) < 0)
		return cli_store_error(addr, &err);
	if (a.n_pos == 2)
		printf("alias %s: target %s removed\n", addr, target);
	else
		printf("alias %s removed\n", addr);
	return EXIT_OK;
}

int
cmd_alias(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"add", alias_add, "add an alias or targets to it"},
	    {"list", alias_list, "list aliases"},
	    {"remove", alias_remove, "remove an alias or one target"},
	    {NULL, NULL, NULL},
	};
	return cli_dispatch(ctx, "alias", subs, argc, argv);
}
