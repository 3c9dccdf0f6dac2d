/* stale.h: rotting deals: when an open deal's stale spell began, whether a
 * changed deal begins one that is already stale, the look through the idle
 * index for deals that went stale between two times, and the finder: the
 * writer thread's looks, whose findings wait under a lock for the loop. */
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

/* The look for stale deals, owned by the writer thread, and the
 * notifications it found, which wait under a lock for the loop to take
 * them. Found notifications wait up to a cap (a bulk import of old deals
 * can make many stale at once). */
typedef struct df_stale_finder df_stale_finder;

df_stale_finder *df_stale_finder_new(void);
void df_stale_finder_free(df_stale_finder *f);

/* Starts from the store's mark `checked` (0: the store never looked, and
 * deals already stale in it are not reported, only those that go stale
 * from now on). */
void df_stale_finder_start(df_stale_finder *f, int64_t checked, int64_t now);
/* Deals that went stale up to here were found. */
int64_t df_stale_finder_checked(const df_stale_finder *f);
/* Whether the last look is old enough that a request flushes to look. */
bool df_stale_finder_overdue(const df_stale_finder *f, int64_t now);

/* Notes a deal changed from before (NULL: new) to after that is stale on
 * arrival (df_stale_on_arrival), for the flush under way. */
void df_stale_finder_arrival(df_stale_finder *f, const df_deal *before, const df_deal *after,
                             const df_pipelines *pl, int64_t now);
/* Hands what the flush or look under way found to the loop, or forgets it
 * when that failed (the next one finds it again). */
void df_stale_finder_hand_over(df_stale_finder *f, bool succeeded);
/* Finds the open deals that went stale since the last look, moves the mark
 * and hands them over; the store must hold every recorded event (nothing
 * waits to be flushed). Returns 0 or an LMDB error, logged once while it
 * keeps failing. */
int df_stale_finder_look(df_stale_finder *f, df_store *st, const df_pipelines *pl);

/* Hands the found notifications over to the loop thread (*out, count
 * returned; the caller frees *out). */
size_t df_stale_finder_take(df_stale_finder *f, df_stale **out);

#endif
