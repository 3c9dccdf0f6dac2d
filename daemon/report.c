/* report.c: a pipeline's figures, for `board` and `metrics`, read from the
 * aggregate rows the store keeps (metrics.h). A report reads a few rows per
 * stage and per month, and per day of the months a window or now cuts,
 * never the deals themselves. */
#include "report.h"

#include <string.h>

#include "log.h"
#include "span.h"

typedef struct loader {
    df_span_reader r;
    df_figures *f;
    int rc;
} loader;

static int add_closed_entry(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    loader *l = ctx;
    df_figures_add_closed(l->f, key, len, s);
    return 0;
}

/* The E rows of a C row's stage and outcome within that day's part of the window. */
static int add_day_entries(loader *l, const uint8_t *row, size_t row_len)
{
    int64_t lo_t, hi_t;
    /* row: C stage NUL outcome day */
    size_t head = row_len - 9; /* after the kind, up to and with the outcome */
    df_figures_day_window(l->f, df_get_sortable(row + row_len - 8), &lo_t, &hi_t);
    if (lo_t >= hi_t)
        return 0;
    df_span_reader entries = l->r;
    entries.each = add_closed_entry;
    entries.ctx = l;
    return df_span_hours(&entries, 'E', row + 1, head, lo_t, hi_t);
}

static int add_row(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    loader *l = ctx;
    bool needs_entries = false;
    if (!df_figures_add_row(l->f, key, len, s, &needs_entries))
        return 0; /* damaged rows are left out: LMDB has no checksums */
    if (needs_entries && (l->rc = add_day_entries(l, key, len)) != 0)
        return 1;
    return 0;
}

static bool days_alike(void *ctx, const uint8_t *key, size_t len, int64_t first_day,
                       int64_t end_day)
{
    (void)key;
    (void)len;
    return df_figures_days_alike(ctx, first_day, end_day);
}

static int load_kind(loader *l, uint8_t kind)
{
    l->r.each = add_row;
    l->r.ctx = l;
    int rc = kind == 'C' ? df_span_months(&l->r, 'C', days_alike, l->f) : df_span_all(&l->r, kind);
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
    uint8_t head[DF_MAX_NAME + 1];
    memcpy(head, s->stage.s, s->stage.len);
    head[s->stage.len] = 0;
    uint64_t whole_days = 0, last_day = 0;
    df_span_reader idle = l->r;
    idle.each = count_rows;
    idle.ctx = &whole_days;
    int rc = df_span_days(&idle, 'I', head, s->stage.len + 1, INT64_MIN, day);
    if (rc == 0)
        rc = df_store_idle_count(l->r.st, l->r.txn, pipeline, (df_str){s->stage.s, s->stage.len},
                                 df_day_start(day), limit, &last_day);
    s->stale = whole_days + last_day;
    return rc;
}

static int add_windowed(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    loader *l = ctx;
    df_figures_add_windowed(l->f, key, len, s);
    return 0;
}

/* A count-only figure of the window: whole days from the day (and month)
 * rows, the days it cuts from the exact rows. */
static int load_windowed(loader *l, uint8_t day_kind, uint8_t exact_kind)
{
    const df_figures *f = l->f;
    l->r.each = add_windowed;
    l->r.ctx = l;
    return df_span_window(&l->r, day_kind, exact_kind, f->has_from, f->from, f->has_to, f->to);
}

int df_report_load(df_store *st, MDB_txn *txn, const df_pipeline *p, df_agg_scope scope,
                   df_str value, df_figures *f, df_report_kind kind)
{
    loader l = {.f = f};
    df_str pipeline = {p->name.s, p->name.len};
    int rc;
    if (scope != DF_SCOPE_ALL && value.len > DF_MAX_NAME)
        return 0; /* no deal has such an owner or source: the figures of no deals */
    df_span_init(&l.r, st, txn, pipeline, scope, value);
    if ((rc = load_kind(&l, 'C')) != 0)
        return rc;
    if (kind == DF_REPORT_METRICS) {
        if ((rc = load_kind(&l, 'T')) == 0 && (rc = load_kind(&l, 'V')) == 0 &&
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
