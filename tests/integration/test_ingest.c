/* test_ingest.c: the ingest socket: events, duplicates, rejected frames, a burst, and appends
 * answered while a flood of ingest is committed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"

#define T0            IT_T0
#define DAY           IT_DAY
#define MAX_MESSAGE   65536
#define BURST_EVENTS  20000
#define BURST_FRAME   100
#define BURST_DEALS   500
#define FLOOD_EVENTS  30000
#define FLOOD_APPENDS 60

static it_daemon D;

/* A frame sent to ingest that must land in the rejected store. */
typedef struct bad_frame {
    const char *what;
    char *bytes;
    size_t len;
    const char *error;
    /* the raw the store must keep: the whole frame, or one array element */
    char *raw;
    size_t raw_len;
} bad_frame;

#define MAX_BAD 32
static bad_frame bad[MAX_BAD];
static int nbad;

static bad_frame *add_bad(const char *what, const void *bytes, size_t len, const char *error)
{
    bad_frame *b = &bad[nbad++];
    b->what = what;
    b->bytes = malloc(len ? len : 1);
    memcpy(b->bytes, bytes, len);
    b->len = len;
    b->error = error;
    b->raw = b->bytes;
    b->raw_len = len;
    return b;
}

static void add_bad_text(const char *what, const char *text, const char *error)
{
    msgpack_sbuffer sb;
    CHECK(it_encode(&sb, "%s", text));
    add_bad(what, sb.data, sb.size, error);
    msgpack_sbuffer_destroy(&sb);
}

static void test_single_and_array(void)
{
    CHECK(it_push(&D, "{id: in-1, type: stage, deal: ing, stage: lead, at: %lld, amount: 10}", T0));
    CHECK(it_wait_seq(&D, 1));
    const msgpack_object *r = it_call(&D, "{op: deal, deal: ing, now: %lld}", T0 + DAY);
    CHECK(it_ok(r));
    CHECK_STR(it_str(it_get(r, "deal"), "stage"), "lead");
    CHECK_INT(it_int(it_get(r, "deal"), "version"), 1);

    CHECK(it_push(&D,
                  "[{id: in-2, type: activity, deal: ing, kind: call, at: %lld},"
                  "{id: in-3, type: stage, deal: ing, stage: qualified, at: %lld},"
                  "{id: in-4, type: update, deal: ing, owner: olga}]",
                  T0 + 1, T0 + 2));
    CHECK(it_wait_seq(&D, 4));
    r = it_call(&D, "{op: history, deal: ing}");
    const msgpack_object *events = it_get(r, "events");
    CHECK_INT(it_len(events), 4);
    static const char *const ids[] = {"in-1", "in-2", "in-3", "in-4"};
    for (uint32_t i = 0; i < 4; i++) {
        CHECK_STR(it_str(it_at(events, i), "id"), ids[i]);
        CHECK_INT(it_int(it_at(events, i), "seq"), i + 1);
    }
    /* at defaults to recv over ingest too */
    CHECK_INT(it_int(it_at(events, 3), "at"), it_int(it_at(events, 3), "recv"));
    r = it_call(&D, "{op: deal, deal: ing, now: %lld}", T0 + DAY);
    CHECK_STR(it_str(it_get(r, "deal"), "stage"), "qualified");
    CHECK_STR(it_str(it_get(r, "deal"), "owner"), "olga");
}

static void test_duplicates(void)
{
    int64_t before = it_stat(&D, "duplicates");
    CHECK_INT(before, 0);
    CHECK(it_push(&D, "{id: in-1, type: stage, deal: ing, stage: won, at: %lld}", T0 + 9));
    CHECK(it_push(&D,
                  "[{id: in-2, type: activity, deal: ing, kind: call},"
                  "{id: in-5, type: activity, deal: ing, kind: email, at: %lld},"
                  "{id: in-5, type: activity, deal: ing, kind: email, at: %lld}]",
                  T0 + 3, T0 + 3));
    CHECK(it_wait_stat(&D, "duplicates", 3));
    CHECK(it_wait_seq(&D, 5));
    CHECK_INT(it_last_seq(&D), 5);
    CHECK_INT(it_stat(&D, "duplicates"), 3);
    CHECK_INT(it_stat(&D, "events"), 5);
    CHECK_INT(it_stat(&D, "rejected"), 0);
    const msgpack_object *r = it_call(&D, "{op: history, deal: ing}");
    CHECK_INT(it_len(it_get(r, "events")), 5);
    r = it_call(&D, "{op: deal, deal: ing, now: %lld}", T0 + DAY);
    CHECK_STR(it_str(it_get(r, "deal"), "stage"), "qualified");
    CHECK_INT(it_int(it_get(r, "deal"), "activities"), 2);
    /* the api sees ingest's ids too */
    r = it_call(&D, "{op: append, events: [{id: in-3, type: activity, deal: ing, kind: x}]}");
    CHECK_RESULT(it_at(it_get(r, "results"), 0), 3, true);
}

static void build_bad_frames(void)
{
    add_bad_text("missing id", "{type: stage, deal: ing, stage: lead}", "bad_request");
    add_bad_text("bad type", "{id: bad-2, type: bogus, deal: ing}", "bad_request");
    add_bad_text("unknown stage", "{id: bad-3, type: stage, deal: ing, stage: nowhere}",
                 "unknown_stage");
    add_bad_text("reserved seq", "{id: bad-4, type: activity, deal: ing, kind: call, seq: 3}",
                 "bad_request");
    add_bad_text("reserved recv", "{id: bad-5, type: activity, deal: ing, kind: call, recv: 3}",
                 "bad_request");
    add_bad_text("unknown pipeline",
                 "{id: bad-6, type: stage, deal: ing, stage: lead, pipeline: nopipe}",
                 "unknown_pipeline");
    add_bad("garbage", "\xc1 not msgpack at all", 21, "bad_request");
    add_bad_text("int keys", "{1: 2}", "bad_request");
    add_bad_text("int key among string keys",
                 "{id: bad-9, type: activity, deal: ing, kind: call, 7: x}", "bad_request");
    add_bad("huge array header", "\xdd\xff\xff\xff\xff", 5, "bad_request");
    add_bad("huge map header", "\xdf\xff\xff\xff\xff", 5, "bad_request");
    add_bad_text("not a map", "5", "bad_request");
    add_bad_text("a string", "'hello'", "bad_request");
    add_bad_text("empty array", "[]", "bad_request");
    add_bad("empty frame", "", 0, "bad_request");
    msgpack_sbuffer sb;
    CHECK(it_encode(&sb, "{id: bad-t, type: activity, deal: ing, kind: call}"));
    add_bad("truncated", sb.data, sb.size - 3, "bad_request");
    /* the same event with one byte after it */
    char *trailing = malloc(sb.size + 1);
    memcpy(trailing, sb.data, sb.size);
    trailing[sb.size] = '\x01';
    add_bad("trailing byte", trailing, sb.size + 1, "bad_request");
    free(trailing);
    msgpack_sbuffer_destroy(&sb);
    it_buf deep = {0};
    for (int i = 0; i < 20; i++)
        it_buf_add(&deep, "[");
    for (int i = 0; i < 20; i++)
        it_buf_add(&deep, "]");
    add_bad_text("too deep", it_buf_get(&deep), "bad_request");
    it_buf_free(&deep);
    char long_id[200];
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    char text[400];
    snprintf(text, sizeof text, "{id: %s, type: activity, deal: ing, kind: call}", long_id);
    add_bad_text("id of 129 bytes", text, "bad_request");

    /* an amount that is not finite */
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    it_pack(&pk, "id");
    it_pack(&pk, "bad-nan");
    it_pack(&pk, "type");
    it_pack(&pk, "update");
    it_pack(&pk, "deal");
    it_pack(&pk, "ing");
    it_pack(&pk, "at");
    it_pack(&pk, "%lld", T0);
    it_pack(&pk, "amount");
    msgpack_pack_double(&pk, NAN);
    add_bad("amount NaN", sb.data, sb.size, "bad_request");
    msgpack_sbuffer_destroy(&sb);
}

/* An array frame: a good event, a non-map and a bad event; each element
 * is taken or rejected on its own. */
static void send_mixed_array(void)
{
    msgpack_sbuffer good, wrong;
    CHECK(it_encode(&good, "{id: in-6, type: activity, deal: ing, kind: note, at: %lld}", T0 + 6));
    CHECK(it_encode(&wrong, "{id: bad-k, type: nope, deal: ing}"));
    size_t len = 1 + good.size + 1 + wrong.size;
    char *frame = malloc(len);
    frame[0] = '\x93';
    memcpy(frame + 1, good.data, good.size);
    frame[1 + good.size] = '\x07';
    memcpy(frame + 2 + good.size, wrong.data, wrong.size);
    CHECK(it_push_raw(&D, frame, len));

    bad_frame *b = add_bad("array element not a map", frame, len, "bad_request");
    b->raw = b->bytes + 1 + good.size;
    b->raw_len = 1;
    b = add_bad("bad array element", frame, len, "bad_request");
    b->raw = b->bytes + 2 + good.size;
    b->raw_len = wrong.size;
    free(frame);
    msgpack_sbuffer_destroy(&good);
    msgpack_sbuffer_destroy(&wrong);
}

static void test_rejected(void)
{
    build_bad_frames();
    int plain = nbad;
    for (int i = 0; i < plain; i++)
        CHECK(it_push_raw(&D, bad[i].bytes, bad[i].len));
    send_mixed_array();

    /* a frame over --max-message keeps nothing but a note of its size */
    size_t big_len = MAX_MESSAGE + 4000;
    char *big = malloc(big_len);
    memset(big, 'z', big_len);
    big[0] = '\x81';
    CHECK(it_push_raw(&D, big, big_len));
    free(big);
    int too_large = nbad;

    CHECK(it_wait_stat(&D, "rejected", nbad + 1));
    /* the daemon goes on */
    CHECK(it_push(&D, "{id: in-7, type: activity, deal: ing, kind: note, at: %lld}", T0 + 7));
    CHECK(it_wait_seq(&D, 7));
    CHECK_INT(it_last_seq(&D), 7);
    CHECK_INT(it_stat(&D, "rejected"), nbad + 1);
    const msgpack_object *r = it_call(&D, "{op: history, deal: ing}");
    const msgpack_object *events = it_get(r, "events");
    CHECK_INT(it_len(events), 7);
    CHECK_STR(it_str(it_at(events, 5), "id"), "in-6");
    CHECK_STR(it_str(it_at(events, 6), "id"), "in-7");

    r = it_call(&D, "{op: rejected, limit: 1000}");
    CHECK(it_ok(r));
    const msgpack_object *items = it_get(r, "items");
    CHECK_INT(it_len(items), nbad + 1);
    int64_t previous = 0;
    for (int i = 0; i < nbad && i < it_len(items); i++) {
        const msgpack_object *item = it_at(items, (uint32_t)i);
        int failed = df_checks_failed;
        CHECK(it_int(item, "id") > previous);
        previous = it_int(item, "id");
        CHECK(it_int(item, "recv") > T0);
        CHECK_STR(it_str(item, "error"), bad[i].error);
        const char *message = it_str(item, "message");
        CHECK(message && message[0]);
        const msgpack_object *raw = it_get(item, "raw");
        CHECK(raw && raw->type == MSGPACK_OBJECT_BIN);
        CHECK(raw && raw->via.bin.size == bad[i].raw_len &&
              memcmp(raw->via.bin.ptr, bad[i].raw, bad[i].raw_len) == 0);
        if (df_checks_failed != failed) {
            fprintf(stderr, "  rejected item %d (%s): ", i, bad[i].what);
            msgpack_object_print(stderr, *item);
            fprintf(stderr, "\n");
        }
    }
    const msgpack_object *last = it_at(items, (uint32_t)too_large);
    CHECK_STR(it_str(last, "error"), "too_large");
    const msgpack_object *raw = it_get(last, "raw");
    CHECK(raw && raw->type == MSGPACK_OBJECT_BIN && raw->via.bin.size == 0);
    char size_text[32];
    snprintf(size_text, sizeof size_text, "%zu", big_len);
    const char *message = it_str(last, "message");
    CHECK(message && strstr(message, size_text));

    /* paging */
    int64_t third = it_int(it_at(items, 2), "id");
    r = it_call(&D, "{op: rejected, after: %lld, limit: 3}", (long long)third);
    const msgpack_object *page = it_get(r, "items");
    CHECK_INT(it_len(page), 3);
    for (uint32_t i = 0; i < 3; i++)
        CHECK(it_equal(it_at(page, i), it_at(items, 3 + i)));
    r = it_call(&D, "{op: rejected}");
    CHECK_INT(it_len(it_get(r, "items")), nbad + 1 < 100 ? nbad + 1 : 100);

    for (int i = 0; i < nbad; i++)
        free(bad[i].bytes);
}

static void test_burst(void)
{
    int64_t base = it_last_seq(&D);
    int64_t rejected = it_stat(&D, "rejected");
    int64_t deals = it_stat(&D, "deals");
    it_buf frame = {0};
    bool sent = true;
    for (int i = 0; i < BURST_EVENTS; i++) {
        it_buf_add(&frame,
                   "%s{id: burst-%05d, type: activity, deal: bd-%03d, kind: call, at: %lld}",
                   i % BURST_FRAME ? "," : "[", i, i % BURST_DEALS, T0 + i);
        if (i % BURST_FRAME == BURST_FRAME - 1) {
            it_buf_add(&frame, "]");
            sent = it_push(&D, "%s", it_buf_get(&frame)) && sent;
            it_buf_free(&frame);
        }
    }
    CHECK(sent);
    CHECK(it_wait_seq(&D, base + BURST_EVENTS));
    CHECK_INT(it_last_seq(&D), base + BURST_EVENTS);
    CHECK_INT(it_stat(&D, "events"), base + BURST_EVENTS);
    CHECK_INT(it_stat(&D, "rejected"), rejected);
    CHECK_INT(it_stat(&D, "deals"), deals + BURST_DEALS);
    const msgpack_object *r = it_call(&D, "{op: deal, deal: bd-007, now: %lld}", T0 + DAY);
    CHECK_INT(it_int(it_get(r, "deal"), "activities"), BURST_EVENTS / BURST_DEALS);
    CHECK_INT(it_int(it_get(r, "deal"), "last_activity"), T0 + BURST_EVENTS - BURST_DEALS + 7);
    r = it_call(&D, "{op: history, deal: bd-499}");
    const msgpack_object *events = it_get(r, "events");
    CHECK_INT(it_len(events), BURST_EVENTS / BURST_DEALS);
    CHECK_STR(it_str(it_at(events, 0), "id"), "burst-00499");
    /* one frame's events are recorded in frame order */
    r = it_call(&D, "{op: replay, after: %lld, limit: 100}", (long long)base);
    events = it_get(r, "events");
    bool ordered = it_len(events) == 100;
    for (uint32_t i = 0; i < 100 && ordered; i++) {
        char id[32];
        snprintf(id, sizeof id, "burst-%05u", i);
        const char *got = it_str(it_at(events, i), "id");
        ordered = got && strcmp(got, id) == 0;
    }
    CHECK(ordered);
}

/* Single-event appends sent one at a time while a PULL flood is committed
 * (the daemon commits them in batches of their own): each is acknowledged
 * with a seq that is already visible, and its event already counted; at the
 * end every event is recorded once, seqs have no gap, each source's events
 * are in the order it sent them, and a retried append finds its original. */
static void test_appends_during_flood(void)
{
    it_release();
    int64_t base = it_last_seq(&D);
    it_buf frame = {0};
    bool sent = true;
    for (int i = 0; i < FLOOD_EVENTS; i++) {
        it_buf_add(&frame,
                   "%s{id: flood-%05d, type: activity, deal: fd-%03d, kind: call, at: %lld}",
                   i % BURST_FRAME ? "," : "[", i, i % BURST_DEALS, T0 + i);
        if (i % BURST_FRAME == BURST_FRAME - 1) {
            it_buf_add(&frame, "]");
            sent = it_push(&D, "%s", it_buf_get(&frame)) && sent;
            it_buf_free(&frame);
        }
    }
    CHECK(sent);
    int64_t seqs[FLOOD_APPENDS];
    bool acked_visible = true, acked_ordered = true, acked_counted = true;
    for (int j = 0; j < FLOOD_APPENDS; j++) {
        seqs[j] = it_append(
            &D, "{id: acked-%03d, type: activity, deal: acked-deal, kind: call, at: %lld}", j,
            T0 + j);
        acked_ordered &= seqs[j] > (j ? seqs[j - 1] : base);
        acked_visible &= it_last_seq(&D) >= seqs[j];
        const msgpack_object *r = it_call(&D, "{op: deal, deal: acked-deal, now: %lld}", T0 + DAY);
        acked_counted &= it_int(it_get(r, "deal"), "activities") == j + 1;
        it_release();
    }
    CHECK(acked_ordered);
    CHECK(acked_visible);
    CHECK(acked_counted);
    CHECK(it_wait_seq(&D, base + FLOOD_EVENTS + FLOOD_APPENDS));
    CHECK_INT(it_last_seq(&D), base + FLOOD_EVENTS + FLOOD_APPENDS);
    CHECK_INT(it_stat(&D, "events"), base + FLOOD_EVENTS + FLOOD_APPENDS);

    /* the log, page by page: every seq once, each source in its own order */
    int64_t seq = base, ahead = 0;
    int next_flood = 0, next_acked = 0;
    bool gap_free = true, flood_ordered = true, acked_in_log = true;
    while (seq < base + FLOOD_EVENTS + FLOOD_APPENDS && gap_free) {
        const msgpack_object *events = it_get(
            it_call(&D, "{op: replay, after: %lld, limit: 10000}", (long long)seq), "events");
        gap_free = it_len(events) > 0;
        for (uint32_t i = 0; gap_free && i < (uint32_t)it_len(events); i++) {
            const msgpack_object *ev = it_at(events, i);
            const char *id = it_str(ev, "id");
            gap_free = it_int(ev, "seq") == ++seq && id;
            if (!gap_free)
                break;
            char want[32];
            if (strncmp(id, "flood-", 6) == 0) {
                snprintf(want, sizeof want, "flood-%05d", next_flood++);
                flood_ordered &= strcmp(id, want) == 0;
            } else {
                snprintf(want, sizeof want, "acked-%03d", next_acked);
                acked_in_log &=
                    next_acked < FLOOD_APPENDS && strcmp(id, want) == 0 && seqs[next_acked] == seq;
                next_acked++;
                ahead += next_flood < FLOOD_EVENTS;
            }
        }
        it_release();
    }
    CHECK(gap_free);
    CHECK(flood_ordered);
    CHECK(acked_in_log);
    CHECK_INT(next_flood, FLOOD_EVENTS);
    CHECK_INT(next_acked, FLOOD_APPENDS);
    printf("  %lld of %d appends were committed before the flood's last event\n", (long long)ahead,
           FLOOD_APPENDS);

    const msgpack_object *r = it_call(
        &D,
        "{op: append, events: [{id: acked-000, type: activity, deal: acked-deal, kind: call}]}");
    const msgpack_object *result = it_at(it_get(r, "results"), 0);
    CHECK_INT(it_bool(result, "dup"), 1);
    CHECK_INT(it_int(result, "seq"), seqs[0]);
    CHECK_INT(it_last_seq(&D), base + FLOOD_EVENTS + FLOOD_APPENDS);
}

static bool start_daemon(void)
{
    static const char *const extra[] = {"--max-message", "65536", NULL};
    return it_setup(&D, extra);
}

static void stop_daemon(void)
{
    it_teardown(&D);
}

/* The burst starts with no replies kept from the tests before it. */
static void test_burst_alone(void)
{
    it_release();
    test_burst();
}

static const df_test tests[] = {
    {"single_and_array", test_single_and_array},
    {"duplicates", test_duplicates},
    {"rejected", test_rejected},
    {"burst", test_burst_alone},
    {"appends_during_flood", test_appends_during_flood},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}
