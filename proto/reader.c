/* reader.c: reading raw, untrusted msgpack bytes without unpacking them.
 * Every length and count of the wire is read here, by read_be. */
#include <inttypes.h>
#include <string.h>

#include "errors.h"
#include "reader.h"

enum { HEAD_OK = 0, HEAD_TRUNCATED = -1, HEAD_INVALID = -2 };

static uint64_t read_be(const uint8_t *p, size_t bytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads the header at p[0..avail), avail > 0. A payload (str, bin, ext) must
 * fit in avail; the elements of arrays and maps are not looked at. */
static int read_head(const uint8_t *p, size_t avail, df_msgpack_header *h)
{
    uint8_t b = p[0];
    size_t fixed = 1;        /* bytes before the payload */
    size_t length_bytes = 0; /* size of the length or count field at p[1] */
    bool has_payload = false;

    h->count = 0;
    if (b <= 0x7f || b >= 0xe0) {
        h->type = b <= 0x7f ? DF_MSGPACK_UINT : DF_MSGPACK_INT;
        h->header_size = h->size = 1;
        return HEAD_OK;
    }
    if (b <= 0x9f) {
        h->type = b <= 0x8f ? DF_MSGPACK_MAP : DF_MSGPACK_ARRAY;
        h->count = b & 0x0f;
        h->header_size = h->size = 1;
        return HEAD_OK;
    }
    if (b <= 0xbf) {
        h->type = DF_MSGPACK_STR;
        h->count = b & 0x1f;
        if (h->count > avail - 1)
            return HEAD_TRUNCATED;
        h->header_size = 1;
        h->size = 1 + (size_t)h->count;
        return HEAD_OK;
    }
    switch (b) {
    case 0xc0:
        h->type = DF_MSGPACK_NIL;
        break;
    case 0xc1: /* never used */
        return HEAD_INVALID;
    case 0xc2: /* false, true */
    case 0xc3:
        h->type = DF_MSGPACK_BOOL;
        break;
    case 0xc4: /* bin 8, 16, 32 */
    case 0xc5:
    case 0xc6:
        h->type = DF_MSGPACK_BIN;
        length_bytes = (size_t)1 << (b - 0xc4);
        fixed = 1 + length_bytes;
        has_payload = true;
        break;
    case 0xc7: /* ext 8, 16, 32: length, then the type byte */
    case 0xc8:
    case 0xc9:
        h->type = DF_MSGPACK_EXT;
        length_bytes = (size_t)1 << (b - 0xc7);
        fixed = 2 + length_bytes;
        has_payload = true;
        break;
    case 0xca: /* float 32, 64 */
        h->type = DF_MSGPACK_FLOAT;
        fixed = 5;
        break;
    case 0xcb:
        h->type = DF_MSGPACK_FLOAT;
        fixed = 9;
        break;
    case 0xcc: /* uint 8..64 */
    case 0xcd:
    case 0xce:
    case 0xcf:
        h->type = DF_MSGPACK_UINT;
        fixed = 1 + ((size_t)1 << (b - 0xcc));
        break;
    case 0xd0: /* int 8..64 */
    case 0xd1:
    case 0xd2:
    case 0xd3:
        h->type = DF_MSGPACK_INT;
        fixed = 1 + ((size_t)1 << (b - 0xd0));
        break;
    case 0xd4: /* fixext 1..16: the type byte, then the data */
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        h->type = DF_MSGPACK_EXT;
        h->count = (uint32_t)1 << (b - 0xd4);
        fixed = 2;
        has_payload = true;
        break;
    case 0xd9: /* str 8, 16, 32 */
    case 0xda:
    case 0xdb:
        h->type = DF_MSGPACK_STR;
        length_bytes = (size_t)1 << (b - 0xd9);
        fixed = 1 + length_bytes;
        has_payload = true;
        break;
    case 0xdc: /* array 16, 32 */
    case 0xdd:
        h->type = DF_MSGPACK_ARRAY;
        length_bytes = b == 0xdc ? 2 : 4;
        fixed = 1 + length_bytes;
        break;
    default: /* 0xde, 0xdf: map 16, 32 */
        h->type = DF_MSGPACK_MAP;
        length_bytes = b == 0xde ? 2 : 4;
        fixed = 1 + length_bytes;
        break;
    }
    if (avail < fixed)
        return HEAD_TRUNCATED;
    if (length_bytes > 0)
        h->count = (uint32_t)read_be(p + 1, length_bytes);
    h->header_size = h->size = fixed;
    if (has_payload) {
        if (h->count > avail - fixed)
            return HEAD_TRUNCATED;
        h->size += h->count;
    }
    return HEAD_OK;
}

bool df_msgpack_head(const char *buf, size_t len, df_msgpack_header *out)
{
    return buf != NULL && len > 0 && read_head((const uint8_t *)buf, len, out) == HEAD_OK;
}

bool df_msgpack_is_map(const char *buf, size_t len)
{
    df_msgpack_header h;
    return df_msgpack_head(buf, len, &h) && h.type == DF_MSGPACK_MAP;
}

bool df_msgpack_is_array(const char *buf, size_t len)
{
    df_msgpack_header h;
    return df_msgpack_head(buf, len, &h) && h.type == DF_MSGPACK_ARRAY;
}

static bool is_container(const df_msgpack_header *h)
{
    return h->type == DF_MSGPACK_ARRAY || h->type == DF_MSGPACK_MAP;
}

/* Objects an array or map header announces (a map pair is two). */
static uint64_t children(const df_msgpack_header *h)
{
    return h->type == DF_MSGPACK_MAP ? 2 * (uint64_t)h->count : h->count;
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
        df_msgpack_header h;
        int rc;

        if (pos >= len)
            return df_fail(err, DF_EBAD_REQUEST,
                           "truncated msgpack: the frame ends inside an object");
        rc = read_head(p + pos, len - pos, &h);
        if (rc == HEAD_INVALID)
            return df_fail(err, DF_EBAD_REQUEST, "invalid msgpack: byte 0x%02x at offset %zu",
                           p[pos], pos);
        if (rc == HEAD_TRUNCATED)
            return df_fail(err, DF_EBAD_REQUEST,
                           "truncated msgpack: the object at offset %zu runs past the end", pos);
        if (++nodes > DF_MAX_NODES)
            return df_fail(err, DF_EBAD_REQUEST, "more than %d msgpack objects in one frame",
                           DF_MAX_NODES);
        if (depth > 0) {
            if (is_map[depth - 1] && left[depth - 1] % 2 == 0 && h.type != DF_MSGPACK_STR)
                return df_fail(err, DF_EBAD_REQUEST, "map key at offset %zu is not a string", pos);
            left[depth - 1]--;
            pending--;
        }
        pos += h.size;
        if (is_container(&h)) {
            uint64_t announced = children(&h);
            if (depth == DF_MAX_DEPTH)
                return df_fail(err, DF_EBAD_REQUEST, "msgpack nested deeper than %d levels",
                               DF_MAX_DEPTH);
            if (pending + announced > len - pos)
                return df_fail(err, DF_EBAD_REQUEST,
                               "msgpack %s at offset %zu declares %" PRIu32
                               " entries, more than the bytes that remain",
                               h.type == DF_MSGPACK_MAP ? "map" : "array", pos - h.size, h.count);
            if (nodes + pending + announced > DF_MAX_NODES)
                return df_fail(err, DF_EBAD_REQUEST, "more than %d msgpack objects in one frame",
                               DF_MAX_NODES);
            left[depth] = announced;
            is_map[depth] = h.type == DF_MSGPACK_MAP;
            depth++;
            pending += announced;
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
        df_msgpack_header h;
        if (pos >= len || read_head(p + pos, len - pos, &h) != HEAD_OK)
            return 0;
        pending--;
        pos += h.size;
        if (is_container(&h)) {
            pending += children(&h);
            if (pending > len - pos)
                return 0;
        }
    }
    return pos;
}

bool df_msgpack_array_header(const char *buf, size_t len, uint32_t *count, size_t *header_len)
{
    df_msgpack_header h;
    if (buf == NULL || len == 0 || read_head((const uint8_t *)buf, len, &h) != HEAD_OK ||
        h.type != DF_MSGPACK_ARRAY)
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
    df_msgpack_header map;
    size_t pos;

    if (buf == NULL || len == 0 || read_head(p, len, &map) != HEAD_OK || map.type != DF_MSGPACK_MAP)
        return false;
    pos = map.size;
    for (uint32_t i = 0; i < map.count; i++) {
        df_msgpack_header k;
        if (pos >= len || read_head(p + pos, len - pos, &k) != HEAD_OK || k.type != DF_MSGPACK_STR)
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

int df_msgpack_unpack_checked(const char *buf, size_t len, msgpack_zone *zone, msgpack_object *obj,
                              df_error *err)
{
    size_t offset = 0;
    msgpack_unpack_return rc = msgpack_unpack(buf, len, &offset, zone, obj);
    if (rc != MSGPACK_UNPACK_SUCCESS || offset != len)
        return df_fail(err, DF_EBAD_REQUEST, "msgpack could not be unpacked (%d)", (int)rc);
    return 0;
}

bool df_msgpack_read_uint(const char *value, size_t len, uint64_t *out)
{
    const uint8_t *p = (const uint8_t *)value;
    df_msgpack_header h;
    if (!df_msgpack_head(value, len, &h))
        return false;
    if (h.type == DF_MSGPACK_UINT) {
        *out = h.size == 1 ? p[0] : read_be(p + 1, h.size - 1);
        return true;
    }
    if (h.type != DF_MSGPACK_INT || h.size == 1)
        return false;
    /* a signed encoding of a non-negative value is still a uint */
    uint64_t v = read_be(p + 1, h.size - 1);
    if ((v >> ((h.size - 1) * 8 - 1)) != 0)
        return false;
    *out = v;
    return true;
}

bool df_msgpack_read_int(const char *value, size_t len, int64_t *out)
{
    const uint8_t *p = (const uint8_t *)value;
    df_msgpack_header h;
    if (!df_msgpack_head(value, len, &h))
        return false;
    if (h.type == DF_MSGPACK_UINT) {
        uint64_t v = h.size == 1 ? p[0] : read_be(p + 1, h.size - 1);
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
        return true;
    }
    if (h.type != DF_MSGPACK_INT)
        return false;
    if (h.size == 1) {
        *out = (int64_t)p[0] - 256;
        return true;
    }
    size_t bits = (h.size - 1) * 8;
    uint64_t v = read_be(p + 1, h.size - 1);
    uint64_t mask = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
    if ((v >> (bits - 1)) == 0)
        *out = (int64_t)v;
    else /* two's complement, without converting a value int64_t cannot hold */
        *out = -(int64_t)(~v & mask) - 1;
    return true;
}

bool df_msgpack_read_bool(const char *value, size_t len, bool *out)
{
    df_msgpack_header h;
    if (!df_msgpack_head(value, len, &h) || h.type != DF_MSGPACK_BOOL)
        return false;
    *out = (uint8_t)value[0] == 0xc3;
    return true;
}

bool df_msgpack_read_str(const char *value, size_t len, const char **str, uint32_t *str_len)
{
    df_msgpack_header h;
    if (!df_msgpack_head(value, len, &h) || h.type != DF_MSGPACK_STR)
        return false;
    *str = value + h.header_size;
    *str_len = h.count;
    return true;
}

bool df_msgpack_is_nil(const char *value, size_t len)
{
    df_msgpack_header h;
    return df_msgpack_head(value, len, &h) && h.type == DF_MSGPACK_NIL;
}

bool df_msgpack_map_uint(const char *map, size_t len, const char *key, uint64_t *out)
{
    const char *value;
    size_t value_len;
    return df_msgpack_map_find(map, len, key, &value, &value_len) &&
           df_msgpack_read_uint(value, value_len, out);
}

bool df_msgpack_map_int(const char *map, size_t len, const char *key, int64_t *out)
{
    const char *value;
    size_t value_len;
    return df_msgpack_map_find(map, len, key, &value, &value_len) &&
           df_msgpack_read_int(value, value_len, out);
}

bool df_msgpack_map_bool(const char *map, size_t len, const char *key, bool *out)
{
    const char *value;
    size_t value_len;
    return df_msgpack_map_find(map, len, key, &value, &value_len) &&
           df_msgpack_read_bool(value, value_len, out);
}

bool df_msgpack_map_str(const char *map, size_t len, const char *key, const char **str,
                        uint32_t *str_len)
{
    const char *value;
    size_t value_len;
    return df_msgpack_map_find(map, len, key, &value, &value_len) &&
           df_msgpack_read_str(value, value_len, str, str_len);
}

bool df_msgpack_map_array(const char *map, size_t len, const char *key, const char **first,
                          size_t *rest_len, uint32_t *count)
{
    const char *value;
    size_t value_len, header_len;
    if (!df_msgpack_map_find(map, len, key, &value, &value_len) ||
        !df_msgpack_array_header(value, value_len, count, &header_len))
        return false;
    *first = value + header_len;
    *rest_len = value_len - header_len;
    return true;
}
