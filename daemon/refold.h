/* refold.h: rebuilding a deal from its recorded events, in (at, seq) order,
 * for events that arrive late and for `as_of` queries. */
#ifndef DF_REFOLD_H
#define DF_REFOLD_H

#include "store.h"

typedef struct df_refolder df_refolder;

df_refolder *df_refolder_new(void);
void df_refolder_free(df_refolder *r);

/* Folds every recorded event of the deal d->deal with at <= as_of into d
 * (INT64_MAX for all of them): those in the store's deal-event index and
 * the `pending` seqs the index does not hold yet. Memory grows with the
 * deal's event count by 16 bytes an event. Returns 0 or an LMDB error
 * (MDB_CORRUPTED when a recorded event no longer decodes). */
int df_refold(df_refolder *r, df_store *st, MDB_txn *txn, const df_pipelines *pl, int64_t as_of,
              const uint64_t *pending, size_t npending, df_deal *d);

#endif
