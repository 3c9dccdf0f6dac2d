/* codec.c: the dealflow wire format: checking untrusted msgpack before it is
 * unpacked, decoding and validating events, recording them, reading request
 * maps and packing replies. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int df_fail(df_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof err->message) {
            /* cut short: drop a last UTF-8 character that lost its tail, so
             * the message stays a valid str */
            size_t end = sizeof err->message - 1, lead = end;
            while (lead > 0 && ((uint8_t)err->message[lead - 1] & 0xc0) == 0x80)
                lead--;
            if (lead > 0) {
                uint8_t c = (uint8_t)err->message[lead - 1];
                size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
                if (lead - 1 + need > end)
                    end = lead - 1;
            }
            err->message[end] = '\0';
        }
    }
    return code;
}

bool df_str_eq(df_str s, const char *cstr)
{
    size_t len = strlen(cstr);
    return s.len == len && (len == 0 || memcmp(s.ptr, cstr, len) == 0);
}

double df_num_value(df_num n)
{
    switch (n.kind) {
    case DF_NUM_INT:
        return (double)n.i;
    case DF_NUM_FLOAT:
        return n.f;
    default:
        return 0.0;
    }
}

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

/* ---- raw msgpack ---------------------------------------------------------- */

typedef enum mp_kind { MP_SCALAR, MP_STR, MP_ARRAY, MP_MAP } mp_kind;

/* The header of one msgpack object as it sits in the bytes. */
typedef struct mp_head {
    mp_kind kind;
    size_t size;    /* header and payload; for arrays and maps the header only */
    uint32_t count; /* array elements, map pairs, or str/bin/ext payload bytes */
} mp_head;

enum { MP_OK = 0, MP_TRUNCATED = -1, MP_INVALID = -2 };

static uint32_t read_be(const uint8_t *p, int bytes)
{
    uint32_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads the header at p[0..avail), avail > 0. A payload (str, bin, ext) must
 * fit in avail; the elements of arrays and maps are not looked at. */
static int mp_read_head(const uint8_t *p, size_t avail, mp_head *h)
{
    uint8_t b = p[0];
    size_t fixed = 1;     /* bytes before the payload */
    int length_bytes = 0; /* size of the length or count field at p[1] */
    bool has_payload = false;

    h->kind = MP_SCALAR;
    h->count = 0;
    if (b <= 0x7f || b >= 0xe0) {
        h->size = 1;
        return MP_OK;
    }
    if (b <= 0x9f) {
        h->kind = b <= 0x8f ? MP_MAP : MP_ARRAY;
        h->count = b & 0x0f;
        h->size = 1;
        return MP_OK;
    }
    if (b <= 0xbf) {
        h->kind = MP_STR;
        h->count = b & 0x1f;
        if (h->count > avail - 1)
            return MP_TRUNCATED;
        h->size = 1 + (size_t)h->count;
        return MP_OK;
    }
    switch (b) {
    case 0xc0: /* nil */
    case 0xc2: /* false */
    case 0xc3: /* true */
        break;
    case 0xc1: /* never used */
        return MP_INVALID;
    case 0xc4: /* bin 8, 16, 32 */
    case 0xc5:
    case 0xc6:
        length_bytes = 1 << (b - 0xc4);
        fixed = 1 + (size_t)length_bytes;
        has_payload = true;
        break;
    case 0xc7: /* ext 8, 16, 32: length, then the type byte */
    case 0xc8:
    case 0xc9:
        length_bytes = 1 << (b - 0xc7);
        fixed = 2 + (size_t)length_bytes;
        has_payload = true;
        break;
    case 0xca: /* float 32, 64 */
        fixed = 5;
        break;
    case 0xcb:
        fixed = 9;
        break;
    case 0xcc: /* uint 8..64 */
    case 0xcd:
    case 0xce:
    case 0xcf:
        fixed = 1 + ((size_t)1 << (b - 0xcc));
        break;
    case 0xd0: /* int 8..64 */
    case 0xd1:
    case 0xd2:
    case 0xd3:
        fixed = 1 + ((size_t)1 << (b - 0xd0));
        break;
    case 0xd4: /* fixext 1..16: type byte and data */
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        fixed = 2 + ((size_t)1 << (b - 0xd4));
        break;
    case 0xd9: /* str 8, 16, 32 */
    case 0xda:
    case 0xdb:
        h->kind = MP_STR;
        length_bytes = 1 << (b - 0xd9);
        fixed = 1 + (size_t)length_bytes;
        has_payload = true;
        break;
    case 0xdc: /* array 16, 32 */
    case 0xdd:
        h->kind = MP_ARRAY;
        length_bytes = b == 0xdc ? 2 : 4;
        fixed = 1 + (size_t)length_bytes;
        break;
    default: /* 0xde, 0xdf: map 16, 32 */
        h->kind = MP_MAP;
        length_bytes = b == 0xde ? 2 : 4;
        fixed = 1 + (size_t)length_bytes;
        break;
    }
    if (avail < fixed)
        return MP_TRUNCATED;
    if (length_bytes > 0)
        h->count = read_be(p + 1, length_bytes);
    h->size = fixed;
    if (has_payload) {
        if (h->count > avail - fixed)
            return MP_TRUNCATED;
        h->size += h->count;
    }
    return MP_OK;
}

static bool mp_is_container(const mp_head *h)
{
    return h->kind == MP_ARRAY || h->kind == MP_MAP;
}

/* Objects an array or map header announces (a map pair is two). */
static uint64_t mp_children(const mp_head *h)
{
    return h->kind == MP_MAP ? 2 * (uint64_t)h->count : h->count;
}

int df_msgpack_check(const char *buf, size_t len, df_error *err)
{
    /* objects still to come in each open container; a map's even count means a key is next */
    uint64_t left[DF_MAX_DEPTH];
    bool is_map[DF_MAX_DEPTH];
    const uint8_t *p = (const uint8_t *)buf;
    size_t pos = 0;
    int depth = 0;
    uint64_t nodes = 0;
    uint64_t pending = 0; /* sum of left[]: each still needs at least one byte */

    if (buf == NULL || len == 0)
        return df_fail(err, DF_EBAD_REQUEST, "empty frame: expected one msgpack object");
    do {
        mp_head h;
        int rc;

        if (pos >= len)
            return df_fail(err, DF_EBAD_REQUEST,
                           "truncated msgpack: the frame ends inside an object");
        rc = mp_read_head(p + pos, len - pos, &h);
        if (rc == MP_INVALID)
            return df_fail(err, DF_EBAD_REQUEST, "invalid msgpack: byte 0x%02x at offset %zu",
                           p[pos], pos);
        if (rc == MP_TRUNCATED)
            return df_fail(err, DF_EBAD_REQUEST,
                           "truncated msgpack: the object at offset %zu runs past the end", pos);
        if (++nodes > DF_MAX_NODES)
            return df_fail(err, DF_EBAD_REQUEST, "more than %d msgpack objects in one frame",
                           DF_MAX_NODES);
        if (depth > 0) {
            if (is_map[depth - 1] && left[depth - 1] % 2 == 0 && h.kind != MP_STR)
                return df_fail(err, DF_EBAD_REQUEST, "map key at offset %zu is not a string", pos);
            left[depth - 1]--;
            pending--;
        }
        pos += h.size;
        if (mp_is_container(&h)) {
            uint64_t children = mp_children(&h);
            if (depth == DF_MAX_DEPTH)
                return df_fail(err, DF_EBAD_REQUEST, "msgpack nested deeper than %d levels",
                               DF_MAX_DEPTH);
            if (pending + children > len - pos)
                return df_fail(err, DF_EBAD_REQUEST,
                               "msgpack %s at offset %zu declares %" PRIu32
                               " entries, more than the bytes that remain",
                               h.kind == MP_MAP ? "map" : "array", pos - h.size, h.count);
            if (nodes + pending + children > DF_MAX_NODES)
                return df_fail(err, DF_EBAD_REQUEST, "more than %d msgpack objects in one frame",
                               DF_MAX_NODES);
            left[depth] = children;
            is_map[depth] = h.kind == MP_MAP;
            depth++;
            pending += children;
        }
        while (depth > 0 && left[depth - 1] == 0)
            depth--;
    } while (depth > 0);
    if (pos != len)
        return df_fail(err, DF_EBAD_REQUEST, "%zu bytes after the msgpack object", len - pos);
    return 0;
}

size_t df_msgpack_skip(const char *buf, size_t len)
{
    const uint8_t *p = (const uint8_t *)buf;
    size_t pos = 0;
    uint64_t pending = 1; /* objects still to walk; nesting needs no stack to skip */

    if (buf == NULL)
        return 0;
    while (pending > 0) {
        mp_head h;
        if (pos >= len || mp_read_head(p + pos, len - pos, &h) != MP_OK)
            return 0;
        pending--;
        pos += h.size;
        if (mp_is_container(&h)) {
            pending += mp_children(&h);
            if (pending > len - pos)
                return 0;
        }
    }
    return pos;
}

bool df_msgpack_array_header(const char *buf, size_t len, uint32_t *count, size_t *header_len)
{
    mp_head h;
    if (buf == NULL || len == 0 || mp_read_head((const uint8_t *)buf, len, &h) != MP_OK ||
        h.kind != MP_ARRAY)
        return false;
    *count = h.count;
    *header_len = h.size;
    return true;
}

bool df_msgpack_map_find(const char *buf, size_t len, const char *key, const char **value,
                         size_t *value_len)
{
    const uint8_t *p = (const uint8_t *)buf;
    size_t key_len = strlen(key);
    mp_head map;
    size_t pos;

    if (buf == NULL || len == 0 || mp_read_head(p, len, &map) != MP_OK || map.kind != MP_MAP)
        return false;
    pos = map.size;
    for (uint32_t i = 0; i < map.count; i++) {
        mp_head k;
        if (pos >= len || mp_read_head(p + pos, len - pos, &k) != MP_OK || k.kind != MP_STR)
            return false;
        size_t found_len = df_msgpack_skip(buf + pos + k.size, len - pos - k.size);
        if (found_len == 0)
            return false;
        if (k.count == key_len && memcmp(p + pos + k.size - key_len, key, key_len) == 0) {
            *value = buf + pos + k.size;
            *value_len = found_len;
            return true;
        }
        pos += k.size + found_len;
    }
    return false;
}

int df_msgpack_unpack(const char *buf, size_t len, msgpack_zone *zone, msgpack_object *obj,
                      df_error *err)
{
    size_t offset = 0;
    msgpack_unpack_return rc;
    int check;

    /* the unpacker allocates as headers declare: bytes go to it checked */
    check = df_msgpack_check(buf, len, err);
    if (check != 0)
        return check;
    rc = msgpack_unpack(buf, len, &offset, zone, obj);
    if (rc != MSGPACK_UNPACK_SUCCESS || offset != len)
        return df_fail(err, DF_EBAD_REQUEST, "msgpack could not be unpacked (%d)", (int)rc);
    return 0;
}

/* ---- events --------------------------------------------------------------- */

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
    K_COUNT,
    K_UNKNOWN = -1,
};

static const char *const event_key_names[K_COUNT] = {
    "id",   "type",  "deal",    "at",         "pipeline", "expect", "seq",
    "recv", "stage", "amount",  "owner",      "reason",   "kind",   "actor",
    "note", "name",  "product", "close_date", "stages",
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

/* A key as it may appear in a message: printable ASCII, other bytes as '?',
 * cut short so that the message stays readable. */
const char *df_printable(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[n] = '\0';
    return out;
}

/* msgpack-c unpacks an empty str with a NULL ptr, which memcmp must not see. */
static bool key_eq(const msgpack_object *a, const msgpack_object *b)
{
    return a->via.str.size == b->via.str.size &&
           (a->via.str.size == 0 || memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0);
}

static int compare_keys(const void *a, const void *b)
{
    const msgpack_object *x = *(const msgpack_object *const *)a;
    const msgpack_object *y = *(const msgpack_object *const *)b;
    if (x->via.str.size != y->via.str.size)
        return x->via.str.size < y->via.str.size ? -1 : 1;
    if (x->via.str.size == 0)
        return 0;
    return memcmp(x->via.str.ptr, y->via.str.ptr, x->via.str.size);
}

#define PAIRWISE_MAX 16

/* Finds a key that appears twice among the string keys of kv[0..n).
 * Returns 1 (*dup set), 0, or -1 when memory ran out. Sorting keeps a map
 * of many keys at n log n: pairwise comparison of 100 000 keys would not be. */
static int find_duplicate_key(const msgpack_object_kv *kv, uint32_t n, const msgpack_object **dup)
{
    if (n <= PAIRWISE_MAX) {
        for (uint32_t i = 1; i < n; i++) {
            for (uint32_t j = 0; j < i; j++) {
                if (key_eq(&kv[i].key, &kv[j].key)) {
                    *dup = &kv[i].key;
                    return 1;
                }
            }
        }
        return 0;
    }
    const msgpack_object **keys = malloc((size_t)n * sizeof *keys);
    int found = 0;
    if (keys == NULL)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        keys[i] = &kv[i].key;
    qsort(keys, n, sizeof *keys, compare_keys);
    for (uint32_t i = 1; i < n && !found; i++) {
        if (key_eq(keys[i], keys[i - 1])) {
            *dup = keys[i];
            found = 1;
        }
    }
    free(keys);
    return found;
}

static int duplicate_key_error(const msgpack_object_kv *kv, uint32_t n, const char *where,
                               df_error *err)
{
    const msgpack_object *dup = NULL;
    char shown[48];
    int found = find_duplicate_key(kv, n, &dup);

    if (found < 0)
        return df_fail(err, DF_EBAD_REQUEST, "%s has too many keys", where);
    if (found > 0)
        return df_fail(err, DF_EBAD_REQUEST, "%s has the key `%s` twice", where,
                       df_printable(dup->via.str.ptr, dup->via.str.size, shown, sizeof shown));
    return 0;
}

/* msgpack str is UTF-8: what the daemon sends back (deal ids, names) must
 * decode in every client, so strings it keeps are checked. */
bool df_utf8_valid(const char *s, size_t len)
{
    if (len == 0)
        return true;
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    while (p < end) {
        uint8_t c = *p;
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= n)
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* no overlong forms, no surrogates, nothing past U+10FFFF */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
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

static bool get_int64(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return true;
    }
    return false;
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
        if (!get_int64(o, &ev->amount.i))
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
    if (!get_int64(o, &ev->close_date))
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
static int decode_by_type(const msgpack_object *const *val, df_event *ev, df_error *err)
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
        if (val[K_CLOSE_DATE] != NULL)
            return decode_close_date(val[K_CLOSE_DATE], ev, err);
        return 0;
    case DF_EV_PIPELINE:
        if (val[K_STAGES] == NULL)
            return df_fail(err, DF_EBAD_REQUEST, "`stages` is required in a pipeline event");
        return decode_stages(val[K_STAGES], ev, err);
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

    memset(ev, 0, sizeof *ev);
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
        if (val[K_RECV] == NULL || !get_int64(val[K_RECV], &ev->recv))
            return df_fail(err, DF_EBAD_REQUEST, "a recorded event needs `recv`, an integer");
        if (val[K_AT] == NULL)
            return df_fail(err, DF_EBAD_REQUEST, "a recorded event needs `at`");
        ev->seq = val[K_SEQ]->via.u64;
    } else if (val[K_SEQ] != NULL || val[K_RECV] != NULL) {
        return df_fail(err, DF_EBAD_REQUEST, "`%s` is reserved: the daemon sets it",
                       val[K_SEQ] != NULL ? "seq" : "recv");
    }

    if (val[K_ID] == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "`id` is required");
    if (!get_str(val[K_ID], 1, DF_MAX_ID, false, &ev->id))
        return df_fail(err, DF_EBAD_REQUEST, "`id` must be a string of 1..%d bytes of UTF-8",
                       DF_MAX_ID);

    if (val[K_TYPE] == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "`type` is required");
    if (!get_str(val[K_TYPE], 5, 8, false, &type))
        type.len = 0;
    if (df_str_eq(type, "stage"))
        ev->type = DF_EV_STAGE;
    else if (df_str_eq(type, "activity"))
        ev->type = DF_EV_ACTIVITY;
    else if (df_str_eq(type, "update"))
        ev->type = DF_EV_UPDATE;
    else if (df_str_eq(type, "pipeline"))
        ev->type = DF_EV_PIPELINE;
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
        if (!get_int64(val[K_AT], &ev->at))
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

    return decode_by_type(val, ev, err);
}

/* ---- recording ------------------------------------------------------------ */

static bool raw_key_is(const uint8_t *key, const mp_head *h, const char *lit, size_t len)
{
    return h->count == len && memcmp(key + h->size - len, lit, len) == 0;
}

int df_event_record(const char *raw, size_t len, uint64_t seq, int64_t recv, bool add_at,
                    msgpack_sbuffer *out)
{
    const uint8_t *p = (const uint8_t *)raw;
    mp_head map;
    size_t pos;
    size_t expect_start = 0, expect_end = 0;
    bool has_expect = false;

    if (raw == NULL || out == NULL || len == 0 || mp_read_head(p, len, &map) != MP_OK ||
        map.kind != MP_MAP)
        return DF_EBAD_REQUEST;
    pos = map.size;
    for (uint32_t i = 0; i < map.count; i++) {
        size_t pair_start = pos;
        mp_head key;
        size_t value_len;

        if (pos >= len || mp_read_head(p + pos, len - pos, &key) != MP_OK || key.kind != MP_STR)
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
                   (add_at && raw_key_is(p + pos, &key, "at", 2))) {
            return DF_EBAD_REQUEST;
        }
        pos += key.size + value_len;
    }
    if (pos != len)
        return DF_EBAD_REQUEST;
    if (!has_expect)
        expect_start = expect_end = len;

    uint64_t count = (uint64_t)map.count - (has_expect ? 1 : 0) + 2 + (add_at ? 1 : 0);
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

/* ---- request maps --------------------------------------------------------- */

const msgpack_object *df_map_get(const msgpack_object *map, const char *key)
{
    if (map == NULL || key == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t len = strlen(key);
    const msgpack_object_kv *kv = map->via.map.ptr;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &kv[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
            (len == 0 || memcmp(k->via.str.ptr, key, len) == 0))
            return kv[i].val.type == MSGPACK_OBJECT_NIL ? NULL : &kv[i].val;
    }
    return NULL;
}

static void set_bad(bool *bad)
{
    if (bad != NULL)
        *bad = true;
}

bool df_get_str(const msgpack_object *map, const char *key, df_str *out, bool *bad)
{
    const msgpack_object *o = df_map_get(map, key);
    if (o == NULL)
        return false;
    if (o->type != MSGPACK_OBJECT_STR) {
        set_bad(bad);
        return false;
    }
    out->ptr = o->via.str.size > 0 ? o->via.str.ptr : "";
    out->len = o->via.str.size;
    return true;
}

bool df_get_uint(const msgpack_object *map, const char *key, uint64_t *out, bool *bad)
{
    const msgpack_object *o = df_map_get(map, key);
    if (o == NULL)
        return false;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        set_bad(bad);
        return false;
    }
    *out = o->via.u64;
    return true;
}

bool df_get_int(const msgpack_object *map, const char *key, int64_t *out, bool *bad)
{
    const msgpack_object *o = df_map_get(map, key);
    if (o == NULL)
        return false;
    if (!get_int64(o, out)) {
        set_bad(bad);
        return false;
    }
    return true;
}

bool df_get_bool(const msgpack_object *map, const char *key, bool *out, bool *bad)
{
    const msgpack_object *o = df_map_get(map, key);
    if (o == NULL)
        return false;
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        set_bad(bad);
        return false;
    }
    *out = o->via.boolean;
    return true;
}

/* ---- replies -------------------------------------------------------------- */

void df_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str_with_body(pk, len > 0 ? s : "", len);
}

void df_pack_cstr(msgpack_packer *pk, const char *s)
{
    if (s == NULL)
        s = "";
    df_pack_str(pk, s, strlen(s));
}

void df_pack_num(msgpack_packer *pk, df_num n)
{
    switch (n.kind) {
    case DF_NUM_INT:
        msgpack_pack_int64(pk, n.i);
        break;
    case DF_NUM_FLOAT:
        msgpack_pack_double(pk, n.f);
        break;
    default:
        msgpack_pack_nil(pk);
        break;
    }
}

void df_pack_error(msgpack_packer *pk, int code, const char *message)
{
    msgpack_pack_map(pk, 3);
    df_pack_cstr(pk, "ok");
    msgpack_pack_false(pk);
    df_pack_cstr(pk, "error");
    df_pack_cstr(pk, df_error_name(code));
    df_pack_cstr(pk, "message");
    df_pack_cstr(pk, message);
}

int df_event_decode(const msgpack_object *map, df_event *ev, df_error *err)
{
    return decode_event(map, false, ev, err);
}

int df_recorded_decode(const msgpack_object *map, df_event *ev, df_error *err)
{
    return decode_event(map, true, ev, err);
}
