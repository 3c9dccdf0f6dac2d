/* webhook_state.h: GET /v1/webhooks: each webhook endpoint's delivery state as JSON, with its
 * url stripped of what may be a secret. */
#ifndef DF_GW_WEBHOOK_STATE_H
#define DF_GW_WEBHOOK_STATE_H

#include <stddef.h>

#include <jansson.h>

#include "delivery.h"

/* {"webhooks": [{"url", "topics", "delivered", "retries", "failures", "position",
 * "daemon_seq", "lag", "failing"}, ...]}, one entry per state, topics[i] being the topics of
 * states[i]; NULL when memory runs out. */
json_t *gw_webhook_state_json(const gw_delivery_state *states, const char *const *topics, size_t n);

/* url without its user and password, query and fragment (which may carry a token), into out
 * (cut to cap - 1 bytes). */
void gw_webhook_public_url(const char *url, char *out, size_t cap);

#endif
