/* hostile.h: what the hostile-traffic programs share: the daemon they flood and whether
 * it died, requests in flight over one DEALER and the checks of their replies, and the
 * deal `keep` that no hostile traffic may touch. Header-only: the checks count per
 * program. */
#ifndef DF_IT_HOSTILE_H
#define DF_IT_HOSTILE_H

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

static DF_MAYBE_UNUSED uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static DF_MAYBE_UNUSED uint32_t below(uint32_t n)
{
    return n ? (uint32_t)(rnd() % n) : 0;
}

static DF_MAYBE_UNUSED int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the daemon process ---- */

/* False (once, with the log printed) when the daemon has died. */
static DF_MAYBE_UNUSED bool alive(void)
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
static DF_MAYBE_UNUSED long rss_anon_kb(void)
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

static DF_MAYBE_UNUSED bool log_clean(const it_daemon *d)
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

static DF_MAYBE_UNUSED bool known_code(const char *code)
{
    for (int i = 0; code && error_codes[i]; i++)
        if (strcmp(code, error_codes[i]) == 0)
            return true;
    return false;
}

/* Extra envelope frame k of request idx: 0..49 bytes that the reply must echo. */
static DF_MAYBE_UNUSED size_t extra_frame(int idx, int k, char *buf)
{
    size_t len = (size_t)((idx * 7 + k * 13) % 50);
    memset(buf, (idx + k) & 0xff, len);
    return len;
}

static DF_MAYBE_UNUSED bool send_frames(void *socket, int idx, const void *body, size_t len)
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
static DF_MAYBE_UNUSED int submit(const char *what, const char *expect, int extra, const void *body,
                                  size_t len)
{
    if (daemon_dead)
        return -1; /* reported once already */
    if (npend == MAX_PENDING) {
        CHECK(!"MAX_PENDING is large enough");
        return -1;
    }
    int idx = npend++;
    pend[idx] = (pending){.expect = expect, .extra = extra, .events = -1};
    snprintf(pend[idx].what, sizeof pend[idx].what, "%.99s", what);
    if (!send_frames(fuzz_socket, idx, body, len)) {
        CHECK(!"request sent");
        pend[idx].replies = 1; /* not waited for */
        return -1;
    }
    return idx;
}

static DF_MAYBE_UNUSED void check_reply(int idx, const char *body, size_t len)
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
static DF_MAYBE_UNUSED bool take_reply(void *socket)
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
static DF_MAYBE_UNUSED void collect(int first)
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

static DF_MAYBE_UNUSED int submit_sb(const char *what, const char *expect, msgpack_sbuffer *sb)
{
    int idx = submit(what, expect, 0, sb->data, sb->size);
    msgpack_sbuffer_destroy(sb);
    return idx;
}

static DF_MAYBE_UNUSED int submit_text(const char *what, const char *expect, const char *text)
{
    msgpack_sbuffer sb;
    CHECK(it_encode(&sb, "%s", text));
    return submit_sb(what, expect, &sb);
}

/* One request, waited for; its reply (kept by the harness) or NULL. */
static DF_MAYBE_UNUSED const msgpack_object *call(const char *what, const char *expect,
                                                  const void *body, size_t len)
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

static DF_MAYBE_UNUSED const msgpack_object *call_text(const char *expect, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static DF_MAYBE_UNUSED const msgpack_object *call_text(const char *expect, const char *fmt, ...)
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
static DF_MAYBE_UNUSED const char *expected_by_form(const char *body, size_t len)
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

static DF_MAYBE_UNUSED void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static DF_MAYBE_UNUSED void sb_start(msgpack_sbuffer *sb, msgpack_packer *pk)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
}

static DF_MAYBE_UNUSED void sb_raw(msgpack_sbuffer *sb, const void *bytes, size_t len)
{
    msgpack_sbuffer_write(sb, bytes, len);
}

/* ---- setup: a deal the hostile traffic must leave alone ---- */

static int64_t keep_seqs[3];

static DF_MAYBE_UNUSED void setup(void)
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
static DF_MAYBE_UNUSED void check_keep(void)
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

/* ---- random damage, for the api and the ingest frames alike ---- */

/* Damages sb past `from`: bits flipped, bytes changed, inserted or dropped, cut short,
 * headers that claim more than follows. */
static DF_MAYBE_UNUSED void mutate(msgpack_sbuffer *sb, size_t from)
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

/* ---- the program around it ---- */

static long rss_before;

/* The daemon, with a --max-message small enough that oversized frames are cheap, and the deal
 * `keep`; RssAnon is measured once that is done. */
static DF_MAYBE_UNUSED bool hostile_start(void)
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
        CHECK(!"dealflowd started");
        return false;
    }
    fuzz_socket = it_socket(ZMQ_DEALER, D.api);
    setup();
    rss_before = rss_anon_kb();
    return true;
}

/* The deal `keep` is intact, the daemon exits 0 on SIGTERM and its log holds no sanitizer
 * report. */
static DF_MAYBE_UNUSED void hostile_stop(void)
{
    if (alive()) {
        check_keep();
        CHECK_INT(it_stop(&D), 0);
        CHECK(log_clean(&D));
    }
    for (int i = 0; i < npend; i++)
        free(pend[i].reply);
    it_cleanup(&D);
    int harness_failures = it_done();
    CHECK_INT(harness_failures, 0);
}

/* The daemon's anonymous memory grew by less than RSS_GROWTH_KB under the traffic so far,
 * and it still answers. */
static DF_MAYBE_UNUSED void test_memory_bounded(void)
{
    long rss_after = rss_anon_kb();
    printf("RssAnon: %ld KiB before, %ld KiB after\n", rss_before, rss_after);
    CHECK(rss_before > 0 && rss_after > 0 && rss_after - rss_before < RSS_GROWTH_KB);
    CHECK(it_ok(call_text("ok", "{op: ping}")));
}

#endif
