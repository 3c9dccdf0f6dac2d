/* span.c: the aggregate rows of a span of time, whole months read from
 * month rows and whole hours from hour rows (see span.h, and metrics.h for
 * the rows). */
#include "span.h"

#include <string.h>

/* A month row's first day lies within +-DAYS_OF_MS: the days an int64 of
 * ms falls on are within +-1.1e11, their months' first days a month more,
 * and the calendar's arithmetic holds far beyond. */
#define DAYS_OF_MS (1LL << 40)

void df_span_init(df_span_reader *r, df_store *st, MDB_txn *txn, df_str pipeline,
                  df_agg_scope scope, df_str value)
{
    r->st = st;
    r->txn = txn;
    r->prefix_len = df_agg_scope_prefix(r->prefix, pipeline, scope, value);
    r->each = NULL;
    r->ctx = NULL;
    r->stopped = false;
    r->hours = df_agg_scope_has_hours(scope);
}

static int hand_to_each(df_span_reader *r, const uint8_t *key, size_t len, const df_sums *s)
{
    if (r->each(r->ctx, key, len, s))
        r->stopped = true;
    return r->stopped;
}

/* What a walk of the store hands each row to. */
typedef struct walker {
    df_span_reader *r;
    bool rollups; /* month or hour rows, handed on as the rows they roll up */
    df_span_alike alike;
    void *alike_ctx;
    int rc;
} walker;

static int hand_on(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    walker *w = ctx;
    df_span_reader *r = w->r;
    if (len <= r->prefix_len)
        return 0;
    key += r->prefix_len;
    len -= r->prefix_len;
    if (!w->rollups)
        return hand_to_each(r, key, len, s);
    uint8_t day_row[DF_AGG_LOGICAL_KEY_MAX];
    if (len > sizeof day_row)
        return 0;
    memcpy(day_row, key, len);
    day_row[0] = df_agg_rolled_kind(key[0]);
    return hand_to_each(r, day_row, len, s);
}

/* The rows of kind under head whose time (8 bytes after head) is in [lo, hi). */
static int walk_range(df_span_reader *r, uint8_t kind, const uint8_t *head, size_t head_len,
                      int64_t lo, int64_t hi, bool rollups)
{
    uint8_t a[DF_AGG_KEY_MAX], b[DF_AGG_KEY_MAX];
    size_t n = r->prefix_len;
    if (r->stopped || lo >= hi || n + 1 + head_len + 8 > sizeof a)
        return 0;
    memcpy(a, r->prefix, n);
    a[n++] = kind;
    if (head_len > 0) /* head may be NULL */
        memcpy(a + n, head, head_len);
    n += head_len;
    memcpy(b, a, n);
    df_put_sortable(a + n, lo);
    df_put_sortable(b + n, hi);
    walker w = {.r = r, .rollups = rollups};
    return df_store_aggs_range(r->st, r->txn, a, n + 8, b, n + 8, hand_on, &w);
}

int df_span_all(df_span_reader *r, uint8_t kind)
{
    uint8_t prefix[DF_AGG_KEY_MAX];
    if (r->stopped || r->prefix_len + 1 > sizeof prefix)
        return 0;
    memcpy(prefix, r->prefix, r->prefix_len);
    prefix[r->prefix_len] = kind;
    walker w = {.r = r};
    return df_store_aggs_scan(r->st, r->txn, prefix, r->prefix_len + 1, hand_on, &w);
}

/* The rows of a kind under head whose time is in [lo, hi), those of
 * [first, end) (whole months or hours, when first < end) from its rollups. */
static int walk_rolled(df_span_reader *r, uint8_t kind, const uint8_t *head, size_t head_len,
                       int64_t lo, int64_t hi, int64_t first, int64_t end)
{
    if (first >= end)
        return walk_range(r, kind, head, head_len, lo, hi, false);
    int rc = walk_range(r, kind, head, head_len, lo, first, false);
    if (rc == 0)
        rc = walk_range(r, (uint8_t)(kind - 'A' + 'a'), head, head_len, first, end, true);
    if (rc == 0)
        rc = walk_range(r, kind, head, head_len, end, hi, false);
    return rc;
}

int df_span_days(df_span_reader *r, uint8_t day_kind, const uint8_t *head, size_t head_len,
                 int64_t lo_day, int64_t hi_day)
{
    if (lo_day >= hi_day)
        return 0;
    /* the whole months: [first, end) */
    int64_t first = lo_day, end = hi_day;
    if (lo_day != INT64_MIN && df_month_first_day(lo_day) != lo_day)
        first = df_month_next_day(lo_day);
    if (hi_day != INT64_MAX)
        end = df_month_first_day(hi_day);
    return walk_rolled(r, day_kind, head, head_len, lo_day, hi_day, first, end);
}

int df_span_hours(df_span_reader *r, uint8_t exact_kind, const uint8_t *head, size_t head_len,
                  int64_t lo, int64_t hi)
{
    if (lo >= hi)
        return 0;
    /* the whole hours: [first, end), none where the scope has no hour rows */
    int64_t first = df_hour_of(lo), end = r->hours ? df_hour_of(hi) : first;
    if (first < lo && first <= INT64_MAX - DF_HOUR_MS)
        first += DF_HOUR_MS;
    return walk_rolled(r, exact_kind, head, head_len, lo, hi, first, end);
}

int df_span_window(df_span_reader *r, uint8_t day_kind, uint8_t exact_kind, bool has_from,
                   int64_t from, bool has_to, int64_t to)
{
    if (has_from && has_to && from >= to)
        return 0;
    int64_t first_day = INT64_MIN, end_day = INT64_MAX; /* whole days: [first_day, end_day) */
    if (has_from)
        first_day = df_day_of(from) + (df_day_start(df_day_of(from)) < from);
    if (has_to)
        end_day = df_day_of(to);
    if (has_from && has_to && first_day >= end_day)
        return df_span_hours(r, exact_kind, NULL, 0, from, to);
    int rc = df_span_days(r, day_kind, NULL, 0, first_day, end_day);
    if (rc == 0 && has_from && from < df_day_start(first_day))
        rc = df_span_hours(r, exact_kind, NULL, 0, from, df_day_start(first_day));
    if (rc == 0 && has_to && df_day_start(end_day) < to)
        rc = df_span_hours(r, exact_kind, NULL, 0, df_day_start(end_day), to);
    return rc;
}

/* A month row: handed on as one day row, or its days are. */
static int month_or_days(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    walker *w = ctx;
    df_span_reader *r = w->r;
    uint8_t day_row[DF_AGG_LOGICAL_KEY_MAX];
    if (len < r->prefix_len + 9 || len - r->prefix_len > sizeof day_row)
        return 0; /* damaged: LMDB has no checksums */
    size_t rel = len - r->prefix_len;
    memcpy(day_row, key + r->prefix_len, rel);
    day_row[0] = df_agg_rolled_kind(day_row[0]);
    int64_t first_day = df_get_sortable(day_row + rel - 8);
    if (first_day < -DAYS_OF_MS || first_day > DAYS_OF_MS)
        return 0; /* damaged: no time in ms falls in that month */
    int64_t end_day = df_month_next_day(first_day);
    if (w->alike(w->alike_ctx, day_row, rel, first_day, end_day))
        return hand_to_each(r, day_row, rel, s);
    w->rc = walk_range(r, day_row[0], day_row + 1, rel - 9, first_day, end_day, false);
    return w->rc != 0 || r->stopped;
}

int df_span_months(df_span_reader *r, uint8_t day_kind, df_span_alike alike, void *alike_ctx)
{
    if (r->stopped || r->prefix_len + 1 > DF_AGG_KEY_MAX)
        return 0;
    uint8_t prefix[DF_AGG_KEY_MAX];
    memcpy(prefix, r->prefix, r->prefix_len);
    prefix[r->prefix_len] = (uint8_t)(day_kind - 'A' + 'a');
    walker w = {.r = r, .alike = alike, .alike_ctx = alike_ctx};
    int rc = df_store_aggs_scan(r->st, r->txn, prefix, r->prefix_len + 1, month_or_days, &w);
    return rc ? rc : w.rc;
}
