/* Loading lightr.yaml: libyaml's document API parses the file into a node tree that keeps each
 * node's line, then this file walks the tree, builds dotted paths ("smtp.max_recipients"), finds
 * each one's row in params.c and converts the value (validate.c). The walk never stops at the
 * first problem: each one becomes a line "file:line: path: message" and the walk goes on, so
 * "lightr config check" shows everything at once (STYLE.md B.9). Also the process-wide current
 * config and where the file is found. */
#include "config/config_private.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "util/log.h"
#include "util/strconv.h"
#include "util/xalloc.h"

#define PATH_MAX_LEN 96 /* longest dotted path built; longer keys are unknown anyway */
#define MAX_SECTIONS 16

struct loader {
	const char *name; /* file name as given, prefixed to every message */
	struct buf *errs;
	int n_errs;
	struct config *c;
	yaml_document_t *doc;
	unsigned *lines; /* per row of config_params: line where set, 0 = not in the file */
	struct {
		char name[PATH_MAX_LEN + 4];
		unsigned line;
	} sections[MAX_SECTIONS]; /* sections seen, to report a repeated "smtp:" */
	int n_sections;
};

static void load_error(struct loader *ld, unsigned line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends "name:line: path: message\n" (line 0 and path NULL are left out). */
static void
load_error(struct loader *ld, unsigned line, const char *path, const char *fmt, ...)
{
	char msg[256], epath[128];
	va_list ap;
	if (ld->n_errs++ >= CONFIG_MAX_ERRORS) {
		if (ld->n_errs == CONFIG_MAX_ERRORS + 1 && ld->errs != NULL)
			buf_printf(ld->errs, "%s: too many errors, giving up\n", ld->name);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (ld->errs == NULL)
		return;
	buf_append_str(ld->errs, ld->name);
	if (line > 0)
		buf_printf(ld->errs, ":%u", line);
	if (path != NULL)
		buf_printf(ld->errs, ": %s", log_escape(path, epath, sizeof epath));
	buf_printf(ld->errs, ": %s\n", msg);
}

static unsigned
node_line(const yaml_node_t *n)
{
	return (unsigned)n->start_mark.line + 1;
}

/* A plain "", "~" or "null": YAML's way to write "no value". */
static bool
node_is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	struct slice s = slice_make(n->data.scalar.value, n->data.scalar.length);
	return s.len == 0 || slice_eq(s, "~") || slice_eq(s, "null") || slice_eq(s, "Null") ||
	       slice_eq(s, "NULL");
}

static const char *
scalar_str(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static const char *
expected_msg(const struct param *p)
{
	switch (p->type) {
	case PARAM_UINT:
		return "expected a number";
	case PARAM_SIZE:
		return "expected a size like 25MiB";
	case PARAM_DURATION:
		return "expected a duration like 5m";
	case PARAM_BOOL:
		return "expected true or false";
	case PARAM_LISTENERS:
		return "expected a list";
	default:
		return "expected a string";
	}
}

static void
load_scalar(struct loader *ld, const struct param *p, const yaml_node_t *v)
{
	char msg[200];
	if (v->type != YAML_SCALAR_NODE) {
		load_error(ld, node_line(v), p->path, "%s", expected_msg(p));
	} else if (node_is_null(v)) {
		if (p->flags & PARAM_NULLABLE)
			x_free(config_field(ld->c, p));
		else
			load_error(ld, node_line(v), p->path, "missing value");
	} else if (config_set_scalar(ld->c, p, scalar_str(v), v->data.scalar.length, msg,
	                             sizeof msg) != NULL) {
		load_error(ld, node_line(v), p->path, "%s", msg);
	}
}

/* Fills *l from one {role, address, tls} mapping; returns false after reporting problems. */
static bool
load_listener(struct loader *ld, size_t i, const yaml_node_t *m, struct config_listener *l,
              struct config_addr *addrs)
{
	char path[64];
	int errs0 = ld->n_errs;
	int role = -1, tls = -1;
	unsigned role_line = 0, addr_line = 0, tls_line = 0;
	const char *address = NULL;

	snprintf(path, sizeof path, "listeners[%zu]", i);
	if (m->type != YAML_MAPPING_NODE) {
		load_error(ld, node_line(m), path,
		           "expected a mapping like {role: mx, address: \":25\"}");
		return false;
	}
	for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(ld->doc, pr->value);
		char kpath[64 + PATH_MAX_LEN];
		unsigned *seen = NULL;
		if (k->type != YAML_SCALAR_NODE) {
			load_error(ld, node_line(k), path, "a key must be a string");
			continue;
		}
		snprintf(kpath, sizeof kpath, "%s.%.*s", path,
		         (int)(k->data.scalar.length < PATH_MAX_LEN ? k->data.scalar.length
		                                                    : PATH_MAX_LEN),
		         scalar_str(k));
		if (slice_eq(slice_make(scalar_str(k), k->data.scalar.length), "role"))
			seen = &role_line;
		else if (slice_eq(slice_make(scalar_str(k), k->data.scalar.length), "address"))
			seen = &addr_line;
		else if (slice_eq(slice_make(scalar_str(k), k->data.scalar.length), "tls"))
			seen = &tls_line;
		if (seen == NULL) {
			load_error(ld, node_line(k), kpath, "unknown key");
			continue;
		}
		if (*seen != 0) {
			load_error(ld, node_line(k), kpath, "duplicate key (first at line %u)",
			           *seen);
			continue;
		}
		*seen = node_line(v);
		bool scalar = v->type == YAML_SCALAR_NODE && !node_is_null(v) &&
		              strlen(scalar_str(v)) == v->data.scalar.length;
		if (seen == &role_line) {
			role = scalar ? config_role_parse(scalar_str(v)) : -1;
			if (role < 0)
				load_error(ld, *seen, kpath,
				           "must be one of mx, submission, "
				           "submissions, imap, imaps, http");
		} else if (seen == &addr_line) {
			const char *why = scalar ? config_check_address(scalar_str(v), &addrs[i])
			                         : "expected host:port, like 127.0.0.1:25 or :25";
			if (why != NULL) {
				load_error(ld, *seen, kpath, "%s", why);
				continue;
			}
			address = scalar_str(v);
			for (size_t j = 0; j < i; j++) {
				if (addrs[j].port != 0 &&
				    config_addr_conflict(&addrs[i], &addrs[j])) {
					load_error(ld, *seen, kpath,
					           "%s: same address as listeners[%zu]", address,
					           j);
					break;
				}
			}
		} else if (!scalar || strconv_bool(slice_from(scalar_str(v)), &tls) < 0) {
			load_error(ld, *seen, kpath, "expected true or false");
			tls = -1;
		}
	}
	if (role_line == 0)
		load_error(ld, node_line(m), path, "missing role");
	if (addr_line == 0)
		load_error(ld, node_line(m), path, "missing address");
	if (role >= 0 && tls >= 0) {
		bool implicit = role == LISTENER_SUBMISSIONS || role == LISTENER_IMAPS;
		snprintf(path, sizeof path, "listeners[%zu].tls", i);
		if (implicit && !tls)
			load_error(ld, tls_line, path, "%s always uses implicit TLS",
			           config_role_name(role));
		else if (!implicit && role != LISTENER_HTTP && tls)
			load_error(ld, tls_line, path,
			           "only http listeners take tls: true (%s uses STARTTLS)",
			           config_role_name(role));
	}
	if (ld->n_errs != errs0 || address == NULL || role < 0)
		return false;
	l->role = (enum listener_role)role;
	l->address = xstrdup(address);
	l->tls = role == LISTENER_SUBMISSIONS || role == LISTENER_IMAPS ||
	         (role == LISTENER_HTTP && tls == 1);
	return true;
}

static void
load_listeners(struct loader *ld, const struct param *p, const yaml_node_t *v)
{
	if (node_is_null(v) || (v->type == YAML_SEQUENCE_NODE &&
	                        v->data.sequence.items.top == v->data.sequence.items.start)) {
		load_error(ld, node_line(v), p->path, "must list at least one listener");
		return;
	}
	if (v->type != YAML_SEQUENCE_NODE) {
		load_error(ld, node_line(v), p->path, "expected a list");
		return;
	}
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (n > CONFIG_MAX_LISTENERS) {
		load_error(ld, node_line(v), p->path, "more than %d listeners",
		           CONFIG_MAX_LISTENERS);
		return;
	}
	struct config_listener *ls = xcalloc(n, sizeof *ls);
	struct config_addr *addrs = xcalloc(n, sizeof *addrs);
	size_t ok = 0;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *m = yaml_document_get_node(ld->doc, v->data.sequence.items.start[i]);
		if (load_listener(ld, i, m, &ls[ok], addrs))
			ok++;
	}
	free(addrs);
	config_free_listeners(ld->c);
	ld->c->listeners = ls;
	ld->c->n_listeners = ok;
}

static void load_mapping(struct loader *ld, const yaml_node_t *m, const char *prefix);

/* One key of a mapping at the top level (prefix "") or inside a section. */
static void
load_key(struct loader *ld, const char *prefix, const yaml_node_t *k, const yaml_node_t *v)
{
	char path[PATH_MAX_LEN + 4];
	size_t klen = k->data.scalar.length, plen = strlen(prefix);
	/* Dotted keys ("smtp.timeout: 5m" at the top) are not a second spelling: sections nest. */
	bool known = klen < PATH_MAX_LEN && memchr(scalar_str(k), '\0', klen) == NULL &&
	             memchr(scalar_str(k), '.', klen) == NULL;
	snprintf(path, sizeof path, "%s%s%.*s%s", prefix, plen ? "." : "",
	         (int)(klen < PATH_MAX_LEN ? klen : PATH_MAX_LEN), scalar_str(k),
	         klen < PATH_MAX_LEN ? "" : "...");
	const struct param *p = known ? config_param_find(slice_from(path)) : NULL;
	if (p != NULL) {
		unsigned *seen = &ld->lines[p - config_params];
		if (*seen != 0) {
			load_error(ld, node_line(k), path, "duplicate key (first at line %u)",
			           *seen);
			return;
		}
		*seen = node_line(k);
		if (p->type == PARAM_LISTENERS)
			load_listeners(ld, p, v);
		else
			load_scalar(ld, p, v);
		return;
	}
	/* sections nest ("limits: {account: {...}}") */
	if (!known || !config_is_section(slice_from(path))) {
		load_error(ld, node_line(k), path, "unknown key");
		return;
	}
	for (int i = 0; i < ld->n_sections; i++) {
		if (strcmp(ld->sections[i].name, path) == 0) {
			load_error(ld, node_line(k), path, "duplicate key (first at line %u)",
			           ld->sections[i].line);
			return;
		}
	}
	if (ld->n_sections < MAX_SECTIONS) {
		snprintf(ld->sections[ld->n_sections].name, sizeof ld->sections[0].name, "%s",
		         path);
		ld->sections[ld->n_sections++].line = node_line(k);
	}
	if (node_is_null(v))
		return; /* "smtp:" with every key commented out */
	if (v->type != YAML_MAPPING_NODE) {
		load_error(ld, node_line(v), path, "expected a mapping");
		return;
	}
	load_mapping(ld, v, path);
}

static void
load_mapping(struct loader *ld, const yaml_node_t *m, const char *prefix)
{
	for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(ld->doc, pr->value);
		if (k->type != YAML_SCALAR_NODE)
			load_error(ld, node_line(k), *prefix ? prefix : NULL,
			           "a key must be a string");
		else
			load_key(ld, prefix, k, v);
	}
}

static void
syntax_error(struct loader *ld, const yaml_parser_t *yp)
{
	const char *problem = yp->problem ? yp->problem : "cannot parse";
	unsigned line = (unsigned)yp->problem_mark.line + 1;
	if (yp->error == YAML_MEMORY_ERROR)
		load_error(ld, 0, NULL, "out of memory while parsing");
	else if (yp->context != NULL)
		load_error(ld, line, NULL, "syntax error: %s (%s)", problem, yp->context);
	else
		load_error(ld, line, NULL, "syntax error: %s", problem);
}

/* Streams the events once before the tree is built, to refuse what makes libyaml slow: its
 * scanner checks every open flow level for each token and its loader finds aliases by a linear
 * search, so deep nesting and many anchors cost quadratic time (minutes for 1 MiB of "[").
 * Also refuses a second document, which would otherwise be ignored. False after reporting. */
static bool
prescan(struct loader *ld, const void *data, size_t len)
{
	yaml_parser_t yp;
	yaml_event_t ev;
	int depth = 0, anchors = 0, docs = 0;
	bool ok = true, done = false;
	if (!yaml_parser_initialize(&yp))
		log_panic("config: yaml_parser_initialize failed");
	yaml_parser_set_input_string(&yp, data, len);
	while (ok && !done) {
		if (!yaml_parser_parse(&yp, &ev)) {
			syntax_error(ld, &yp);
			ok = false;
			break;
		}
		unsigned line = (unsigned)ev.start_mark.line + 1;
		const yaml_char_t *anchor = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				load_error(ld, line, NULL, "only one YAML document is allowed");
				ok = false;
			}
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			anchor = ev.type == YAML_SEQUENCE_START_EVENT
			             ? ev.data.sequence_start.anchor
			             : ev.data.mapping_start.anchor;
			if (++depth > CONFIG_MAX_DEPTH) {
				load_error(ld, line, NULL, "nested deeper than %d levels",
				           CONFIG_MAX_DEPTH);
				ok = false;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_SCALAR_EVENT:
			anchor = ev.data.scalar.anchor;
			break;
		default:
			break;
		}
		if (anchor != NULL && ++anchors > CONFIG_MAX_ANCHORS) {
			load_error(ld, line, NULL, "more than %d anchors", CONFIG_MAX_ANCHORS);
			ok = false;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&yp);
	return ok;
}

/* "small" must not be above "big" (two SIZE rows); reported on the row the file set, the small
 * one when both or neither were. */
static void
check_not_above(struct loader *ld, const char *small, const char *big)
{
	const struct param *ps = config_param_find(slice_from(small));
	const struct param *pb = config_param_find(slice_from(big));
	uint64_t vs = *(const uint64_t *)config_cfield(ld->c, ps);
	uint64_t vb = *(const uint64_t *)config_cfield(ld->c, pb);
	if (vs <= vb)
		return;
	char a[32], b[32];
	config_format_size(vs, a, sizeof a);
	config_format_size(vb, b, sizeof b);
	unsigned ls = ld->lines[ps - config_params], lb = ld->lines[pb - config_params];
	if (ls == 0 && lb != 0)
		load_error(ld, lb, big, "%s is below %s (%s)", b, small, a);
	else
		load_error(ld, ls, small, "%s is above %s (%s)", a, big, b);
}

/* Cross-field rules that no single row can check. */
static void
check_config(struct loader *ld)
{
	check_not_above(ld, "imap.preauth_max_line", "imap.max_line");
	check_not_above(ld, "imap.preauth_max_literal", "imap.max_literal");
	check_not_above(ld, "imap.max_line", "imap.max_command");
	check_not_above(ld, "imap.max_literal", "imap.max_command");
	const struct param *cert = config_param_find(slice_from("tls.cert"));
	const struct param *key = config_param_find(slice_from("tls.key"));
	struct config *c = ld->c;
	if ((c->tls.cert == NULL) != (c->tls.key == NULL)) {
		const struct param *set = c->tls.cert ? cert : key;
		load_error(ld, ld->lines[set - config_params], set->path,
		           "tls.cert and tls.key must be given together");
	}
}

/* Like config_load(), on bytes already in memory; name is used in messages and as c->path.
 * The fuzz target enters here. */
struct config *
config_load_buffer(const char *name, const void *data, size_t len, struct buf *errs)
{
	struct loader ld = {.name = name, .errs = errs};
	yaml_parser_t yp;
	yaml_document_t doc;

	if (len > CONFIG_MAX_FILE) {
		load_error(&ld, 0, NULL, "file is larger than %d KiB", CONFIG_MAX_FILE / 1024);
		return NULL;
	}
	ld.c = config_new_defaults();
	ld.c->path = xstrdup(name);
	ld.lines = xcalloc(config_n_params, sizeof *ld.lines);
	ld.doc = &doc;
	if (prescan(&ld, data, len)) {
		if (!yaml_parser_initialize(&yp))
			log_panic("config: yaml_parser_initialize failed");
		yaml_parser_set_input_string(&yp, data, len);
		if (!yaml_parser_load(&yp, &doc)) {
			syntax_error(&ld, &yp);
		} else {
			yaml_node_t *root = yaml_document_get_root_node(&doc);
			if (root == NULL || node_is_null(root))
				; /* empty file: built-in defaults */
			else if (root->type != YAML_MAPPING_NODE)
				load_error(&ld, node_line(root), NULL,
				           "expected a mapping of keys");
			else
				load_mapping(&ld, root, "");
			yaml_document_delete(&doc);
			if (ld.n_errs == 0)
				check_config(&ld);
		}
		yaml_parser_delete(&yp);
	}
	free(ld.lines);
	if (ld.n_errs > 0) {
		config_free(ld.c);
		return NULL;
	}
	return ld.c;
}

struct config *
config_load(const char *path, struct buf *errs)
{
	struct loader ld = {.name = path, .errs = errs};
	if (path == NULL)
		return config_new_defaults();
	char ebuf[128];
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		load_error(&ld, 0, NULL, "cannot open: %s", strerror_r(errno, ebuf, sizeof ebuf));
		return NULL;
	}
	char *data = xmalloc(CONFIG_MAX_FILE + 1);
	size_t len = fread(data, 1, CONFIG_MAX_FILE + 1, f);
	int rerr = ferror(f) ? errno : 0;
	fclose(f);
	struct config *c = NULL;
	if (rerr != 0)
		load_error(&ld, 0, NULL, "cannot read: %s", strerror_r(rerr, ebuf, sizeof ebuf));
	else
		c = config_load_buffer(path, data, len, errs);
	free(data);
	return c;
}

const char *
config_find_path(const char *cli_path)
{
	if (cli_path != NULL)
		return cli_path;
	const char *env = getenv("LIGHTR_CONFIG");
	if (env != NULL && *env != '\0')
		return env;
	if (access("lightr.yaml", F_OK) == 0)
		return "lightr.yaml";
	return NULL;
}

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct config *current; /* guarded by current_lock */

struct config *
config_current(void)
{
	pthread_mutex_lock(&current_lock);
	struct config *c = config_ref(current);
	pthread_mutex_unlock(&current_lock);
	return c;
}

void
config_set_current(struct config *c)
{
	pthread_mutex_lock(&current_lock);
	struct config *old = current;
	current = c;
	pthread_mutex_unlock(&current_lock);
	config_unref(&old);
}
