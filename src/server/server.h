/* The daemon (`lightr serve`): opens the store, binds every configured listener, drops
 * privileges, runs a thread per connection, reloads on SIGHUP and shuts down cleanly on
 * SIGTERM/SIGINT. */
#ifndef LIGHTR_SERVER_H
#define LIGHTR_SERVER_H

#include "config/config.h"

/* Runs the server with cfg (takes over the caller's reference) until SIGTERM/SIGINT. Returns the
 * process exit status: 0 after a clean shutdown, 1 when start-up failed (the reason is logged). */
int server_run(struct config *cfg);

#endif
