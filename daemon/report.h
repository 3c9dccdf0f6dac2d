/* report.h: a pipeline's figures read from its aggregates, for the `board`
 * and `metrics` replies (reply.h). */
#ifndef DF_REPORT_H
#define DF_REPORT_H

#include "store.h"

/* What a reply needs of the rows: a board only the deals now in each stage
 * and the stale ones among them (every deal only: I rows are kept for scope
 * A alone); metrics the visits, stage sets, creations and losses too. */
typedef enum df_report_kind { DF_REPORT_BOARD, DF_REPORT_METRICS } df_report_kind;

/* Reads the figures of pipeline p (of one owner's, product's or source's
 * deals unless scope is DF_SCOPE_ALL) into f, which df_figures_init
 * prepared with the time and window. Returns 0 or an LMDB error. */
int df_report_load(df_store *st, MDB_txn *txn, const df_pipeline *p, df_agg_scope scope,
                   df_str value, df_figures *f, df_report_kind kind);

#endif
