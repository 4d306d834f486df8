/* Process privileges (DESIGN.md §1): a process started as root binds its ports, reads its keys,
 * hands its data directory to the service user, then drops to that user for good. Used by
 * `lightr serve` and by administrative commands, so files in the data directory are never left
 * owned by root. */
#ifndef LIGHTR_PRIVS_H
#define LIGHTR_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

#include "err.h"

/* Looks up user; -1 with a clear message when it does not exist. */
int privs_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, struct err *err);
/* Creates dir (mode 0750, parents must exist) when missing. */
int privs_mkdir(const char *dir, struct err *err);
/* chown dir and every entry directly inside it (and inside its subdirectories, one level deep
 * is enough for our layout: tls/) to uid:gid. */
int privs_chown_tree(const char *dir, uid_t uid, gid_t gid, struct err *err);
/* setgroups(1, {gid}), setresgid, setresuid; then verifies that root cannot be regained. */
int privs_drop(uid_t uid, gid_t gid, struct err *err);

#endif
