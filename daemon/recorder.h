/* recorder.h: what the writer thread holds between flushes, and recording
 * into it: each item of a batch is admitted and folded (apply.h), appended
 * to the log with its id and its deal.moved notification, and its deal's
 * state kept in memory (overlay.h); the log after the flushed state is
 * folded back into memory at load; and the flush writes what memory holds
 * (ids, each deal's events, projections, indexes, aggregates) to the store. */
#ifndef DF_RECORDER_H
#define DF_RECORDER_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "overlay.h"
#include "stale.h"
#include "store.h"

typedef struct df_recorder df_recorder;

/* What the recorder has recorded, as the writer publishes it. */
typedef struct df_recorder_counts {
    uint64_t last_seq;    /* the last event in the log */
    uint64_t derived_seq; /* the flushed state covers the log up to here */
    uint64_t last_rejected;
    uint64_t duplicates;
    uint64_t deals;
} df_recorder_counts;

/* The recorder keeps deals in overlay and finds deals stale on arrival
 * with stale; both stay the caller's. NULL when out of memory. */
df_recorder *df_recorder_new(df_store *st, df_overlay *overlay, df_stale_finder *stale);
void df_recorder_free(df_recorder *r);

/* Reads the store's state and folds the log after the flushed state back
 * into memory (at start, and after a failed commit rolled back what memory
 * holds); readers see the old memory until it is done. Returns 0 or an
 * LMDB error (ENOMEM when out of memory). */
int df_recorder_load(df_recorder *r);

/* Records one item in txn. Returns an LMDB error only when the store
 * failed; what is wrong with the event itself becomes the item's error. */
int df_recorder_item(df_recorder *r, MDB_txn *txn, df_batch *b, df_item *it);
/* Folds the late events that waited and writes the counters to txn. */
int df_recorder_end_batch(df_recorder *r, MDB_txn *txn);
/* The batch was committed: readers see what it changed. */
void df_recorder_publish(df_recorder *r);
df_recorder_counts df_recorder_counts_get(const df_recorder *r);
/* Whether a pipeline was defined since the last call. */
bool df_recorder_take_pipelines_changed(df_recorder *r);

/* Whether memory holds enough to flush. */
bool df_recorder_flush_due(const df_recorder *r);
/* Writes the derived state held in memory to the store in one transaction,
 * deals and ids in key order, noting deals stale on arrival in the stale
 * finder; memory is emptied when it worked. Returns 0 or an LMDB error. */
int df_recorder_flush(df_recorder *r);

/* The pipelines as the last recorded event left them. */
const df_pipelines *df_recorder_pipelines(const df_recorder *r);

#endif
