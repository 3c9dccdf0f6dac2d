/* query.c: the api's single-reply reads as calls: a deal (at a time, as of
 * a time), the board, the metrics, the figures ops with every key, the pipelines, the counters and
 * ping, and the one single-reply write, redact. Each builds the request and gives back the reply
 * map (msgpack) that df_request returned, or what redact's holds. Names are the daemon's to judge
 * (an owner no deal has is a filter that matches nothing), so only what cannot be packed is refused
 * here. */
#include <string.h>

#include "codec.h"
#include "internal.h"
#include "request.h"

/* A call refused before anything was sent: no reply, and why. */
static int refuse(df_bytes *reply, df_error *err, const char *why)
{
    if (reply != NULL)
        *reply = (df_bytes){0};
    return df_fail(err, DF_EBAD_REQUEST, "%s", why);
}

int df_get_deal(df_client *c, const char *deal, const int64_t *now, const int64_t *as_of,
                df_bytes *reply, df_error *err)
{
    if (c == NULL || deal == NULL)
        return refuse(reply, err, "df_get_deal needs a client and a deal id");
    df__request r;
    df__request_begin(&r, "deal");
    df__request_str(&r, "deal", deal);
    df__request_time(&r, "now", now);
    df__request_time(&r, "as_of", as_of);
    return df__request_send(c, &r, reply, err);
}

int df_get_board(df_client *c, const char *pipeline, const int64_t *now, df_bytes *reply,
                 df_error *err)
{
    if (c == NULL)
        return refuse(reply, err, "df_get_board needs a client");
    df__request r;
    df__request_begin(&r, "board");
    df__request_str(&r, "pipeline", pipeline);
    df__request_time(&r, "now", now);
    return df__request_send(c, &r, reply, err);
}

int df_get_metrics(df_client *c, const df_metrics_request *q, df_bytes *reply, df_error *err)
{
    static const df_metrics_request everything;
    if (q == NULL)
        q = &everything;
    if (c == NULL)
        return refuse(reply, err, "df_get_metrics needs a client");
    df__request r;
    df__request_begin(&r, "metrics");
    df__request_str(&r, "pipeline", q->pipeline);
    df__request_str(&r, "owner", q->owner);
    df__request_time(&r, "now", q->now);
    df__request_time(&r, "from", q->from);
    df__request_time(&r, "to", q->to);
    return df__request_send(c, &r, reply, err);
}

int df_get_figures(df_client *c, const char *op, const df_figures_request *q, df_bytes *reply,
                   df_error *err)
{
    static const char *const ops[] = {"board", "metrics", "forecast", "calibration"};
    static const df_figures_request none = {.size = sizeof none};
    bool known = false;
    for (size_t i = 0; op != NULL && i < sizeof ops / sizeof ops[0]; i++)
        known |= strcmp(op, ops[i]) == 0;
    if (c == NULL || !known)
        return refuse(reply, err,
                      "df_get_figures needs a client and board, metrics, forecast or calibration");
    if (q == NULL)
        q = &none;
    if (!DF__HAS_FIELD(q, df_figures_request, pipeline))
        return refuse(reply, err, "df_get_figures: q->size is not sizeof(df_figures_request)");
    df__request r;
    df__request_begin(&r, op);
    df__request_str(&r, "pipeline", q->pipeline);
    df__request_str(&r, "owner", DF__FIELD(q, df_figures_request, owner, NULL));
    df__request_str(&r, "product", DF__FIELD(q, df_figures_request, product, NULL));
    df__request_str(&r, "source", DF__FIELD(q, df_figures_request, source, NULL));
    df__request_time(&r, "now", DF__FIELD(q, df_figures_request, now, NULL));
    df__request_time(&r, "from", DF__FIELD(q, df_figures_request, from, NULL));
    df__request_time(&r, "to", DF__FIELD(q, df_figures_request, to, NULL));
    df__request_time(&r, "as_of", DF__FIELD(q, df_figures_request, as_of, NULL));
    df__request_str(&r, "by", DF__FIELD(q, df_figures_request, by, NULL));
    return df__request_send(c, &r, reply, err);
}

int df_get_pipelines(df_client *c, const char *pipeline, df_bytes *reply, df_error *err)
{
    if (c == NULL)
        return refuse(reply, err, "df_get_pipelines needs a client");
    df__request r;
    df__request_begin(&r, "pipelines");
    df__request_str(&r, "pipeline", pipeline);
    return df__request_send(c, &r, reply, err);
}

/* A request of its op alone. */
static int bare_request(df_client *c, const char *op, df_bytes *reply, df_error *err)
{
    df__request r;
    df__request_begin(&r, op);
    return df__request_send(c, &r, reply, err);
}

int df_get_stats(df_client *c, df_bytes *reply, df_error *err)
{
    if (c == NULL)
        return refuse(reply, err, "df_get_stats needs a client");
    return bare_request(c, "stats", reply, err);
}

int df_ping(df_client *c, df_bytes *reply, df_error *err)
{
    if (c == NULL)
        return refuse(reply, err, "df_ping needs a client");
    return bare_request(c, "ping", reply, err);
}

int df_redact(df_client *c, const char *deal, const char *const *fields, size_t nfields,
              const char *reason, uint64_t *seq, uint64_t *redacted, df_error *err)
{
    if (seq != NULL)
        *seq = 0;
    if (redacted != NULL)
        *redacted = 0;
    bool fields_named = fields != NULL || nfields == 0;
    for (size_t i = 0; fields_named && i < nfields; i++)
        fields_named = fields[i] != NULL;
    if (c == NULL || deal == NULL || reason == NULL || !fields_named)
        return refuse(NULL, err, "df_redact needs a client, a deal id, field names and a reason");
    df__request r;
    df__request_begin(&r, "redact");
    df__request_str(&r, "deal", deal);
    df__request_strs(&r, "fields", fields, nfields);
    df__request_str(&r, "reason", reason);
    df_bytes reply;
    int rc = df__request_send(c, &r, &reply, err);
    if (rc == 0) {
        uint64_t reply_seq, changed;
        if (df_msgpack_map_uint(reply.data, reply.len, "seq", &reply_seq) &&
            df_msgpack_map_uint(reply.data, reply.len, "redacted", &changed)) {
            if (seq != NULL)
                *seq = reply_seq;
            if (redacted != NULL)
                *redacted = changed;
        } else {
            rc = df_fail(err, DF_EINTERNAL,
                         "the daemon's redact reply lacks a uint seq or redacted");
        }
    }
    df_bytes_free(&reply);
    return rc;
}
