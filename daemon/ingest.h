/* ingest.h: turning frames received on the PULL socket into batch items. */
#ifndef DF_INGEST_H
#define DF_INGEST_H

#include "daemon.h"

/* Takes up to `budget` frames waiting on the ingest socket into d->filling.
 * Returns how many it took. */
int df_ingest_drain(df_daemon *d, int budget);

/* Adds the events of one ingest frame to b: one item per event, or one
 * refused item (kept in the rejected store) for a frame that cannot be read. */
void df_ingest_frame(df_batch *b, const char *data, size_t len, size_t max_message, int64_t recv);

/* Marks item it of b as sent by `by` (len 0 without keys) with roles: it
 * is refused `forbidden` when those may not record it (not a producer, or
 * a `pipeline` event without admin). Returns false when out of memory. */
bool df_ingest_attribute(df_batch *b, df_item *it, df_str by, unsigned roles);

/* Takes the ingest events of a batch the full store could not take back
 * into d->filling, before what arrived since, to be tried again. */
void df_ingest_hold(df_daemon *d, const df_batch *held);

#endif
