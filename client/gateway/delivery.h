/* delivery.h: webhooks out: every notification an endpoint's topics match, POSTed to it
 * signed, in seq order and at least once, by one worker thread per endpoint that keeps
 * its position on disk. */
#ifndef GW_DELIVERY_H
#define GW_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dealflow.h"

/* One `webhooks` entry of the config: where to POST, the topic prefix
 * ("deal.moved.", "deal.stale.", "" for all) and the HMAC key. */
typedef struct gw_webhook {
    const char *url, *topics, *secret;
} gw_webhook;

typedef struct gw_delivery gw_delivery;

/* One endpoint's figures, for /metrics and logs. */
typedef struct gw_delivery_state {
    const char *url;     /* valid until gw_delivery_stop */
    uint64_t delivered;  /* notifications the endpoint took (a 2xx) */
    uint64_t retries;    /* attempts after a first that failed */
    uint64_t failures;   /* attempts that failed: no answer, or not a 2xx */
    uint64_t position;   /* the last deal.moved seq delivered (or passed over as not matching) */
    uint64_t daemon_seq; /* the last deal.moved seq the daemon is known to have: lag is
                            daemon_seq - position */
    bool failing;        /* the last attempt failed */
} gw_delivery_state;

/* Starts one worker per hook, each with its own client of the daemon (its
 * options copied; each request makes one attempt of at most two seconds, so
 * that a stop is never held up by an unreachable daemon). With state_dir
 * (created when missing), an endpoint resumes after the position kept
 * there, and one without a file starts from the daemon's current end and
 * records it at once; with state_dir NULL every endpoint starts from the
 * current end (logged). Fails, with nothing started and why in err, on bad
 * client options, two entries with the same url and topics, a url that is
 * not http(s), or a state_dir or position file that cannot be used. */
int gw_delivery_start(gw_delivery **out, const df_client_options *daemon, const gw_webhook *hooks,
                      size_t n, const char *state_dir, char *err, size_t cap);
/* Copies up to cap endpoints' states, in the order of hooks; returns how many there are. */
size_t gw_delivery_states(gw_delivery *d, gw_delivery_state *out, size_t cap);
/* Stops and joins the workers: a request in flight is abandoned (it is
 * sent again at the next start), positions stay on disk. NULL is fine. */
void gw_delivery_stop(gw_delivery *d);

#endif
