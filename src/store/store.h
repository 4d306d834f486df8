/* Storage (DESIGN.md §2): SQLite in WAL mode with synchronous=FULL, numbered migrations at open,
 * one writer thread that commits many write requests in one transaction (group commit), and a
 * read connection per calling thread. This API does not leak SQLite types, so another backend
 * can implement it later.
 *
 * Thread safety: a struct store may be shared by all threads. Reads use a connection private to
 * the calling thread (opened on first use, closed by store_close or store_thread_done). Writes
 * are handed to the writer thread; a write function returns only after the transaction that
 * contains it committed, so a 0 return means the change is durable.
 *
 * Errors: functions return 0 or -1 and fill err; err->code is an enum store_errcode. Strings in
 * returned structs are heap-owned by the struct; free them with the matching *_free function. */
#ifndef LIGHTR_STORE_H
#define LIGHTR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

enum store_errcode {
	STORE_EINTERNAL = 1, /* SQLite or I/O failure; err->msg says which */
	STORE_ENOTFOUND,     /* the named domain, account, alias or blob does not exist */
	STORE_EEXIST,        /* already exists (domain, account, or an alias with that address) */
	STORE_EBUSY,         /* domain still has accounts or aliases and force was not given */
	STORE_EINVAL,        /* argument rejected (e.g. account in a domain we do not serve) */
	STORE_EOVERQUOTA,    /* the account's quota does not allow the new bytes */
	STORE_EHASCHILDREN,  /* mailbox delete refused: it has inferiors */
};

struct store;

/* Opens (creating when missing) the database file at path, applies pending migrations, each in
 * its own transaction, and starts the writer thread. */
int store_open(const char *path, struct store **st_r, struct err *err);
/* Stops the writer after it committed everything queued, closes all connections; accepts NULL and
 * sets *stp = NULL. No other thread may use the store during or after this call. */
void store_close(struct store **stp);
/* Closes the calling thread's read connection (call before a worker thread exits, or before it
 * sits idle for long, e.g. IMAP IDLE: the next read opens a new one). */
void store_thread_done(struct store *st);
/* Highest applied migration number. */
int store_schema_version(struct store *st);

/* ---- generic write path (for later modules: messages, queue, events) ---- */
struct store_tx; /* valid only inside a store_write_fn call */
typedef int store_write_fn(struct store_tx *tx, void *arg, struct err *err);
/* Runs fn on the writer thread inside the current group transaction, under its own SAVEPOINT: when
 * fn returns -1 only its own changes are rolled back. Blocks until the group committed. Returns
 * fn's result, or -1 (STORE_EINTERNAL) when the commit itself failed. */
int store_write(struct store *st, store_write_fn *fn, void *arg, struct err *err);
/* Number of group transactions committed since open (for tests of group commit). */
uint64_t store_commit_count(struct store *st);

/* ---- domains ---- names are compared without regard to ASCII case and stored lower-case */
struct store_domain {
	int64_t id;
	char *name;
	int64_t created; /* unix seconds */
	int64_t n_accounts, n_aliases;
};
int store_domain_add(struct store *st, const char *name, struct err *err);
int store_domain_get(struct store *st, const char *name, struct store_domain *d_r, struct err *err);
/* All domains ordered by name. */
int store_domain_list(struct store *st, struct store_domain **v_r, size_t *n_r, struct err *err);
/* EBUSY when the domain has accounts or aliases and !force; with force they go too (with their
 * mailboxes and messages). */
int store_domain_remove(struct store *st, const char *name, bool force, struct err *err);
void store_domain_deinit(struct store_domain *d);
void store_domain_list_free(struct store_domain **vp, size_t n);

/* ---- accounts ---- address is "local@domain"; the domain must exist (EINVAL otherwise) */
struct store_account {
	int64_t id;
	char *address;
	char *domain;
	char *password_hash; /* argon2id encoded string (crypt format) */
	uint64_t quota;      /* bytes; 0 = unlimited */
	uint64_t used;       /* bytes stored in its mailboxes */
	bool disabled;
	bool domain_admin; /* may send as any address of its domain */
	int64_t created;
};
/* Creates the account and its mailboxes INBOX, Sent (\Sent), Drafts (\Drafts), Trash (\Trash),
 * Junk (\Junk), Archive (\Archive), all subscribed, each with a fresh UIDVALIDITY. EEXIST when
 * an account or alias with that address exists. */
int store_account_add(struct store *st, const char *address, const char *password_hash,
                      uint64_t quota, struct err *err);
int store_account_get(struct store *st, const char *address, struct store_account *a_r,
                      struct err *err);
/* domain NULL: all accounts; ordered by address. */
int store_account_list(struct store *st, const char *domain, struct store_account **v_r,
                       size_t *n_r, struct err *err);
int store_account_set_password(struct store *st, const char *address, const char *password_hash,
                               struct err *err);
int store_account_set_disabled(struct store *st, const char *address, bool disabled,
                               struct err *err);
int store_account_set_quota(struct store *st, const char *address, uint64_t quota, struct err *err);
/* Removes the account with its mailboxes and messages (blobs no longer referenced go too). */
int store_account_remove(struct store *st, const char *address, struct err *err);
void store_account_deinit(struct store_account *a);
void store_account_list_free(struct store_account **vp, size_t n);

/* ---- aliases ---- address is "local@domain" or "@domain" (catch-all); its domain must exist.
 * An alias maps to one or more targets (any syntactically valid addresses, local or remote). */
struct store_alias {
	int64_t id;
	char *address;
	char **targets;
	size_t n_targets;
};
/* Adds targets to the alias, creating it when new; targets already present are kept once.
 * EEXIST when an account has that address. */
int store_alias_add(struct store *st, const char *address, const char *const *targets,
                    size_t n_targets, struct err *err);
/* domain NULL: all aliases; ordered by address. */
int store_alias_list(struct store *st, const char *domain, struct store_alias **v_r, size_t *n_r,
                     struct err *err);
/* target NULL: the whole alias; else only that target (the alias goes when none is left). */
int store_alias_remove(struct store *st, const char *address, const char *target, struct err *err);
void store_alias_list_free(struct store_alias **vp, size_t n);

/* ---- mailboxes ---- */
struct store_mailbox {
	int64_t id;
	char *name;
	char *special_use; /* "\\Sent" etc., NULL for none */
	bool subscribed;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint64_t n_messages;
};
/* The account's mailboxes ordered by name, INBOX first. */
int store_mailbox_list(struct store *st, const char *address, struct store_mailbox **v_r,
                       size_t *n_r, struct err *err);
void store_mailbox_list_free(struct store_mailbox **vp, size_t n);

/* ---- blobs ---- message bodies stored once per distinct SHA-256 */
/* Stores data unless a blob with the same SHA-256 exists; writes the lower-case hex digest into
 * sha_hex_r (65 bytes). Durable on return. */
int store_blob_put(struct store *st, const void *data, size_t len, char sha_hex_r[65],
                   struct err *err);
/* Appends the blob's bytes to out; ENOTFOUND when absent. */
int store_blob_get(struct store *st, const char *sha_hex, struct buf *out, struct err *err);

/* ---- recipients (SMTP RCPT, DESIGN.md §7) ----
 * Resolution of one address, in this order: our domain? (no: STORE_RCPT_REMOTE); an account with
 * that address; an alias with that address; with sub-addressing (sep != '\0') "local+tag@d" is
 * tried as "local@d" for both; then the catch-all "@domain". Local parts and domains compare
 * without regard to ASCII case. Alias targets are expanded recursively (depth 8, at most
 * STORE_RCPT_MAX_TARGETS results, loops ignored); a target in a domain we do not serve becomes a
 * remote result (forwarding). */
#define STORE_RCPT_MAX_TARGETS 100
enum store_rcpt_status {
	STORE_RCPT_OK,
	STORE_RCPT_REMOTE,    /* the domain is not ours */
	STORE_RCPT_UNKNOWN,   /* our domain, no such account/alias/catch-all (550 5.1.1) */
	STORE_RCPT_DISABLED,  /* an account it resolves to is disabled (550 5.2.1) */
	STORE_RCPT_OVER_QUOTA /* an account it resolves to is over quota (452 4.2.2) */
};
struct store_rcpt_target {
	char *address; /* account address as stored (local result) or the remote address */
	bool remote;
};
struct store_rcpt {
	enum store_rcpt_status status;
	/* OK, and also DISABLED/OVER_QUOTA (the whole expansion, so a caller may still deliver
	 * past a soft quota): one or more; REMOTE/UNKNOWN: none. Heap-owned. */
	struct store_rcpt_target *targets;
	size_t n_targets;
	char *problem; /* for DISABLED/OVER_QUOTA: the account concerned */
};
/* size_hint: expected message size (0 unknown); an account is over quota when quota != 0 and
 * used + size_hint >= quota. An alias target in our domain that resolves to nothing is dropped
 * (and logged); an address whose expansion is empty is UNKNOWN. */
int store_rcpt_resolve(struct store *st, const char *address, char sep, uint64_t size_hint,
                       struct store_rcpt *r_r, struct err *err);
void store_rcpt_deinit(struct store_rcpt *r);
/* May account send as addr? True for the account's own address (and its +tag forms with sep),
 * for an alias that has the account among its direct targets, and, when the account is a domain
 * admin, for any address in the account's domain. Comparison ignores ASCII case. */
int store_sender_allowed(struct store *st, const char *account, const char *addr, char sep,
                         bool *ok_r, struct err *err);
int store_account_set_domain_admin(struct store *st, const char *address, bool admin,
                                   struct err *err);

/* ---- delivery (DESIGN.md §2, §7) ----
 * One durable transaction: the body stored once (blob by SHA-256), a message row in the INBOX of
 * every local account (next UID, new MODSEQ, UIDNEXT and HIGHESTMODSEQ advanced, used bytes
 * counted), and for remote recipients one outbound queue message with its recipients. */
struct store_local_rcpt {
	const char *account; /* account address (store_rcpt_target.address) */
	const char *header;  /* per-recipient header text prepended to the body (Return-Path,
	                      * Delivered-To, Received), CRLF-terminated lines */
	size_t header_len;
	const char *mailbox; /* NULL: INBOX; else that mailbox of the account (e.g. "Junk") */
};
struct store_remote_rcpt {
	const char *address;
	const char *notify; /* DSN NOTIFY or NULL */
	const char *orcpt;  /* DSN ORCPT or NULL */
};
struct store_delivery {
	const unsigned char *body; /* exactly the received bytes */
	size_t body_len;
	int64_t internal_date; /* unix seconds */
	const struct store_local_rcpt *local;
	size_t n_local;
	/* outbound queue part (n_remote may be 0) */
	const char *mail_from;   /* "" null sender */
	const char *auth_user;   /* account that submitted it, or NULL */
	const char *ret, *envid; /* DSN; may be NULL */
	bool requiretls, smtputf8, eightbit;
	const char *queue_header; /* header text prepended for the outbound copy (Received) */
	size_t queue_header_len;
	const struct store_remote_rcpt *remote;
	size_t n_remote;
	/* IMAP metadata of body (mail/mime.h mime_meta_build), stored in every local message row;
	 * each may be NULL (IMAP then computes it when asked). */
	const char *meta_envelope, *meta_body, *meta_bodystructure;
	const void *meta_parts; /* part table bytes */
	size_t meta_parts_len;
	/* Outbound envelope of the queue message, stored in the same transaction so that the
	 * scheduler never sees the message without them: the VERP return path used when relaying
	 * ("bounce+<token>@domain"), its token (unique), and who gets DSNs. Each may be NULL. */
	const char *return_path, *bounce_token, *dsn_to;
	/* A REST API send: recorded (with its events and idempotency key) in the same transaction;
	 * NULL otherwise. EEXIST when its idempotency key is already stored for that API key.
	 * With api, a delivery may have no recipient at all (every one was suppressed): only the
	 * record and its message.suppressed events are stored. */
	const struct store_api_send *api;
	/* Inbound mail (issue 7): each local copy gets a message.received event in the
	 * account's domain with this JSON detail and public id; NULL: message.delivered. */
	const char *received_detail, *received_id;
	/* Rate limits (issue 8): daily usage counters to add in the same transaction. */
	const struct store_limit_inc *limit_incs;
	size_t n_limit_incs;
};
/* Durable on 0; *queue_id_r (may be NULL) gets the queue message id, or 0 when n_remote == 0.
 * ENOTFOUND when an account vanished meanwhile (nothing is stored then). EINVAL without any
 * recipient, or for a body above the backend's limit (SQLite: 10^9 bytes). */
int store_deliver(struct store *st, const struct store_delivery *d, int64_t *queue_id_r,
                  struct err *err);

/* One stored message, for tests, the CLI and later IMAP: header_text followed by the body is the
 * message as the client sees it. */
struct store_message {
	int64_t id;
	uint32_t uid;
	uint64_t modseq;
	int64_t internal_date;
	uint64_t size;
	char blob_sha256[65];
	struct buf header_text;
};
/* Messages of a mailbox of account, by UID. */
int store_message_list(struct store *st, const char *account, const char *mailbox,
                       struct store_message **v_r, size_t *n_r, struct err *err);
void store_message_list_free(struct store_message **vp, size_t n);

/* Outbound queue rows (the outbound issue adds scheduling); for tests and "queue list". */
struct store_queue_rcpt {
	int64_t msg_id;
	char *mail_from, *rcpt, *notify, *orcpt, *ret, *envid, *auth_user, *status;
	bool requiretls;
};
int store_queue_list(struct store *st, struct store_queue_rcpt **v_r, size_t *n_r, struct err *err);
void store_queue_list_free(struct store_queue_rcpt **vp, size_t n);

/* ---- outbound queue (scheduling) ----
 * What queue/sched.c and the CLI need (queue.c). A recipient row moves through the states
 *   queued/deferred (due at next_attempt) -> delivering (claimed by a worker) ->
 *   delivered | deferred | bounced | expired,
 * and 'held' (never due until released). A claim marks rows 'delivering' in one committed write,
 * and the worker's results are committed in one write right after the remote reply, so a crash
 * in between leaves 'delivering' rows that store_queue_recover puts back to 'queued' (at most
 * that one attempt is repeated; never a recipient whose 250 was recorded). The CLI runs in
 * another process: the server's scheduler re-queries due rows every second anyway, and
 * store_queue_change_seq moves after every queue write made by this process. */
struct store_queue_msg {
	int64_t id;
	int64_t created;    /* unix seconds of acceptance */
	char *mail_from;    /* "" = null sender */
	char *return_path;  /* VERP envelope sender to use when relaying; NULL = mail_from */
	char *bounce_token; /* token of return_path, NULL when none */
	char *dsn_to;       /* who gets DSNs; NULL = nobody (API mail, null sender) */
	char *auth_user;    /* NULL when relayed */
	char *ret, *envid;  /* DSN RET / ENVID, NULL when absent */
	bool requiretls, smtputf8, eightbit;
	uint64_t size;       /* header_text + body */
	uint64_t header_len; /* bytes of header_text before the body blob */
	char blob_sha256[65];
	struct buf header_text; /* prepended to the body (Received, DKIM-Signature) */
};
struct store_queue_item { /* one recipient row */
	int64_t id;
	int64_t msg_id;
	char *rcpt, *domain;
	char *notify, *orcpt; /* DSN, NULL when absent */
	char *status;         /* "queued", "deferred", "delivering", "held", "delivered", ... */
	uint32_t attempts;
	int64_t next_attempt, last_attempt, delivered_at, created; /* 0 when NULL */
	char *last_error, *last_dsn, *relay;                       /* NULL when none */
	bool delay_notified, dsn_done;
};
/* A claimed unit of work: one message, one destination domain, its claimed recipients. */
struct store_queue_job {
	struct store_queue_msg msg;
	char *domain;
	struct store_queue_item *rcpts;
	size_t n_rcpts;
};
void store_queue_msg_deinit(struct store_queue_msg *m);
void store_queue_item_deinit(struct store_queue_item *q);
void store_queue_items_free(struct store_queue_item **vp, size_t n);
void store_queue_job_deinit(struct store_queue_job *j);

/* Sets return_path, bounce_token (unique when not NULL; EEXIST) and dsn_to of message id; each
 * NULL argument leaves the column alone. ENOTFOUND. */
int store_queue_set_envelope(struct store *st, int64_t id, const char *return_path,
                             const char *bounce_token, const char *dsn_to, struct err *err);
/* The message whose bounce_token is token (a DSN coming back); ENOTFOUND. */
int store_queue_by_token(struct store *st, const char *token, struct store_queue_msg *m_r,
                         struct err *err);

/* Start-up recovery: every 'delivering' row goes back to 'queued' (due now). Call once when the
 * server starts, before the scheduler claims (the CLI must never call it). *n_r (may be NULL)
 * gets the number of rows reset. */
int store_queue_recover(struct store *st, int64_t now, size_t *n_r, struct err *err);

/* A due (message, domain) pair: it has rows 'queued' or 'deferred' with next_attempt <= now. */
struct store_queue_due {
	int64_t msg_id;
	char domain[254];
	int64_t next_attempt; /* earliest of its due rows */
};
/* Up to max due pairs, oldest next_attempt first (read only; claim them with
 * store_queue_claim). */
int store_queue_due_list(struct store *st, int64_t now, size_t max, struct store_queue_due **v_r,
                         size_t *n_r, struct err *err);
/* The earliest next_attempt of any 'queued'/'deferred' row (0 and no error when none). */
int store_queue_next_due(struct store *st, int64_t *next_r, struct err *err);
/* Atomically (one write) marks every due row of (msg_id, domain) 'delivering' and returns them
 * with the message in *job_r (free with store_queue_job_deinit). Returns 1 when rows were
 * claimed, 0 when none was due any more (job_r untouched), -1 + err. */
int store_queue_claim(struct store *st, int64_t msg_id, const char *domain, int64_t now,
                      struct store_queue_job *job_r, struct err *err);
/* store_queue_claim for each of due[0..n) in one write (one commit, for a connection that
 * takes several messages in a row): jobs_r (n entries) gets the claimed jobs, compacted, in
 * due order; *n_r how many (0 is no error). */
int store_queue_claim_many(struct store *st, const struct store_queue_due *due, size_t n,
                           int64_t now, struct store_queue_job *jobs_r, size_t *n_r,
                           struct err *err);

/* Reads bytes [off, off + len) of queue message id (header_text followed by the body blob,
 * clipped at its size) into out, incrementally like store_imap_read. ENOTFOUND. */
int store_queue_read(struct store *st, int64_t id, uint64_t off, uint64_t len, struct buf *out,
                     struct err *err);

enum store_queue_outcome {
	STORE_QUEUE_DELIVERED,
	STORE_QUEUE_DEFERRED, /* due again at next_attempt */
	STORE_QUEUE_BOUNCED,  /* permanent failure */
	STORE_QUEUE_EXPIRED,  /* gave up after max_age */
};
struct store_queue_result {
	int64_t rcpt_id; /* store_queue_item.id */
	enum store_queue_outcome outcome;
	int64_t next_attempt;    /* DEFERRED only */
	const char *error;       /* remote reply or local reason; NULL = none */
	const char *dsn;         /* enhanced status code, e.g. "5.1.1"; NULL = none */
	const char *relay;       /* host[ip]:port tried; NULL = none */
	bool count_attempt;      /* attempts + 1 (false e.g. when a destination backoff deferred
	                          * the row without trying) */
	bool set_delay_notified; /* also mark delay_notified */
};
/* Records all results in one write: status, last_attempt = now, last_error, last_dsn, relay,
 * attempts + 1 when count_attempt, delivered_at for DELIVERED. Rows no longer 'delivering'
 * (dropped, held meanwhile) are skipped silently. */
int store_queue_record(struct store *st, const struct store_queue_result *r, size_t n, int64_t now,
                       struct err *err);
/* Marks dsn_done = 1 on the given recipient rows (after a DSN for them was queued). */
int store_queue_dsn_done(struct store *st, const int64_t *rcpt_ids, size_t n, struct err *err);

/* ---- queue commands (CLI) ----
 * state NULL = all; else one status name ("queued", "deferred", "held", ...). domain NULL = all.
 * Rows ordered by message id, then row id. */
int store_queue_items(struct store *st, const char *state, const char *domain,
                      struct store_queue_item **v_r, size_t *n_r, struct err *err);
/* Message id with all its recipient rows. ENOTFOUND. */
int store_queue_show(struct store *st, int64_t id, struct store_queue_msg *m_r,
                     struct store_queue_item **v_r, size_t *n_r, struct err *err);
/* id > 0: that message; id == 0: all messages. retry: 'queued'/'deferred' rows get
 * next_attempt = now and status 'queued'; hold: 'queued'/'deferred' rows become 'held';
 * release: 'held' rows become 'queued' due now; drop: the message and all its rows are deleted
 * (the blob's refcount drops by trigger). *n_r (may be NULL) gets the number of rows changed
 * (drop: messages deleted). ENOTFOUND when id > 0 does not exist. */
enum store_queue_cmd { STORE_QUEUE_RETRY, STORE_QUEUE_HOLD, STORE_QUEUE_RELEASE, STORE_QUEUE_DROP };
int store_queue_command(struct store *st, enum store_queue_cmd cmd, int64_t id, int64_t now,
                        size_t *n_r, struct err *err);
/* Moves after every queue write of this process (deliver, claim, record, commands); an atomic
 * load. */
uint64_t store_queue_change_seq(struct store *st);

/* ---- IMAP (RFC 3501/9051, CONDSTORE/QRESYNC RFC 7162) ----
 * What imap/mailstore_sql.c needs. Accounts are named by id (store_account_get at login),
 * mailboxes by name (UTF-8, "/" separated, "INBOX" spelled so) or by the id store_imap_status
 * returned; a mailbox id is trusted to belong to the caller's account. Every write is one
 * store_write request (durable on return) that keeps the mailbox's UIDNEXT and HIGHESTMODSEQ
 * consistent: each new or changed message gets HIGHESTMODSEQ + 1 of its mailbox, UIDs are
 * UIDNEXT and never reused, and every expunge is recorded with a new MODSEQ (vanished). After
 * the commit, store_mailbox_change_seq of every touched mailbox moves. Flags are a bitmask the
 * store does not interpret except STORE_FLAG_SEEN (unseen count) and STORE_FLAG_DELETED
 * (expunge); keywords are space-separated, compared without regard to ASCII case, kept once. */
#define STORE_FLAG_SEEN    (1u << 0)
#define STORE_FLAG_DELETED (1u << 3)
#define STORE_KEYWORDS_MAX 64 /* distinct keywords per message; more is EINVAL */

struct store_imap_mailbox {
	char *name;
	char *special_use; /* NULL for none */
	bool subscribed;
	bool exists; /* false: a subscription to a name that is no mailbox */
};
/* Every mailbox of account plus subscriptions of names that are no mailbox, ordered by name with
 * INBOX first. */
int store_imap_mailbox_list(struct store *st, int64_t account, struct store_imap_mailbox **v_r,
                            size_t *n_r, struct err *err);
void store_imap_mailbox_list_free(struct store_imap_mailbox **vp, size_t n);

struct store_imap_status {
	int64_t id;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint32_t messages, unseen, deleted;
	uint64_t size;     /* sum of RFC822.SIZE */
	char *special_use; /* heap, NULL for none */
};
/* One snapshot. ENOTFOUND when account has no mailbox name. */
int store_imap_status(struct store *st, int64_t account, const char *name,
                      struct store_imap_status *s_r, struct err *err);
void store_imap_status_deinit(struct store_imap_status *s);
/* Creates name with a fresh UIDVALIDITY, and its missing superiors (no \Noselect placeholders).
 * special_use NULL or one of \All \Archive \Drafts \Flagged \Junk \Sent \Trash (EINVAL
 * otherwise). Subscribed when a subscription to the name existed. EEXIST; EINVAL for an empty
 * name, an empty level ("a//b", "/a", "a/") or a name over 1024 bytes. */
int store_imap_create(struct store *st, int64_t account, const char *name, const char *special_use,
                      struct err *err);
/* Deletes name and its messages (with vanished records gone too). EINVAL for INBOX, ENOTFOUND,
 * EHASCHILDREN when "name/..." exists. A subscription stays (RFC 9051 §6.3.9). */
int store_imap_delete(struct store *st, int64_t account, const char *name, struct err *err);
/* Renames old_name and its inferiors to new_name (UIDVALIDITY, messages and subscription flags
 * kept), creating missing superiors of new_name. old_name INBOX: a new mailbox new_name (fresh
 * UIDVALIDITY) receives all INBOX messages with their UIDs, flags and MODSEQs; INBOX stays, empty,
 * with the moved UIDs recorded as expunged; INBOX's inferiors are not renamed (RFC 9051 §6.3.6).
 * ENOTFOUND, EEXIST (new_name or an inferior of it exists), EINVAL (bad name, new_name INBOX or
 * inside old_name). */
int store_imap_rename(struct store *st, int64_t account, const char *old_name, const char *new_name,
                      struct err *err);
/* Subscribes or unsubscribes name, which need not exist (RFC 9051 §6.3.9). */
int store_imap_subscribe(struct store *st, int64_t account, const char *name, bool on,
                         struct err *err);

struct store_imap_msg {
	uint32_t uid;
	uint32_t flags;
	uint64_t modseq;
	char *keywords; /* heap; NULL when none */
};
/* Messages of mailbox with modseq > changed_since (0: all) ascending by UID, and the mailbox's
 * UIDNEXT and HIGHESTMODSEQ from the same snapshot. ENOTFOUND when the mailbox is gone. */
int store_imap_messages(struct store *st, int64_t mailbox, uint64_t changed_since,
                        struct store_imap_msg **v_r, size_t *n_r, uint32_t *uidnext_r,
                        uint64_t *highestmodseq_r, struct err *err);
void store_imap_msgs_free(struct store_imap_msg **vp, size_t n);
/* UIDs expunged from mailbox with an expunge modseq > since, ascending (QRESYNC VANISHED). */
int store_imap_vanished(struct store *st, int64_t mailbox, uint64_t since, uint32_t **uids_r,
                        size_t *n_r, struct err *err);

struct store_imap_meta {
	int64_t id; /* message reference for store_imap_read */
	uint32_t uid;
	int64_t internal_date;
	uint64_t size;                         /* header_len + body length */
	uint64_t header_len;                   /* per-recipient header before the body */
	char *envelope, *body, *bodystructure; /* heap; NULL when not computed at delivery */
	struct buf parts;                      /* part table (empty when not computed) */
};
/* ENOTFOUND when mailbox has no message uid (expunged meanwhile). */
int store_imap_meta(struct store *st, int64_t mailbox, uint32_t uid, struct store_imap_meta *m_r,
                    struct err *err);
void store_imap_meta_deinit(struct store_imap_meta *m);
/* Appends bytes [off, off + len) of message id (header text followed by the body blob, clipped
 * at its size) to out, reading the body incrementally (sqlite3_blob_read) so a large body is
 * never loaded beyond the range. ENOTFOUND when the message is gone; EINVAL when out's max
 * refuses the bytes. */
int store_imap_read(struct store *st, int64_t id, uint64_t off, uint64_t len, struct buf *out,
                    struct err *err);

enum store_flags_op { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };
/* STORE on uids (ascending; missing ones ignored) of mailbox: flags and keywords (NULL = none)
 * set, added or removed. unchangedsince != 0: messages with modseq > unchangedsince are left
 * alone and listed in *failed_r (RFC 7162 §3.1.3). Each message whose flags or keywords changed
 * gets its own new modseq and is listed with its new state in *changed_r (UID order). Output
 * arrays are heap (free / store_imap_msgs_free); failed_r may be NULL. */
int store_imap_store(struct store *st, int64_t mailbox, const uint32_t *uids, size_t n,
                     enum store_flags_op op, uint32_t flags, const char *keywords,
                     uint64_t unchangedsince, struct store_imap_msg **changed_r,
                     size_t *n_changed_r, uint32_t **failed_r, size_t *n_failed_r, struct err *err);
/* COPY (move false) or MOVE of uids (ascending; missing ones skipped) of mailbox into the mailbox
 * dest of account: new UIDs in source order, the body shared (same blob), flags, keywords,
 * internal date and metadata copied. *src_r / *dst_r (heap, n_r entries) pair source and new
 * UIDs (COPYUID, RFC 4315). Move expunges the sources in the same transaction and records them as
 * vanished (RFC 6851). ENOTFOUND (dest), EOVERQUOTA (copy beyond the account's quota). */
int store_imap_copy(struct store *st, int64_t account, int64_t mailbox, const uint32_t *uids,
                    size_t n, const char *dest, bool move, uint32_t *dest_uidvalidity_r,
                    uint32_t **src_r, uint32_t **dst_r, size_t *n_r, struct err *err);
/* Removes the messages of mailbox flagged \Deleted, only among uids (ascending) when uids is not
 * NULL; records them as vanished with one new modseq; their UIDs (ascending, heap) in
 * *expunged_r. */
int store_imap_expunge(struct store *st, int64_t mailbox, const uint32_t *uids, size_t n,
                       uint32_t **expunged_r, size_t *n_r, struct err *err);

struct store_imap_append {
	const char *mailbox;
	uint32_t flags;
	const char *keywords; /* NULL = none */
	int64_t internal_date;
	const unsigned char *msg; /* the message exactly as given; stored as the body blob */
	size_t len;
	const char *envelope, *body, *bodystructure; /* metadata (mail/mime.h), may be NULL */
	const void *parts;
	size_t parts_len;
};
/* APPEND: a new message in a->mailbox of account with the next UID. ENOTFOUND, EOVERQUOTA
 * (quota != 0 and used + len > quota), EINVAL (too many keywords, body too large). */
int store_imap_append(struct store *st, int64_t account, const struct store_imap_append *a,
                      uint32_t *uidvalidity_r, uint32_t *uid_r, struct err *err);
/* Bytes used, quota (0 = none) and number of messages of account. */
int store_imap_quota(struct store *st, int64_t account, uint64_t *used_r, uint64_t *limit_r,
                     uint64_t *messages_r, struct err *err);
/* A counter that moves after every commit that touched mailbox (delivery, flags, copy/move,
 * expunge, append, rename, delete), read without SQL (an atomic load); slots are shared by
 * mailbox ids equal modulo 4096, so it may also move for another mailbox. Thread-safe. */
uint64_t store_mailbox_change_seq(struct store *st, int64_t mailbox);

/* ---- DKIM keys (migration 4) ----
 * Per-domain signing keys. state: "active" (signs outbound mail, published in DNS),
 * "published" (rotated out: no longer signs but stays in DNS until retire_at), "retired" (gone
 * from DNS; kept for the record). algo is "ed25519" or "rsa" (dkim/dkim.h dkim_algo_name).
 * Selectors are unique per domain (EEXIST). ENOTFOUND for a domain we do not serve. */
struct store_dkim_key {
	int64_t id;
	char *domain;
	char *selector;
	char *algo;
	unsigned bits;     /* RSA modulus bits; 256 for ed25519 */
	char *public_key;  /* the p= value (base64) */
	char *private_key; /* PEM; NULL except in store_dkim_active results */
	char *state;       /* "active", "published" or "retired" */
	int64_t created;   /* unix seconds */
	int64_t retire_at; /* unix seconds; 0 when not set */
};
/* A key to insert (all strings borrowed). */
struct store_dkim_new {
	const char *selector;
	const char *algo;
	unsigned bits;
	const char *private_pem;
	const char *public_b64;
};
/* Inserts k for domain in state "active", created = now. */
int store_dkim_add(struct store *st, const char *domain, const struct store_dkim_new *k,
                   int64_t now, struct err *err);
/* domain NULL: keys of all domains; ordered by domain, created, selector; private_key NULL. */
int store_dkim_list(struct store *st, const char *domain, struct store_dkim_key **v_r, size_t *n_r,
                    struct err *err);
/* The active keys of domain with their private PEM (for signing), ordered by created, selector.
 * An empty result (n 0) is not an error. */
int store_dkim_active(struct store *st, const char *domain, struct store_dkim_key **v_r,
                      size_t *n_r, struct err *err);
/* One transaction: every active key of domain becomes "published" with retire_at =
 * now + keep_days * 86400, then the n new keys are inserted as "active" (created = now). */
int store_dkim_rotate(struct store *st, const char *domain, const struct store_dkim_new *keys,
                      size_t n, int64_t now, unsigned keep_days, struct err *err);
/* Keys in state "published" with retire_at <= now become "retired"; *n_r (may be NULL) gets how
 * many. */
int store_dkim_retire_due(struct store *st, int64_t now, size_t *n_r, struct err *err);
/* The private PEM of domain's key selector (any state), heap (free()). ENOTFOUND when absent. */
int store_dkim_export(struct store *st, const char *domain, const char *selector, char **pem_r,
                      struct err *err);
void store_dkim_list_free(struct store_dkim_key **vp, size_t n);

/* ---- REST API (migration 6, issue 6) ----
 * API keys: the token ("lr_" + 40 base32 characters) is shown once; the store keeps only the
 * lower-case hex SHA-256 of the whole token (the token is random, so a fast hash is enough) and
 * a display prefix (the first 12 characters of the token). domain NULL = an admin key. Keys of a
 * domain are deleted with the domain. A revoked key stays listed with revoked != 0. */
struct store_apikey {
	int64_t id;
	char *prefix;
	char *name;               /* "" when none was given */
	char *domain;             /* NULL for admin keys */
	int64_t created, revoked; /* unix seconds; revoked 0 = active */
};
/* ENOTFOUND when domain is not NULL and not ours; EEXIST for a duplicate hash. */
int store_apikey_add(struct store *st, const char *hash_hex, const char *prefix, const char *name,
                     const char *domain, int64_t now, int64_t *id_r, struct err *err);
/* The active (not revoked) key with that hash; ENOTFOUND otherwise. A read: a revocation
 * committed by another process is seen by the next lookup. */
int store_apikey_lookup(struct store *st, const char *hash_hex, struct store_apikey *k_r,
                        struct err *err);
int store_apikey_get(struct store *st, int64_t id, struct store_apikey *k_r, struct err *err);
/* domain NULL: all keys; else that domain's keys. Ordered by id. */
int store_apikey_list(struct store *st, const char *domain, struct store_apikey **v_r, size_t *n_r,
                      struct err *err);
/* Sets revoked = now (ENOTFOUND for an unknown id; revoking twice keeps the first time). */
int store_apikey_revoke(struct store *st, int64_t id, int64_t now, struct err *err);
void store_apikey_deinit(struct store_apikey *k);
void store_apikey_list_free(struct store_apikey **vp, size_t n);

/* Templates, per domain, unique by (domain, name); deleted with their domain. Each body may be
 * NULL (absent); at least one of text/html is set by the API layer, not checked here. */
struct store_template {
	int64_t id;
	char *domain, *name;
	char *subject, *text, *html;
	int64_t created, updated;
};
/* Inserts t (id, created, updated ignored; set to now). EEXIST, ENOTFOUND (domain). */
int store_template_add(struct store *st, const struct store_template *t, int64_t now,
                       struct err *err);
/* Replaces subject, text and html of (t->domain, t->name); updated = now. ENOTFOUND. */
int store_template_update(struct store *st, const struct store_template *t, int64_t now,
                          struct err *err);
int store_template_get(struct store *st, const char *domain, const char *name,
                       struct store_template *t_r, struct err *err);
/* Ordered by name. */
int store_template_list(struct store *st, const char *domain, struct store_template **v_r,
                        size_t *n_r, struct err *err);
int store_template_remove(struct store *st, const char *domain, const char *name, struct err *err);
void store_template_deinit(struct store_template *t);
void store_template_list_free(struct store_template **vp, size_t n);

/* A message sent through the API, recorded in the same transaction as its delivery (see
 * store_delivery.api): who sent it, and each requested recipient with its status at acceptance
 * ("delivered" = stored in a local mailbox, "queued" = remote, "rejected" = not accepted, with
 * error). The idempotency key (when given) and the exact response body are stored with it, so a
 * retried request can be answered from the store; keys older than 24 h no longer match. */
struct store_api_rcpt {
	const char *address;
	const char *kind; /* "to", "cc", "bcc" */
	const char *status;
	const char *error; /* NULL unless rejected */
};
struct store_api_send {
	const char *public_id; /* unique, e.g. "msg_<26 base32>" */
	int64_t apikey_id;
	const char *domain;        /* the sending domain */
	const char *from;          /* envelope sender address */
	const char *subject;       /* may be NULL */
	const char *message_id;    /* Message-ID without <>, may be NULL */
	const char *tags_json;     /* JSON array text or NULL */
	const char *metadata_json; /* JSON object text or NULL */
	const struct store_api_rcpt *rcpts;
	size_t n_rcpts;
	const char *idempotency_key; /* NULL when none */
	const char *response;        /* response body stored for the key */
	int64_t created;
};
/* Events (DESIGN.md §8): one row per thing that happened to a message and recipient. Written by
 * store_deliver ("message.queued" per remote recipient, "message.delivered" per local copy,
 * with the API message when there is one) and by store_queue_record ("message.delivered",
 * "message.deferred", "message.bounced" — expired rows are "message.bounced" with reason
 * "expired"). detail is a JSON object text: {"reply": ..., "relay": ..., "dsn": ...} as known. */
struct store_event {
	int64_t id;
	int64_t created;
	char *type;
	char *recipient;
	char *detail; /* JSON object text, "{}" when nothing */
};
struct store_api_rcpt_status {
	char *address, *kind, *status, *error;
	/* from the queue row for a queued recipient (status then is its current queue state:
	 * queued, deferred, delivering, held, delivered, bounced, expired); zero/NULL otherwise */
	uint32_t attempts;
	int64_t next_attempt, last_attempt, delivered_at;
	char *last_dsn;
};
struct store_api_message {
	int64_t id;
	char *public_id, *domain, *from, *subject, *message_id, *tags_json, *metadata_json;
	int64_t apikey_id, queue_msg_id, created; /* queue_msg_id 0 when nothing was queued */
	struct store_api_rcpt_status *rcpts;
	size_t n_rcpts;
	struct store_event *events; /* oldest first */
	size_t n_events;
};
int store_api_message_get(struct store *st, const char *public_id, struct store_api_message *m_r,
                          struct err *err);
void store_api_message_deinit(struct store_api_message *m);
/* The response stored with (apikey_id, key) if it was created at or after not_before (heap,
 * free()); ENOTFOUND otherwise. */
int store_idempotency_get(struct store *st, int64_t apikey_id, const char *key, int64_t not_before,
                          char **response_r, struct err *err);

/* ---- events, webhooks, suppressions, tracking (migration 7, issue 7) ----
 * Every event row carries its domain and the public id of its message ("message"): for sent
 * mail the api_messages.public_id (store_deliver records an api_messages row for every sent
 * message that has a store_delivery.api, and the server gives one to SMTP submissions and
 * `lightr send` too); for inbound mail one id per delivery. Inserting an event also inserts a
 * pending webhook_deliveries row for every webhook that wants it (type and domain match) in the
 * same transaction: an event is never lost between the two. */
struct store_event_new {
	const char *type;      /* "message.received", "message.opened", ... */
	const char *domain;    /* the domain the event belongs to (sending or receiving) */
	const char *message;   /* public message id, or NULL */
	const char *recipient; /* or "" */
	const char *detail;    /* JSON object text or NULL ("{}") */
	int64_t created;
};
/* One event (with its webhook fan-out) in one write. *id_r (may be NULL) gets its id. */
int store_event_add(struct store *st, const struct store_event_new *e, int64_t *id_r,
                    struct err *err);
/* An event as listed: store_event plus where it belongs; tags/metadata are those of its API
 * message record when there is one (JSON text or NULL). */
struct store_event_row {
	struct store_event ev;
	char *domain, *message, *tags_json, *metadata_json;
};
/* Filters, each NULL/0 = any. Rows with id > after_id, oldest first, at most limit (1..1000).
 * domain: exact (case-insensitive). type: exact. */
struct store_event_filter {
	const char *type, *domain, *message, *recipient;
	int64_t after_id;
	size_t limit;
};
int store_event_list(struct store *st, const struct store_event_filter *f,
                     struct store_event_row **v_r, size_t *n_r, struct err *err);
void store_event_rows_free(struct store_event_row **vp, size_t n);
/* Retention: deletes events created before cutoff (and their finished webhook deliveries);
 * *n_r (may be NULL) gets how many events went. */
int store_event_prune(struct store *st, int64_t cutoff, size_t *n_r, struct err *err);

/* Webhooks. types: NULL/"" = every type, else a comma-separated list of event types. domain
 * NULL = all domains. The secret (random, generated by the caller) is stored as is: it must be
 * available to sign with; it is returned only by store_webhook_get (for the sender). */
struct store_webhook {
	int64_t id;
	char *url;
	char *secret;
	char *types;  /* "" = all, else "a,b" */
	char *domain; /* NULL = all */
	int64_t created;
};
/* ENOTFOUND for an unknown domain. */
int store_webhook_add(struct store *st, const char *url, const char *secret, const char *types,
                      const char *domain, int64_t now, int64_t *id_r, struct err *err);
int store_webhook_get(struct store *st, int64_t id, struct store_webhook *w_r, struct err *err);
/* domain NULL: all webhooks; else those scoped to that domain. Ordered by id; secret NULL. */
int store_webhook_list(struct store *st, const char *domain, struct store_webhook **v_r,
                       size_t *n_r, struct err *err);
/* Deletes the webhook with its pending deliveries. ENOTFOUND. */
int store_webhook_remove(struct store *st, int64_t id, struct err *err);
void store_webhook_deinit(struct store_webhook *w);
void store_webhook_list_free(struct store_webhook **vp, size_t n);

/* Webhook deliveries (the sender worker, events/webhook.c). */
struct store_webhook_job {
	int64_t delivery_id;
	int64_t webhook_id;
	char *url, *secret;
	uint32_t attempts; /* attempts made before this one */
	int64_t event_id;  /* the event, for the body */
	struct store_event_row event;
};
/* Claims up to max due deliveries (status pending, next_attempt <= now) by marking them
 * 'sending' in one write; returns them with their webhook and event. */
int store_webhook_claim(struct store *st, int64_t now, size_t max, struct store_webhook_job **v_r,
                        size_t *n_r, struct err *err);
void store_webhook_jobs_free(struct store_webhook_job **vp, size_t n);
/* Start-up: every 'sending' delivery back to 'pending' (due now). */
int store_webhook_recover(struct store *st, int64_t now, struct err *err);
/* Records one attempt (webhook_attempts row) and the delivery's new state in one write:
 * delivered (2xx), pending with next_attempt (retry), or failed (gave up). */
enum store_webhook_outcome { STORE_WEBHOOK_DELIVERED, STORE_WEBHOOK_RETRY, STORE_WEBHOOK_FAILED };
struct store_webhook_result {
	int64_t delivery_id;
	enum store_webhook_outcome outcome;
	int64_t next_attempt; /* RETRY */
	int status_code;      /* 0 = no HTTP answer */
	const char *error;    /* NULL = none */
	int64_t duration_ms;
};
int store_webhook_record(struct store *st, const struct store_webhook_result *r, int64_t now,
                         struct err *err);
/* The earliest next_attempt of a pending delivery (0 when none). */
int store_webhook_next_due(struct store *st, int64_t *next_r, struct err *err);
/* A webhook's deliveries, newest first, with their attempts (for the API). */
struct store_webhook_attempt {
	int64_t at;
	int status_code;
	char *error;
	int64_t duration_ms;
};
struct store_webhook_delivery {
	int64_t id, event_id;
	char *event_type;
	char *status;
	uint32_t attempts;
	int64_t next_attempt, created;
	struct store_webhook_attempt *tries;
	size_t n_tries;
};
int store_webhook_deliveries(struct store *st, int64_t webhook_id, int64_t before_id, size_t limit,
                             struct store_webhook_delivery **v_r, size_t *n_r, struct err *err);
void store_webhook_deliveries_free(struct store_webhook_delivery **vp, size_t n);

/* Suppression list, per sending domain. Addresses are folded before use: lower-cased, and with
 * sep != '\0' a "+tag" (or "-tag") in the local part removed. */
void store_suppress_fold(const char *address, char sep, char *out, size_t n);
struct store_suppression {
	int64_t id;
	char *domain, *address, *reason, *source;
	int64_t created;
};
/* Adds (or keeps the existing entry of) address; reason "hard_bounce", "soft_bounces",
 * "complaint" or "manual". ENOTFOUND for an unknown domain. *added_r (may be NULL): false when
 * it was already listed. */
int store_suppress_add(struct store *st, const char *domain, const char *address, char sep,
                       const char *reason, const char *source, int64_t now, bool *added_r,
                       struct err *err);
/* 1 listed (with *s_r filled when not NULL), 0 not, -1 + err. A read on cached statements (it
 * runs for every recipient of every send). */
int store_suppress_check(struct store *st, const char *domain, const char *address, char sep,
                         struct store_suppression *s_r, struct err *err);
int store_suppress_list(struct store *st, const char *domain, struct store_suppression **v_r,
                        size_t *n_r, struct err *err);
/* ENOTFOUND when not listed. */
int store_suppress_remove(struct store *st, const char *domain, const char *address, char sep,
                          struct err *err);
void store_suppression_deinit(struct store_suppression *s);
void store_suppression_list_free(struct store_suppression **vp, size_t n);
/* Bounce bookkeeping for automatic suppression: a soft bounce increments the address's
 * consecutive count (returned in *count_r), a delivery resets it. */
int store_bounce_soft(struct store *st, const char *domain, const char *address, char sep,
                      uint32_t *count_r, struct err *err);
int store_bounce_reset(struct store *st, const char *domain, const char *address, char sep,
                       struct err *err);

/* Tracking. */
/* The named server secret (n bytes); created with random bytes on first use. */
int store_secret(struct store *st, const char *name, unsigned char *out, size_t n, struct err *err);
/* Stores the links of a tracked message (index i = urls[i]) in one write. */
int store_track_links_add(struct store *st, const char *message, const char *const *urls, size_t n,
                          struct err *err);
/* The URL of link idx of message (heap); ENOTFOUND. */
int store_track_link(struct store *st, const char *message, uint32_t idx, char **url_r,
                     struct err *err);
/* A domain's tracking defaults. */
int store_domain_tracking(struct store *st, const char *domain, bool *opens_r, bool *clicks_r,
                          struct err *err);
int store_domain_set_tracking(struct store *st, const char *domain, bool opens, bool clicks,
                              struct err *err);
/* The API message record (domain, tags, metadata, recipients) by public id, for tracking and
 * bounce events: store_api_message_get does that. The recipient of index i is rcpts[i]. */
/* The public id and domain of the message record linked to queue message queue_msg_id
 * (msg_lookup.c); ENOTFOUND when there is none. */
int store_api_message_by_queue(struct store *st, int64_t queue_msg_id, char *public_id,
                               size_t public_id_n, char *domain, size_t domain_n, struct err *err);

/* ---- rate limits (migration 8, issue 8) ----
 * Daily usage counters survive restarts: store_deliver adds store_delivery.limit_incs to today's
 * rows in the same transaction as the message, so a count is exactly the accepted mail. Keys are
 * the limiter's ("acct:<address>:messages", "dom:<domain>:recipients", ...); day = unix seconds
 * / 86400 (UTC). Overrides: per account or domain, a value per rule name replacing the config
 * default (0 = unlimited); deleted with their account/domain. */
struct store_limit_inc {
	const char *key;
	uint64_t n;
};
/* Today's count of key (0 when no row). */
int store_limit_usage(struct store *st, const char *key, int64_t day, uint64_t *count_r,
                      struct err *err);
/* Deletes usage rows older than day (housekeeping). */
int store_limit_usage_prune(struct store *st, int64_t before_day, struct err *err);
enum store_limit_scope { STORE_LIMIT_ACCOUNT, STORE_LIMIT_DOMAIN };
struct store_limit_override {
	char *rule;     /* "messages_per_minute", ... */
	uint64_t value; /* 0 = unlimited */
};
/* Sets (set: true) or removes (false) the override of rule for the account address
 * or domain name. ENOTFOUND for an unknown account/domain; EINVAL for a bad rule name (the
 * caller validates the names; the store checks [a-z_]{1,64}). */
int store_limit_override_set(struct store *st, enum store_limit_scope scope, const char *name,
                             const char *rule, bool set, uint64_t value, struct err *err);
/* All overrides of the account/domain, ordered by rule (cached statement: runs per message). */
int store_limit_overrides(struct store *st, enum store_limit_scope scope, const char *name,
                          struct store_limit_override **v_r, size_t *n_r, struct err *err);
void store_limit_overrides_free(struct store_limit_override **vp, size_t n);

/* ---- maintenance ---- */
/* Consistent online copy of the database to dest_path (SQLite backup API) while writers run;
 * dest_path must not exist. */
int store_backup(struct store *st, const char *dest_path, struct err *err);
/* PRAGMA integrity_check; 0 when "ok", else -1 with the first problem in err. */
int store_integrity_check(struct store *st, struct err *err);

#endif
