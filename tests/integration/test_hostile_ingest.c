/* test_hostile_ingest.c: hostile frames on the ingest socket, and SIGTERM while a client floods the
 * api: nothing acknowledged is lost. */
#include "hostile.h"

/* ---- ingest ---- */

/* A rejected item the daemon must keep, in order. */
typedef struct expected_item {
    const char *error;
    char *raw;
    size_t raw_len;
} expected_item;

static expected_item items[INGEST_FRAMES * 4 + 64];
static int nitems;
static char valid_ids[INGEST_FRAMES * 4][32];
static int nvalid;

static void expect_item(const char *error, const void *raw, size_t len)
{
    expected_item *it = &items[nitems++];
    it->error = error;
    it->raw = malloc(len ? len : 1);
    memcpy(it->raw, raw, len);
    it->raw_len = len;
}

/* A valid event with a fresh id, packed; its id goes to id_out. */
static void pack_event(msgpack_sbuffer *sb, char *id_out)
{
    static int next_event;
    msgpack_packer pk;
    char text[200];
    int n = next_event++;
    snprintf(text, sizeof text, "{id: ing-%d, type: %s, deal: ing-%d, %s}", n,
             n % 2 ? "activity" : "stage", n % 13, n % 2 ? "kind: call" : "stage: lead");
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    CHECK(it_pack(&pk, "%s", text));
    snprintf(id_out, sizeof valid_ids[0], "ing-%d", n);
}

/* The event must be recorded, after the ones before it. */
static void expect_event(const char *id)
{
    snprintf(valid_ids[nvalid++], sizeof valid_ids[0], "%s", id);
}

/* What one event map must become: recorded (NULL) or rejected with a code,
 * as far as its form decides; "?" when it might be recorded. */
static const char *event_fate(const char *raw, size_t len)
{
    static msgpack_zone zone;
    static bool ready;
    static df_event ev;
    msgpack_object obj;
    df_error err;
    if (df_msgpack_check(raw, len, &err) != 0)
        return "bad_request";
    if (!ready) {
        msgpack_zone_init(&zone, 8192);
        ready = true;
    }
    msgpack_zone_clear(&zone);
    if (df_msgpack_unpack(raw, len, &zone, &obj, &err) != 0 || df_event_decode(&obj, &ev, &err))
        return "bad_request";
    return "?";
}

/* A mutated event frame whose fate is certain: rejected as a whole. */
static bool mutated_frame(msgpack_sbuffer *sb)
{
    for (int tries = 0; tries < 20; tries++) {
        msgpack_sbuffer_init(sb);
        char text[200];
        snprintf(text, sizeof text,
                 "{id: mut-%u, type: stage, deal: mut, stage: lead, at: %lld, amount: 5}",
                 below(1u << 30), T0);
        msgpack_packer pk;
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        it_pack(&pk, "%s", text);
        mutate(sb, 0);
        uint32_t count;
        size_t header;
        if (sb->size > 0 && !df_msgpack_array_header(sb->data, sb->size, &count, &header) &&
            strcmp(event_fate(sb->data, sb->size), "bad_request") == 0)
            return true;
        msgpack_sbuffer_destroy(sb);
        msgpack_sbuffer_init(sb);
    }
    return false;
}

static void push(const void *frame, size_t len)
{
    CHECK(it_push_raw(&D, frame, len));
}

static void test_ingest(void)
{
    int64_t base_seq = it_last_seq(&D);
    int64_t base_rejected = it_stat(&D, "rejected");
    int64_t deadline = mono_ms() + INGEST_BUDGET;
    void *far = it_socket(ZMQ_PUSH, D.ingest);
    char *big = calloc(1, FAR_OVER);
    int frames = 0;
    /* a frame of exactly --max-message is taken */
    {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        char id[32];
        snprintf(id, sizeof id, "ing-max");
        sb_start(&sb, &pk);
        msgpack_pack_map(&pk, 5);
        CHECK(it_pack(&pk, "id") && it_pack(&pk, "%s", id) && it_pack(&pk, "type") &&
              it_pack(&pk, "activity") && it_pack(&pk, "deal") && it_pack(&pk, "ing-max") &&
              it_pack(&pk, "kind") && it_pack(&pk, "call") && it_pack(&pk, "pad"));
        size_t pad = MAX_MESSAGE - sb.size - 5;
        char *bytes = calloc(1, pad);
        msgpack_pack_str(&pk, (uint32_t)pad);
        msgpack_pack_str_body(&pk, bytes, pad);
        free(bytes);
        CHECK(sb.size == MAX_MESSAGE);
        push(sb.data, sb.size);
        expect_event(id);
        msgpack_sbuffer_destroy(&sb);
    }
    int far_frames = 0;
    for (; frames < INGEST_FRAMES && mono_ms() < deadline && alive(); frames++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        char id[32];
        sb_start(&sb, &pk);
        uint32_t kind = below(20);
        if (kind < 6) {
            pack_event(&sb, id);
            push(sb.data, sb.size);
            expect_event(id);
        } else if (kind < 9) {
            /* random bytes that are not msgpack */
            size_t len = 1 + below(60);
            for (size_t i = 0; i < len; i++) {
                char byte = (char)below(256);
                msgpack_sbuffer_write(&sb, &byte, 1);
            }
            if (df_msgpack_check(sb.data, sb.size, NULL) != 0) {
                push(sb.data, sb.size);
                expect_item("bad_request", sb.data, sb.size);
            }
        } else if (kind < 12) {
            msgpack_sbuffer_destroy(&sb);
            if (!mutated_frame(&sb))
                continue;
            push(sb.data, sb.size);
            expect_item("bad_request", sb.data, sb.size);
        } else if (kind < 15) {
            /* an array of valid events, junk and mutated events: each element on its own */
            static const char *const junk[] = {"5",   "'str'", "[]",      "[{id: a}]",
                                               "nil", "{}",    "{id: 7}", "{type: stage}"};
            uint32_t n = 1 + below(6);
            size_t offsets[8], lens[8];
            char ids[8][32];
            int nids = 0;
            msgpack_pack_array(&pk, n);
            for (uint32_t i = 0; i < n; i++) {
                offsets[i] = sb.size;
                lens[i] = 0;
                uint32_t what = below(3);
                msgpack_sbuffer m = {0};
                if (what == 0) {
                    pack_event(&sb, ids[nids++]);
                } else if (what == 1 || !mutated_frame(&m) ||
                           df_msgpack_skip(m.data, m.size) != m.size) {
                    CHECK(it_pack(&pk, "%s", junk[below(8)]));
                    lens[i] = sb.size - offsets[i];
                } else {
                    msgpack_sbuffer_write(&sb, m.data, m.size);
                    lens[i] = m.size;
                }
                msgpack_sbuffer_destroy(&m);
            }
            push(sb.data, sb.size);
            if (df_msgpack_check(sb.data, sb.size, NULL) != 0) {
                /* a mutated element broke the msgpack limits: the frame is one item */
                expect_item("bad_request", sb.data, sb.size);
            } else {
                for (uint32_t i = 0, e = 0; i < n; i++) {
                    if (lens[i])
                        expect_item("bad_request", sb.data + offsets[i], lens[i]);
                    else
                        expect_event(ids[e++]);
                }
            }
        } else if (kind < 17) {
            /* just over the limit */
            size_t len = MAX_MESSAGE + 1 + below(100);
            memset(big, 0, len);
            big[0] = (char)0x81;
            push(big, len);
            expect_item("too_large", "", 0);
        } else if (kind < 18) {
            /* arrays of 10 001 elements, and of none */
            if (below(2)) {
                msgpack_pack_array(&pk, 10001);
                for (int i = 0; i < 10001; i++)
                    msgpack_pack_nil(&pk);
            } else {
                msgpack_sbuffer_write(&sb, "\x90", 1);
            }
            push(sb.data, sb.size);
            expect_item("bad_request", sb.data, sb.size);
        } else if (kind < 19) {
            /* far over: ZeroMQ drops that producer and nothing is kept; a few
             * are enough (each waits in this process until it is sent) */
            if (far_frames < 4) {
                big[0] = (char)0x81;
                CHECK(zmq_send(far, big, FAR_OVER, 0) == FAR_OVER);
                far_frames++;
            }
        } else {
            /* nested past the msgpack limit */
            char deep[40];
            memset(deep, 0x91, sizeof deep - 1);
            deep[sizeof deep - 1] = (char)0xc0;
            push(deep, sizeof deep);
            expect_item("bad_request", deep, sizeof deep);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    free(big);
    printf("ingest: %d frames, %d valid events, %d rejected items\n", frames, nvalid, nitems);

    /* everything valid is recorded, everything else is kept as rejected */
    CHECK(it_wait_seq(&D, base_seq + nvalid));
    CHECK(it_wait_stat(&D, "rejected", base_rejected + nitems));
    CHECK_INT(it_last_seq(&D), base_seq + nvalid);
    CHECK_INT(it_stat(&D, "rejected"), base_rejected + nitems);

    int seen = 0;
    for (int64_t after = base_seq; seen < nvalid && alive();) {
        const msgpack_object *r =
            call_text("ok", "{op: replay, after: %lld, limit: 500}", (long long)after);
        const msgpack_object *events = it_get(r, "events");
        if (it_len(events) <= 0)
            break;
        for (long i = 0; i < it_len(events) && seen < nvalid; i++, seen++) {
            const char *id = it_str(it_at(events, (uint32_t)i), "id");
            if (!id || strcmp(id, valid_ids[seen]) != 0) {
                fprintf(stderr, "replay %d: id %s, expected %s\n", seen, id ? id : "(none)",
                        valid_ids[seen]);
                CHECK(!"recorded in the order sent");
                seen = nvalid;
                break;
            }
        }
        after = it_int(it_at(events, (uint32_t)it_len(events) - 1), "seq");
        it_release();
    }
    CHECK_INT(seen, nvalid);

    int matched = 0;
    for (int64_t after = base_rejected; matched < nitems && alive();) {
        const msgpack_object *r =
            call_text("ok", "{op: rejected, after: %lld, limit: 200}", (long long)after);
        const msgpack_object *list = it_get(r, "items");
        if (it_len(list) <= 0)
            break;
        for (long i = 0; i < it_len(list) && matched < nitems; i++, matched++) {
            const msgpack_object *item = it_at(list, (uint32_t)i);
            const msgpack_object *raw = it_get(item, "raw");
            const expected_item *e = &items[matched];
            bool same = it_str(item, "error") && strcmp(it_str(item, "error"), e->error) == 0 &&
                        raw && raw->type == MSGPACK_OBJECT_BIN && raw->via.bin.size == e->raw_len &&
                        memcmp(raw->via.bin.ptr, e->raw, e->raw_len) == 0 &&
                        it_int(item, "id") == base_rejected + matched + 1 &&
                        it_int(item, "recv") > 0 && it_str(item, "message");
            if (!same) {
                fprintf(stderr, "rejected item %d: expected %s with %zu raw bytes, got ", matched,
                        e->error, e->raw_len);
                msgpack_object_print(stderr, *item);
                fprintf(stderr, "\n");
                CHECK(!"rejected items as sent");
                matched = nitems;
                break;
            }
        }
        after = it_int(it_at(list, (uint32_t)it_len(list) - 1), "id");
        it_release();
    }
    CHECK_INT(matched, nitems);
    for (int i = 0; i < nitems; i++)
        free(items[i].raw);
    it_close(far);
}

/* ---- SIGTERM while a client floods the api ---- */

static void test_sigterm_under_flood(void)
{
    void *flood = it_socket(ZMQ_DEALER, D.api);
    msgpack_sbuffer ping;
    CHECK(it_encode(&ping, "{op: ping}"));
    /* appends in the flood: each acknowledged one must survive */
    static int64_t acked[4096];
    int nacked = 0, nappends = 0, exit_code = -1;
    bool termed = false;
    int64_t start = mono_ms(), term_at = 0;
    while (mono_ms() - start < FLOOD_MS + 2000) {
        for (int i = 0; i < 200; i++) {
            if (i == 0 && nappends < 4096) {
                char text[160];
                msgpack_sbuffer sb;
                snprintf(text, sizeof text,
                         "{op: append, events: [{id: fl-%d, type: activity, deal: flood, kind: "
                         "call}]}",
                         nappends);
                CHECK(it_encode(&sb, "%s", text));
                unsigned char id[4] = {'A', 0, (unsigned char)(nappends >> 8),
                                       (unsigned char)nappends};
                if (zmq_send(flood, id, 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 4) {
                    zmq_send(flood, sb.data, sb.size, 0);
                    nappends++;
                }
                msgpack_sbuffer_destroy(&sb);
                continue;
            }
            if (zmq_send(flood, "P", 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 1)
                zmq_send(flood, ping.data, ping.size, 0);
        }
        /* take the replies; remember the appends acknowledged */
        for (;;) {
            zmq_msg_t first, body;
            zmq_msg_init(&first);
            if (zmq_msg_recv(&first, flood, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&first);
                break;
            }
            zmq_msg_init(&body);
            if (zmq_msg_more(&first) && zmq_msg_recv(&body, flood, 0) >= 0 &&
                zmq_msg_size(&first) == 4 && ((char *)zmq_msg_data(&first))[0] == 'A') {
                const unsigned char *id = zmq_msg_data(&first);
                const msgpack_object *r = it_unpack_keep(zmq_msg_data(&body), zmq_msg_size(&body));
                int64_t seq = it_int(it_at(it_get(r, "results"), 0), "seq");
                int n = id[2] << 8 | id[3];
                if (seq > 0 && nacked < 4096)
                    acked[nacked++] = (int64_t)n << 32 | seq;
                else if (!(it_bool(r, "ok") == 0 && strcmp(it_err(r), "unavailable") == 0))
                    CHECK(!"an append in the flood is acknowledged or unavailable");
                it_release();
            }
            zmq_msg_close(&body);
            zmq_msg_close(&first);
        }
        int64_t now = mono_ms();
        if (!termed && now - start > 300) {
            kill(D.pid, SIGTERM);
            termed = true;
            term_at = now;
        }
        if (termed) {
            exit_code = it_wait_exit(&D, 0);
            if (exit_code >= 0 || now - term_at > FLOOD_MS)
                break;
        }
    }
    if (exit_code < 0) {
        fprintf(stderr, "dealflowd still running %d ms after SIGTERM under a flood of requests\n",
                FLOOD_MS);
        CHECK(!"SIGTERM ends the daemon under a flood");
        kill(D.pid, SIGKILL);
        it_wait_exit(&D, REPLY_TIMEOUT_MS);
    }
    CHECK_INT(exit_code, 0);
    printf("flood: %d appends sent, %d acknowledged\n", nappends, nacked);
    it_close(flood);
    msgpack_sbuffer_destroy(&ping);
    CHECK(log_clean(&D));

    /* every acknowledged append is on disk: sent again, it is a duplicate of the same seq */
    if (!it_restart(&D))
        return;
    fuzz_socket = it_socket(ZMQ_DEALER, D.api);
    for (int i = 0; i < nacked; i++) {
        int n = (int)(acked[i] >> 32);
        int64_t seq = acked[i] & 0xffffffff;
        const msgpack_object *r = call_text(
            "ok", "{op: append, events: [{id: fl-%d, type: activity, deal: flood, kind: call}]}",
            n);
        CHECK_RESULT(it_at(it_get(r, "results"), 0), seq, true);
        if (i % 64 == 0)
            it_release();
    }
}

static const df_test tests[] = {
    {"ingest", test_ingest},
    {"memory_bounded", test_memory_bounded},
    {"keep", check_keep},
    {"sigterm_under_flood", test_sigterm_under_flood},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {
        .setup = hostile_start, .teardown = hostile_stop, .ready = alive};
    int64_t start = mono_ms();
    int status = df_test_main(argc, argv, tests, &fixture);
    printf("hostile ingest: %lld ms\n", (long long)(mono_ms() - start));
    return status;
}
