/* readahead.h: the log read ahead of its fold, on a second thread: each
 * recorded event after a seq checked against its digest, unpacked and
 * decoded, and handed over in seq order while the fold works on those
 * before it, so that a start that folds the whole log (a rebuild) spends
 * the time of the slower half, not of both. */
#ifndef DF_READAHEAD_H
#define DF_READAHEAD_H

#include <stdint.h>

#include "event.h"
#include "store.h"

typedef struct df_readahead df_readahead;

/* Called on the reading thread for each event, in seq order, before the
 * fold is handed it; non-zero ends the walk with that error. */
typedef int (*df_readahead_each)(void *ctx, const df_event *ev);

/* Starts reading the events after..last of the log; nothing may write to
 * the store until df_readahead_stop. Returns 0, or ENOMEM or an LMDB error
 * (*out is then NULL). */
int df_readahead_start(df_readahead **out, df_store *st, uint64_t after, uint64_t last,
                       df_readahead_each each, void *ctx);
/* The next event (its seq set), valid until the next call; NULL after the
 * last, or where reading failed: *rc is then the error (DF_STORE_ECORRUPT
 * for a record that does not match its digest, at df_store_corrupt_seq;
 * MDB_NOTFOUND for a missing seq; MDB_CORRUPTED for one that does not
 * decode; each's), else 0. */
const df_event *df_readahead_next(df_readahead *ra, int *rc);
/* Ends the walk (also before its end), waits for its thread and frees it. */
void df_readahead_stop(df_readahead *ra);

#endif
