/* notify.h: the PUB socket: deal.moved notifications, published only once
 * the events that caused them are on disk. */
#ifndef DF_NOTIFY_H
#define DF_NOTIFY_H

#include "daemon.h"

/* Publishes the moves of a committed batch, in seq order. */
void df_notify_moves(df_daemon *d, const df_batch *b);

#endif
