/* Internals shared by the DKIM signer and verifier (only for src/dkim): the message split into
 * header fields and body (sign.c), the tag-list parser (tags.c, RFC 6376 §3.2) and the key
 * record parser (keyrec.c, RFC 6376 §3.6.1). No I/O. */
#ifndef LIGHTR_DKIM_PRIVATE_H
#define LIGHTR_DKIM_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/slice.h"

#define DKIM_MAX_FIELDS 1000 /* header fields looked at; more are ignored */
#define DKIM_TAGS_MAX   64   /* tags per tag list; more make the list invalid */

/* ---- the message (sign.c) ---- */

/* One header field in the normalised copy: [start, start + len) includes its final CRLF
 * (absent only for the last line of a header-only message without a line end). */
struct dkim_field {
	size_t start, len;
	size_t name_len; /* name without trailing WSP; 0 when the field has no colon */
};

struct dkim_msg {
	struct buf norm; /* the message with every line end as CRLF */
	struct dkim_field *fields;
	size_t n_fields; /* at most DKIM_MAX_FIELDS */
	size_t body;     /* offset of the body in norm (norm.len when there is none) */
};

/* Copies msg with bare LF turned into CRLF and locates the header fields (the first
 * DKIM_MAX_FIELDS; continuation lines belong to the field above) and the body. Returns 0, or
 * -1 with err set (message too large). Call dkim_msg_deinit either way. */
int dkim_msg_parse(const unsigned char *msg, size_t len, struct dkim_msg *p, struct err *err);
void dkim_msg_deinit(struct dkim_msg *p);
/* true when field f is named name (ASCII case-insensitive). */
bool dkim_msg_field_is(const struct dkim_msg *p, const struct dkim_field *f, struct slice name);

/* ---- tag lists (tags.c) ---- */

struct dkim_tag {
	struct slice name;  /* tag-name */
	struct slice value; /* tag-value without surrounding FWS (may be empty) */
	size_t raw_start;   /* offset just after '=' in the parsed text */
	size_t raw_end;     /* offset of the ';' ending the value, or the text length */
};

struct dkim_tags {
	struct dkim_tag v[DKIM_TAGS_MAX];
	size_t n;
};

/* Parses an RFC 6376 §3.2 tag-list (FWS allowed around names, '=' and ';'; a trailing ';'
 * allowed). Slices point into s, which must outlive t. Returns 0, or -1 with *err_r a static
 * reason: syntax error, duplicate tag, more than DKIM_TAGS_MAX tags. */
int dkim_tags_parse(const char *s, size_t len, struct dkim_tags *t, const char **err_r);
/* The tag named name (case-sensitive, as §3.2 says), or NULL. */
const struct dkim_tag *dkim_tags_get(const struct dkim_tags *t, const char *name);
/* Iterates a colon-separated list in v (FWS around elements allowed): returns false at the end,
 * else the next element (trimmed) in *elem_r. *pos starts at 0. */
bool dkim_tags_list_next(struct slice v, size_t *pos, struct slice *elem_r);

/* ---- key records (keyrec.c) ---- */

enum dkim_keyrec_type {
	DKIM_KEY_RSA,     /* k=rsa (the default) */
	DKIM_KEY_ED25519, /* k=ed25519 */
};

struct dkim_keyrec {
	enum dkim_keyrec_type type;
	bool revoked;   /* p= empty */
	bool sha256_ok; /* h= absent or lists sha256 */
	bool email_ok;  /* s= absent or lists "email" or "*" */
	bool strict;    /* t=s: i= must not be a subdomain of d= */
	bool testing;   /* t=y */
	struct buf key; /* p= decoded (RSA: SubjectPublicKeyInfo DER, Ed25519: 32 bytes) */
};

#define DKIM_KEYREC_MAX 8192 /* longest key record text accepted (RSA-16384 fits) */

/* Parses the key record text (the TXT strings already concatenated). kr is initialised here;
 * call dkim_keyrec_deinit afterwards either way. Returns 0, or -1 with *err_r a static reason
 * (syntax, v= not DKIM1 or not first, unknown k=, missing p=, p= not base64, too long). */
int dkim_keyrec_parse(const char *txt, size_t len, struct dkim_keyrec *kr, const char **err_r);
void dkim_keyrec_deinit(struct dkim_keyrec *kr);

#endif
