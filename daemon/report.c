/* report.c: the `board` and `metrics` replies: a pipeline's figures read
 * from the aggregate rows the store keeps (metrics.h), and packed as the
 * contract defines them. A reply reads a few rows per stage and per day, never
 * the deals themselves. */
#include "report.h"

#include <math.h>
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

int df_report_load(df_store *st, MDB_txn *txn, const df_pipeline *p, const df_str *owner,
                   df_figures *f, bool with_stale)
{
    loader l = {.st = st, .txn = txn, .f = f};
    df_str pipeline = {p->name.s, p->name.len};
    int rc;
    if (owner && owner->len > DF_MAX_NAME)
        return 0; /* no deal has such an owner: the figures of no deals */
    l.prefix_len = df_agg_prefix(l.prefix, pipeline, owner);
    if ((rc = scan_kind(&l, 'C')) != 0 || (rc = scan_kind(&l, 'T')) != 0 ||
        (rc = scan_kind(&l, 'V')) != 0)
        return rc;
    if (!with_stale || owner)
        return 0;
    for (int i = 0; i < f->nstages; i++) {
        df_stage_figures *s = &f->stages[i];
        if (!s->removed && s->outcome == DF_OPEN && s->rot_days >= 0 && s->now_in.count > 0 &&
            (rc = count_stale(&l, pipeline, s)) != 0)
            return rc;
    }
    return 0;
}

static void pack_float_or_nil(msgpack_packer *pk, double v)
{
    if (isnan(v))
        msgpack_pack_nil(pk);
    else
        msgpack_pack_double(pk, v);
}

static void pack_name(msgpack_packer *pk, const df_name *n)
{
    df_pack_str(pk, n->s, n->len);
}

void df_report_pack_board(msgpack_packer *pk, const df_figures *f)
{
    size_t count = 0;
    for (int i = 0; i < f->nstages; i++)
        count += !f->stages[i].removed || f->stages[i].now_in.count > 0;
    df_pack_cstr(pk, "stages");
    msgpack_pack_array(pk, count);
    for (int i = 0; i < f->nstages; i++) {
        const df_stage_figures *s = &f->stages[i];
        if (s->removed && s->now_in.count == 0)
            continue; /* a stage deals visited but none sits in now */
        double avg_days = 0;
        if (s->now_in.count > 0) {
            double elapsed = (double)s->now_in.count * ((double)f->now - (double)DF_AGG_EPOCH) -
                             (double)s->now_in.since_sum;
            avg_days = elapsed / (double)s->now_in.count / (double)DF_DAY_MS;
        }
        msgpack_pack_map(pk, 7);
        df_pack_cstr(pk, "stage");
        pack_name(pk, &s->stage);
        df_pack_cstr(pk, "count");
        msgpack_pack_uint64(pk, (uint64_t)s->now_in.count);
        df_pack_cstr(pk, "amount");
        df_pack_num(pk, df_sums_amount(&s->now_in));
        df_pack_cstr(pk, "weighted");
        msgpack_pack_double(pk, s->weighted);
        df_pack_cstr(pk, "avg_days_in_stage");
        msgpack_pack_double(pk, avg_days);
        df_pack_cstr(pk, "stale");
        msgpack_pack_uint64(pk, s->stale);
        df_pack_cstr(pk, "removed");
        if (s->removed)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
    }
}

void df_report_pack_metrics(msgpack_packer *pk, const df_figures *f)
{
    static df_metrics m; /* the loop thread is the only caller */
    df_metrics_compute(f, &m);
    df_pack_cstr(pk, "won");
    msgpack_pack_uint64(pk, m.won);
    df_pack_cstr(pk, "lost");
    msgpack_pack_uint64(pk, m.lost);
    df_pack_cstr(pk, "win_rate");
    pack_float_or_nil(pk, m.win_rate);
    df_pack_cstr(pk, "avg_cycle_days");
    pack_float_or_nil(pk, m.avg_cycle_days);

    size_t visited = 0;
    for (int i = 0; i < f->nstages; i++)
        visited += f->stages[i].visited > 0;
    df_pack_cstr(pk, "avg_days_in_stage");
    msgpack_pack_map(pk, visited);
    for (int i = 0; i < f->nstages; i++) {
        const df_stage_figures *s = &f->stages[i];
        if (s->visited == 0)
            continue;
        pack_name(pk, &s->stage);
        msgpack_pack_double(pk, s->visit_ms / (double)s->visited / (double)DF_DAY_MS);
    }

    df_pack_cstr(pk, "conversion");
    msgpack_pack_array(pk, (size_t)m.nconversions);
    for (int i = 0; i < m.nconversions; i++) {
        msgpack_pack_map(pk, 3);
        df_pack_cstr(pk, "from");
        pack_name(pk, &f->stages[m.conversions[i].from].stage);
        df_pack_cstr(pk, "to");
        pack_name(pk, &f->stages[m.conversions[i].to].stage);
        df_pack_cstr(pk, "rate");
        pack_float_or_nil(pk, m.conversions[i].rate);
    }
    df_pack_cstr(pk, "open");
    msgpack_pack_uint64(pk, m.open);
    df_pack_cstr(pk, "open_amount");
    df_pack_num(pk, m.open_amount);
    df_pack_cstr(pk, "weighted");
    msgpack_pack_double(pk, m.weighted);
    df_pack_cstr(pk, "velocity");
    pack_float_or_nil(pk, m.velocity);
}
