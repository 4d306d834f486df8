/* Connection admission, thread per connection and the accept loop; see pool.h. Per-IP counts
 * live in a small chained hash table whose entries exist only while their count is above zero,
 * so a scan from many addresses costs memory only for connections actually open. */
#include "pool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#define POOL_BUCKETS       256
#define POOL_ACCEPT_BURST  64 /* accepts per listener per wake-up, so one cannot starve others */
#define POOL_BUSY_WRITE_MS 100

struct ip_entry {
	struct ip_entry *next;
	unsigned kind;
	unsigned count;
	char ip[NET_ADDR_STR_MAX];
};

struct net_slot {
	struct net_slot *prev, *next; /* live list, for shutdown_all */
	struct ip_entry *ip;
	int fd;
};

struct net_pool {
	pthread_mutex_t mu;
	pthread_cond_t idle; /* signalled when count drops to 0 */
	struct net_limits lim;
	unsigned count;
	struct net_slot *live;
	struct ip_entry *buckets[POOL_BUCKETS];
};

/* FNV-1a over kind and ip. */
static unsigned
pool_hash(unsigned kind, const char *ip)
{
	uint32_t h = 2166136261u ^ kind;
	for (; *ip; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % POOL_BUCKETS;
}

struct net_pool *
net_pool_new(const struct net_limits *lim)
{
	struct net_pool *p = xcalloc(1, sizeof *p);
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->idle, &ca);
	pthread_condattr_destroy(&ca);
	p->lim = *lim;
	return p;
}

void
net_pool_free(struct net_pool **pp)
{
	struct net_pool *p = *pp;
	if (p == NULL)
		return;
	*pp = NULL;
	ASSERT(p->count == 0);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void
net_pool_set_limits(struct net_pool *p, const struct net_limits *lim)
{
	pthread_mutex_lock(&p->mu);
	p->lim = *lim;
	pthread_mutex_unlock(&p->mu);
}

/* Finds the entry for (kind, ip); with create, makes one with count 0. Lock held. */
static struct ip_entry *
pool_ip_find(struct net_pool *p, unsigned kind, const char *ip, bool create)
{
	unsigned h = pool_hash(kind, ip);
	for (struct ip_entry *e = p->buckets[h]; e; e = e->next)
		if (e->kind == kind && strcmp(e->ip, ip) == 0)
			return e;
	if (!create)
		return NULL;
	struct ip_entry *e = xcalloc(1, sizeof *e);
	e->kind = kind;
	size_t n = strlen(ip);
	if (n >= sizeof e->ip)
		n = sizeof e->ip - 1;
	memcpy(e->ip, ip, n);
	e->next = p->buckets[h];
	p->buckets[h] = e;
	return e;
}

static void
pool_ip_remove(struct net_pool *p, struct ip_entry *dead)
{
	struct ip_entry **pe = &p->buckets[pool_hash(dead->kind, dead->ip)];
	for (; *pe; pe = &(*pe)->next)
		if (*pe == dead) {
			*pe = dead->next;
			free(dead);
			return;
		}
	log_panic("net pool: ip entry not in its bucket");
}

enum net_admit
net_pool_admit(struct net_pool *p, unsigned kind, const char *ip, int fd, struct net_slot **slot_r)
{
	pthread_mutex_lock(&p->mu);
	if (p->lim.max_connections && p->count >= p->lim.max_connections) {
		pthread_mutex_unlock(&p->mu);
		return NET_ADMIT_FULL;
	}
	struct ip_entry *e = pool_ip_find(p, kind, ip, false);
	if (p->lim.max_connections_per_ip && e && e->count >= p->lim.max_connections_per_ip) {
		pthread_mutex_unlock(&p->mu);
		return NET_ADMIT_IP_FULL;
	}
	if (e == NULL)
		e = pool_ip_find(p, kind, ip, true);
	e->count++;
	p->count++;
	struct net_slot *s = xcalloc(1, sizeof *s);
	s->ip = e;
	s->fd = fd;
	s->next = p->live;
	if (p->live)
		p->live->prev = s;
	p->live = s;
	pthread_mutex_unlock(&p->mu);
	*slot_r = s;
	return NET_ADMIT_OK;
}

void
net_pool_leave(struct net_pool *p, struct net_slot **slotp)
{
	struct net_slot *s = *slotp;
	if (s == NULL)
		return;
	*slotp = NULL;
	pthread_mutex_lock(&p->mu);
	if (s->prev)
		s->prev->next = s->next;
	else
		p->live = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (--s->ip->count == 0)
		pool_ip_remove(p, s->ip);
	if (--p->count == 0)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->mu);
	free(s);
}

unsigned
net_pool_count(struct net_pool *p)
{
	pthread_mutex_lock(&p->mu);
	unsigned n = p->count;
	pthread_mutex_unlock(&p->mu);
	return n;
}

unsigned
net_pool_count_ip(struct net_pool *p, unsigned kind, const char *ip)
{
	pthread_mutex_lock(&p->mu);
	struct ip_entry *e = pool_ip_find(p, kind, ip, false);
	unsigned n = e ? e->count : 0;
	pthread_mutex_unlock(&p->mu);
	return n;
}

bool
net_pool_wait_idle(struct net_pool *p, int64_t deadline)
{
	pthread_mutex_lock(&p->mu);
	while (p->count > 0) {
		if (deadline == CONN_NO_DEADLINE) {
			pthread_cond_wait(&p->idle, &p->mu);
			continue;
		}
		int64_t left = deadline - clock_mono_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(left / 1000);
		ts.tv_nsec += (long)(left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&p->idle, &p->mu, &ts);
	}
	bool idle = p->count == 0;
	pthread_mutex_unlock(&p->mu);
	return idle;
}

void
net_pool_shutdown_all(struct net_pool *p, int how)
{
	pthread_mutex_lock(&p->mu);
	for (struct net_slot *s = p->live; s; s = s->next)
		(void)shutdown(s->fd, how); /* the fd stays open until its thread leaves the pool */
	pthread_mutex_unlock(&p->mu);
}

/* ---- threads and the accept loop ---- */

size_t
net_pool_stack_size(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return 1024 * 1024;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return 1024 * 1024;
#else
	return 256 * 1024;
#endif
#else
	return 256 * 1024;
#endif
}

struct pool_job {
	struct net_pool *pool;
	struct net_slot *slot;
	struct conn *conn;
	const struct net_service *sv;
};

static void *
pool_thread(void *arg)
{
	struct pool_job *job = arg;
	job->sv->run(job->conn, job->sv->arg);
	net_pool_leave(job->pool, &job->slot);
	conn_free(&job->conn);
	free(job);
	return NULL;
}

/* Turns one accepted socket into a session thread, or rejects it. */
static void
pool_dispatch(struct net_pool *p, const struct net_service *sv, int fd)
{
	struct conn *c = conn_new(fd);
	struct net_slot *slot = NULL;
	enum net_admit a = net_pool_admit(p, sv->kind, c->peer_ip, fd, &slot);
	if (a != NET_ADMIT_OK) {
		log_info("%s - reject client=%s listener=%s reason=%s", sv->component, c->peer,
		         sv->listener,
		         a == NET_ADMIT_FULL ? "max_connections" : "max_connections_per_ip");
		if (sv->busy_reply)
			(void)conn_write(c, sv->busy_reply, strlen(sv->busy_reply),
			                 conn_deadline(POOL_BUSY_WRITE_MS));
		conn_free(&c);
		return;
	}
	struct pool_job *job = xmalloc(sizeof *job);
	*job = (struct pool_job){.pool = p, .slot = slot, .conn = c, .sv = sv};
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, net_pool_stack_size());
	pthread_t t;
	int rc = pthread_create(&t, &attr, pool_thread, job);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		char tmp[96];
		log_error("%s - thread-create failed client=%s listener=%s error=\"%s\"",
		          sv->component, c->peer, sv->listener, strerror_r(rc, tmp, sizeof tmp));
		net_pool_leave(p, &job->slot);
		conn_free(&job->conn);
		free(job);
	}
}

int
net_pool_serve(struct net_pool *p, const struct net_service *sv, size_t n, int stop_fd)
{
	struct pollfd *pfd = xcalloc(n + 1, sizeof *pfd);
	for (size_t i = 0; i < n; i++)
		pfd[i] = (struct pollfd){.fd = sv[i].fd, .events = POLLIN};
	pfd[n] = (struct pollfd){.fd = stop_fd, .events = POLLIN};
	for (;;) {
		int r = poll(pfd, n + 1, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_msg_errno(LOG_ERROR, "server - poll failed");
			usleep(100 * 1000);
			continue;
		}
		if (pfd[n].revents)
			break;
		for (size_t i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			for (int k = 0; k < POOL_ACCEPT_BURST; k++) {
				int fd =
				    accept4(sv[i].fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
				if (fd >= 0) {
					pool_dispatch(p, &sv[i], fd);
					continue;
				}
				if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				/* EMFILE, ENFILE, ENOBUFS, ENOMEM: back off instead of spinning. */
				log_msg_errno(LOG_ERROR, "%s - accept failed listener=%s",
				              sv[i].component, sv[i].listener);
				usleep(100 * 1000);
				break;
			}
		}
	}
	free(pfd);
	return 0;
}
