/* index.h: the list indexes of the store: which deals a pipeline, a stage or
 * an owner has, in deal id order, and since when each deal of a stage has
 * been idle, for the stale counts and the look for rotting deals. */
#ifndef DF_INDEX_H
#define DF_INDEX_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "fold.h"

typedef struct df_store df_store;

/* Moves the deal's entries in the list indexes from `before` (NULL for a
 * new deal) to `after`. */
int df_store_deal_reindex(df_store *st, MDB_txn *txn, const df_deal *before, const df_deal *after);

/* Which deals a list scan walks, each in deal id order. */
typedef enum df_scan_kind {
    DF_SCAN_ALL,      /* every deal */
    DF_SCAN_PIPELINE, /* deals whose pipeline is a */
    DF_SCAN_STAGE,    /* deals in pipeline a, stage b */
    DF_SCAN_OWNER,    /* deals whose owner is a */
} df_scan_kind;
typedef int (*df_deal_id_each)(void *ctx, const char *deal, size_t len);
/* Calls each for the deals of the scan whose id is after (after, after_len)
 * (every deal when after is NULL), until it returns non-zero. */
int df_store_deal_scan(df_store *st, MDB_txn *txn, df_scan_kind kind, df_str a, df_str b,
                       const char *after, size_t after_len, df_deal_id_each each, void *ctx);

/* Counts the deals in that stage idle since a time in [idle_from, idle_before]. */
int df_store_idle_count(df_store *st, MDB_txn *txn, df_str pipeline, df_str stage,
                        int64_t idle_from, int64_t idle_before, uint64_t *count);

/* Calls each(ctx, deal, len, idle_since) for the deals in that stage idle
 * since a time in (after, until] ([INT64_MIN, until] when after is
 * INT64_MIN), in that order, until it returns non-zero. */
typedef int (*df_idle_each)(void *ctx, const char *deal, size_t len, int64_t idle_since);
int df_store_idle_scan(df_store *st, MDB_txn *txn, df_str pipeline, df_str stage, int64_t after,
                       int64_t until, df_idle_each each, void *ctx);

#endif
