/* Internals shared by the config module's files: the parameter table (params.c) that is the
 * schema, the value checks (validate.c), the YAML loader (load.c) and the writer (dump.c).
 * Nothing outside src/config/ includes this header. */
#ifndef LIGHTR_CONFIG_PRIVATE_H
#define LIGHTR_CONFIG_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/buf.h"
#include "util/slice.h"

#define CONFIG_MAX_FILE      (1024 * 1024) /* bytes; larger files are refused */
#define CONFIG_MAX_LISTENERS 64
#define CONFIG_MAX_ERRORS    100 /* problems reported before "too many errors" */
#define CONFIG_MAX_DEPTH     32  /* YAML nesting; the schema needs 3 */
#define CONFIG_MAX_ANCHORS   64

enum param_type {
	PARAM_STRING,    /* char *; flags say whether NULL (unset) is allowed */
	PARAM_UINT,      /* uint64_t, plain decimal */
	PARAM_SIZE,      /* uint64_t bytes, "25MiB", "512k", "1000" */
	PARAM_DURATION,  /* uint64_t seconds, "5m", "30s", "5d", "90" */
	PARAM_BOOL,      /* bool */
	PARAM_ENUM,      /* char * holding one of param.choices */
	PARAM_LISTENERS, /* listeners + n_listeners */
};

enum {
	PARAM_NULLABLE = 1 << 0,     /* STRING may be absent (NULL) */
	PARAM_DEFAULT_HOST = 1 << 1, /* default is this machine's name, not param.def */
	PARAM_SECRET = 1 << 2, /* a password: `config dump` prints "(secret)", never the value */
};

struct param {
	const char *path; /* dotted: "smtp.max_recipients"; one level of sections at most */
	enum param_type type;
	size_t offset;   /* into struct config */
	const char *def; /* the built-in default, written as a user would; NULL: none */
	uint64_t min, max;
	bool reloadable;
	unsigned flags;
	const char *const *choices; /* ENUM: NULL-terminated */
	/* STRING: extra syntax check; returns NULL when s is fine, else a message. */
	const char *(*check)(const char *s);
};

extern const struct param config_params[];
extern const size_t config_n_params;

/* The row for a dotted path, or NULL. */
const struct param *config_param_find(struct slice path);
/* true when some row's path starts with "name." (a section such as "smtp"). */
bool config_is_section(struct slice name);

/* Pointer to the field a row describes. */
static inline void *
config_field(struct config *c, const struct param *p)
{
	return (char *)c + p->offset;
}

static inline const void *
config_cfield(const struct config *c, const struct param *p)
{
	return (const char *)c + p->offset;
}

/* A fresh config (one reference) holding every built-in default; never fails. */
struct config *config_new_defaults(void);
/* Frees every owned field of c and the struct itself. */
void config_free(struct config *c);
/* The built-in listeners, copied into *c (replacing what was there). */
void config_set_default_listeners(struct config *c);
void config_free_listeners(struct config *c);

/* --- validate.c --- */

/* Converts a scalar to a row's value. On success stores it into c and returns NULL; on failure
 * leaves c unchanged and writes a message (without path) into msg. Not for LISTENERS. */
const char *config_set_scalar(struct config *c, const struct param *p, const char *s, size_t len,
                              char *msg, size_t msgsize);
/* Syntax checks for STRING rows; NULL means fine. */
const char *config_check_hostname(const char *s);
const char *config_check_plain(const char *s);
/* A listener address in canonical form, to find two listeners on the same socket. */
struct config_addr {
	char host[64]; /* inet_ntop() form, "localhost", or "" for all addresses */
	unsigned port;
};
/* "host:port", "[v6]:port", ":port". Returns NULL when fine (and fills *a), else a message. */
const char *config_check_address(const char *s, struct config_addr *a);
/* true when two listeners would bind the same socket (same port, same or wildcard host). */
bool config_addr_conflict(const struct config_addr *a, const struct config_addr *b);
/* Role name → role; -1 when unknown. */
int config_role_parse(const char *s);

/* --- dump.c --- */

/* Writes v the way the row's type reads it back: sizes with the largest exact binary unit,
 * durations with the largest exact unit. */
void config_format_size(uint64_t v, char *out, size_t n);
void config_format_duration(uint64_t v, char *out, size_t n);
/* Appends s as a YAML scalar, double-quoted and escaped when plain style could misread it. */
void config_yaml_string(struct buf *out, const char *s, bool force_quotes);

#endif
