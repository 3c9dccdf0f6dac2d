/* stale.h: rotting deals: when an open deal's stale spell began, whether a
 * changed deal begins one that is already stale, and the look through the
 * idle index for deals that went stale between two times. */
#ifndef DF_STALE_H
#define DF_STALE_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* A deal.stale notification: an open deal idle for its stage's rot_days. */
typedef struct df_stale {
    df_name deal;
    df_name pipeline;
    df_name stage;
    int64_t since; /* idle since: max(stage_since, last_activity) */
    int64_t idle_days;
} df_stale;

/* An open deal's stale spell: since when it is idle in a stage that rots
 * after *rot_days; a new spell begins with a move or an activity. False when
 * the deal cannot go stale (no stage, closed, or a stage that never rots). */
bool df_stale_spell(const df_deal *d, const df_pipelines *pl, int64_t *since, int *rot_days);

/* Whether after (changed from before, NULL for a new deal) begins a spell
 * that went stale at or before `looked`, the last look: such a deal is not
 * found by the next look and is reported as it is flushed. */
bool df_stale_on_arrival(const df_deal *before, const df_deal *after, const df_pipelines *pl,
                         int64_t looked, int64_t *since);

/* Calls found(ctx, deal, pipeline, stage, since) for the open deals that went
 * stale in (looked, now]: for each stage that rots after R days, those idle
 * since a time in (looked - R, now - R]. The store must hold every recorded
 * event. Returns 0 or an LMDB error. */
typedef void (*df_stale_found)(void *ctx, const df_name *deal, df_str pipeline,
                               const df_name *stage, int64_t since);
int df_stale_scan(df_store *st, MDB_txn *txn, const df_pipelines *pl, int64_t looked, int64_t now,
                  df_stale_found found, void *ctx);

#endif
