/* reads.h: the GET routes that read the daemon (a deal, its history, a board, a pipeline's
 * figures): query parameters into the op's keys, the reply into JSON. */
#ifndef DF_GW_READS_H
#define DF_GW_READS_H

#include <stddef.h>

#include <jansson.h>

#include "dealflow.h"

/* What the gateway answers: an HTTP status and a JSON body (owned). */
typedef struct gw_answer {
    int status;
    json_t *body;
} gw_answer;

/* One query parameter, decoded. */
typedef struct gw_param {
    const char *name, *value;
} gw_param;

typedef enum gw_read_kind {
    GW_READ_DEAL,    /* GET /v1/deals/ID: `deal` with now, as_of */
    GW_READ_HISTORY, /* GET /v1/deals/ID/history: every page of `history`, bounded */
    GW_READ_BOARD,   /* GET /v1/board: `board` with pipeline, now */
    GW_READ_METRICS, /* GET /v1/metrics: `metrics` with pipeline, owner, now, from, to */
} gw_read_kind;

/* Events one history answer gives at most; `more` says there may be others. */
#define GW_HISTORY_MAX 10000

/* Answers a read through the client; deal is the deal's id for the deal
 * routes (NULL otherwise). Sets out->status and out->body. */
void gw_read(df_client *c, gw_read_kind kind, const char *deal, const gw_param *params,
             size_t nparams, gw_answer *out);

/* {"error": code, "message": ...} with status. */
void gw_answer_error(gw_answer *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The HTTP status for a daemon or library error code. */
int gw_http_status(int df_code);

#endif
