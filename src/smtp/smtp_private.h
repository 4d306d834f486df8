/* Internals of the SMTP server session shared by server.c (session core, input loop, replies),
 * cmds.c (the command table and its check/run functions, AUTH) and message.c (end of DATA/BDAT:
 * verdict, From: check, Received header, delivery). Only for src/smtp. */
#ifndef LIGHTR_SMTP_PRIVATE_H
#define LIGHTR_SMTP_PRIVATE_H

#include "auth/sasl.h"
#include "cmd_parser.h"
#include "data.h"
#include "reply.h"
#include "server.h"
#include "util/arena.h"

/* RFC 5321 §6.3: a message with more Received fields than this is taken for a loop. */
#define SMTP_HOPS_MAX 100

enum smtp_state {
	SMTP_STATE_GREETED,  /* greeting sent (or TLS just started): HELO/EHLO expected */
	SMTP_STATE_READY,    /* after HELO/EHLO, no transaction */
	SMTP_STATE_MAIL,     /* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT,     /* at least one recipient accepted */
	SMTP_STATE_CHUNKING, /* between BDAT chunks (RFC 3030) */
	SMTP_STATE_DATA,     /* reading DATA content up to <CRLF>.<CRLF> */
	SMTP_STATE_BDAT,     /* reading the octets of one BDAT chunk */
	SMTP_STATE_AUTH,     /* waiting for an AUTH continuation line */
	SMTP_STATE_TLS,      /* STARTTLS accepted: input discarded until the handshake */
	SMTP_STATE_DONE,     /* QUIT or 421 sent: input ignored */
};

#define ST(x)      (1u << SMTP_STATE_##x)
#define ST_BIT(st) (1u << (unsigned)(st))
/* States in which command lines are dispatched through the table. */
#define ST_COMMANDS (ST(GREETED) | ST(READY) | ST(MAIL) | ST(RCPT) | ST(CHUNKING))

/* One mail transaction (RFC 5321 §3.3): everything in the arena, dropped by smtp_tx_reset(). */
struct smtp_tx {
	struct arena *arena;
	char *mail_from; /* without <>; "" for the null sender */
	uint64_t size_hint;
	bool smtputf8, eightbit, requiretls;
	const char *ret; /* "FULL", "HDRS" or NULL */
	char *envid;
	struct smtp_rcpt *rcpts;
	size_t n_rcpts, cap_rcpts;
	bool bdat; /* a BDAT chunk was accepted: DATA is no longer allowed */
};

struct smtp_server {
	enum smtp_role role;
	struct smtp_limits lim;
	struct smtp_hooks hooks;
	struct smtp_conn_info info;
	char id[64];
	enum smtp_state state;
	bool esmtp;     /* EHLO (not HELO) was used */
	bool tls;       /* the connection is TLS now */
	bool wants_tls; /* STARTTLS accepted, handshake pending */
	bool done;
	char helo[SMTP_DOMAIN_MAX + 1]; /* "" before HELO/EHLO */
	char *auth_user;                /* heap; NULL until AUTH succeeded */
	char tls_version[32], tls_cipher[128];
	unsigned errors;        /* protocol errors so far */
	unsigned auth_failures; /* failed AUTH attempts so far */
	unsigned messages;      /* messages delivered */
	unsigned attempts;      /* messages ended (delivered or refused) */
	unsigned delay_ms;      /* for the driver, reset when read */
	struct smtp_cmd_parser *parser;
	struct buf out;
	struct smtp_tx tx;
	struct smtp_data data;
	/* BDAT chunk being read */
	uint64_t bdat_left, bdat_size;
	bool bdat_last;
	bool bdat_bad; /* no valid transaction: the chunk is read and dropped, then bdat_err sent */
	struct smtp_cmd_error bdat_err;
	enum smtp_state bdat_return;
	/* AUTH exchange */
	enum sasl_mech auth_mech;
	int auth_step; /* LOGIN: 0 user name, 1 password */
	struct sasl_creds creds;
};

/* server.c */
void smtp_enter(struct smtp_server *s, enum smtp_state to);
const char *smtp_state_name(enum smtp_state st);
/* Queues a reply (no error accounting). A 421 also ends the session. */
void smtp_out(struct smtp_server *s, int code, const char *enh, const char *text);
void smtp_outf(struct smtp_server *s, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Queues a refusal; protocol errors (500-504, 530, 538, 555) count towards max_errors, and the
 * one that reaches it adds "421 4.7.0 ... Too many errors" and ends the session. */
void smtp_reject(struct smtp_server *s, const struct smtp_cmd_error *e);
/* A hook-made reply, checked: code must be 400..599 (else fallback is used). */
void smtp_hook_reply(struct smtp_server *s, const struct smtp_hook_reply *r,
                     const struct smtp_cmd_error *fallback);
/* "smtp <id> <event> <fmt...>" through hooks->log at info. */
void smtp_log(struct smtp_server *s, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void smtp_tx_reset(struct smtp_server *s);
/* limits->hostname, or "localhost" when unset. */
const char *smtp_hostname(const struct smtp_server *s);
/* The state to return to after a transaction: READY after HELO/EHLO, else GREETED. */
enum smtp_state smtp_idle_state(const struct smtp_server *s);

/* cmds.c */
void smtp_dispatch(struct smtp_server *s, const struct smtp_cmd *cmd);
void smtp_auth_line(struct smtp_server *s, const struct smtp_cmd *cmd);
void smtp_auth_abort(struct smtp_server *s);

/* message.c */
/* The message content is complete (DATA end marker, or BDAT LAST read): refuse or deliver. */
void smtp_message_end(struct smtp_server *s);
/* One BDAT chunk was read completely. */
void smtp_bdat_end(struct smtp_server *s);

#endif
