/* json.c: JSON <-> msgpack for the dealflow command (jansson), and small readers of msgpack
 * replies. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"

void json_to_msgpack(msgpack_packer *pk, const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, (uint32_t)json_object_size(value));
        const char *key;
        json_t *item;
        /* jansson keeps insertion order, so the sender's key order survives. */
        json_object_foreach((json_t *)value, key, item)
        {
            msgpack_pack_str_with_body(pk, key, strlen(key));
            json_to_msgpack(pk, item);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(value);
        msgpack_pack_array(pk, (uint32_t)n);
        for (size_t i = 0; i < n; i++)
            json_to_msgpack(pk, json_array_get(value, i));
        break;
    }
    case JSON_STRING:
        msgpack_pack_str_with_body(pk, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, (int64_t)json_integer_value(value));
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(value));
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        break;
    }
}

char *base64_encode(const char *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    const unsigned char *in = (const unsigned char *)data;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* Length of the well-formed UTF-8 sequence at s, or 0 when there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    uint32_t min, cp;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2, min = 0x80, cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, min = 0x800, cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, min = 0x10000, cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A JSON string of bytes that should be UTF-8; bad bytes become U+FFFD. */
static json_t *json_text(const char *ptr, size_t len)
{
    json_t *s = json_stringn(ptr, len);
    if (s)
        return s;
    char *fixed = malloc(len * 3 + 1);
    if (!fixed)
        return NULL;
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)ptr;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(u + i, len - i);
        if (n == 0 || (n == 1 && u[i] == 0)) {
            if (n == 0) {
                memcpy(fixed + o, "\xef\xbf\xbd", 3);
                o += 3;
            } else {
                fixed[o++] = '\0';
            }
            i++;
        } else {
            memcpy(fixed + o, u + i, n);
            o += n;
            i += n;
        }
    }
    s = json_stringn(fixed, o);
    free(fixed);
    return s;
}

json_t *json_from_msgpack(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX) {
            char buf[32];
            snprintf(buf, sizeof buf, "%" PRIu64, o->via.u64);
            return json_string(buf);
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
    case MSGPACK_OBJECT_STR:
        return json_text(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT: {
        const char *ptr = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.ptr : o->via.ext.ptr;
        size_t len = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.size : o->via.ext.size;
        char *b64 = base64_encode(ptr, len);
        json_t *s = b64 ? json_string(b64) : NULL;
        free(b64);
        return s;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *item = json_from_msgpack(&o->via.array.ptr[i]);
            if (!item || json_array_append_new(a, item) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            json_t *kj;
            if (k->type == MSGPACK_OBJECT_STR) {
                kj = json_text(k->via.str.ptr, k->via.str.size);
            } else {
                json_t *other = json_from_msgpack(k);
                char *dumped = other ? json_dumps(other, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
                json_decref(other);
                kj = dumped ? json_string(dumped) : NULL;
                free(dumped);
            }
            json_t *v = kj ? json_from_msgpack(&o->via.map.ptr[i].val) : NULL;
            int rc =
                v ? json_object_setn_new(m, json_string_value(kj), json_string_length(kj), v) : -1;
            json_decref(kj);
            if (rc != 0) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    }
    return json_null();
}

bool json_print_value(FILE *out, json_t *value)
{
    if (!value)
        return false;
    char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!text)
        return false;
    fputs(text, out);
    fputc('\n', out);
    free(text);
    return true;
}

bool json_print_line(FILE *out, const msgpack_object *o)
{
    json_t *value = json_from_msgpack(o);
    bool ok = json_print_value(out, value);
    json_decref(value);
    return ok;
}

const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

/* A str object as a NUL-terminated copy fit to print ("" for another type). */
static const char *printable(const msgpack_object *v, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (v && v->type == MSGPACK_OBJECT_STR) {
        size_t n = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
        memcpy(buf, v->via.str.ptr, n);
        buf[n] = '\0';
        /* Control bytes would let data rewrite the terminal. */
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
                buf[i] = '?';
    }
    return buf;
}

const char *mp_str(const msgpack_object *map, const char *key, char *buf, size_t cap)
{
    return printable(mp_get(map, key), buf, cap);
}

bool mp_int(const msgpack_object *map, const char *key, int64_t *out)
{
    bool bad = false;
    return df_get_int(map, key, out, &bad);
}

bool mp_num(const msgpack_object *map, const char *key, double *out)
{
    const msgpack_object *v = mp_get(map, key);
    if (!v)
        return false;
    switch (v->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)v->via.u64;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)v->via.i64;
        return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = v->via.f64;
        return true;
    default:
        return false;
    }
}

const char *mp_num_text(const msgpack_object *o, char *buf, size_t cap)
{
    if (!o) {
        snprintf(buf, cap, "-");
    } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf(buf, cap, "%" PRIu64, o->via.u64);
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        snprintf(buf, cap, "%" PRId64, o->via.i64);
    } else if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
        snprintf(buf, cap, "%.2f", o->via.f64);
    } else {
        snprintf(buf, cap, "-");
    }
    return buf;
}

int64_t mp_int_or_zero(const msgpack_object *map, const char *key)
{
    int64_t v = 0;
    mp_int(map, key, &v);
    return v;
}

double mp_num_or_zero(const msgpack_object *map, const char *key)
{
    double v = 0;
    mp_num(map, key, &v);
    return v;
}

const char *mp_key_name(const msgpack_object *key, char *buf, size_t cap)
{
    return printable(key, buf, cap);
}
