/* overlay.h: the deals the writer changed since the last flush, which readers
 * on other threads see in place of the store's: each deal's latest record,
 * its committed record while the batch being recorded has changed it, and
 * the events the store's deal-event index does not hold yet. The writer
 * thread changes it; readers only look up committed records. */
#ifndef DF_OVERLAY_H
#define DF_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fold.h"
#include "table.h"

/* A deal changed since the last flush. The writer thread reads it freely;
 * only refold_waiting is its to change, the rest changes through overlay
 * calls. */
typedef struct df_pending {
    uint8_t *record;    /* its latest state (record.h), NULL before its first */
    uint8_t *committed; /* while touched: its state at the last commit; NULL: the store's */
    uint32_t len, committed_len;
    uint64_t *seqs; /* its events the deal-event index does not hold yet */
    uint32_t nseqs, cap;
    bool touched;        /* changed by the batch being recorded */
    bool refold_waiting; /* late events were taken; a refold at the end of the batch folds them */
    uint8_t id_len;
    char id[];
} df_pending;

typedef struct df_overlay df_overlay;

df_overlay *df_overlay_new(void);
void df_overlay_free(df_overlay *o);

/* The deal's pending state, or NULL (writer thread). */
df_pending *df_overlay_find(const df_overlay *o, const char *deal, size_t len);
/* The deal's pending state, added empty when absent; NULL when out of memory. */
df_pending *df_overlay_add(df_overlay *o, const char *deal, size_t len);
/* Notes an event of p the deal-event index does not hold yet. */
bool df_overlay_push_seq(df_overlay *o, df_pending *p, uint64_t seq);
/* Makes d p's latest state; readers keep seeing its committed one until
 * df_overlay_publish. False when out of memory. */
bool df_overlay_keep(df_overlay *o, df_pending *p, const df_deal *d);

/* The deals the batch being recorded changed, in the order it did. */
df_pending *const *df_overlay_touched(const df_overlay *o, size_t *count);
/* The batch was committed: readers see the latest states. */
void df_overlay_publish(df_overlay *o);
/* The flush wrote every pending deal to the store: readers look there. */
void df_overlay_clear(df_overlay *o);
/* Starts over in a new table (after a failed commit, at load) while readers
 * keep the old one until df_overlay_rebuilt. False when out of memory. */
bool df_overlay_rebuild(df_overlay *o);
void df_overlay_rebuilt(df_overlay *o);

/* Every pending deal sorted by id (free() it), or NULL when there is none
 * or memory ran out (*count says which). */
df_table_item *df_overlay_sorted(const df_overlay *o, size_t *count);
/* Rough heap bytes held, to decide when to flush. */
size_t df_overlay_bytes(const df_overlay *o);

/* Copies the committed record of the deal into record (DF_DEAL_RECORD_MAX
 * bytes); false when the store holds its latest state (any thread). */
bool df_overlay_lookup(df_overlay *o, const char *deal, size_t len, uint8_t *record,
                       size_t *record_len);

#endif
