/* report.h: the `board` and `metrics` replies, from the pipeline aggregates. */
#ifndef DF_REPORT_H
#define DF_REPORT_H

#include "store.h"

/* Reads the figures of pipeline p (of one owner's deals when owner is not
 * NULL) into f, which df_figures_init prepared with the time and window;
 * with_stale also counts the stale deals of each stage (every owner only).
 * Returns 0 or an LMDB error. */
int df_report_load(df_store *st, MDB_txn *txn, const df_pipeline *p, const df_str *owner,
                   df_figures *f, bool with_stale);

/* Pack the keys of the replies after `ok`: board's `stages` (one key), and
 * the ten keys of metrics. */
void df_report_pack_board(msgpack_packer *pk, const df_figures *f);
void df_report_pack_metrics(msgpack_packer *pk, const df_figures *f);

#define DF_METRICS_KEYS 10

#endif
