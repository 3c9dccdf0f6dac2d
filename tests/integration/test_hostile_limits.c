/* test_hostile_limits.c: the api at its limits: the largest deal, the pipeline limit, int64
 * extremes, a full store. */
#include "hostile.h"

/* ---- extreme values: times and amounts at the ends of int64 ---- */

static void test_extremes(void)
{
    char name[701];
    memset(name, 'p', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    /* names far longer than any stored one: they match nothing */
    call_text("ok", "{op: list, pipeline: '%s'}", name);
    call_text("ok", "{op: list, owner: '%s'}", name);
    call_text("ok", "{op: list, pipeline: '%.400s', stage: '%.400s'}", name, name);
    call_text("ok", "{op: list, stage: '%s', limit: 1}", name);
    call_text("unknown_pipeline", "{op: board, pipeline: '%s'}", name);
    call_text("ok", "{op: list, pipeline: 'de\\0fault'}");
    call_text("ok", "{op: list, owner: '\\0', stage: '\\0', pipeline: '\\0'}");
    call_text("unknown_pipeline", "{op: board, pipeline: 'default\\0'}");
    if (!alive())
        return;

    /* event times and amounts at the ends of int64, and clocks there */
    const msgpack_object *r = call_text(
        "ok", "{op: append, events: ["
              "{id: x-1, type: stage, deal: ext-a, stage: lead, at: -9223372036854775808, amount: "
              "9223372036854775807},"
              "{id: x-2, type: stage, deal: ext-b, stage: lead, at: 9223372036854775807, amount: "
              "9223372036854775807},"
              "{id: x-3, type: activity, deal: ext-b, kind: k, at: -9223372036854775808},"
              "{id: x-4, type: stage, deal: ext-c, stage: lead, amount: -9223372036854775808, at: "
              "-9223372036854775807},"
              "{id: x-5, type: update, deal: ext-c, amount: 1.7976931348623157e308, close_date: "
              "-9223372036854775808},"
              "{id: x-6, type: stage, deal: ext-d, pipeline: rot, stage: fresh, at: "
              "9223372036854775807, amount: 9223372036854775807},"
              "{id: x-7, type: stage, deal: ext-e, pipeline: rot, stage: fresh, at: "
              "-9223372036854775808, amount: 9223372036854775807}]}");
    for (uint32_t i = 0; i < 7; i++)
        CHECK(it_int(it_at(it_get(r, "results"), i), "seq") > 0);
    /* the deals move on, so that their contributions are taken back */
    call_text("ok", "{op: append, events: [{id: x-8, type: stage, deal: ext-a, stage: won, at: 0},"
                    "{id: x-9, type: stage, deal: ext-c, stage: lost, at: -1}]}");
    static const char *const nows[] = {"-9223372036854775808", "9223372036854775807", "0"};
    for (int i = 0; i < 3 && alive(); i++) {
        call_text("ok", "{op: board, now: %s}", nows[i]);
        call_text("ok", "{op: board, pipeline: rot, now: %s}", nows[i]);
        call_text("ok", "{op: list, now: %s, idle_days: 0}", nows[i]);
        call_text("ok", "{op: list, now: %s, idle_days: 1000000, stale: true}", nows[i]);
        call_text("ok", "{op: list, pipeline: rot, now: %s, status: open}", nows[i]);
        call_text("ok", "{op: deal, deal: ext-b, now: %s}", nows[i]);
        call_text(NULL, "{op: deal, deal: ext-a, as_of: %s}", nows[i]);
        call_text("ok", "{op: history, deal: ext-c, after: 18446744073709551615}");
        call_text("ok", "{op: replay, after: 18446744073709551615}");
        call_text("ok", "{op: rejected, after: 18446744073709551615, limit: 10000}");
        call_text("ok", "{op: moves, after: 18446744073709551615, limit: 10000}");
        /* windows at the ends of time, empty and reversed ones, every owner */
        static const char *const ends[] = {
            "-9223372036854775808", "9223372036854775807", "0", "-1", "86399999", "-86400001"};
        for (int f = 0; f < 6; f++) {
            for (int t = 0; t < 6; t++) {
                call_text("ok", "{op: metrics, now: %s, from: %s, to: %s}", nows[i], ends[f],
                          ends[t]);
                call_text("ok", "{op: metrics, pipeline: rot, now: %s, from: %s, to: %s}", nows[i],
                          ends[f], ends[t]);
            }
            call_text("ok", "{op: metrics, now: %s, from: %s}", nows[i], ends[f]);
            call_text("ok", "{op: metrics, now: %s, to: %s}", nows[i], ends[f]);
        }
        call_text("ok", "{op: metrics, owner: '%s', now: %s}", name, nows[i]);
        call_text("ok", "{op: metrics, owner: '\\0', now: %s}", nows[i]);
    }
    call_text("bad_request", "{op: metrics, from: 1.5}");
    call_text("bad_request", "{op: metrics, to: [1]}");
    call_text("bad_request", "{op: moves, after: -1}");
    call_text("bad_request", "{op: moves, limit: 10001}");
    call_text("unknown_pipeline", "{op: metrics, pipeline: '%s'}", name);
}

/* ---- the largest deal record, and the pipeline limit ---- */

/* A request given as (long) text, waited for. */
static const msgpack_object *call_buf(const char *what, const char *expect, const it_buf *text)
{
    msgpack_sbuffer sb;
    CHECK(it_encode(&sb, "%s", it_buf_get(text)));
    const msgpack_object *r = call(what, expect, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return r;
}

/* 128-byte names everywhere, name and product of 255 bytes, and 64 stages
 * visited in each of two pipelines (time_in_stage keeps 64): the largest
 * state a deal can have. */
static void test_largest_deal(void)
{
    char pipe[2][129], deal[129], owner[129], text[256], prefix[2][127];
    for (int p = 0; p < 2; p++) {
        memset(pipe[p], p ? 'B' : 'A', 128);
        pipe[p][128] = '\0';
        memset(prefix[p], p ? 'b' : 'a', 126);
        prefix[p][126] = '\0';
    }
    memset(deal, 'd', 128);
    deal[128] = '\0';
    memset(owner, 'o', 128);
    owner[128] = '\0';
    memset(text, 't', 255);
    text[255] = '\0';
    it_buf t = {0};
    it_buf_add(&t, "{op: append, events: [");
    for (int p = 0; p < 2; p++) {
        it_buf_add(&t, "{id: big-p%d, type: pipeline, pipeline: '%s', stages: [", p, pipe[p]);
        for (int i = 0; i < 64; i++)
            it_buf_add(&t, "%s{name: '%s%02x', probability: %d, rot_days: %d}", i ? "," : "",
                       prefix[p], i, i, i);
        it_buf_add(&t, "]},");
    }
    it_buf_add(&t,
               "{id: big-u, type: update, deal: '%s', owner: '%s', name: '%s', product: '%s', "
               "amount: 0.5, close_date: %lld, at: %lld},"
               "{id: big-a, type: activity, deal: '%s', kind: call, at: %lld}",
               deal, owner, text, text, T0, T0, deal, T0);
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 64; i++)
            it_buf_add(&t,
                       ",{id: big-%d-%d, type: stage, deal: '%s', pipeline: '%s', stage: '%s%02x', "
                       "at: %lld}",
                       p, i, deal, pipe[p], prefix[p], i, (long long)(T0 + (p * 64 + i) * IT_HOUR));
    it_buf_add(&t, "]}");
    const msgpack_object *r = call_buf("the largest deal", "ok", &t);
    it_buf_free(&t);
    const msgpack_object *results = it_get(r, "results");
    CHECK_INT(it_len(results), 132);
    for (uint32_t i = 0; i < 132; i++)
        CHECK(it_int(it_at(results, i), "seq") > 0);

    char last[129];
    snprintf(last, sizeof last, "%s3f", prefix[1]);
    static const char *const read_at[] = {"now", "as_of"};
    for (int k = 0; k < 2; k++) {
        it_buf q = {0};
        it_buf_add(&q, "{op: deal, deal: '%s', %s: %lld}", deal, read_at[k],
                   (long long)(T0 + 200 * IT_HOUR));
        r = call_buf(read_at[k], "ok", &q);
        it_buf_free(&q);
        const msgpack_object *d = it_get(r, "deal");
        CHECK_STR(it_str(d, "stage"), last);
        CHECK_STR(it_str(d, "pipeline"), pipe[1]);
        CHECK_STR(it_str(d, "product"), text);
        CHECK_INT(it_len(it_get(d, "time_in_stage")), 64);
        CHECK_INT(it_int(d, "version"), 130);
        CHECK_INT(it_int(d, "probability"), 63);
    }
    it_buf q = {0};
    it_buf_add(&q, "{op: list, pipeline: '%s', stage: '%s', owner: '%s'}", pipe[1], last, owner);
    r = call_buf("list the largest deal", "ok", &q);
    it_buf_free(&q);
    CHECK_INT(it_len(it_get(r, "deals")), 1);
    it_buf_add(&q, "{op: board, pipeline: '%s', now: %lld}", pipe[1], (long long)(T0 + 100 * DAY));
    r = call_buf("board of the largest deal", "ok", &q);
    it_buf_free(&q);
    CHECK_INT(it_int(it_at(it_get(r, "stages"), 63), "count"), 1);
    CHECK_INT(it_int(it_at(it_get(r, "stages"), 63), "stale"), 1);
    it_buf_add(&q, "{op: history, deal: '%s', limit: 10000}", deal);
    r = call_buf("history of the largest deal", "ok", &q);
    it_buf_free(&q);
    CHECK_INT(it_len(it_get(r, "events")), 130);
    it_release();
}

/* 300 more pipelines than there may be: those past 256 are refused, and
 * events naming them are unknown_pipeline. */
static void test_pipeline_limit(void)
{
    it_buf t = {0};
    it_buf_add(&t, "{op: append, events: [");
    for (int i = 0; i < 300; i++)
        it_buf_add(&t,
                   "%s{id: many-%d, type: pipeline, pipeline: many-%d, stages: [{name: s, "
                   "probability: 1}]}",
                   i ? "," : "", i, i);
    it_buf_add(&t, "]}");
    const msgpack_object *r = call_buf("300 pipelines", "ok", &t);
    it_buf_free(&t);
    const msgpack_object *results = it_get(r, "results");
    CHECK_INT(it_len(results), 300);
    int refused = 0, first_refused = -1;
    bool monotonic = true;
    for (uint32_t i = 0; i < 300; i++) {
        const char *error = it_str(it_at(results, i), "error");
        if (error) {
            CHECK_STR(error, "bad_request");
            refused++;
            if (first_refused < 0)
                first_refused = (int)i;
        } else {
            monotonic = monotonic && first_refused < 0;
        }
    }
    /* default, rot and the two of the largest deal were there before */
    CHECK(refused >= 48);
    CHECK(monotonic);
    if (first_refused < 0)
        return;
    call_text("ok", "{op: board, pipeline: many-0}");
    call_text("unknown_pipeline", "{op: board, pipeline: many-%d}", first_refused);
    r = call_text("ok",
                  "{op: append, events: [{id: many-x, type: stage, deal: many, pipeline: many-%d, "
                  "stage: s}, {id: many-y, type: stage, deal: many, pipeline: many-0, stage: s}]}",
                  first_refused);
    CHECK_STR(it_str(it_at(it_get(r, "results"), 0), "error"), "unknown_pipeline");
    CHECK(it_int(it_at(it_get(r, "results"), 1), "seq") > 0);
    it_release();
}

/* ---- a store that is full ---- */

/* A client fills the store (a small --map-size): appends become
 * unavailable, every read still gets a reply, SIGTERM still ends the
 * daemon, and after a restart with room every acknowledged event is there. */
static void test_map_full(void)
{
    static it_daemon M;
    static const char *extra[] = {"--map-size", "16", NULL};
    if (!it_start(&M, extra)) {
        it_cleanup(&M);
        return;
    }
    it_daemon *saved = cur;
    void *saved_socket = fuzz_socket;
    bool saved_dead = daemon_dead;
    cur = &M;
    daemon_dead = false;
    fuzz_socket = it_socket(ZMQ_DEALER, M.api);
    char pad[2001];
    memset(pad, 'z', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    int batches = 0;
    bool full = false;
    for (; batches < 100 && !full && alive(); batches++) {
        it_buf t = {0};
        it_buf_add(&t, "{op: append, events: [");
        for (int i = 0; i < 100; i++)
            it_buf_add(&t, "%s{id: 'f-%d-%d', type: stage, deal: 'f-%d', stage: lead, pad: '%s'}",
                       i ? "," : "", batches, i, batches, pad);
        it_buf_add(&t, "]}");
        const msgpack_object *r = call_buf("filling the store", NULL, &t);
        it_buf_free(&t);
        if (!it_ok(r)) {
            CHECK_STR(it_err(r), "unavailable");
            full = true;
            batches--;
        }
        it_release();
    }
    CHECK(full);
    int64_t acked = (int64_t)batches * 100;
    printf("map full after %d batches\n", batches);
    if (alive()) {
        const msgpack_object *r = call_text("ok", "{op: ping}");
        CHECK_INT(it_int(r, "last_seq"), acked);
        call_text("ok", "{op: deal, deal: f-0}");
        static const char *const reads[] = {"{op: history, deal: f-0}", "{op: list}", "{op: board}",
                                            "{op: deal, deal: f-0, as_of: 0}"};
        /* sent together: while one of them waits, so do those behind it */
        int first = npend;
        for (int i = 0; i < 4; i++) {
            msgpack_sbuffer sb;
            CHECK(it_encode(&sb, "%s", reads[i]));
            int idx = submit_sb(reads[i], NULL, &sb);
            if (idx >= 0)
                pend[idx].keep = true;
        }
        collect(first);
        for (int i = first; i < npend; i++) {
            r = pend[i].reply ? it_unpack_keep(pend[i].reply, pend[i].reply_len) : NULL;
            const char *error = it_err(r);
            CHECK(it_ok(r) || (error && (strcmp(error, "unavailable") == 0 ||
                                         strcmp(error, "not_found") == 0)));
        }
        kill(M.pid, SIGTERM);
        int code = it_wait_exit(&M, REPLY_TIMEOUT_MS);
        if (code < 0) {
            fprintf(stderr, "dealflowd with a full store still running after SIGTERM\n");
            kill(M.pid, SIGKILL);
            it_wait_exit(&M, REPLY_TIMEOUT_MS);
        }
        CHECK_INT(code, 0);
    }
    /* with room again, every acknowledged event is there */
    M.extra[1] = "256";
    daemon_dead = false;
    it_close(fuzz_socket);
    fuzz_socket = it_socket(ZMQ_DEALER, M.api);
    if (M.pid <= 0 && it_restart(&M)) {
        const msgpack_object *r = call_text("ok", "{op: stats}");
        CHECK_INT(it_int(r, "events"), acked);
        for (int b = 0; b<batches; b += batches> 1 ? batches - 1 : 1) {
            r = call_text("ok", "{op: history, deal: 'f-%d', limit: 10000}", b);
            CHECK_INT(it_len(it_get(r, "events")), 100);
        }
        CHECK_INT(it_stop(&M), 0);
    }
    CHECK(log_clean(&M));
    it_cleanup(&M);
    it_close(fuzz_socket);
    it_release();
    cur = saved;
    fuzz_socket = saved_socket;
    daemon_dead = saved_dead;
}

static const df_test tests[] = {
    {"largest_deal", test_largest_deal},
    {"pipeline_limit", test_pipeline_limit},
    {"keep", check_keep},
    {"extremes", test_extremes},
    {"map_full", test_map_full},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {
        .setup = hostile_start, .teardown = hostile_stop, .ready = alive};
    int64_t start = mono_ms();
    int status = df_test_main(argc, argv, tests, &fixture);
    printf("hostile limits: %lld ms\n", (long long)(mono_ms() - start));
    return status;
}
