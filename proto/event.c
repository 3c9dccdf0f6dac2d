/* event.c: events as the wire carries them: decoding and validating a
 * sent or recorded event against the contract, the recorded form the log
 * keeps. */
#include <math.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "errors.h"
#include "event.h"
#include "reader.h"

const char *df_outcome_name(int outcome)
{
    switch (outcome) {
    case DF_WON:
        return "won";
    case DF_LOST:
        return "lost";
    default:
        return "open";
    }
}

enum event_key {
    K_ID,
    K_TYPE,
    K_DEAL,
    K_AT,
    K_PIPELINE,
    K_EXPECT,
    K_SEQ,
    K_RECV,
    K_STAGE,
    K_AMOUNT,
    K_OWNER,
    K_REASON,
    K_KIND,
    K_ACTOR,
    K_NOTE,
    K_NAME,
    K_PRODUCT,
    K_CLOSE_DATE,
    K_STAGES,
    K_BY,
    K_SOURCE,
    K_COUNT,
    K_UNKNOWN = -1,
};

static const char *const event_key_names[K_COUNT] = {
    "id",   "type",  "deal",    "at",         "pipeline", "expect", "seq",
    "recv", "stage", "amount",  "owner",      "reason",   "kind",   "actor",
    "note", "name",  "product", "close_date", "stages",   "by",     "source",
};

#define KEY_IS(s, lit) (memcmp((s), (lit), sizeof(lit) - 1) == 0)

/* The event key s[0..len) names, by length first. */
static int event_key(const char *s, uint32_t len)
{
    switch (len) {
    case 2:
        if (KEY_IS(s, "id"))
            return K_ID;
        if (KEY_IS(s, "at"))
            return K_AT;
        if (KEY_IS(s, "by"))
            return K_BY;
        break;
    case 3:
        if (KEY_IS(s, "seq"))
            return K_SEQ;
        break;
    case 4:
        switch (s[0]) {
        case 't':
            return KEY_IS(s, "type") ? K_TYPE : K_UNKNOWN;
        case 'd':
            return KEY_IS(s, "deal") ? K_DEAL : K_UNKNOWN;
        case 'k':
            return KEY_IS(s, "kind") ? K_KIND : K_UNKNOWN;
        case 'n':
            if (KEY_IS(s, "name"))
                return K_NAME;
            return KEY_IS(s, "note") ? K_NOTE : K_UNKNOWN;
        case 'r':
            return KEY_IS(s, "recv") ? K_RECV : K_UNKNOWN;
        default:
            break;
        }
        break;
    case 5:
        if (KEY_IS(s, "stage"))
            return K_STAGE;
        if (KEY_IS(s, "owner"))
            return K_OWNER;
        if (KEY_IS(s, "actor"))
            return K_ACTOR;
        break;
    case 6:
        switch (s[0]) {
        case 'a':
            return KEY_IS(s, "amount") ? K_AMOUNT : K_UNKNOWN;
        case 'r':
            return KEY_IS(s, "reason") ? K_REASON : K_UNKNOWN;
        case 'e':
            return KEY_IS(s, "expect") ? K_EXPECT : K_UNKNOWN;
        case 's':
            if (KEY_IS(s, "source"))
                return K_SOURCE;
            return KEY_IS(s, "stages") ? K_STAGES : K_UNKNOWN;
        default:
            break;
        }
        break;
    case 7:
        if (KEY_IS(s, "product"))
            return K_PRODUCT;
        break;
    case 8:
        if (KEY_IS(s, "pipeline"))
            return K_PIPELINE;
        break;
    case 10:
        if (KEY_IS(s, "close_date"))
            return K_CLOSE_DATE;
        break;
    default:
        break;
    }
    return K_UNKNOWN;
}

static int duplicate_key_error(const msgpack_object_kv *kv, uint32_t n, const char *where,
                               df_error *err)
{
    const msgpack_object *dup = NULL;
    char shown[48];
    int found = df_map_duplicate_key(kv, n, &dup);

    if (found < 0)
        return df_fail(err, DF_EBAD_REQUEST, "%s has too many keys", where);
    if (found > 0)
        return df_fail(err, DF_EBAD_REQUEST, "%s has the key `%s` twice", where,
                       df_printable(dup->via.str.ptr, dup->via.str.size, shown, sizeof shown));
    return 0;
}

static bool get_str(const msgpack_object *o, uint32_t min, uint32_t max, bool no_nul, df_str *out)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return false;
    uint32_t len = o->via.str.size;
    if (len < min || len > max)
        return false;
    if (no_nul && len > 0 && memchr(o->via.str.ptr, '\0', len) != NULL)
        return false;
    if (!df_utf8_valid(o->via.str.ptr, len))
        return false;
    /* an empty str may come unpacked with a NULL ptr; callers copy from it */
    out->ptr = len > 0 ? o->via.str.ptr : "";
    out->len = len;
    return true;
}

static int decode_name(const msgpack_object *o, const char *key, df_str *out, df_error *err)
{
    if (!get_str(o, 1, DF_MAX_NAME, true, out))
        return df_fail(err, DF_EBAD_REQUEST,
                       "`%s` must be a string of 1..%d bytes of UTF-8 without NUL", key,
                       DF_MAX_NAME);
    return 0;
}

static int decode_optional_str(const msgpack_object *o, const char *key, df_str *out, df_error *err)
{
    if (o != NULL && !get_str(o, 0, UINT32_MAX, false, out))
        return df_fail(err, DF_EBAD_REQUEST, "`%s` must be a string of UTF-8", key);
    return 0;
}

static int decode_amount(const msgpack_object *o, df_event *ev, df_error *err)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        ev->amount_set = DF_NIL;
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        if (!df_object_int(o, &ev->amount.i))
            break;
        ev->amount.kind = DF_NUM_INT;
        ev->amount_set = DF_SET;
        return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64))
            break;
        ev->amount.kind = DF_NUM_FLOAT;
        ev->amount.f = o->via.f64;
        ev->amount_set = DF_SET;
        return 0;
    default:
        break;
    }
    return df_fail(err, DF_EBAD_REQUEST, "`amount` must be an integer, a finite float or nil");
}

static int decode_owner(const msgpack_object *o, df_event *ev, df_error *err)
{
    if (o->type == MSGPACK_OBJECT_NIL) {
        ev->owner_set = DF_NIL;
        return 0;
    }
    if (!get_str(o, 1, DF_MAX_NAME, true, &ev->owner))
        return df_fail(err, DF_EBAD_REQUEST,
                       "`owner` must be a string of 1..%d bytes of UTF-8 without NUL, or nil",
                       DF_MAX_NAME);
    ev->owner_set = DF_SET;
    return 0;
}

/* `source` names a scope of the aggregates (metrics.h), so it follows the
 * rules of `owner`. The log kept a `source` unread before deals had one: a
 * recorded one that breaks the rules is left unread, as it was. */
static int decode_source(const msgpack_object *o, bool recorded, df_event *ev, df_error *err)
{
    if (o == NULL)
        return 0;
    if (o->type == MSGPACK_OBJECT_NIL) {
        ev->source_set = DF_NIL;
        return 0;
    }
    if (get_str(o, 1, DF_MAX_NAME, true, &ev->source)) {
        ev->source_set = DF_SET;
        return 0;
    }
    ev->source = (df_str){NULL, 0};
    if (recorded)
        return 0;
    return df_fail(err, DF_EBAD_REQUEST,
                   "`source` must be a string of 1..%d bytes of UTF-8 without NUL, or nil",
                   DF_MAX_NAME);
}

static int decode_text(const msgpack_object *o, const char *key, df_presence *set, df_str *out,
                       df_error *err)
{
    if (o->type == MSGPACK_OBJECT_NIL) {
        *set = DF_NIL;
        return 0;
    }
    if (!get_str(o, 0, DF_MAX_TEXT, false, out))
        return df_fail(err, DF_EBAD_REQUEST,
                       "`%s` must be a string of at most %d bytes of UTF-8, or nil", key,
                       DF_MAX_TEXT);
    *set = DF_SET;
    return 0;
}

static int decode_close_date(const msgpack_object *o, df_event *ev, df_error *err)
{
    if (o->type == MSGPACK_OBJECT_NIL) {
        ev->close_date_set = DF_NIL;
        return 0;
    }
    if (!df_object_int(o, &ev->close_date))
        return df_fail(err, DF_EBAD_REQUEST,
                       "`close_date` must be an integer (ms since the epoch) or nil");
    ev->close_date_set = DF_SET;
    return 0;
}

enum stage_key { S_NAME, S_PROBABILITY, S_ROT_DAYS, S_OUTCOME, S_COUNT };

static int stage_key(const char *s, uint32_t len)
{
    switch (len) {
    case 4:
        return KEY_IS(s, "name") ? S_NAME : -1;
    case 7:
        return KEY_IS(s, "outcome") ? S_OUTCOME : -1;
    case 8:
        return KEY_IS(s, "rot_days") ? S_ROT_DAYS : -1;
    case 11:
        return KEY_IS(s, "probability") ? S_PROBABILITY : -1;
    default:
        return -1;
    }
}

static const char *const stage_key_names[S_COUNT] = {"name", "probability", "rot_days", "outcome"};

static int decode_stage_spec(const msgpack_object *o, int index, df_stage_spec *spec, df_error *err)
{
    const msgpack_object *val[S_COUNT] = {NULL};
    char where[24];
    uint32_t unknown = 0;

    if (o->type != MSGPACK_OBJECT_MAP)
        return df_fail(err, DF_EBAD_REQUEST, "`stages[%d]` must be a map", index);
    const msgpack_object_kv *kv = o->via.map.ptr;
    uint32_t n = o->via.map.size;
    for (uint32_t i = 0; i < n; i++) {
        if (kv[i].key.type != MSGPACK_OBJECT_STR)
            return df_fail(err, DF_EBAD_REQUEST, "`stages[%d]` has a key that is not a string",
                           index);
        int k = stage_key(kv[i].key.via.str.ptr, kv[i].key.via.str.size);
        if (k < 0) {
            unknown++;
            continue;
        }
        if (val[k] != NULL)
            return df_fail(err, DF_EBAD_REQUEST, "`stages[%d]` has the key `%s` twice", index,
                           stage_key_names[k]);
        val[k] = &kv[i].val;
    }
    if (unknown > 1) {
        snprintf(where, sizeof where, "`stages[%d]`", index);
        int rc = duplicate_key_error(kv, n, where, err);
        if (rc != 0)
            return rc;
    }

    if (val[S_NAME] == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "`stages[%d].name` is required", index);
    if (!get_str(val[S_NAME], 1, DF_MAX_NAME, true, &spec->name))
        return df_fail(err, DF_EBAD_REQUEST,
                       "`stages[%d].name` must be a string of 1..%d bytes of UTF-8 without NUL",
                       index, DF_MAX_NAME);

    if (val[S_PROBABILITY] == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "`stages[%d].probability` is required", index);
    if (val[S_PROBABILITY]->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        val[S_PROBABILITY]->via.u64 > 100)
        return df_fail(err, DF_EBAD_REQUEST, "`stages[%d].probability` must be an integer 0..100",
                       index);
    spec->probability = (int)val[S_PROBABILITY]->via.u64;

    spec->rot_days = -1;
    if (val[S_ROT_DAYS] != NULL && val[S_ROT_DAYS]->type != MSGPACK_OBJECT_NIL) {
        if (val[S_ROT_DAYS]->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            val[S_ROT_DAYS]->via.u64 > INT32_MAX)
            return df_fail(err, DF_EBAD_REQUEST,
                           "`stages[%d].rot_days` must be an integer >= 0, or nil", index);
        spec->rot_days = (int)val[S_ROT_DAYS]->via.u64;
    }

    spec->outcome = DF_OPEN;
    if (val[S_OUTCOME] != NULL) {
        df_str outcome = {NULL, 0};
        if (!get_str(val[S_OUTCOME], 3, 4, false, &outcome))
            outcome.len = 0;
        if (df_str_eq(outcome, "won"))
            spec->outcome = DF_WON;
        else if (df_str_eq(outcome, "lost"))
            spec->outcome = DF_LOST;
        else if (!df_str_eq(outcome, "open"))
            return df_fail(err, DF_EBAD_REQUEST,
                           "`stages[%d].outcome` must be \"open\", \"won\" or \"lost\"", index);
    }
    return 0;
}

static int decode_stages(const msgpack_object *o, df_event *ev, df_error *err)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 ||
        o->via.array.size > DF_MAX_STAGES)
        return df_fail(err, DF_EBAD_REQUEST, "`stages` must be an array of 1..%d stage maps",
                       DF_MAX_STAGES);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        df_stage_spec *spec = &ev->stages[i];
        int rc = decode_stage_spec(&o->via.array.ptr[i], (int)i, spec, err);
        if (rc != 0)
            return rc;
        for (uint32_t j = 0; j < i; j++) {
            if (ev->stages[j].name.len == spec->name.len &&
                memcmp(ev->stages[j].name.ptr, spec->name.ptr, spec->name.len) == 0) {
                char shown[48];
                return df_fail(err, DF_EBAD_REQUEST,
                               "`stages[%d].name` repeats the stage `%s` of `stages[%d]`", (int)i,
                               df_printable(spec->name.ptr, spec->name.len, shown, sizeof shown),
                               (int)j);
            }
        }
        ev->nstages = (int)i + 1;
    }
    return 0;
}

/* Reads the keys that belong to the event's type; keys of other types are
 * kept in the log like any unknown key, unread. */
static int decode_by_type(const msgpack_object *const *val, bool recorded, df_event *ev,
                          df_error *err)
{
    int rc = 0;

    switch (ev->type) {
    case DF_EV_STAGE:
        if (val[K_STAGE] == NULL)
            return df_fail(err, DF_EBAD_REQUEST, "`stage` is required in a stage event");
        if ((rc = decode_name(val[K_STAGE], "stage", &ev->stage, err)) != 0)
            return rc;
        if (val[K_AMOUNT] != NULL && (rc = decode_amount(val[K_AMOUNT], ev, err)) != 0)
            return rc;
        if (val[K_OWNER] != NULL && (rc = decode_owner(val[K_OWNER], ev, err)) != 0)
            return rc;
        if ((rc = decode_source(val[K_SOURCE], recorded, ev, err)) != 0)
            return rc;
        return decode_optional_str(val[K_REASON], "reason", &ev->reason, err);
    case DF_EV_ACTIVITY:
        if (val[K_KIND] == NULL)
            return df_fail(err, DF_EBAD_REQUEST, "`kind` is required in an activity event");
        if (!get_str(val[K_KIND], 1, DF_MAX_KIND, false, &ev->kind))
            return df_fail(err, DF_EBAD_REQUEST, "`kind` must be a string of 1..%d bytes of UTF-8",
                           DF_MAX_KIND);
        if ((rc = decode_optional_str(val[K_ACTOR], "actor", &ev->actor, err)) != 0)
            return rc;
        return decode_optional_str(val[K_NOTE], "note", &ev->note, err);
    case DF_EV_UPDATE:
        if (val[K_AMOUNT] != NULL && (rc = decode_amount(val[K_AMOUNT], ev, err)) != 0)
            return rc;
        if (val[K_OWNER] != NULL && (rc = decode_owner(val[K_OWNER], ev, err)) != 0)
            return rc;
        if (val[K_NAME] != NULL &&
            (rc = decode_text(val[K_NAME], "name", &ev->name_set, &ev->name, err)) != 0)
            return rc;
        if (val[K_PRODUCT] != NULL &&
            (rc = decode_text(val[K_PRODUCT], "product", &ev->product_set, &ev->product, err)) != 0)
            return rc;
        if ((rc = decode_source(val[K_SOURCE], recorded, ev, err)) != 0)
            return rc;
        if (val[K_CLOSE_DATE] != NULL)
            return decode_close_date(val[K_CLOSE_DATE], ev, err);
        return 0;
    case DF_EV_PIPELINE:
        if (val[K_STAGES] == NULL)
            return df_fail(err, DF_EBAD_REQUEST, "`stages` is required in a pipeline event");
        return decode_stages(val[K_STAGES], ev, err);
    case DF_EV_REDACTION: /* folds into nothing: its keys are for the reader */
        return 0;
    }
    return df_fail(err, DF_EBAD_REQUEST, "unknown event type");
}

/* A sent event carries no `seq` or `recv`; a recorded one carries both and an `at`. */
static int decode_event(const msgpack_object *map, bool recorded, df_event *ev, df_error *err)
{
    const msgpack_object *val[K_COUNT] = {NULL};
    uint32_t unknown = 0;
    df_str type;
    int rc;

    /* stages past nstages are never read: the 2 KiB of them are left */
    memset(ev, 0, offsetof(df_event, stages));
    ev->seq = 0;
    ev->recv = 0;
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return df_fail(err, DF_EBAD_REQUEST, "an event must be a map");

    const msgpack_object_kv *kv = map->via.map.ptr;
    uint32_t n = map->via.map.size;
    for (uint32_t i = 0; i < n; i++) {
        if (kv[i].key.type != MSGPACK_OBJECT_STR)
            return df_fail(err, DF_EBAD_REQUEST, "event keys must be strings");
        int k = event_key(kv[i].key.via.str.ptr, kv[i].key.via.str.size);
        if (k == K_UNKNOWN) {
            unknown++;
            continue;
        }
        if (val[k] != NULL)
            return df_fail(err, DF_EBAD_REQUEST, "the event has the key `%s` twice",
                           event_key_names[k]);
        val[k] = &kv[i].val;
    }
    if (unknown > 1 && (rc = duplicate_key_error(kv, n, "the event", err)) != 0)
        return rc;
    if (recorded) {
        if (val[K_SEQ] == NULL || val[K_SEQ]->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return df_fail(err, DF_EBAD_REQUEST, "a recorded event needs `seq`, an integer >= 0");
        if (val[K_RECV] == NULL || !df_object_int(val[K_RECV], &ev->recv))
            return df_fail(err, DF_EBAD_REQUEST, "a recorded event needs `recv`, an integer");
        if (val[K_AT] == NULL)
            return df_fail(err, DF_EBAD_REQUEST, "a recorded event needs `at`");
        ev->seq = val[K_SEQ]->via.u64;
    } else if (val[K_SEQ] != NULL || val[K_RECV] != NULL || val[K_BY] != NULL) {
        return df_fail(err, DF_EBAD_REQUEST, "`%s` is reserved: the daemon sets it",
                       val[K_SEQ] != NULL    ? "seq"
                       : val[K_RECV] != NULL ? "recv"
                                             : "by");
    }
    if (val[K_BY] != NULL &&
        (val[K_BY]->type != MSGPACK_OBJECT_STR || val[K_BY]->via.str.size == 0))
        return df_fail(err, DF_EBAD_REQUEST, "`by` must be a non-empty string");

    if (val[K_ID] == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "`id` is required");
    if (!get_str(val[K_ID], 1, DF_MAX_ID, false, &ev->id))
        return df_fail(err, DF_EBAD_REQUEST, "`id` must be a string of 1..%d bytes of UTF-8",
                       DF_MAX_ID);
    /* the daemon names its redactions so: a sent id there would collide */
    if (!recorded && ev->id.len >= sizeof(DF_REDACTION_ID_PREFIX) - 1 &&
        memcmp(ev->id.ptr, DF_REDACTION_ID_PREFIX, sizeof(DF_REDACTION_ID_PREFIX) - 1) == 0)
        return df_fail(err, DF_EBAD_REQUEST, "ids starting with `%s` are the daemon's own",
                       DF_REDACTION_ID_PREFIX);

    if (val[K_TYPE] == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "`type` is required");
    if (!get_str(val[K_TYPE], 5, 9, false, &type))
        type.len = 0;
    if (df_str_eq(type, "stage"))
        ev->type = DF_EV_STAGE;
    else if (df_str_eq(type, "activity"))
        ev->type = DF_EV_ACTIVITY;
    else if (df_str_eq(type, "update"))
        ev->type = DF_EV_UPDATE;
    else if (df_str_eq(type, "pipeline"))
        ev->type = DF_EV_PIPELINE;
    else if (recorded && df_str_eq(type, "redaction"))
        ev->type = DF_EV_REDACTION;
    else
        return df_fail(err, DF_EBAD_REQUEST,
                       "`type` must be \"stage\", \"activity\", \"update\" or \"pipeline\"");

    if (ev->type != DF_EV_PIPELINE) {
        if (val[K_DEAL] == NULL)
            return df_fail(err, DF_EBAD_REQUEST, "`deal` is required");
        if (!get_str(val[K_DEAL], 1, DF_MAX_ID, false, &ev->deal))
            return df_fail(err, DF_EBAD_REQUEST, "`deal` must be a string of 1..%d bytes of UTF-8",
                           DF_MAX_ID);
    }

    if (val[K_AT] != NULL) {
        if (!df_object_int(val[K_AT], &ev->at))
            return df_fail(err, DF_EBAD_REQUEST, "`at` must be an integer (ms since the epoch)");
        ev->has_at = true;
    }

    if (val[K_EXPECT] != NULL) {
        if (val[K_EXPECT]->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return df_fail(err, DF_EBAD_REQUEST, "`expect` must be an integer >= 0");
        ev->expect = val[K_EXPECT]->via.u64;
        ev->has_expect = true;
    }

    if (val[K_PIPELINE] != NULL) {
        if ((rc = decode_name(val[K_PIPELINE], "pipeline", &ev->pipeline, err)) != 0)
            return rc;
    } else if (ev->type == DF_EV_PIPELINE) {
        return df_fail(err, DF_EBAD_REQUEST, "`pipeline` is required in a pipeline event");
    }

    if ((rc = decode_by_type(val, recorded, ev, err)) != 0)
        return rc;
    /* The log keeps what it recorded before the bound existed: only a sent
     * amount is held to it. */
    if (!recorded && ev->amount_set == DF_SET && !df_amount_in_bound(ev->amount))
        return df_fail(err, DF_EBAD_REQUEST,
                       "`amount` must be within -%lld..%lld (2^53), so that sums stay exact",
                       (long long)DF_AMOUNT_MAX, (long long)DF_AMOUNT_MAX);
    return 0;
}

bool df_amount_in_bound(df_num amount)
{
    if (amount.kind == DF_NUM_INT)
        return amount.i >= -DF_AMOUNT_MAX && amount.i <= DF_AMOUNT_MAX;
    if (amount.kind == DF_NUM_FLOAT)
        return amount.f >= -(double)DF_AMOUNT_MAX && amount.f <= (double)DF_AMOUNT_MAX;
    return true;
}

/* ---- recording ------------------------------------------------------------ */

static bool raw_key_is(const uint8_t *key, const df_msgpack_header *h, const char *lit, size_t len)
{
    return h->count == len && memcmp(key + h->size - len, lit, len) == 0;
}

int df_event_record(const char *raw, size_t len, uint64_t seq, int64_t recv, bool add_at,
                    msgpack_sbuffer *out)
{
    return df_event_record_by(raw, len, seq, recv, add_at, (df_str){NULL, 0}, out);
}

int df_event_record_by(const char *raw, size_t len, uint64_t seq, int64_t recv, bool add_at,
                       df_str by, msgpack_sbuffer *out)
{
    const uint8_t *p = (const uint8_t *)raw;
    df_msgpack_header map;
    size_t pos;
    size_t expect_start = 0, expect_end = 0;
    bool has_expect = false;

    if (out == NULL || !df_msgpack_head(raw, len, &map) || map.type != DF_MSGPACK_MAP)
        return DF_EBAD_REQUEST;
    pos = map.size;
    for (uint32_t i = 0; i < map.count; i++) {
        size_t pair_start = pos;
        df_msgpack_header key;
        size_t value_len;

        if (pos >= len || !df_msgpack_head(raw + pos, len - pos, &key) ||
            key.type != DF_MSGPACK_STR)
            return DF_EBAD_REQUEST;
        value_len = df_msgpack_skip(raw + pos + key.size, len - pos - key.size);
        if (value_len == 0)
            return DF_EBAD_REQUEST;
        if (raw_key_is(p + pos, &key, "expect", 6)) {
            if (has_expect)
                return DF_EBAD_REQUEST;
            has_expect = true;
            expect_start = pair_start;
            expect_end = pos + key.size + value_len;
        } else if (raw_key_is(p + pos, &key, "seq", 3) || raw_key_is(p + pos, &key, "recv", 4) ||
                   raw_key_is(p + pos, &key, "by", 2) ||
                   (add_at && raw_key_is(p + pos, &key, "at", 2))) {
            return DF_EBAD_REQUEST;
        }
        pos += key.size + value_len;
    }
    if (pos != len)
        return DF_EBAD_REQUEST;
    if (!has_expect)
        expect_start = expect_end = len;

    uint64_t count =
        (uint64_t)map.count - (has_expect ? 1 : 0) + 2 + (add_at ? 1 : 0) + (by.len > 0 ? 1 : 0);
    if (count > UINT32_MAX)
        return DF_EBAD_REQUEST;

    size_t size_before = out->size;
    msgpack_packer pk;
    int failed = 0;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    failed |= msgpack_pack_map(&pk, (size_t)count);
    /* the sender's pairs are contiguous: two copies skip `expect` */
    if (expect_start > map.size)
        failed |= msgpack_sbuffer_write(out, raw + map.size, expect_start - map.size);
    if (len > expect_end)
        failed |= msgpack_sbuffer_write(out, raw + expect_end, len - expect_end);
    failed |= msgpack_pack_str_with_body(&pk, "seq", 3);
    failed |= msgpack_pack_uint64(&pk, seq);
    failed |= msgpack_pack_str_with_body(&pk, "recv", 4);
    failed |= msgpack_pack_int64(&pk, recv);
    if (by.len > 0) {
        failed |= msgpack_pack_str_with_body(&pk, "by", 2);
        failed |= msgpack_pack_str_with_body(&pk, by.ptr, by.len);
    }
    if (add_at) {
        failed |= msgpack_pack_str_with_body(&pk, "at", 2);
        failed |= msgpack_pack_int64(&pk, recv);
    }
    if (failed) {
        out->size = size_before;
        return DF_EINTERNAL;
    }
    return 0;
}

bool df_event_key_known(const char *key, size_t len)
{
    return len <= UINT32_MAX && event_key(key, (uint32_t)len) != K_UNKNOWN;
}

int df_event_decode(const msgpack_object *map, df_event *ev, df_error *err)
{
    return decode_event(map, false, ev, err);
}

int df_recorded_decode(const msgpack_object *map, df_event *ev, df_error *err)
{
    return decode_event(map, true, ev, err);
}
