/* What the IMAP session needs from storage, as a table of operations (the seam that lets the
 * session run on a stub store in unit tests and the imap_session fuzz target; DESIGN.md §1).
 * imap_mailstore_sql() is the real one, on store/ (SQLite); imap_mailstore_stub() keeps
 * everything in memory.
 *
 * A struct imap_mailstore belongs to one session (one thread). Every operation returns 0 on
 * success or -1 with err->code one of enum imap_ms_err. Arrays and strings returned through
 * _r parameters are heap-owned by the caller (free(), or the named *_free). Mailbox names are
 * UTF-8 with "/" as the hierarchy separator; "INBOX" is always spelled so (the session
 * normalises its case before calling). */
#ifndef LIGHTR_IMAP_MAILSTORE_H
#define LIGHTR_IMAP_MAILSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

struct store;

enum imap_ms_err {
	IMAP_MS_EINTERNAL = 1, /* storage failure: NO [SERVERBUG] / [UNAVAILABLE] */
	IMAP_MS_ENONEXISTENT,  /* no such mailbox: NO [NONEXISTENT] (or [TRYCREATE] for COPY/APPEND)
	                        */
	IMAP_MS_EEXISTS,       /* mailbox exists: NO [ALREADYEXISTS] */
	IMAP_MS_EOVERQUOTA,    /* NO [OVERQUOTA] */
	IMAP_MS_EINVAL,        /* refused name or argument: NO [CANNOT] with err->msg */
	IMAP_MS_EHASCHILDREN,  /* DELETE of a mailbox with children: NO [HASCHILDREN] */
	IMAP_MS_EMODIFIED,     /* (unused by ops; session-level) */
};

/* System flags (RFC 9051 §2.3.2) as bits. \Recent is not stored (IMAP4rev2 dropped it; under
 * IMAP4rev1 RECENT is always 0). */
enum imap_flag {
	IMAP_FLAG_SEEN = 1u << 0,
	IMAP_FLAG_ANSWERED = 1u << 1,
	IMAP_FLAG_FLAGGED = 1u << 2,
	IMAP_FLAG_DELETED = 1u << 3,
	IMAP_FLAG_DRAFT = 1u << 4,
};
#define IMAP_KEYWORDS_MAX     64  /* distinct keywords per message */
#define IMAP_KEYWORD_LEN_MAX  100 /* octets per keyword */
#define IMAP_MAILBOX_NAME_MAX 1024
#define IMAP_MAILBOX_DEPTH    16 /* hierarchy levels */

struct imap_ms_mailbox {
	char *name;        /* UTF-8, "/" separated */
	char *special_use; /* "\\Sent"... (RFC 6154), NULL for none */
	bool subscribed;
	bool exists; /* false: only a subscription remains (LIST \NonExistent) */
};
void imap_ms_mailboxes_free(struct imap_ms_mailbox **vp, size_t n);

struct imap_ms_status {
	int64_t id; /* mailbox id for the operations below */
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint32_t messages, unseen, deleted;
	uint64_t size; /* sum of RFC822.SIZE (STATUS SIZE, RFC 9051 §6.3.11) */
	char *special_use;
};

/* One message as a session's view keeps it. */
struct imap_ms_msg {
	uint32_t uid;
	uint32_t flags;  /* enum imap_flag bits */
	uint64_t modseq; /* RFC 7162 */
	char *keywords;  /* NULL or space-separated keywords (heap) */
};
void imap_ms_msgs_free(struct imap_ms_msg **vp, size_t n);

/* What FETCH needs to serve one message. The message as the client sees it is header_len bytes
 * of per-recipient header (Return-Path, Delivered-To, Received) followed by the stored body; the
 * part table's offsets are relative to the body, so add header_len — except that the top-level
 * header section starts at 0. */
struct imap_ms_meta {
	uint32_t uid;
	int64_t internal_date; /* unix seconds */
	uint64_t size;         /* RFC822.SIZE = header_len + body length */
	uint64_t header_len;
	char *envelope, *body, *bodystructure; /* mail/mime.h struct mime_meta texts */
	struct buf parts;                      /* mail/mime.h part table */
	int64_t ref;                           /* opaque message reference for read */
};
void imap_ms_meta_deinit(struct imap_ms_meta *m);

enum imap_ms_store_op { IMAP_MS_FLAGS_SET, IMAP_MS_FLAGS_ADD, IMAP_MS_FLAGS_REMOVE };

struct imap_mailstore;
struct imap_mailstore_ops {
	/* LOGIN / AUTHENTICATE: 1 authenticated (the mailstore is now bound to that account),
	 * 0 wrong user or password or disabled account, -1 temporary failure. */
	int (*login)(struct imap_mailstore *ms, const char *user, const char *pass, size_t pass_len,
	             struct err *err);
	/* Every mailbox of the account plus subscriptions without a mailbox, ordered by name with
	 * INBOX first. */
	int (*list)(struct imap_mailstore *ms, struct imap_ms_mailbox **v_r, size_t *n_r,
	            struct err *err);
	int (*status)(struct imap_mailstore *ms, const char *name, struct imap_ms_status *st_r,
	              struct err *err);
	/* special_use NULL or one of \Archive \Drafts \Flagged \Junk \Sent \Trash \All. */
	int (*create)(struct imap_mailstore *ms, const char *name, const char *special_use,
	              struct err *err);
	/* EHASCHILDREN when it has inferiors (we never keep \Noselect placeholders); EINVAL for
	 * INBOX. Its messages go with it. */
	int (*delete)(struct imap_mailstore *ms, const char *name, struct err *err);
	/* Renames the mailbox and every inferior ("a" → "b" also renames "a/x" → "b/x"), keeping
	 * UIDVALIDITY. Renaming INBOX moves all its messages into a new mailbox new_name and
	 * leaves INBOX empty (RFC 9051 §6.3.6). EEXISTS / ENONEXISTENT. */
	int (*rename)(struct imap_mailstore *ms, const char *old_name, const char *new_name,
	              struct err *err);
	/* Subscribing a name that does not exist is allowed (RFC 9051 §6.3.7). */
	int (*subscribe)(struct imap_mailstore *ms, const char *name, bool on, struct err *err);

	/* Messages of mailbox id with modseq > changed_since (0: all), ascending by UID, and the
	 * mailbox's current UIDNEXT / HIGHESTMODSEQ read in the same snapshot. */
	int (*messages)(struct imap_mailstore *ms, int64_t mailbox, uint64_t changed_since,
	                struct imap_ms_msg **v_r, size_t *n_r, uint32_t *uidnext_r,
	                uint64_t *highestmodseq_r, struct err *err);
	/* UIDs (ascending) expunged from mailbox id with an expunge modseq > since (QRESYNC
	 * VANISHED, and how sessions learn of other sessions' expunges). */
	int (*vanished)(struct imap_mailstore *ms, int64_t mailbox, uint64_t since,
	                uint32_t **uids_r, size_t *n_r, struct err *err);
	/* ENONEXISTENT when the message is gone (expunged by another session). */
	int (*meta)(struct imap_mailstore *ms, int64_t mailbox, uint32_t uid,
	            struct imap_ms_meta *m_r, struct err *err);
	/* Appends bytes [off, off + len) of the message (header_len prefix + body; clipped at
	 * size) to out. Large bodies are read in pieces by the caller; this never loads more than
	 * asked. */
	int (*read)(struct imap_mailstore *ms, const struct imap_ms_meta *m, uint64_t off,
	            uint64_t len, struct buf *out, struct err *err);
	/* STORE on uids (ascending, existing or not; missing ones are ignored). Keywords:
	 * space-separated list or NULL. unchangedsince 0 = no condition; else messages with
	 * modseq > unchangedsince are not changed and their UIDs go to *failed_r (RFC 7162
	 * §3.1.3). Every message whose flags changed gets a new modseq; *changed_r lists them
	 * with their new state. */
	int (*store)(struct imap_mailstore *ms, int64_t mailbox, const uint32_t *uids, size_t n,
	             enum imap_ms_store_op op, uint32_t flags, const char *keywords,
	             uint64_t unchangedsince, struct imap_ms_msg **changed_r, size_t *n_changed_r,
	             uint32_t **failed_r, size_t *n_failed_r, struct err *err);
	/* COPY / MOVE of uids (ascending) to mailbox dest (by name). Fills the destination's
	 * UIDVALIDITY and, in the same order, the source UIDs actually copied and their new UIDs
	 * (COPYUID, RFC 4315). With move, the sources are expunged in the same transaction
	 * (RFC 6851) and recorded as vanished. ENONEXISTENT → [TRYCREATE]; EOVERQUOTA. */
	int (*copy)(struct imap_mailstore *ms, int64_t mailbox, const uint32_t *uids, size_t n,
	            const char *dest, bool move, uint32_t *dest_uidvalidity_r, uint32_t **src_r,
	            uint32_t **dst_r, size_t *n_r, struct err *err);
	/* Removes the messages flagged \Deleted, among uids when uids != NULL (UID EXPUNGE) or all
	 * of them; the expunged UIDs (ascending) in *expunged_r. Durable on return. */
	int (*expunge)(struct imap_mailstore *ms, int64_t mailbox, const uint32_t *uids, size_t n,
	               uint32_t **expunged_r, size_t *n_r, struct err *err);
	/* APPEND (durable on return): the message exactly as given (metadata computed by the
	 * implementation with mail/mime.h), flags, keywords (NULL = none), internal date.
	 * ENONEXISTENT → [TRYCREATE]; EOVERQUOTA. */
	int (*append)(struct imap_mailstore *ms, const char *name, uint32_t flags,
	              const char *keywords, int64_t internal_date, const unsigned char *msg,
	              size_t len, uint32_t *uidvalidity_r, uint32_t *uid_r, struct err *err);
	/* QUOTA (RFC 9208) of the account: STORAGE in bytes (limit 0 = none) and MESSAGE count. */
	int (*quota)(struct imap_mailstore *ms, uint64_t *used_r, uint64_t *limit_r,
	             uint64_t *messages_r, struct err *err);
	/* A cheap number that changes whenever something in mailbox id may have changed (new
	 * message, flags, expunge), readable without touching the database: IDLE and NOOP poll it
	 * and only query when it moved. */
	uint64_t (*change_seq)(struct imap_mailstore *ms, int64_t mailbox);
	/* The thread is about to sit idle for long (IDLE): release what can be re-acquired (the
	 * thread's database connection). Optional. */
	void (*idle_release)(struct imap_mailstore *ms);
	void (*free)(struct imap_mailstore *ms);
	/* Additive, optional: the directory where the session spools a large APPEND literal into
	 * an unlinked temporary file (on the store's file system), or NULL for P_tmpdir. */
	const char *(*spool_dir)(struct imap_mailstore *ms);
};

struct imap_mailstore {
	const struct imap_mailstore_ops *ops;
	char *user; /* account address once logged in, else NULL */
};

/* The real mailstore for one session on store st (server/ passes it in). */
struct imap_mailstore *imap_mailstore_sql(struct store *st);
/* Additive: the spool directory of a mailstore made by imap_mailstore_sql (copied; server/
 * passes the data directory). Unset: P_tmpdir. */
void imap_mailstore_sql_set_spool_dir(struct imap_mailstore *ms, const char *dir);
/* In-memory mailstore for tests and fuzzing: one account "user@test.example" with password
 * "secret" and mailboxes INBOX, Sent, Drafts, Trash (special-use set), holding the n_msgs
 * messages given (copied) in INBOX. */
struct imap_mailstore *imap_mailstore_stub(const char *const *msgs, const size_t *lens,
                                           size_t n_msgs);
void imap_mailstore_free(struct imap_mailstore **msp);

#endif
