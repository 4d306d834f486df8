/* DKIM key records (RFC 6376 §3.6.1, RFC 8463 §4): the TXT value at
 * <selector>._domainkey.<domain>. Tags v (must be first and "DKIM1" when present), h (hash
 * algorithms, colon list), k (key type, default rsa), p (base64 key; empty = revoked),
 * s (service types, default "*"), t (flags y and s); unknown tags and unknown list values
 * are ignored as §3.6.1 says. Whether the key suits a signature is decided in verify.c. */
#include "dkim_private.h"

#include "util/base64.h"

void
dkim_keyrec_deinit(struct dkim_keyrec *kr)
{
	buf_deinit(&kr->key);
}

int
dkim_keyrec_parse(const char *txt, size_t len, struct dkim_keyrec *kr, const char **err_r)
{
	kr->type = DKIM_KEY_RSA;
	kr->revoked = false;
	kr->sha256_ok = true;
	kr->email_ok = true;
	kr->strict = false;
	kr->testing = false;
	buf_init(&kr->key, DKIM_KEYREC_MAX);
	if (len > DKIM_KEYREC_MAX) {
		*err_r = "key record too long";
		return -1;
	}
	struct dkim_tags t;
	if (dkim_tags_parse(txt, len, &t, err_r) < 0)
		return -1;
	const struct dkim_tag *v = dkim_tags_get(&t, "v");
	if (v != NULL && (v != &t.v[0] || !slice_eq(v->value, "DKIM1"))) {
		*err_r = "key record v= is not DKIM1 first";
		return -1;
	}
	const struct dkim_tag *h = dkim_tags_get(&t, "h");
	if (h != NULL) {
		struct slice e;
		size_t pos = 0;
		kr->sha256_ok = false;
		while (dkim_tags_list_next(h->value, &pos, &e))
			if (slice_eq(e, "sha256"))
				kr->sha256_ok = true;
	}
	const struct dkim_tag *k = dkim_tags_get(&t, "k");
	if (k != NULL) {
		if (slice_eq(k->value, "rsa")) {
			kr->type = DKIM_KEY_RSA;
		} else if (slice_eq(k->value, "ed25519")) {
			kr->type = DKIM_KEY_ED25519;
		} else {
			*err_r = "key record k= is unknown";
			return -1;
		}
	}
	const struct dkim_tag *s = dkim_tags_get(&t, "s");
	if (s != NULL) {
		struct slice e;
		size_t pos = 0;
		kr->email_ok = false;
		while (dkim_tags_list_next(s->value, &pos, &e))
			if (slice_eq(e, "email") || slice_eq(e, "*"))
				kr->email_ok = true;
	}
	const struct dkim_tag *f = dkim_tags_get(&t, "t");
	if (f != NULL) {
		struct slice e;
		size_t pos = 0;
		while (dkim_tags_list_next(f->value, &pos, &e)) {
			if (slice_eq(e, "s"))
				kr->strict = true;
			else if (slice_eq(e, "y"))
				kr->testing = true;
		}
	}
	const struct dkim_tag *p = dkim_tags_get(&t, "p");
	if (p == NULL) {
		*err_r = "key record has no p=";
		return -1;
	}
	if (p->value.len == 0) {
		kr->revoked = true;
		return 0;
	}
	if (base64_decode(p->value.p, p->value.len, 1, &kr->key) < 0) {
		*err_r = "key record p= is not base64";
		return -1;
	}
	if (kr->key.len == 0)
		kr->revoked = true; /* p= of whitespace only */
	return 0;
}
