/* metrics.c: what a deal contributes to the pipeline aggregates, and the
 * board and metrics figures computed back from them (see metrics.h for the
 * rows). Pure: no I/O, no allocation. */
#include "metrics.h"

#include <math.h>
#include <string.h>

#include "forecast.h"

/* ---- sums ---- */

static int64_t wrap(int64_t s, int sign, int64_t v)
{
    uint64_t u = (uint64_t)v;
    return (int64_t)(sign > 0 ? (uint64_t)s + u : (uint64_t)s - u);
}

static df_wide wrap_wide(df_wide s, int sign, df_wide v)
{
    unsigned __int128 u = (unsigned __int128)v;
    return (df_wide)(sign > 0 ? (unsigned __int128)s + u : (unsigned __int128)s - u);
}

void df_sums_add_change(df_sums *sum, const df_sums *add, int sign)
{
    sum->count = wrap(sum->count, sign, add->count);
    sum->amount_int = wrap_wide(sum->amount_int, sign, add->amount_int);
    sum->float_count = wrap(sum->float_count, sign, add->float_count);
    sum->weighted_int = wrap_wide(sum->weighted_int, sign, add->weighted_int);
    sum->since_sum = wrap_wide(sum->since_sum, sign, add->since_sum);
    sum->cycle_sum = wrap_wide(sum->cycle_sum, sign, add->cycle_sum);
    sum->ms_sum = wrap_wide(sum->ms_sum, sign, add->ms_sum);
    sum->amount_float += sign * add->amount_float;
    sum->weighted_float += sign * add->weighted_float;
}

void df_sums_add(df_sums *sum, const df_sums *add, int sign)
{
    df_sums_add_change(sum, add, sign);
    if (sum->float_count == 0) {
        /* no drift once the last float amount has left */
        sum->amount_float = 0;
        sum->weighted_float = 0;
    }
}

bool df_sums_zero(const df_sums *s)
{
    return s->count == 0 && s->amount_int == 0 && s->float_count == 0 && s->weighted_int == 0 &&
           s->since_sum == 0 && s->cycle_sum == 0 && s->ms_sum == 0;
}

df_num df_sums_amount(const df_sums *s)
{
    if (s->float_count == 0 && s->amount_int >= INT64_MIN && s->amount_int <= INT64_MAX)
        return (df_num){.kind = DF_NUM_INT, .i = (int64_t)s->amount_int};
    return (df_num){.kind = DF_NUM_FLOAT, .f = (double)s->amount_int + s->amount_float};
}

/* ---- the calendar ---- */

int64_t df_month_first_day(int64_t day)
{
    int64_t y, m;
    df_civil_from_days(day, &y, &m, NULL);
    return df_days_from_civil(y, m, 1);
}

int64_t df_month_next_day(int64_t day)
{
    int64_t y, m;
    df_civil_from_days(day, &y, &m, NULL);
    return m == 12 ? df_days_from_civil(y + 1, 1, 1) : df_days_from_civil(y, m + 1, 1);
}

/* ---- keys ---- */

int64_t df_day_of(int64_t t)
{
    int64_t day = t / DF_DAY_MS;
    return t % DF_DAY_MS < 0 ? day - 1 : day;
}

size_t df_agg_scope_prefix(uint8_t *out, df_str pipeline, df_agg_scope scope, df_str value)
{
    /* only the bytes written are read: zeroing all 8 KiB of the key was most
     * of a deal's contribution */
    df_key k;
    k.len = 0;
    df_key_add_name(&k, pipeline.ptr, pipeline.len);
    k.b[k.len++] = (uint8_t)scope;
    if (scope != DF_SCOPE_ALL)
        df_key_add_name(&k, value.ptr, value.len);
    memcpy(out, k.b, k.len);
    return k.len;
}

size_t df_agg_prefix(uint8_t *out, df_str pipeline, const df_str *owner)
{
    if (owner)
        return df_agg_scope_prefix(out, pipeline, DF_SCOPE_OWNER, *owner);
    return df_agg_scope_prefix(out, pipeline, DF_SCOPE_ALL, (df_str){NULL, 0});
}

bool df_agg_product_scoped(const char *product, size_t len)
{
    return len <= DF_MAX_NAME && (len == 0 || !memchr(product, 0, len));
}

/* Where the kind byte of a key is: after "pipeline NUL" and the scope ("A",
 * or "O owner NUL", "P product NUL", "S source NUL"). 0 when the key is
 * malformed. */
static size_t kind_offset(const uint8_t *key, size_t len)
{
    const uint8_t *nul = memchr(key, 0, len);
    if (!nul || (size_t)(nul - key) + 2 >= len)
        return 0;
    size_t at = (size_t)(nul - key) + 1;
    if (key[at] == 'A')
        return at + 1 < len ? at + 1 : 0;
    if ((key[at] != 'O' && key[at] != 'P' && key[at] != 'S') ||
        !(nul = memchr(key + at, 0, len - at)))
        return 0;
    at = (size_t)(nul - key) + 1;
    return at < len ? at : 0;
}

bool df_agg_rollup_kind(uint8_t kind)
{
    return kind == 'c' || kind == 'i' || kind == 'n' || kind == 'f' || kind == 'k' || kind == 'r' ||
           kind == 'e' || kind == 'm' || kind == 'g' || kind == 'l' || kind == 'q';
}

uint8_t df_agg_rolled_kind(uint8_t rollup_kind)
{
    return (uint8_t)(rollup_kind - 'a' + 'A');
}

int64_t df_hour_of(int64_t t)
{
    int64_t hour = t / DF_HOUR_MS - (t % DF_HOUR_MS < 0);
    return hour < INT64_MIN / DF_HOUR_MS + 1 ? INT64_MIN : hour * DF_HOUR_MS;
}

bool df_agg_scope_has_hours(df_agg_scope scope)
{
    return scope != DF_SCOPE_OWNER;
}

bool df_agg_rollup_row(const uint8_t *key, size_t len, df_key *out)
{
    size_t at = kind_offset(key, len), time_at;
    bool by_day;
    if (at == 0 || len > sizeof out->b || len < at + 9)
        return false;
    switch (key[at]) {
    case 'C':
    case 'I':
    case 'E': /* the time ends the key */
        time_at = len - 8;
        by_day = key[at] != 'E';
        break;
    case 'N':
    case 'F':
    case 'K':
    case 'R':
    case 'M':
    case 'G':
    case 'L':
    case 'Q': /* the time follows the kind */
        time_at = at + 1;
        by_day = key[at] == 'N' || key[at] == 'F' || key[at] == 'K' || key[at] == 'R';
        break;
    default:
        return false;
    }
    if (!by_day) {
        const uint8_t *nul = memchr(key, 0, len); /* kind_offset found it */
        if (!df_agg_scope_has_hours((df_agg_scope)nul[1]))
            return false;
    }
    memcpy(out->b, key, len);
    out->len = len;
    out->b[at] = (uint8_t)(key[at] - 'A' + 'a');
    int64_t t = df_get_sortable(key + time_at);
    df_put_sortable(out->b + time_at, by_day ? df_month_first_day(t) : df_hour_of(t));
    return true;
}

static uint64_t fnv1a(const uint8_t *p, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

bool df_agg_slot_at(df_agg_slot *s, const uint8_t *key, size_t len, int probe)
{
    size_t kind_at = kind_offset(key, len);
    if (kind_at == 0)
        return false;
    if (key[kind_at] != 'V') {
        if (probe != 0 || len > DF_AGG_KEY_MAX)
            return false;
        memcpy(s->key, key, len);
        s->len = len;
        s->names = NULL;
        s->names_len = 0;
        return true;
    }
    if (probe < 0 || probe >= DF_AGG_PROBES || kind_at + 9 > DF_AGG_KEY_MAX)
        return false;
    s->names = key + kind_at + 1;
    s->names_len = len - kind_at - 1;
    memcpy(s->key, key, kind_at + 1);
    df_put_be64(s->key + kind_at + 1, fnv1a(s->names, s->names_len) + (uint64_t)probe);
    s->len = kind_at + 9;
    return true;
}

const uint8_t *df_agg_row_key(const uint8_t *key, size_t len, const df_sums *sums,
                              const uint8_t *names, size_t names_len, uint8_t *buf, size_t *row_len)
{
    size_t kind_at = kind_offset(key, len);
    if (kind_at == 0 || key[kind_at] != 'V') {
        *row_len = len;
        return key; /* a malformed key is the figures' to refuse */
    }
    if (sums->count == 0 || kind_at + 1 + names_len > DF_AGG_LOGICAL_KEY_MAX)
        return NULL;
    memcpy(buf, key, kind_at + 1);
    memcpy(buf + kind_at + 1, names, names_len);
    *row_len = kind_at + 1 + names_len;
    return buf;
}

/* ---- contributions ---- */

static int compare_names(const void *a, const void *b)
{
    const df_name *x = *(const df_name *const *)a, *y = *(const df_name *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (int)x->len - (int)y->len;
}

void df_sums_set_amount(df_sums *s, const df_deal *d, int probability)
{
    if (d->amount.kind == DF_NUM_INT) {
        s->amount_int = d->amount.i;
        s->weighted_int = (df_wide)d->amount.i * probability;
    } else if (d->amount.kind == DF_NUM_FLOAT) {
        s->amount_float = d->amount.f;
        s->weighted_float = d->amount.f * probability;
        s->float_count = 1;
    }
}

void df_row_emit(df_row_each add, void *ctx, const df_key *k, df_sums s, int sign)
{
    if (sign < 0) {
        df_sums zero = {0};
        df_sums_add(&zero, &s, -1);
        s = zero;
    }
    add(ctx, k->b, k->len, &s);
}

static void contribute_scope(const df_deal *d, const df_key *prefix, const df_name *const *visited,
                             int nvisited, int sign, df_row_each add, void *ctx)
{
    df_key k;
    df_sums s = {.count = 1};
    df_key_copy(&k, prefix);
    /* C: where the deal is now */
    k.b[k.len++] = 'C';
    if (d->has_stage) {
        df_key_add_name(&k, d->stage.s, d->stage.len);
        k.b[k.len++] = (uint8_t)d->stage_outcome;
        df_key_add_sortable(&k, df_day_of(d->stage_since));
        df_sums_set_amount(&s, d, d->stage_probability);
        s.since_sum = (df_wide)d->stage_since - DF_AGG_EPOCH;
        s.cycle_sum = (df_wide)d->stage_since - d->created;
    } else {
        df_key_add_name(&k, "", 0);
        k.b[k.len++] = DF_OPEN;
        df_key_add_sortable(&k, 0);
        df_sums_set_amount(&s, d, 0);
    }
    df_row_emit(add, ctx, &k, s, sign);

    /* E: when a closed deal closed, to the ms */
    if (d->has_stage && d->stage_outcome != DF_OPEN) {
        df_key_copy(&k, prefix);
        k.b[k.len++] = 'E';
        df_key_add_name(&k, d->stage.s, d->stage.len);
        k.b[k.len++] = (uint8_t)d->stage_outcome;
        df_key_add_sortable(&k, d->stage_since);
        s.since_sum = s.weighted_int = 0;
        s.weighted_float = 0;
        df_row_emit(add, ctx, &k, s, sign);
    }

    /* T: each stage it has been in, with its finished visits */
    for (int i = 0; i < nvisited; i++) {
        df_key_copy(&k, prefix);
        k.b[k.len++] = 'T';
        df_key_add(&k, visited[i]->s, visited[i]->len);
        df_sums t = {.count = 1};
        for (int j = 0; j < d->nstage_times; j++) {
            if (&d->stage_times[j].stage == visited[i])
                t.ms_sum = d->stage_times[j].ms;
        }
        df_row_emit(add, ctx, &k, t, sign);
    }

    /* N, M: when it was created */
    df_key_copy(&k, prefix);
    k.b[k.len++] = 'N';
    df_key_add_sortable(&k, df_day_of(d->created));
    df_row_emit(add, ctx, &k, (df_sums){.count = 1}, sign);
    df_key_copy(&k, prefix);
    k.b[k.len++] = 'M';
    df_key_add_sortable(&k, d->created);
    df_row_emit(add, ctx, &k, (df_sums){.count = 1}, sign);

    /* F, G: when a lost deal was lost, from where and why */
    if (d->has_stage && d->stage_outcome == DF_LOST) {
        for (int exact = 0; exact < 2; exact++) {
            df_key_copy(&k, prefix);
            k.b[k.len++] = exact ? 'G' : 'F';
            df_key_add_sortable(&k, exact ? d->stage_since : df_day_of(d->stage_since));
            df_key_add_name(&k, d->last_open.s, d->has_last_open ? d->last_open.len : 0);
            df_key_add_name(&k, d->reason.s, d->has_reason ? d->reason.len : 0);
            df_row_emit(add, ctx, &k, (df_sums){.count = 1}, sign);
        }
    }

    /* V: the set of stages it has been in */
    if (nvisited > 0) {
        df_key_copy(&k, prefix);
        k.b[k.len++] = 'V';
        for (int i = 0; i < nvisited; i++)
            df_key_add_name(&k, visited[i]->s, visited[i]->len);
        df_row_emit(add, ctx, &k, (df_sums){.count = 1}, sign);
    }
    df_forecast_contribute(d, prefix, visited, nvisited, sign, add, ctx);
}

void df_deal_contribute(const df_deal *d, int sign, df_row_each add, void *ctx)
{
    const df_name *visited[DF_MAX_STAGES + 1];
    int nvisited = 0;
    bool current_seen = false;
    for (int i = 0; i < d->nstage_times && i < DF_MAX_STAGES; i++) {
        visited[nvisited++] = &d->stage_times[i].stage;
        if (d->has_stage && d->stage_times[i].stage.len == d->stage.len &&
            memcmp(d->stage_times[i].stage.s, d->stage.s, d->stage.len) == 0)
            current_seen = true;
    }
    if (d->has_stage && !current_seen)
        visited[nvisited++] = &d->stage;
    /* a handful of names: insertion sort */
    for (int i = 1; i < nvisited; i++) {
        const df_name *name = visited[i];
        int j = i;
        for (; j > 0 && compare_names(&visited[j - 1], &name) > 0; j--)
            visited[j] = visited[j - 1];
        visited[j] = name;
    }

    df_str pipeline = df_deal_pipeline(d);
    df_key prefix;
    prefix.len = df_agg_prefix(prefix.b, pipeline, NULL);
    contribute_scope(d, &prefix, visited, nvisited, sign, add, ctx);
    if (d->has_owner) {
        df_str owner = {d->owner.s, d->owner.len};
        prefix.len = df_agg_prefix(prefix.b, pipeline, &owner);
        contribute_scope(d, &prefix, visited, nvisited, sign, add, ctx);
    }
    if (d->has_product && df_agg_product_scoped(d->product.s, d->product.len)) {
        df_str product = {d->product.s, d->product.len};
        prefix.len = df_agg_scope_prefix(prefix.b, pipeline, DF_SCOPE_PRODUCT, product);
        contribute_scope(d, &prefix, visited, nvisited, sign, add, ctx);
    }
    if (d->has_source) {
        df_str source = {d->source.s, d->source.len};
        prefix.len = df_agg_scope_prefix(prefix.b, pipeline, DF_SCOPE_SOURCE, source);
        contribute_scope(d, &prefix, visited, nvisited, sign, add, ctx);
    }

    df_deal_contribute_idle(d, sign, add, ctx);
}

static bool same_num(df_num a, df_num b)
{
    return a.kind == b.kind && (a.kind != DF_NUM_INT || a.i == b.i) &&
           (a.kind != DF_NUM_FLOAT || memcmp(&a.f, &b.f, sizeof a.f) == 0);
}

bool df_contribution_same_but_idle(const df_deal *a, const df_deal *b)
{
    if (a->pipeline.len != b->pipeline.len ||
        memcmp(a->pipeline.s, b->pipeline.s, a->pipeline.len) != 0 ||
        a->has_owner != b->has_owner || a->owner.len != b->owner.len ||
        memcmp(a->owner.s, b->owner.s, a->owner.len) != 0 || a->has_stage != b->has_stage ||
        a->stage.len != b->stage.len || memcmp(a->stage.s, b->stage.s, a->stage.len) != 0 ||
        a->stage_outcome != b->stage_outcome || a->stage_probability != b->stage_probability ||
        a->stage_since != b->stage_since || a->created != b->created ||
        !same_num(a->amount, b->amount) || a->nstage_times != b->nstage_times ||
        a->has_product != b->has_product || a->product.len != b->product.len ||
        memcmp(a->product.s, b->product.s, a->product.len) != 0 || a->has_source != b->has_source ||
        !df_name_same(&a->source, &b->source) || a->has_last_open != b->has_last_open ||
        !df_name_same(&a->last_open, &b->last_open) || a->has_reason != b->has_reason ||
        !df_name_same(&a->reason, &b->reason) || !df_forecast_same(a, b))
        return false;
    for (int i = 0; i < a->nstage_times; i++) {
        const df_stage_time *x = &a->stage_times[i], *y = &b->stage_times[i];
        if (x->ms != y->ms || x->stage.len != y->stage.len ||
            memcmp(x->stage.s, y->stage.s, x->stage.len) != 0)
            return false;
    }
    return true;
}

bool df_same_idle(const df_deal *a, const df_deal *b)
{
    return a->has_stage == b->has_stage &&
           (!a->has_stage || df_deal_idle_since(a) == df_deal_idle_since(b));
}

void df_deal_contribute_idle(const df_deal *d, int sign, df_row_each add, void *ctx)
{
    df_str pipeline = df_deal_pipeline(d);
    /* I: when it went idle, for the stale counts of the board */
    if (d->has_stage) {
        df_key k;
        k.len = df_agg_prefix(k.b, pipeline, NULL);
        k.b[k.len++] = 'I';
        df_key_add_name(&k, d->stage.s, d->stage.len);
        df_key_add_sortable(&k, df_day_of(df_deal_idle_since(d)));
        df_row_emit(add, ctx, &k, (df_sums){.count = 1}, sign);
    }
}

/* ---- figures ---- */

int64_t df_day_start(int64_t day)
{
    int64_t start;
    if (__builtin_mul_overflow(day, DF_DAY_MS, &start))
        return day < 0 ? INT64_MIN : INT64_MAX - DF_DAY_MS;
    return start > INT64_MAX - DF_DAY_MS ? INT64_MAX - DF_DAY_MS : start;
}

void df_figures_init(df_figures *f, const df_pipeline *p, int64_t now)
{
    memset(f, 0, sizeof(*f));
    f->pipeline = p;
    f->now = now;
    for (int i = 0; i < p->nstages; i++) {
        df_stage_figures *s = &f->stages[f->nstages++];
        s->stage = p->stages[i].name;
        s->outcome = p->stages[i].outcome;
        s->probability = p->stages[i].probability;
        s->rot_days = p->stages[i].rot_days;
    }
}

df_stage_figures *df_figures_stage(df_figures *f, const char *name, size_t len)
{
    for (int i = 0; i < f->nstages; i++) {
        if (df_name_eq(&f->stages[i].stage, name, len))
            return &f->stages[i];
    }
    return NULL;
}

/* The figures of a stage name, added as a removed stage when the pipeline
 * does not have it. NULL when there is no room left. */
static df_stage_figures *stage_or_removed(df_figures *f, const char *name, size_t len, int outcome)
{
    df_stage_figures *s = df_figures_stage(f, name, len);
    if (s)
        return s;
    if (f->nstages >= 2 * DF_MAX_STAGES || len > DF_MAX_NAME)
        return NULL; /* see df_figures: further names are left out */
    s = &f->stages[f->nstages++];
    memset(s, 0, sizeof(*s));
    df_name_set(&s->stage, name, len);
    s->removed = true;
    s->outcome = outcome;
    s->probability = -1;
    s->rot_days = -1;
    return s;
}

/* Splits "name NUL rest": the name, and where the rest starts. */
static bool take_name(const uint8_t *key, size_t len, size_t *at, const char **name,
                      size_t *name_len)
{
    const uint8_t *nul = memchr(key + *at, 0, len - *at);
    if (!nul)
        return false;
    *name = (const char *)key + *at;
    *name_len = (size_t)(nul - (key + *at));
    *at += *name_len + 1;
    return true;
}

static void add_closed(df_figures *f, df_stage_figures *s, int outcome, const df_sums *sums)
{
    if (outcome == DF_WON) {
        df_sums_add(&s->won, sums, 1);
        df_sums_add(&f->won, sums, 1);
    } else if (outcome == DF_LOST) {
        df_sums_add(&s->lost, sums, 1);
        df_sums_add(&f->lost, sums, 1);
    }
}

void df_figures_day_window(const df_figures *f, int64_t day, int64_t *lo, int64_t *hi)
{
    int64_t start = df_day_start(day), end = start + DF_DAY_MS;
    *lo = f->has_from && f->from > start ? f->from : start;
    *hi = f->has_to && f->to < end ? f->to : end;
}

/* Whether closed deals of that day count: 1 all, 0 none, -1 some. */
static int day_in_window(const df_figures *f, int64_t day)
{
    int64_t start = df_day_start(day), end = start + DF_DAY_MS;
    if ((f->has_from && end <= f->from) || (f->has_to && start >= f->to) ||
        (f->has_from && f->has_to && f->from >= f->to))
        return 0;
    if ((f->has_from && start < f->from) || (f->has_to && end > f->to))
        return -1;
    return 1;
}

static bool add_current(df_figures *f, const uint8_t *key, size_t len, const df_sums *s,
                        bool *needs_entries)
{
    size_t at = 1;
    const char *name;
    size_t name_len;
    if (!take_name(key, len, &at, &name, &name_len) || len != at + 9)
        return false;
    int moved_outcome = key[at];
    int64_t day = df_get_sortable(key + at + 1);
    double amount = (double)s->amount_int + s->amount_float;
    if (name_len == 0) { /* deals without a stage yet: open, weighing nothing */
        df_sums_add(&f->open, s, 1);
        return true;
    }
    df_stage_figures *st = stage_or_removed(f, name, name_len, moved_outcome);
    if (!st)
        return true;
    df_sums_add(&st->now_in, s, 1);
    double weighted = st->removed ? ((double)s->weighted_int + s->weighted_float) / 100.0
                                  : amount * st->probability / 100.0;
    st->weighted += weighted;
    /* the current visits, up to now, for the mean time in the stage */
    double elapsed =
        (double)s->count * ((double)f->now - (double)DF_AGG_EPOCH) - (double)s->since_sum;
    if (elapsed > 0)
        st->visit_ms += elapsed;
    /* Deals that moved there on a day after now have been in it 0 days, not
     * less: a row holds one day's moves, so only now's own day is summed
     * before it is clamped. */
    if (elapsed > 0 && day <= df_day_of(f->now))
        st->in_stage_ms += elapsed;
    if (st->outcome == DF_OPEN) {
        df_sums_add(&f->open, s, 1);
        f->open_weighted += weighted;
        return true;
    }
    int in_window = day_in_window(f, day);
    if (in_window < 0 && moved_outcome != DF_OPEN) {
        *needs_entries = true; /* the caller adds that day's E rows */
        return true;
    }
    /* A stage that became closed when its pipeline was replaced has no E
     * rows: its deals count by the day they moved there. */
    if (in_window != 0) {
        int64_t start = df_day_start(day);
        if (in_window > 0 || ((!f->has_from || start >= f->from) && (!f->has_to || start < f->to)))
            add_closed(f, st, st->outcome, s);
    }
    return true;
}

bool df_figures_days_alike(const df_figures *f, int64_t first_day, int64_t end_day)
{
    if (end_day > df_day_of(f->now))
        return false;
    int64_t start = df_day_start(first_day), end = df_day_start(end_day);
    bool inside = (!f->has_from || start >= f->from) && (!f->has_to || end <= f->to);
    bool outside = (f->has_from && end <= f->from) || (f->has_to && start >= f->to) ||
                   (f->has_from && f->has_to && f->from >= f->to);
    return inside || outside;
}

bool df_figures_add_closed(df_figures *f, const uint8_t *key, size_t len, const df_sums *s)
{
    size_t at = 1;
    const char *name;
    size_t name_len;
    if (len < 1 || key[0] != 'E' || !take_name(key, len, &at, &name, &name_len) || len != at + 9)
        return false;
    df_stage_figures *st = stage_or_removed(f, name, name_len, key[at]);
    if (st)
        add_closed(f, st, st->outcome, s);
    return true;
}

static bool add_visits(df_figures *f, const uint8_t *key, size_t len, const df_sums *s)
{
    if (len < 2 || len - 1 > DF_MAX_NAME)
        return false;
    df_stage_figures *st = stage_or_removed(f, (const char *)key + 1, len - 1, DF_OPEN);
    if (st) {
        st->visited += (uint64_t)s->count;
        st->visit_ms += (double)s->ms_sum;
    }
    return true;
}

/* A deal reached an open or won stage when it was ever in it or in an open
 * or won stage after it: when the furthest open or won stage it has been in
 * is that stage or a later one. */
static bool add_visited_set(df_figures *f, const uint8_t *key, size_t len, const df_sums *s)
{
    size_t at = 1;
    int furthest = -1;
    while (at < len) {
        const char *name;
        size_t name_len;
        int index;
        if (!take_name(key, len, &at, &name, &name_len))
            return false;
        const df_stage_def *def = df_pipeline_stage(f->pipeline, name, name_len, &index);
        if (def && def->outcome != DF_LOST && index > furthest)
            furthest = index;
    }
    for (int i = 0; i <= furthest; i++)
        f->stages[i].reached += (uint64_t)s->count;
    return true;
}

bool df_figures_add_row(df_figures *f, const uint8_t *key, size_t len, const df_sums *s,
                        bool *needs_entries)
{
    *needs_entries = false;
    if (len < 1)
        return false;
    switch (key[0]) {
    case 'C':
        return add_current(f, key, len, s, needs_entries);
    case 'T':
        return add_visits(f, key, len, s);
    case 'V':
        return add_visited_set(f, key, len, s);
    case 'E':
    case 'I':
    case 'N':
    case 'M':
    case 'F':
    case 'G':
    case 'K': /* K, L, R and Q: forecast.h */
    case 'L':
    case 'R':
    case 'Q':
        return true; /* read on their own */
    default:
        return false;
    }
}

static void add_reason(df_figures *f, const char *reason, size_t len, uint64_t count)
{
    if (len == 0) {
        reason = DF_UNSPECIFIED_REASON;
        len = sizeof DF_UNSPECIFIED_REASON - 1;
    }
    for (int i = 0; i < f->nreasons; i++) {
        if (df_name_eq(&f->reasons[i].reason, reason, len)) {
            f->reasons[i].count += count;
            return;
        }
    }
    if (f->nreasons == DF_MAX_LOSS_REASONS) {
        f->other_reasons += count;
        return;
    }
    df_name_set(&f->reasons[f->nreasons].reason, reason, len);
    f->reasons[f->nreasons++].count = count;
}

bool df_figures_add_windowed(df_figures *f, const uint8_t *key, size_t len, const df_sums *s)
{
    if (len < 9)
        return false;
    if (key[0] == 'N' || key[0] == 'M') {
        if (len != 9)
            return false;
        f->created += (uint64_t)s->count;
        return true;
    }
    if (key[0] != 'F' && key[0] != 'G')
        return false;
    size_t at = 9;
    const char *from, *reason;
    size_t from_len, reason_len;
    if (!take_name(key, len, &at, &from, &from_len) ||
        !take_name(key, len, &at, &reason, &reason_len) || at != len)
        return false;
    if (from_len > 0) {
        df_stage_figures *st = stage_or_removed(f, from, from_len, DF_OPEN);
        if (st)
            st->lost_from += (uint64_t)s->count;
    }
    add_reason(f, reason, reason_len, (uint64_t)s->count);
    return true;
}

/* ---- metrics ---- */

void df_metrics_compute(const df_figures *f, df_metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->won = (uint64_t)f->won.count;
    m->lost = (uint64_t)f->lost.count;
    m->win_rate = m->won + m->lost ? (double)m->won / (double)(m->won + m->lost) : NAN;
    m->avg_cycle_days =
        m->won ? (double)f->won.cycle_sum / (double)m->won / (double)DF_DAY_MS : NAN;
    m->open = (uint64_t)f->open.count;
    m->open_amount = df_sums_amount(&f->open);
    m->weighted = f->open_weighted;
    m->won_amount = df_sums_amount(&f->won);
    m->lost_amount = df_sums_amount(&f->lost);
    m->avg_won_amount =
        m->won ? ((double)f->won.amount_int + f->won.amount_float) / (double)m->won : NAN;
    m->created = f->created;

    double mean_won_amount =
        m->won ? ((double)f->won.amount_int + f->won.amount_float) / (double)m->won : NAN;
    m->velocity = NAN;
    if (m->open && m->won && mean_won_amount != 0 && m->win_rate != 0 && m->avg_cycle_days != 0 &&
        !isnan(m->avg_cycle_days))
        m->velocity = (double)m->open * mean_won_amount * m->win_rate / m->avg_cycle_days;

    /* consecutive open stages, then the last open one into the first won one */
    int previous = -1;
    const df_pipeline *p = f->pipeline;
    for (int i = 0; i < p->nstages; i++) {
        int outcome = p->stages[i].outcome;
        if (outcome == DF_LOST)
            continue;
        if (previous >= 0) {
            df_conversion *c = &m->conversions[m->nconversions++];
            c->from = previous;
            c->to = i;
            uint64_t base = f->stages[previous].reached;
            c->rate = base ? (double)f->stages[i].reached / (double)base : NAN;
        }
        if (outcome == DF_WON)
            break;
        previous = i;
    }
}
