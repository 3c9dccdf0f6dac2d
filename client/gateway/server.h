/* server.h: the gateway's HTTP server (libmicrohttpd): routes, body limits, tokens and roles,
 * and the answers, each served by a thread with its own client of the daemon. */
#ifndef DF_GW_SERVER_H
#define DF_GW_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dealflow.h"
#include "delivery.h"

typedef struct gw_server gw_server;

/* How many requests a route answered with a status, since the start. */
typedef struct gw_request_count {
    const char *route; /* "/v1/events", "/v1/deals/{id}", ... */
    int status;
    uint64_t count;
} gw_request_count;

/* Listens on listen (HOST:PORT, [IPv6]:PORT; port 0 picks one) and serves
 * with config's tokens and limits; daemon says how each thread's client
 * reaches the daemon; delivery (NULL without webhooks), started with the
 * config's webhooks in order, gives GET /v1/webhooks its states. 0, or -1
 * with why in err. config, daemon's strings and delivery must outlive the
 * server. */
int gw_server_start(gw_server **out, const gw_config *config, const df_client_options *daemon,
                    gw_delivery *delivery, const char *listen, char *err, size_t cap);
/* The port it listens on. */
unsigned gw_server_port(const gw_server *s);
/* The counts so far, at most cap of them; returns how many there are. */
size_t gw_server_counts(gw_server *s, gw_request_count *out, size_t cap);
/* Stops serving, waits for the threads and closes their clients. */
void gw_server_stop(gw_server *s);

#endif
