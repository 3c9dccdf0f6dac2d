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
        df_item *it = df_batch_add(b, data, len, recv, NULL);
        if (!it)
            df_log("out of memory: an ingest frame of %zu bytes was dropped", len);
        else
            it->checked = true;
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
        /* a whole object inside checked bytes passes the check too */
        df_item *it = df_batch_add(b, p, n, recv, NULL);
        if (!it)
            df_log("out of memory: an ingest event of %zu bytes was dropped", n);
        else
            it->checked = true;
        p += n;
    }
}

static bool refuse_item(df_batch *b, df_item *it, const char *message)
{
    it->error = DF_EFORBIDDEN;
    it->message = df_batch_copy(b, message, strlen(message));
    return it->message != DF_NO_TEXT;
}

/* Whether the event map raw[0..len) is a `pipeline` event. */
static bool is_pipeline_event(const char *raw, size_t len)
{
    const char *type;
    size_t type_len;
    static const char packed[] = "\xa8pipeline";
    return df_msgpack_map_find(raw, len, "type", &type, &type_len) &&
           type_len == sizeof(packed) - 1 && memcmp(type, packed, type_len) == 0;
}

bool df_ingest_attribute(df_batch *b, df_item *it, df_str by, unsigned roles)
{
    if (by.len > 0) {
        if ((it->by = df_batch_copy(b, by.ptr, by.len)) == DF_NO_TEXT) {
            /* not recorded unchecked: kept as rejected, like what cannot be taken */
            it->error = DF_EUNAVAILABLE;
            return false;
        }
        it->by_len = by.len;
    }
    if (it->error)
        return true;
    if (!roles)
        return refuse_item(b, it, "this key is not a client of the daemon (any more)");
    if (!(roles & DF_ROLES_WRITE))
        return refuse_item(b, it, "the role of this key may not record events");
    if (!(roles & DF_ROLE_ADMIN) && is_pipeline_event(b->arena + it->raw, it->raw_len))
        return refuse_item(b, it, "only an admin key may define a pipeline");
    return true;
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
        size_t first = d->filling->count;
        df_ingest_frame(d->filling, zmq_msg_data(&msg), zmq_msg_size(&msg), d->opt.max_message,
                        df_now_ms());
        if (d->auth) {
            df_str by = {NULL, 0};
            unsigned roles = df_auth_roles(d->auth, &msg, &by);
            for (size_t i = first; i < d->filling->count; i++)
                if (!df_ingest_attribute(d->filling, &d->filling->items[i], by, roles))
                    df_log("out of memory: an ingest event was not marked as sent by `%.*s`",
                           (int)by.len, by.ptr);
        }
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
    copy->checked = it->checked;
    if (it->by_len > 0) {
        copy->by = df_batch_copy(to, from->arena + it->by, it->by_len);
        if (copy->by == DF_NO_TEXT)
            return false;
        copy->by_len = it->by_len;
    }
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
