/* socket.h: opening the ZeroMQ sockets of a client: every option set and its failure
 * said, then connected to its endpoint. */
#ifndef DF_CLIENT_SOCKET_H
#define DF_CLIENT_SOCKET_H

#include <stddef.h>
#include <stdint.h>

#include "dealflow.h"
#include "keys.h"

typedef struct df__socket_spec {
    int type;         /* ZMQ_DEALER, ZMQ_PUSH, ZMQ_SUB */
    const char *role; /* "api", "ingest", "notify": the endpoint's name in messages */
    const char *endpoint;
    int linger_ms;
    int64_t max_message;   /* bytes; 0: no limit */
    int send_timeout_ms;   /* 0: sends block */
    const char *subscribe; /* SUB: the topic prefix */
    size_t subscribe_len;
    const df__curve_keys *curve; /* NULL: no CURVE */
} df__socket_spec;

/* Opens a socket in context as spec says and connects it into *out. Returns 0,
 * or a negative code with *out NULL (DF_EBAD_REQUEST for an endpoint ZeroMQ
 * refuses, DF_EINTERNAL for anything else). */
int df__socket_open(void *context, const df__socket_spec *spec, void **out, df_error *err);

#endif
