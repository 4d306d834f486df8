/* Administrative operations shared by the CLI (cli/) and the REST API (through http_hooks):
 * DKIM key generation and rotation, and the DNS records a domain needs (server.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim/dkim.h"
#include "server.h"
#include "util/xalloc.h"

#define DKIM_SELECTOR_TRIES 100

/* A selector "<algo>-<YYYYMMDD>" not yet used by domain ("-2", "-3"... appended when taken). */
static int
admin_default_selector(struct store *st, const char *domain, enum dkim_algo algo, int64_t now,
                       char *out, size_t n, struct err *err)
{
	time_t t = (time_t)now;
	struct tm tm;
	char base[32];
	if (gmtime_r(&t, &tm) == NULL || strftime(base, sizeof base, "%Y%m%d", &tm) == 0)
		return err_set(err, STORE_EINVAL, "bad time");
	struct store_dkim_key *v;
	size_t nv;
	if (store_dkim_list(st, domain, &v, &nv, err) < 0)
		return -1;
	int ret = -1;
	for (int i = 1; i <= DKIM_SELECTOR_TRIES; i++) {
		int w = i == 1 ? snprintf(out, n, "%s-%s", dkim_algo_name(algo), base)
		               : snprintf(out, n, "%s-%s-%d", dkim_algo_name(algo), base, i);
		if (w < 0 || (size_t)w >= n)
			break;
		bool used = false;
		for (size_t j = 0; j < nv && !used; j++)
			used = strcmp(v[j].selector, out) == 0;
		if (!used) {
			ret = 0;
			break;
		}
	}
	store_dkim_list_free(&v, nv);
	if (ret < 0)
		err_set(err, STORE_EEXIST, "no free selector for %s", dkim_algo_name(algo));
	return ret;
}

/* A freshly generated key, owning its strings. */
struct admin_key {
	char selector[SERVER_SELECTOR_MAX];
	char *pem, *pub;
	struct store_dkim_new k;
};

static void
admin_key_deinit(struct admin_key *g)
{
	free(g->pem);
	free(g->pub);
	g->pem = g->pub = NULL;
}

/* Selectors: 1..63 of [a-z0-9-], as a DNS label. */
static bool
admin_selector_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= SERVER_SELECTOR_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '.'))
			return false;
	return true;
}

static int
admin_key_new(struct store *st, const char *domain, enum dkim_algo algo, unsigned bits,
              const char *selector, int64_t now, struct admin_key *g, struct err *err)
{
	memset(g, 0, sizeof *g);
	if (selector) {
		if (!admin_selector_ok(selector))
			return err_set(
			    err, STORE_EINVAL,
			    "selector must be 1 to 63 characters of a-z, 0-9, '-' and '.'");
		(void)snprintf(g->selector, sizeof g->selector, "%s", selector);
	} else if (admin_default_selector(st, domain, algo, now, g->selector, sizeof g->selector,
	                                  err) < 0) {
		return -1;
	}
	if (algo == DKIM_ALGO_ED25519)
		bits = 256;
	else if (bits != 2048 && bits != 3072 && bits != 4096)
		return err_set(err, STORE_EINVAL, "RSA keys have 2048, 3072 or 4096 bits");
	if (dkim_keygen(algo, algo == DKIM_ALGO_ED25519 ? 0 : bits, &g->pem, &g->pub, err) < 0)
		return -1;
	g->k = (struct store_dkim_new){.selector = g->selector,
	                               .algo = dkim_algo_name(algo),
	                               .bits = bits,
	                               .private_pem = g->pem,
	                               .public_b64 = g->pub};
	return 0;
}

int
server_dkim_generate(struct store *st, const char *domain, const char *algo, unsigned bits,
                     const char *selector, int64_t now, char selector_r[SERVER_SELECTOR_MAX],
                     struct err *err)
{
	enum dkim_algo a;
	if (dkim_algo_parse(algo, &a) < 0)
		return err_set(err, STORE_EINVAL, "algorithm must be ed25519 or rsa");
	struct store_domain d;
	if (store_domain_get(st, domain, &d, err) < 0)
		return -1;
	store_domain_deinit(&d);
	struct admin_key g;
	int rc = admin_key_new(st, domain, a, bits, selector, now, &g, err);
	if (rc == 0)
		rc = store_dkim_add(st, domain, &g.k, now, err);
	if (rc == 0 && selector_r)
		(void)snprintf(selector_r, SERVER_SELECTOR_MAX, "%s", g.selector);
	admin_key_deinit(&g);
	return rc;
}

int
server_dkim_default_keys(struct store *st, const char *domain, struct err *err)
{
	int64_t now = (int64_t)time(NULL);
	if (server_dkim_generate(st, domain, "ed25519", 256, NULL, now, NULL, err) < 0)
		return -1;
	return server_dkim_generate(st, domain, "rsa", 2048, NULL, now, NULL, err);
}

int
server_dkim_rotate(struct store *st, const char *domain, unsigned keep_days, int64_t now,
                   char selectors_r[2][SERVER_SELECTOR_MAX], struct err *err)
{
	struct store_domain d;
	if (store_domain_get(st, domain, &d, err) < 0)
		return -1;
	store_domain_deinit(&d);
	struct admin_key g[2];
	memset(g, 0, sizeof g);
	int rc = admin_key_new(st, domain, DKIM_ALGO_ED25519, 256, NULL, now, &g[0], err);
	if (rc == 0)
		rc = admin_key_new(st, domain, DKIM_ALGO_RSA, 2048, NULL, now, &g[1], err);
	struct store_dkim_new keys[2] = {g[0].k, g[1].k};
	if (rc == 0)
		rc = store_dkim_rotate(st, domain, keys, 2, now, keep_days, err);
	if (rc == 0 && selectors_r)
		for (size_t i = 0; i < 2; i++)
			memcpy(selectors_r[i], g[i].selector, SERVER_SELECTOR_MAX);
	admin_key_deinit(&g[0]);
	admin_key_deinit(&g[1]);
	return rc;
}

static void
admin_record(struct http_dns_record **v, size_t *n, size_t *cap, char *name, const char *type,
             char *value, char *comment)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 8;
		*v = xrealloc(*v, *cap * sizeof **v);
	}
	(*v)[(*n)++] = (struct http_dns_record){
	    .name = name, .type = xstrdup(type), .value = value, .comment = comment};
}

int
server_domain_dns(struct store *st, const char *domain, const char *hostname,
                  struct http_dns_record **v_r, size_t *n_r, struct err *err)
{
	struct store_domain d;
	if (store_domain_get(st, domain, &d, err) < 0)
		return -1;
	store_domain_deinit(&d);
	if (store_dkim_retire_due(st, (int64_t)time(NULL), NULL, err) < 0)
		return -1;
	struct store_dkim_key *keys;
	size_t nk;
	if (store_dkim_list(st, domain, &keys, &nk, err) < 0)
		return -1;
	struct http_dns_record *v = NULL;
	size_t n = 0, cap = 0;
	admin_record(&v, &n, &cap, xasprintf("%s.", domain), "MX", xasprintf("10 %s.", hostname),
	             NULL);
	admin_record(&v, &n, &cap, xasprintf("%s.", domain), "TXT", xstrdup("v=spf1 mx -all"),
	             NULL);
	struct buf txt;
	buf_init(&txt, 0);
	for (size_t i = 0; i < nk; i++) {
		enum dkim_algo algo;
		if ((strcmp(keys[i].state, "active") != 0 &&
		     strcmp(keys[i].state, "published") != 0) ||
		    dkim_algo_parse(keys[i].algo, &algo) < 0)
			continue;
		buf_reset(&txt);
		if (dkim_txt_record(algo, keys[i].public_key, &txt) < 0)
			continue;
		admin_record(&v, &n, &cap, xasprintf("%s._domainkey.%s.", keys[i].selector, domain),
		             "TXT", xstrdup(buf_cstr(&txt)),
		             xasprintf("DKIM %s key (%s)", keys[i].algo, keys[i].state));
	}
	buf_deinit(&txt);
	store_dkim_list_free(&keys, nk);
	admin_record(&v, &n, &cap, xasprintf("_dmarc.%s.", domain), "TXT",
	             xasprintf("v=DMARC1; p=quarantine; rua=mailto:postmaster@%s", domain),
	             xasprintf("DMARC: a starting point; review the reports sent to "
	                       "postmaster@%s before moving to p=reject",
	                       domain));
	*v_r = v;
	*n_r = n;
	return 0;
}
