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
