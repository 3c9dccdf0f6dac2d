/* events.c: request bodies into contract events. JSON values keep their types (an integer stays
 * an int, a real a float); `at` and `close_date` may be written as ISO 8601 times, which the wire
 * wants as ms. What the daemon checks (ids, types, stages) is left to it, so that one bad event
 * in a batch is refused alone, in its result, and not the whole request. */
#include "events.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "cli.h"

/* The events packed so far, back to back, before the array header that counts them. */
typedef struct packed_events {
    msgpack_sbuffer body;
    msgpack_packer pk;
    size_t count;
} packed_events;

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Packs one event; where names it in a message ("event 3"). */
static int add_event(packed_events *p, const json_t *event, size_t index, char *err, size_t cap)
{
    if (!json_is_object(event))
        return fail(err, cap, "event %zu is not a JSON object", index + 1);
    if (p->count == GW_EVENTS_MAX)
        return fail(err, cap, "more than %d events in one request", GW_EVENTS_MAX);
    static const char *const time_keys[] = {"at", "close_date"};
    json_t *copy = NULL;
    for (size_t i = 0; i < sizeof time_keys / sizeof *time_keys; i++) {
        const json_t *value = json_object_get(event, time_keys[i]);
        int64_t ms;
        if (!json_is_string(value))
            continue;
        const char *text = json_string_value(value);
        if (strlen(text) != json_string_length(value) || !time_parse(text, &ms)) {
            json_decref(copy);
            return fail(err, cap,
                        "event %zu: `%s` is not a time (ms, 2024-01-31 or 2024-01-31T10:00:00Z)",
                        index + 1, time_keys[i]);
        }
        if (!copy && !(copy = json_copy((json_t *)event)))
            return fail(err, cap, "out of memory");
        json_object_set_new(copy, time_keys[i], json_integer((json_int_t)ms));
    }
    json_to_msgpack(&p->pk, copy ? copy : event);
    json_decref(copy);
    p->count++;
    return 0;
}

/* Adds a JSON value: an event, or an array of them. */
static int add_value(packed_events *p, const json_t *value, char *err, size_t cap)
{
    if (!json_is_array(value))
        return add_event(p, value, p->count, err, cap);
    for (size_t i = 0; i < json_array_size(value); i++)
        if (add_event(p, json_array_get(value, i), p->count, err, cap) < 0)
            return -1;
    return 0;
}

/* The array header and the events, in one buffer the caller frees with df_bytes_free. */
static int finish(packed_events *p, df_bytes *out, size_t *count, char *err, size_t cap)
{
    if (p->count == 0)
        return fail(err, cap, "no events in the request");
    msgpack_sbuffer frame;
    msgpack_sbuffer_init(&frame);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &frame, msgpack_sbuffer_write);
    if (msgpack_pack_array(&pk, (uint32_t)p->count) != 0 ||
        msgpack_sbuffer_write(&frame, p->body.data, p->body.size) != 0) {
        msgpack_sbuffer_destroy(&frame);
        return fail(err, cap, "out of memory");
    }
    out->len = frame.size;
    out->data = msgpack_sbuffer_release(&frame);
    *count = p->count;
    return 0;
}

static void packed_init(packed_events *p)
{
    msgpack_sbuffer_init(&p->body);
    msgpack_packer_init(&p->pk, &p->body, msgpack_sbuffer_write);
    p->count = 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

int gw_events_from_body(const char *body, size_t len, df_bytes *events_out, size_t *count,
                        char *err, size_t cap)
{
    events_out->data = NULL;
    events_out->len = 0;
    *count = 0;
    packed_events p;
    packed_init(&p);
    int rc = 0;
    /* JSON values one after another: one object, one array, or NDJSON lines */
    for (size_t off = 0; rc == 0;) {
        while (off < len && is_space(body[off]))
            off++;
        if (off == len)
            break;
        json_error_t jerr;
        json_t *v = json_loadb(body + off, len - off,
                               JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &jerr);
        if (!v) {
            rc = fail(err, cap, "not JSON at byte %zu: %s",
                      off + (size_t)(jerr.position > 0 ? jerr.position - 1 : 0), jerr.text);
            break;
        }
        off += (size_t)jerr.position;
        rc = add_value(&p, v, err, cap);
        json_decref(v);
    }
    if (rc == 0)
        rc = finish(&p, events_out, count, err, cap);
    msgpack_sbuffer_destroy(&p.body);
    return rc;
}

int gw_events_from_json(const json_t *array, df_bytes *events_out, size_t *count, char *err,
                        size_t cap)
{
    events_out->data = NULL;
    events_out->len = 0;
    *count = 0;
    if (!json_is_array(array))
        return fail(err, cap, "events must be a JSON array");
    packed_events p;
    packed_init(&p);
    int rc = add_value(&p, array, err, cap);
    if (rc == 0)
        rc = finish(&p, events_out, count, err, cap);
    msgpack_sbuffer_destroy(&p.body);
    return rc;
}
