/* internal.h: what the modules of libdealflow share and callers never see: the client
 * itself, its request path, and copying map entries into requests. (Values inside
 * checked msgpack bytes are read with proto/reader.h.) */
#ifndef DF_CLIENT_INTERNAL_H
#define DF_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "dealflow.h"
#include "keys.h"

/* A reply larger than this makes ZeroMQ drop the connection; the request
 * then fails as unavailable rather than exhausting memory. */
#define DF__MAX_REPLY (256u * 1024 * 1024)
/* Notifications are small maps of bounded names. */
#define DF__MAX_NOTIFICATION (1024u * 1024)
/* Items one paged request asks for, and the daemon's maximum. */
#define DF__PAGE_DEFAULT 1000u
#define DF__PAGE_MAX     10000u

struct df_client {
    void *context;
    char *api;
    char *ingest;
    char *notify;
    int timeout_ms;
    int attempts;
    bool use_curve; /* every socket is a CURVE client with these keys */
    df__curve_keys curve;
    void *dealer; /* api socket, NULL until used and after a timed-out attempt */
    void *push;   /* ingest socket, NULL until df_publish */
    uint64_t next_request_id;
};

/* Copies the entries of the map filters[0..len) (checked bytes) into sb,
 * leaving out the keys in skip (NULL-terminated); returns how many it
 * copied, or -1 when filters is not a map. The caller packs the map header
 * first, so it counts the entries with a first pass (sb NULL). */
long df__copy_map_entries(const char *filters, size_t len, const char *const *skip,
                          msgpack_sbuffer *sb);

/* The socket under a subscription, for tests that cut its connection. */
void *df__subscription_socket(df_subscription *s);

#endif
