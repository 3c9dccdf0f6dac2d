/* test_hostile.c: hostile api and ingest traffic: one reply each, bounded memory, nothing lost. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <zmq.h>

#include "check.h"
#include "codec.h"
#include "harness.h"

#define T0  IT_T0
#define DAY IT_DAY

/* Small enough that oversized frames are cheap, large enough for a map of
 * 60 000 keys (4 bytes a pair). */
#define MAX_MESSAGE     262144
#define MAX_MESSAGE_STR "262144"
/* Past this ZeroMQ drops the peer (ZMQ_MAXMSGSIZE). */
#define FAR_OVER (16 * MAX_MESSAGE + 1)

/* The random part is bounded both ways: requests and wall time. */
#define FUZZ_REQUESTS  20000
#define FUZZ_BUDGET_MS 5000
#define INGEST_FRAMES  4000
#define INGEST_BUDGET  3000
#define WINDOW         64
/* How long a reply may take before it counts as never sent. Generous: only
 * a broken daemon waits that long. */
#define REPLY_TIMEOUT_MS 10000
#define MAX_PENDING      (FUZZ_REQUESTS + 10000)
#define RSS_GROWTH_KB    (200 * 1024)
/* Requests flooding the api after SIGTERM: the daemon must still exit. */
#define FLOOD_MS 10000

static it_daemon D;
/* The daemon the requests below go to, and whether it died. */
static it_daemon *cur = &D;
static bool daemon_dead;

/* ---- deterministic randomness ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint32_t below(uint32_t n)
{
    return n ? (uint32_t)(rnd() % n) : 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the daemon process ---- */

/* False (once, with the log printed) when the daemon has died. */
static bool alive(void)
{
    if (daemon_dead || cur->pid <= 0)
        return false;
    int status = 0;
    if (waitpid(cur->pid, &status, WNOHANG) != cur->pid)
        return true;
    daemon_dead = true;
    cur->pid = 0;
    fprintf(stderr, "dealflowd died (%s %d)\n", WIFSIGNALED(status) ? "signal" : "exit status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    it_print_log(cur);
    CHECK(!"dealflowd died");
    return false;
}

/* RssAnon of the daemon in KiB, -1 when unreadable. */
static long rss_anon_kb(void)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)D.pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "RssAnon:", 8) == 0)
            kb = atol(line + 8);
    if (f)
        fclose(f);
    return kb;
}

static bool log_clean(const it_daemon *d)
{
    static const char *const reports[] = {"runtime error", "AddressSanitizer", "LeakSanitizer",
                                          "ThreadSanitizer", NULL};
    bool clean = true;
    for (int i = 0; reports[i]; i++) {
        if (it_log_contains(d, reports[i])) {
            fprintf(stderr, "the daemon log holds a sanitizer report (%s)\n", reports[i]);
            clean = false;
        }
    }
    if (!clean)
        it_print_log(d);
    return clean;
}

/* ---- requests in flight: [id frame, extra frames..., body] over one DEALER ---- */

typedef struct pending {
    char what[100];
    const char *expect; /* "ok", an error code, or NULL for any well-formed reply */
    int extra;          /* frames between the id and the body */
    int events;         /* an append's event count, -1 when unknown */
    int replies;
    bool keep; /* copy the reply into `reply` */
    char *reply;
    size_t reply_len;
} pending;

static pending pend[MAX_PENDING];
static int npend;
static void *fuzz_socket;

static const char *const error_codes[] = {
    "bad_request",   "unknown_op",       "not_found", "conflict",
    "unknown_stage", "unknown_pipeline", "too_large", "forbidden",
    "unavailable",   "internal",         NULL,
};

static bool known_code(const char *code)
{
    for (int i = 0; code && error_codes[i]; i++)
        if (strcmp(code, error_codes[i]) == 0)
            return true;
    return false;
}

/* Extra envelope frame k of request idx: 0..49 bytes that the reply must echo. */
static size_t extra_frame(int idx, int k, char *buf)
{
    size_t len = (size_t)((idx * 7 + k * 13) % 50);
    memset(buf, (idx + k) & 0xff, len);
    return len;
}

static bool send_frames(void *socket, int idx, const void *body, size_t len)
{
    unsigned char id[8] = {'H',
                           'Q',
                           0,
                           0,
                           (unsigned char)(idx >> 24),
                           (unsigned char)(idx >> 16),
                           (unsigned char)(idx >> 8),
                           (unsigned char)idx};
    char extra[64];
    bool ok = zmq_send(socket, id, sizeof id, ZMQ_SNDMORE) == sizeof id;
    for (int k = 0; ok && k < pend[idx].extra; k++) {
        size_t n = extra_frame(idx, k, extra);
        ok = zmq_send(socket, extra, n, ZMQ_SNDMORE) == (int)n;
    }
    if (ok)
        ok = zmq_send(socket, body, len, 0) == (int)len;
    if (!ok)
        fprintf(stderr, "send request %d (%s): %s\n", idx, pend[idx].what,
                zmq_strerror(zmq_errno()));
    return ok;
}

/* Registers a request and sends it; returns its index or -1. */
static int submit(const char *what, const char *expect, int extra, const void *body, size_t len)
{
    if (daemon_dead)
        return -1; /* reported once already */
    if (npend == MAX_PENDING) {
        CHECK(!"MAX_PENDING is large enough");
        return -1;
    }
    int idx = npend++;
    pend[idx] = (pending){.expect = expect, .extra = extra, .events = -1};
    snprintf(pend[idx].what, sizeof pend[idx].what, "%s", what);
    if (!send_frames(fuzz_socket, idx, body, len)) {
        CHECK(!"request sent");
        pend[idx].replies = 1; /* not waited for */
        return -1;
    }
    return idx;
}

static void check_reply(int idx, const char *body, size_t len)
{
    pending *p = &pend[idx];
    df_error err;
    msgpack_zone zone;
    msgpack_object obj;
    bool good = false;
    msgpack_zone_init(&zone, 4096);
    if (df_msgpack_check(body, len, &err) != 0 || df_msgpack_unpack(body, len, &zone, &obj, &err)) {
        fprintf(stderr, "request %d (%s): reply is not msgpack: %s\n", idx, p->what, err.message);
    } else if (obj.type != MSGPACK_OBJECT_MAP || it_bool(&obj, "ok") < 0) {
        fprintf(stderr, "request %d (%s): reply is not a map with a bool `ok`\n", idx, p->what);
    } else {
        bool ok = it_bool(&obj, "ok") == 1;
        const msgpack_object *code = it_get(&obj, "error");
        char name[32] = "";
        if (code && code->type == MSGPACK_OBJECT_STR && code->via.str.size < sizeof name)
            memcpy(name, code->via.str.ptr, code->via.str.size);
        const msgpack_object *message = it_get(&obj, "message");
        good = true;
        if (!ok && (!known_code(name) || !message || message->type != MSGPACK_OBJECT_STR ||
                    message->via.str.size > 199)) {
            fprintf(stderr, "request %d (%s): malformed error reply\n", idx, p->what);
            good = false;
        }
        if (p->expect && strcmp(p->expect, ok ? "ok" : name) != 0) {
            fprintf(stderr, "request %d (%s): expected %s, got %s: ", idx, p->what, p->expect,
                    ok ? "ok" : name);
            msgpack_object_print(stderr, obj);
            fprintf(stderr, "\n");
            good = false;
        }
        const msgpack_object *results = it_get(&obj, "results");
        if (ok && p->events >= 0 && it_len(results) != p->events) {
            fprintf(stderr, "request %d (%s): %ld results for %d events\n", idx, p->what,
                    it_len(results), p->events);
            good = false;
        }
        for (long i = 0; ok && i < it_len(results); i++) {
            const msgpack_object *r = it_at(results, (uint32_t)i);
            bool recorded = it_int(r, "seq") > 0 && it_bool(r, "dup") >= 0;
            bool refused = known_code(it_str(r, "error")) && it_str(r, "message");
            if (recorded == refused) {
                fprintf(stderr, "request %d (%s): malformed result %ld\n", idx, p->what, i);
                good = false;
            }
        }
    }
    CHECK(good);
    msgpack_zone_destroy(&zone);
}

/* Takes one message off the socket; false when none is there. */
static bool take_reply(void *socket)
{
    zmq_msg_t frames[20];
    int n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t *m = &frames[n < 19 ? n : 19];
        if (n >= 19)
            zmq_msg_close(m);
        zmq_msg_init(m);
        if (zmq_msg_recv(m, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            for (int i = 0; i < (n < 19 ? n : 19); i++)
                zmq_msg_close(&frames[i]);
            return n > 0;
        }
        more = zmq_msg_more(m);
        n++;
    }
    int kept = n < 20 ? n : 20;
    const unsigned char *id = zmq_msg_data(&frames[0]);
    int idx = -1;
    if (zmq_msg_size(&frames[0]) == 8 && id[0] == 'H' && id[1] == 'Q')
        idx = (int)((uint32_t)id[4] << 24 | (uint32_t)id[5] << 16 | (uint32_t)id[6] << 8 | id[7]);
    if (idx < 0 || idx >= npend) {
        fprintf(stderr, "a reply of %d frames that no request asked for\n", n);
        CHECK(!"reply matches a request");
    } else {
        pending *p = &pend[idx];
        p->replies++;
        if (p->replies > 1) {
            fprintf(stderr, "request %d (%s): %d replies\n", idx, p->what, p->replies);
            CHECK(!"exactly one reply");
        } else if (n != p->extra + 2) {
            fprintf(stderr, "request %d (%s): reply of %d frames, sent %d\n", idx, p->what, n,
                    p->extra + 2);
            CHECK(!"the reply keeps the envelope");
        } else {
            char extra[64];
            bool same = true;
            for (int k = 0; k < p->extra; k++) {
                size_t len = extra_frame(idx, k, extra);
                same = same && zmq_msg_size(&frames[1 + k]) == len &&
                       memcmp(zmq_msg_data(&frames[1 + k]), extra, len) == 0;
            }
            CHECK(same);
            zmq_msg_t *body = &frames[n - 1];
            check_reply(idx, zmq_msg_data(body), zmq_msg_size(body));
            if (p->keep) {
                p->reply_len = zmq_msg_size(body);
                p->reply = malloc(p->reply_len ? p->reply_len : 1);
                memcpy(p->reply, zmq_msg_data(body), p->reply_len);
            }
        }
    }
    for (int i = 0; i < kept; i++)
        zmq_msg_close(&frames[i]);
    return true;
}

/* Waits until every request from `first` on has its reply. */
static void collect(int first)
{
    int64_t deadline = mono_ms() + REPLY_TIMEOUT_MS;
    for (;;) {
        while (take_reply(fuzz_socket))
            ;
        int missing = 0;
        for (int i = first; i < npend; i++)
            missing += pend[i].replies == 0;
        if (missing == 0)
            return;
        if (mono_ms() > deadline || !alive()) {
            for (int i = first, shown = 0; i < npend && shown < 20; i++) {
                if (pend[i].replies == 0) {
                    fprintf(stderr, "request %d (%s): no reply\n", i, pend[i].what);
                    shown++;
                }
            }
            fprintf(stderr, "%d requests without a reply\n", missing);
            CHECK(!"every request gets a reply");
            for (int i = first; i < npend; i++)
                pend[i].replies += pend[i].replies == 0;
            return;
        }
        zmq_pollitem_t item = {fuzz_socket, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 100);
    }
}

static int submit_sb(const char *what, const char *expect, msgpack_sbuffer *sb)
{
    int idx = submit(what, expect, 0, sb->data, sb->size);
    msgpack_sbuffer_destroy(sb);
    return idx;
}

static int submit_text(const char *what, const char *expect, const char *text)
{
    msgpack_sbuffer sb;
    CHECK(it_encode(&sb, "%s", text));
    return submit_sb(what, expect, &sb);
}

/* One request, waited for; its reply (kept by the harness) or NULL. */
static const msgpack_object *call(const char *what, const char *expect, const void *body,
                                  size_t len)
{
    int idx = submit(what, expect, 0, body, len);
    if (idx < 0)
        return NULL;
    pend[idx].keep = true;
    collect(idx);
    if (!pend[idx].reply)
        return NULL;
    const msgpack_object *o = it_unpack_keep(pend[idx].reply, pend[idx].reply_len);
    free(pend[idx].reply);
    pend[idx].reply = NULL;
    return o;
}

static const msgpack_object *call_text(const char *expect, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const msgpack_object *call_text(const char *expect, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    msgpack_sbuffer sb;
    CHECK(it_encode(&sb, "%s", text));
    const msgpack_object *r = call(text, expect, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return r;
}

/* ---- what the protocol says a reply must be, where that is certain ---- */

static const char *const known_ops[] = {"ping",  "stats",  "deal",     "history", "list",
                                        "board", "replay", "rejected", "append",  NULL};

/* The error a request must get by its form alone, "ok" for a plain ping,
 * or NULL when the op decides. */
static const char *expected_by_form(const char *body, size_t len)
{
    static msgpack_zone zone;
    static bool ready;
    msgpack_object obj;
    df_str op;
    if (len > MAX_MESSAGE)
        return "too_large";
    if (df_msgpack_check(body, len, NULL) != 0)
        return "bad_request";
    if (!ready) {
        msgpack_zone_init(&zone, 8192);
        ready = true;
    }
    msgpack_zone_clear(&zone);
    if (df_msgpack_unpack(body, len, &zone, &obj, NULL) != 0 || obj.type != MSGPACK_OBJECT_MAP ||
        !df_get_str(&obj, "op", &op, NULL))
        return "bad_request";
    for (int i = 0; known_ops[i]; i++)
        if (df_str_eq(op, known_ops[i]))
            return df_str_eq(op, "ping") || df_str_eq(op, "stats") ? "ok" : NULL;
    return "unknown_op";
}

/* ---- packing ---- */

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void sb_start(msgpack_sbuffer *sb, msgpack_packer *pk)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
}

static void sb_raw(msgpack_sbuffer *sb, const void *bytes, size_t len)
{
    msgpack_sbuffer_write(sb, bytes, len);
}

/* ---- setup: a deal the hostile traffic must leave alone ---- */

static int64_t keep_seqs[3];

static void setup(void)
{
    call_text("ok",
              "{op: append, events: ["
              "{id: keep-1, type: stage, deal: keep, stage: lead, at: %lld, amount: 100},"
              "{id: keep-2, type: activity, deal: keep, kind: call, at: %lld},"
              "{id: keep-3, type: stage, deal: keep, stage: qualified, at: %lld}]}",
              T0, T0 + 1, T0 + DAY);
    call_text("ok",
              "{op: append, events: [{id: rot-def, type: pipeline, pipeline: rot, stages: ["
              "{name: fresh, probability: 50, rot_days: 3}, {name: done, probability: 100, "
              "outcome: won}]}, {id: rot-1, type: stage, deal: rotting, pipeline: rot, stage: "
              "fresh, at: %lld}]}",
              T0);
    const msgpack_object *r = call_text("ok", "{op: history, deal: keep}");
    for (uint32_t i = 0; i < 3; i++)
        keep_seqs[i] = it_int(it_at(it_get(r, "events"), i), "seq");
    CHECK(keep_seqs[0] > 0 && keep_seqs[2] > keep_seqs[1]);
}

/* The deal `keep` still holds exactly its three events. */
static void check_keep(void)
{
    const msgpack_object *r = call_text("ok", "{op: history, deal: keep}");
    const msgpack_object *events = it_get(r, "events");
    CHECK_INT(it_len(events), 3);
    static const char *const ids[] = {"keep-1", "keep-2", "keep-3"};
    for (uint32_t i = 0; i < 3; i++) {
        CHECK_STR(it_str(it_at(events, i), "id"), ids[i]);
        CHECK_INT(it_int(it_at(events, i), "seq"), keep_seqs[i]);
    }
    r = call_text("ok", "{op: deal, deal: keep, now: %lld}", T0 + 2 * DAY);
    CHECK_STR(it_str(it_get(r, "deal"), "stage"), "qualified");
    CHECK_INT(it_int(it_get(r, "deal"), "version"), 3);
    CHECK_INT(it_int(it_get(r, "deal"), "amount"), 100);
}

/* ---- fixed hostile requests ---- */

/* {op: ping, x: <depth nested containers>} */
static int submit_nested(int levels, bool maps)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "ping");
    pk_str(&pk, "x");
    for (int i = 1; i < levels; i++) {
        if (maps) {
            msgpack_pack_map(&pk, 1);
            pk_str(&pk, "k");
        } else {
            msgpack_pack_array(&pk, 1);
        }
    }
    msgpack_pack_nil(&pk);
    /* the request map is level 1 */
    return submit_sb(maps ? "nested maps" : "nested arrays", levels <= 16 ? "ok" : "bad_request",
                     &sb);
}

/* A ping map of n pairs in all: `op` where given, then distinct 2-byte keys. */
static void submit_wide(const char *what, uint32_t n, int op_at, bool duplicate)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        if ((int)i == op_at) {
            pk_str(&pk, "op");
            pk_str(&pk, "ping");
            continue;
        }
        char key[2] = {(char)(0x80 | (i >> 8)), (char)(i & 0xff)};
        if (duplicate && i == n - 1)
            key[0] = (char)0x80, key[1] = 1;
        msgpack_pack_str_with_body(&pk, key, 2);
        msgpack_pack_nil(&pk);
    }
    submit_sb(what, op_at >= 0 ? "ok" : "bad_request", &sb);
}

/* An append whose single event carries n - 4 extra keys besides its own four. */
static void submit_wide_event(uint32_t n, bool duplicate)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "append");
    pk_str(&pk, "events");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, n);
    pk_str(&pk, "id");
    pk_str(&pk, duplicate ? "wide-dup" : "wide-1");
    pk_str(&pk, "type");
    pk_str(&pk, "activity");
    pk_str(&pk, "deal");
    pk_str(&pk, "wide");
    pk_str(&pk, "kind");
    pk_str(&pk, "note");
    for (uint32_t i = 4; i < n; i++) {
        char key[2] = {(char)(0x80 | (i >> 8)), (char)(i & 0xff)};
        if (duplicate && i == n - 1)
            key[0] = (char)0x80, key[1] = 4;
        msgpack_pack_str_with_body(&pk, key, 2);
        msgpack_pack_true(&pk);
    }
    int idx =
        submit_sb(duplicate ? "event of 60000 keys, one twice" : "event of 60000 keys", "ok", &sb);
    if (idx >= 0)
        pend[idx].events = 1;
}

/* {op: ping, pad: <str>} of exactly `size` bytes. */
static void submit_sized(const char *what, size_t size, const char *expect)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "ping");
    pk_str(&pk, "pad");
    size_t pad = size - sb.size - 5; /* str32 header */
    char *bytes = calloc(1, pad);
    msgpack_pack_str(&pk, (uint32_t)pad);
    msgpack_pack_str_body(&pk, bytes, pad);
    free(bytes);
    CHECK(sb.size == size);
    submit_sb(what, expect, &sb);
}

/* {op: ping, x: [nil * n]}: 5 + n objects. */
static void submit_objects(size_t n)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "ping");
    pk_str(&pk, "x");
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_nil(&pk);
    submit_sb(5 + n <= 200000 ? "200000 objects" : "200001 objects",
              5 + n <= 200000 ? "ok" : "bad_request", &sb);
}

/* {op: ping, x: <raw bytes>} and the raw bytes alone. */
static void submit_raw_value(const char *what, const void *bytes, size_t len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "ping");
    pk_str(&pk, "x");
    sb_raw(&sb, bytes, len);
    submit_sb(what, "bad_request", &sb);
    submit(what, "bad_request", 0, bytes, len);
}

/* events: an array of n copies of one raw element. */
static void submit_events_of(const char *what, uint32_t n, const char *element, size_t len,
                             const char *expect)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "append");
    pk_str(&pk, "events");
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        sb_raw(&sb, element, len);
    submit_sb(what, expect, &sb);
}

static void test_fixed_requests(void)
{
    int first = npend;
    submit("empty body", "bad_request", 0, "", 0);
    submit("empty body, extra frames", "bad_request", 3, "", 0);
    submit_text("metrics", "ok", "{op: metrics}");
    submit_text("unknown op", "unknown_op", "{op: 'drop tables'}");
    submit_text("op with a NUL", "unknown_op", "{op: 'ping\\0'}");
    submit_text("op not a str", "bad_request", "{op: 7}");
    submit_text("op nil", "bad_request", "{op: nil}");
    submit_text("no op", "bad_request", "{deal: keep}");
    submit_text("not a map", "bad_request", "[ping]");
    submit_text("int key", "bad_request", "{op: ping, 1: 2}");
    submit("op as bin", "bad_request", 0, "\x81\xa2op\xc4\x04ping", 10);
    submit("trailing byte", "bad_request", 0, "\x81\xa2op\xa4ping\x00", 10);

    for (int levels = 14; levels <= 18; levels++) {
        submit_nested(levels, false);
        submit_nested(levels, true);
    }
    submit_nested(200, false);
    static char deep[10000];
    memset(deep, 0x91, sizeof deep - 1);
    deep[sizeof deep - 1] = (char)0xc0;
    submit("10000 nested arrays", "bad_request", 0, deep, sizeof deep);

    submit_wide("map of 60000 keys", 60000, 0, false);
    submit_wide("map of 60000 keys, op last", 60000, 59999, false);
    submit_wide("map of 60000 keys, no op", 60000, -1, false);
    submit_wide_event(60000, false);
    submit_wide_event(60000, true);
    submit_objects(199995);
    submit_objects(199996);
    submit_sized("body of exactly --max-message", MAX_MESSAGE, "ok");
    submit_sized("body one byte over", MAX_MESSAGE + 1, "too_large");
    submit_sized("body twice over", 2 * MAX_MESSAGE, "too_large");

    submit_raw_value("array of 4 billion", "\xdd\xff\xff\xff\xff\xc0", 6);
    submit_raw_value("map of 4 billion", "\xdf\xff\xff\xff\xff\xa1k\xc0", 8);
    submit_raw_value("str32 of 4 GiB", "\xdb\xff\xff\xff\xffping", 9);
    submit_raw_value("bin32 of 4 GiB", "\xc6\xff\xff\xff\xff\x01", 6);
    submit_raw_value("ext32 of 4 GiB", "\xc9\xff\xff\xff\xff\x01\x02", 7);
    submit_raw_value("array16 of 65535", "\xdc\xff\xff\xc0\xc0", 5);
    submit_raw_value("map16 of 65535", "\xde\xff\xff\xa1k\xc0", 6);
    submit_raw_value("reserved byte", "\xc1", 1);
    submit_raw_value("truncated float", "\xcb\x00\x00", 3);
    submit("str32 op of 4 GiB", "bad_request", 0, "\x81\xa2op\xdb\xff\xff\xff\xffping", 13);
    submit("map of 4 billion pairs", "bad_request", 0, "\xdf\xff\xff\xff\xff\xa2op\xa4ping", 13);

    /* append: the events array itself */
    submit_text("events absent", "bad_request", "{op: append}");
    submit_text("events nil", "bad_request", "{op: append, events: nil}");
    submit_text("events empty", "bad_request", "{op: append, events: []}");
    submit_text("events a map", "bad_request", "{op: append, events: {id: x}}");
    submit_events_of("10001 events", 10001, "\xc0", 1, "bad_request");
    submit_events_of("events not maps", 3, "\x07", 1, "bad_request");
    submit_text("events of strings", "bad_request", "{op: append, events: [a, b]}");
    submit_text("an event and an int", "bad_request",
                "{op: append, events: [{id: mix-1, type: activity, deal: mix, kind: x}, 5]}");
    int idx = submit_text("append with bad events", "ok",
                          "{op: append, events: [{id: bad-1, type: stage, deal: fx, stage: "
                          "nowhere}, {id: bad-2, type: stage, deal: fx, stage: lead, seq: 1}, "
                          "{id: bad-3, type: pipeline, pipeline: p, stages: [], expect: 0}, "
                          "{id: '', type: activity, deal: fx, kind: x}, {id: bad-5, type: "
                          "activity, deal: fx, kind: x, amount: nil, at: 1.5}]}");
    if (idx >= 0)
        pend[idx].events = 5;
    collect(first);
}

/* ---- requests with keys of the wrong type or range ---- */

enum key_kind { K_DEAL, K_NAME, K_INT, K_UINT, K_LIMIT, K_BOOL, K_STATUS, K_CURSOR, K_IDLE };

typedef struct key_spec {
    const char *op;
    const char *key;
    int kind;
} key_spec;

static const key_spec keys[] = {
    {"deal", "deal", K_DEAL},      {"deal", "now", K_INT},        {"deal", "as_of", K_INT},
    {"history", "deal", K_DEAL},   {"history", "after", K_UINT},  {"history", "limit", K_LIMIT},
    {"list", "pipeline", K_NAME},  {"list", "stage", K_NAME},     {"list", "owner", K_NAME},
    {"list", "status", K_STATUS},  {"list", "stale", K_BOOL},     {"list", "idle_days", K_IDLE},
    {"list", "now", K_INT},        {"list", "limit", K_LIMIT},    {"list", "cursor", K_CURSOR},
    {"board", "pipeline", K_NAME}, {"board", "now", K_INT},       {"replay", "after", K_UINT},
    {"replay", "limit", K_LIMIT},  {"rejected", "after", K_UINT}, {"rejected", "limit", K_LIMIT},
};

enum value_kind {
    V_TRUE,
    V_NEG,
    V_MIN,
    V_UMAX,
    V_FLOAT,
    V_NAN,
    V_STR,
    V_BIN,
    V_EXT,
    V_ARRAY,
    V_MAP,
    V_ZERO,
    V_10001,
    V_2P32,
    V_EMPTY,
    V_129,
    V_IDLE_OVER,
    V_COUNT
};

static bool wrong_for(int kind, int value)
{
    switch (kind) {
    case K_DEAL:
        return value != V_STR;
    case K_NAME: /* any str filters, the empty one filters nothing */
        return value != V_STR && value != V_EMPTY && value != V_129;
    case K_INT:
        return value != V_NEG && value != V_MIN && value != V_ZERO && value != V_10001 &&
               value != V_2P32 && value != V_IDLE_OVER;
    case K_UINT:
        return value != V_UMAX && value != V_ZERO && value != V_10001 && value != V_2P32 &&
               value != V_IDLE_OVER;
    case K_LIMIT: /* none of the values is in 1..10000 */
        return true;
    case K_BOOL:
        return value != V_TRUE;
    case K_STATUS:
        return value != V_EMPTY;
    case K_CURSOR:
        return value != V_EMPTY;
    case K_IDLE:
        return value != V_ZERO && value != V_10001;
    default:
        return false;
    }
}

static void pack_value(msgpack_packer *pk, int value)
{
    static char long_str[129];
    memset(long_str, 'a', sizeof long_str);
    switch (value) {
    case V_TRUE:
        msgpack_pack_true(pk);
        break;
    case V_NEG:
        msgpack_pack_int64(pk, -1);
        break;
    case V_MIN:
        msgpack_pack_int64(pk, INT64_MIN);
        break;
    case V_UMAX:
        msgpack_pack_uint64(pk, UINT64_MAX);
        break;
    case V_FLOAT:
        msgpack_pack_double(pk, 1.5);
        break;
    case V_NAN:
        msgpack_pack_double(pk, NAN);
        break;
    case V_STR:
        pk_str(pk, "x");
        break;
    case V_BIN:
        msgpack_pack_bin_with_body(pk, "keep", 4);
        break;
    case V_EXT:
        msgpack_pack_ext_with_body(pk, "keep", 4, 5);
        break;
    case V_ARRAY:
        msgpack_pack_array(pk, 1);
        pk_str(pk, "keep");
        break;
    case V_MAP:
        msgpack_pack_map(pk, 1);
        pk_str(pk, "keep");
        pk_str(pk, "keep");
        break;
    case V_ZERO:
        msgpack_pack_uint64(pk, 0);
        break;
    case V_10001:
        msgpack_pack_uint64(pk, 10001);
        break;
    case V_2P32:
        msgpack_pack_uint64(pk, 1ULL << 32);
        break;
    case V_EMPTY:
        msgpack_pack_str_with_body(pk, "", 0);
        break;
    case V_129:
        msgpack_pack_str_with_body(pk, long_str, sizeof long_str);
        break;
    default:
        msgpack_pack_uint64(pk, 1000001);
        break;
    }
}

static void submit_wrong_type(void)
{
    const key_spec *k;
    int value;
    do {
        k = &keys[below(sizeof keys / sizeof keys[0])];
        value = (int)below(V_COUNT);
    } while (!wrong_for(k->kind, value));
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    bool needs_deal = strcmp(k->key, "deal") != 0 &&
                      (strcmp(k->op, "deal") == 0 || strcmp(k->op, "history") == 0);
    msgpack_pack_map(&pk, needs_deal ? 3 : 2);
    pk_str(&pk, "op");
    pk_str(&pk, k->op);
    if (needs_deal) {
        pk_str(&pk, "deal");
        pk_str(&pk, "keep");
    }
    pk_str(&pk, k->key);
    pack_value(&pk, value);
    submit_sb(k->key, "bad_request", &sb);
}

/* ---- valid requests and their mutations ---- */

static void template_text(char *out, size_t cap, int n)
{
    int id = npend;
    switch (n % 16) {
    case 0:
        snprintf(out, cap, "{op: ping}");
        break;
    case 1:
        snprintf(out, cap, "{op: stats}");
        break;
    case 2:
        snprintf(out, cap, "{op: deal, deal: keep, now: %lld}", T0);
        break;
    case 3:
        snprintf(out, cap, "{op: deal, deal: keep, as_of: %lld}", T0 + 1);
        break;
    case 4:
        snprintf(out, cap, "{op: history, deal: keep, after: 1, limit: 5}");
        break;
    case 5:
        snprintf(out, cap,
                 "{op: list, pipeline: default, stage: lead, owner: ana, status: open, stale: "
                 "false, idle_days: 3, now: %lld, limit: 10}",
                 T0);
        break;
    case 6:
        snprintf(out, cap, "{op: list, cursor: '6b656570', limit: 2}");
        break;
    case 7:
        snprintf(out, cap, "{op: board, pipeline: rot, now: %lld}", T0);
        break;
    case 8:
        snprintf(out, cap, "{op: replay, after: 0, limit: 3}");
        break;
    case 9:
        snprintf(out, cap, "{op: rejected, after: 0, limit: 3}");
        break;
    case 10:
        snprintf(out, cap,
                 "{op: append, events: [{id: fz-%d-s, type: stage, deal: fz-%d, stage: lead, at: "
                 "%lld, amount: 5, owner: ana}]}",
                 id, id % 97, T0 + id);
        break;
    case 11:
        snprintf(out, cap,
                 "{op: append, events: [{id: fz-%d-a, type: activity, deal: fz-%d, kind: call, "
                 "note: hi}, {id: fz-%d-u, type: update, deal: fz-%d, amount: 2.5, name: n, "
                 "product: p, close_date: %lld, expect: 9}]}",
                 id, id % 97, id, id % 97, T0);
        break;
    case 12:
        snprintf(out, cap,
                 "{op: append, events: [{id: fz-%d-p, type: pipeline, pipeline: fzp-%d, stages: "
                 "[{name: a, probability: 5, rot_days: 1}, {name: b, probability: 100, outcome: "
                 "won}]}]}",
                 id, id % 5);
        break;
    case 13:
        snprintf(out, cap,
                 "{op: append, events: [{id: fz-%d-m, type: stage, deal: fz-%d, pipeline: fzp-%d, "
                 "stage: b, reason: r, amount: -3, owner: nil}]}",
                 id, id % 97, id % 5);
        break;
    case 14:
        snprintf(out, cap, "{op: list, pipeline: rot, stage: fresh, limit: 1, now: %lld}", T0);
        break;
    default:
        snprintf(out, cap, "{op: history, deal: fz-%d, limit: 2}", id % 97);
        break;
    }
}

static void mutate(msgpack_sbuffer *sb, size_t from)
{
    int changes = 1 + (int)below(4);
    for (int c = 0; c < changes && sb->size > from; c++) {
        size_t at = from + below((uint32_t)(sb->size - from));
        switch (below(7)) {
        case 0: /* flip a bit */
            sb->data[at] ^= (char)(1 << below(8));
            break;
        case 1: /* any byte */
            sb->data[at] = (char)below(256);
            break;
        case 2: /* cut short */
            sb->size = at;
            break;
        case 3: { /* insert a byte */
            char byte = (char)below(256);
            msgpack_sbuffer_write(sb, "", 1);
            memmove(sb->data + at + 1, sb->data + at, sb->size - at - 1);
            sb->data[at] = byte;
            break;
        }
        case 4: /* drop a byte */
            memmove(sb->data + at, sb->data + at + 1, sb->size - at - 1);
            sb->size--;
            break;
        case 5: { /* a header that claims far more than follows */
            static const char claims[][5] = {{(char)0xdd, -1, -1, -1, -1},
                                             {(char)0xdf, -1, -1, -1, -1},
                                             {(char)0xdb, -1, -1, -1, -1},
                                             {(char)0xc6, 0x7f, -1, -1, -1}};
            const char *claim = claims[below(4)];
            size_t n = sb->size - at < 5 ? sb->size - at : 5;
            memcpy(sb->data + at, claim, n);
            break;
        }
        default: /* a NUL byte in whatever string is there */
            sb->data[at] = 0;
            break;
        }
    }
}

static char *find_bytes(char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

/* A cursor: even-length hex of up to 128 bytes, sometimes broken. */
static void random_cursor(char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = 2 * (1 + below(130));
    for (size_t i = 0; i < len; i++)
        out[i] = hex[below(16)];
    out[len] = '\0';
    switch (below(6)) {
    case 0:
        out[len - 1] = '\0'; /* odd */
        break;
    case 1:
        out[below((uint32_t)len)] = 'g';
        break;
    case 2:
        out[below((uint32_t)len)] = 'A';
        break;
    default:
        break;
    }
}

static bool valid_cursor(const char *c)
{
    size_t len = strlen(c);
    if (len == 0 || len % 2 || len > 256)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f')))
            return false;
    return true;
}

static void submit_random_valid(void)
{
    char text[600];
    char cursor[300];
    switch (below(6)) {
    case 0:
        random_cursor(cursor);
        snprintf(text, sizeof text, "{op: list, cursor: '%s', limit: %u}", cursor,
                 1 + below(10000));
        submit_text("list with a random cursor", valid_cursor(cursor) ? "ok" : "bad_request", text);
        break;
    case 1:
        snprintf(text, sizeof text, "{op: replay, after: %" PRIu64 ", limit: %u}",
                 below(2) ? rnd() : below(100), 1 + below(10000));
        submit_text("replay", "ok", text);
        break;
    case 2:
        snprintf(text, sizeof text, "{op: rejected, after: %" PRIu64 ", limit: %u}", rnd(),
                 1 + below(10000));
        submit_text("rejected", "ok", text);
        break;
    case 3:
        snprintf(text, sizeof text, "{op: history, deal: keep, after: %u, limit: %u}", below(20),
                 1 + below(10000));
        submit_text("history", "ok", text);
        break;
    case 4:
        snprintf(text, sizeof text, "{op: deal, deal: 'nobody-%u\\0'}", below(1000));
        submit_text("deal with a NUL", "not_found", text);
        break;
    default:
        snprintf(text, sizeof text, "{op: list, status: %s, stale: %s, idle_days: %u, now: %lld}",
                 below(2) ? "won" : "lost", below(2) ? "true" : "false", below(1000001),
                 (long long)(T0 + (int64_t)below(1000) * DAY));
        submit_text("list with filters", "ok", text);
        break;
    }
}

/* One random request; `extra` envelope frames. */
static void submit_random(void)
{
    int extra = below(8) == 0 ? 1 + (int)below(6) : 0;
    msgpack_sbuffer sb;
    char text[800];
    uint32_t kind = below(16);
    if (kind < 3) {
        /* random bytes, sometimes after a map header so that they reach deeper */
        msgpack_sbuffer_init(&sb);
        size_t len = below(8) == 0 ? below(3000) : below(40);
        if (below(3) == 0)
            msgpack_sbuffer_write(&sb, "\x82\xa2op\xa4ping", 8);
        for (size_t i = 0; i < len; i++) {
            char byte = (char)below(256);
            msgpack_sbuffer_write(&sb, &byte, 1);
        }
        submit("random bytes", expected_by_form(sb.data, sb.size), extra, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    } else if (kind < 8) {
        template_text(text, sizeof text, (int)below(16));
        CHECK(it_encode(&sb, "%s", text));
        /* appends: mutate the events only, so that the op stays an append */
        char *events = strstr(text, "events") ? find_bytes(sb.data, sb.size, "events") : NULL;
        mutate(&sb, events ? (size_t)(events - sb.data) + 6 : 0);
        int idx =
            submit("mutated request", expected_by_form(sb.data, sb.size), extra, sb.data, sb.size);
        uint32_t count;
        size_t header;
        const char *value;
        size_t value_len;
        /* a well-formed append answers one result per event */
        if (idx >= 0 && events && df_msgpack_check(sb.data, sb.size, NULL) == 0 &&
            df_msgpack_map_find(sb.data, sb.size, "events", &value, &value_len) &&
            df_msgpack_array_header(value, value_len, &count, &header))
            pend[idx].events = (int)count;
        msgpack_sbuffer_destroy(&sb);
    } else if (kind < 11) {
        submit_wrong_type();
    } else if (kind < 14) {
        submit_random_valid();
    } else {
        template_text(text, sizeof text, (int)below(16));
        CHECK(it_encode(&sb, "%s", text));
        int idx = submit("valid request", NULL, extra, sb.data, sb.size);
        if (idx >= 0 && strstr(text, "append"))
            pend[idx].expect = "ok";
        else if (idx >= 0)
            pend[idx].expect = expected_by_form(sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_random_requests(void)
{
    int64_t deadline = mono_ms() + FUZZ_BUDGET_MS;
    int sent = 0;
    while (sent < FUZZ_REQUESTS && mono_ms() < deadline && alive()) {
        int first = npend;
        for (int i = 0; i < WINDOW && sent < FUZZ_REQUESTS; i++, sent++)
            submit_random();
        collect(first);
    }
    printf("random requests: %d sent\n", sent);
}

/* ---- envelopes the daemon must not answer, other sockets, oversized frames ---- */

static bool wait_message(void *socket, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (mono_ms() < deadline && alive()) {
        zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) > 0)
            return true;
    }
    return false;
}

/* Receives one message; returns its frame count and copies its last frame. */
static int receive_last(void *socket, char *body, size_t cap, size_t *len)
{
    int frames = 0;
    int more = 1;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, socket, 0) < 0) {
            zmq_msg_close(&msg);
            return frames;
        }
        frames++;
        more = zmq_msg_more(&msg);
        if (!more) {
            *len = zmq_msg_size(&msg) < cap ? zmq_msg_size(&msg) : cap;
            memcpy(body, zmq_msg_data(&msg), *len);
        }
        zmq_msg_close(&msg);
    }
    return frames;
}

static void test_envelopes(void)
{
    msgpack_sbuffer ping;
    CHECK(it_encode(&ping, "{op: ping}"));
    char body[512];
    size_t len = 0;

    /* a body alone, without any frame of the client's */
    void *bare = it_socket(ZMQ_DEALER, D.api);
    CHECK(zmq_send(bare, "\xc1", 1, 0) == 1);
    CHECK(wait_message(bare, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(bare, body, sizeof body, &len), 1);
    CHECK_STR(it_err(it_unpack_keep(body, len)), "bad_request");

    /* more than 16 frames before the body: discarded unanswered; the ping
     * after it is answered, and nothing else comes */
    for (int i = 0; i < 20; i++)
        CHECK(zmq_send(bare, "f", 1, ZMQ_SNDMORE) == 1);
    CHECK(zmq_send(bare, ping.data, ping.size, 0) == (int)ping.size);
    CHECK(zmq_send(bare, "x", 1, ZMQ_SNDMORE) == 1);
    CHECK(zmq_send(bare, ping.data, ping.size, 0) == (int)ping.size);
    CHECK(wait_message(bare, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(bare, body, sizeof body, &len), 2);
    CHECK(it_ok(it_unpack_keep(body, len)));
    /* exactly 16 frames before the body are still an envelope */
    for (int i = 0; i < 15; i++)
        CHECK(zmq_send(bare, "g", 1, ZMQ_SNDMORE) == 1);
    CHECK(zmq_send(bare, ping.data, ping.size, 0) == (int)ping.size);
    CHECK(wait_message(bare, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(bare, body, sizeof body, &len), 16);
    CHECK(it_ok(it_unpack_keep(body, len)));
    zmq_pollitem_t item = {bare, 0, ZMQ_POLLIN, 0};
    CHECK(zmq_poll(&item, 1, 0) == 0);

    /* a frame of the envelope over the limit is refused like a body would be
     * (the reply still carries the envelope back) */
    char *wide = calloc(1, MAX_MESSAGE + 1);
    CHECK(zmq_send(bare, wide, MAX_MESSAGE + 1, ZMQ_SNDMORE) == MAX_MESSAGE + 1);
    CHECK(zmq_send(bare, ping.data, ping.size, 0) == (int)ping.size);
    CHECK(wait_message(bare, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(bare, body, sizeof body, &len), 2);
    CHECK_STR(it_err(it_unpack_keep(body, len)), "too_large");
    free(wide);
    it_close(bare);

    /* a REQ peer: garbage, then a request */
    void *req = it_socket(ZMQ_REQ, D.api);
    CHECK(zmq_send(req, "\xdd\xff\xff\xff\xff", 5, 0) == 5);
    CHECK(wait_message(req, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(req, body, sizeof body, &len), 1);
    CHECK_STR(it_err(it_unpack_keep(body, len)), "bad_request");
    CHECK(zmq_send(req, ping.data, ping.size, 0) == (int)ping.size);
    CHECK(wait_message(req, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(req, body, sizeof body, &len), 1);
    CHECK(it_ok(it_unpack_keep(body, len)));
    it_close(req);

    /* far over the limit: ZeroMQ drops that peer, nobody else notices */
    void *huge = it_socket(ZMQ_DEALER, D.api);
    char *big = calloc(1, FAR_OVER);
    big[0] = (char)0x81;
    CHECK(zmq_send(huge, big, FAR_OVER, 0) == FAR_OVER);
    free(big);
    for (int i = 0; i < 3; i++)
        CHECK(it_ok(call_text("ok", "{op: ping}")));
    it_close(huge);
    msgpack_sbuffer_destroy(&ping);
}

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

int main(void)
{
    /* freed memory must be reused for RssAnon to mean anything under ASan */
    const char *asan = getenv("ASAN_OPTIONS");
    if (!asan || !strstr(asan, "quarantine_size_mb")) {
        char options[512];
        snprintf(options, sizeof options, "%s%squarantine_size_mb=32", asan ? asan : "",
                 asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", options, 1);
    }
    static const char *const extra[] = {"--max-message", MAX_MESSAGE_STR, NULL};
    if (!it_start(&D, extra)) {
        it_cleanup(&D);
        it_done();
        return 1;
    }
    int64_t t = mono_ms();
    fuzz_socket = it_socket(ZMQ_DEALER, D.api);
    RUN(setup);
    long rss_before = rss_anon_kb();
    if (alive())
        RUN(test_fixed_requests);
    if (alive())
        RUN(test_random_requests);
    if (alive())
        RUN(test_envelopes);
    if (alive())
        RUN(test_largest_deal);
    if (alive())
        RUN(test_pipeline_limit);
    if (alive())
        RUN(check_keep);
    if (alive())
        RUN(test_ingest);
    if (alive()) {
        long rss_after = rss_anon_kb();
        printf("RssAnon: %ld KiB before, %ld KiB after\n", rss_before, rss_after);
        CHECK(rss_before > 0 && rss_after > 0 && rss_after - rss_before < RSS_GROWTH_KB);
        CHECK(it_ok(call_text("ok", "{op: ping}")));
        RUN(check_keep);
    }
    if (alive())
        RUN(test_sigterm_under_flood);
    if (alive())
        RUN(test_extremes);
    RUN(test_map_full);
    if (alive()) {
        RUN(check_keep);
        CHECK_INT(it_stop(&D), 0);
        CHECK(log_clean(&D));
    }
    printf("hostile: %lld ms\n", (long long)(mono_ms() - t));
    for (int i = 0; i < npend; i++)
        free(pend[i].reply);
    it_cleanup(&D);
    int harness_failures = it_done();
    CHECK_INT(harness_failures, 0);
    return df_check_summary();
}
