/* outlook.c: `forecast` and `calibration` from the aggregate rows (see
 * forecast.h for them). Like a report, it reads a few rows per stage and
 * per month, and per day of the months a window cuts, never the deals
 * themselves. */
#include "outlook.h"

#include <math.h>
#include <string.h>

#include "aggregates.h"
#include "reply.h"
#include "span.h"

/* ---- forecast ---- */

typedef struct open_sum {
    const df_pipeline *pipeline;
    df_forecast_cell *cell; /* NULL: none */
    df_no_date *dated;      /* NULL: none */
} open_sum;

static int add_open(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    open_sum *o = ctx;
    /* damaged rows are left out */
    if (o->cell)
        df_forecast_add_open(o->pipeline, o->cell, key, len, s);
    if (o->dated)
        df_no_date_add_dated(o->pipeline, o->dated, key, len, s);
    return 0;
}

typedef struct won_sum {
    df_span_reader *r;
    df_forecast *fc;
    int64_t from, to; /* the periods' span */
    int rc;
} won_sum;

static int add_won_entry(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    won_sum *w = ctx;
    if (len < 9)
        return 0;
    int i = df_forecast_period_of(w->fc, df_get_sortable(key + len - 8));
    if (i >= 0)
        df_sums_add(&w->fc->won[i], s, 1);
    return 0;
}

/* A C row of won deals: whole days count by the day, the days the span
 * cuts by the E rows of the part it holds. */
static int add_won(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    won_sum *w = ctx;
    df_no_date_add_current(w->fc->pipeline, &w->fc->no_date_rows, key, len, s);
    if (w->fc->nperiods == 0)
        return 0;
    size_t head_len;
    int moved_outcome;
    int64_t day;
    if (!df_forecast_won_row(w->fc->pipeline, key, len, &head_len, &moved_outcome, &day))
        return 0;
    int64_t start = df_day_start(day), end = start + DF_DAY_MS;
    if (end <= w->from || start >= w->to)
        return 0;
    /* A stage made won by a pipeline event has no E rows: its deals count
     * by the day they moved there. */
    if ((start >= w->from && end <= w->to) || moved_outcome == DF_OPEN) {
        int i = df_forecast_period_of(w->fc, start);
        if (i >= 0)
            df_sums_add(&w->fc->won[i], s, 1);
        return 0;
    }
    df_span_reader entries = *w->r;
    entries.each = add_won_entry;
    entries.ctx = w;
    w->rc = df_span_hours(&entries, 'E', key + 1, head_len - 1, start > w->from ? start : w->from,
                          end < w->to ? end : w->to);
    return w->rc != 0;
}

/* A month of C rows is taken at once unless it holds won deals and the
 * periods' span meets it: their days then fall in different periods. */
static bool won_days_alike(void *ctx, const uint8_t *key, size_t len, int64_t first_day,
                           int64_t end_day)
{
    const won_sum *w = ctx;
    size_t head_len;
    int moved_outcome;
    int64_t day;
    if (w->fc->nperiods == 0 ||
        !df_forecast_won_row(w->fc->pipeline, key, len, &head_len, &moved_outcome, &day))
        return true;
    return df_day_start(end_day) <= w->from || df_day_start(first_day) >= w->to;
}

int df_forecast_load(df_store *st, MDB_txn *txn, df_agg_scope scope, df_str value, int64_t now,
                     df_forecast *fc)
{
    df_span_reader r;
    int rc = 0;
    memset(fc->open, 0, sizeof fc->open);
    memset(fc->won, 0, sizeof fc->won);
    memset(&fc->overdue, 0, sizeof fc->overdue);
    memset(&fc->no_date, 0, sizeof fc->no_date);
    if (scope != DF_SCOPE_ALL && value.len > DF_MAX_NAME)
        return 0; /* no deal has such an owner or source */
    df_span_init(&r, st, txn, (df_str){fc->pipeline->name.s, fc->pipeline->name.len}, scope, value);
    open_sum o = {.pipeline = fc->pipeline};
    r.each = add_open;
    r.ctx = &o;
    for (int i = 0; i < fc->nperiods && rc == 0; i++) {
        o.cell = &fc->open[i];
        rc = df_span_window(&r, 'K', 'L', true, fc->periods[i].start, true, fc->periods[i].end);
    }
    /* every dated open deal: the overdue ones, then the others */
    fc->no_date_rows.n = 0;
    o.cell = &fc->overdue;
    o.dated = &fc->no_date_rows;
    if (rc == 0)
        rc = df_span_window(&r, 'K', 'L', false, 0, true, now);
    o.cell = NULL;
    if (rc == 0)
        rc = df_span_window(&r, 'K', 'L', true, now, false, 0);
    if (rc != 0)
        return rc;

    won_sum w = {.r = &r, .fc = fc};
    if (fc->nperiods > 0) {
        w.from = fc->periods[0].start;
        w.to = fc->periods[fc->nperiods - 1].end;
    }
    r.each = add_won;
    r.ctx = &w;
    rc = df_span_months(&r, 'C', won_days_alike, &w);
    if (rc == 0 && w.rc == 0)
        df_no_date_result(fc->pipeline, &fc->no_date_rows, &fc->no_date);
    return rc ? rc : w.rc;
}

/* ---- calibration ---- */

static int add_calibration(void *ctx, const uint8_t *key, size_t len, const df_sums *s)
{
    df_calibration_add_row(ctx, key, len, s); /* damaged rows are left out */
    return 0;
}

int df_calibration_load(df_store *st, MDB_txn *txn, df_agg_scope scope, df_str value, bool has_from,
                        int64_t from, bool has_to, int64_t to, df_calibration *c)
{
    df_span_reader r;
    memset(c->reached, 0, sizeof c->reached);
    memset(c->won, 0, sizeof c->won);
    if (scope != DF_SCOPE_ALL && value.len > DF_MAX_NAME)
        return 0;
    df_span_init(&r, st, txn, (df_str){c->pipeline->name.s, c->pipeline->name.len}, scope, value);
    r.each = add_calibration;
    r.ctx = c;
    return df_span_window(&r, 'R', 'Q', has_from, from, has_to, to);
}

/* ---- replies ---- */

static void pack_cell(msgpack_packer *pk, const df_forecast_cell *cell)
{
    msgpack_pack_map(pk, 3);
    df_pack_count_amount_weighted(pk, &cell->sums, cell->weighted);
}

void df_reply_forecast(msgpack_packer *pk, const df_forecast *fc)
{
    df_reply_ok(pk, 3);
    df_pack_cstr(pk, "periods");
    msgpack_pack_array(pk, (size_t)fc->nperiods);
    for (int i = 0; i < fc->nperiods; i++) {
        const df_forecast_cell *cell = &fc->open[i];
        msgpack_pack_map(pk, 7);
        df_pack_cstr(pk, "start");
        msgpack_pack_int64(pk, fc->periods[i].start);
        df_pack_cstr(pk, "end");
        msgpack_pack_int64(pk, fc->periods[i].end);
        df_pack_count_amount_weighted(pk, &cell->sums, cell->weighted);
        df_pack_cstr(pk, "won_count");
        msgpack_pack_uint64(pk, (uint64_t)fc->won[i].count);
        df_pack_cstr(pk, "won_amount");
        df_pack_num(pk, df_sums_amount(&fc->won[i]));
    }
    df_pack_cstr(pk, "overdue");
    pack_cell(pk, &fc->overdue);
    df_pack_cstr(pk, "no_date");
    pack_cell(pk, &fc->no_date);
}

void df_reply_calibration(msgpack_packer *pk, const df_calibration *c)
{
    const df_pipeline *p = c->pipeline;
    df_reply_ok(pk, 1);
    df_pack_cstr(pk, "stages");
    msgpack_pack_array(pk, (size_t)p->nstages);
    for (int i = 0; i < p->nstages; i++) {
        msgpack_pack_map(pk, 5);
        df_pack_cstr(pk, "stage");
        df_pack_str(pk, p->stages[i].name.s, p->stages[i].name.len);
        df_pack_cstr(pk, "configured");
        msgpack_pack_int64(pk, p->stages[i].probability);
        df_pack_cstr(pk, "reached");
        msgpack_pack_uint64(pk, c->reached[i]);
        df_pack_cstr(pk, "won");
        msgpack_pack_uint64(pk, c->won[i]);
        df_pack_cstr(pk, "actual");
        if (c->reached[i])
            msgpack_pack_double(pk, (double)c->won[i] / (double)c->reached[i]);
        else
            msgpack_pack_nil(pk);
    }
}
