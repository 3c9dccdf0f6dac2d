/* test_fold.c: unit tests of fold.c: stage moves, late events, days and staleness. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fold.h"

#define T0   1700000000000LL /* 2023-11-14T22:13:20Z */
#define DAY  DF_DAY_MS
#define HOUR 3600000LL

#define MAX_EVENTS 16

/* Large (megabytes): kept out of the stack. */
static df_pipelines pipelines;

static df_str str(const char *s)
{
    return (df_str){s, (uint32_t)strlen(s)};
}

static bool name_is(const df_name *n, const char *s)
{
    return df_name_eq(n, s, strlen(s));
}

static bool text_is(const df_text *t, const char *s)
{
    return t->len == strlen(s) && memcmp(t->s, s, t->len) == 0;
}

/* ms recorded for a stage, -1 when the stage has no entry. */
static int64_t time_in(const df_stage_time *times, int count, const char *stage)
{
    for (int i = 0; i < count; i++) {
        if (name_is(&times[i].stage, stage))
            return times[i].ms;
    }
    return -1;
}

static df_event base_event(df_event_type type, uint64_t seq, int64_t at)
{
    df_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.id = str("event");
    ev.deal = str("deal-1");
    ev.has_at = true;
    ev.at = at;
    ev.seq = seq;
    ev.recv = at;
    return ev;
}

static df_event stage_event(uint64_t seq, int64_t at, const char *stage)
{
    df_event ev = base_event(DF_EV_STAGE, seq, at);
    ev.stage = str(stage);
    return ev;
}

static df_event activity_event(uint64_t seq, int64_t at, const char *kind)
{
    df_event ev = base_event(DF_EV_ACTIVITY, seq, at);
    ev.kind = str(kind);
    return ev;
}

static df_event update_event(uint64_t seq, int64_t at)
{
    return base_event(DF_EV_UPDATE, seq, at);
}

static df_num int_amount(int64_t i)
{
    return (df_num){.kind = DF_NUM_INT, .i = i};
}

static df_num float_amount(double f)
{
    return (df_num){.kind = DF_NUM_FLOAT, .f = f};
}

/* `sales`: new 10 (rots after 3 days), demo 50 (never rots), won 100 (rot 2,
 * won), lost 0 (rot 1, lost). */
static void define_sales(void)
{
    df_event ev = base_event(DF_EV_PIPELINE, 0, T0);
    ev.deal = str("");
    ev.pipeline = str("sales");
    ev.nstages = 4;
    ev.stages[0] = (df_stage_spec){str("new"), 10, 3, DF_OPEN};
    ev.stages[1] = (df_stage_spec){str("demo"), 50, -1, DF_OPEN};
    ev.stages[2] = (df_stage_spec){str("won"), 100, 2, DF_WON};
    ev.stages[3] = (df_stage_spec){str("lost"), 0, 1, DF_LOST};
    CHECK_INT(df_pipelines_apply(&pipelines, &ev, NULL), 0);
}

/* What a deal would be with only the events at or before as_of, folded in
 * (at, seq) order whatever order they are given in. */
static void fold_as_of(df_deal *d, const df_event *events, size_t count, int64_t as_of)
{
    static df_event sorted[MAX_EVENTS];
    size_t kept = 0;
    for (size_t i = 0; i < count && kept < MAX_EVENTS; i++) {
        if (events[i].at <= as_of)
            sorted[kept++] = events[i];
    }
    df_fold_sort(sorted, kept);
    df_deal_init(d, "deal-1", strlen("deal-1"));
    for (size_t i = 0; i < kept; i++)
        df_fold_apply(d, &sorted[i], &pipelines);
}

static void fold_all(df_deal *d, const df_event *events, size_t count)
{
    fold_as_of(d, events, count, INT64_MAX);
}

/* Delivers events one by one as the writer does: applied at once when in
 * order or when order does not matter for it (df_fold_late), else the deal
 * is refolded from everything received so far. */
static void fold_arrivals(df_deal *d, const df_event *arrivals, size_t count)
{
    static df_event received[MAX_EVENTS];
    df_deal_init(d, "deal-1", strlen("deal-1"));
    for (size_t i = 0; i < count && i < MAX_EVENTS; i++) {
        received[i] = arrivals[i];
        if (df_fold_in_order(d, &arrivals[i]))
            df_fold_apply(d, &arrivals[i], &pipelines);
        else if (!df_fold_late(d, &arrivals[i]))
            fold_all(d, received, i + 1);
    }
}

static bool same_name(const df_name *a, const df_name *b)
{
    return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

static bool same_text(const df_text *a, const df_text *b)
{
    return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

static bool same_times(const df_stage_time *a, int acount, const df_stage_time *b, int bcount)
{
    if (acount != bcount)
        return false;
    for (int i = 0; i < acount; i++) {
        if (!same_name(&a[i].stage, &b[i].stage) || a[i].ms != b[i].ms)
            return false;
    }
    return true;
}

static bool same_amount(df_num a, df_num b)
{
    if (a.kind != b.kind)
        return false;
    return a.kind == DF_NUM_NONE || (a.kind == DF_NUM_INT ? a.i == b.i : a.f == b.f);
}

static bool same_deal(const df_deal *a, const df_deal *b)
{
    return same_name(&a->deal, &b->deal) && same_name(&a->pipeline, &b->pipeline) &&
           a->has_stage == b->has_stage && same_name(&a->stage, &b->stage) &&
           a->stage_since == b->stage_since && a->stage_outcome == b->stage_outcome &&
           a->stage_probability == b->stage_probability && a->has_activity == b->has_activity &&
           a->last_activity == b->last_activity && a->created == b->created &&
           same_amount(a->amount, b->amount) && a->has_owner == b->has_owner &&
           same_name(&a->owner, &b->owner) && a->has_name == b->has_name &&
           same_text(&a->name, &b->name) && a->has_product == b->has_product &&
           same_text(&a->product, &b->product) && a->has_close_date == b->has_close_date &&
           a->close_date == b->close_date && a->activities == b->activities &&
           a->version == b->version && a->last_at == b->last_at && a->last_seq == b->last_seq &&
           a->regressions == b->regressions && a->reopened == b->reopened &&
           a->pushes == b->pushes && a->has_source == b->has_source &&
           same_name(&a->source, &b->source) && a->has_last_open == b->has_last_open &&
           same_name(&a->last_open, &b->last_open) && a->has_reason == b->has_reason &&
           same_name(&a->reason, &b->reason) &&
           same_times(a->stage_times, a->nstage_times, b->stage_times, b->nstage_times);
}

static bool same_view(const df_deal_view *a, const df_deal_view *b)
{
    return a->status == b->status && a->probability == b->probability &&
           a->has_days_in_stage == b->has_days_in_stage && a->days_in_stage == b->days_in_stage &&
           a->has_days_since_activity == b->has_days_since_activity &&
           a->days_since_activity == b->days_since_activity && a->stale == b->stale &&
           a->rot_days == b->rot_days && a->idle_since == b->idle_since &&
           same_times(a->stage_times, a->nstage_times, b->stage_times, b->nstage_times);
}

static void test_default_pipeline(void)
{
    df_pipelines_init(&pipelines);
    CHECK_INT(pipelines.count, 1);
    const df_pipeline *p = df_pipelines_find(&pipelines, "default", 7);
    CHECK(p != NULL);
    CHECK(df_pipelines_find(&pipelines, "Default", 7) == NULL);
    CHECK(df_pipelines_find(&pipelines, "def", 3) == NULL);
    if (!p)
        return;
    CHECK_INT(p->nstages, 7);
    static const char *names[] = {"lead",        "qualified", "meeting", "proposal",
                                  "negotiation", "won",       "lost"};
    static const int probabilities[] = {10, 20, 40, 60, 80, 100, 0};
    static const int outcomes[] = {DF_OPEN, DF_OPEN, DF_OPEN, DF_OPEN, DF_OPEN, DF_WON, DF_LOST};
    for (int i = 0; i < 7; i++) {
        int index = -1;
        const df_stage_def *def = df_pipeline_stage(p, names[i], strlen(names[i]), &index);
        CHECK(def != NULL);
        if (!def)
            continue;
        CHECK_INT(index, i);
        CHECK_INT(def->probability, probabilities[i]);
        CHECK_INT(def->outcome, outcomes[i]);
        CHECK_INT(def->rot_days, -1);
    }
    CHECK(df_pipeline_stage(p, "closed", 6, NULL) == NULL);
}

static void test_pipelines_apply(void)
{
    df_pipelines_init(&pipelines);
    define_sales();
    CHECK_INT(pipelines.count, 2);
    const df_pipeline *sales = df_pipelines_find(&pipelines, "sales", 5);
    CHECK(sales != NULL);
    if (!sales)
        return;
    CHECK_INT(sales->nstages, 4);
    CHECK_INT(sales->stages[0].rot_days, 3);
    CHECK_INT(sales->stages[1].rot_days, -1);
    CHECK_INT(sales->stages[2].outcome, DF_WON);

    /* Replacing keeps the pipeline's place and takes the new list whole. */
    df_event ev = base_event(DF_EV_PIPELINE, 0, T0);
    ev.pipeline = str("sales");
    ev.nstages = 1;
    ev.stages[0] = (df_stage_spec){str("only"), 42, 9, DF_OPEN};
    CHECK_INT(df_pipelines_apply(&pipelines, &ev, NULL), 0);
    CHECK_INT(pipelines.count, 2);
    CHECK(df_pipelines_find(&pipelines, "sales", 5) == sales);
    CHECK_INT(sales->nstages, 1);
    CHECK(df_pipeline_stage(sales, "new", 3, NULL) == NULL);
    CHECK(df_pipeline_stage(sales, "only", 4, NULL) != NULL);

    /* Room for DF_MAX_PIPELINES; one more is refused, replacing still works. */
    char name[16];
    for (int i = pipelines.count; i < DF_MAX_PIPELINES; i++) {
        snprintf(name, sizeof name, "p%d", i);
        ev.pipeline = str(name);
        CHECK_INT(df_pipelines_apply(&pipelines, &ev, NULL), 0);
    }
    CHECK_INT(pipelines.count, DF_MAX_PIPELINES);
    ev.pipeline = str("one-too-many");
    CHECK_INT(df_pipelines_apply(&pipelines, &ev, NULL), DF_EBAD_REQUEST);
    CHECK_INT(pipelines.count, DF_MAX_PIPELINES);
    ev.pipeline = str("default");
    CHECK_INT(df_pipelines_apply(&pipelines, &ev, NULL), 0);
    CHECK_INT(pipelines.items[0].nstages, 1);
}

static void test_time_in_stage_across_visits(void)
{
    df_pipelines_init(&pipelines);
    df_event events[] = {
        stage_event(1, T0, "lead"),
        stage_event(2, T0 + 1 * DAY, "qualified"),
        stage_event(3, T0 + 3 * DAY, "lead"),
        stage_event(4, T0 + 6 * DAY, "qualified"),
    };
    df_deal d;
    df_deal_init(&d, "deal-1", 6);
    for (size_t i = 0; i < 4; i++) {
        CHECK(df_fold_in_order(&d, &events[i]));
        df_fold_apply(&d, &events[i], &pipelines);
    }
    /* Finished visits: lead [0,1d) + [3d,6d) = 4d; qualified [1d,3d) = 2d. */
    CHECK_INT(d.nstage_times, 2);
    CHECK(name_is(&d.stage_times[0].stage, "lead"));
    CHECK(name_is(&d.stage_times[1].stage, "qualified"));
    CHECK_INT(time_in(d.stage_times, d.nstage_times, "lead"), 4 * DAY);
    CHECK_INT(time_in(d.stage_times, d.nstage_times, "qualified"), 2 * DAY);
    CHECK(name_is(&d.stage, "qualified"));
    CHECK_INT(d.stage_since, T0 + 6 * DAY);
    CHECK_INT(d.version, 4);
    CHECK_INT(d.created, T0);
    CHECK_INT(d.last_at, T0 + 6 * DAY);
    CHECK_INT(d.last_seq, 4);

    /* At 10d the current visit [6d,10d) adds 4d: qualified 2d + 4d = 6d. */
    df_deal_view v;
    df_deal_view_at(&d, T0 + 10 * DAY, &pipelines, &v);
    CHECK_INT(v.nstage_times, 2);
    CHECK_INT(time_in(v.stage_times, v.nstage_times, "lead"), 4 * DAY);
    CHECK_INT(time_in(v.stage_times, v.nstage_times, "qualified"), 6 * DAY);
    CHECK_INT(v.days_in_stage, 4);
    CHECK_INT(v.status, DF_OPEN);
    CHECK_INT(v.probability, 20);
}

static void test_repeated_stage_keeps_since(void)
{
    df_pipelines_init(&pipelines);
    df_event events[3] = {
        stage_event(1, T0, "lead"),
        stage_event(2, T0 + 2 * DAY, "lead"),
        stage_event(3, T0 + 4 * DAY, "qualified"),
    };
    events[1].amount_set = DF_SET;
    events[1].amount = int_amount(500);
    events[1].owner_set = DF_SET;
    events[1].owner = str("ana");
    df_deal d;
    fold_all(&d, events, 2);
    /* The second lead event changes amount and owner but not stage_since. */
    CHECK_INT(d.stage_since, T0);
    CHECK_INT(d.nstage_times, 0);
    CHECK_INT(d.amount.kind, DF_NUM_INT);
    CHECK_INT(d.amount.i, 500);
    CHECK(d.has_owner && name_is(&d.owner, "ana"));
    CHECK_INT(d.version, 2);
    df_deal_view v;
    df_deal_view_at(&d, T0 + 3 * DAY, &pipelines, &v);
    CHECK_INT(v.days_in_stage, 3);
    CHECK_INT(time_in(v.stage_times, v.nstage_times, "lead"), 3 * DAY);

    /* Leaving lead at 4d counts the whole visit [0,4d); amount stays. */
    fold_all(&d, events, 3);
    CHECK_INT(time_in(d.stage_times, d.nstage_times, "lead"), 4 * DAY);
    CHECK_INT(d.amount.i, 500);
    CHECK(name_is(&d.owner, "ana"));
}

/* Eight events whose seq order is not their `at` order; D and E tie on at. */
static size_t late_events(df_event *events)
{
    size_t n = 0;
    events[n] = stage_event(1, T0, "lead"); /* A */
    events[n].amount_set = DF_SET;
    events[n].amount = int_amount(1000);
    events[n].owner_set = DF_SET;
    events[n++].owner = str("ana");
    events[n++] = stage_event(2, T0 + 5 * DAY, "proposal"); /* B */
    events[n++] = activity_event(3, T0 + 2 * DAY, "call");  /* C */
    events[n] = update_event(4, T0 + 3 * DAY);              /* D */
    events[n].owner_set = DF_SET;
    events[n].owner = str("bo");
    events[n].name_set = DF_SET;
    events[n++].name = str("Acme renewal");
    events[n] = update_event(5, T0 + 3 * DAY); /* E */
    events[n].owner_set = DF_SET;
    events[n++].owner = str("cy");
    events[n] = stage_event(6, T0 + 1 * DAY, "qualified"); /* F */
    events[n].amount_set = DF_SET;
    events[n++].amount = float_amount(2500.5);
    events[n++] = activity_event(7, T0 + 6 * DAY, "email"); /* G */
    events[n++] = stage_event(8, T0 + 4 * DAY, "lead");     /* H */
    return n;
}

static void test_late_events_any_order(void)
{
    df_pipelines_init(&pipelines);
    df_event events[8];
    size_t n = late_events(events);
    CHECK_INT(n, 8);

    /* In (at, seq) order: A(0) F(1d) C(2d) D(3d,4) E(3d,5) H(4d) B(5d) G(6d).
     * lead [0,1d), qualified [1d,4d), lead [4d,5d), proposal since 5d:
     * lead 1d + 1d = 2d, qualified 3d. E follows D, so the owner is cy. */
    df_deal want;
    fold_all(&want, events, n);
    CHECK(name_is(&want.stage, "proposal"));
    CHECK_INT(want.stage_since, T0 + 5 * DAY);
    CHECK_INT(want.stage_probability, 60);
    CHECK_INT(time_in(want.stage_times, want.nstage_times, "lead"), 2 * DAY);
    CHECK_INT(time_in(want.stage_times, want.nstage_times, "qualified"), 3 * DAY);
    CHECK_INT(want.nstage_times, 2);
    CHECK(name_is(&want.owner, "cy"));
    CHECK(want.has_name && text_is(&want.name, "Acme renewal"));
    CHECK_INT(want.amount.kind, DF_NUM_FLOAT);
    CHECK(want.amount.f == 2500.5);
    CHECK_INT(want.activities, 2);
    CHECK_INT(want.last_activity, T0 + 6 * DAY);
    CHECK_INT(want.version, 8);
    CHECK_INT(want.created, T0);
    CHECK_INT(want.last_at, T0 + 6 * DAY);
    CHECK_INT(want.last_seq, 7);

    /* At 8d: 3 days in proposal, 2 since the email; idle since the email. */
    int64_t now = T0 + 8 * DAY;
    df_deal_view want_view;
    df_deal_view_at(&want, now, &pipelines, &want_view);
    CHECK_INT(want_view.days_in_stage, 3);
    CHECK_INT(want_view.days_since_activity, 2);
    CHECK_INT(want_view.idle_since, T0 + 6 * DAY);
    CHECK_INT(time_in(want_view.stage_times, want_view.nstage_times, "proposal"), 3 * DAY);
    CHECK(!want_view.stale);

    /* Reversed, every rotation, and fixed pseudo-random shuffles. */
    df_event arrivals[8];
    uint32_t random_state = 12345;
    for (int round = 0; round < 2 + 8 + 60; round++) {
        if (round == 0) {
            memcpy(arrivals, events, sizeof arrivals);
        } else if (round == 1) {
            for (size_t i = 0; i < n; i++)
                arrivals[i] = events[n - 1 - i];
        } else if (round < 10) {
            for (size_t i = 0; i < n; i++)
                arrivals[i] = events[(i + (size_t)round) % n];
        } else {
            memcpy(arrivals, events, sizeof arrivals);
            for (size_t i = n - 1; i > 0; i--) {
                random_state = random_state * 1103515245u + 12345u;
                size_t j = (random_state >> 16) % (i + 1);
                df_event swap = arrivals[i];
                arrivals[i] = arrivals[j];
                arrivals[j] = swap;
            }
        }
        df_deal sorted, arrived;
        df_deal_view sorted_view, arrived_view;
        fold_all(&sorted, arrivals, n);
        fold_arrivals(&arrived, arrivals, n);
        df_deal_view_at(&sorted, now, &pipelines, &sorted_view);
        df_deal_view_at(&arrived, now, &pipelines, &arrived_view);
        CHECK(same_deal(&sorted, &want));
        CHECK(same_deal(&arrived, &want));
        CHECK(same_view(&sorted_view, &want_view));
        CHECK(same_view(&arrived_view, &want_view));
    }
}

static void test_ties_broken_by_seq(void)
{
    df_pipelines_init(&pipelines);
    /* Same at: lead (seq 4) comes before qualified (seq 5) whatever arrives first. */
    df_event events[2] = {stage_event(5, T0, "qualified"), stage_event(4, T0, "lead")};
    df_deal d;
    fold_arrivals(&d, events, 2);
    CHECK(name_is(&d.stage, "qualified"));
    CHECK_INT(d.stage_since, T0);
    CHECK_INT(d.nstage_times, 1);
    CHECK_INT(time_in(d.stage_times, d.nstage_times, "lead"), 0);
    CHECK_INT(d.last_seq, 5);

    df_event reversed[2] = {events[1], events[0]};
    df_deal other;
    fold_arrivals(&other, reversed, 2);
    CHECK(same_deal(&d, &other));
}

static void test_fold_in_order(void)
{
    df_pipelines_init(&pipelines);
    df_deal d;
    df_deal_init(&d, "deal-1", 6);
    df_event ev = stage_event(1, INT64_MIN, "lead");
    CHECK(df_fold_in_order(&d, &ev)); /* an empty deal takes anything */
    ev = stage_event(5, T0, "lead");
    df_fold_apply(&d, &ev, &pipelines);
    ev = stage_event(4, T0, "lead");
    CHECK(!df_fold_in_order(&d, &ev));
    ev = stage_event(5, T0, "lead");
    CHECK(!df_fold_in_order(&d, &ev));
    ev = stage_event(6, T0, "lead");
    CHECK(df_fold_in_order(&d, &ev));
    ev = stage_event(100, T0 - 1, "lead");
    CHECK(!df_fold_in_order(&d, &ev));
    ev = stage_event(1, T0 + 1, "lead");
    CHECK(df_fold_in_order(&d, &ev));
}

static void test_activities(void)
{
    df_pipelines_init(&pipelines);
    df_event events[3] = {
        stage_event(1, T0, "lead"), activity_event(2, T0 + 5 * DAY, "call"),
        activity_event(3, T0 + 2 * DAY, "note"), /* late */
    };
    df_deal d;
    fold_all(&d, events, 2);
    CHECK(!df_fold_in_order(&d, &events[2]));
    fold_arrivals(&d, events, 3);
    CHECK_INT(d.activities, 2);
    CHECK(d.has_activity);
    CHECK_INT(d.last_activity, T0 + 5 * DAY);
    CHECK_INT(d.version, 3);
    df_deal_view v;
    df_deal_view_at(&d, T0 + 7 * DAY, &pipelines, &v);
    CHECK(v.has_days_since_activity);
    CHECK_INT(v.days_since_activity, 2);
    CHECK_INT(v.idle_since, T0 + 5 * DAY);

    /* Activity alone: no stage, open, probability 0, idle since the activity. */
    fold_all(&d, &events[1], 1);
    df_deal_view_at(&d, T0 + 7 * DAY, &pipelines, &v);
    CHECK(!d.has_stage);
    CHECK(!v.has_days_in_stage);
    CHECK_INT(v.status, DF_OPEN);
    CHECK_INT(v.probability, 0);
    CHECK_INT(v.rot_days, -1);
    CHECK_INT(v.idle_since, T0 + 5 * DAY);
    CHECK_INT(v.nstage_times, 0);
    CHECK(!v.stale);

    /* Neither stage nor activity: idle since created. */
    df_event update = update_event(9, T0 + HOUR);
    fold_all(&d, &update, 1);
    df_deal_view_at(&d, T0 + 7 * DAY, &pipelines, &v);
    CHECK(!v.has_days_since_activity);
    CHECK_INT(v.idle_since, T0 + HOUR);
    CHECK_INT(d.created, T0 + HOUR);
}

static void test_days_floor_and_never_negative(void)
{
    df_pipelines_init(&pipelines);
    df_event events[2] = {stage_event(1, T0, "lead"), activity_event(2, T0 + DAY, "call")};
    df_deal d;
    fold_all(&d, events, 2);
    df_deal_view v;

    /* 2d - 1ms in stage is 1 day; 1d - 1ms since the call is 0 days. */
    df_deal_view_at(&d, T0 + 2 * DAY - 1, &pipelines, &v);
    CHECK_INT(v.days_in_stage, 1);
    CHECK_INT(v.days_since_activity, 0);
    df_deal_view_at(&d, T0 + 2 * DAY, &pipelines, &v);
    CHECK_INT(v.days_in_stage, 2);
    CHECK_INT(v.days_since_activity, 1);

    /* now before stage_since: 0 days, and the current visit counts 0 ms. */
    df_deal_view_at(&d, T0 - 1, &pipelines, &v);
    CHECK(v.has_days_in_stage && v.has_days_since_activity);
    CHECK_INT(v.days_in_stage, 0);
    CHECK_INT(v.days_since_activity, 0);
    CHECK_INT(time_in(v.stage_times, v.nstage_times, "lead"), 0);
    df_deal_view_at(&d, T0 - 5 * DAY, &pipelines, &v);
    CHECK_INT(v.days_in_stage, 0);

    CHECK_INT(df_days_between(0, 0), 0);
    CHECK_INT(df_days_between(0, DAY - 1), 0);
    CHECK_INT(df_days_between(0, DAY), 1);
    CHECK_INT(df_days_between(0, -1), 0);       /* floor(-1ms / day) = -1, clamped */
    CHECK_INT(df_days_between(0, -DAY - 1), 0); /* floor = -2, clamped */
    CHECK_INT(df_days_between(-DAY - 1, 0), 1); /* before the epoch */
    CHECK_INT(df_days_between(T0, T0 + 10 * DAY + 5), 10);
    /* Hostile times saturate instead of overflowing. */
    CHECK_INT(df_days_between(INT64_MIN, INT64_MAX), INT64_MAX / DAY);
    CHECK_INT(df_days_between(INT64_MAX, INT64_MIN), 0);
    df_deal_view_at(&d, INT64_MIN, &pipelines, &v);
    CHECK_INT(v.days_in_stage, 0);
    df_deal_view_at(&d, INT64_MAX, &pipelines, &v);
    CHECK_INT(v.days_in_stage, (INT64_MAX - T0) / DAY);

    df_event extremes[3] = {stage_event(1, INT64_MIN, "lead"),
                            stage_event(2, INT64_MAX, "qualified"),
                            stage_event(3, INT64_MAX, "lead")};
    fold_all(&d, extremes, 3);
    CHECK_INT(time_in(d.stage_times, d.nstage_times, "lead"), INT64_MAX);
    CHECK_INT(time_in(d.stage_times, d.nstage_times, "qualified"), 0);
    df_deal_view_at(&d, INT64_MIN, &pipelines, &v);
    CHECK_INT(time_in(v.stage_times, v.nstage_times, "lead"), INT64_MAX);
}

static void test_staleness(void)
{
    df_pipelines_init(&pipelines);
    define_sales();
    df_event events[4] = {stage_event(1, T0, "new"), activity_event(2, T0 + 2 * DAY, "call"),
                          stage_event(3, T0 + 6 * DAY, "demo"),
                          activity_event(4, T0 - 10 * DAY, "call")};
    events[0].pipeline = str("sales");
    df_deal d;
    df_deal_view v;

    /* new rots after 3 days: stale from exactly T0 + 3d on. */
    fold_all(&d, events, 1);
    df_deal_view_at(&d, T0 + 3 * DAY - 1, &pipelines, &v);
    CHECK_INT(v.rot_days, 3);
    CHECK(!v.stale);
    df_deal_view_at(&d, T0 + 3 * DAY, &pipelines, &v);
    CHECK(v.stale);

    /* The call at 2d restarts the idle time: stale from 5d. */
    fold_all(&d, events, 2);
    df_deal_view_at(&d, T0 + 3 * DAY, &pipelines, &v);
    CHECK_INT(v.idle_since, T0 + 2 * DAY);
    CHECK(!v.stale);
    df_deal_view_at(&d, T0 + 5 * DAY - 1, &pipelines, &v);
    CHECK(!v.stale);
    df_deal_view_at(&d, T0 + 5 * DAY, &pipelines, &v);
    CHECK(v.stale);

    /* A call before the stage move does not count: idle since the move. */
    df_event early[2] = {events[0], events[3]};
    fold_all(&d, early, 2);
    df_deal_view_at(&d, T0 + 3 * DAY - 1, &pipelines, &v);
    CHECK_INT(v.idle_since, T0);
    CHECK(!v.stale);
    df_deal_view_at(&d, T0 + 3 * DAY, &pipelines, &v);
    CHECK(v.stale);

    /* demo has no rot_days: never stale. */
    fold_all(&d, events, 3);
    df_deal_view_at(&d, T0 + 100 * DAY, &pipelines, &v);
    CHECK(name_is(&d.stage, "demo"));
    CHECK_INT(v.rot_days, -1);
    CHECK(!v.stale);

    /* won and lost carry rot_days but are never stale. */
    const char *closed[2] = {"won", "lost"};
    for (int i = 0; i < 2; i++) {
        df_event close[2] = {events[0], stage_event(5, T0 + DAY, closed[i])};
        fold_all(&d, close, 2);
        df_deal_view_at(&d, T0 + 100 * DAY, &pipelines, &v);
        CHECK_INT(v.status, i == 0 ? DF_WON : DF_LOST);
        CHECK_INT(v.probability, i == 0 ? 100 : 0);
        CHECK_INT(v.rot_days, i == 0 ? 2 : 1);
        CHECK(!v.stale);
    }
}

static void test_as_of(void)
{
    df_pipelines_init(&pipelines);
    df_event events[4] = {
        stage_event(1, T0, "lead"),
        stage_event(2, T0 + DAY, "qualified"),
        activity_event(3, T0 + 2 * DAY, "call"),
        stage_event(4, T0 + 3 * DAY, "meeting"),
    };
    df_deal d;
    df_deal_view v;

    /* as_of = 1d counts the event exactly at 1d; now defaults to as_of. */
    fold_as_of(&d, events, 4, T0 + DAY);
    CHECK_INT(d.version, 2);
    CHECK(name_is(&d.stage, "qualified"));
    CHECK_INT(d.activities, 0);
    df_deal_view_at(&d, T0 + DAY, &pipelines, &v);
    CHECK_INT(v.days_in_stage, 0);
    CHECK_INT(time_in(v.stage_times, v.nstage_times, "lead"), DAY);
    CHECK_INT(time_in(v.stage_times, v.nstage_times, "qualified"), 0);
    CHECK_INT(v.probability, 20);

    fold_as_of(&d, events, 4, T0 + DAY - 1);
    CHECK_INT(d.version, 1);
    CHECK(name_is(&d.stage, "lead"));

    fold_as_of(&d, events, 4, T0 - 1);
    CHECK_INT(d.version, 0); /* no event counts: the deal is not found */

    fold_as_of(&d, events, 4, INT64_MAX);
    CHECK_INT(d.version, 4);
    CHECK(name_is(&d.stage, "meeting"));
    CHECK_INT(d.activities, 1);
}

static void test_update_nil_clears(void)
{
    df_pipelines_init(&pipelines);
    df_event events[6];
    events[0] = update_event(1, T0);
    events[0].amount_set = DF_SET;
    events[0].amount = int_amount(1200);
    events[0].owner_set = DF_SET;
    events[0].owner = str("ana");
    events[0].name_set = DF_SET;
    events[0].name = str("Acme");
    events[0].product_set = DF_SET;
    events[0].product = str("Widgets");
    events[0].close_date_set = DF_SET;
    events[0].close_date = T0 + 30 * DAY;
    events[1] = update_event(2, T0 + DAY);
    events[1].name_set = DF_NIL;
    events[1].amount_set = DF_SET;
    events[1].amount = float_amount(99.5);
    events[2] = update_event(3, T0 + 2 * DAY);
    events[2].amount_set = DF_NIL;
    events[2].owner_set = DF_NIL;
    events[2].product_set = DF_NIL;
    events[2].close_date_set = DF_NIL;
    events[3] = stage_event(4, T0 + 3 * DAY, "lead");
    events[3].amount_set = DF_SET;
    events[3].amount = int_amount(7);
    events[3].owner_set = DF_SET;
    events[3].owner = str("bo");
    events[3].name_set = DF_SET; /* not a stage key: the projection ignores it */
    events[3].name = str("ignored");
    events[4] = stage_event(5, T0 + 4 * DAY, "lead");
    events[4].amount_set = DF_NIL;
    df_deal d;

    fold_all(&d, events, 1);
    CHECK_INT(d.amount.kind, DF_NUM_INT);
    CHECK_INT(d.amount.i, 1200);
    CHECK(d.has_owner && name_is(&d.owner, "ana"));
    CHECK(d.has_name && text_is(&d.name, "Acme"));
    CHECK(d.has_product && text_is(&d.product, "Widgets"));
    CHECK(d.has_close_date);
    CHECK_INT(d.close_date, T0 + 30 * DAY);
    CHECK(!d.has_stage);

    /* nil clears name; absent keys stay. */
    fold_all(&d, events, 2);
    CHECK(!d.has_name);
    CHECK_INT(d.amount.kind, DF_NUM_FLOAT);
    CHECK(d.amount.f == 99.5);
    CHECK(d.has_owner && name_is(&d.owner, "ana"));
    CHECK(d.has_product && d.has_close_date);

    fold_all(&d, events, 3);
    CHECK_INT(d.amount.kind, DF_NUM_NONE);
    CHECK(!d.has_owner && !d.has_product && !d.has_close_date && !d.has_name);

    fold_all(&d, events, 4);
    CHECK_INT(d.amount.i, 7);
    CHECK(d.has_owner && name_is(&d.owner, "bo"));
    CHECK(!d.has_name);

    fold_all(&d, events, 5);
    CHECK_INT(d.amount.kind, DF_NUM_NONE);
    CHECK(d.has_owner && name_is(&d.owner, "bo"));
    CHECK_INT(d.version, 5);

    /* Longer than the struct holds: truncated, not overrun. */
    static char long_text[301];
    memset(long_text, 'x', 300);
    events[5] = update_event(6, T0 + 5 * DAY);
    events[5].owner_set = DF_SET;
    events[5].owner = str(long_text);
    events[5].name_set = DF_SET;
    events[5].name = str(long_text);
    fold_all(&d, events, 6);
    CHECK_INT(d.owner.len, DF_MAX_NAME);
    CHECK_INT(d.name.len, DF_MAX_TEXT);
}

static void replace_default(const df_stage_spec *stages, int count)
{
    df_event ev = base_event(DF_EV_PIPELINE, 0, T0);
    ev.pipeline = str("default");
    ev.nstages = count;
    for (int i = 0; i < count; i++)
        ev.stages[i] = stages[i];
    CHECK_INT(df_pipelines_apply(&pipelines, &ev, NULL), 0);
}

/* source is set by stage and update events like owner; a loss keeps the open
 * stage before it and its reason */
static void test_source_and_loss(void)
{
    df_deal d;
    df_event events[6];
    events[0] = stage_event(1, 1000, "lead");
    events[0].source_set = DF_SET;
    events[0].source = str("web");
    events[1] = stage_event(2, 2000, "meeting");
    events[2] = update_event(3, 3000);
    events[2].source_set = DF_SET;
    events[2].source = str("referral");
    events[3] = stage_event(4, 4000, "won");
    events[4] = stage_event(5, 5000, "lost");
    events[4].reason = str("price");
    events[5] = stage_event(6, 6000, "lost");
    events[5].reason = str("budget\0ignored");
    events[5].reason.len = 14;
    df_deal_init(&d, "s", 1);
    for (int i = 0; i < 5; i++)
        df_fold_apply(&d, &events[i], &pipelines);
    CHECK(d.has_source && name_is(&d.source, "referral"));
    CHECK(d.has_last_open && name_is(&d.last_open, "meeting")); /* won is not open */
    CHECK(d.has_reason && name_is(&d.reason, "price"));
    df_fold_apply(&d, &events[5], &pipelines); /* the same stage again, another reason */
    CHECK(d.has_reason && name_is(&d.reason, "budget"));
    CHECK_INT(d.stage_since, 5000);

    /* a late update older than the source's event leaves it */
    df_event late = update_event(7, 2500);
    late.source_set = DF_NIL;
    CHECK(df_fold_late(&d, &late));
    CHECK(d.has_source && name_is(&d.source, "referral"));
    late.at = 7000;
    late.seq = 8;
    df_fold_apply(&d, &late, &pipelines);
    CHECK(!d.has_source && d.source.len == 0);

    /* a move out of the loss forgets its reason; a long reason is cut */
    df_event reopen = stage_event(9, 8000, "proposal");
    df_fold_apply(&d, &reopen, &pipelines);
    CHECK(!d.has_reason);
    char long_reason[300];
    memset(long_reason, 'x', sizeof long_reason);
    memcpy(long_reason + DF_MAX_REASON - 1, "\xc3\xa9", 2); /* é across the limit */
    df_event loss = stage_event(10, 9000, "lost");
    loss.reason = (df_str){long_reason, sizeof long_reason};
    df_fold_apply(&d, &loss, &pipelines);
    CHECK(d.has_reason && d.reason.len == DF_MAX_REASON - 1);
    CHECK(name_is(&d.last_open, "proposal"));
}

static void test_pipeline_replaced(void)
{
    df_pipelines_init(&pipelines);
    df_event events[2] = {stage_event(1, T0, "lead"), stage_event(2, T0 + DAY, "meeting")};
    df_deal d;
    fold_all(&d, events, 2);
    int outcome, probability, rot_days;
    df_deal_stage_info(&d, &pipelines, &outcome, &probability, &rot_days);
    CHECK_INT(outcome, DF_OPEN);
    CHECK_INT(probability, 40);
    CHECK_INT(rot_days, -1);

    /* meeting is gone: the values it had when the deal moved there remain. */
    const df_stage_spec without_meeting[] = {{str("lead"), 10, -1, DF_OPEN},
                                             {str("proposal"), 60, -1, DF_OPEN},
                                             {str("won"), 100, -1, DF_WON},
                                             {str("lost"), 0, -1, DF_LOST}};
    replace_default(without_meeting, 4);
    df_deal_stage_info(&d, &pipelines, &outcome, &probability, &rot_days);
    CHECK_INT(outcome, DF_OPEN);
    CHECK_INT(probability, 40);
    CHECK_INT(rot_days, -1);
    df_deal_view v;
    df_deal_view_at(&d, T0 + 100 * DAY, &pipelines, &v);
    CHECK_INT(v.probability, 40);
    CHECK(!v.stale);

    /* meeting is back with new values: they apply, rot_days included. */
    const df_stage_spec meeting_again[] = {{str("meeting"), 55, 7, DF_OPEN}};
    replace_default(meeting_again, 1);
    df_deal_view_at(&d, T0 + 8 * DAY - 1, &pipelines, &v);
    CHECK_INT(v.probability, 55);
    CHECK_INT(v.rot_days, 7);
    CHECK(!v.stale);
    df_deal_view_at(&d, T0 + 8 * DAY, &pipelines, &v);
    CHECK(v.stale);

    /* A won deal stays won when `won` leaves the pipeline. */
    df_pipelines_init(&pipelines);
    events[1] = stage_event(2, T0 + DAY, "won");
    fold_all(&d, events, 2);
    replace_default(without_meeting, 2);
    df_deal_view_at(&d, T0 + 2 * DAY, &pipelines, &v);
    CHECK_INT(v.status, DF_WON);
    CHECK_INT(v.probability, 100);

    /* A recorded stage the pipeline never had still moves the deal. */
    events[1] = stage_event(2, T0 + DAY, "ghost");
    fold_all(&d, events, 2);
    CHECK(name_is(&d.stage, "ghost"));
    CHECK_INT(d.stage_since, T0 + DAY);
    df_deal_view_at(&d, T0 + 2 * DAY, &pipelines, &v);
    CHECK_INT(v.status, DF_OPEN);
    CHECK_INT(v.probability, 0);
    CHECK_INT(v.rot_days, -1);
}

static void test_check_event(void)
{
    df_pipelines_init(&pipelines);
    define_sales();
    df_error err;
    df_event ev;
    df_name in_sales, unnamed;
    df_name_set(&in_sales, "sales", 5);
    df_name_set(&unnamed, "", 0);

    /* A new deal: stages of `default` unless the event names a pipeline. */
    ev = stage_event(1, T0, "lead");
    CHECK_INT(df_check_event(&pipelines, NULL, &ev, &err), 0);
    CHECK_INT(df_check_event(&pipelines, &unnamed, &ev, &err), 0);
    ev = stage_event(1, T0, "nope");
    CHECK_INT(df_check_event(&pipelines, NULL, &ev, &err), DF_EUNKNOWN_STAGE);
    CHECK_INT(err.code, DF_EUNKNOWN_STAGE);
    CHECK_STR(err.message, "stage `nope` is not in pipeline `default`");
    CHECK_INT(df_check_event(&pipelines, NULL, &ev, NULL), DF_EUNKNOWN_STAGE);
    ev = stage_event(1, T0, "demo");
    ev.pipeline = str("sales");
    CHECK_INT(df_check_event(&pipelines, NULL, &ev, &err), 0);
    ev = stage_event(1, T0, "lead");
    ev.pipeline = str("sales");
    CHECK_INT(df_check_event(&pipelines, NULL, &ev, &err), DF_EUNKNOWN_STAGE);
    CHECK_STR(err.message, "stage `lead` is not in pipeline `sales`");

    /* Naming a pipeline that does not exist, whatever the type. */
    ev = activity_event(1, T0, "call");
    ev.pipeline = str("ghost");
    CHECK_INT(df_check_event(&pipelines, NULL, &ev, &err), DF_EUNKNOWN_PIPELINE);
    CHECK_INT(err.code, DF_EUNKNOWN_PIPELINE);
    CHECK_STR(err.message, "pipeline `ghost` is not defined");
    ev = stage_event(1, T0, "lead");
    ev.pipeline = str("ghost");
    CHECK_INT(df_check_event(&pipelines, &in_sales, &ev, &err), DF_EUNKNOWN_PIPELINE);
    ev = update_event(1, T0);
    ev.pipeline = str("ghost");
    CHECK_INT(df_check_event(&pipelines, NULL, &ev, &err), DF_EUNKNOWN_PIPELINE);
    ev.pipeline = str("sales");
    CHECK_INT(df_check_event(&pipelines, NULL, &ev, &err), 0);
    ev = activity_event(1, T0, "call");
    CHECK_INT(df_check_event(&pipelines, &in_sales, &ev, &err), 0);

    /* A deal in sales: its stages, unless the event names another pipeline. */
    ev = stage_event(1, T0, "demo");
    CHECK_INT(df_check_event(&pipelines, &in_sales, &ev, &err), 0);
    ev = stage_event(1, T0, "lead");
    CHECK_INT(df_check_event(&pipelines, &in_sales, &ev, &err), DF_EUNKNOWN_STAGE);
    CHECK_STR(err.message, "stage `lead` is not in pipeline `sales`");
    ev.pipeline = str("default");
    CHECK_INT(df_check_event(&pipelines, &in_sales, &ev, &err), 0);

    /* Pipeline events always pass: they define the pipeline they name. */
    ev = base_event(DF_EV_PIPELINE, 1, T0);
    ev.pipeline = str("brand-new");
    CHECK_INT(df_check_event(&pipelines, NULL, &ev, &err), 0);
}

static void test_move_to_other_pipeline(void)
{
    df_pipelines_init(&pipelines);
    define_sales();
    df_event events[5] = {
        stage_event(1, T0, "lead"),           stage_event(2, T0 + DAY, "new"),
        stage_event(3, T0 + 2 * DAY, "demo"), activity_event(4, T0 + 3 * DAY, "call"),
        update_event(5, T0 + 4 * DAY),
    };
    events[1].pipeline = str("sales");
    events[3].pipeline = str("default");
    events[4].pipeline = str("sales");
    df_deal d;
    int outcome, probability, rot_days;

    fold_all(&d, events, 1);
    CHECK_INT(d.pipeline.len, 0); /* `default` */
    CHECK_INT(d.stage_probability, 10);

    /* Into sales at `new`; lead lasted 1d. */
    fold_all(&d, events, 2);
    CHECK(name_is(&d.pipeline, "sales"));
    CHECK(name_is(&d.stage, "new"));
    CHECK_INT(d.stage_since, T0 + DAY);
    CHECK_INT(time_in(d.stage_times, d.nstage_times, "lead"), DAY);
    df_deal_stage_info(&d, &pipelines, &outcome, &probability, &rot_days);
    CHECK_INT(probability, 10);
    CHECK_INT(rot_days, 3);

    /* A stage event naming no pipeline resolves in the deal's: sales. */
    fold_all(&d, events, 3);
    CHECK(name_is(&d.stage, "demo"));
    CHECK_INT(d.stage_probability, 50);

    /* An activity naming default moves the deal there; demo is not in it,
     * so the stored values stand. */
    fold_all(&d, events, 4);
    CHECK(name_is(&d.pipeline, "default"));
    df_deal_stage_info(&d, &pipelines, &outcome, &probability, &rot_days);
    CHECK_INT(outcome, DF_OPEN);
    CHECK_INT(probability, 50);
    CHECK_INT(rot_days, -1);

    /* An update naming sales moves it back. */
    fold_all(&d, events, 5);
    CHECK(name_is(&d.pipeline, "sales"));
    CHECK_INT(d.stage_since, T0 + 2 * DAY);
}

static void test_many_distinct_stages(void)
{
    df_pipelines_init(&pipelines);
    static char names[DF_MAX_STAGES + 6][8];
    df_deal d;
    df_deal_init(&d, "deal-1", 6);
    for (int i = 0; i < DF_MAX_STAGES + 6; i++) {
        snprintf(names[i], sizeof names[i], "s%d", i);
        df_event ev = stage_event((uint64_t)i + 1, T0 + i * HOUR, names[i]);
        df_fold_apply(&d, &ev, &pipelines);
    }
    /* The list holds DF_MAX_STAGES stages; later ones are not counted. */
    CHECK_INT(d.nstage_times, DF_MAX_STAGES);
    CHECK_INT(time_in(d.stage_times, d.nstage_times, "s0"), HOUR);
    df_deal_view v;
    df_deal_view_at(&d, T0 + 100 * DAY, &pipelines, &v);
    CHECK_INT(v.nstage_times, DF_MAX_STAGES);
    CHECK_INT(v.days_in_stage, 97);
}

static df_event close_date_event(uint64_t seq, int64_t at, int64_t close_date)
{
    df_event ev = update_event(seq, at);
    ev.close_date_set = DF_SET;
    ev.close_date = close_date;
    return ev;
}

static void test_regressions_reopened_pushes(void)
{
    df_pipelines_init(&pipelines);
    /* lead -> proposal -> qualified (a regression) -> lost -> meeting (reopened)
     * -> lead (a regression) -> won; close_date 10d, 20d (pushed), 15d, 30d
     * (pushed), nil, 40d (not a push: nothing to push from). */
    df_event events[MAX_EVENTS];
    size_t n = 0;
    events[n++] = stage_event(1, T0, "lead");
    events[n++] = stage_event(2, T0 + 1 * DAY, "proposal");
    events[n++] = stage_event(3, T0 + 2 * DAY, "qualified");
    events[n++] = stage_event(4, T0 + 3 * DAY, "lost");
    events[n++] = stage_event(5, T0 + 4 * DAY, "meeting");
    events[n++] = stage_event(6, T0 + 5 * DAY, "lead");
    events[n++] = stage_event(7, T0 + 6 * DAY, "won");
    events[n++] = close_date_event(8, T0 + 1 * HOUR, T0 + 10 * DAY);
    events[n++] = close_date_event(9, T0 + 2 * HOUR, T0 + 20 * DAY);
    events[n++] = close_date_event(10, T0 + 3 * HOUR, T0 + 15 * DAY);
    events[n++] = close_date_event(11, T0 + 4 * HOUR, T0 + 30 * DAY);
    df_event clear = update_event(12, T0 + 5 * HOUR);
    clear.close_date_set = DF_NIL;
    events[n++] = clear;
    events[n++] = close_date_event(13, T0 + 6 * HOUR, T0 + 40 * DAY);

    df_deal want;
    fold_all(&want, events, n);
    CHECK_INT(want.regressions, 2);
    CHECK_INT(want.reopened, 1);
    CHECK_INT(want.pushes, 2);
    CHECK(name_is(&want.stage, "won"));

    /* the same whatever order they arrive in */
    df_event arrivals[MAX_EVENTS];
    for (size_t i = 0; i < n; i++)
        arrivals[i] = events[n - 1 - i];
    df_deal arrived;
    fold_arrivals(&arrived, arrivals, n);
    CHECK(same_deal(&arrived, &want));
    for (size_t i = 0; i < n; i++)
        arrivals[i] = events[(i * 5) % n];
    fold_arrivals(&arrived, arrivals, n);
    CHECK(same_deal(&arrived, &want));

    /* a move from won back to won's pipeline's first stage is a reopening,
     * not a regression; a move between pipelines is neither */
    define_sales();
    df_deal d;
    df_deal_init(&d, "deal-1", strlen("deal-1"));
    df_event e1 = stage_event(1, T0, "demo");
    df_fold_apply(&d, &e1, &pipelines);
    df_event e2 = stage_event(2, T0 + DAY, "new");
    e2.pipeline = str("sales");
    df_fold_apply(&d, &e2, &pipelines);
    CHECK_INT(d.regressions, 0);
    df_event e3 = stage_event(3, T0 + 2 * DAY, "won");
    df_fold_apply(&d, &e3, &pipelines);
    df_event e4 = stage_event(4, T0 + 3 * DAY, "new");
    df_fold_apply(&d, &e4, &pipelines);
    CHECK_INT(d.regressions, 0);
    CHECK_INT(d.reopened, 1);
}

static const df_test tests[] = {
    {"default_pipeline", test_default_pipeline},
    {"pipelines_apply", test_pipelines_apply},
    {"time_in_stage_across_visits", test_time_in_stage_across_visits},
    {"repeated_stage_keeps_since", test_repeated_stage_keeps_since},
    {"late_events_any_order", test_late_events_any_order},
    {"ties_broken_by_seq", test_ties_broken_by_seq},
    {"fold_in_order", test_fold_in_order},
    {"activities", test_activities},
    {"days_floor_and_never_negative", test_days_floor_and_never_negative},
    {"staleness", test_staleness},
    {"as_of", test_as_of},
    {"update_nil_clears", test_update_nil_clears},
    {"source_and_loss", test_source_and_loss},
    {"pipeline_replaced", test_pipeline_replaced},
    {"check_event", test_check_event},
    {"move_to_other_pipeline", test_move_to_other_pipeline},
    {"many_distinct_stages", test_many_distinct_stages},
    {"regressions_reopened_pushes", test_regressions_reopened_pushes},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return df_test_main(argc, argv, tests, NULL);
}
