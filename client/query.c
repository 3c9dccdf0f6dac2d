/* query.c: the api's single-reply reads as calls: a deal (at a time, as of
 * a time), the board, the metrics and the counters. Each packs the request
 * and gives back the reply map (msgpack) that df_request returned. */
#include <string.h>

#include "codec.h"
#include "internal.h"

static size_t count_set(const int64_t *const *times, size_t n)
{
    size_t set = 0;
    for (size_t i = 0; i < n; i++)
        set += times[i] != NULL;
    return set;
}

static void pack_time(msgpack_packer *pk, const char *key, const int64_t *t)
{
    if (t) {
        df_pack_cstr(pk, key);
        msgpack_pack_int64(pk, *t);
    }
}

static int send_request(df_client *c, msgpack_sbuffer *sb, df_bytes *reply, df_error *err)
{
    int rc = df__request_sbuffer(c, sb, reply, err);
    msgpack_sbuffer_destroy(sb);
    return rc;
}

static bool bad_name(const char *name, size_t max)
{
    return name != NULL && (name[0] == '\0' || strlen(name) > max);
}

int df_get_deal(df_client *c, const char *deal, const int64_t *now, const int64_t *as_of,
                df_bytes *reply, df_error *err)
{
    if (c == NULL || deal == NULL || bad_name(deal, DF_MAX_ID))
        return df_fail(err, DF_EBAD_REQUEST,
                       "df_get_deal needs a client and a deal id of 1..%d bytes", DF_MAX_ID);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const int64_t *times[] = {now, as_of};
    msgpack_pack_map(&pk, 2 + count_set(times, 2));
    df_pack_cstr(&pk, "op");
    df_pack_cstr(&pk, "deal");
    df_pack_cstr(&pk, "deal");
    df_pack_cstr(&pk, deal);
    pack_time(&pk, "now", now);
    pack_time(&pk, "as_of", as_of);
    return send_request(c, &sb, reply, err);
}

int df_get_board(df_client *c, const char *pipeline, const int64_t *now, df_bytes *reply,
                 df_error *err)
{
    if (c == NULL || bad_name(pipeline, DF_MAX_NAME))
        return df_fail(err, DF_EBAD_REQUEST,
                       "df_get_board needs a client (and a pipeline name of "
                       "1..%d bytes, or NULL)",
                       DF_MAX_NAME);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1 + (pipeline != NULL) + (now != NULL));
    df_pack_cstr(&pk, "op");
    df_pack_cstr(&pk, "board");
    if (pipeline) {
        df_pack_cstr(&pk, "pipeline");
        df_pack_cstr(&pk, pipeline);
    }
    pack_time(&pk, "now", now);
    return send_request(c, &sb, reply, err);
}

int df_get_metrics(df_client *c, const df_metrics_request *q, df_bytes *reply, df_error *err)
{
    static const df_metrics_request everything;
    if (q == NULL)
        q = &everything;
    if (c == NULL || bad_name(q->pipeline, DF_MAX_NAME) || bad_name(q->owner, DF_MAX_NAME))
        return df_fail(err, DF_EBAD_REQUEST,
                       "df_get_metrics needs a client (and names of 1..%d "
                       "bytes, or NULL)",
                       DF_MAX_NAME);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const int64_t *times[] = {q->now, q->from, q->to};
    msgpack_pack_map(&pk, 1 + (q->pipeline != NULL) + (q->owner != NULL) + count_set(times, 3));
    df_pack_cstr(&pk, "op");
    df_pack_cstr(&pk, "metrics");
    if (q->pipeline) {
        df_pack_cstr(&pk, "pipeline");
        df_pack_cstr(&pk, q->pipeline);
    }
    if (q->owner) {
        df_pack_cstr(&pk, "owner");
        df_pack_cstr(&pk, q->owner);
    }
    pack_time(&pk, "now", q->now);
    pack_time(&pk, "from", q->from);
    pack_time(&pk, "to", q->to);
    return send_request(c, &sb, reply, err);
}

int df_get_stats(df_client *c, df_bytes *reply, df_error *err)
{
    if (c == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "df_get_stats needs a client");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    df_pack_cstr(&pk, "op");
    df_pack_cstr(&pk, "stats");
    return send_request(c, &sb, reply, err);
}
