/* forecast.c: calendar periods, the rows behind `forecast` and
 * `calibration`, and the figures read back from them (see forecast.h).
 * Pure: no I/O, no allocation. */
#include "forecast.h"

#include <string.h>

/* ---- periods ---- */

bool df_period_parse(const char *s, size_t len, df_period_kind *out)
{
    static const struct {
        const char *name;
        df_period_kind kind;
    } kinds[] = {
        {"week", DF_PERIOD_WEEK}, {"month", DF_PERIOD_MONTH}, {"quarter", DF_PERIOD_QUARTER}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strlen(kinds[i].name) == len && memcmp(kinds[i].name, s, len) == 0) {
            *out = kinds[i].kind;
            return true;
        }
    }
    return false;
}

int64_t df_period_start(df_period_kind by, int64_t t)
{
    int64_t day = df_day_of(t), y, m;
    if (by == DF_PERIOD_WEEK) {
        int64_t since_monday = (day + 3) % 7; /* 1970-01-01 was a Thursday */
        if (since_monday < 0)
            since_monday += 7;
        return df_day_start(day - since_monday);
    }
    df_civil_from_days(day, &y, &m, NULL);
    if (by == DF_PERIOD_QUARTER)
        m = (m - 1) / 3 * 3 + 1;
    return df_day_start(df_days_from_civil(y, m, 1));
}

int64_t df_period_next(df_period_kind by, int64_t start)
{
    int64_t day = df_day_of(start), y, m;
    if (by == DF_PERIOD_WEEK)
        return df_day_start(day + 7);
    df_civil_from_days(day, &y, &m, NULL);
    m += by == DF_PERIOD_QUARTER ? 3 : 1;
    if (m > 12) {
        m -= 12;
        y++;
    }
    return df_day_start(df_days_from_civil(y, m, 1));
}

int df_periods_make(df_period_kind by, int64_t from, int64_t to, df_period *out, int max)
{
    int n = 0;
    for (int64_t p = df_period_start(by, from); p < to;) {
        int64_t next = df_period_next(by, p);
        if (n == max)
            return -1;
        out[n].start = p > from ? p : from;
        out[n].end = next < to && next > p ? next : to;
        n++;
        if (next <= p)
            break; /* the end of time */
        p = next;
    }
    return n;
}

/* ---- rows ---- */

static void contribute_open(const df_deal *d, const df_key *prefix, int sign, df_row_each add,
                            void *ctx)
{
    df_sums s = {.count = 1};
    df_sums_set_amount(&s, d, d->has_stage ? d->stage_probability : 0);
    for (int exact = 0; exact < 2; exact++) {
        df_key k;
        df_key_copy(&k, prefix);
        k.b[k.len++] = exact ? 'L' : 'K';
        df_key_add_sortable(&k, exact ? d->close_date : df_day_of(d->close_date));
        df_key_add_name(&k, d->stage.s, d->has_stage ? d->stage.len : 0);
        k.b[k.len++] = (uint8_t)(d->has_stage ? d->stage_outcome : DF_OPEN);
        df_row_emit(add, ctx, &k, s, sign);
    }
}

static void contribute_closed(const df_deal *d, const df_key *prefix, const df_name *const *visited,
                              int nvisited, int sign, df_row_each add, void *ctx)
{
    df_sums one = {.count = 1};
    df_key head, k;
    for (int i = 0; i < nvisited; i++) {
        df_key_copy(&k, prefix);
        k.b[k.len++] = 'R';
        df_key_add_sortable(&k, df_day_of(d->stage_since));
        k.b[k.len++] = (uint8_t)d->stage_outcome;
        df_key_add_name(&k, visited[i]->s, visited[i]->len);
        df_row_emit(add, ctx, &k, one, sign);
    }
    df_key_copy(&head, prefix);
    head.b[head.len++] = 'Q';
    df_key_add_sortable(&head, d->stage_since);
    head.b[head.len++] = (uint8_t)d->stage_outcome;
    df_key_copy(&k, &head);
    for (int i = 0; i < nvisited; i++) {
        if (k.len > head.len && k.len + visited[i]->len + 1 > DF_AGG_KEY_MAX) {
            df_row_emit(add, ctx, &k, one, sign);
            df_key_copy(&k, &head);
        }
        df_key_add_name(&k, visited[i]->s, visited[i]->len);
    }
    if (k.len > head.len)
        df_row_emit(add, ctx, &k, one, sign);
}

void df_forecast_contribute(const df_deal *d, const df_key *prefix, const df_name *const *visited,
                            int nvisited, int sign, df_row_each add, void *ctx)
{
    if (d->has_stage && d->stage_outcome != DF_OPEN)
        contribute_closed(d, prefix, visited, nvisited, sign, add, ctx);
    else if (d->has_close_date) /* without one, no row: forecast.h says why */
        contribute_open(d, prefix, sign, add, ctx);
}

bool df_forecast_same(const df_deal *a, const df_deal *b)
{
    return a->has_close_date == b->has_close_date &&
           (!a->has_close_date || a->close_date == b->close_date);
}

/* ---- forecast figures ---- */

/* Splits "K|L time stage NUL outcome". */
static bool parse_open(const uint8_t *key, size_t len, const char **stage, size_t *stage_len,
                       int *outcome)
{
    if (len < 11 || (key[0] != 'K' && key[0] != 'L'))
        return false;
    const uint8_t *nul = memchr(key + 9, 0, len - 9);
    if (!nul || (size_t)(nul - key) + 2 != len)
        return false;
    *stage = (const char *)key + 9;
    *stage_len = (size_t)(nul - (key + 9));
    *outcome = key[len - 1];
    return true;
}

bool df_forecast_add_open(const df_pipeline *p, df_forecast_cell *cell, const uint8_t *key,
                          size_t len, const df_sums *s)
{
    const char *stage;
    size_t stage_len;
    int outcome, index;
    if (!parse_open(key, len, &stage, &stage_len, &outcome))
        return false;
    double weighted = 0;
    if (stage_len > 0) {
        const df_stage_def *def = df_pipeline_stage(p, stage, stage_len, &index);
        if (def && def->outcome != DF_OPEN)
            return true; /* the pipeline has since made the stage won or lost */
        if (!def && outcome != DF_OPEN)
            return true;
        double amount = (double)s->amount_int + s->amount_float;
        weighted = def ? amount * def->probability / 100.0
                       : ((double)s->weighted_int + s->weighted_float) / 100.0;
    }
    df_sums_add(&cell->sums, s, 1);
    cell->weighted += weighted;
    return true;
}

bool df_forecast_won_row(const df_pipeline *p, const uint8_t *key, size_t len, size_t *head_len,
                         int *moved_outcome, int64_t *day)
{
    int index;
    if (len < 2 || key[0] != 'C')
        return false;
    const uint8_t *nul = memchr(key + 1, 0, len - 1);
    if (!nul || (size_t)(nul - key) + 10 != len || nul == key + 1)
        return false;
    size_t stage_len = (size_t)(nul - (key + 1));
    *head_len = stage_len + 3;
    *moved_outcome = key[stage_len + 2];
    *day = df_get_sortable(key + stage_len + 3);
    const df_stage_def *def = df_pipeline_stage(p, (const char *)key + 1, stage_len, &index);
    return def ? def->outcome == DF_WON : *moved_outcome == DF_WON;
}

int df_forecast_period_of(const df_forecast *fc, int64_t t)
{
    int lo = 0, hi = fc->nperiods;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (fc->periods[mid].end <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < fc->nperiods && fc->periods[lo].start <= t ? lo : -1;
}

/* Whether deals in a stage (moved there with that outcome) are open as the
 * pipeline now defines it, and the stage's definition (NULL: removed, or
 * no stage). */
static bool open_now(const df_pipeline *p, const char *stage, size_t len, int moved_outcome,
                     const df_stage_def **def)
{
    int index;
    *def = len ? df_pipeline_stage(p, stage, len, &index) : NULL;
    if (moved_outcome != DF_OPEN)
        return false; /* as K and L rows have it */
    return len == 0 || !*def || (*def)->outcome == DF_OPEN;
}

static df_sums *no_date_row(df_no_date *nd, const char *stage, size_t len, bool dated)
{
    for (int i = 0; i < nd->n; i++)
        if (df_name_eq(&nd->rows[i].stage, stage, len))
            return dated ? &nd->rows[i].dated : &nd->rows[i].all;
    if (nd->n == (int)(sizeof nd->rows / sizeof nd->rows[0]) || len > DF_MAX_NAME)
        return NULL;
    memset(&nd->rows[nd->n], 0, sizeof nd->rows[0]);
    df_name_set(&nd->rows[nd->n].stage, stage, len);
    nd->n++;
    return dated ? &nd->rows[nd->n - 1].dated : &nd->rows[nd->n - 1].all;
}

bool df_no_date_add_current(const df_pipeline *p, df_no_date *nd, const uint8_t *key, size_t len,
                            const df_sums *s)
{
    const df_stage_def *def;
    if (len < 2 || key[0] != 'C')
        return false;
    const uint8_t *nul = memchr(key + 1, 0, len - 1);
    if (!nul || (size_t)(nul - key) + 10 != len)
        return false;
    size_t stage_len = (size_t)(nul - (key + 1));
    if (!open_now(p, (const char *)key + 1, stage_len, key[stage_len + 2], &def))
        return true;
    df_sums *row = no_date_row(nd, (const char *)key + 1, stage_len, false);
    if (row)
        df_sums_add(row, s, 1);
    return true;
}

bool df_no_date_add_dated(const df_pipeline *p, df_no_date *nd, const uint8_t *key, size_t len,
                          const df_sums *s)
{
    const char *stage;
    size_t stage_len;
    int outcome;
    const df_stage_def *def;
    if (!parse_open(key, len, &stage, &stage_len, &outcome))
        return false;
    if (!open_now(p, stage, stage_len, outcome, &def))
        return true;
    df_sums *row = no_date_row(nd, stage, stage_len, true);
    if (row)
        df_sums_add(row, s, 1);
    return true;
}

void df_no_date_result(const df_pipeline *p, const df_no_date *nd, df_forecast_cell *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < nd->n; i++) {
        const df_stage_def *def;
        df_sums rest = nd->rows[i].all;
        df_sums_add(&rest, &nd->rows[i].dated, -1);
        open_now(p, nd->rows[i].stage.s, nd->rows[i].stage.len, DF_OPEN, &def);
        df_sums_add(&out->sums, &rest, 1);
        if (nd->rows[i].stage.len == 0)
            continue; /* no stage: weighs nothing */
        out->weighted +=
            def ? ((double)rest.amount_int + rest.amount_float) * def->probability / 100.0
                : ((double)rest.weighted_int + rest.weighted_float) / 100.0;
    }
}

/* ---- calibration figures ---- */

bool df_calibration_add_row(df_calibration *c, const uint8_t *key, size_t len, const df_sums *s)
{
    if (len < 11 || (key[0] != 'R' && key[0] != 'Q'))
        return false;
    int outcome = key[9];
    size_t at = 10;
    while (at < len) {
        const uint8_t *nul = memchr(key + at, 0, len - at);
        int index;
        if (!nul)
            return false;
        size_t name_len = (size_t)(nul - (key + at));
        if (df_pipeline_stage(c->pipeline, (const char *)key + at, name_len, &index) &&
            index < DF_MAX_STAGES) {
            c->reached[index] += (uint64_t)s->count;
            if (outcome == DF_WON)
                c->won[index] += (uint64_t)s->count;
        }
        at += name_len + 1;
    }
    return true;
}
