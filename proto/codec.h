/* codec.h: the wire format shared by the daemon and the client: checking
 * untrusted msgpack before it is unpacked, decoding and validating events,
 * recording them, and small helpers for reading request maps and packing
 * replies. No I/O. */
#ifndef DF_CODEC_H
#define DF_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "dealflow.h"

#define DF_DAY_MS 86400000LL

/* Limits of the wire format (proto/PROTOCOL.md documents them). */
#define DF_MAX_DEPTH  16     /* nesting of arrays and maps */
#define DF_MAX_NODES  200000 /* msgpack objects in one frame */
#define DF_MAX_ID     128    /* event id and deal id, bytes */
#define DF_MAX_NAME   128    /* pipeline, stage and owner names, bytes */
#define DF_MAX_TEXT   255    /* deal name and product, bytes */
#define DF_MAX_KIND   64     /* activity kind, bytes */
#define DF_MAX_STAGES 64     /* stages of one pipeline */
#define DF_MAX_BATCH  10000  /* events in one append or ingest frame */
/* Sets err (when not NULL) and returns code. */
int df_fail(df_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A string inside a received frame: not NUL-terminated, valid while the frame is. */
typedef struct df_str {
    const char *ptr;
    uint32_t len;
} df_str;

bool df_str_eq(df_str s, const char *cstr);

/* Copies s[0..len) into out (cap bytes, NUL-terminated, cut to fit) with
 * every byte outside printable ASCII as '?', for quoting input in messages.
 * Returns out. */
const char *df_printable(const char *s, size_t len, char *out, size_t cap);

/* True when s[0..len) is well-formed UTF-8. */
bool df_utf8_valid(const char *s, size_t len);

/* A value an event may set, leave alone, or clear with nil. */
typedef enum df_presence { DF_ABSENT = 0, DF_NIL, DF_SET } df_presence;

typedef enum df_num_kind { DF_NUM_NONE = 0, DF_NUM_INT, DF_NUM_FLOAT } df_num_kind;

/* A number as the sender wrote it: amounts are int or float. */
typedef struct df_num {
    df_num_kind kind;
    int64_t i;
    double f;
} df_num;

double df_num_value(df_num n);

typedef enum df_event_type {
    DF_EV_STAGE = 1,
    DF_EV_ACTIVITY,
    DF_EV_UPDATE,
    DF_EV_PIPELINE,
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

    /* pipeline events */
    int nstages;
    df_stage_spec stages[DF_MAX_STAGES];

    /* set when recorded */
    uint64_t seq;
    int64_t recv;
} df_event;

/* Checks that buf[0..len) holds exactly one msgpack object (nothing after
 * it) whose every declared count fits the bytes that remain, nested at most
 * DF_MAX_DEPTH deep, with at most DF_MAX_NODES objects. Map keys must be
 * strings. Only checked bytes may be given to the msgpack-c unpacker.
 * Returns 0, or DF_EBAD_REQUEST with a message. */
int df_msgpack_check(const char *buf, size_t len, df_error *err);

/* Returns the byte length of the first msgpack object in buf[0..len), or 0
 * when it is malformed or truncated. Does not allocate. */
size_t df_msgpack_skip(const char *buf, size_t len);

/* Reads the header of the array at the start of checked bytes: its element
 * count and the header's length. Returns false when it is not an array. */
bool df_msgpack_array_header(const char *buf, size_t len, uint32_t *count, size_t *header_len);

/* Finds a key of the map at the start of checked bytes and gives the span of
 * its value. Returns false when it is not a map or has no such key. */
bool df_msgpack_map_find(const char *buf, size_t len, const char *key, const char **value,
                         size_t *value_len);

/* Checks buf[0..len) as df_msgpack_check does, then unpacks it into obj;
 * the objects live in zone (which the caller clears or destroys) and strings
 * point into buf. The one way untrusted bytes reach the msgpack-c unpacker.
 * Returns 0 or DF_EBAD_REQUEST with a message. */
int df_msgpack_unpack(const char *buf, size_t len, msgpack_zone *zone, msgpack_object *obj,
                      df_error *err);

/* Decodes and validates one event map (checked bytes, see df_msgpack_check)
 * against the contract: required keys, types, lengths, reserved keys.
 * Returns 0, or DF_EBAD_REQUEST with a message naming the key at fault. */
int df_event_decode(const msgpack_object *map, df_event *ev, df_error *err);

/* Decodes an event as the log records it: the sender's map plus `seq`,
 * `recv` and `at`, which set ev->seq, ev->recv and ev->at. */
int df_recorded_decode(const msgpack_object *map, df_event *ev, df_error *err);

/* Appends to out the recorded form of the event map raw[0..len): the
 * sender's keys verbatim except `expect`, then `seq`, `recv`, and `at` =
 * recv when the sender gave no `at`. */
int df_event_record(const char *raw, size_t len, uint64_t seq, int64_t recv, bool add_at,
                    msgpack_sbuffer *out);

/* Request maps. Each getter returns NULL / false when the key is absent or
 * nil, and sets *bad when the key is present with the wrong type. */
const msgpack_object *df_map_get(const msgpack_object *map, const char *key);
bool df_get_str(const msgpack_object *map, const char *key, df_str *out, bool *bad);
bool df_get_uint(const msgpack_object *map, const char *key, uint64_t *out, bool *bad);
bool df_get_int(const msgpack_object *map, const char *key, int64_t *out, bool *bad);
bool df_get_bool(const msgpack_object *map, const char *key, bool *out, bool *bad);

/* Packing helpers for replies. */
void df_pack_cstr(msgpack_packer *pk, const char *s);
void df_pack_str(msgpack_packer *pk, const char *s, size_t len);
void df_pack_num(msgpack_packer *pk, df_num n); /* nil for DF_NUM_NONE */
/* Packs {ok: false, error: NAME, message: MESSAGE}. */
void df_pack_error(msgpack_packer *pk, int code, const char *message);

#endif
