/* span.h: reading the aggregate rows (metrics.h) of a span of time: exact
 * rows between two moments with the whole hours between them read from hour
 * rows, day rows between two days with the whole months between them read
 * from month rows, and a window's days whole or cut.
 * Shared by the figures of `board` and `metrics` (report.c) and of
 * `forecast` and `calibration` (outlook.c). */
#ifndef DF_SPAN_H
#define DF_SPAN_H

#include "aggregates.h"
#include "store.h"

typedef struct df_span_reader {
    df_store *st;
    MDB_txn *txn;
    uint8_t prefix[DF_AGG_KEY_MAX]; /* pipeline and scope */
    size_t prefix_len;
    /* Called with each row's key after the prefix; a month or hour row comes
     * as the row of its first day or ms (its kind in upper case). */
    df_agg_each each;
    void *ctx;
    bool stopped; /* each returned non-zero: no further row is read */
    bool hours;   /* the scope has hour rows */
} df_span_reader;

/* The rows of pipeline's deals, of one owner's, product's or source's unless
 * scope is DF_SCOPE_ALL. */
void df_span_init(df_span_reader *r, df_store *st, MDB_txn *txn, df_str pipeline,
                  df_agg_scope scope, df_str value);

/* Each reading function returns 0 or an LMDB error; once each has asked to
 * stop, they read nothing more. */

/* Every row of a kind. */
int df_span_all(df_span_reader *r, uint8_t kind);
/* The rows of a kind that has hour rows (E, M, G, L, Q), under head (the
 * key's bytes between the kind and the time: none when the time follows the
 * kind), whose time is in [lo, hi): the whole hours from their hour rows
 * where the scope has them, the other times from the exact rows. */
int df_span_hours(df_span_reader *r, uint8_t exact_kind, const uint8_t *head, size_t head_len,
                  int64_t lo, int64_t hi);
/* The day rows of a kind that has month rows, under head (the key's bytes
 * between the kind and the day: none when the day follows the kind), whose
 * day is in [lo_day, hi_day) (INT64_MIN and INT64_MAX: unbounded): the
 * whole months from their month rows, the other days from their day rows. */
int df_span_days(df_span_reader *r, uint8_t day_kind, const uint8_t *head, size_t head_len,
                 int64_t lo_day, int64_t hi_day);
/* The rows of the window [from, to) of a kind that has day rows and exact
 * rows (N and M, F and G, K and L, R and Q): its whole days by
 * df_span_days, the days it cuts by df_span_hours. */
int df_span_window(df_span_reader *r, uint8_t day_kind, uint8_t exact_kind, bool has_from,
                   int64_t from, bool has_to, int64_t to);

/* Whether a month of day rows may be taken as one row: key (after the
 * prefix) is its month row as the day row of its first day, and its days
 * are [first_day, end_day). */
typedef bool (*df_span_alike)(void *ctx, const uint8_t *key, size_t len, int64_t first_day,
                              int64_t end_day);
/* Every day row of a kind whose day ends its key (C, I): a month at once
 * where alike says so, else its days one by one. */
int df_span_months(df_span_reader *r, uint8_t day_kind, df_span_alike alike, void *alike_ctx);

#endif
