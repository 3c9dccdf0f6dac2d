/* test_figures.c: `metrics`, `board`, `forecast` and `calibration` over a
 * generated pipeline of a few hundred deals whose events arrive shuffled
 * (many late), against figures the test computes a second way: each deal
 * folded on its own, then every figure taken from the contract's
 * definitions, deal by deal; where a deal was lost from and why, and when it
 * was created, are taken from its events on their own; calendar periods
 * come from the C library's calendar. */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "fold.h"
#include "harness.h"

#define T0       IT_T0
#define DAY      IT_DAY
#define NDEALS   400
#define MAXEV    10
#define NOW      (T0 + 70 * DAY)
#define DECEMBER (T0 + 16 * DAY + 6400000) /* 2023-12-01T00:00Z */
#define NSTAGES  6
#define NOWNERS  3
#define PIPELINE "gen"

static it_daemon D;
static df_pipelines pipelines;
static const char *const STAGES[NSTAGES] = {"s0", "s1", "s2", "s3", "won", "lost"};
static const char *const OWNERS[NOWNERS] = {"o1", "o2", "o3"};
static const char *const PRODUCTS[2] = {"p1", "p2"};
static const char *const SOURCES[2] = {"web", "ref"};
#define NREASONS 3 /* the last one is sent empty: unspecified */
static const char *const REASONS[NREASONS] = {"price", "timing", ""};
/* A scope of the figures: an owner 0..2, a product 10 + k, a source 20 + k. */
#define PRODUCT_SCOPE 10
#define SOURCE_SCOPE  20

typedef struct gen_event {
    int deal;
    df_event_type type;
    int stage;
    int64_t at;
    int amount_kind; /* 0 none, 1 int, 2 float */
    int64_t amount_int;
    double amount_float;
    int owner;           /* -1: not set */
    int product;         /* update events; -1: not set */
    int source;          /* -1: not set */
    int reason;          /* stage events; -1: none */
    bool has_close_date; /* update events */
    int64_t close_date;
    uint64_t seq;
    char id[32];
    char deal_id[16];
} gen_event;

static gen_event events[NDEALS * MAXEV];
static size_t nevents;
static df_deal deals[NDEALS];
/* taken from each deal's events by the contract's words, not the fold's */
static int lost_from_of[NDEALS]; /* the last open stage before its current one, or -1 */
static int reason_of[NDEALS];    /* the reason of its current stage's visit */
static int64_t created_of[NDEALS];
static uint32_t random_state = 20261123;
/* close dates have a generator of their own, so that the rest of the
 * generated events stay as they were before close dates were sent */
static uint32_t close_random_state = 20261207;

static uint32_t next_random(uint32_t below)
{
    random_state = random_state * 1103515245u + 12345u;
    return (random_state >> 8) % below;
}

static uint32_t next_close_random(uint32_t below)
{
    close_random_state = close_random_state * 1103515245u + 12345u;
    return (close_random_state >> 8) % below;
}

static void define_pipeline(void)
{
    CHECK(it_append(&D, "{id: gen-def, type: pipeline, pipeline: gen, stages: ["
                        "{name: s0, probability: 10, rot_days: 2},"
                        "{name: s1, probability: 30, rot_days: 5},"
                        "{name: s2, probability: 50},"
                        "{name: s3, probability: 70, rot_days: 1},"
                        "{name: won, probability: 100, outcome: won},"
                        "{name: lost, probability: 0, outcome: lost}]}") > 0);
    df_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = DF_EV_PIPELINE;
    ev.pipeline = (df_str){PIPELINE, 3};
    int probability[NSTAGES] = {10, 30, 50, 70, 100, 0};
    int rot[NSTAGES] = {2, 5, -1, 1, -1, -1};
    ev.nstages = NSTAGES;
    for (int i = 0; i < NSTAGES; i++)
        ev.stages[i] = (df_stage_spec){{STAGES[i], (uint32_t)strlen(STAGES[i])},
                                       probability[i],
                                       rot[i],
                                       i == 4   ? DF_WON
                                       : i == 5 ? DF_LOST
                                                : DF_OPEN};
    df_pipelines_init(&pipelines);
    CHECK(df_pipelines_apply(&pipelines, &ev, NULL) == 0);
}

static void generate(void)
{
    for (int d = 0; d < NDEALS; d++) {
        int n = 1 + (int)next_random(MAXEV - 1);
        for (int i = 0; i < n; i++) {
            gen_event *e = &events[nevents++];
            memset(e, 0, sizeof(*e));
            e->deal = d;
            snprintf(e->deal_id, sizeof(e->deal_id), "g%d", d);
            snprintf(e->id, sizeof(e->id), "gen-%d-%d", d, i);
            /* half of them stage moves */
            uint32_t r = next_random(10);
            e->type = i == 0 || r < 5 ? DF_EV_STAGE : r < 8 ? DF_EV_ACTIVITY : DF_EV_UPDATE;
            e->stage = (int)next_random(NSTAGES);
            /* anywhere in an hour, so that windows cut hours of hour rows */
            e->at = T0 + (int64_t)next_random(60 * 24) * (DAY / 24) +
                    (int64_t)next_random((uint32_t)(DAY / 24));
            e->owner = e->product = e->source = e->reason = -1;
            if (e->type == DF_EV_STAGE && next_random(2) == 0)
                e->reason = (int)next_random(NREASONS);
            if (e->type == DF_EV_UPDATE && next_random(3) == 0)
                e->product = (int)next_random(2);
            if (e->type != DF_EV_ACTIVITY && next_random(4) == 0)
                e->source = (int)next_random(2);
            if (e->type != DF_EV_ACTIVITY) {
                uint32_t a = next_random(4);
                e->amount_kind = a == 0 ? 0 : a == 3 ? 2 : 1;
                e->amount_int = 100 * (1 + (int64_t)next_random(50));
                e->amount_float = (double)(1 + next_random(5000)) / 4.0;
                if (next_random(3) > 0)
                    e->owner = (int)next_random(NOWNERS);
            }
            /* close dates from T0 - 20d to T0 + 130d, most on a midnight */
            if (e->type == DF_EV_UPDATE && next_close_random(3) > 0) {
                e->has_close_date = true;
                e->close_date = (T0 / DAY - 20 + (int64_t)next_close_random(150)) * DAY;
                if (next_close_random(3) == 0)
                    e->close_date += (int64_t)next_close_random((uint32_t)DAY);
            }
        }
    }
}

static void add_event_text(it_buf *t, const gen_event *e)
{
    it_buf_add(t, "{id: '%s', deal: '%s', pipeline: gen, at: %lld", e->id, e->deal_id,
               (long long)e->at);
    if (e->type == DF_EV_STAGE)
        it_buf_add(t, ", type: stage, stage: %s", STAGES[e->stage]);
    else if (e->type == DF_EV_ACTIVITY)
        it_buf_add(t, ", type: activity, kind: call");
    else
        it_buf_add(t, ", type: update");
    if (e->type != DF_EV_ACTIVITY) {
        if (e->amount_kind == 1)
            it_buf_add(t, ", amount: %lld", (long long)e->amount_int);
        else if (e->amount_kind == 2)
            it_buf_add(t, ", amount: %.2f", e->amount_float);
        if (e->owner >= 0)
            it_buf_add(t, ", owner: %s", OWNERS[e->owner]);
    }
    if (e->product >= 0)
        it_buf_add(t, ", product: %s", PRODUCTS[e->product]);
    if (e->source >= 0)
        it_buf_add(t, ", source: %s", SOURCES[e->source]);
    if (e->reason >= 0)
        it_buf_add(t, ", reason: '%s'", REASONS[e->reason]);
    if (e->has_close_date)
        it_buf_add(t, ", close_date: %lld", (long long)e->close_date);
    it_buf_add(t, "}");
}

/* Sends every event in a shuffled order, in batches, and notes its seq. */
static void send_shuffled(void)
{
    static size_t order[NDEALS * MAXEV];
    for (size_t i = 0; i < nevents; i++)
        order[i] = i;
    for (size_t i = nevents - 1; i > 0; i--) {
        size_t j = next_random((uint32_t)i + 1);
        size_t swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
    it_buf t = {0};
    size_t in_batch = 0, batch_start = 0;
    for (size_t k = 0; k <= nevents; k++) {
        if (k == nevents || in_batch == 100) {
            it_buf_add(&t, "]}");
            const msgpack_object *r = it_call(&D, "%s", it_buf_get(&t));
            const msgpack_object *results = it_get(r, "results");
            CHECK_INT(it_len(results), in_batch);
            for (size_t i = 0; i < in_batch; i++) {
                events[order[batch_start + i]].seq =
                    (uint64_t)it_int(it_at(results, (uint32_t)i), "seq");
                CHECK(events[order[batch_start + i]].seq > 0);
            }
            it_buf_free(&t);
            memset(&t, 0, sizeof(t));
            in_batch = 0;
            batch_start = k;
            if (k == nevents)
                break;
        }
        if (in_batch == 0)
            it_buf_add(&t, "{op: append, events: [");
        it_buf_add(&t, in_batch ? "," : "");
        add_event_text(&t, &events[order[k]]);
        in_batch++;
    }
}

/* ---- the second way ---- */

static df_event to_event(const gen_event *e)
{
    df_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = e->type;
    ev.id = (df_str){e->id, (uint32_t)strlen(e->id)};
    ev.deal = (df_str){e->deal_id, (uint32_t)strlen(e->deal_id)};
    ev.has_at = true;
    ev.at = e->at;
    ev.seq = e->seq;
    ev.pipeline = (df_str){PIPELINE, 3};
    if (e->type == DF_EV_STAGE)
        ev.stage = (df_str){STAGES[e->stage], (uint32_t)strlen(STAGES[e->stage])};
    if (e->type == DF_EV_ACTIVITY)
        ev.kind = (df_str){"call", 4};
    if (e->type != DF_EV_ACTIVITY) {
        if (e->amount_kind) {
            ev.amount_set = DF_SET;
            ev.amount = e->amount_kind == 1 ? (df_num){.kind = DF_NUM_INT, .i = e->amount_int}
                                            : (df_num){.kind = DF_NUM_FLOAT, .f = e->amount_float};
        }
        if (e->owner >= 0) {
            ev.owner_set = DF_SET;
            ev.owner = (df_str){OWNERS[e->owner], 2};
        }
    }
    if (e->product >= 0) {
        ev.product_set = DF_SET;
        ev.product = (df_str){PRODUCTS[e->product], 2};
    }
    if (e->source >= 0) {
        ev.source_set = DF_SET;
        ev.source = (df_str){SOURCES[e->source], 3};
    }
    if (e->reason >= 0)
        ev.reason = (df_str){REASONS[e->reason], (uint32_t)strlen(REASONS[e->reason])};
    if (e->has_close_date) {
        ev.close_date_set = DF_SET;
        ev.close_date = e->close_date;
    }
    return ev;
}

static void fold_deals(void)
{
    static df_event mine[MAXEV];
    for (int d = 0; d < NDEALS; d++) {
        size_t n = 0;
        for (size_t i = 0; i < nevents; i++) {
            if (events[i].deal == d)
                mine[n++] = to_event(&events[i]);
        }
        df_fold_sort(mine, n);
        df_deal_init(&deals[d], mine[0].deal.ptr, mine[0].deal.len);
        for (size_t i = 0; i < n; i++)
            df_fold_apply(&deals[d], &mine[i], &pipelines);
        /* walk the moves: a stage event naming the current stage is no move,
         * but its reason, when it gives one, is the visit's */
        int current = -1, last_open = -1, reason = NREASONS - 1;
        created_of[d] = mine[0].at;
        for (size_t i = 0; i < n; i++) {
            created_of[d] = mine[i].at < created_of[d] ? mine[i].at : created_of[d];
            if (mine[i].type != DF_EV_STAGE)
                continue;
            int to = -1, given = NREASONS - 1;
            for (int k = 0; k < NSTAGES; k++)
                if (mine[i].stage.len == strlen(STAGES[k]) &&
                    memcmp(mine[i].stage.ptr, STAGES[k], mine[i].stage.len) == 0)
                    to = k;
            for (int k = 0; k < NREASONS - 1; k++)
                if (mine[i].reason.len == strlen(REASONS[k]) &&
                    memcmp(mine[i].reason.ptr, REASONS[k], mine[i].reason.len) == 0)
                    given = k;
            if (to == current) {
                if (given != NREASONS - 1)
                    reason = given;
                continue;
            }
            if (current >= 0 && current < 4) /* s0..s3 are open */
                last_open = current;
            current = to;
            reason = given;
        }
        lost_from_of[d] = last_open;
        reason_of[d] = reason;
    }
}

typedef struct expected {
    uint64_t won, lost, open;
    double win_rate, avg_cycle_days, open_amount, weighted, velocity;
    double days_sum[NSTAGES];
    uint64_t days_count[NSTAGES];
    double conversion[NSTAGES];
    uint64_t created, lost_from[NSTAGES], reasons[NREASONS];
    double won_amount, lost_amount;
} expected;

static int stage_index(const df_name *n)
{
    for (int i = 0; i < NSTAGES; i++)
        if (df_name_eq(n, STAGES[i], strlen(STAGES[i])))
            return i;
    return -1;
}

static bool visited(const df_deal *d, int stage)
{
    if (d->has_stage && stage_index(&d->stage) == stage)
        return true;
    for (int i = 0; i < d->nstage_times; i++)
        if (stage_index(&d->stage_times[i].stage) == stage)
            return true;
    return false;
}

/* The contract's definition, taken literally. */
static bool reached(const df_deal *d, int stage)
{
    if (visited(d, stage))
        return true;
    for (int j = stage + 1; j < NSTAGES; j++)
        if (j != 5 && visited(d, j)) /* open or won stages after it */
            return true;
    return false;
}

static void compute(expected *x, int owner, bool has_from, int64_t from, bool has_to, int64_t to)
{
    static df_deal_view view;
    double won_amount = 0, cycle = 0;
    uint64_t reached_count[NSTAGES] = {0};
    memset(x, 0, sizeof(*x));
    for (int i = 0; i < NDEALS; i++) {
        const df_deal *d = &deals[i];
        if (owner >= 0 && owner < PRODUCT_SCOPE &&
            !(d->has_owner && df_name_eq(&d->owner, OWNERS[owner], 2)))
            continue;
        if (owner >= PRODUCT_SCOPE && owner < SOURCE_SCOPE &&
            !(d->has_product && d->product.len == 2 &&
              memcmp(d->product.s, PRODUCTS[owner - PRODUCT_SCOPE], 2) == 0))
            continue;
        if (owner >= SOURCE_SCOPE &&
            !(d->has_source && df_name_eq(&d->source, SOURCES[owner - SOURCE_SCOPE], 3)))
            continue;
        if ((!has_from || created_of[i] >= from) && (!has_to || created_of[i] < to))
            x->created++;
        df_deal_view_at(d, NOW, &pipelines, &view);
        double amount = df_num_value(d->amount);
        if (d->amount.kind == DF_NUM_NONE)
            amount = 0;
        bool in_window = (!has_from || d->stage_since >= from) && (!has_to || d->stage_since < to);
        if (view.status == DF_OPEN) {
            x->open++;
            x->open_amount += amount;
            x->weighted += d->has_stage ? amount * view.probability / 100.0 : 0;
        } else if (in_window && view.status == DF_WON) {
            x->won++;
            won_amount += amount;
            cycle += (double)(d->stage_since - d->created) / DAY;
        } else if (in_window) {
            x->lost++;
            x->lost_amount += amount;
            if (lost_from_of[i] >= 0)
                x->lost_from[lost_from_of[i]]++;
            x->reasons[reason_of[i]]++;
        }
        for (int s = 0; s < view.nstage_times; s++) {
            int k = stage_index(&view.stage_times[s].stage);
            x->days_sum[k] += (double)view.stage_times[s].ms / DAY;
            x->days_count[k]++;
        }
        for (int s = 0; s < NSTAGES; s++)
            reached_count[s] += reached(d, s);
    }
    x->won_amount = won_amount;
    x->win_rate = x->won + x->lost ? (double)x->won / (double)(x->won + x->lost) : NAN;
    x->avg_cycle_days = x->won ? cycle / (double)x->won : NAN;
    x->velocity = NAN;
    if (x->open && x->won && won_amount != 0 && x->win_rate != 0 && x->avg_cycle_days != 0)
        x->velocity =
            (double)x->open * (won_amount / (double)x->won) * x->win_rate / x->avg_cycle_days;
    for (int s = 0; s < 4; s++)
        x->conversion[s] =
            reached_count[s] ? (double)reached_count[s + 1] / (double)reached_count[s] : NAN;
}

static bool close_to(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return fabs(a - b) <= 1e-6 * (1 + fabs(b));
}

static void check_metrics(int owner, bool has_from, int64_t from, bool has_to, int64_t to)
{
    expected x;
    compute(&x, owner, has_from, from, has_to, to);
    it_buf t = {0};
    it_buf_add(&t, "{op: metrics, pipeline: gen, now: %lld", (long long)NOW);
    if (owner >= SOURCE_SCOPE)
        it_buf_add(&t, ", source: %s", SOURCES[owner - SOURCE_SCOPE]);
    else if (owner >= PRODUCT_SCOPE)
        it_buf_add(&t, ", product: %s", PRODUCTS[owner - PRODUCT_SCOPE]);
    else if (owner >= 0)
        it_buf_add(&t, ", owner: %s", OWNERS[owner]);
    if (has_from)
        it_buf_add(&t, ", from: %lld", (long long)from);
    if (has_to)
        it_buf_add(&t, ", to: %lld", (long long)to);
    it_buf_add(&t, "}");
    const msgpack_object *m = it_call(&D, "%s", it_buf_get(&t));
    it_buf_free(&t);
    int failed = df_checks_failed;
    CHECK(it_ok(m));
    CHECK_INT(it_int(m, "won"), x.won);
    CHECK_INT(it_int(m, "lost"), x.lost);
    CHECK_INT(it_int(m, "open"), x.open);
    CHECK(close_to(it_num(m, "win_rate"), x.win_rate));
    CHECK(close_to(it_num(m, "avg_cycle_days"), x.avg_cycle_days));
    CHECK(close_to(it_num(m, "open_amount"), x.open_amount));
    CHECK(close_to(it_num(m, "weighted"), x.weighted));
    CHECK(close_to(it_num(m, "velocity"), x.velocity));
    CHECK_INT(it_int(m, "created"), x.created);
    CHECK(close_to(it_num(m, "won_amount"), x.won_amount));
    CHECK(close_to(it_num(m, "lost_amount"), x.lost_amount));
    CHECK(close_to(it_num(m, "avg_won_amount"), x.won ? x.won_amount / (double)x.won : NAN));
    const msgpack_object *lost_from = it_get(m, "lost_from");
    CHECK_INT(it_len(lost_from), 4); /* the open stages */
    for (int s = 0; s < 4; s++)
        CHECK_INT(it_int(lost_from, STAGES[s]), x.lost_from[s]);
    const msgpack_object *reasons = it_get(m, "loss_reasons");
    uint32_t nreasons = 0;
    for (int r = 0; r < NREASONS; r++) {
        const char *name = r == NREASONS - 1 ? "unspecified" : REASONS[r];
        nreasons += x.reasons[r] > 0;
        if (x.reasons[r] == 0)
            CHECK(it_get(reasons, name) == NULL);
        else
            CHECK_INT(it_int(reasons, name), x.reasons[r]);
    }
    CHECK_INT(it_len(reasons), nreasons);
    const msgpack_object *days = it_get(m, "avg_days_in_stage");
    for (int s = 0; s < NSTAGES; s++) {
        if (x.days_count[s] == 0)
            CHECK(it_get(days, STAGES[s]) == NULL);
        else
            CHECK(close_to(it_num(days, STAGES[s]), x.days_sum[s] / (double)x.days_count[s]));
    }
    const msgpack_object *conversion = it_get(m, "conversion");
    CHECK_INT(it_len(conversion), 4);
    for (uint32_t s = 0; s < 4; s++) {
        const msgpack_object *c = it_at(conversion, s);
        CHECK_STR(it_str(c, "from"), STAGES[s]);
        CHECK_STR(it_str(c, "to"), STAGES[s + 1]);
        CHECK(close_to(it_num(c, "rate"), x.conversion[s]));
    }
    if (df_checks_failed != failed) {
        fprintf(stderr, "metrics for owner %d window %d..%d: ", owner, has_from, has_to);
        msgpack_object_print(stderr, *m);
        fprintf(stderr, "\n");
    }
}

/* The board at now. Deals that moved on a day after now's have been in
 * their stage 0 days; those that moved on now's day count as one, never
 * below 0 (the contract's rule for a now before deals moved). */
static void check_board(int64_t now)
{
    static df_deal_view view;
    const msgpack_object *b = it_call(&D, "{op: board, pipeline: gen, now: %lld}", (long long)now);
    const msgpack_object *stages = it_get(b, "stages");
    CHECK_INT(it_len(stages), NSTAGES);
    int64_t now_day = now / DAY;
    for (int s = 0; s < NSTAGES; s++) {
        uint64_t count = 0, stale = 0;
        double amount = 0, days = 0, now_day_days = 0;
        for (int i = 0; i < NDEALS; i++) {
            const df_deal *d = &deals[i];
            if (!d->has_stage || stage_index(&d->stage) != s)
                continue;
            df_deal_view_at(d, now, &pipelines, &view);
            count++;
            amount += d->amount.kind == DF_NUM_NONE ? 0 : df_num_value(d->amount);
            if (d->stage_since / DAY < now_day)
                days += (double)(now - d->stage_since) / DAY;
            else if (d->stage_since / DAY == now_day)
                now_day_days += (double)(now - d->stage_since) / DAY;
            stale += view.stale;
        }
        if (now_day_days > 0)
            days += now_day_days;
        int probability[NSTAGES] = {10, 30, 50, 70, 100, 0};
        const msgpack_object *e = it_at(stages, (uint32_t)s);
        CHECK_STR(it_str(e, "stage"), STAGES[s]);
        CHECK_INT(it_int(e, "count"), count);
        CHECK(close_to(it_num(e, "amount"), amount));
        CHECK(close_to(it_num(e, "weighted"), amount * probability[s] / 100.0));
        if (s < 4) /* open stages; won and lost have no days in stage */
            CHECK(close_to(it_num(e, "avg_days_in_stage"), count ? days / (double)count : 0));
        else
            CHECK(it_is_nil(e, "avg_days_in_stage"));
        CHECK_INT(it_int(e, "stale"), stale);
    }
}

/* ---- forecast, calibration and series, the second way ---- */

typedef enum by_kind { BY_WEEK, BY_MONTH, BY_QUARTER } by_kind;
static const char *const BY_NAMES[] = {"week", "month", "quarter"};
#define MAX_PERIODS 120

/* The first ms of the calendar period t falls in, from the C library's
 * calendar (weeks from Monday). */
static int64_t calendar_start(by_kind by, int64_t t)
{
    time_t secs = (time_t)(t / 1000 - (t % 1000 < 0));
    struct tm tm;
    gmtime_r(&secs, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (by == BY_WEEK) {
        tm.tm_mday -= (tm.tm_wday + 6) % 7;
    } else {
        tm.tm_mday = 1;
        if (by == BY_QUARTER)
            tm.tm_mon -= tm.tm_mon % 3;
    }
    return (int64_t)timegm(&tm) * 1000;
}

static int64_t calendar_next(by_kind by, int64_t start)
{
    time_t secs = (time_t)(start / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    if (by == BY_WEEK)
        tm.tm_mday += 7;
    else
        tm.tm_mon += by == BY_QUARTER ? 3 : 1;
    return (int64_t)timegm(&tm) * 1000;
}

/* The periods overlapping [from, to), cut to it. */
static int calendar_periods(by_kind by, int64_t from, int64_t to, int64_t *starts, int64_t *ends)
{
    int n = 0;
    for (int64_t p = calendar_start(by, from); p < to && n < MAX_PERIODS;
         p = calendar_next(by, p)) {
        starts[n] = p > from ? p : from;
        ends[n] = calendar_next(by, p) < to ? calendar_next(by, p) : to;
        n++;
    }
    return n;
}

static bool in_scope(const df_deal *d, int scope)
{
    if (scope >= 0 && scope < PRODUCT_SCOPE)
        return d->has_owner && df_name_eq(&d->owner, OWNERS[scope], 2);
    if (scope >= PRODUCT_SCOPE && scope < SOURCE_SCOPE)
        return d->has_product && d->product.len == 2 &&
               memcmp(d->product.s, PRODUCTS[scope - PRODUCT_SCOPE], 2) == 0;
    if (scope >= SOURCE_SCOPE)
        return d->has_source && df_name_eq(&d->source, SOURCES[scope - SOURCE_SCOPE], 3);
    return true;
}

static void add_scope(it_buf *t, int scope)
{
    if (scope >= SOURCE_SCOPE)
        it_buf_add(t, ", source: %s", SOURCES[scope - SOURCE_SCOPE]);
    else if (scope >= PRODUCT_SCOPE)
        it_buf_add(t, ", product: %s", PRODUCTS[scope - PRODUCT_SCOPE]);
    else if (scope >= 0)
        it_buf_add(t, ", owner: %s", OWNERS[scope]);
}

typedef struct cell {
    uint64_t count;
    double amount, weighted;
} cell;

static void check_cell(const msgpack_object *c, const cell *x)
{
    CHECK_INT(it_int(c, "count"), x->count);
    CHECK(close_to(it_num(c, "amount"), x->amount));
    CHECK(close_to(it_num(c, "weighted"), x->weighted));
}

static void check_forecast(int scope, by_kind by, int64_t from, int64_t to, int64_t now)
{
    static df_deal_view view;
    int64_t starts[MAX_PERIODS], ends[MAX_PERIODS];
    cell open[MAX_PERIODS] = {{0}}, won[MAX_PERIODS] = {{0}}, overdue = {0}, no_date = {0};
    int n = calendar_periods(by, from, to, starts, ends);
    for (int i = 0; i < NDEALS; i++) {
        const df_deal *d = &deals[i];
        if (!in_scope(d, scope))
            continue;
        df_deal_view_at(d, now, &pipelines, &view);
        double amount = d->amount.kind == DF_NUM_NONE ? 0 : df_num_value(d->amount);
        if (!d->has_stage || view.status == DF_OPEN) {
            double weighted = d->has_stage ? amount * view.probability / 100.0 : 0;
            cell *c = &no_date;
            if (d->has_close_date) {
                for (int p = 0; p < n; p++)
                    if (d->close_date >= starts[p] && d->close_date < ends[p])
                        c = &open[p];
                if (d->close_date < now) {
                    overdue.count++;
                    overdue.amount += amount;
                    overdue.weighted += weighted;
                }
            }
            if (c != &no_date || !d->has_close_date) {
                c->count++;
                c->amount += amount;
                c->weighted += weighted;
            }
        } else if (view.status == DF_WON) {
            for (int p = 0; p < n; p++)
                if (d->stage_since >= starts[p] && d->stage_since < ends[p]) {
                    won[p].count++;
                    won[p].amount += amount;
                }
        }
    }
    it_buf t = {0};
    it_buf_add(&t, "{op: forecast, pipeline: gen, by: %s, from: %lld, to: %lld, now: %lld",
               BY_NAMES[by], (long long)from, (long long)to, (long long)now);
    add_scope(&t, scope);
    it_buf_add(&t, "}");
    const msgpack_object *r = it_call(&D, "%s", it_buf_get(&t));
    it_buf_free(&t);
    int failed = df_checks_failed;
    CHECK(it_ok(r));
    const msgpack_object *periods = it_get(r, "periods");
    CHECK_INT(it_len(periods), n);
    for (int p = 0; p < n && p < it_len(periods); p++) {
        const msgpack_object *e = it_at(periods, (uint32_t)p);
        CHECK_INT(it_int(e, "start"), starts[p]);
        CHECK_INT(it_int(e, "end"), ends[p]);
        check_cell(e, &open[p]);
        CHECK_INT(it_int(e, "won_count"), won[p].count);
        CHECK(close_to(it_num(e, "won_amount"), won[p].amount));
    }
    check_cell(it_get(r, "overdue"), &overdue);
    check_cell(it_get(r, "no_date"), &no_date);
    if (df_checks_failed != failed)
        fprintf(stderr, "forecast for scope %d by %s %lld..%lld\n", scope, BY_NAMES[by],
                (long long)from, (long long)to);
}

static void check_calibration(int scope, bool has_from, int64_t from, bool has_to, int64_t to)
{
    static df_deal_view view;
    uint64_t reached_count[NSTAGES] = {0}, won_count[NSTAGES] = {0};
    for (int i = 0; i < NDEALS; i++) {
        const df_deal *d = &deals[i];
        if (!in_scope(d, scope) || !d->has_stage)
            continue;
        df_deal_view_at(d, NOW, &pipelines, &view);
        if (view.status == DF_OPEN || (has_from && d->stage_since < from) ||
            (has_to && d->stage_since >= to))
            continue;
        for (int s = 0; s < NSTAGES; s++) {
            if (visited(d, s)) {
                reached_count[s]++;
                won_count[s] += view.status == DF_WON;
            }
        }
    }
    it_buf t = {0};
    it_buf_add(&t, "{op: calibration, pipeline: gen");
    add_scope(&t, scope);
    if (has_from)
        it_buf_add(&t, ", from: %lld", (long long)from);
    if (has_to)
        it_buf_add(&t, ", to: %lld", (long long)to);
    it_buf_add(&t, "}");
    const msgpack_object *r = it_call(&D, "%s", it_buf_get(&t));
    it_buf_free(&t);
    int probability[NSTAGES] = {10, 30, 50, 70, 100, 0};
    const msgpack_object *stages = it_get(r, "stages");
    CHECK_INT(it_len(stages), NSTAGES);
    for (int s = 0; s < NSTAGES; s++) {
        const msgpack_object *e = it_at(stages, (uint32_t)s);
        CHECK_STR(it_str(e, "stage"), STAGES[s]);
        CHECK_INT(it_int(e, "configured"), probability[s]);
        CHECK_INT(it_int(e, "reached"), reached_count[s]);
        CHECK_INT(it_int(e, "won"), won_count[s]);
        CHECK(close_to(it_num(e, "actual"),
                       reached_count[s] ? (double)won_count[s] / (double)reached_count[s] : NAN));
    }
}

static void check_series(int scope, by_kind by, int64_t from, int64_t to)
{
    int64_t starts[MAX_PERIODS], ends[MAX_PERIODS];
    int n = calendar_periods(by, from, to, starts, ends);
    it_buf t = {0};
    it_buf_add(&t, "{op: metrics, pipeline: gen, by: %s, from: %lld, to: %lld, now: %lld",
               BY_NAMES[by], (long long)from, (long long)to, (long long)NOW);
    add_scope(&t, scope);
    it_buf_add(&t, "}");
    const msgpack_object *m = it_call(&D, "%s", it_buf_get(&t));
    it_buf_free(&t);
    const msgpack_object *series = it_get(m, "series");
    CHECK_INT(it_len(series), n);
    for (int p = 0; p < n && p < it_len(series); p++) {
        expected x;
        compute(&x, scope, true, starts[p], true, ends[p]);
        const msgpack_object *e = it_at(series, (uint32_t)p);
        CHECK_INT(it_int(e, "start"), starts[p]);
        CHECK_INT(it_int(e, "end"), ends[p]);
        CHECK_INT(it_int(e, "won"), x.won);
        CHECK_INT(it_int(e, "lost"), x.lost);
        CHECK_INT(it_int(e, "created"), x.created);
        CHECK(close_to(it_num(e, "win_rate"), x.win_rate));
        CHECK(close_to(it_num(e, "avg_cycle_days"), x.avg_cycle_days));
        CHECK(close_to(it_num(e, "won_amount"), x.won_amount));
        CHECK(close_to(it_num(e, "lost_amount"), x.lost_amount));
        const msgpack_object *lost_from = it_get(e, "lost_from");
        for (int s = 0; s < 4; s++)
            CHECK_INT(it_int(lost_from, STAGES[s]), x.lost_from[s]);
        const msgpack_object *reasons = it_get(e, "loss_reasons");
        for (int r = 0; r < NREASONS; r++) {
            const char *name = r == NREASONS - 1 ? "unspecified" : REASONS[r];
            if (x.reasons[r] == 0)
                CHECK(it_get(reasons, name) == NULL);
            else
                CHECK_INT(it_int(reasons, name), x.reasons[r]);
        }
    }
}

static void check_outlook(void)
{
    int scopes[] = {-1, 0, 2, PRODUCT_SCOPE, SOURCE_SCOPE + 1};
    for (size_t k = 0; k < sizeof scopes / sizeof scopes[0]; k++) {
        int scope = scopes[k];
        check_forecast(scope, BY_MONTH, T0 - 30 * DAY, T0 + 150 * DAY, NOW);
        check_forecast(scope, BY_WEEK, T0 + 3 * DAY / 2, T0 + 90 * DAY + 7, T0 + 30 * DAY + 5);
        check_forecast(scope, BY_QUARTER, T0 - 100 * DAY, T0 + 200 * DAY, T0 - DAY);
        check_calibration(scope, false, 0, false, 0);
        check_calibration(scope, true, T0 + 10 * DAY + 77, true, T0 + 40 * DAY + DAY / 2);
        check_calibration(scope, true, T0 + 59 * DAY, true, T0 + 59 * DAY + 1);
        check_calibration(scope, false, 0, true, T0 + 30 * DAY + 5);
        check_calibration(scope, true, DECEMBER, true, DECEMBER + 31 * DAY);
        check_calibration(scope, true, T0 - 3 * DAY, true, T0 + 61 * DAY + 11);
        check_series(scope, BY_MONTH, T0, T0 + 61 * DAY);
        check_series(scope, BY_WEEK, T0 + DAY / 3, T0 + 45 * DAY + 11);
    }
}

static void check_all(void)
{
    /* windows within a month, across months, and holding a whole month
     * (T0 is in November 2023; the deals move into January) */
    int64_t windows[][2] = {
        {T0 + 10 * DAY, T0 + 40 * DAY},           {T0 + 20 * DAY + DAY / 3, T0 + 33 * DAY + 7},
        {T0 + 59 * DAY, T0 + 59 * DAY + 1},       {T0 - 3 * DAY, T0 + 61 * DAY + 11},
        {T0 + 16 * DAY + DAY / 2, T0 + 48 * DAY}, {DECEMBER, DECEMBER + 32 * DAY}};
    int scopes[] = {-1, 0, 1, 2, PRODUCT_SCOPE, PRODUCT_SCOPE + 1, SOURCE_SCOPE, SOURCE_SCOPE + 1};
    for (size_t k = 0; k < sizeof scopes / sizeof scopes[0]; k++) {
        int owner = scopes[k];
        check_metrics(owner, false, 0, false, 0);
        for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++)
            check_metrics(owner, true, windows[w][0], true, windows[w][1]);
        check_metrics(owner, true, T0 + 30 * DAY + 5, false, 0);
        check_metrics(owner, false, 0, true, T0 + 30 * DAY + 5);
    }
    /* now after every move, and on days within the months the deals moved in */
    check_board(NOW);
    check_board(T0 + 30 * DAY + 5);
    check_board(T0 + 47 * DAY + DAY / 2);
    check_outlook();
}

/* The deals are sent and folded here once; every test reads them. */
static bool start_daemon(void)
{
    if (!it_setup(&D, NULL))
        return false;
    define_pipeline();
    generate();
    send_shuffled();
    fold_deals();
    return true;
}

static void stop_daemon(void)
{
    it_teardown(&D);
}

/* The same from the stored aggregates after a restart. */
static void check_after_restart(void)
{
    CHECK_INT(it_stop(&D), 0);
    CHECK(it_restart(&D));
    check_all();
}

static const df_test tests[] = {
    {"check_all", check_all},
    {"after_restart", check_after_restart},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}
