/* aggregates.h: the pipeline aggregate rows (metrics.h) in the store: the
 * changes a flush gathered (deltas.h) written, and rows read back by key.
 * The store keeps each row where metrics.h says, knowing nothing of what
 * its key means. */
#ifndef DF_AGGREGATES_H
#define DF_AGGREGATES_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "deltas.h"

typedef struct df_store df_store;

/* Writes the gathered changes and empties d. */
int df_store_aggs_apply(df_store *st, MDB_txn *txn, df_agg_deltas *d);
/* Calls each(ctx, key, len, sums) for the rows whose key starts with prefix
 * (V rows with their names in the key), until it returns non-zero. */
int df_store_aggs_scan(df_store *st, MDB_txn *txn, const uint8_t *prefix, size_t len,
                       df_agg_each each, void *ctx);
/* The same for the rows whose keys are in [lo, hi). */
int df_store_aggs_range(df_store *st, MDB_txn *txn, const uint8_t *lo, size_t lo_len,
                        const uint8_t *hi, size_t hi_len, df_agg_each each, void *ctx);

#endif
