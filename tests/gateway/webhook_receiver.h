/* webhook_receiver.h: an HTTP receiver of webhooks in the test process, on a free loopback port:
 * it records every request's body and headers, answers what the test switches it to (200, or a
 * failure such as 500), can go down and come back on its port, and tells which deliveries it
 * took and whether each was signed with its secret. */
#ifndef DF_GW_WEBHOOK_RECEIVER_H
#define DF_GW_WEBHOOK_RECEIVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Daemon;

/* One request as it came, and what it was answered. */
typedef struct gw_received {
    int status;         /* answered */
    char *body;         /* NUL-ended; "" when empty */
    size_t len;         /* of body */
    char *signature;    /* the X-Dealflow-Signature header; NULL without */
    char *content_type; /* the Content-Type header; NULL without */
    int64_t seq;        /* the body's "seq"; 0 without */
    char *topic;        /* the body's "topic"; "(none)" without */
} gw_received;

typedef struct gw_receiver {
    struct MHD_Daemon *mhd; /* NULL while down */
    unsigned short port;    /* kept while down, to come back on */
    char url[64];           /* http://127.0.0.1:PORT/hook */
    char secret[128];       /* that deliveries are signed with */
    bool started;
    pthread_mutex_t lock;
    int status;            /* what the next requests are answered */
    gw_received *requests; /* all of them, in arrival order */
    int nrequests, capacity;
    int *accepted; /* indexes into requests of those answered 2xx, in order */
    int naccepted;
} gw_receiver;

/* Listens on a free loopback port, answering status, deliveries signed with secret expected. */
bool gw_receiver_start(gw_receiver *r, const char *secret, int status);
/* What the requests from now on are answered: 200, or a failure such as 500 or 503. */
void gw_receiver_set_status(gw_receiver *r, int status);
/* Stops listening: nothing answers on the port until gw_receiver_listen. */
void gw_receiver_down(gw_receiver *r);
/* Listens again on the port it had. */
bool gw_receiver_listen(gw_receiver *r);
/* Stops listening and frees what it recorded (nothing when it never started). */
void gw_receiver_stop(gw_receiver *r);

/* How many requests were answered 2xx. */
int gw_receiver_accepted(gw_receiver *r);
/* The i-th of them (i < gw_receiver_accepted; all NULL and 0 past them), its strings valid
 * until gw_receiver_stop. */
gw_received gw_receiver_accepted_at(gw_receiver *r, int i);
/* Polls until n requests were answered 2xx; false, saying how many, at the deadline. */
bool gw_receiver_wait_accepted(gw_receiver *r, int n, int timeout_ms);
/* How many requests of all came without a right X-Dealflow-Signature: sha256=HEX, the
 * HMAC-SHA256 of the body with the secret. */
int gw_receiver_bad_signatures(gw_receiver *r);
/* How many requests of all came without Content-Type: application/json. */
int gw_receiver_bad_content_types(gw_receiver *r);

#endif
