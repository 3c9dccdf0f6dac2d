/* api.c: the ROUTER socket. A request is the last frame of a message; the
 * frames before it are the routing envelope, sent back unchanged with the
 * reply. Appends wait in a batch of their own and are answered after commit. */
#include "api.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "ingest.h"
#include "query.h"
#include "reply.h"

/* Envelopes of REQ and DEALER peers are one to three frames; more is not a
 * request this daemon can answer. */
#define ENVELOPE_MAX 16

/* An append waiting for its batch to commit. */
typedef struct append_request {
    zmq_msg_t envelope[ENVELOPE_MAX];
    int frames;
    uint64_t received_ns; /* uv_hrtime, for `stats` append_latency */
} append_request;

/* Reads of the store's indexes wait, in arrival order, until the writer has
 * flushed everything committed when they arrived. */
#define WAITING_MAX       4096
#define WAITING_BYTES_MAX (64u << 20)

/* Routing envelopes are a few short frames (ZeroMQ routing ids are at most
 * 255 bytes); a request that puts more before its body is refused. */
#define ENVELOPE_BYTES_MAX 4096

typedef struct df_waiting_read {
    zmq_msg_t frames[ENVELOPE_MAX + 1];
    int count;
    uint64_t need_seq;
    struct df_waiting_read *next;
} waiting_read;

static size_t frame_bytes(zmq_msg_t *frames, int count)
{
    size_t n = 0;
    for (int i = 0; i < count; i++)
        n += zmq_msg_size(&frames[i]);
    return n;
}

/* Reply bytes given to ZeroMQ and not yet written out to their peers, over
 * every peer: each peer's queue is bounded (its ZMQ_SNDHWM times the reply
 * byte cap), and this bounds them together. Past UNSENT_BYTES_MAX (or two
 * replies of the cap, when --max-message makes that more) a reply larger
 * than UNSENT_SMALL is answered `unavailable` instead, until peers read;
 * small replies always go, so every request is still answered.
 * ZeroMQ frees a body on its own thread, hence the atomic. */
#define UNSENT_BYTES_MAX (256u << 20)
#define UNSENT_SMALL     4096

/* What ZeroMQ hands back when it is done with a reply's body. */
typedef struct unsent_body {
    atomic_size_t *unsent;
    size_t size;
} unsent_body;

static void free_body(void *data, void *hint)
{
    unsent_body *u = hint;
    atomic_fetch_sub(u->unsent, u->size);
    free(u);
    free(data);
}

static void pack_error(msgpack_sbuffer *sb, int code, const char *message)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    df_reply_error(&pk, code, message);
}

/* Sends the envelope frames and the body (released to ZeroMQ). The caller
 * closes the envelope frames afterwards, sent or not. */
static void send_reply(df_daemon *d, zmq_msg_t *envelope, int frames, msgpack_sbuffer *body)
{
    zmq_msg_t msg;
    size_t unsent_max = 2 * df_reply_bytes_max(d->opt.max_message);
    if (unsent_max < UNSENT_BYTES_MAX)
        unsent_max = UNSENT_BYTES_MAX;
    if (body->size > UNSENT_SMALL &&
        atomic_load(&d->unsent_reply_bytes) + body->size > unsent_max) {
        msgpack_sbuffer_destroy(body);
        pack_error(body, DF_EUNAVAILABLE,
                   "too many replies wait for their peers to read them; retry");
    }
    size_t size = body->size;
    void *data = msgpack_sbuffer_release(body);
    /* the body is made a message before any frame goes, so that a failure
     * never leaves an envelope waiting for another reply's body */
    unsent_body *u = malloc(sizeof(*u));
    if (!u) {
        free(data);
        return;
    }
    *u = (unsent_body){&d->unsent_reply_bytes, size};
    atomic_fetch_add(u->unsent, size);
    if (zmq_msg_init_data(&msg, data, size, free_body, u) != 0) {
        atomic_fetch_sub(u->unsent, size);
        free(u);
        free(data);
        return;
    }
    for (int i = 0; i < frames; i++) {
        /* the peer left (ZMQ_ROUTER_MANDATORY says so): nobody to answer */
        if (zmq_msg_send(&envelope[i], d->api, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
    }
    if (zmq_msg_send(&msg, d->api, ZMQ_DONTWAIT) < 0)
        zmq_msg_close(&msg); /* frees data */
}

static void reply_error(df_daemon *d, zmq_msg_t *envelope, int frames, int code,
                        const char *message)
{
    msgpack_sbuffer sb;
    pack_error(&sb, code, message);
    send_reply(d, envelope, frames, &sb);
}

/* Queues the events of an append, or a redact as one item, into the appends
 * batch, each with the sender's name (by.len 0 without keys); a `pipeline`
 * event of a sender without the admin role is refused on its own. Returns
 * 0, or an error code with a message for a request that cannot be taken. */
static int take_append(df_daemon *d, const char *body, size_t len, bool redact, zmq_msg_t *envelope,
                       int frames, df_str by, unsigned roles, df_error *err)
{
    const char *events = body;
    size_t events_len = len, header = 0;
    uint32_t count = 1;
    if (!redact && (!df_msgpack_map_find(body, len, "events", &events, &events_len) ||
                    !df_msgpack_array_header(events, events_len, &count, &header)))
        return df_fail(err, DF_EBAD_REQUEST, "`events` must be an array of event maps");
    if (count == 0 || count > DF_MAX_BATCH)
        return df_fail(err, DF_EBAD_REQUEST, "`events` must hold 1..%d events, not %u",
                       DF_MAX_BATCH, count);
    const char *p = events + header, *end = events + events_len;
    for (uint32_t i = 0; i < count; i++) {
        if (!df_msgpack_is_map(p, (size_t)(end - p)))
            return df_fail(err, DF_EBAD_REQUEST, "events[%u] must be an event map", i);
        p += df_msgpack_skip(p, (size_t)(end - p));
    }
    append_request *req = malloc(sizeof(*req));
    if (!req)
        return df_fail(err, DF_EUNAVAILABLE, "out of memory");
    int64_t recv = df_now_ms();
    df_batch *b = d->appends;
    size_t first = b->count;
    p = events + header;
    for (uint32_t i = 0; i < count; i++) {
        size_t n = df_msgpack_skip(p, (size_t)(end - p));
        df_item *it = df_batch_add(b, p, n, recv, req);
        if (!it || !df_ingest_attribute(b, it, by, roles)) {
            b->count = first; /* none of the request is taken */
            free(req);
            return df_fail(err, DF_EUNAVAILABLE, "out of memory");
        }
        it->redaction = redact;
        p += n;
    }
    for (int i = 0; i < frames; i++) {
        zmq_msg_init(&req->envelope[i]);
        zmq_msg_move(&req->envelope[i], &envelope[i]);
    }
    req->frames = frames;
    req->received_ns = uv_hrtime();
    d->appends_seen_ms = recv;
    b->request_bytes += sizeof(*req) + frame_bytes(req->envelope, frames);
    return 0;
}

/* Keeps a read until the flush it needs; false when too many wait. */
static bool wait_for_flush(df_daemon *d, zmq_msg_t *frames, int count, uint64_t need_seq)
{
    df_waiting_reads *waiting = &d->waiting;
    waiting_read *w;
    size_t bytes = sizeof(*w) + frame_bytes(frames, count);
    if (waiting->count >= WAITING_MAX || waiting->bytes + bytes > WAITING_BYTES_MAX ||
        !(w = malloc(sizeof(*w))))
        return false;
    waiting->bytes += bytes;
    for (int i = 0; i < count; i++) {
        zmq_msg_init(&w->frames[i]);
        zmq_msg_move(&w->frames[i], &frames[i]);
    }
    w->count = count;
    w->need_seq = need_seq;
    w->next = NULL;
    if (waiting->last)
        waiting->last->next = w;
    else
        waiting->first = w;
    waiting->last = w;
    waiting->count++;
    df_writer_request_flush(d->writer);
    return true;
}

/* Answers one request; a read of the store's indexes may instead wait for a
 * flush (when may_wait), taking the frames with it. */
static void handle(df_daemon *d, zmq_msg_t *frames, int count, bool may_wait)
{
    zmq_msg_t *body_msg = &frames[count - 1];
    const char *body = zmq_msg_data(body_msg);
    size_t len = zmq_msg_size(body_msg);
    int envelope = count - 1;
    df_parsed_request req;
    df_error err;

    /* a request over the size limit is refused as such (df_request_read) first */
    size_t envelope_bytes = frame_bytes(frames, envelope);
    if (len <= d->opt.max_message && envelope_bytes > ENVELOPE_BYTES_MAX) {
        df_fail(&err, DF_ETOO_LARGE,
                "the frames before the request take %zu bytes, over the %d-byte limit",
                envelope_bytes, ENVELOPE_BYTES_MAX);
        goto refuse;
    }
    if (df_request_read(d, body, len, &req, &err) != 0)
        goto refuse;
    df_str by = {NULL, 0};
    unsigned roles = DF_ROLES_ANY;
    if (d->auth) {
        roles = df_auth_roles(d->auth, body_msg, &by);
        if (!roles) {
            df_fail(&err, DF_EFORBIDDEN, "this key is not a client of the daemon (any more)");
            goto refuse;
        }
        if (!(roles & req.roles)) {
            char shown[48];
            df_fail(&err, DF_EFORBIDDEN, "the role of `%.*s` may not `%s`", (int)by.len, by.ptr,
                    df_printable(req.op.ptr, req.op.len, shown, sizeof(shown)));
            goto refuse;
        }
    }
    if (!req.read) {
        if (df_writer_store_full(d->writer)) {
            df_fail(&err, DF_EUNAVAILABLE,
                    "the store is full (disk or map): nothing was recorded; retry when there "
                    "is room");
            goto refuse;
        }
        if (take_append(d, body, len, req.redact, frames, envelope, by, roles, &err) != 0)
            goto refuse;
        return;
    }
    if (may_wait && df_request_needs_flush(&req)) {
        df_writer_counters c = df_writer_counters_get(d->writer);
        if (c.flushed_seq < c.committed_seq) {
            if (c.flush_failing) {
                df_fail(&err, DF_EUNAVAILABLE,
                        "the store cannot take the derived state now (see the daemon's log)");
                goto refuse;
            }
            if (wait_for_flush(d, frames, count, c.committed_seq))
                return;
            df_fail(&err, DF_EUNAVAILABLE, "too many reads are waiting for the store; retry");
            goto refuse;
        }
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    df_request_answer(d, &req, &pk);
    send_reply(d, frames, envelope, &sb);
    return;
refuse:
    reply_error(d, frames, envelope, err.code, err.message);
}

/* Receives one whole message into frames; past ENVELOPE_MAX + 1 frames the
 * last slot is reused and *overflow set. Returns the frame count, 0 when
 * nothing is waiting. */
static int receive_message(df_daemon *d, zmq_msg_t *frames, bool *overflow)
{
    int count = 0;
    *overflow = false;
    do {
        zmq_msg_t *msg = &frames[count <= ENVELOPE_MAX ? count : ENVELOPE_MAX];
        if (count > ENVELOPE_MAX) {
            zmq_msg_close(msg);
            *overflow = true;
        }
        zmq_msg_init(msg);
        /* the parts of a message arrive together: only the first can be missing */
        if (zmq_msg_recv(msg, d->api, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(msg);
            if (count > 0)
                df_log("api: a message ended early: %s", zmq_strerror(errno));
            return count > ENVELOPE_MAX ? ENVELOPE_MAX : count;
        }
        if (count <= ENVELOPE_MAX)
            count++;
    } while (zmq_msg_more(&frames[count - 1]));
    return count;
}

int df_api_drain(df_daemon *d, int budget)
{
    zmq_msg_t frames[ENVELOPE_MAX + 1];
    int taken = 0;
    bool overflow;
    while (taken < budget && df_appends_have_room(d)) {
        int count = receive_message(d, frames, &overflow);
        if (count == 0)
            break;
        taken++;
        /* without an envelope, or with one longer than a REQ/DEALER peer's,
         * there is nobody to answer */
        if (!overflow && count >= 2)
            handle(d, frames, count, true);
        for (int i = 0; i < count; i++)
            zmq_msg_close(&frames[i]);
    }
    return taken;
}

static void reply_append(df_daemon *d, const df_batch *b, append_request *req, size_t first,
                         size_t end)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    if (b->failure) {
        reply_error(d, req->envelope, req->frames, b->failure, b->failure_message);
        return;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    df_reply_append(&pk, b, first, end);
    send_reply(d, req->envelope, req->frames, &sb);
}

void df_api_complete(df_daemon *d, df_batch *b)
{
    size_t i = 0;
    while (i < b->count) {
        append_request *req = b->items[i].request;
        size_t end = i + 1;
        if (!req) {
            i++;
            continue;
        }
        while (end < b->count && b->items[end].request == req)
            end++;
        reply_append(d, b, req, i, end);
        if (!b->failure)
            df_histogram_observe(&d->append_latency, (uv_hrtime() - req->received_ns) / 1000);
        for (int f = 0; f < req->frames; f++)
            zmq_msg_close(&req->envelope[f]);
        free(req);
        i = end;
    }
}

void df_api_answer_waiting(df_daemon *d)
{
    df_waiting_reads *waiting = &d->waiting;
    if (!waiting->first)
        return;
    df_writer_counters c = df_writer_counters_get(d->writer);
    while (waiting->first && (waiting->first->need_seq <= c.flushed_seq || c.flush_failing)) {
        waiting_read *w = waiting->first;
        waiting->first = w->next;
        if (!waiting->first)
            waiting->last = NULL;
        waiting->count--;
        waiting->bytes -= sizeof(*w) + frame_bytes(w->frames, w->count);
        if (w->need_seq <= c.flushed_seq)
            handle(d, w->frames, w->count, false);
        else
            reply_error(d, w->frames, w->count - 1, DF_EUNAVAILABLE,
                        "the store cannot take the derived state now (see the daemon's log)");
        for (int i = 0; i < w->count; i++)
            zmq_msg_close(&w->frames[i]);
        free(w);
    }
}

bool df_api_waiting(const df_daemon *d)
{
    return d->waiting.first != NULL;
}
