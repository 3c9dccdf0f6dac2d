/* hook_request.c: a hook's request checked and mapped before anything reaches the daemon: the
 * signature first, so that a forged payload costs no parsing, then the mapping, then the events'
 * own checks. */
#include "hook_request.h"

#include "config.h"
#include "events.h"

int gw_hook_events(const gw_hook *h, const gw_hook_request *r, df_bytes *events, size_t *n,
                   gw_answer *out)
{
    *events = (df_bytes){0};
    *n = 0;
    char why[GW_ERROR_MAX];
    if (gw_hook_verify(h, r, why, sizeof why) < 0) {
        gw_answer_error(out, 401, "unauthorized", "the request's signature does not hold: %s", why);
        return -1;
    }
    json_t *mapped = gw_hook_map(h, r->body, r->body_len, why, sizeof why);
    if (!mapped) {
        gw_answer_error(out, 400, "bad_request", "the payload does not fit the mapping: %s", why);
        return -1;
    }
    int rc = 0;
    if (json_array_size(mapped) > 0 &&
        gw_events_from_json(mapped, events, n, why, sizeof why) < 0) {
        gw_answer_error(out, 400, "bad_request", "the mapped events are not valid: %s", why);
        rc = -1;
    }
    json_decref(mapped);
    return rc;
}
