/* harness_read.c: reads values out of the daemon's replies and keeps the replies and the
 * texts read from them alive until it_release; counts the harness's own failures. */
#include "harness_read.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "harness_wire.h"

static int harness_failures;
static it_reply *kept_replies;
static msgpack_zone *text_arena;
static const msgpack_object nil_object = {.type = MSGPACK_OBJECT_NIL};

void it_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "harness: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    harness_failures++;
}

int it_failures(void)
{
    return harness_failures;
}

char *it_copy_text(const char *ptr, size_t len)
{
    if (!text_arena)
        text_arena = msgpack_zone_new(8192);
    char *out = msgpack_zone_malloc(text_arena, len + 1);
    if (!out)
        return NULL;
    memcpy(out, ptr, len);
    out[len] = '\0';
    return out;
}

/* ---- replies ---- */

it_reply *it_reply_unpack(char *buf, size_t len, const char *what)
{
    df_error err;
    if (df_msgpack_check(buf, len, &err) != 0) {
        it_fail("%s: not valid msgpack (%s), %zu bytes", what, err.message, len);
        free(buf);
        return NULL;
    }
    it_reply *r = calloc(1, sizeof *r);
    r->buf = buf;
    r->zone = msgpack_zone_new(4096);
    if (df_msgpack_unpack(buf, len, r->zone, &r->obj, &err) != 0) {
        it_fail("%s: cannot unpack (%s)", what, err.message);
        msgpack_zone_free(r->zone);
        free(buf);
        free(r);
        return NULL;
    }
    return r;
}

void it_reply_free(it_reply *r)
{
    if (!r)
        return;
    msgpack_zone_free(r->zone);
    free(r->buf);
    free(r);
}

const msgpack_object *it_reply_keep(it_reply *r)
{
    if (!r)
        return &nil_object;
    r->next = kept_replies;
    kept_replies = r;
    return &r->obj;
}

const msgpack_object *it_unpack_keep(const void *buf, size_t len)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    return it_reply_keep(it_reply_unpack(copy, len, "unpack"));
}

void it_release(void)
{
    while (kept_replies) {
        it_reply *next = kept_replies->next;
        it_reply_free(kept_replies);
        kept_replies = next;
    }
    if (text_arena) {
        msgpack_zone_free(text_arena);
        text_arena = NULL;
    }
}

const msgpack_object *it_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t len = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
            memcmp(k->via.str.ptr, key, len) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

bool it_ok(const msgpack_object *reply)
{
    return it_bool(reply, "ok") == 1;
}

const char *it_text(const msgpack_object *o)
{
    if (o && o->type == MSGPACK_OBJECT_STR)
        return it_copy_text(o->via.str.ptr, o->via.str.size);
    if (o && o->type == MSGPACK_OBJECT_BIN)
        return it_copy_text(o->via.bin.ptr, o->via.bin.size);
    return NULL;
}

const char *it_str(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = it_get(map, key);
    return o && o->type == MSGPACK_OBJECT_STR ? it_text(o) : NULL;
}

const char *it_err(const msgpack_object *reply)
{
    return it_str(reply, "error");
}

int64_t it_int(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = it_get(map, key);
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        return (int64_t)o->via.u64;
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return IT_NONE;
}

double it_num(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = it_get(map, key);
    if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32))
        return o->via.f64;
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (double)o->via.u64;
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return (double)o->via.i64;
    return NAN;
}

int it_bool(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = it_get(map, key);
    if (o && o->type == MSGPACK_OBJECT_BOOLEAN)
        return o->via.boolean ? 1 : 0;
    return -1;
}

bool it_is_nil(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = it_get(map, key);
    return o && o->type == MSGPACK_OBJECT_NIL;
}

const msgpack_object *it_at(const msgpack_object *array, uint32_t i)
{
    if (!array || array->type != MSGPACK_OBJECT_ARRAY || i >= array->via.array.size)
        return NULL;
    return &array->via.array.ptr[i];
}

long it_len(const msgpack_object *o)
{
    if (o && o->type == MSGPACK_OBJECT_ARRAY)
        return (long)o->via.array.size;
    if (o && o->type == MSGPACK_OBJECT_MAP)
        return (long)o->via.map.size;
    return -1;
}

static void pack_object(msgpack_sbuffer *sb, const msgpack_object *o)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (o)
        msgpack_pack_object(&pk, *o);
}

bool it_equal(const msgpack_object *a, const msgpack_object *b)
{
    msgpack_sbuffer sa, sb;
    pack_object(&sa, a);
    pack_object(&sb, b);
    bool same = a && b && sa.size == sb.size && memcmp(sa.data, sb.data, sa.size) == 0;
    msgpack_sbuffer_destroy(&sa);
    msgpack_sbuffer_destroy(&sb);
    return same;
}

bool it_same(const msgpack_object *o, const char *fmt, ...)
{
    msgpack_sbuffer expected;
    msgpack_sbuffer_init(&expected);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &expected, msgpack_sbuffer_write);
    va_list ap;
    va_start(ap, fmt);
    bool ok = it_vpack(&pk, fmt, ap);
    va_end(ap);
    msgpack_sbuffer actual;
    pack_object(&actual, o);
    bool same = ok && o && actual.size == expected.size &&
                memcmp(actual.data, expected.data, actual.size) == 0;
    if (!same) {
        fprintf(stderr, "  it_same: got ");
        if (o)
            msgpack_object_print(stderr, *o);
        else
            fprintf(stderr, "(absent)");
        fprintf(stderr, "\n  expected %s\n", fmt);
    }
    msgpack_sbuffer_destroy(&expected);
    msgpack_sbuffer_destroy(&actual);
    return same;
}

bool it_has_keys(const msgpack_object *map, const char *const *keys)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP) {
        fprintf(stderr, "  it_has_keys: not a map\n");
        return false;
    }
    bool ok = true;
    size_t wanted = 0;
    for (; keys[wanted]; wanted++) {
        if (!it_get(map, keys[wanted])) {
            fprintf(stderr, "  it_has_keys: missing key %s\n", keys[wanted]);
            ok = false;
        }
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        bool known = false;
        for (size_t j = 0; j < wanted && !known; j++)
            known = k->type == MSGPACK_OBJECT_STR && strlen(keys[j]) == k->via.str.size &&
                    memcmp(keys[j], k->via.str.ptr, k->via.str.size) == 0;
        if (!known) {
            fprintf(stderr, "  it_has_keys: unexpected key ");
            msgpack_object_print(stderr, *k);
            fprintf(stderr, "\n");
            ok = false;
        }
    }
    return ok;
}
