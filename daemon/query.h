/* query.h: the api's requests, from their bytes to their replies: reading a
 * request, and the read operations (ping, stats, deal, history, list, board,
 * replay, rejected, moves, metrics), each answered from one LMDB read
 * transaction. An `append` and a `redact` are recognised here (a redact
 * checked) and taken by the api to the writer. */
#ifndef DF_QUERY_H
#define DF_QUERY_H

#include "daemon.h"

typedef struct df_read_op df_read_op;

/* A request read from its bytes. */
typedef struct df_parsed_request {
    msgpack_object map; /* in the read state's zone: valid until the next request is read */
    df_str op;
    const df_read_op *read; /* NULL for an append or a redact */
    unsigned roles;         /* the roles that may make it (auth.h) */
    bool redact;            /* a redact (redact.h), for the writer like an append */
} df_parsed_request;

/* Reads one request's bytes: a msgpack map with a known `op`, within
 * d->opt.max_message. Returns 0, or an error code with err set (the reply
 * is then that error). */
int df_request_read(df_daemon *d, const char *body, size_t len, df_parsed_request *req,
                    df_error *err);

/* True for reads answered from the store's indexes (history, list, board,
 * metrics, deal with as_of): they must wait until the derived state that
 * the writer holds in memory has been flushed. */
bool df_request_needs_flush(const df_parsed_request *req);

/* Packs the whole reply (ok or error) to a read request (req->read set). */
void df_request_answer(df_daemon *d, const df_parsed_request *req, msgpack_packer *pk);

typedef enum df_handled {
    DF_HANDLED_ANSWERED, /* the reply is in pk */
    DF_HANDLED_APPEND,   /* an append or a redact, for the writer: nothing packed */
} df_handled;

/* The request handler without sockets, for tests and fuzzing: takes the
 * bytes of one request as received (anything at all) and packs the reply
 * the api would send, without waiting for a flush. d needs opt.max_message,
 * a store and a read state (read_state.h); it may lack sockets, a loop, a
 * writer and a filling batch: without a writer the writer's counters read
 * 0 and `deal` looks in the store only. An append needs the writer and is
 * not taken here (DF_HANDLED_APPEND). Runs on the thread that owns d, like
 * every read: the store's read transaction belongs to that thread. */
df_handled df_request_handle(df_daemon *d, const char *body, size_t len, msgpack_packer *pk);

#endif
