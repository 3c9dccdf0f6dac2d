/* deltas.c: the changes a flush makes to the pipeline aggregates, gathered
 * in a table keyed by row (see deltas.h). */
#include "deltas.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

/* The rows one deal's old state takes away, gathered so that those its new
 * state adds back unchanged cancel out before they reach the table (most
 * rows of a changed deal are unchanged). */
#define GATHER_ROWS  512
#define GATHER_BYTES (4 * DF_AGG_LOGICAL_KEY_MAX + 64 * 1024)

typedef struct gathered_row {
    uint32_t offset, len;
    df_sums sums;
    bool cancelled;
} gathered_row;

struct df_agg_deltas {
    df_table *rows; /* logical key -> df_sums */
    gathered_row *taken;
    size_t ntaken;
    uint8_t *keys;
    size_t keys_len;
    bool overflow; /* the old state's rows did not fit: none are gathered */
};

df_agg_deltas *df_agg_deltas_new(void)
{
    df_agg_deltas *d = calloc(1, sizeof(*d));
    if (d &&
        (!(d->rows = df_table_new()) || !(d->taken = malloc(GATHER_ROWS * sizeof(gathered_row))) ||
         !(d->keys = malloc(GATHER_BYTES)))) {
        df_agg_deltas_free(d);
        return NULL;
    }
    return d;
}

void df_agg_deltas_free(df_agg_deltas *d)
{
    if (d) {
        df_table_free(d->rows, free);
        free(d->taken);
        free(d->keys);
        free(d);
    }
}

void df_agg_deltas_clear(df_agg_deltas *d)
{
    df_table_clear(d->rows, free);
}

typedef struct delta_ctx {
    df_agg_deltas *d;
    bool failed;
} delta_ctx;

static void add_delta(void *ctx, const uint8_t *key, size_t len, const df_sums *sums)
{
    delta_ctx *c = ctx;
    bool added;
    void **slot = df_table_put(c->d->rows, (const char *)key, len, &added);
    if (!slot) {
        c->failed = true;
        return;
    }
    if (!*slot && !(*slot = calloc(1, sizeof(df_sums)))) {
        c->failed = true;
        return;
    }
    df_sums_add_change(*slot, sums, 1);
}

static void gather_taken(void *ctx, const uint8_t *key, size_t len, const df_sums *sums)
{
    df_agg_deltas *d = ctx;
    if (d->overflow || d->ntaken == GATHER_ROWS || d->keys_len + len > GATHER_BYTES) {
        d->overflow = true;
        return;
    }
    gathered_row *r = &d->taken[d->ntaken++];
    r->offset = (uint32_t)d->keys_len;
    r->len = (uint32_t)len;
    r->sums = *sums;
    r->cancelled = false;
    memcpy(d->keys + d->keys_len, key, len);
    d->keys_len += len;
}

/* Whether a change of a row changes nothing. Unlike a stored row, whose
 * float sums are rounding left over once no deal with a float amount is
 * in it (df_sums_zero), a change may move float amounts alone: a deal's
 * float amount changed while it stayed in the row. */
static bool delta_zero(const df_sums *s)
{
    return df_sums_zero(s) && s->amount_float == 0 && s->weighted_float == 0;
}

static bool cancels(const df_sums *taken, const df_sums *added)
{
    df_sums sum = *taken;
    df_sums_add_change(&sum, added, 1);
    return delta_zero(&sum);
}

/* A row the new state adds: it cancels a gathered one that took away the
 * same, else it goes to the table. */
static void add_or_cancel(void *ctx, const uint8_t *key, size_t len, const df_sums *sums)
{
    delta_ctx *c = ctx;
    df_agg_deltas *d = c->d;
    for (size_t i = 0; i < d->ntaken; i++) {
        gathered_row *r = &d->taken[i];
        if (!r->cancelled && r->len == len && memcmp(d->keys + r->offset, key, len) == 0 &&
            cancels(&r->sums, sums)) {
            r->cancelled = true;
            return;
        }
    }
    add_delta(ctx, key, len, sums);
}

bool df_agg_deltas_deal(df_agg_deltas *d, const df_deal *before, const df_deal *after)
{
    delta_ctx c = {d, false};
    if (before && after && df_contribution_same_but_idle(before, after)) {
        if (!df_same_idle(before, after)) {
            df_deal_contribute_idle(before, -1, add_delta, &c);
            df_deal_contribute_idle(after, +1, add_delta, &c);
        }
        return !c.failed;
    }
    d->ntaken = d->keys_len = 0;
    d->overflow = false;
    if (before)
        df_deal_contribute(before, -1, gather_taken, d);
    if (d->overflow) { /* a deal with very many stages: no cancelling */
        d->ntaken = 0;
        df_deal_contribute(before, -1, add_delta, &c);
    }
    if (after)
        df_deal_contribute(after, +1, add_or_cancel, &c);
    for (size_t i = 0; i < d->ntaken; i++) {
        if (!d->taken[i].cancelled)
            add_delta(&c, d->keys + d->taken[i].offset, d->taken[i].len, &d->taken[i].sums);
    }
    return !c.failed;
}

size_t df_agg_deltas_count(const df_agg_deltas *d)
{
    return df_table_count(d->rows);
}

/* The month and hour rows the gathered rows change, summed in a table of
 * their own, so that walking never changes the gathered rows. */
static int sum_rollups(df_table *rollups, const df_table_item *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        df_key rollup;
        const df_sums *delta = rows[i].value;
        if (delta_zero(delta) ||
            !df_agg_rollup_row((const uint8_t *)rows[i].key, rows[i].len, &rollup))
            continue;
        bool added;
        void **slot = df_table_put(rollups, (const char *)rollup.b, rollup.len, &added);
        if (!slot || (!*slot && !(*slot = calloc(1, sizeof(df_sums)))))
            return ENOMEM;
        df_sums_add_change(*slot, delta, 1);
    }
    return 0;
}

static int walk(const df_table_item *rows, size_t n, df_agg_each each, void *ctx)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const df_sums *delta = rows[i].value;
        if (!delta_zero(delta))
            rc = each(ctx, (const uint8_t *)rows[i].key, rows[i].len, delta);
    }
    return rc;
}

int df_agg_deltas_each(const df_agg_deltas *d, df_agg_each each, void *ctx)
{
    size_t n = df_table_count(d->rows), nrollups = 0;
    df_table_item *rows = df_table_sorted(d->rows), *rollup_rows = NULL;
    df_table *rollups = df_table_new();
    int rc = (n && !rows) || !rollups ? ENOMEM : 0;
    if (rc == 0)
        rc = sum_rollups(rollups, rows, n);
    if (rc == 0 && (nrollups = df_table_count(rollups)) > 0 &&
        !(rollup_rows = df_table_sorted(rollups)))
        rc = ENOMEM;
    if (rc == 0)
        rc = walk(rows, n, each, ctx);
    if (rc == 0)
        rc = walk(rollup_rows, nrollups, each, ctx);
    free(rows);
    free(rollup_rows);
    if (rollups)
        df_table_free(rollups, free);
    return rc;
}
