/* test_notify.c: deal.moved notifications: topics, bodies, the prev chain, silent events. */
#include <string.h>

#include "check.h"
#include "harness.h"

#define T0                 IT_T0
#define DAY                IT_DAY
#define RECEIVE_TIMEOUT_MS 20000

static it_daemon D;
static void *sub;
static int64_t last_seen; /* seq of the last notification received: the next one's prev */
static int received;

static const char *const MOVE_KEYS[] = {"seq",    "deal",  "pipeline", "from", "to", "at",
                                        "amount", "owner", "status",   "prev", NULL};

/* Receives the next notification on `sub` and checks its topic, its seq
 * (when seq > 0) and that it chains onto the previous one. */
static const msgpack_object *next_move(const char *topic, int64_t seq)
{
    const char *got_topic = NULL;
    const msgpack_object *n = it_sub_recv(sub, RECEIVE_TIMEOUT_MS, &got_topic);
    if (!n) {
        fprintf(stderr, "no notification %s (seq %lld) within %d ms\n", topic, (long long)seq,
                RECEIVE_TIMEOUT_MS);
        CHECK(n != NULL);
        return NULL;
    }
    int failed = df_checks_failed;
    received++;
    CHECK_STR(got_topic, topic);
    if (seq > 0)
        CHECK_INT(it_int(n, "seq"), seq);
    CHECK_INT(it_int(n, "prev"), last_seen);
    CHECK(it_has_keys(n, MOVE_KEYS));
    if (df_checks_failed != failed) {
        fprintf(stderr, "  notification %s: ", got_topic ? got_topic : "(none)");
        msgpack_object_print(stderr, *n);
        fprintf(stderr, "\n  expected topic %s seq %lld prev %lld\n", topic, (long long)seq,
                (long long)last_seen);
    }
    last_seen = it_int(n, "seq");
    return n;
}

static void test_first_moves(void)
{
    int64_t s1 = it_append(
        &D, "{id: n-1, type: stage, deal: n1, stage: lead, at: %lld, amount: 10, owner: al}", T0);
    const msgpack_object *n = next_move("deal.moved.default.lead", s1);
    /* the first ever */
    CHECK_INT(it_int(n, "prev"), 0);
    CHECK_STR(it_str(n, "deal"), "n1");
    CHECK_STR(it_str(n, "pipeline"), "default");
    CHECK(it_is_nil(n, "from"));
    CHECK_STR(it_str(n, "to"), "lead");
    CHECK_INT(it_int(n, "at"), T0);
    CHECK_INT(it_int(n, "amount"), 10);
    CHECK_STR(it_str(n, "owner"), "al");
    CHECK_STR(it_str(n, "status"), "open");

    int64_t s2 =
        it_append(&D, "{id: n-2, type: stage, deal: n1, stage: qualified, at: %lld}", T0 + DAY);
    n = next_move("deal.moved.default.qualified", s2);
    CHECK_INT(it_int(n, "prev"), s1);
    CHECK_STR(it_str(n, "from"), "lead");
    CHECK_STR(it_str(n, "to"), "qualified");
    CHECK_INT(it_int(n, "at"), T0 + DAY);
    CHECK_INT(it_int(n, "amount"), 10);
}

static void test_silent_events(void)
{
    /* the current stage again, a late stage event, an activity: no move */
    CHECK(it_append(&D, "{id: n-3, type: stage, deal: n1, stage: qualified, at: %lld, amount: 20}",
                    T0 + 2 * DAY) > 0);
    CHECK(it_append(&D, "{id: n-4, type: stage, deal: n1, stage: proposal, at: %lld}", T0 + 1) > 0);
    CHECK(it_append(&D, "{id: n-5, type: activity, deal: n1, kind: call, at: %lld}", T0 + 3 * DAY) >
          0);
    CHECK(it_append(&D, "{id: n-5b, type: update, deal: n1, owner: bo, at: %lld}", T0 + 3 * DAY) >
          0);
    const msgpack_object *r = it_call(&D, "{op: deal, deal: n1, now: %lld}", T0 + 4 * DAY);
    CHECK_STR(it_str(it_get(r, "deal"), "stage"), "qualified");
    /* so the next notification is the next move's */
    int64_t s6 = it_append(&D, "{id: n-6, type: stage, deal: n2, stage: proposal, at: %lld}", T0);
    const msgpack_object *n = next_move("deal.moved.default.proposal", s6);
    CHECK_STR(it_str(n, "deal"), "n2");
    CHECK(it_is_nil(n, "amount"));
    CHECK(it_is_nil(n, "owner"));

    /* back to an earlier stage is a move */
    int64_t s7 =
        it_append(&D, "{id: n-7, type: stage, deal: n1, stage: lead, at: %lld}", T0 + 3 * DAY + 1);
    n = next_move("deal.moved.default.lead", s7);
    CHECK_STR(it_str(n, "from"), "qualified");
    CHECK_INT(it_int(n, "amount"), 20);
    CHECK_STR(it_str(n, "owner"), "bo");
    CHECK_INT(it_int(n, "at"), T0 + 3 * DAY + 1);
}

static void test_pipelines(void)
{
    CHECK(it_append(&D,
                    "{id: n-pl, type: pipeline, pipeline: np, stages: ["
                    "{name: x, probability: 30}, {name: y, probability: 100, outcome: won}]}") > 0);
    void *np_only = it_sub_open(&D, "deal.moved.np.");
    CHECK(np_only != NULL);

    int64_t s8 = it_append(
        &D, "{id: n-8, type: stage, deal: n3, pipeline: np, stage: x, at: %lld, amount: 1.5}", T0);
    const msgpack_object *n = next_move("deal.moved.np.x", s8);
    CHECK_STR(it_str(n, "pipeline"), "np");
    CHECK_NUM(it_num(n, "amount"), 1.5);
    CHECK_STR(it_str(n, "status"), "open");
    int64_t s9 = it_append(&D, "{id: n-9, type: stage, deal: n3, stage: y, at: %lld}", T0 + DAY);
    n = next_move("deal.moved.np.y", s9);
    CHECK_STR(it_str(n, "status"), "won");
    CHECK_STR(it_str(n, "from"), "x");

    /* ingest moves publish too */
    CHECK(it_push(&D, "{id: n-10, type: stage, deal: n4, stage: meeting, at: %lld}", T0));
    n = next_move("deal.moved.default.meeting", 0);
    CHECK_STR(it_str(n, "deal"), "n4");

    /* two moves of one deal in one batch: two notifications, in order */
    const msgpack_object *r =
        it_call(&D,
                "{op: append, events: [{id: n-11, type: stage, deal: n7, stage: lead, at: %lld},"
                "{id: n-12, type: stage, deal: n7, stage: qualified, at: %lld}]}",
                T0, T0 + DAY);
    int64_t s11 = it_int(it_at(it_get(r, "results"), 0), "seq");
    int64_t s12 = it_int(it_at(it_get(r, "results"), 1), "seq");
    n = next_move("deal.moved.default.lead", s11);
    CHECK(it_is_nil(n, "from"));
    n = next_move("deal.moved.default.qualified", s12);
    CHECK_STR(it_str(n, "from"), "lead");

    /* a late stage event in the same batch moves nothing */
    r = it_call(&D,
                "{op: append, events: [{id: n-13, type: stage, deal: n8, stage: proposal, at: "
                "%lld},"
                "{id: n-14, type: stage, deal: n8, stage: lead, at: %lld}]}",
                T0 + 2 * DAY, T0);
    int64_t s13 = it_int(it_at(it_get(r, "results"), 0), "seq");
    CHECK(it_int(it_at(it_get(r, "results"), 1), "seq") > 0);
    n = next_move("deal.moved.default.proposal", s13);
    CHECK_INT(it_int(n, "at"), T0 + 2 * DAY);

    /* the np subscriber saw only np moves */
    int64_t s15 =
        it_append(&D, "{id: n-15, type: stage, deal: n3, stage: x, at: %lld}", T0 + 2 * DAY);
    next_move("deal.moved.np.x", s15);
    const char *topic = NULL;
    static const char *const np_topics[] = {"deal.moved.np.x", "deal.moved.np.y",
                                            "deal.moved.np.x"};
    int64_t np_seqs[] = {s8, s9, s15};
    for (int i = 0; i < 3; i++) {
        n = it_sub_recv(np_only, RECEIVE_TIMEOUT_MS, &topic);
        CHECK(n != NULL);
        CHECK_STR(topic, np_topics[i]);
        CHECK_INT(it_int(n, "seq"), np_seqs[i]);
    }
    it_sub_close(np_only);
}

/* `moves` gives back every deal.moved notification as it was published. */
static void test_moves_op(void)
{
    const msgpack_object *r = it_call(&D, "{op: moves, after: 0, limit: 10000}");
    CHECK(it_ok(r));
    const msgpack_object *moves = it_get(r, "moves");
    CHECK(moves && moves->type == MSGPACK_OBJECT_ARRAY);
    if (!moves || moves->type != MSGPACK_OBJECT_ARRAY)
        return;
    CHECK_INT(moves->via.array.size, received);
    CHECK_INT(it_int(r, "last_seq"), last_seen);
    int64_t prev = 0;
    for (uint32_t i = 0; i < moves->via.array.size; i++) {
        const msgpack_object *m = it_at(moves, i);
        CHECK(it_has_keys(m, MOVE_KEYS));
        CHECK_INT(it_int(m, "prev"), prev);
        CHECK(it_int(m, "seq") > prev);
        prev = it_int(m, "seq");
    }
    const msgpack_object *first = it_at(moves, 0);
    CHECK_STR(it_str(first, "deal"), "n1");
    CHECK(it_is_nil(first, "from"));
    CHECK_STR(it_str(first, "to"), "lead");
    CHECK_STR(it_str(first, "owner"), "al");

    /* pages, and nothing after the last */
    r = it_call(&D, "{op: moves, after: %lld, limit: 2}", (long long)it_int(first, "seq"));
    CHECK_INT(it_get(r, "moves")->via.array.size, 2);
    CHECK_INT(it_int(it_at(it_get(r, "moves"), 0), "prev"), it_int(first, "seq"));
    r = it_call(&D, "{op: moves, after: %lld}", (long long)last_seen);
    CHECK_INT(it_get(r, "moves")->via.array.size, 0);
    r = it_call(&D, "{op: moves, limit: 0}");
    CHECK_STR(it_err(r), "bad_request");

    /* kept across a restart, and the chain goes on from it */
    CHECK_INT(it_stop(&D), 0);
    CHECK(it_restart(&D));
    r = it_call(&D, "{op: moves}");
    CHECK_INT(it_get(r, "moves")->via.array.size, received);
    it_sub_close(sub);
    sub = it_sub_open(&D, "deal.moved.");
    int64_t s = it_append(&D, "{id: n-16, type: stage, deal: n9, stage: lead, at: %lld}", T0);
    const msgpack_object *live = next_move("deal.moved.default.lead", s);
    r = it_call(&D, "{op: moves, after: %lld}", (long long)last_seen - 1);
    CHECK_INT(it_get(r, "moves")->via.array.size, 1);
    /* the very map that was published */
    CHECK(it_equal(it_at(it_get(r, "moves"), 0), live));
}

static bool start_daemon(void)
{
    if (!it_setup(&D, NULL))
        return false;
    sub = it_sub_open(&D, "deal.moved.");
    CHECK(sub != NULL);
    return true;
}

static void stop_daemon(void)
{
    it_sub_close(sub);
    it_teardown(&D);
}

/* Every notification the tests received is one the daemon counted. */
static void test_notification_count(void)
{
    CHECK_INT(it_stat(&D, "notifications"), received);
}

static const df_test tests[] = {
    {"first_moves", test_first_moves}, {"silent_events", test_silent_events},
    {"pipelines", test_pipelines},     {"notification_count", test_notification_count},
    {"moves_op", test_moves_op},       {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}
