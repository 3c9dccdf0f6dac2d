/* daemon.h: the state of a running dealflowd that the loop, the api, ingest
 * and notifications share. Everything here is touched by the loop thread
 * only; the writer thread is reached through writer.h. */
#ifndef DF_DAEMON_H
#define DF_DAEMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "apply.h"
#include "auth.h"
#include "descriptors.h"
#include "log.h"
#include "rejections.h"
#include "store.h"
#include "writer.h"

#define DF_DEFAULT_INGEST      "tcp://127.0.0.1:7701"
#define DF_DEFAULT_API         "tcp://127.0.0.1:7702"
#define DF_DEFAULT_NOTIFY      "tcp://127.0.0.1:7703"
#define DF_DEFAULT_DATA        "./dealflow-data"
#define DF_DEFAULT_MAX_MESSAGE (1u << 20)
#define DF_DEFAULT_MAP_MIB     65536

/* Events received over ingest wait in one batch, the events of append
 * requests in another; the writer, which records one batch while it holds
 * the next, is handed a waiting append batch first, so an acknowledged
 * append waits for the ingest commit under way and its own. While appends come, ingest
 * batches are kept to what the writer commits in about
 * DF_SHORT_COMMIT_MS (measured, loop.c); otherwise they may grow to
 * DF_INGEST_LIMIT events, where the cost of each commit's fsync vanishes.
 * Past its limits, ingest is not read until the writer catches up (ZeroMQ
 * then holds producers back). The api may collect more, so that reads are
 * still answered while appends wait. */
#define DF_INGEST_LIMIT        100000
#define DF_INGEST_BYTES_LIMIT  (16u << 20)
#define DF_SHORT_COMMIT_MS     5
#define DF_APPENDS_RECENT_MS   1000
#define DF_APPENDS_LIMIT       400000
#define DF_APPENDS_BYTES_LIMIT (64u << 20)
/* Messages taken from one socket in one turn of the loop. */
#define DF_TURN_MESSAGES 4096

typedef struct df_options {
    const char *ingest;
    const char *api;
    const char *notify;
    const char *data;
    size_t max_message;
    size_t map_mib;
    int64_t max_future;    /* ms an event's `at` may be ahead of its arrival */
    const char *curve_key; /* the server's secret key file; NULL: no keys */
    const char *clients;   /* the clients file (auth.h) */
    bool insecure;         /* a non-loopback bind without keys is allowed */
} df_options;

/* What the read operations keep between requests (read_state.h): the request
 * being read, the pipelines as last read, room for values too large for
 * the stack. The loop thread's own, like everything else here. */
typedef struct df_read_state df_read_state;

/* Reads that wait, in arrival order, for the flush they need (api.c). */
typedef struct df_waiting_reads {
    struct df_waiting_read *first, *last;
    size_t count, bytes;
} df_waiting_reads;

typedef struct df_daemon {
    df_options opt;
    uv_loop_t *loop;
    void *zmq;
    void *ingest;
    void *api;
    void *notify;
    df_auth *auth;       /* NULL without keys: everyone may do everything */
    char secret_key[41]; /* Z85, with auth */
    df_store *store;
    df_writer *writer;
    df_batch *filling; /* events received over ingest, for the next ingest commit */
    df_batch *appends; /* events of append requests, committed ahead of ingest */
    df_batch *spare;
    bool appends_went_last;  /* the last batch handed to the writer held appends */
    size_t ingest_limit;     /* events the filling batch may take now */
    size_t short_ingest;     /* events the writer commits in about DF_SHORT_COMMIT_MS */
    int64_t appends_seen_ms; /* when the api last took an append */
    df_read_state *read_state;
    df_waiting_reads waiting;
    df_descriptor_watch descriptors;
    /* reply bytes handed to ZeroMQ and not yet written out (its I/O thread
     * frees them, hence atomic) */
    atomic_size_t unsent_reply_bytes;
    int64_t started_ms;
    uint64_t notifications;
    uint64_t stale_notifications;
    df_histogram append_latency; /* acknowledged appends, from request to reply (api.c) */
    uint64_t ticks;
    bool draining;    /* a signal came: finish what was received, then exit */
    bool ingest_done; /* draining, and ingest is empty (or took too long) */
    int64_t drain_deadline;
    int64_t drain_started_ms;
    df_rejections rejections; /* refused events not yet logged */
    uint64_t watchdog_usec;   /* the service manager's WatchdogSec=, 0: none (readiness.h) */
    bool told_full;           /* the service manager's status says that writes stopped */

    uv_poll_t ingest_poll, api_poll;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_idle_t idle;
    uv_async_t writer_done;
    uv_poll_t zap_poll; /* started only with keys */
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t housekeeping;
} df_daemon;

static inline bool df_batch_has_room(const df_batch *b, size_t events, size_t bytes)
{
    return b->count < events && b->arena_len + b->request_bytes < bytes;
}

/* Whether ingest may add to the filling batch. */
static inline bool df_ingest_has_room(const df_daemon *d)
{
    return df_batch_has_room(d->filling, d->ingest_limit, DF_INGEST_BYTES_LIMIT);
}

/* Whether the api may add appends to its batch. */
static inline bool df_appends_have_room(const df_daemon *d)
{
    return df_batch_has_room(d->appends, DF_APPENDS_LIMIT, DF_APPENDS_BYTES_LIMIT);
}

#endif
