/* test_apply.c: unit tests of apply.c, one table row per rule: admitting an
 * event (`expect`, unknown pipelines and stages, the pipeline limit), how it
 * is folded (in order, late, waiting for the refold at the end of the batch,
 * refolded now), the move it makes, and what a refold keeps of the stage. */
#include <stdint.h>
#include <string.h>

#include "apply.h"
#include "check.h"

#define T0   1700000000000LL /* 2023-11-14T22:13:20Z */
#define HOUR 3600000LL

/* Large (megabytes): kept out of the stack. */
static df_pipelines pipelines;
static df_deal before, after;
static df_event event;

static df_str str(const char *s)
{
    return (df_str){s, (uint32_t)strlen(s)};
}

static bool name_is(const df_name *n, const char *s)
{
    return df_name_eq(n, s, strlen(s));
}

/* An event as a table row gives it: its type, its time in hours after T0,
 * the stage (stage events), the pipeline it names, and `expect` (-1: none). */
typedef struct spec {
    df_event_type type;
    int hour;
    const char *stage;
    const char *pipeline;
    long long expect;
} spec;

#define STAGE(h, s)                                                                                \
    {                                                                                              \
        DF_EV_STAGE, (h), (s), NULL, -1                                                            \
    }
#define ACTIVITY(h)                                                                                \
    {                                                                                              \
        DF_EV_ACTIVITY, (h), NULL, NULL, -1                                                        \
    }
#define UPDATE(h)                                                                                  \
    {                                                                                              \
        DF_EV_UPDATE, (h), NULL, NULL, -1                                                          \
    }
#define MAX_HISTORY    4
#define NO_EXPECT      -1
#define CLOSE_DATE_SET 1

static void make_event(df_event *ev, const spec *s, uint64_t seq)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = s->type;
    ev->id = str("event");
    ev->deal = str("deal-1");
    ev->has_at = true;
    ev->at = T0 + s->hour * HOUR;
    ev->seq = seq;
    ev->recv = ev->at;
    if (s->type == DF_EV_ACTIVITY)
        ev->kind = str("call");
    if (s->stage)
        ev->stage = str(s->stage);
    if (s->pipeline)
        ev->pipeline = str(s->pipeline);
    if (s->expect >= 0) {
        ev->has_expect = true;
        ev->expect = (uint64_t)s->expect;
    }
}

/* `sales`: new 10 (open), demo 50 (open), won 100 (won), besides `default`. */
static void define_pipelines(void)
{
    df_pipelines_init(&pipelines);
    df_event ev;
    make_event(&ev, &(spec){DF_EV_PIPELINE, 0, NULL, "sales", -1}, 0);
    ev.deal = str("");
    ev.nstages = 3;
    ev.stages[0] = (df_stage_spec){str("new"), 10, -1, DF_OPEN};
    ev.stages[1] = (df_stage_spec){str("demo"), 50, -1, DF_OPEN};
    ev.stages[2] = (df_stage_spec){str("won"), 100, -1, DF_WON};
    CHECK_INT(df_pipelines_apply(&pipelines, &ev, NULL), 0);
}

/* Folds a history in order into `before`; NULL when it is empty (a new deal). */
static const df_deal *fold_history(const spec *history, int count)
{
    df_deal_init(&before, "deal-1", strlen("deal-1"));
    for (int i = 0; i < count; i++) {
        make_event(&event, &history[i], (uint64_t)i + 1);
        df_fold_apply(&before, &event, &pipelines);
    }
    return count > 0 ? &before : NULL;
}

static int history_count(const spec *history)
{
    int n = 0;
    while (n < MAX_HISTORY && history[n].type != 0)
        n++;
    return n;
}

/* ---- admission ---- */

typedef struct admission_case {
    const char *name;
    spec history[MAX_HISTORY];
    spec event;
    int code; /* 0: admitted */
    const char *message;
} admission_case;

static const admission_case admission_cases[] = {
    {"expect 0 on a new deal", {{0}}, {DF_EV_STAGE, 1, "lead", NULL, 0}, 0, NULL},
    {"expect 1 on a new deal (version 0)",
     {{0}},
     {DF_EV_STAGE, 1, "lead", NULL, 1},
     DF_ECONFLICT,
     "deal `deal-1` is at version 0, not 1"},
    {"expect the version of an existing deal",
     {STAGE(1, "lead"), ACTIVITY(2)},
     {DF_EV_ACTIVITY, 3, NULL, NULL, 2},
     0,
     NULL},
    {"expect another version of an existing deal",
     {STAGE(1, "lead"), ACTIVITY(2)},
     {DF_EV_ACTIVITY, 3, NULL, NULL, 1},
     DF_ECONFLICT,
     "deal `deal-1` is at version 2, not 1"},
    {"an unknown pipeline",
     {STAGE(1, "lead")},
     {DF_EV_ACTIVITY, 3, NULL, "ghost", NO_EXPECT},
     DF_EUNKNOWN_PIPELINE,
     "pipeline `ghost` is not defined"},
    {"an unknown stage of the deal's pipeline",
     {STAGE(1, "lead")},
     STAGE(3, "demo"),
     DF_EUNKNOWN_STAGE,
     "stage `demo` is not in pipeline `default`"},
    {"a stage of the pipeline the event names",
     {STAGE(1, "lead")},
     {DF_EV_STAGE, 3, "demo", "sales", NO_EXPECT},
     0,
     NULL},
};

static void test_admission(void)
{
    define_pipelines();
    for (size_t i = 0; i < sizeof(admission_cases) / sizeof(*admission_cases); i++) {
        const admission_case *c = &admission_cases[i];
        int n = history_count(c->history);
        const df_deal *b = fold_history(c->history, n);
        df_error err = {0};
        make_event(&event, &c->event, (uint64_t)n + 1);
        df_apply_result result = df_apply(&pipelines, b, false, &event, &after, &err);
        if (c->code == 0) {
            CHECK_INT(result, DF_APPLY_FOLDED);
        } else {
            CHECK_INT(result, DF_APPLY_REFUSED);
            CHECK_INT(err.code, c->code);
            CHECK_STR(err.message, c->message);
        }
        if ((result == DF_APPLY_REFUSED) != (c->code != 0))
            fprintf(stderr, "  in: %s\n", c->name);
    }
}

/* ---- fold decisions ---- */

typedef struct fold_case {
    const char *name;
    spec history[MAX_HISTORY];
    bool refold_waits;
    spec event;
    int close_date; /* CLOSE_DATE_SET: the update sets close_date */
    df_apply_result result;
    uint64_t version;      /* of *after, for FOLDED and WAITS */
    const char *stage;     /* of *after when FOLDED, NULL: none */
    uint64_t activities;   /* of *after when FOLDED */
    int64_t created_hours; /* of *after, for FOLDED and WAITS */
} fold_case;

static const fold_case fold_cases[] = {
    {"a new deal's stage event",
     {{0}},
     false,
     STAGE(1, "lead"),
     0,
     DF_APPLY_FOLDED,
     1,
     "lead",
     0,
     1},
    {"a stage event in order",
     {STAGE(1, "lead")},
     false,
     STAGE(2, "qualified"),
     0,
     DF_APPLY_FOLDED,
     2,
     "qualified",
     0,
     1},
    {"an activity in order",
     {STAGE(1, "lead")},
     false,
     ACTIVITY(2),
     0,
     DF_APPLY_FOLDED,
     2,
     "lead",
     1,
     1},
    {"an update in order",
     {STAGE(1, "lead")},
     false,
     UPDATE(2),
     0,
     DF_APPLY_FOLDED,
     2,
     "lead",
     0,
     1},
    {"a late activity is folded late",
     {STAGE(1, "lead"), STAGE(5, "qualified")},
     false,
     ACTIVITY(3),
     0,
     DF_APPLY_FOLDED,
     3,
     "qualified",
     1,
     1},
    {"a late update is folded late",
     {STAGE(2, "lead"), STAGE(5, "qualified")},
     false,
     UPDATE(1),
     0,
     DF_APPLY_FOLDED,
     3,
     "qualified",
     0,
     1},
    {"a late update of close_date waits for the refold",
     {STAGE(2, "lead"), STAGE(5, "qualified")},
     false,
     UPDATE(1),
     CLOSE_DATE_SET,
     DF_APPLY_WAITS,
     3,
     NULL,
     0,
     1},
    {"a late stage event before the move into the current stage waits",
     {STAGE(2, "lead"), STAGE(5, "qualified")},
     false,
     STAGE(1, "meeting"),
     0,
     DF_APPLY_WAITS,
     3,
     NULL,
     0,
     1},
    {"a late stage event naming the deal's own pipeline waits",
     {STAGE(2, "lead"), STAGE(5, "qualified")},
     false,
     {DF_EV_STAGE, 1, "meeting", "default", NO_EXPECT},
     0,
     DF_APPLY_WAITS,
     3,
     NULL,
     0,
     1},
    {"a late stage event after the move into the current stage is refolded now",
     {STAGE(2, "lead"), STAGE(5, "qualified"), ACTIVITY(8)},
     false,
     STAGE(6, "meeting"),
     0,
     DF_APPLY_REFOLD,
     0,
     NULL,
     0,
     0},
    {"a late event naming another pipeline is refolded now",
     {STAGE(2, "lead"), STAGE(5, "qualified")},
     false,
     {DF_EV_ACTIVITY, 3, NULL, "sales", NO_EXPECT},
     0,
     DF_APPLY_REFOLD,
     0,
     NULL,
     0,
     0},
    {"an event in order of a deal whose refold waits is refolded now",
     {STAGE(2, "lead"), STAGE(5, "qualified")},
     true,
     ACTIVITY(6),
     0,
     DF_APPLY_REFOLD,
     0,
     NULL,
     0,
     0},
    {"a late activity of a deal whose refold waits waits too",
     {STAGE(2, "lead"), STAGE(5, "qualified")},
     true,
     ACTIVITY(3),
     0,
     DF_APPLY_WAITS,
     3,
     NULL,
     0,
     2},
};

static void test_fold_decisions(void)
{
    define_pipelines();
    for (size_t i = 0; i < sizeof(fold_cases) / sizeof(*fold_cases); i++) {
        const fold_case *c = &fold_cases[i];
        int n = history_count(c->history);
        const df_deal *b = fold_history(c->history, n);
        df_error err = {0};
        int failed = df_checks_failed;
        make_event(&event, &c->event, (uint64_t)n + 1);
        if (c->close_date == CLOSE_DATE_SET) {
            event.close_date_set = DF_SET;
            event.close_date = T0 + 30 * 24 * HOUR;
        }
        df_apply_result result = df_apply(&pipelines, b, c->refold_waits, &event, &after, &err);
        CHECK_INT(result, c->result);
        if (result == DF_APPLY_FOLDED || result == DF_APPLY_WAITS) {
            CHECK_INT(after.version, c->version);
            CHECK_INT(after.created, T0 + c->created_hours * HOUR);
        }
        if (result == DF_APPLY_FOLDED) {
            CHECK(c->stage ? after.has_stage && name_is(&after.stage, c->stage) : !after.has_stage);
            CHECK_INT(after.activities, c->activities);
        }
        if (result == DF_APPLY_WAITS) /* the rest waits for the refold */
            CHECK_INT(after.activities, b->activities);
        if (result == DF_APPLY_REFOLD) /* the refold starts from the deal's id */
            CHECK(name_is(&after.deal, "deal-1"));
        /* a recorded event is folded whatever it is, the same way */
        CHECK_INT(df_apply_fold(&pipelines, b, c->refold_waits, &event, &after), c->result);
        if (df_checks_failed != failed)
            fprintf(stderr, "  in: %s\n", c->name);
    }
}

/* ---- moves ---- */

typedef struct move_case {
    const char *name;
    spec history[MAX_HISTORY];
    spec event;
    bool moved;
    const char *from; /* NULL: none */
    const char *to;
    const char *pipeline;
    int status;
} move_case;

static const move_case move_cases[] = {
    {"a new deal with a stage", {{0}}, STAGE(1, "lead"), true, NULL, "lead", "default", DF_OPEN},
    {"a new deal without one", {{0}}, ACTIVITY(1), false, NULL, NULL, NULL, 0},
    {"the same stage", {STAGE(1, "lead")}, STAGE(2, "lead"), false, NULL, NULL, NULL, 0},
    {"another stage", {STAGE(1, "lead")}, STAGE(2, "won"), true, "lead", "won", "default", DF_WON},
    {"a deal that had no stage",
     {ACTIVITY(1)},
     STAGE(2, "qualified"),
     true,
     NULL,
     "qualified",
     "default",
     DF_OPEN},
    {"into another pipeline",
     {STAGE(1, "lead")},
     {DF_EV_STAGE, 2, "demo", "sales", NO_EXPECT},
     true,
     "lead",
     "demo",
     "sales",
     DF_OPEN},
    {"no stage event", {STAGE(1, "lead")}, UPDATE(2), false, NULL, NULL, NULL, 0},
};

static void test_moves(void)
{
    define_pipelines();
    for (size_t i = 0; i < sizeof(move_cases) / sizeof(*move_cases); i++) {
        const move_case *c = &move_cases[i];
        int n = history_count(c->history);
        const df_deal *b = fold_history(c->history, n);
        df_error err = {0};
        df_move m;
        int failed = df_checks_failed;
        make_event(&event, &c->event, (uint64_t)n + 1);
        CHECK_INT(df_apply(&pipelines, b, false, &event, &after, &err), DF_APPLY_FOLDED);
        CHECK_INT(df_apply_moved(b, &after), c->moved);
        if (c->moved) {
            memset(&m, 0, sizeof(m));
            df_apply_move(&pipelines, b, &after, &m);
            CHECK_INT(m.has_from, c->from != NULL);
            CHECK(!c->from || name_is(&m.from, c->from));
            CHECK(name_is(&m.to, c->to));
            CHECK(name_is(&m.pipeline, c->pipeline));
            CHECK(name_is(&m.deal, "deal-1"));
            CHECK_INT(m.at, event.at);
            CHECK_INT(m.status, c->status);
        }
        if (df_checks_failed != failed)
            fprintf(stderr, "  in: %s\n", c->name);
    }
}

static void test_move_carries_amount_and_owner(void)
{
    define_pipelines();
    const spec history[] = {STAGE(1, "lead")};
    const df_deal *b = fold_history(history, 1);
    df_move m;
    make_event(&event, &(spec)STAGE(2, "proposal"), 2);
    event.amount_set = DF_SET;
    event.amount = (df_num){.kind = DF_NUM_INT, .i = 5000};
    event.owner_set = DF_SET;
    event.owner = str("ana");
    CHECK_INT(df_apply(&pipelines, b, false, &event, &after, NULL), DF_APPLY_FOLDED);
    memset(&m, 0, sizeof(m));
    df_apply_move(&pipelines, b, &after, &m);
    CHECK_INT(m.amount.kind, DF_NUM_INT);
    CHECK_INT(m.amount.i, 5000);
    CHECK(m.has_owner && name_is(&m.owner, "ana"));
}

/* ---- pipeline events ---- */

typedef struct pipeline_case {
    const char *name;
    bool full; /* DF_MAX_PIPELINES are defined */
    const char *pipeline;
    long long expect;
    bool admitted;
    const char *message;
} pipeline_case;

static const pipeline_case pipeline_cases[] = {
    {"a new pipeline", false, "fresh", NO_EXPECT, true, NULL},
    {"`expect` on a pipeline event", false, "fresh", 0, false,
     "`expect` applies to deal events, not to pipeline events"},
    {"a new pipeline at the limit", true, "fresh", NO_EXPECT, false,
     "at most 256 pipelines can be defined"},
    {"replacing a pipeline at the limit", true, "sales", NO_EXPECT, true, NULL},
};

static void fill_pipelines(void)
{
    char name[16];
    while (pipelines.count < DF_MAX_PIPELINES) {
        df_event ev;
        snprintf(name, sizeof(name), "p%d", pipelines.count);
        make_event(&ev, &(spec){DF_EV_PIPELINE, 0, NULL, name, -1}, 0);
        CHECK_INT(df_pipelines_apply(&pipelines, &ev, NULL), 0);
    }
}

static void test_pipeline_admission(void)
{
    for (size_t i = 0; i < sizeof(pipeline_cases) / sizeof(*pipeline_cases); i++) {
        const pipeline_case *c = &pipeline_cases[i];
        df_error err = {0};
        int failed = df_checks_failed;
        define_pipelines();
        if (c->full)
            fill_pipelines();
        make_event(&event, &(spec){DF_EV_PIPELINE, 0, NULL, c->pipeline, c->expect}, 1);
        event.deal = str("");
        CHECK_INT(df_apply_pipeline_admitted(&pipelines, &event, &err), c->admitted);
        if (!c->admitted) {
            CHECK_INT(err.code, DF_EBAD_REQUEST);
            CHECK_STR(err.message, c->message);
        }
        if (df_checks_failed != failed)
            fprintf(stderr, "  in: %s\n", c->name);
    }
}

/* ---- a refold keeps the stage as it was when the deal moved ---- */

typedef struct keep_case {
    const char *name;
    int after_since_hour; /* the refolded deal's move into its stage */
    const char *after_stage;
    const char *after_pipeline;
    bool kept;
} keep_case;

static const keep_case keep_cases[] = {
    {"the same visit", 1, "gone", "", true},
    {"another visit of the same stage", 2, "gone", "", false},
    {"another stage", 1, "lead", "", false},
    {"the same stage name in another pipeline", 1, "gone", "sales", false},
};

static void test_keep_stage_as_moved(void)
{
    for (size_t i = 0; i < sizeof(keep_cases) / sizeof(*keep_cases); i++) {
        const keep_case *c = &keep_cases[i];
        int failed = df_checks_failed;
        /* the deal moved into `gone` (won, 100) before a pipeline event removed it */
        df_deal_init(&before, "deal-1", strlen("deal-1"));
        before.has_stage = true;
        df_name_set(&before.stage, "gone", 4);
        before.stage_since = T0 + HOUR;
        before.stage_outcome = DF_WON;
        before.stage_probability = 100;
        /* the refold, with today's pipelines, no longer knows it */
        df_deal_init(&after, "deal-1", strlen("deal-1"));
        after.has_stage = true;
        df_name_set(&after.stage, c->after_stage, strlen(c->after_stage));
        df_name_set(&after.pipeline, c->after_pipeline, strlen(c->after_pipeline));
        after.stage_since = T0 + c->after_since_hour * HOUR;
        after.stage_outcome = DF_OPEN;
        after.stage_probability = 0;
        df_apply_keep_stage_as_moved(&before, &after);
        CHECK_INT(after.stage_outcome, c->kept ? DF_WON : DF_OPEN);
        CHECK_INT(after.stage_probability, c->kept ? 100 : 0);
        if (df_checks_failed != failed)
            fprintf(stderr, "  in: %s\n", c->name);
    }
}

static void test_keep_stage_without_stage(void)
{
    df_deal_init(&before, "deal-1", strlen("deal-1"));
    df_deal_init(&after, "deal-1", strlen("deal-1"));
    after.has_stage = true;
    df_name_set(&after.stage, "lead", 4);
    after.stage_probability = 10;
    df_apply_keep_stage_as_moved(&before, &after);
    CHECK_INT(after.stage_probability, 10);
}

static const df_test tests[] = {
    {"admission", test_admission},
    {"fold_decisions", test_fold_decisions},
    {"moves", test_moves},
    {"move_carries_amount_and_owner", test_move_carries_amount_and_owner},
    {"pipeline_admission", test_pipeline_admission},
    {"keep_stage_as_moved", test_keep_stage_as_moved},
    {"keep_stage_without_stage", test_keep_stage_without_stage},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return df_test_main(argc, argv, tests, NULL);
}
