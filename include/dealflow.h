/* dealflow.h: the public C interface of dealflow, an event store for sales pipelines:
 * error codes shared with the wire format, and libdealflow, the client library.
 *
 * Everything public is prefixed df_. Functions that can fail return 0 or a
 * positive count on success and a negative df_error_code on failure, with a
 * message in a df_error the caller passes (which may be NULL). No function
 * aborts the caller or exits. */
#ifndef DEALFLOW_H
#define DEALFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What libdealflow exports. It is built with hidden visibility, so that the
 * shared library exports these functions and nothing else. */
#if defined(DF_BUILDING_LIBRARY) && defined(__GNUC__)
#define DF_EXTERN extern __attribute__((visibility("default")))
#else
#define DF_EXTERN extern
#endif

/* Returns the version of the library, "MAJOR.MINOR.PATCH", the same as
 * dealflowd's. */
DF_EXTERN const char *df_version(void);

/* Error codes. Each but DF_EUNREACHABLE has a wire name (df_error_name)
 * that the api sends as `error` in a failed reply; see proto/PROTOCOL.md. */
typedef enum df_error_code {
    DF_OK = 0,
    DF_EBAD_REQUEST = -1,      /* bad_request */
    DF_EUNKNOWN_OP = -2,       /* unknown_op */
    DF_ENOT_FOUND = -3,        /* not_found */
    DF_ECONFLICT = -4,         /* conflict */
    DF_EUNKNOWN_STAGE = -5,    /* unknown_stage */
    DF_EUNKNOWN_PIPELINE = -6, /* unknown_pipeline */
    DF_ETOO_LARGE = -7,        /* too_large */
    DF_EFORBIDDEN = -8,        /* forbidden */
    DF_EUNAVAILABLE = -9,      /* unavailable */
    DF_EINTERNAL = -10,        /* internal */
    /* Never sent by the daemon: libdealflow's own "no reply came at all"
     * (the daemon is down or unreachable), so that callers can tell it from
     * the daemon's `unavailable`. */
    DF_EUNREACHABLE = -11, /* unreachable */
    DF_ECORRUPT = -12,     /* corrupt: a stored event does not match its digest */
} df_error_code;

#define DF_MESSAGE_MAX 200 /* error messages, bytes including NUL */

/* A failure: a negative df_error_code and a message a person can act on. */
typedef struct df_error {
    int code;
    char message[DF_MESSAGE_MAX];
} df_error;

/* Returns the wire name of an error code ("bad_request", ...; "unreachable"
 * for DF_EUNREACHABLE), "internal" for a code it does not know. */
DF_EXTERN const char *df_error_name(int code);

/* Returns the error code for a wire name, DF_EINTERNAL for a name it does
 * not know (and for "unreachable", which no daemon sends). */
DF_EXTERN int df_error_from_name(const char *name, unsigned long len);

/* ---- libdealflow: talking to a daemon ----
 *
 * Requests, events and replies are msgpack maps as proto/PROTOCOL.md
 * describes them; the library checks what it receives before it unpacks it.
 * A df_client is used by one thread at a time. */

#define DF_DEFAULT_INGEST_ENDPOINT "tcp://127.0.0.1:7701"
#define DF_DEFAULT_API_ENDPOINT    "tcp://127.0.0.1:7702"
#define DF_DEFAULT_NOTIFY_ENDPOINT "tcp://127.0.0.1:7703"

typedef struct df_client df_client;

typedef struct df_client_options {
    const char *api;    /* NULL: $DEALFLOW_API, else DF_DEFAULT_API_ENDPOINT */
    const char *ingest; /* NULL: $DEALFLOW_INGEST, else DF_DEFAULT_INGEST_ENDPOINT */
    const char *notify; /* NULL: $DEALFLOW_NOTIFY, else DF_DEFAULT_NOTIFY_ENDPOINT */
    int timeout_ms;     /* how long one attempt of a request waits; 0: 3000 */
    int attempts;       /* attempts of a request before DF_EUNREACHABLE; 0: 5 */
    /* CURVE keys. Fields are only ever added at the end, so a caller that
     * zero-initializes the struct ({0} or designated
     * initializers) keeps its meaning. Both or neither: with both, every socket the
     * client opens is a CURVE client of that server with this key pair; a
     * daemon that lists the public key in its clients file admits it. An
     * empty string is none, also when the environment names one. */
    const char *server_key; /* the daemon's public key, Z85 (40 characters), or a file holding it
                               on its first line; NULL: $DEALFLOW_SERVER_KEY */
    const char *key_file;   /* a file with this client's secret key (Z85) on its first line, as
                               `dealflow keygen` writes it, readable by its owner only; its public
                               key is derived from it; NULL: $DEALFLOW_KEY_FILE */
} df_client_options;

/* Bytes the library allocated and the caller owns. */
typedef struct df_bytes {
    char *data;
    size_t len;
} df_bytes;

DF_EXTERN void df_bytes_free(df_bytes *b);

/* Opens a client (opt may be NULL). Nothing is connected until first used,
 * so this fails only on bad options or lack of memory: DF_EBAD_REQUEST for a
 * malformed endpoint or key, a key file that cannot be read or that others
 * may read, or only one of server_key and key_file. */
DF_EXTERN int df_client_open(df_client **out, const df_client_options *opt, df_error *err);
DF_EXTERN void df_client_close(df_client *c);

/* Sends one api request (a msgpack map) and waits for its reply. When an
 * attempt gets no reply in timeout_ms the socket is closed, opened again and
 * the request sent again (the zguide's Lazy Pirate); every op may be retried,
 * since `append` ids make a retry a duplicate. Returns 0 with *reply the
 * reply map when it says ok: true; the reply's error code and message when it
 * says ok: false (*reply is then set too); DF_EUNREACHABLE when no attempt
 * got a reply. reply may be NULL. */
DF_EXTERN int df_request(df_client *c, const void *request, size_t len, df_bytes *reply,
                         df_error *err);

/* What became of one appended event. */
typedef struct df_append_result {
    uint64_t seq; /* its seq, or the original's for a duplicate; 0 when refused */
    bool dup;     /* it was recorded before, by an earlier call or attempt */
    int error;    /* 0, or why it was refused (the daemon's code) */
    char message[DF_MESSAGE_MAX];
} df_append_result;

/* Appends events (a msgpack array of 1..10 000 event maps) over `append` and
 * returns once the daemon says they are on disk, retrying as df_request
 * does. results (count entries, one per event) say what became of each.
 * Returns 0 when the daemon answered for every event (some may still be
 * refused: see results), or a negative code when the batch as a whole was
 * not taken. */
DF_EXTERN int df_append(df_client *c, const void *events, size_t len, df_append_result *results,
                        size_t count, df_error *err);

/* Sends one frame (an event map or an array of them) over ingest, fire and
 * forget. Frames still queued when the client closes get up to two seconds
 * to leave. */
DF_EXTERN int df_publish(df_client *c, const void *frame, size_t len, df_error *err);

/* Single-reply reads. Each returns as df_request does, with *reply the
 * daemon's reply map (msgpack). An optional time is a pointer to it, NULL
 * when not given (the daemon's clock). */
DF_EXTERN int df_get_deal(df_client *c, const char *deal, const int64_t *now, const int64_t *as_of,
                          df_bytes *reply, df_error *err);
/* pipeline: NULL for `default`. */
DF_EXTERN int df_get_board(df_client *c, const char *pipeline, const int64_t *now, df_bytes *reply,
                           df_error *err);
/* The defined pipelines with their stages (`pipelines`); pipeline: NULL
 * for all of them, else that one alone (DF_EUNKNOWN_PIPELINE when it is not
 * defined). */
DF_EXTERN int df_get_pipelines(df_client *c, const char *pipeline, df_bytes *reply, df_error *err);
typedef struct df_metrics_request {
    const char *pipeline; /* NULL: `default` */
    const char *owner;    /* NULL: every owner */
    const int64_t *now;
    const int64_t *from, *to; /* the window closed deals count in, [from, to) */
} df_metrics_request;
/* q may be NULL: every deal of `default`. */
DF_EXTERN int df_get_metrics(df_client *c, const df_metrics_request *q, df_bytes *reply,
                             df_error *err);
/* The figures ops, `board`, `metrics`, `forecast` and `calibration`, with
 * every key they take. size is sizeof(df_figures_request) as the caller was
 * built: fields are only ever added at the end, and those past size are not
 * read, so a program built against an older dealflow.h keeps working. Each
 * field NULL leaves its key out (the daemon's default); which keys an op
 * takes is the daemon's to judge (proto/PROTOCOL.md). */
typedef struct df_figures_request {
    size_t size;                          /* sizeof(df_figures_request) */
    const char *pipeline;                 /* NULL: `default` */
    const char *owner, *product, *source; /* at most one: the deals with that value */
    const int64_t *now;
    const int64_t *from, *to; /* the window, [from, to) */
    const int64_t *as_of;     /* the figures as they stood then: refused for now (bad_request) */
    const char *by;           /* `week`, `month` or `quarter` */
} df_figures_request;
/* Sends op (one of "board", "metrics", "forecast", "calibration") with the
 * keys of q (NULL: none); returns as df_request does. DF_EBAD_REQUEST,
 * nothing sent, for another op or a size smaller than the first field's end. */
DF_EXTERN int df_get_figures(df_client *c, const char *op, const df_figures_request *q,
                             df_bytes *reply, df_error *err);
DF_EXTERN int df_get_stats(df_client *c, df_bytes *reply, df_error *err);
/* Asks whether the daemon answers (`ping`): the reply holds its version and
 * the last recorded seq. */
DF_EXTERN int df_ping(df_client *c, df_bytes *reply, df_error *err);

/* Removes personal values from every recorded event of a deal (`redact`):
 * the fields named (1..64 of `name`, `owner`, `actor`, `note` or keys of the
 * sender's own; an `owner` becomes its pseudonym, `owner-` and 16 hex
 * digits), for the reason given, recorded as a `redaction` event. Returns 0
 * once it is on disk, with *seq the redaction's seq and *redacted how many
 * events it changed (either pointer may be NULL; both 0 after a failure);
 * else as df_request does: DF_EBAD_REQUEST for a field that may not be
 * redacted, DF_ENOT_FOUND for a deal with no event, DF_EFORBIDDEN when the
 * daemon has client keys and this client's is not an admin's. */
DF_EXTERN int df_redact(df_client *c, const char *deal, const char *const *fields, size_t nfields,
                        const char *reason, uint64_t *seq, uint64_t *redacted, df_error *err);

/* Iterators over paged replies: `list` (every page), `history`, `replay`,
 * `rejected`. */
typedef struct df_iter df_iter;

/* filters: a msgpack map of list filters (pipeline, stage, owner, status,
 * stale, idle_days, now), or NULL for every deal. */
DF_EXTERN int df_list_open(df_client *c, const void *filters, size_t len, df_iter **out,
                           df_error *err);
/* list filters as fields, for callers that do not pack msgpack: each one
 * NULL (false for stale) filters nothing; all of them: every deal. */
typedef struct df_list_filters {
    const char *pipeline;
    const char *stage;
    const char *owner;
    const char *status; /* open, won or lost */
    bool stale;         /* only the deals that are stale */
    const uint64_t *idle_days;
    const int64_t *now;
} df_list_filters;
/* As df_list_open with these filters (f NULL: every deal). */
DF_EXTERN int df_list_open_filters(df_client *c, const df_list_filters *f, df_iter **out,
                                   df_error *err);
/* Every list filter, growing as df_figures_request does: size is
 * sizeof(df_list_query) as the caller was built, fields past it are not read;
 * each NULL (false for stale) filters nothing. */
typedef struct df_list_query {
    size_t size; /* sizeof(df_list_query) */
    const char *pipeline;
    const char *stage;
    const char *owner;
    const char *product;
    const char *source;
    const char *status; /* open, won or lost */
    bool stale;         /* only the deals that are stale */
    const uint64_t *idle_days;
    const int64_t *now;
} df_list_query;
/* As df_list_open with these filters (q NULL: every deal); DF_EBAD_REQUEST
 * for a size smaller than the first field's end. */
DF_EXTERN int df_list_open_query(df_client *c, const df_list_query *q, df_iter **out,
                                 df_error *err);
/* The deal's recorded events after seq `after`. */
DF_EXTERN int df_history_open(df_client *c, const char *deal, uint64_t after, df_iter **out,
                              df_error *err);
/* Every recorded event after seq `after`. */
DF_EXTERN int df_replay_open(df_client *c, uint64_t after, df_iter **out, df_error *err);
/* What ingest could not record, items with an id after `after`. */
DF_EXTERN int df_rejected_open(df_client *c, uint64_t after, df_iter **out, df_error *err);
/* Sets how many items one request asks for: 1..10 000, default 1000. Nothing
 * is sent before the first df_iter_next, so errors of the request (an
 * unknown deal, bad filters) come from there. An iterator uses its client,
 * which must outlive it; `limit` and `cursor` in list filters are ignored. */
DF_EXTERN int df_iter_set_page_size(df_iter *it, uint32_t n, df_error *err);
/* Gives the next item (a deal object, a recorded event or a rejected item,
 * as msgpack bytes valid until the next call). Returns 1 with an item, 0 at the end, or a
 * negative code; after a failure the next call tries the same page again. */
DF_EXTERN int df_iter_next(df_iter *it, const char **item, size_t *len, df_error *err);
DF_EXTERN void df_iter_free(df_iter *it);

/* Notifications, with gap repair: `deal.moved` notifications carry `seq` and
 * `prev`; when prev shows that one was missed, the missing ones are fetched
 * with the api's `moves` op and delivered first, so every move arrives
 * exactly once and in seq order (the zguide's Clone pattern). */
typedef struct df_subscription df_subscription;

typedef struct df_notification {
    const char *topic; /* NUL-terminated; valid until the next call */
    const char *body;  /* the msgpack map */
    size_t body_len;
    uint64_t seq;  /* deal.moved: its seq; 0 for other topics */
    bool repaired; /* fetched with `moves` after a gap, not received live */
} df_notification;

/* Subscribes to the topics that start with prefix ("deal.moved.",
 * "deal.stale.", "deal." or "" for all). With from_seq > 0, deal.moved
 * notifications with seq > from_seq are delivered first from `moves`; with 0,
 * delivery starts with what is published from now on: when the prefix lets
 * deal.moved through, df_subscribe asks the daemon (`moves`) where its moves
 * end, so it fails as a request does when the daemon does not answer. A
 * subscription uses its client for repairs; the client must outlive it. */
DF_EXTERN int df_subscribe(df_client *c, const char *prefix, uint64_t from_seq,
                           df_subscription **out, df_error *err);
/* df_subscribe that always catches up first: every deal.moved with
 * seq > after_seq is delivered from `moves` (marked repaired), after_seq 0
 * included, so 0 replays every move from the first; then live ones. */
DF_EXTERN int df_subscribe_after(df_client *c, const char *prefix, uint64_t after_seq,
                                 df_subscription **out, df_error *err);
/* Waits up to timeout_ms (-1: forever) for the next notification. Returns 1
 * with one in *n, 0 when none came in time, or a negative code (a repair
 * whose `moves` request failed; the next call resumes it). A repair's
 * requests take the client's timeout, beyond timeout_ms. A gap is noticed
 * when the next deal.moved arrives. */
DF_EXTERN int df_subscription_next(df_subscription *s, int timeout_ms, df_notification *n,
                                   df_error *err);
/* The callback style: calls each(ctx, n) for every notification, in order,
 * until each returns non-zero (returned then) or a call of
 * df_subscription_next fails (its negative code is returned; call again to
 * go on, nothing is skipped). */
typedef int (*df_notification_fn)(void *ctx, const df_notification *n);
DF_EXTERN int df_subscription_run(df_subscription *s, df_notification_fn each, void *ctx,
                                  df_error *err);
/* The seq of the last deal.moved delivered (or skipped as not matching the
 * prefix): pass it as from_seq to resume. */
DF_EXTERN uint64_t df_subscription_last_seq(const df_subscription *s);
DF_EXTERN void df_subscription_close(df_subscription *s);

#ifdef __cplusplus
}
#endif

#endif
