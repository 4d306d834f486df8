/* The kill -9 durability harness shared by the store tests: a child process writes in a loop and
 * reports each acknowledged (durable) write as one fixed-size record on a pipe; the parent kills
 * it with SIGKILL in the middle of the burst, then checks that every acknowledged write is there.
 */
#ifndef LIGHTR_TEST_KILL_H
#define LIGHTR_TEST_KILL_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Forks; the child runs child(fd), which writes ack_len-byte records (one write() each, below
 * PIPE_BUF) and never returns. After kill_after records the child gets SIGKILL; records already
 * in the pipe are still read. Returns the records (heap, *n_r of them, ack_len bytes each; free()
 * it) and sets *killed_r when the child died of the planned SIGKILL. */
static inline char *
test_kill_burst(void (*child)(int fd), size_t ack_len, size_t kill_after, size_t *n_r,
                bool *killed_r)
{
	int p[2];
	if (pipe(p) < 0) {
		perror("pipe");
		exit(1);
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		child(p[1]);
		_exit(0);
	}
	close(p[1]);
	size_t n = 0, cap = 1024;
	char *acks = malloc(cap * ack_len);
	bool killed = false;
	for (;;) {
		if (n == cap) {
			cap *= 2;
			acks = realloc(acks, cap * ack_len);
		}
		if (acks == NULL) {
			perror("malloc");
			exit(1);
		}
		size_t got = 0;
		while (got < ack_len) {
			ssize_t r = read(p[0], acks + n * ack_len + got, ack_len - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got < ack_len)
			break; /* EOF: the child is gone */
		n++;
		if (!killed && n >= kill_after) {
			kill(pid, SIGKILL); /* mid-burst: more writes are in flight */
			killed = true;
		}
	}
	close(p[0]);
	int status = 0;
	*killed_r = waitpid(pid, &status, 0) == pid && killed && WIFSIGNALED(status) &&
	            WTERMSIG(status) == SIGKILL;
	*n_r = n;
	return acks;
}

#endif
