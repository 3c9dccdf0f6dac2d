/* test_restart.c: SIGTERM, SIGKILL and failed starts lose nothing acknowledged. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zmq.h>

#include "check.h"
#include "harness.h"

#define T0                 IT_T0
#define DAY                IT_DAY
#define NOW                (T0 + 10 * DAY)
#define MAX_ACKED          1000
#define CRASH_ROUNDS       40
#define CRASH_FRAME        100
#define CRASH_BATCH        10
#define CRASH_DEALS        20
#define CRASH_EXTRA_FRAMES 200

static it_daemon D;

/* Events the api acknowledged: their ids and seqs. */
static struct {
    char id[32];
    int64_t seq;
} acked[MAX_ACKED];
static int nacked;
static int64_t last_move; /* seq of the last event that moved a deal */

static void ack(const char *id, int64_t seq)
{
    CHECK(seq > 0);
    if (nacked < MAX_ACKED && seq > 0) {
        snprintf(acked[nacked].id, sizeof acked[nacked].id, "%s", id);
        acked[nacked++].seq = seq;
    }
}

/* Appends one event and records its ack. */
static int64_t append_one(const char *id, const char *rest)
{
    int64_t seq = it_append(&D, "{id: %s, %s}", id, rest);
    ack(id, seq);
    return seq;
}

static void make_history(void)
{
    append_one("pl-rp", "type: pipeline, pipeline: rp, stages: [{name: p1, probability: 20, "
                        "rot_days: 2}, {name: p2, probability: 70}, {name: done, probability: "
                        "100, outcome: won}]");
    char rest[256];
    snprintf(rest, sizeof rest,
             "type: stage, deal: r1, pipeline: rp, stage: p1, at: %lld, amount: 100, owner: x", T0);
    append_one("r1-1", rest);
    snprintf(rest, sizeof rest, "type: stage, deal: r1, stage: p2, at: %lld", T0 + DAY);
    append_one("r1-2", rest);
    snprintf(rest, sizeof rest, "type: activity, deal: r1, kind: call, at: %lld, x_note: kept",
             T0 + 2 * DAY);
    append_one("r1-3", rest);
    snprintf(rest, sizeof rest, "type: stage, deal: r2, stage: lead, at: %lld", T0);
    append_one("r2-1", rest);
    snprintf(rest, sizeof rest, "type: update, deal: r2, name: 'Second deal', amount: 2.25");
    append_one("r2-2", rest);
    snprintf(rest, sizeof rest, "type: stage, deal: r3, pipeline: rp, stage: p1, at: %lld",
             T0 + DAY);
    append_one("r3-1", rest);
    snprintf(rest, sizeof rest, "type: stage, deal: r4, stage: proposal, at: %lld", T0 + 3 * DAY);
    append_one("r4-1", rest);
    snprintf(rest, sizeof rest, "type: stage, deal: r4, stage: qualified, at: %lld", T0 + DAY);
    append_one("r4-2", rest);
    snprintf(rest, sizeof rest, "type: activity, deal: r5, kind: meeting, at: %lld", T0);
    append_one("r5-1", rest);

    /* ingest, with duplicates */
    it_buf frame = {0};
    for (int i = 0; i < 50; i++)
        it_buf_add(&frame, "%s{id: ri-%02d, type: activity, deal: r%d, kind: note, at: %lld}",
                   i ? "," : "[", i, 1 + i % 5, T0 + i);
    it_buf_add(&frame, ",{id: r1-1, type: activity, deal: r1, kind: note}]");
    CHECK(it_push(&D, "%s", it_buf_get(&frame)));
    it_buf_free(&frame);
    CHECK(it_wait_stat(&D, "duplicates", 1));
    CHECK(it_wait_seq(&D, nacked + 50));

    /* the last event before the restart moves a deal */
    snprintf(rest, sizeof rest, "type: stage, deal: r3, stage: done, at: %lld", T0 + 2 * DAY);
    last_move = append_one("r3-2", rest);
}

#define SNAPSHOT_PARTS 15

/* What the daemon answers about everything, packed, part by part. */
static void snapshot(msgpack_sbuffer parts[SNAPSHOT_PARTS])
{
    char requests[SNAPSHOT_PARTS][128];
    int n = 0;
    snprintf(requests[n++], 128, "{op: replay, limit: 10000}");
    snprintf(requests[n++], 128, "{op: list, limit: 10000, now: %lld}", NOW);
    snprintf(requests[n++], 128, "{op: board, pipeline: rp, now: %lld}", NOW);
    snprintf(requests[n++], 128, "{op: board, now: %lld}", NOW);
    for (int d = 1; d <= 5; d++)
        snprintf(requests[n++], 128, "{op: deal, deal: r%d, now: %lld}", d, NOW);
    snprintf(requests[n++], 128, "{op: history, deal: r1}");
    snprintf(requests[n++], 128, "{op: deal, deal: r4, as_of: %lld}", T0 + 2 * DAY);
    snprintf(requests[n++], 128, "{op: rejected}");
    snprintf(requests[n++], 128, "{op: metrics, now: %lld}", NOW);
    snprintf(requests[n++], 128, "{op: metrics, pipeline: rp, now: %lld}", NOW);
    snprintf(requests[n++], 128, "{op: moves, limit: 10000}");
    for (int i = 0; i < SNAPSHOT_PARTS; i++) {
        const msgpack_object *r = it_call(&D, "%s", requests[i]);
        if (!it_ok(r))
            fprintf(stderr, "snapshot: %s failed\n", requests[i]);
        CHECK(it_ok(r));
        msgpack_sbuffer_init(&parts[i]);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &parts[i], msgpack_sbuffer_write);
        msgpack_pack_object(&pk, *r);
    }
    it_release();
}

static void check_acked(void)
{
    it_buf events = {0};
    for (int i = 0; i < nacked; i++)
        it_buf_add(&events, "%s{id: %s, type: activity, deal: again, kind: call}", i ? "," : "",
                   acked[i].id);
    const msgpack_object *r = it_call(&D, "{op: append, events: [%s]}", it_buf_get(&events));
    it_buf_free(&events);
    const msgpack_object *results = it_get(r, "results");
    CHECK_INT(it_len(results), nacked);
    int right = 0;
    for (int i = 0; i < nacked; i++) {
        const msgpack_object *result = it_at(results, (uint32_t)i);
        bool ok = it_int(result, "seq") == acked[i].seq && it_bool(result, "dup") == 1;
        if (!ok)
            fprintf(stderr, "acknowledged %s (seq %lld) answered seq %lld dup %d\n", acked[i].id,
                    (long long)acked[i].seq, (long long)it_int(result, "seq"),
                    it_bool(result, "dup"));
        right += ok;
    }
    CHECK_INT(right, nacked);
    CHECK_ERR(it_call(&D, "{op: deal, deal: again}"), "not_found");
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays the whole log: seqs 1..last_seq without a gap, every id once. */
static void check_log_complete(void)
{
    int64_t last = it_last_seq(&D);
    CHECK(last > 0);
    char **ids = calloc((size_t)last + 1, sizeof *ids);
    int64_t expected = 1;
    bool gap_free = true;
    while (expected <= last && gap_free) {
        const msgpack_object *r =
            it_call(&D, "{op: replay, after: %lld, limit: 10000}", (long long)(expected - 1));
        const msgpack_object *events = it_get(r, "events");
        if (it_len(events) <= 0)
            break;
        for (long i = 0; i < it_len(events) && expected <= last; i++) {
            const msgpack_object *event = it_at(events, (uint32_t)i);
            if (it_int(event, "seq") != expected) {
                fprintf(stderr, "replay: seq %lld where %lld was due\n",
                        (long long)it_int(event, "seq"), (long long)expected);
                gap_free = false;
                break;
            }
            const char *id = it_str(event, "id");
            ids[expected - 1] = strdup(id ? id : "");
            expected++;
        }
        it_release();
    }
    CHECK(gap_free);
    CHECK_INT(expected, last + 1);
    int64_t count = expected - 1;
    qsort(ids, (size_t)count, sizeof *ids, compare_strings);
    int64_t repeated = 0;
    for (int64_t i = 1; i < count; i++)
        repeated += strcmp(ids[i - 1], ids[i]) == 0;
    CHECK_INT(repeated, 0);
    for (int64_t i = 0; i < count; i++)
        free(ids[i]);
    free(ids);
    CHECK_INT(it_stat(&D, "events"), last);
}

/* Compares every part of two snapshots, and frees them. */
static void check_same(msgpack_sbuffer before[SNAPSHOT_PARTS],
                       msgpack_sbuffer after[SNAPSHOT_PARTS], const char *when)
{
    for (int i = 0; i < SNAPSHOT_PARTS; i++) {
        bool same = before[i].size == after[i].size &&
                    memcmp(before[i].data, after[i].data, before[i].size) == 0;
        if (!same)
            fprintf(stderr, "snapshot part %d differs after %s\n", i, when);
        CHECK(same);
        msgpack_sbuffer_destroy(&before[i]);
        msgpack_sbuffer_destroy(&after[i]);
    }
}

static void test_sigterm_restart(void)
{
    make_history();
    msgpack_sbuffer before[SNAPSHOT_PARTS], after[SNAPSHOT_PARTS];
    snapshot(before);
    int64_t last = it_last_seq(&D);
    int64_t deals = it_stat(&D, "deals");

    CHECK_INT(it_stop(&D), 0);
    CHECK(it_restart(&D));

    CHECK_INT(it_last_seq(&D), last);
    CHECK_INT(it_stat(&D, "events"), last);
    CHECK_INT(it_stat(&D, "deals"), deals);
    snapshot(after);
    check_same(before, after, "the restart");
    check_acked();

    /* ids seen over ingest before the restart are still duplicates */
    int64_t duplicates = it_stat(&D, "duplicates");
    CHECK(it_push(&D, "{id: ri-07, type: activity, deal: r1, kind: note}"));
    CHECK(it_wait_stat(&D, "duplicates", duplicates + 1));
    CHECK_INT(it_last_seq(&D), last);

    /* seqs and the prev chain go on */
    void *sub = it_sub_open(&D, "deal.moved.");
    CHECK(sub != NULL);
    int64_t seq =
        it_append(&D, "{id: r2-3, type: stage, deal: r2, stage: meeting, at: %lld}", T0 + DAY);
    CHECK_INT(seq, last + 1);
    ack("r2-3", seq);
    const char *topic = NULL;
    const msgpack_object *n = it_sub_recv(sub, 20000, &topic);
    CHECK(n != NULL);
    CHECK_STR(topic, "deal.moved.default.meeting");
    CHECK_INT(it_int(n, "seq"), seq);
    CHECK_INT(it_int(n, "prev"), last_move);
    last_move = seq;
    it_sub_close(sub);
}

/* After --compact dropped the derived state, the start folds the whole log
 * and the flush writes it into empty tables: the daemon answers as before,
 * before and after that flush, and ids are still duplicates. */
static void test_compact_rebuild(void)
{
    msgpack_sbuffer before[SNAPSHOT_PARTS], folded[SNAPSHOT_PARTS], flushed[SNAPSHOT_PARTS];
    char out[1024];
    snapshot(before);
    int64_t last = it_last_seq(&D);
    int64_t deals = it_stat(&D, "deals");
    int64_t duplicates = it_stat(&D, "duplicates");

    CHECK_INT(it_stop(&D), 0);
    CHECK_INT(it_run_tool(&D, "--compact", out, sizeof out), 0);
    CHECK(it_restart(&D));
    CHECK_INT(it_last_seq(&D), last);
    CHECK_INT(it_stat(&D, "deals"), deals);
    snapshot(folded);
    msgpack_sbuffer copy[SNAPSHOT_PARTS];
    for (int i = 0; i < SNAPSHOT_PARTS; i++) {
        msgpack_sbuffer_init(&copy[i]);
        msgpack_sbuffer_write(&copy[i], before[i].data, before[i].size);
    }
    check_same(copy, folded, "the fold of the rebuild");
    /* the stop flushes what the fold made; the next start reads it */
    CHECK_INT(it_stop(&D), 0);
    CHECK(it_restart(&D));
    snapshot(flushed);
    check_same(before, flushed, "the flush of the rebuild");
    check_acked();
    CHECK(it_push(&D, "{id: ri-08, type: activity, deal: r1, kind: note}"));
    CHECK(it_wait_stat(&D, "duplicates", duplicates + 1));
    CHECK_INT(it_last_seq(&D), last);
}

static void test_sigkill_during_burst(void)
{
    int pushed = 0;
    bool sent = true;
    int64_t base = 0;
    for (int round = 0; round < CRASH_ROUNDS + CRASH_EXTRA_FRAMES; round++) {
        if (round == CRASH_ROUNDS)
            base = it_last_seq(&D);
        it_buf frame = {0};
        for (int i = 0; i < CRASH_FRAME; i++, pushed++)
            it_buf_add(&frame, "%s{id: k-%d, type: activity, deal: kd-%02d, kind: call, at: %lld}",
                       i ? "," : "[", pushed, pushed % CRASH_DEALS, T0 + pushed);
        it_buf_add(&frame, "]");
        sent = it_push(&D, "%s", it_buf_get(&frame)) && sent;
        it_buf_free(&frame);
        if (round >= CRASH_ROUNDS)
            continue;
        it_buf batch = {0};
        for (int i = 0; i < CRASH_BATCH; i++) {
            int k = round * CRASH_BATCH + i;
            it_buf_add(&batch,
                       "%s{id: ka-%d, type: stage, deal: kd-%02d, stage: %s, at: %lld, amount: %d}",
                       i ? "," : "", k, k % CRASH_DEALS, k % 2 ? "lead" : "qualified", T0 + DAY + k,
                       k);
        }
        const msgpack_object *r = it_call(&D, "{op: append, events: [%s]}", it_buf_get(&batch));
        it_buf_free(&batch);
        const msgpack_object *results = it_get(r, "results");
        CHECK_INT(it_len(results), CRASH_BATCH);
        for (int i = 0; i < CRASH_BATCH && i < it_len(results); i++) {
            char id[32];
            snprintf(id, sizeof id, "ka-%d", round * CRASH_BATCH + i);
            const msgpack_object *result = it_at(results, (uint32_t)i);
            CHECK_INT(it_bool(result, "dup"), 0);
            ack(id, it_int(result, "seq"));
        }
        it_release();
    }
    CHECK(sent);
    /* kill it in the middle of taking the burst in, with an append in flight */
    CHECK(it_wait_seq(&D, base + 1));
    void *dealer = it_socket(ZMQ_DEALER, D.api);
    msgpack_sbuffer unacked;
    CHECK(it_encode(
        &unacked, "{op: append, events: [{id: unacked-1, type: activity, deal: kd-00, kind: x}]}"));
    zmq_send(dealer, "", 0, ZMQ_SNDMORE);
    zmq_send(dealer, unacked.data, unacked.size, 0);
    msgpack_sbuffer_destroy(&unacked);
    it_crash(&D);
    it_close(dealer);
    CHECK(it_restart(&D));

    check_acked();
    check_log_complete();
    printf("SIGKILL: %lld events recorded, %lld before the last %d frames pushed\n",
           (long long)it_last_seq(&D), (long long)base, CRASH_EXTRA_FRAMES);
    int consistent = 0;
    for (int d = 0; d < CRASH_DEALS; d++) {
        const msgpack_object *deal =
            it_get(it_call(&D, "{op: deal, deal: kd-%02d, now: %lld}", d, NOW), "deal");
        const msgpack_object *events =
            it_get(it_call(&D, "{op: history, deal: kd-%02d, limit: 10000}", d), "events");
        int64_t activities = 0;
        for (long i = 0; i < it_len(events); i++) {
            const char *type = it_str(it_at(events, (uint32_t)i), "type");
            activities += type && strcmp(type, "activity") == 0;
        }
        bool ok = it_int(deal, "version") == it_len(events) &&
                  it_int(deal, "activities") == activities && it_len(events) > 0;
        if (!ok)
            fprintf(stderr,
                    "kd-%02d: version %lld, activities %lld; history %ld events, %lld "
                    "activities\n",
                    d, (long long)it_int(deal, "version"), (long long)it_int(deal, "activities"),
                    it_len(events), (long long)activities);
        consistent += ok;
        it_release();
    }
    CHECK_INT(consistent, CRASH_DEALS);
    int64_t last = it_last_seq(&D);
    CHECK_INT(it_append(&D, "{id: after-crash, type: activity, deal: kd-00, kind: note}"),
              last + 1);
}

static void test_start_errors(void)
{
    /* a second daemon on the api port of the running one */
    it_daemon other;
    CHECK(it_init(&other, NULL));
    memcpy(other.api, D.api, sizeof other.api);
    CHECK(it_spawn(&other));
    CHECK_INT(it_wait_exit(&other, 30000), 1);
    char address[IT_ENDPOINT_MAX + 16];
    snprintf(address, sizeof address, "127.0.0.1:%s", it_port(D.api));
    CHECK(it_log_contains(&other, address));
    CHECK(it_log_contains(&other, "dealflowd: "));
    if (!it_log_contains(&other, address))
        it_print_log(&other);
    it_cleanup(&other);
    CHECK(it_ok(it_call(&D, "{op: ping}")));

    /* a data dir that cannot be created: its parent is a file */
    CHECK(it_init(&other, NULL));
    char file[IT_PATH_MAX];
    snprintf(file, sizeof file, "%s/file", other.dir);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    snprintf(other.data, sizeof other.data, "%s/file/sub", other.dir);
    CHECK(it_spawn(&other));
    CHECK_INT(it_wait_exit(&other, 30000), 1);
    CHECK(it_log_contains(&other, "file/sub"));
    it_cleanup(&other);

    /* bad usage */
    static const char *const bogus[] = {"--no-such-flag", NULL};
    CHECK(it_init(&other, bogus));
    CHECK(it_spawn(&other));
    CHECK_INT(it_wait_exit(&other, 30000), 2);
    it_cleanup(&other);
}

/* Acknowledged events whose derived state was still in memory when the
 * daemon was killed: after the restart it folds them back from the log, and
 * every answer equals that of a daemon that never crashed. */
static void test_sigkill_before_flush(void)
{
    static const char *const first =
        "{id: kf-1, type: pipeline, pipeline: kp, stages: [{name: new, probability: 10, "
        "rot_days: 2}, {name: demo, probability: 50, rot_days: 1}, {name: signed, probability: "
        "100, outcome: won}]},"
        "{id: kf-2, type: stage, deal: k1, pipeline: kp, stage: new, amount: 100, at: %lld},"
        "{id: kf-3, type: stage, deal: k2, stage: lead, amount: 7.5, owner: ann, at: %lld}";
    static const char *const second =
        "{id: kf-4, type: stage, deal: k1, stage: demo, at: %lld},"
        "{id: kf-5, type: activity, deal: k1, kind: call, at: %lld},"
        "{id: kf-6, type: stage, deal: k2, stage: qualified, at: %lld},"
        "{id: kf-7, type: stage, deal: k2, stage: meeting, at: %lld},"
        "{id: kf-8, type: update, deal: k3, owner: ben, name: 'New one', at: %lld},"
        "{id: kf-9, type: stage, deal: k3, stage: proposal, amount: 30, at: %lld},"
        /* k1 sits in demo, which kp no longer has: folded with the old
         * definition, as the daemon that did not crash did */
        "{id: kf-10, type: pipeline, pipeline: kp, stages: [{name: new, probability: 10, "
        "rot_days: 2}, {name: signed, probability: 100, outcome: won}]}";
    it_daemon k = {0}, ref = {0};
    if (!it_start(&k, NULL) || !it_start(&ref, NULL)) {
        CHECK(!"both daemons started");
        it_cleanup(&k);
        it_cleanup(&ref);
        return;
    }
    it_daemon *both[] = {&k, &ref};
    for (int i = 0; i < 2; i++) {
        CHECK(it_append(both[i], first, T0, T0 + IT_HOUR) > 0);
        /* a board read makes the daemon flush what it holds in memory */
        CHECK(it_ok(it_call(both[i], "{op: board}")));
        /* kf-7 comes before kf-6 in event time: a late event */
        CHECK(it_append(both[i], second, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY, T0 + 2 * DAY,
                        T0 + DAY, T0 + 4 * DAY) > 0);
    }
    it_crash(&k);
    CHECK(it_restart(&k));
    if (!it_log_contains(&k, "back into memory"))
        fprintf(stderr, "note: the daemon had flushed before it was killed\n");

    char requests[12][128];
    int n = 0;
    for (int d = 1; d <= 3; d++)
        snprintf(requests[n++], 128, "{op: deal, deal: k%d, now: %lld}", d, T0 + 5 * DAY);
    snprintf(requests[n++], 128, "{op: board, pipeline: kp, now: %lld}", T0 + 5 * DAY);
    snprintf(requests[n++], 128, "{op: board, now: %lld}", T0 + 5 * DAY);
    snprintf(requests[n++], 128, "{op: list, now: %lld}", T0 + 5 * DAY);
    snprintf(requests[n++], 128, "{op: list, owner: ann, now: %lld}", T0 + 5 * DAY);
    snprintf(requests[n++], 128, "{op: list, pipeline: kp, stale: true, now: %lld}", T0 + 5 * DAY);
    snprintf(requests[n++], 128, "{op: deal, deal: k2, as_of: %lld}", T0 + 2 * DAY);
    snprintf(requests[n++], 128, "{op: metrics, pipeline: kp, now: %lld}", T0 + 5 * DAY);
    snprintf(requests[n++], 128, "{op: metrics, now: %lld}", T0 + 5 * DAY);
    snprintf(requests[n++], 128, "{op: metrics, owner: ann, now: %lld}", T0 + 5 * DAY);
    for (int i = 0; i < n; i++) {
        const msgpack_object *a = it_call(&k, "%s", requests[i]);
        const msgpack_object *b = it_call(&ref, "%s", requests[i]);
        bool same = it_ok(a) && it_equal(a, b);
        if (!same)
            fprintf(stderr, "after the crash, %s answers differently\n", requests[i]);
        CHECK(same);
    }
    const msgpack_object *h = it_call(&k, "{op: history, deal: k2}");
    CHECK_INT(it_len(it_get(h, "events")), 3);
    CHECK_INT(it_stat(&k, "deals"), 3);
    CHECK_INT(it_stat(&k, "events"), 10);
    /* ids recorded before the crash are still duplicates */
    const msgpack_object *r =
        it_call(&k, "{op: append, events: [{id: kf-8, type: activity, deal: k3, kind: x}]}");
    CHECK_INT(it_bool(it_at(it_get(r, "results"), 0), "dup"), 1);
    CHECK_INT(it_stop(&k), 0);
    CHECK_INT(it_stop(&ref), 0);
    it_cleanup(&k);
    it_cleanup(&ref);
}

static bool start_daemon(void)
{
    return it_setup(&D, NULL);
}

/* SIGINT drains too. */
static void stop_daemon(void)
{
    if (D.pid > 0) {
        kill(D.pid, SIGINT);
        CHECK_INT(it_wait_exit(&D, 30000), 0);
    }
    it_cleanup(&D);
    CHECK_INT(it_done(), 0);
}

/* The tests after a crash that left no daemon running have nothing to talk to. */
static void run_if_running(void (*test)(void))
{
    if (D.pid > 0)
        test();
}

static void test_sigkill_during_burst_if_running(void)
{
    run_if_running(test_sigkill_during_burst);
}

static void test_start_errors_if_running(void)
{
    run_if_running(test_start_errors);
}

static const df_test tests[] = {
    {"sigterm_restart", test_sigterm_restart},
    {"compact_rebuild", test_compact_rebuild},
    {"sigkill_before_flush", test_sigkill_before_flush},
    {"sigkill_during_burst", test_sigkill_during_burst_if_running},
    {"start_errors", test_start_errors_if_running},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}
