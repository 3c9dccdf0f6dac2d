/* event.h: events as the wire carries them: decoded and validated against
 * the contract, and the recorded form the log keeps. */
#ifndef DF_EVENT_H
#define DF_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "dealflow.h"
#include "fields.h"

#define DF_DAY_MS 86400000LL

/* Limits of the wire format (proto/PROTOCOL.md documents them). */
/* The ids of the redaction events the daemon records start so. */
#define DF_REDACTION_ID_PREFIX "redaction/"
#define DF_MAX_ID              128   /* event id and deal id, bytes */
#define DF_MAX_NAME            128   /* pipeline, stage and owner names, bytes */
#define DF_MAX_TEXT            255   /* deal name and product, bytes */
#define DF_MAX_KIND            64    /* activity kind, bytes */
#define DF_MAX_STAGES          64    /* stages of one pipeline */
#define DF_MAX_BATCH           10000 /* events in one append or ingest frame */
/* A sent amount's magnitude: beyond it a double no longer holds every
 * integer, and it keeps the aggregate sums far from overflow (metrics.h). */
#define DF_AMOUNT_MAX 9007199254740992LL /* 2^53 */

/* A value an event may set, leave alone, or clear with nil. */
typedef enum df_presence { DF_ABSENT = 0, DF_NIL, DF_SET } df_presence;

typedef enum df_event_type {
    DF_EV_STAGE = 1,
    DF_EV_ACTIVITY,
    DF_EV_UPDATE,
    DF_EV_PIPELINE,
    /* recorded by the daemon only (a sent event of this type is refused):
     * the personal values of its deal's events were removed; it folds into
     * nothing */
    DF_EV_REDACTION,
} df_event_type;

typedef enum df_outcome { DF_OPEN = 0, DF_WON, DF_LOST } df_outcome;

/* Returns "open", "won" or "lost". */
const char *df_outcome_name(int outcome);

/* One stage of a `pipeline` event. */
typedef struct df_stage_spec {
    df_str name;
    int probability; /* 0..100 */
    int rot_days;    /* -1 when not given */
    int outcome;     /* df_outcome */
} df_stage_spec;

/* A decoded event. Strings point into the frame it was decoded from. */
typedef struct df_event {
    df_event_type type;
    df_str id;
    df_str deal;     /* len 0 for pipeline events */
    df_str pipeline; /* len 0 when not given */
    bool has_at;
    int64_t at;
    bool has_expect;
    uint64_t expect;

    df_str stage;  /* stage */
    df_str reason; /* stage, optional */
    df_str kind;   /* activity */
    df_str actor;  /* activity, optional */
    df_str note;   /* activity, optional */

    /* stage and update events */
    df_presence amount_set;
    df_num amount;
    df_presence owner_set;
    df_str owner;
    df_presence name_set;
    df_str name;
    df_presence product_set;
    df_str product;
    df_presence close_date_set;
    int64_t close_date;
    df_presence source_set; /* stage and update events: where the deal came from */
    df_str source;

    /* pipeline events */
    int nstages;
    df_stage_spec stages[DF_MAX_STAGES];

    /* set when recorded */
    uint64_t seq;
    int64_t recv;
} df_event;

/* Decodes and validates one event map (checked bytes, see df_msgpack_check)
 * against the contract: required keys, types, lengths, reserved keys.
 * Returns 0, or DF_EBAD_REQUEST with a message naming the key at fault. */
int df_event_decode(const msgpack_object *map, df_event *ev, df_error *err);

/* Whether an amount is within DF_AMOUNT_MAX (df_event_decode refuses a sent
 * amount that is not; a recorded one is read as it is). */
bool df_amount_in_bound(df_num amount);

/* Whether key[0..len) is one of the keys the contract gives a meaning
 * (`id`, `type`, `deal`, `seq`, `owner`, ...), as opposed to a sender's own. */
bool df_event_key_known(const char *key, size_t len);

/* Decodes an event as the log records it: the sender's map plus `seq`,
 * `recv` and `at`, which set ev->seq, ev->recv and ev->at, and `by` when
 * it was sent with a key. A sent event carrying `by` is refused. */
int df_recorded_decode(const msgpack_object *map, df_event *ev, df_error *err);

/* Appends to out the recorded form of the event map raw[0..len): the
 * sender's keys verbatim except `expect`, then `seq`, `recv`, and `at` =
 * recv when the sender gave no `at`. */
int df_event_record(const char *raw, size_t len, uint64_t seq, int64_t recv, bool add_at,
                    msgpack_sbuffer *out);
/* The same, with `by` = the sender's key name after `recv` when by.len > 0. */
int df_event_record_by(const char *raw, size_t len, uint64_t seq, int64_t recv, bool add_at,
                       df_str by, msgpack_sbuffer *out);

#endif
