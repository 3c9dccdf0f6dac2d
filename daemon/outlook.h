/* outlook.h: `forecast` and `calibration` read from the aggregate rows the
 * store keeps (forecast.h), and their replies. */
#ifndef DF_OUTLOOK_H
#define DF_OUTLOOK_H

#include <msgpack.h>

#include "forecast.h"
#include "store.h"

/* Fills fc, whose pipeline, periods and nperiods the caller set, with the
 * open deals of pipeline p (of one owner's, product's or source's unless
 * scope is DF_SCOPE_ALL) closing in each period, those won in it, and the
 * overdue ones (close_date before now) and those without a close_date.
 * Returns 0 or an LMDB error. */
int df_forecast_load(df_store *st, MDB_txn *txn, df_agg_scope scope, df_str value, int64_t now,
                     df_forecast *fc);

/* Fills c, whose pipeline the caller set, with the deals that closed in
 * [from, to) (a bound left out when not given). Returns 0 or an LMDB error. */
int df_calibration_load(df_store *st, MDB_txn *txn, df_agg_scope scope, df_str value, bool has_from,
                        int64_t from, bool has_to, int64_t to, df_calibration *c);

void df_reply_forecast(msgpack_packer *pk, const df_forecast *fc);
void df_reply_calibration(msgpack_packer *pk, const df_calibration *c);

#endif
