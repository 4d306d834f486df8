/* Privilege drop helpers; see privs.h. */
#include "privs.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
privs_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, struct err *err)
{
	struct passwd pw, *res = NULL;
	char tmp[4096];
	int rc = getpwnam_r(user, &pw, tmp, sizeof tmp, &res);
	if (rc != 0 || res == NULL)
		return err_set(
		    err, ENOENT,
		    "user %s does not exist; create it (make deps does: useradd --system %s) or "
		    "set user: in lightr.yaml",
		    user, user);
	*uid_r = pw.pw_uid;
	*gid_r = pw.pw_gid;
	return 0;
}

int
privs_mkdir(const char *dir, struct err *err)
{
	if (mkdir(dir, 0750) == 0 || errno == EEXIST) {
		struct stat st;
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		return err_set(err, ENOTDIR, "%s: not a directory", dir);
	}
	return err_set_errno(err, errno, errno, "%s: cannot create directory", dir);
}

static int
chown_dir(const char *dir, uid_t uid, gid_t gid, int depth, struct err *err)
{
	if (lchown(dir, uid, gid) < 0)
		return err_set_errno(err, errno, errno, "%s: cannot change owner", dir);
	DIR *d = opendir(dir);
	if (d == NULL)
		return err_set_errno(err, errno, errno, "%s: cannot open directory", dir);
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char path[PATH_MAX];
		if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
			rc = err_set(err, ENAMETOOLONG, "%s/%s: path too long", dir, e->d_name);
			break;
		}
		if (e->d_type == DT_DIR && depth > 0)
			rc = chown_dir(path, uid, gid, depth - 1, err);
		else if (lchown(path, uid, gid) < 0)
			rc = err_set_errno(err, errno, errno, "%s: cannot change owner", path);
	}
	closedir(d);
	return rc;
}

int
privs_chown_tree(const char *dir, uid_t uid, gid_t gid, struct err *err)
{
	return chown_dir(dir, uid, gid, 2, err);
}

int
privs_drop(uid_t uid, gid_t gid, struct err *err)
{
	if (uid == 0)
		return err_set(err, EPERM,
		               "refusing to run as root: set user: to an unprivileged user");
	if (setgroups(1, &gid) < 0)
		return err_set_errno(err, errno, errno, "setgroups");
	if (setresgid(gid, gid, gid) < 0)
		return err_set_errno(err, errno, errno, "setresgid(%u)", (unsigned)gid);
	if (setresuid(uid, uid, uid) < 0)
		return err_set_errno(err, errno, errno, "setresuid(%u)", (unsigned)uid);
	if (setuid(0) == 0 || geteuid() == 0)
		return err_set(err, EPERM, "privileges could be regained after the drop");
	return 0;
}
