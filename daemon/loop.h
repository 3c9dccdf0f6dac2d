/* loop.h: the libuv loop that carries the ZeroMQ sockets, hands batches to
 * the writer and answers when they are on disk. */
#ifndef DF_LOOP_H
#define DF_LOOP_H

#include "daemon.h"

/* Runs until SIGTERM or SIGINT has been handled: everything received is
 * committed and answered. Returns 0, or a negative code when the loop could
 * not start. */
int df_loop_run(df_daemon *d);

#endif
