/* test_aggregates.c: unit tests of metrics.c, deltas.c and stale.c, without a
 * store: deals folded with fold.c contribute rows to an in-memory table, the
 * figures computed back from it are checked against hand-worked values, and
 * the changes gathered for a flush against what the deals contribute. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "deltas.h"
#include "metrics.h"
#include "record.h"
#include "stale.h"

#define T0  1700000000000LL /* not on a day boundary */
#define DAY DF_DAY_MS

#define MAX_ROWS 512

typedef struct row {
    uint8_t key[DF_AGG_LOGICAL_KEY_MAX];
    size_t len;
    df_sums sums;
} row;

static row rows[MAX_ROWS];
static size_t nrows;
static df_pipelines pipelines;
static df_figures figures;

static void add_row(void *ctx, const uint8_t *key, size_t len, const df_sums *sums)
{
    (void)ctx;
    for (size_t i = 0; i < nrows; i++) {
        if (rows[i].len == len && memcmp(rows[i].key, key, len) == 0) {
            df_sums_add(&rows[i].sums, sums, 1);
            return;
        }
    }
    CHECK(nrows < MAX_ROWS);
    if (nrows == MAX_ROWS)
        return;
    memcpy(rows[nrows].key, key, len);
    rows[nrows].len = len;
    rows[nrows].sums = *sums;
    nrows++;
}

static df_str str(const char *s)
{
    return (df_str){s, (uint32_t)strlen(s)};
}

static df_event stage_event(uint64_t seq, double days, const char *stage)
{
    df_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = DF_EV_STAGE;
    ev.id = str("e");
    ev.deal = str("d");
    ev.has_at = true;
    ev.at = T0 + (int64_t)(days * DAY);
    ev.seq = seq;
    ev.stage = str(stage);
    return ev;
}

/* A deal of the default pipeline moved through stages at the given days. */
static void make_deal(df_deal *d, const char *id, const char *owner, int64_t amount,
                      const char *const *stages, const double *days, int n)
{
    df_deal_init(d, id, strlen(id));
    for (int i = 0; i < n; i++) {
        df_event ev = stage_event((uint64_t)i + 1, days[i], stages[i]);
        if (i == 0) {
            ev.amount_set = DF_SET;
            ev.amount = (df_num){.kind = DF_NUM_INT, .i = amount};
            ev.owner_set = owner ? DF_SET : DF_ABSENT;
            ev.owner = owner ? str(owner) : (df_str){0};
        }
        df_fold_apply(d, &ev, &pipelines);
    }
}

/* The figures of pipeline `default` (of owner's deals when not NULL) from the table. */
static void load_figures(const char *owner, int64_t now, bool has_from, int64_t from, bool has_to,
                         int64_t to)
{
    uint8_t prefix[DF_AGG_KEY_MAX];
    df_str o = owner ? str(owner) : (df_str){0};
    size_t plen = df_agg_prefix(prefix, str("default"), owner ? &o : NULL);
    df_figures_init(&figures, df_pipelines_find(&pipelines, "default", 7), now);
    figures.has_from = has_from;
    figures.from = from;
    figures.has_to = has_to;
    figures.to = to;
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        if (r->len <= plen || memcmp(r->key, prefix, plen) != 0 || r->key[plen] == 'E')
            continue;
        bool needs_entries = false;
        CHECK(df_figures_add_row(&figures, r->key + plen, r->len - plen, &r->sums, &needs_entries));
        if (!needs_entries)
            continue;
        /* the E rows of that stage and outcome within the day's part of the window */
        const uint8_t *c = r->key + plen;
        size_t head = r->len - plen - 8;
        int64_t lo, hi;
        df_figures_day_window(&figures, df_get_sortable(c + head), &lo, &hi);
        for (size_t j = 0; j < nrows; j++) {
            const row *e = &rows[j];
            const uint8_t *k = e->key + plen;
            if (e->len != r->len || memcmp(e->key, prefix, plen) != 0 || k[0] != 'E' ||
                memcmp(k + 1, c + 1, head - 1) != 0)
                continue;
            int64_t at = df_get_sortable(k + head);
            if (at >= lo && at < hi)
                CHECK(df_figures_add_closed(&figures, k, e->len - plen, &e->sums));
        }
    }
}

static void test_hand_worked(void)
{
    df_pipelines_init(&pipelines);
    nrows = 0;
    static df_deal a, b, c, d;
    /* a (ann, 100): lead 0, qualified 1d, won 3d: cycle 3 days */
    make_deal(&a, "a", "ann", 100, (const char *const[]){"lead", "qualified", "won"},
              (const double[]){0, 1, 3}, 3);
    /* b (ann, 200): lead 0, lost 2d */
    make_deal(&b, "b", "ann", 200, (const char *const[]){"lead", "lost"}, (const double[]){0, 2},
              2);
    /* c (bo, 300): lead 0, meeting 2d: open */
    make_deal(&c, "c", "bo", 300, (const char *const[]){"lead", "meeting"}, (const double[]){0, 2},
              2);
    /* d (no owner, 50): qualified 1d, then lead 2d (a regression): open */
    make_deal(&d, "d", NULL, 50, (const char *const[]){"qualified", "lead"}, (const double[]){1, 2},
              2);
    CHECK_INT(d.regressions, 1);
    const df_deal *all[] = {&a, &b, &c, &d};
    for (int i = 0; i < 4; i++)
        df_deal_contribute(all[i], +1, add_row, NULL);

    static df_metrics m;
    int64_t now = T0 + 10 * DAY;
    load_figures(NULL, now, false, 0, false, 0);
    df_metrics_compute(&figures, &m);
    CHECK_INT(m.won, 1);
    CHECK_INT(m.lost, 1);
    CHECK(m.win_rate == 0.5);
    CHECK(fabs(m.avg_cycle_days - 3.0) < 1e-12);
    CHECK_INT(m.open, 2);
    CHECK_INT(m.open_amount.i, 350);
    /* meeting 40%: 120; lead 10%: 5 */
    CHECK(fabs(m.weighted - 125.0) < 1e-9);
    /* 2 open x mean won 100 x 0.5 / 3 days */
    CHECK(fabs(m.velocity - 2 * 100 * 0.5 / 3) < 1e-9);
    /* reached lead: all 4; qualified: a (won), c (meeting), d (was in it) = 3;
     * meeting: a, c = 2; proposal: a = 1; negotiation: a; won: a */
    CHECK_INT(m.nconversions, 5);
    CHECK(fabs(m.conversions[0].rate - 3.0 / 4) < 1e-12);
    CHECK(fabs(m.conversions[1].rate - 2.0 / 3) < 1e-12);
    CHECK(fabs(m.conversions[2].rate - 1.0 / 2) < 1e-12);
    CHECK(fabs(m.conversions[4].rate - 1.0) < 1e-12);
    /* lead: a 1, b 2, c 2, d 8 (since 2d, up to now) over 4 deals */
    const df_stage_figures *lead = df_figures_stage(&figures, "lead", 4);
    CHECK_INT(lead->visited, 4);
    CHECK(fabs(lead->visit_ms / (double)lead->visited / DAY - 13.0 / 4) < 1e-12);

    /* ann only, and a window that cuts days: [1.5d, 3d + 1 ms) holds a's win at 3d
     * and b's loss at 2d */
    load_figures("ann", now, true, T0 + DAY + DAY / 2, true, T0 + 3 * DAY + 1);
    df_metrics_compute(&figures, &m);
    CHECK_INT(m.won, 1);
    CHECK_INT(m.lost, 1);
    CHECK_INT(m.open, 0);
    load_figures("ann", now, true, T0 + 2 * DAY + 1, true, T0 + 3 * DAY);
    df_metrics_compute(&figures, &m);
    CHECK_INT(m.won, 0);
    CHECK_INT(m.lost, 0);
    CHECK(isnan(m.win_rate));
    CHECK(isnan(m.velocity));

    /* a change takes back what the old state added: every row goes to zero */
    for (int i = 0; i < 4; i++)
        df_deal_contribute(all[i], -1, add_row, NULL);
    for (size_t i = 0; i < nrows; i++)
        CHECK(df_sums_zero(&rows[i].sums));
}

static void test_same_but_idle(void)
{
    df_pipelines_init(&pipelines);
    static df_deal d, e;
    make_deal(&d, "d", "ann", 10, (const char *const[]){"lead", "qualified"},
              (const double[]){0, 1}, 2);
    df_deal_copy(&e, &d);
    df_event call;
    memset(&call, 0, sizeof call);
    call.type = DF_EV_ACTIVITY;
    call.kind = str("call");
    call.at = T0 + 3 * DAY;
    call.seq = 9;
    df_fold_apply(&e, &call, &pipelines);
    CHECK(df_contribution_same_but_idle(&d, &e));
    CHECK(!df_same_idle(&d, &e));
    df_event move = stage_event(10, 4, "meeting");
    df_fold_apply(&e, &move, &pipelines);
    CHECK(!df_contribution_same_but_idle(&d, &e));
}

static void test_stale_spells(void)
{
    df_pipelines_init(&pipelines);
    df_event def;
    memset(&def, 0, sizeof def);
    def.type = DF_EV_PIPELINE;
    def.pipeline = str("default");
    def.nstages = 2;
    def.stages[0] = (df_stage_spec){str("new"), 10, 2, DF_OPEN};
    def.stages[1] = (df_stage_spec){str("won"), 100, 1, DF_WON};
    CHECK_INT(df_pipelines_apply(&pipelines, &def, NULL), 0);
    static df_deal d, e;
    make_deal(&d, "d", NULL, 0, (const char *const[]){"new"}, (const double[]){0}, 1);
    int64_t since;
    int rot;
    CHECK(df_stale_spell(&d, &pipelines, &since, &rot));
    CHECK_INT(since, T0);
    CHECK_INT(rot, 2);
    /* new at T0 rots at 2d: stale on arrival only when the last look was at 2d or later */
    CHECK(!df_stale_on_arrival(NULL, &d, &pipelines, T0 + 2 * DAY - 1, &since));
    CHECK(df_stale_on_arrival(NULL, &d, &pipelines, T0 + 2 * DAY, &since));
    /* the same spell is not reported again */
    df_deal_copy(&e, &d);
    CHECK(!df_stale_on_arrival(&d, &e, &pipelines, T0 + 9 * DAY, &since));
    /* an activity begins a new one */
    df_event call;
    memset(&call, 0, sizeof call);
    call.type = DF_EV_ACTIVITY;
    call.at = T0 + DAY;
    call.seq = 5;
    df_fold_apply(&e, &call, &pipelines);
    CHECK(df_stale_on_arrival(&d, &e, &pipelines, T0 + 9 * DAY, &since));
    CHECK_INT(since, T0 + DAY);
    /* a won deal never rots, though won has rot_days */
    df_event won = stage_event(6, 2, "won");
    df_fold_apply(&e, &won, &pipelines);
    CHECK(!df_stale_spell(&e, &pipelines, &since, &rot));
}

/* Gathered changes, added to the table as a flush writes them to the store. */
typedef struct written {
    size_t rows;
    bool lead_visits; /* the T row of lead, scope A or O */
    int kinds[256];
} written;

static int write_delta(void *ctx, const uint8_t *key, size_t len, const df_sums *delta)
{
    written *w = ctx;
    uint8_t prefix[DF_AGG_KEY_MAX];
    size_t plen = df_agg_prefix(prefix, str("default"), NULL);
    w->rows++;
    if (len > plen && memcmp(key, prefix, plen) == 0)
        w->kinds[key[plen]]++;
    if (len >= 5 && memcmp(key + len - 5, "Tlead", 5) == 0)
        w->lead_visits = true;
    add_row(NULL, key, len, delta);
    return 0;
}

/* A row a deal contributes, and the month row of a day row (metrics.h):
 * what a flush writes for it. */
static void add_row_and_month(void *ctx, const uint8_t *key, size_t len, const df_sums *sums)
{
    df_key month;
    add_row(ctx, key, len, sums);
    if (df_agg_rollup_row(key, len, &month))
        add_row(ctx, month.b, month.len, sums);
}

static void check_table_is(const df_deal *d)
{
    if (d)
        df_deal_contribute(d, -1, add_row_and_month, NULL);
    for (size_t i = 0; i < nrows; i++)
        CHECK(df_sums_zero(&rows[i].sums));
    if (d)
        df_deal_contribute(d, +1, add_row_and_month, NULL);
}

/* A deal that moves: what the flush writes turns the rows of its old state
 * into those of its new one, and the rows it leaves alone are not written. */
static void test_deltas_move(void)
{
    df_pipelines_init(&pipelines);
    nrows = 0;
    static df_deal d, e;
    make_deal(&d, "d", "ann", 10, (const char *const[]){"lead", "qualified"},
              (const double[]){0, 1}, 2);
    df_deal_copy(&e, &d);
    df_event move = stage_event(3, 2, "meeting");
    df_fold_apply(&e, &move, &pipelines);
    df_agg_deltas *deltas = df_agg_deltas_new();
    CHECK(deltas != NULL);
    if (!deltas)
        return;

    written w = {0};
    CHECK(df_agg_deltas_deal(deltas, NULL, &d));
    CHECK_INT(df_agg_deltas_each(deltas, write_delta, &w), 0);
    check_table_is(&d);
    /* each is a walk: the rows stay until cleared */
    size_t first = w.rows;
    CHECK(first > 0);
    df_agg_deltas_clear(deltas);
    w = (written){0};
    CHECK_INT(df_agg_deltas_each(deltas, write_delta, &w), 0);
    CHECK_INT(w.rows, 0);

    CHECK(df_agg_deltas_deal(deltas, &d, &e));
    CHECK_INT(df_agg_deltas_each(deltas, write_delta, &w), 0);
    check_table_is(&e);
    CHECK(!w.lead_visits);    /* the finished visit of lead is the same */
    CHECK(w.kinds['C'] == 2); /* out of qualified, into meeting */
    CHECK(w.kinds['I'] == 2);
    df_agg_deltas_free(deltas);
}

/* An activity moves only the I row; a deal taken away within the flush that
 * added it writes nothing. */
static void test_deltas_cancel(void)
{
    df_pipelines_init(&pipelines);
    nrows = 0;
    static df_deal d, e;
    make_deal(&d, "d", NULL, 10, (const char *const[]){"lead"}, (const double[]){0}, 1);
    df_deal_copy(&e, &d);
    df_event call;
    memset(&call, 0, sizeof call);
    call.type = DF_EV_ACTIVITY;
    call.at = T0 + 3 * DAY;
    call.seq = 5;
    df_fold_apply(&e, &call, &pipelines);
    df_agg_deltas *deltas = df_agg_deltas_new();
    CHECK(deltas != NULL);
    if (!deltas)
        return;
    written w = {0};
    df_deal_contribute(&d, +1, add_row_and_month, NULL);
    CHECK(df_agg_deltas_deal(deltas, &d, &e));
    CHECK_INT(df_agg_deltas_each(deltas, write_delta, &w), 0);
    CHECK_INT(w.rows, 2);
    CHECK_INT(w.kinds['I'], 2);
    check_table_is(&e);
    df_agg_deltas_clear(deltas);

    /* the same activity again: nothing changes */
    w = (written){0};
    CHECK(df_agg_deltas_deal(deltas, &e, &e));
    CHECK_INT(df_agg_deltas_each(deltas, write_delta, &w), 0);
    CHECK_INT(w.rows, 0);

    CHECK(df_agg_deltas_deal(deltas, NULL, &d));
    CHECK(df_agg_deltas_deal(deltas, &d, NULL));
    CHECK_INT(df_agg_deltas_each(deltas, write_delta, &w), 0);
    CHECK_INT(w.rows, 0);
    df_agg_deltas_free(deltas);
}

static double float_change_c, float_change_month;

static int note_float_change(void *ctx, const uint8_t *key, size_t len, const df_sums *delta)
{
    (void)ctx;
    uint8_t prefix[DF_AGG_KEY_MAX];
    size_t plen = df_agg_prefix(prefix, str("default"), NULL);
    if (len > plen && memcmp(key, prefix, plen) == 0 && key[plen] == 'C')
        float_change_c += delta->amount_float;
    if (len > plen && memcmp(key, prefix, plen) == 0 && key[plen] == 'c')
        float_change_month += delta->amount_float;
    return 0;
}

/* A deal whose float amount changes while it stays where it is changes the
 * float sums of its rows, and their month rows, though the count of deals
 * with float amounts stays the same. */
static void test_deltas_float_amount(void)
{
    df_pipelines_init(&pipelines);
    static df_deal d, e;
    make_deal(&d, "d", NULL, 10, (const char *const[]){"lead"}, (const double[]){0}, 1);
    d.amount = (df_num){.kind = DF_NUM_FLOAT, .f = 100.5};
    df_deal_copy(&e, &d);
    e.amount = (df_num){.kind = DF_NUM_FLOAT, .f = 200.25};
    df_agg_deltas *deltas = df_agg_deltas_new();
    CHECK(deltas != NULL);
    if (!deltas)
        return;
    float_change_c = float_change_month = 0;
    CHECK(df_agg_deltas_deal(deltas, &d, &e));
    CHECK_INT(df_agg_deltas_each(deltas, note_float_change, NULL), 0);
    CHECK(float_change_c == 99.75);
    CHECK(float_change_month == 99.75);
    df_agg_deltas_free(deltas);
}

/* Where rows are stored: most under their key, a V row under a hash of its
 * names, which its value holds and give its key back. */
static void test_row_slots(void)
{
    df_pipelines_init(&pipelines);
    nrows = 0;
    static df_deal d;
    make_deal(&d, "d", NULL, 10, (const char *const[]){"lead", "qualified"}, (const double[]){0, 1},
              2);
    df_deal_contribute(&d, +1, add_row, NULL);
    uint8_t prefix[DF_AGG_KEY_MAX];
    size_t plen = df_agg_prefix(prefix, str("default"), NULL);
    int visited_sets = 0;
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        static df_agg_slot slot, next;
        CHECK(df_agg_slot_at(&slot, r->key, r->len, 0));
        if (r->key[plen] != 'V') {
            CHECK(slot.names == NULL);
            CHECK(slot.len == r->len && memcmp(slot.key, r->key, r->len) == 0);
            CHECK(!df_agg_slot_at(&next, r->key, r->len, 1));
            continue;
        }
        visited_sets++;
        CHECK_INT(slot.len, plen + 1 + 8);
        CHECK(memcmp(slot.key, r->key, plen + 1) == 0);
        CHECK(slot.names_len == r->len - plen - 1);
        CHECK(memcmp(slot.names, "lead\0qualified\0", 15) == 0);
        CHECK(df_agg_slot_at(&next, r->key, r->len, 1));
        CHECK(df_get_be64(next.key + plen + 1) == df_get_be64(slot.key + plen + 1) + 1);
        CHECK(!df_agg_slot_at(&next, r->key, r->len, DF_AGG_PROBES));
        uint8_t buf[DF_AGG_LOGICAL_KEY_MAX];
        size_t len = 0;
        const uint8_t *key =
            df_agg_row_key(slot.key, slot.len, &r->sums, slot.names, slot.names_len, buf, &len);
        CHECK(key == buf && len == r->len && memcmp(key, r->key, len) == 0);
        df_sums emptied = {0};
        CHECK(df_agg_row_key(slot.key, slot.len, &emptied, slot.names, slot.names_len, buf, &len) ==
              NULL);
    }
    CHECK_INT(visited_sets, 1);
    static df_agg_slot bad;
    CHECK(!df_agg_slot_at(&bad, (const uint8_t *)"default", 7, 0));
    CHECK(!df_agg_slot_at(&bad, (const uint8_t *)"default\0X", 9, 0));
}

/* Sums do not wrap: two deals of amount INT64_MAX (as an old log may hold)
 * sum to 2^64 - 2, not -2, and many deals' times add up past 2^63. */
static void test_sums_never_wrap(void)
{
    df_pipelines_init(&pipelines);
    nrows = 0;
    static df_deal a, b;
    make_deal(&a, "a", NULL, INT64_MAX, (const char *const[]){"lead"}, (const double[]){0}, 1);
    make_deal(&b, "b", "ann", INT64_MAX, (const char *const[]){"lead"}, (const double[]){1}, 1);
    df_deal_contribute(&a, +1, add_row, NULL);
    df_deal_contribute(&b, +1, add_row, NULL);
    static df_metrics m;
    load_figures(NULL, T0 + 2 * DAY, false, 0, false, 0);
    df_metrics_compute(&figures, &m);
    const double max2 = 2.0 * (double)INT64_MAX;
    CHECK_INT(m.open, 2);
    CHECK(m.open_amount.kind == DF_NUM_FLOAT && m.open_amount.f == max2);
    const df_stage_figures *lead = df_figures_stage(&figures, "lead", 4);
    CHECK(lead->now_in.amount_int == (df_wide)INT64_MAX * 2);
    CHECK(df_sums_amount(&lead->now_in).kind == DF_NUM_FLOAT);
    CHECK(df_sums_amount(&lead->now_in).f == max2);
    CHECK(fabs(lead->weighted - max2 * 0.1) <= max2 * 1e-12);
    CHECK(fabs(m.weighted - max2 * 0.1) <= max2 * 1e-12);
    /* lead for 2 days and 1 day */
    CHECK(fabs(lead->visit_ms - 3.0 * DAY) < 1e-3);
    df_deal_contribute(&a, -1, add_row, NULL);
    df_deal_contribute(&b, -1, add_row, NULL);
    for (size_t i = 0; i < nrows; i++)
        CHECK(df_sums_zero(&rows[i].sums));

    /* at the bound a sent amount is held to, the sum stays an exact int while it fits */
    nrows = 0;
    make_deal(&a, "a", NULL, DF_AMOUNT_MAX, (const char *const[]){"lead"}, (const double[]){0}, 1);
    make_deal(&b, "b", NULL, -DF_AMOUNT_MAX, (const char *const[]){"lead"}, (const double[]){0}, 1);
    df_deal_contribute(&a, +1, add_row, NULL);
    df_deal_contribute(&a, +1, add_row, NULL);
    load_figures(NULL, T0 + DAY, false, 0, false, 0);
    df_metrics_compute(&figures, &m);
    CHECK(m.open_amount.kind == DF_NUM_INT && m.open_amount.i == 2 * DF_AMOUNT_MAX);
    df_deal_contribute(&b, +1, add_row, NULL);
    load_figures(NULL, T0 + DAY, false, 0, false, 0);
    df_metrics_compute(&figures, &m);
    CHECK(m.open_amount.kind == DF_NUM_INT && m.open_amount.i == DF_AMOUNT_MAX);

    /* 2^25 deals in one row: their times and amounts sum past 2^63 and back */
    df_sums one = {0}, many;
    for (size_t i = 0; i < nrows; i++) {
        if (rows[i].sums.count == 3 && rows[i].sums.since_sum != 0)
            one = rows[i].sums;
    }
    CHECK_INT(one.count, 3);
    static df_sums powers[25]; /* one x 2^i */
    many = one;
    for (int i = 0; i < 25; i++) {
        powers[i] = many;
        df_sums_add(&many, &many, 1);
    }
    CHECK_INT(many.count, 3LL << 25);
    CHECK(many.since_sum == one.since_sum * ((df_wide)1 << 25));
    CHECK(many.since_sum > (df_wide)INT64_MAX);
    CHECK(many.cycle_sum == 0);
    CHECK(many.amount_int == (df_wide)DF_AMOUNT_MAX << 25);
    CHECK(df_sums_amount(&many).kind == DF_NUM_FLOAT);
    CHECK(df_sums_amount(&many).f == (double)DF_AMOUNT_MAX * (1 << 25));
    CHECK(many.weighted_int == (df_wide)DF_AMOUNT_MAX * 10 << 25);
    /* taken back: 2^24 + ... + 1, and one more */
    for (int i = 24; i >= 0; i--)
        df_sums_add(&many, &powers[i], -1);
    df_sums_add(&many, &one, -1);
    CHECK(df_sums_zero(&many));
}

static int collect_delta(void *ctx, const uint8_t *key, size_t len, const df_sums *delta)
{
    (void)ctx;
    add_row(NULL, key, len, delta);
    return 0;
}

/* The rows of created and lost deals, in every scope; they hold a count only. */
static void test_loss_rows(void)
{
    df_deal d;
    const char *stages[] = {"lead", "meeting", "lost"};
    double days[] = {0, 1, 2.5};
    make_deal(&d, "l", "al", 70, stages, days, 3);
    d.has_reason = true;
    df_name_set(&d.reason, "price", 5);
    d.has_source = true;
    df_name_set(&d.source, "web", 3);
    d.has_product = true;
    memcpy(d.product.s, "p1", 2);
    d.product.len = 2;
    nrows = 0;
    df_deal_contribute(&d, +1, add_row, NULL);
    int created = 0, lost = 0, scopes[4] = {0};
    const char scope_names[4] = {'A', 'O', 'P', 'S'};
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        size_t at = strlen("default") + 1;
        for (int k = 0; k < 4; k++)
            scopes[k] += r->key[at] == scope_names[k];
        at = r->key[at] == 'A' ? at + 1 : at + 1 + strlen((const char *)r->key + at + 1) + 1;
        uint8_t kind = r->key[at];
        bool counted =
            kind == 'N' || kind == 'M' || kind == 'F' || kind == 'G' || kind == 'R' || kind == 'Q';
        uint8_t packed[DF_SUMS_PACKED_MAX];
        if (!counted)
            continue;
        CHECK(df_sums_pack(&r->sums, packed) == 2); /* the bitmap and the count */
        CHECK_INT(r->sums.count, 1);
        if (kind == 'M')
            CHECK_INT(df_get_sortable(r->key + at + 1), d.created);
        if (kind == 'G') {
            CHECK_INT(df_get_sortable(r->key + at + 1), d.stage_since);
            CHECK(r->len == at + 9 + strlen("meeting") + 1 + strlen("price") + 1);
            CHECK(memcmp(r->key + at + 9, "meeting\0price\0", 14) == 0);
        }
        created += kind == 'N' || kind == 'M';
        lost += kind == 'F' || kind == 'G';
    }
    CHECK_INT(created, 2 * 4);
    CHECK_INT(lost, 2 * 4);
    /* the same rows in each scope, and the I row in scope A only */
    CHECK(scopes[1] > 0 && scopes[0] == scopes[1] + 1 && scopes[2] == scopes[1] &&
          scopes[3] == scopes[1]);

    /* read back: the day rows of the window's whole days */
    df_figures_init(&figures, df_pipelines_find(&pipelines, "default", 7), T0 + 10 * DAY);
    uint8_t prefix[DF_AGG_KEY_MAX];
    size_t plen = df_agg_prefix(prefix, str("default"), NULL);
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        if (memcmp(r->key, prefix, plen) == 0 && (r->key[plen] == 'N' || r->key[plen] == 'F'))
            CHECK(df_figures_add_windowed(&figures, r->key + plen, r->len - plen, &r->sums));
    }
    CHECK_INT(figures.created, 1);
    CHECK_INT(df_figures_stage(&figures, "meeting", 7)->lost_from, 1);
    CHECK_INT(figures.nreasons, 1);
    CHECK(df_name_eq(&figures.reasons[0].reason, "price", 5));
    CHECK(!df_figures_add_windowed(&figures, (const uint8_t *)"F12345678x", 10, &rows[0].sums));

    /* a product too long for a key has no P scope; another reason moves rows */
    df_deal other;
    df_deal_copy(&other, &d);
    memset(other.product.s, 'x', 200);
    other.product.len = 200;
    CHECK(!df_contribution_same_but_idle(&d, &other));
    nrows = 0;
    df_deal_contribute(&other, +1, add_row, NULL);
    for (size_t i = 0; i < nrows; i++)
        CHECK(rows[i].key[strlen("default") + 1] != 'P');
    df_deal_copy(&other, &d);
    df_name_set(&other.reason, "timing", 6);
    CHECK(!df_contribution_same_but_idle(&d, &other));
    df_agg_deltas *deltas = df_agg_deltas_new();
    CHECK(deltas && df_agg_deltas_deal(deltas, &d, &other));
    nrows = 0;
    df_agg_deltas_each(deltas, collect_delta, NULL);
    /* F and G, taken and added, in 4 scopes, the F month row of each reason,
     * and its G hour row but in the owner's scope */
    CHECK_INT(nrows, 4 * 2 * 2 + 4 * 2 + 3 * 2);
    df_agg_deltas_free(deltas);
}

/* Month and hour rows: which rows have them, their keys, and the calendar
 * they use. */
static void test_rollup_rows(void)
{
    /* 2024-02-15 is day 19768; February 2024 has 29 days */
    CHECK_INT(df_month_first_day(19768), 19754);
    CHECK_INT(df_month_next_day(19768), 19783);
    CHECK_INT(df_month_next_day(19754), 19783);
    /* 2023-12-31 (day 19722): January follows in the next year */
    CHECK_INT(df_month_first_day(19722), 19692);
    CHECK_INT(df_month_next_day(19722), 19723);
    /* 1969-12-31, before the epoch */
    CHECK_INT(df_month_first_day(-1), -31);
    CHECK_INT(df_month_next_day(-1), 0);

    df_key k = {.len = 0}, month;
    df_key_add_name(&k, "default", 7);
    k.b[k.len++] = 'A';
    size_t plen = k.len;
    /* C stage NUL outcome day: the day ends the key */
    k.b[k.len++] = 'C';
    df_key_add_name(&k, "lead", 4);
    k.b[k.len++] = DF_OPEN;
    df_key_add_sortable(&k, 19768);
    CHECK(df_agg_rollup_row(k.b, k.len, &month));
    CHECK_INT(month.len, k.len);
    CHECK(month.b[plen] == 'c');
    CHECK(memcmp(month.b + plen + 1, k.b + plen + 1, k.len - plen - 9) == 0);
    CHECK_INT(df_get_sortable(month.b + month.len - 8), 19754);
    /* F day from NUL reason NUL: the day follows the kind */
    k.len = plen;
    k.b[k.len++] = 'F';
    df_key_add_sortable(&k, 19722);
    df_key_add_name(&k, "lead", 4);
    df_key_add_name(&k, "price", 5);
    CHECK(df_agg_rollup_row(k.b, k.len, &month));
    CHECK(month.b[plen] == 'f');
    CHECK_INT(df_get_sortable(month.b + plen + 1), 19692);
    CHECK(memcmp(month.b + plen + 9, k.b + plen + 9, k.len - plen - 9) == 0);
    /* G at from NUL reason NUL: an hour row, keyed by the hour's first ms */
    k.len = plen;
    k.b[k.len++] = 'G';
    df_key_add_sortable(&k, T0 + 5 * DF_HOUR_MS + 123);
    df_key_add_name(&k, "lead", 4);
    df_key_add_name(&k, "", 0);
    CHECK(df_agg_rollup_row(k.b, k.len, &month));
    CHECK(month.b[plen] == 'g');
    CHECK_INT(df_get_sortable(month.b + plen + 1), df_hour_of(T0) + 5 * DF_HOUR_MS);
    /* but not in an owner's scope */
    df_key owned = {.len = 0};
    owned.len = df_agg_prefix(owned.b, str("default"), &(df_str){"ann", 3});
    df_key_add(&owned, k.b + plen, k.len - plen);
    CHECK(!df_agg_rollup_row(owned.b, owned.len, &month));
    /* E stage NUL outcome at: the time ends the key */
    k.len = plen;
    k.b[k.len++] = 'E';
    df_key_add_name(&k, "won", 3);
    k.b[k.len++] = DF_WON;
    df_key_add_sortable(&k, -1);
    CHECK(df_agg_rollup_row(k.b, k.len, &month));
    CHECK(month.b[plen] == 'e');
    CHECK_INT(df_get_sortable(month.b + month.len - 8), -DF_HOUR_MS);
    CHECK_INT(df_hour_of(T0), T0 - T0 % DF_HOUR_MS);
    /* rows without a time have none */
    k.b[plen] = 'T';
    CHECK(!df_agg_rollup_row(k.b, k.len, &month));
    CHECK(!df_agg_rollup_row(k.b, plen + 3, &month));

    /* a month of C rows counts as one row only before now's day, and only
     * when the window holds all its days or none */
    df_pipelines_init(&pipelines);
    df_figures_init(&figures, df_pipelines_find(&pipelines, "default", 7), df_day_start(19783) + 5);
    CHECK(df_figures_days_alike(&figures, 19754, 19783));
    CHECK(!df_figures_days_alike(&figures, 19783, 19814));
    figures.has_from = true;
    figures.from = df_day_start(19754);
    CHECK(df_figures_days_alike(&figures, 19754, 19783));
    figures.from += 1;
    CHECK(!df_figures_days_alike(&figures, 19754, 19783));
    figures.from = df_day_start(19783);
    CHECK(df_figures_days_alike(&figures, 19754, 19783)); /* all outside */
    figures.has_from = false;
    figures.has_to = true;
    figures.to = df_day_start(19770);
    CHECK(!df_figures_days_alike(&figures, 19754, 19783));
    figures.to = df_day_start(19754);
    CHECK(df_figures_days_alike(&figures, 19754, 19783));
}

/* Sums as stored: a few bytes for a small row, every value back as it was,
 * and damaged bytes refused. */
static void test_packed_sums(void)
{
    uint8_t packed[DF_SUMS_PACKED_MAX];
    df_sums s = {0}, back;
    CHECK_INT(df_sums_pack(&s, packed), 1);
    CHECK_INT(df_sums_unpack(packed, 1, &back), 1);
    CHECK(df_sums_zero(&back));
    s.count = 1;
    CHECK_INT(df_sums_pack(&s, packed), 2);
    s.count = -3;
    s.amount_int = (df_wide)1 << 100;
    s.weighted_int = -((df_wide)1 << 126) * 2;                   /* the least df_wide */
    s.since_sum = ((df_wide)1 << 126) - 1 + ((df_wide)1 << 126); /* the greatest */
    s.cycle_sum = -1;
    s.ms_sum = 86400000;
    s.float_count = 2;
    s.amount_float = 12.5;
    s.weighted_float = -0.25;
    size_t n = df_sums_pack(&s, packed);
    CHECK(n <= DF_SUMS_PACKED_MAX);
    CHECK_INT(df_sums_unpack(packed, n, &back), n);
    CHECK(back.count == s.count && back.amount_int == s.amount_int &&
          back.weighted_int == s.weighted_int && back.since_sum == s.since_sum &&
          back.cycle_sum == s.cycle_sum && back.ms_sum == s.ms_sum &&
          back.float_count == s.float_count && back.amount_float == s.amount_float &&
          back.weighted_float == s.weighted_float);
    /* names may follow: the length read is the sums' own */
    memcpy(packed + n, "lead", 4);
    CHECK_INT(df_sums_unpack(packed, n + 4, &back), n);
    /* cut short anywhere, refused */
    for (size_t cut = 0; cut < n; cut++)
        CHECK_INT(df_sums_unpack(packed, cut, &back), 0);
    /* a field the format does not have, a varint that never ends, a count
     * wider than 64 bits */
    CHECK_INT(df_sums_unpack((const uint8_t *)"\x80\x04", 2, &back), 0);
    uint8_t endless[24];
    memset(endless, 0xff, sizeof endless);
    endless[0] = 0x01;
    CHECK_INT(df_sums_unpack(endless, sizeof endless, &back), 0);
    s = (df_sums){.amount_int = (df_wide)1 << 70};
    n = df_sums_pack(&s, packed);
    packed[0] = 0x01; /* the same varint, read as the count */
    CHECK_INT(df_sums_unpack(packed, n, &back), 0);
}

static const df_test tests[] = {
    {"deltas_float_amount", test_deltas_float_amount},
    {"packed_sums", test_packed_sums},
    {"rollup_rows", test_rollup_rows},
    {"hand_worked", test_hand_worked},
    {"same_but_idle", test_same_but_idle},
    {"stale_spells", test_stale_spells},
    {"deltas_move", test_deltas_move},
    {"deltas_cancel", test_deltas_cancel},
    {"row_slots", test_row_slots},
    {"sums_never_wrap", test_sums_never_wrap},
    {"loss_rows", test_loss_rows},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return df_test_main(argc, argv, tests, NULL);
}
