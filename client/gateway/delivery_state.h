/* delivery_state.h: one webhook endpoint's delivery figures, as the
 * delivery workers report them and /metrics shows them. */
#ifndef GW_DELIVERY_STATE_H
#define GW_DELIVERY_STATE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct gw_delivery_state {
    const char *url;
    uint64_t delivered;  /* notifications the endpoint took */
    uint64_t retries;    /* attempts after a first that failed */
    uint64_t failures;   /* attempts that failed */
    uint64_t position;   /* the last seq delivered */
    uint64_t daemon_seq; /* the last seq seen from the daemon: lag is daemon_seq - position */
    bool failing;        /* the last attempt failed */
} gw_delivery_state;

#endif
