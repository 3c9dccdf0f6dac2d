/* append.c: a request's events through the daemon's `append`, each event's result in JSON. The
 * answer comes after the daemon has put the events on disk, so that a 200 means they are kept. */
#include "append.h"

#include <stdlib.h>

static json_t *result_json(const df_append_result *r)
{
    if (r->error)
        return json_pack("{s:s, s:s}", "error", df_error_name(r->error), "message", r->message);
    return json_pack("{s:I, s:b}", "seq", (json_int_t)r->seq, "dup", r->dup);
}

void gw_append_answer(df_client *c, const df_bytes *events, size_t n, gw_answer *out)
{
    df_error err = {0};
    df_append_result *results = calloc(n, sizeof *results);
    if (!results) {
        gw_answer_error(out, 500, "internal", "out of memory");
        return;
    }
    int rc = df_append(c, events->data, events->len, results, n, &err);
    if (rc < 0) {
        gw_answer_error(out, gw_http_status(rc), df_error_name(rc), "%s",
                        err.message[0] ? err.message : df_error_name(rc));
    } else {
        json_t *list = json_array();
        for (size_t i = 0; list && i < n; i++)
            if (json_array_append_new(list, result_json(&results[i])) < 0) {
                json_decref(list);
                list = NULL;
            }
        out->status = 200;
        out->body = list ? json_pack("{s:o}", "results", list) : NULL;
    }
    free(results);
}
