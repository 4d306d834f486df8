/* Connection admission and the accept loop (DESIGN.md §1): one thread polls every listening
 * socket (plus a stop fd) and gives each accepted client its own detached thread with a small
 * stack, bounded by a total limit and a per-client-IP limit. A client over a limit gets its
 * protocol's "busy" line, written without waiting, and is closed.
 *
 * The pool also knows every live connection's socket, so shutdown can wait for sessions to end
 * and then cut the ones still running (net_pool_shutdown_all).
 *
 * All functions are thread-safe (one mutex inside). Per-IP counts are kept per "kind" (SMTP and
 * IMAP are counted apart), keyed by the textual IP of the peer. */
#ifndef LIGHTR_NET_POOL_H
#define LIGHTR_NET_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* Filled by server/ from the config (net does not read config). 0 means unlimited. */
struct net_limits {
	uint64_t max_connections;        /* all kinds together */
	uint64_t max_connections_per_ip; /* per kind and client IP */
};

struct net_pool;
struct net_slot; /* one admitted connection */

enum net_admit {
	NET_ADMIT_OK,
	NET_ADMIT_FULL,    /* max_connections reached */
	NET_ADMIT_IP_FULL, /* max_connections_per_ip reached for this client */
};

struct net_pool *net_pool_new(const struct net_limits *lim);
/* Frees the pool; no connection may be live (check net_pool_count()); accepts NULL. */
void net_pool_free(struct net_pool **pp);
/* New limits (SIGHUP): they apply to connections admitted from now on. */
void net_pool_set_limits(struct net_pool *p, const struct net_limits *lim);

/* Counts a new connection from ip of kind, owning socket fd (used only by shutdown_all).
 * NET_ADMIT_OK fills *slot_r; otherwise nothing changed. */
enum net_admit net_pool_admit(struct net_pool *p, unsigned kind, const char *ip, int fd,
                              struct net_slot **slot_r);
/* Ends what net_pool_admit started; call before closing the socket. Sets *slotp = NULL. */
void net_pool_leave(struct net_pool *p, struct net_slot **slotp);
unsigned net_pool_count(struct net_pool *p);
unsigned net_pool_count_ip(struct net_pool *p, unsigned kind, const char *ip);
/* Waits until no connection is live or the deadline (conn_deadline()) passed; true when none is
 * left. */
bool net_pool_wait_idle(struct net_pool *p, int64_t deadline);
/* shutdown(2)s every live connection's socket with how (SHUT_RD: their reads see EOF but they
 * can still write a goodbye; SHUT_RDWR: everything fails), so their threads end. */
void net_pool_shutdown_all(struct net_pool *p, int how);

/* ---- accept loop ---- */

/* Runs in the connection's own thread. c is freed by the pool when run returns. */
typedef void net_conn_fn(struct conn *c, void *arg);

struct net_service {
	int fd;                 /* listening socket (non-blocking) */
	unsigned kind;          /* per-IP counting class */
	const char *component;  /* log component ("smtp", "imap") */
	const char *listener;   /* log name of the listener ("mx", "imaps") */
	const char *busy_reply; /* line(s) with CRLF written when over a limit; NULL: none */
	net_conn_fn *run;
	void *arg;
};

/* Thread stack size for connection threads: small (an idle thread costs ~8 KiB RSS), larger under
 * AddressSanitizer, whose redzones inflate frames. */
size_t net_pool_stack_size(void);

/* Accepts on every service until stop_fd becomes readable; then returns 0 (the listening sockets
 * stay open; the caller closes them). A failing accept (EMFILE, ...) is logged and retried after
 * a short pause. Connections over a limit get busy_reply and are closed in this thread; others
 * get a thread running sv->run. Services must outlive every connection thread. */
int net_pool_serve(struct net_pool *p, const struct net_service *sv, size_t n, int stop_fd);

#endif
