/* Temporary directories for unit tests: one per test binary (or per test), removed with its files
 * (one level deep, which is all a store or config test creates). */
#ifndef LIGHTR_TEST_TMP_H
#define LIGHTR_TEST_TMP_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Creates /tmp/lightr-<name>-XXXXXX into out (size n); exits the test binary on failure. */
static inline void
test_tmpdir(char *out, size_t n, const char *name)
{
	(void)snprintf(out, n, "/tmp/lightr-%s-XXXXXX", name);
	if (mkdtemp(out) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

/* Removes dir's entries and dir itself; accepts a directory that no longer exists. */
static inline void
test_tmpdir_remove(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char p[512];
		(void)snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		(void)unlink(p);
	}
	closedir(d);
	(void)rmdir(dir);
}

#endif
