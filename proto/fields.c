/* fields.c: values of unpacked msgpack: strings (compared, checked as UTF-8,
 * quoted printable) and numbers, fields of request maps, duplicate keys, and
 * packing replies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dealflow.h"
#include "fields.h"

bool df_str_eq(df_str s, const char *cstr)
{
    size_t len = strlen(cstr);
    return s.len == len && (len == 0 || memcmp(s.ptr, cstr, len) == 0);
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

bool df_object_int(const msgpack_object *o, int64_t *out)
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

/* Sorting keeps a map of many keys at n log n: pairwise comparison of
 * 100 000 keys would not be. */
int df_map_duplicate_key(const msgpack_object_kv *kv, uint32_t n, const msgpack_object **dup)
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
    if (!df_object_int(o, out)) {
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
