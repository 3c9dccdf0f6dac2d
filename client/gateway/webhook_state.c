/* webhook_state.c: GET /v1/webhooks: the delivery state of each webhook endpoint as JSON, so that
 * an operator sees which endpoint fails and how far behind it is, without its credentials. */
#include "webhook_state.h"

#include <stdio.h>
#include <string.h>

void gw_webhook_public_url(const char *url, char *out, size_t cap)
{
    if (cap == 0)
        return;
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    size_t scheme_len = (size_t)(host - url);
    size_t authority_len = strcspn(host, "/?#");
    /* the last '@' of the authority ends the user and password */
    const char *at = NULL;
    for (const char *p = host; p < host + authority_len; p++)
        if (*p == '@')
            at = p;
    if (at)
        host = at + 1;
    size_t rest_len = strcspn(host, "?#");
    snprintf(out, cap, "%.*s%.*s", (int)scheme_len, url, (int)rest_len, host);
}

static json_t *endpoint_json(const gw_delivery_state *s, const char *topics)
{
    char url[2048];
    gw_webhook_public_url(s->url ? s->url : "", url, sizeof url);
    uint64_t lag = s->daemon_seq > s->position ? s->daemon_seq - s->position : 0;
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "url", url, "topics",
                     topics ? topics : "", "delivered", (json_int_t)s->delivered, "retries",
                     (json_int_t)s->retries, "failures", (json_int_t)s->failures, "position",
                     (json_int_t)s->position, "daemon_seq", (json_int_t)s->daemon_seq, "lag",
                     (json_int_t)lag, "failing", s->failing);
}

json_t *gw_webhook_state_json(const gw_delivery_state *states, const char *const *topics, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (json_array_append_new(list, endpoint_json(&states[i], topics[i])) < 0) {
            json_decref(list);
            list = NULL;
        }
    return list ? json_pack("{s:o}", "webhooks", list) : NULL;
}
