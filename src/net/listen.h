/* Listening sockets (DESIGN.md §4). Parses the listener address syntax of the config file and
 * binds a TCP socket to it. Addresses are numeric: "host:port" with an IPv4 host, "[v6]:port",
 * or ":port" / "*:port" for every address (IPv6 dual-stack "::" when the host has IPv6, else
 * 0.0.0.0). Host names are rejected: a listener must not depend on DNS at start-up.
 * Also formats socket addresses for logs. No state; thread-safe. */
#ifndef LIGHTR_NET_LISTEN_H
#define LIGHTR_NET_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util/err.h"

#define NET_LISTEN_BACKLOG 511 /* as nginx and Redis; the kernel caps it at somaxconn */
#define NET_ADDR_STR_MAX   64  /* "[ipv6%scope]:65535" fits */

struct net_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	bool any; /* ":port" form: every address (bind tries "::" dual-stack, then 0.0.0.0) */
};

/* Parses s into *a_r. Port 0 is allowed (the kernel picks one; tests use it). Returns 0, or -1
 * with the reason in err ("missing port", "bad port", "not a numeric IP address", ...). */
int net_addr_parse(const char *s, struct net_addr *a_r, struct err *err);

/* Parses address, creates a socket (CLOEXEC, non-blocking, SO_REUSEADDR, IPV6_V6ONLY for an
 * explicit IPv6 host) and binds and listens on it with NET_LISTEN_BACKLOG. Returns the fd, or
 * -1 with "address 127.0.0.1:25: address already in use" style text in err. */
int net_listen(const char *address, struct err *err);

/* Writes "1.2.3.4:25" or "[::1]:25" for sa into out (size >= NET_ADDR_STR_MAX). An IPv4-mapped
 * IPv6 address ("::ffff:1.2.3.4", from a dual-stack socket) is written as plain IPv4. When
 * with_port is false only the IP is written ("1.2.3.4", "::1"). Returns out. */
const char *net_addr_format(const struct sockaddr *sa, socklen_t len, bool with_port, char *out);

/* The address a listening socket is bound to (after port 0 was resolved), formatted as by
 * net_addr_format. Returns out, or "?" in out on failure. */
const char *net_local_addr(int fd, char *out);
/* The port a socket is bound to, or -1. */
int net_local_port(int fd);

#endif
