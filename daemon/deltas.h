/* deltas.h: what a flush changes in the pipeline aggregates (metrics.h),
 * gathered in memory so that each row is written once: a changed deal takes
 * away the rows its old state added and adds those of its new state, and the
 * rows it leaves unchanged cancel out. Pure: no I/O. */
#ifndef DF_DELTAS_H
#define DF_DELTAS_H

#include <stdbool.h>

#include "metrics.h"

typedef struct df_agg_deltas df_agg_deltas;

df_agg_deltas *df_agg_deltas_new(void);
void df_agg_deltas_free(df_agg_deltas *d);
void df_agg_deltas_clear(df_agg_deltas *d);
/* Takes away what before contributed (NULL: nothing) and adds what after
 * does. Returns false when out of memory. */
bool df_agg_deltas_deal(df_agg_deltas *d, const df_deal *before, const df_deal *after);
/* How many rows are gathered. */
size_t df_agg_deltas_count(const df_agg_deltas *d);
/* Calls each(ctx, key, len, delta) for the gathered rows whose delta is not
 * zero, in key order, then for the month and hour rows they change
 * (metrics.h), until
 * it returns non-zero, which it returns. ENOMEM when out of memory. A walk
 * changes nothing: a second one after a failed write calls the same. */
int df_agg_deltas_each(const df_agg_deltas *d, df_agg_each each, void *ctx);

#endif
