/* reads.c: the GET routes that read the daemon. Query parameters are the op's keys, checked here
 * by kind (a string, a time as ms or ISO 8601, a count), so that a typo is a 400 naming the
 * parameters the route takes rather than a key the daemon silently ignores; the daemon's reply
 * goes out as JSON without its `ok`. */
#include "reads.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "cli.h"
#include "codec.h"

#define HISTORY_MAX_BYTES (16u << 20) /* of events in one history answer */

typedef enum param_kind { PARAM_STR, PARAM_TIME, PARAM_UINT } param_kind;

typedef struct param_spec {
    const char *name;
    param_kind kind;
} param_spec;

/* What each read takes, as the op names its keys. */
static const param_spec deal_params[] = {{"now", PARAM_TIME}, {"as_of", PARAM_TIME}, {NULL, 0}};
static const param_spec board_params[] = {{"pipeline", PARAM_STR}, {"now", PARAM_TIME}, {NULL, 0}};
static const param_spec metrics_params[] = {{"pipeline", PARAM_STR}, {"owner", PARAM_STR},
                                            {"now", PARAM_TIME},     {"from", PARAM_TIME},
                                            {"to", PARAM_TIME},      {NULL, 0}};
static const param_spec history_params[] = {
    {"after", PARAM_UINT}, {"limit", PARAM_UINT}, {NULL, 0}};

void gw_answer_error(gw_answer *out, int status, const char *code, const char *fmt, ...)
{
    char message[DF_MESSAGE_MAX + 200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    out->status = status;
    out->body = json_pack("{s:s, s:s}", "error", code, "message", message);
}

int gw_http_status(int df_code)
{
    switch (df_code) {
    case DF_OK:
        return 200;
    case DF_EBAD_REQUEST:
    case DF_EUNKNOWN_STAGE:
        return 400;
    case DF_EFORBIDDEN:
        return 403;
    case DF_ENOT_FOUND:
    case DF_EUNKNOWN_PIPELINE:
        return 404;
    case DF_ECONFLICT:
        return 409;
    case DF_ETOO_LARGE:
        return 413;
    case DF_EUNAVAILABLE:
    case DF_EUNREACHABLE:
        return 503;
    default:
        return 500;
    }
}

static void answer_failure(gw_answer *out, int code, const df_error *err)
{
    gw_answer_error(out, gw_http_status(code), df_error_name(code), "%s",
                    err->message[0] ? err->message : df_error_name(code));
}

/* Parses one parameter's value; false after answering 400. */
static bool read_value(const param_spec *spec, const gw_param *p, int64_t *ms, uint64_t *count,
                       gw_answer *out)
{
    if (spec->kind == PARAM_STR) {
        if (p->value[0] == '\0') {
            gw_answer_error(out, 400, "bad_request", "parameter `%s` is empty", spec->name);
            return false;
        }
        return true;
    }
    if (spec->kind == PARAM_TIME) {
        if (!time_parse(p->value, ms)) {
            gw_answer_error(out, 400, "bad_request",
                            "parameter `%s` is not a time (ms, 2024-01-31 or 2024-01-31T10:00:00Z)",
                            spec->name);
            return false;
        }
        return true;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p->value, &end, 10);
    if (p->value[0] < '0' || p->value[0] > '9' || *end != '\0' || errno) {
        gw_answer_error(out, 400, "bad_request", "parameter `%s` is not a whole number",
                        spec->name);
        return false;
    }
    *count = v;
    return true;
}

/* The spec of a parameter; NULL after answering 400 when the route does not take it. */
static const param_spec *find_spec(const param_spec *specs, const gw_param *p, gw_answer *out)
{
    char names[128] = "";
    size_t n = 0;
    for (const param_spec *s = specs; s->name; s++) {
        if (strcmp(s->name, p->name) == 0)
            return s;
        n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", n ? ", " : "", s->name);
    }
    gw_answer_error(out, 400, "bad_request", "unknown parameter `%.64s` (this route takes %s)",
                    p->name, names);
    return NULL;
}

/* Refuses a parameter given twice: which one counts would be a guess. */
static bool no_repeats(const gw_param *params, size_t n, gw_answer *out)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(params[i].name, params[j].name) == 0) {
                gw_answer_error(out, 400, "bad_request", "parameter `%.64s` is given twice",
                                params[i].name);
                return false;
            }
    return true;
}

/* The JSON of a msgpack reply without its `ok`; NULL when it is not msgpack. */
static json_t *reply_json(const df_bytes *reply)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object obj;
    df_error err;
    json_t *body = NULL;
    if (df_msgpack_unpack(reply->data, reply->len, &zone, &obj, &err) == 0 &&
        obj.type == MSGPACK_OBJECT_MAP) {
        body = json_from_msgpack(&obj);
        if (body)
            json_object_del(body, "ok");
    }
    msgpack_zone_destroy(&zone);
    return body;
}

/* A single-reply op: the request packed from the parameters, sent, its reply as JSON. */
static void single_read(df_client *c, const char *op, const char *deal, const param_spec *specs,
                        const gw_param *params, size_t n, gw_answer *out)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (uint32_t)(n + 1 + (deal != NULL)));
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, op, strlen(op));
    if (deal) {
        msgpack_pack_str_with_body(&pk, "deal", 4);
        msgpack_pack_str_with_body(&pk, deal, strlen(deal));
    }
    for (size_t i = 0; i < n; i++) {
        const param_spec *spec = find_spec(specs, &params[i], out);
        int64_t ms = 0;
        uint64_t count = 0;
        if (!spec || !read_value(spec, &params[i], &ms, &count, out)) {
            msgpack_sbuffer_destroy(&buf);
            return;
        }
        msgpack_pack_str_with_body(&pk, spec->name, strlen(spec->name));
        if (spec->kind == PARAM_STR)
            msgpack_pack_str_with_body(&pk, params[i].value, strlen(params[i].value));
        else if (spec->kind == PARAM_TIME)
            msgpack_pack_int64(&pk, ms);
        else
            msgpack_pack_uint64(&pk, count);
    }
    df_bytes reply = {0};
    df_error err = {0};
    int rc = df_request(c, buf.data, buf.size, &reply, &err);
    msgpack_sbuffer_destroy(&buf);
    if (rc < 0) {
        answer_failure(out, rc, &err);
    } else if (!(out->body = reply_json(&reply))) {
        gw_answer_error(out, 502, "internal", "the daemon's reply could not be read");
    } else {
        out->status = 200;
    }
    df_bytes_free(&reply);
}

/* Every page of the deal's history after `after`, up to `limit` events. */
static void history_read(df_client *c, const char *deal, const gw_param *params, size_t n,
                         gw_answer *out)
{
    uint64_t after = 0, limit = GW_HISTORY_MAX;
    for (size_t i = 0; i < n; i++) {
        const param_spec *spec = find_spec(history_params, &params[i], out);
        int64_t ms;
        uint64_t count;
        if (!spec || !read_value(spec, &params[i], &ms, &count, out))
            return;
        if (strcmp(spec->name, "after") == 0)
            after = count;
        else if (count >= 1 && count <= GW_HISTORY_MAX)
            limit = count;
        else {
            gw_answer_error(out, 400, "bad_request", "parameter `limit` must be 1 to %d",
                            GW_HISTORY_MAX);
            return;
        }
    }
    df_iter *it = NULL;
    df_error err = {0};
    int rc = df_history_open(c, deal, after, &it, &err);
    if (rc == 0)
        rc = df_iter_set_page_size(it, (uint32_t)(limit < 1000 ? limit : 1000), &err);
    json_t *events = json_array();
    size_t bytes = 0;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    const char *item;
    size_t len;
    bool more = false;
    while (rc == 0 && events) {
        if (json_array_size(events) == limit || bytes > HISTORY_MAX_BYTES) {
            more = true;
            break;
        }
        int got = df_iter_next(it, &item, &len, &err);
        if (got <= 0) {
            rc = got;
            break;
        }
        msgpack_object obj;
        msgpack_zone_clear(&zone);
        json_t *event = NULL;
        if (df_msgpack_unpack(item, len, &zone, &obj, &err) < 0 ||
            !(event = json_from_msgpack(&obj)) || json_array_append_new(events, event) < 0) {
            rc = DF_EINTERNAL;
            snprintf(err.message, sizeof err.message, "an event of the history could not be read");
            break;
        }
        bytes += len;
    }
    msgpack_zone_destroy(&zone);
    df_iter_free(it);
    if (rc < 0) {
        json_decref(events);
        answer_failure(out, rc, &err);
        return;
    }
    out->status = 200;
    out->body = events ? json_pack("{s:o, s:b}", "events", events, "more", more) : NULL;
}

void gw_read(df_client *c, gw_read_kind kind, const char *deal, const gw_param *params,
             size_t nparams, gw_answer *out)
{
    out->status = 500;
    out->body = NULL;
    if (!no_repeats(params, nparams, out))
        return;
    switch (kind) {
    case GW_READ_DEAL:
        single_read(c, "deal", deal, deal_params, params, nparams, out);
        break;
    case GW_READ_HISTORY:
        history_read(c, deal, params, nparams, out);
        break;
    case GW_READ_BOARD:
        single_read(c, "board", NULL, board_params, params, nparams, out);
        break;
    case GW_READ_METRICS:
        single_read(c, "metrics", NULL, metrics_params, params, nparams, out);
        break;
    }
}
