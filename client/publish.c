/* publish.c: sending events: df_append over the api (acknowledged on disk, retried)
 * and df_publish over ingest (fire and forget). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "codec.h"
#include "internal.h"
#include "request.h"
#include "socket.h"

#define PUBLISH_LINGER_MS 2000

/* Reads one element of `results` into *r; false when it is malformed. */
static bool read_result(const char *item, size_t len, df_append_result *r)
{
    const char *value, *text;
    size_t value_len;
    uint32_t text_len;
    memset(r, 0, sizeof *r);
    if (df_msgpack_map_uint(item, len, "seq", &r->seq)) {
        return df_msgpack_map_find(item, len, "dup", &value, &value_len) &&
               df_msgpack_read_bool(value, value_len, &r->dup);
    }
    if (!df_msgpack_map_str(item, len, "error", &text, &text_len))
        return false;
    r->error = df_error_from_name(text, text_len);
    if (r->error == DF_OK)
        r->error = DF_EINTERNAL;
    if (df_msgpack_map_str(item, len, "message", &text, &text_len) &&
        df_utf8_valid(text, text_len)) {
        df_error copy;
        df_fail(&copy, r->error, "%.*s", (int)text_len, text);
        memcpy(r->message, copy.message, sizeof r->message);
    } else {
        snprintf(r->message, sizeof r->message, "%s", df_error_name(r->error));
    }
    return true;
}

static int read_results(const df_bytes *reply, uint32_t want, df_append_result *results,
                        df_error *err)
{
    const char *item;
    size_t rest;
    uint32_t count;
    if (!df_msgpack_map_array(reply->data, reply->len, "results", &item, &rest, &count) ||
        count != want)
        return df_fail(err, DF_EINTERNAL, "the daemon's append reply does not hold %u results",
                       (unsigned)want);
    for (uint32_t i = 0; i < count; i++) {
        size_t item_len = df_msgpack_skip(item, rest);
        if (item_len == 0 || !read_result(item, item_len, &results[i]))
            return df_fail(err, DF_EINTERNAL, "result %u of the daemon's append reply is malformed",
                           (unsigned)i);
        item += item_len;
        rest -= item_len;
    }
    return 0;
}

int df_append(df_client *c, const void *events, size_t len, df_append_result *results, size_t count,
              df_error *err)
{
    df_error check;
    uint32_t nevents;
    size_t header_len;
    if (c == NULL || events == NULL || (results == NULL && count > 0))
        return df_fail(err, DF_EBAD_REQUEST, "df_append needs a client, events and results");
    if (df_msgpack_check(events, len, &check) != 0)
        return df_fail(err, DF_EBAD_REQUEST, "the events are not valid msgpack: %s", check.message);
    if (!df_msgpack_array_header(events, len, &nevents, &header_len) || nevents == 0 ||
        nevents > DF_MAX_BATCH)
        return df_fail(err, DF_EBAD_REQUEST, "the events must be an array of 1..%d event maps",
                       DF_MAX_BATCH);
    if (count < nevents)
        return df_fail(err, DF_EBAD_REQUEST, "%u events need %u results, not %zu",
                       (unsigned)nevents, (unsigned)nevents, count);

    df__request r;
    df__request_begin(&r, "append");
    df__request_msgpack(&r, "events", events, len);
    df_bytes reply;
    int rc = df__request_send(c, &r, &reply, err);
    if (rc == 0)
        rc = read_results(&reply, nevents, results, err);
    df_bytes_free(&reply);
    return rc;
}

static int open_push(df_client *c, df_error *err)
{
    df__socket_spec spec = {
        .type = ZMQ_PUSH,
        .role = "ingest",
        .endpoint = c->ingest,
        .linger_ms = PUBLISH_LINGER_MS,
        .send_timeout_ms = c->timeout_ms,
        .curve = c->use_curve ? &c->curve : NULL,
    };
    return df__socket_open(c->context, &spec, &c->push, err);
}

int df_publish(df_client *c, const void *frame, size_t len, df_error *err)
{
    df_error check;
    if (c == NULL || frame == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "df_publish needs a client and a frame");
    if (df_msgpack_check(frame, len, &check) != 0)
        return df_fail(err, DF_EBAD_REQUEST, "the frame is not valid msgpack: %s", check.message);
    if (!df_msgpack_is_map(frame, len) && !df_msgpack_is_array(frame, len))
        return df_fail(err, DF_EBAD_REQUEST, "the frame must be an event map or an array of them");
    if (c->push == NULL) {
        int rc = open_push(c, err);
        if (rc != 0)
            return rc;
    }
    if (zmq_send(c->push, frame, len, 0) < 0) {
        if (errno == EAGAIN)
            return df_fail(err, DF_EUNREACHABLE,
                           "the ingest queue to %s stayed full for %d ms (is the daemon running?)",
                           c->ingest, c->timeout_ms);
        return df_fail(err, DF_EINTERNAL, "sending to %s failed: %s", c->ingest,
                       zmq_strerror(errno));
    }
    return 0;
}
