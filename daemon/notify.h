/* notify.h: the PUB socket: deal.moved and deal.stale notifications,
 * published only once what caused them is on disk. */
#ifndef DF_NOTIFY_H
#define DF_NOTIFY_H

#include "daemon.h"

/* Publishes the moves of a committed batch, in seq order. */
void df_notify_moves(df_daemon *d, const df_batch *b);

/* Publishes deal.stale notifications the writer found. */
void df_notify_stale(df_daemon *d, const df_stale *items, size_t count);

#endif
