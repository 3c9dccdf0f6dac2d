/* store.h: the LMDB layout of dealflow: how the log, the id index, each
 * deal's events, the deal projections, the list indexes, the per-stage
 * aggregates, pipelines and rejected items are keyed. The log is the truth;
 * everything else is derived from it and written by the writer's flushes.
 * Functions return 0 or an LMDB error code (MDB_NOTFOUND when absent). */
#ifndef DF_STORE_H
#define DF_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fold.h"
#include "metrics.h"

#define DF_STORE_FORMAT 1
/* The layout of what derives from the log; a store with another is rebuilt
 * from its log when opened. */
#define DF_DERIVED_FORMAT 2

typedef struct df_store df_store;

/* Opens (creating when missing) the environment in dir. Returns 0, or
 * DF_EUNAVAILABLE with a message saying what is wrong with the directory. */
int df_store_open(df_store **out, const char *dir, size_t map_mib, df_error *err);
void df_store_close(df_store *st);
/* Clears reader slots left by dead processes. */
void df_store_check_readers(df_store *st);
/* Bytes the data file takes on disk. */
uint64_t df_store_disk_bytes(df_store *st);

int df_store_write_begin(df_store *st, MDB_txn **txn);
/* The one read transaction of the calling (loop) thread, renewed. */
int df_store_read_begin(df_store *st, MDB_txn **txn);
void df_store_read_end(df_store *st, MDB_txn *txn);

/* meta: small counters (absent = 0). */
int df_store_meta_get(df_store *st, MDB_txn *txn, const char *key, uint64_t *value);
int df_store_meta_put(df_store *st, MDB_txn *txn, const char *key, uint64_t value);

/* The log: seq -> the recorded event map. */
int df_store_log_put(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len);
int df_store_log_get(df_store *st, MDB_txn *txn, uint64_t seq, MDB_val *out);
uint64_t df_store_log_last(df_store *st, MDB_txn *txn);
/* Calls each(ctx, seq, event) for events after `after`, in seq order,
 * until it returns non-zero or limit events were seen. */
typedef int (*df_log_each)(void *ctx, uint64_t seq, const MDB_val *event);
int df_store_log_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit, df_log_each each,
                      void *ctx);

/* deal.moved notifications as published: seq -> the msgpack body. */
int df_store_move_put(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len);
uint64_t df_store_moves_last(df_store *st, MDB_txn *txn);
int df_store_moves_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit, df_log_each each,
                        void *ctx);

/* Event ids: id -> seq, forever. */
int df_store_id_get(df_store *st, MDB_txn *txn, const char *id, size_t len, uint64_t *seq);
int df_store_id_put(df_store *st, MDB_txn *txn, const char *id, size_t len, uint64_t seq);

/* Each deal's events: (deal, seq). */
int df_store_deal_event_put(df_store *st, MDB_txn *txn, const char *deal, size_t len, uint64_t seq);
typedef int (*df_seq_each)(void *ctx, uint64_t seq);
int df_store_deal_event_scan(df_store *st, MDB_txn *txn, const char *deal, size_t len,
                             uint64_t after, df_seq_each each, void *ctx);

/* Deal projections. df_store_deal_get takes the id from d->deal. */
int df_store_deal_get(df_store *st, MDB_txn *txn, df_deal *d);
int df_store_deal_put(df_store *st, MDB_txn *txn, const df_deal *d);
/* Moves the deal's entries in the list indexes from `before` (NULL for a
 * new deal) to `after`. */
int df_store_deal_reindex(df_store *st, MDB_txn *txn, const df_deal *before, const df_deal *after);
uint64_t df_store_deal_count(df_store *st, MDB_txn *txn);

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

/* Pipeline aggregates (metrics.h). A flush gathers the changes of its deals
 * in memory, then writes each row once. */
typedef struct df_agg_deltas df_agg_deltas;
df_agg_deltas *df_agg_deltas_new(void);
void df_agg_deltas_free(df_agg_deltas *d);
void df_agg_deltas_clear(df_agg_deltas *d);
/* Takes away what before contributed (NULL: nothing) and adds what after
 * does. Returns false when out of memory. */
bool df_agg_deltas_deal(df_agg_deltas *d, const df_deal *before, const df_deal *after);
/* Writes the gathered changes and empties d. */
int df_store_aggs_apply(df_store *st, MDB_txn *txn, df_agg_deltas *d);
/* Calls each(ctx, key, len, sums) for the rows whose key starts with prefix
 * (V rows with their names in the key), until it returns non-zero. */
typedef int (*df_agg_each)(void *ctx, const uint8_t *key, size_t len, const df_sums *sums);
int df_store_aggs_scan(df_store *st, MDB_txn *txn, const uint8_t *prefix, size_t len,
                       df_agg_each each, void *ctx);
/* The same for the rows whose keys are in [lo, hi). */
int df_store_aggs_range(df_store *st, MDB_txn *txn, const uint8_t *lo, size_t lo_len,
                        const uint8_t *hi, size_t hi_len, df_agg_each each, void *ctx);
/* Pipelines: the built-in default overlaid by every stored definition. */
int df_store_pipelines_load(df_store *st, MDB_txn *txn, df_pipelines *pl);
int df_store_pipeline_put(df_store *st, MDB_txn *txn, const df_pipeline *p);
/* The pipelines as they were at the end of the flushed state, so that the
 * log after it is folded again with the definitions it was folded with.
 * _get returns MDB_NOTFOUND when none was kept. */
int df_store_pipelines_snapshot_put(df_store *st, MDB_txn *txn, const df_pipelines *pl);
int df_store_pipelines_snapshot_get(df_store *st, MDB_txn *txn, df_pipelines *pl);

/* Rejected items: id -> msgpack {recv, error, message, raw}. */
int df_store_rejected_put(df_store *st, MDB_txn *txn, uint64_t id, const void *data, size_t len);
uint64_t df_store_rejected_last(df_store *st, MDB_txn *txn);
int df_store_rejected_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit,
                           df_log_each each, void *ctx);

#endif
