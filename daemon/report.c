/* report.c: a pipeline's figures, for `board` and `metrics`, read from the
 * aggregate rows the store keeps (metrics.h). A report reads a few rows per
 * stage and per day, never the deals themselves. */
#include "report.h"

#include <string.h>

#include "log.h"

typedef struct loader {
    df_store *st;
    MDB_txn *txn;
    df_figures *f;
    uint8_t prefix[DF_AGG_KEY_MAX];
    size_t prefix_len;
    int rc;
} loader;

static int add_closed_entry(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    loader *l = ctx;
    if (len > l->prefix_len)
        df_figures_add_closed(l->f, key + l->prefix_len, len - l->prefix_len, s);
    return 0;
}

/* The E rows of a C row's stage and outcome within that day's part of the window. */
static int add_day_entries(loader *l, const uint8_t *row, size_t row_len)
{
    uint8_t lo[DF_AGG_KEY_MAX], hi[DF_AGG_KEY_MAX];
    int64_t lo_t, hi_t;
    /* row: C stage NUL outcome day */
    size_t head = row_len - 8; /* up to and with the outcome */
    if (l->prefix_len + head + 8 > sizeof(lo))
        return 0;
    df_figures_day_window(l->f, df_get_sortable(row + head), &lo_t, &hi_t);
    if (lo_t >= hi_t)
        return 0;
    memcpy(lo, l->prefix, l->prefix_len);
    memcpy(lo + l->prefix_len, row, head);
    lo[l->prefix_len] = 'E';
    memcpy(hi, lo, l->prefix_len + head);
    df_put_sortable(lo + l->prefix_len + head, lo_t);
    df_put_sortable(hi + l->prefix_len + head, hi_t);
    return df_store_aggs_range(l->st, l->txn, lo, l->prefix_len + head + 8, hi,
                               l->prefix_len + head + 8, add_closed_entry, l);
}

static int add_row(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    loader *l = ctx;
    bool needs_entries = false;
    const uint8_t *row = key + l->prefix_len;
    size_t row_len = len - l->prefix_len;
    if (len <= l->prefix_len || !df_figures_add_row(l->f, row, row_len, s, &needs_entries))
        return 0; /* damaged rows are left out: LMDB has no checksums */
    if (needs_entries && (l->rc = add_day_entries(l, row, row_len)) != 0)
        return 1;
    return 0;
}

static int scan_kind(loader *l, uint8_t kind)
{
    l->prefix[l->prefix_len] = kind;
    int rc = df_store_aggs_scan(l->st, l->txn, l->prefix, l->prefix_len + 1, add_row, l);
    return rc ? rc : l->rc;
}

static int count_rows(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    (void)key;
    (void)len;
    *(uint64_t *)ctx += (uint64_t)s->count;
    return 0;
}

/* Deals of an open stage idle since at most now - rot_days: whole days from
 * the I rows, the day the limit falls in from the idle index. */
static int count_stale(loader *l, df_str pipeline, df_stage_figures *s)
{
    int64_t limit;
    if (__builtin_sub_overflow(l->f->now, (int64_t)s->rot_days * DF_DAY_MS, &limit))
        limit = INT64_MIN;
    int64_t day = df_day_of(limit);
    uint8_t lo[DF_AGG_KEY_MAX], hi[DF_AGG_KEY_MAX];
    size_t n = l->prefix_len;
    memcpy(lo, l->prefix, n);
    lo[n++] = 'I';
    memcpy(lo + n, s->stage.s, s->stage.len);
    n += s->stage.len;
    lo[n++] = 0;
    memcpy(hi, lo, n);
    df_put_sortable(lo + n, INT64_MIN);
    df_put_sortable(hi + n, day);
    uint64_t whole_days = 0, last_day = 0;
    int rc = df_store_aggs_range(l->st, l->txn, lo, n + 8, hi, n + 8, count_rows, &whole_days);
    if (rc == 0)
        rc = df_store_idle_count(l->st, l->txn, pipeline, (df_str){s->stage.s, s->stage.len},
                                 df_day_start(day), limit, &last_day);
    s->stale = whole_days + last_day;
    return rc;
}

static int add_windowed(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    loader *l = ctx;
    if (len > l->prefix_len)
        df_figures_add_windowed(l->f, key + l->prefix_len, len - l->prefix_len, s);
    return 0;
}

/* The rows of a kind whose time (a day or an exact time, right after the
 * kind byte) is in [lo, hi), a bound left out when not given. */
static int scan_between(loader *l, uint8_t kind, bool has_lo, int64_t lo, bool has_hi, int64_t hi)
{
    uint8_t a[DF_AGG_KEY_MAX], b[DF_AGG_KEY_MAX];
    size_t n = l->prefix_len, a_len = n + 1, b_len = n + 1;
    if (n + 9 > sizeof(a))
        return 0;
    memcpy(a, l->prefix, n);
    a[n] = kind;
    memcpy(b, a, n + 1);
    if (has_lo) {
        df_put_sortable(a + n + 1, lo);
        a_len += 8;
    }
    if (has_hi) {
        df_put_sortable(b + n + 1, hi);
        b_len += 8;
    } else {
        b[n] = (uint8_t)(kind + 1);
    }
    return df_store_aggs_range(l->st, l->txn, a, a_len, b, b_len, add_windowed, l);
}

/* A count-only figure of the window: the day rows of the whole days it
 * holds, the exact rows of the days it cuts. */
static int load_windowed(loader *l, uint8_t day_kind, uint8_t exact_kind)
{
    const df_figures *f = l->f;
    if (f->has_from && f->has_to && f->from >= f->to)
        return 0;
    int64_t first_day = 0, end_day = 0; /* whole days: [first_day, end_day) */
    if (f->has_from)
        first_day = df_day_of(f->from) + (df_day_start(df_day_of(f->from)) < f->from);
    if (f->has_to)
        end_day = df_day_of(f->to);
    if (f->has_from && f->has_to && first_day >= end_day)
        return scan_between(l, exact_kind, true, f->from, true, f->to);
    int rc = scan_between(l, day_kind, f->has_from, first_day, f->has_to, end_day);
    if (rc == 0 && f->has_from && f->from < df_day_start(first_day))
        rc = scan_between(l, exact_kind, true, f->from, true, df_day_start(first_day));
    if (rc == 0 && f->has_to && df_day_start(end_day) < f->to)
        rc = scan_between(l, exact_kind, true, df_day_start(end_day), true, f->to);
    return rc;
}

int df_report_load(df_store *st, MDB_txn *txn, const df_pipeline *p, df_agg_scope scope,
                   df_str value, df_figures *f, df_report_kind kind)
{
    loader l = {.st = st, .txn = txn, .f = f};
    df_str pipeline = {p->name.s, p->name.len};
    int rc;
    if (scope != DF_SCOPE_ALL && value.len > DF_MAX_NAME)
        return 0; /* no deal has such an owner or source: the figures of no deals */
    l.prefix_len = df_agg_scope_prefix(l.prefix, pipeline, scope, value);
    if ((rc = scan_kind(&l, 'C')) != 0)
        return rc;
    if (kind == DF_REPORT_METRICS) {
        if ((rc = scan_kind(&l, 'T')) == 0 && (rc = scan_kind(&l, 'V')) == 0 &&
            (rc = load_windowed(&l, 'N', 'M')) == 0)
            rc = load_windowed(&l, 'F', 'G');
        return rc;
    }
    if (scope != DF_SCOPE_ALL)
        return 0;
    for (int i = 0; i < f->nstages; i++) {
        df_stage_figures *s = &f->stages[i];
        if (!s->removed && s->outcome == DF_OPEN && s->rot_days >= 0 && s->now_in.count > 0 &&
            (rc = count_stale(&l, pipeline, s)) != 0)
            return rc;
    }
    return 0;
}
