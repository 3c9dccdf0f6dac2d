/* ingest.c: the PULL socket: fire-and-forget frames of one event map or an
 * array of them. What cannot be read still becomes an item, refused, so
 * that the writer keeps it in the rejected store: nothing sent is lost
 * without a trace. */
#include "ingest.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

static void refuse(df_batch *b, const char *raw, size_t len, int64_t recv, const df_error *err)
{
    df_item *it = df_batch_add(b, raw, len, recv, NULL);
    if (!it) {
        df_log("out of memory: an ingest frame of %zu bytes was dropped", len);
        return;
    }
    it->error = err->code;
    it->message = df_batch_copy(b, err->message, strlen(err->message));
}

void df_ingest_frame(df_batch *b, const char *data, size_t len, size_t max_message, int64_t recv)
{
    df_error err;
    uint32_t count;
    size_t header;
    if (len > max_message) {
        df_fail(&err, DF_ETOO_LARGE, "a frame of %zu bytes is over the %zu-byte limit", len,
                max_message);
        refuse(b, data, 0, recv, &err);
        return;
    }
    if (df_msgpack_check(data, len, &err) != 0) {
        refuse(b, data, len, recv, &err);
        return;
    }
    if (!df_msgpack_array_header(data, len, &count, &header)) {
        /* a map, or something the writer will refuse as not a map */
        if (!df_batch_add(b, data, len, recv, NULL))
            df_log("out of memory: an ingest frame of %zu bytes was dropped", len);
        return;
    }
    if (count == 0 || count > DF_MAX_BATCH) {
        df_fail(&err, DF_EBAD_REQUEST, "an ingest array must hold 1..%d events, not %u",
                DF_MAX_BATCH, count);
        refuse(b, data, len, recv, &err);
        return;
    }
    const char *p = data + header, *end = data + len;
    for (uint32_t i = 0; i < count; i++) {
        size_t n = df_msgpack_skip(p, (size_t)(end - p));
        if (!df_batch_add(b, p, n, recv, NULL))
            df_log("out of memory: an ingest event of %zu bytes was dropped", n);
        p += n;
    }
}

int df_ingest_drain(df_daemon *d, int budget)
{
    zmq_msg_t msg;
    int taken = 0;
    zmq_msg_init(&msg);
    /* past the limit the socket is left alone: its high-water mark then
     * holds producers back, and memory stays bounded */
    while (taken < budget && df_ingest_has_room(d)) {
        if (zmq_msg_recv(&msg, d->ingest, ZMQ_DONTWAIT) < 0) {
            if (errno != EAGAIN && errno != EINTR)
                df_log("ingest: receive failed: %s", zmq_strerror(errno));
            break;
        }
        df_ingest_frame(d->filling, zmq_msg_data(&msg), zmq_msg_size(&msg), d->opt.max_message,
                        df_now_ms());
        taken++;
    }
    zmq_msg_close(&msg);
    return taken;
}

/* Copies item it of from (with its request, error and message) into to. */
static bool copy_item(df_batch *to, const df_batch *from, const df_item *it)
{
    df_item *copy = df_batch_add(to, from->arena + it->raw, it->raw_len, it->recv, it->request);
    if (!copy)
        return false;
    copy->error = it->error;
    if (it->message != DF_NO_TEXT) {
        const char *message = df_batch_text(from, it->message);
        copy->message = df_batch_copy(to, message, strlen(message));
    }
    return true;
}

void df_ingest_hold(df_daemon *d, const df_batch *held)
{
    df_batch *next = df_batch_new();
    size_t nheld = 0, lost = 0;
    for (size_t i = 0; i < held->count; i++)
        if (!held->items[i].request)
            nheld++;
    if (nheld == 0) {
        df_batch_free(next);
        return;
    }
    /* while stopping, a full store will not take them before the exit */
    if (d->draining || !next) {
        df_batch_free(next);
        df_writer_count_lost(d->writer, nheld);
        df_log("%zu ingest events were not recorded: %s", nheld, held->failure_message);
        return;
    }
    /* the held events keep their place before what arrived since */
    for (size_t i = 0; i < held->count; i++)
        if (!held->items[i].request && !copy_item(next, held, &held->items[i]))
            lost++;
    for (size_t i = 0; i < d->filling->count; i++)
        if (!copy_item(next, d->filling, &d->filling->items[i])) {
            /* what arrived since cannot be left out: keep the old batch */
            df_batch_free(next);
            df_writer_count_lost(d->writer, nheld);
            df_log("out of memory: %zu ingest events were not recorded: %s", nheld,
                   held->failure_message);
            return;
        }
    next->request_bytes = d->filling->request_bytes;
    df_batch_free(d->filling);
    d->filling = next;
    if (lost > 0) {
        df_writer_count_lost(d->writer, lost);
        df_log("out of memory: %zu ingest events were not recorded", lost);
    }
}
