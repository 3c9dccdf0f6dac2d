/* wire.c: reading single values out of checked msgpack bytes without unpacking them,
 * and copying map entries into requests the library builds. */
#include <string.h>

#include "codec.h"
#include "internal.h"

static uint64_t read_be(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

bool df__read_uint(const char *value, size_t len, uint64_t *out)
{
    const unsigned char *p = (const unsigned char *)value;
    if (len == 0)
        return false;
    if (p[0] <= 0x7f) {
        *out = p[0];
        return true;
    }
    int bytes;
    bool is_signed = false;
    switch (p[0]) {
    case 0xcc:
        bytes = 1;
        break;
    case 0xcd:
        bytes = 2;
        break;
    case 0xce:
        bytes = 4;
        break;
    case 0xcf:
        bytes = 8;
        break;
    case 0xd0:
        bytes = 1;
        is_signed = true;
        break;
    case 0xd1:
        bytes = 2;
        is_signed = true;
        break;
    case 0xd2:
        bytes = 4;
        is_signed = true;
        break;
    case 0xd3:
        bytes = 8;
        is_signed = true;
        break;
    default:
        return false;
    }
    if (len < 1 + (size_t)bytes)
        return false;
    uint64_t v = read_be(p + 1, bytes);
    /* a signed encoding of a non-negative value is still a uint */
    if (is_signed && (v >> (bytes * 8 - 1)) != 0)
        return false;
    *out = v;
    return true;
}

bool df__read_bool(const char *value, size_t len, bool *out)
{
    if (len == 0 || ((unsigned char)value[0] != 0xc2 && (unsigned char)value[0] != 0xc3))
        return false;
    *out = (unsigned char)value[0] == 0xc3;
    return true;
}

bool df__read_str(const char *value, size_t len, const char **str, uint32_t *str_len)
{
    const unsigned char *p = (const unsigned char *)value;
    size_t head;
    uint64_t n;
    if (len == 0)
        return false;
    if ((p[0] & 0xe0) == 0xa0) {
        head = 1;
        n = p[0] & 0x1f;
    } else if (p[0] >= 0xd9 && p[0] <= 0xdb) {
        int bytes = 1 << (p[0] - 0xd9);
        head = 1 + (size_t)bytes;
        if (len < head)
            return false;
        n = read_be(p + 1, bytes);
    } else {
        return false;
    }
    if (n > len - head)
        return false;
    *str = value + head;
    *str_len = (uint32_t)n;
    return true;
}

bool df__is_nil(const char *value, size_t len)
{
    return len > 0 && (unsigned char)value[0] == 0xc0;
}

bool df__map_uint(const char *map, size_t len, const char *key, uint64_t *out)
{
    const char *value;
    size_t value_len;
    return df_msgpack_map_find(map, len, key, &value, &value_len) &&
           df__read_uint(value, value_len, out);
}

bool df__map_str(const char *map, size_t len, const char *key, const char **str, uint32_t *str_len)
{
    const char *value;
    size_t value_len;
    return df_msgpack_map_find(map, len, key, &value, &value_len) &&
           df__read_str(value, value_len, str, str_len);
}

bool df__map_array(const char *map, size_t len, const char *key, const char **first,
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

static bool key_skipped(const char *key, uint32_t key_len, const char *const *skip)
{
    for (; *skip != NULL; skip++) {
        if (strlen(*skip) == key_len && memcmp(*skip, key, key_len) == 0)
            return true;
    }
    return false;
}

/* The header of the map at the start of buf: its entry count and length. */
static bool map_header(const char *buf, size_t len, uint32_t *count, size_t *header_len)
{
    const unsigned char *p = (const unsigned char *)buf;
    if (len >= 1 && (p[0] & 0xf0) == 0x80) {
        *count = p[0] & 0x0f;
        *header_len = 1;
    } else if (len >= 3 && p[0] == 0xde) {
        *count = (uint32_t)read_be(p + 1, 2);
        *header_len = 3;
    } else if (len >= 5 && p[0] == 0xdf) {
        *count = (uint32_t)read_be(p + 1, 4);
        *header_len = 5;
    } else {
        return false;
    }
    return true;
}

long df__copy_map_entries(const char *filters, size_t len, const char *const *skip,
                          msgpack_sbuffer *sb)
{
    uint32_t count;
    size_t pos;
    if (!map_header(filters, len, &count, &pos))
        return -1;
    long copied = 0;
    for (uint32_t i = 0; i < count; i++) {
        size_t key_len = df_msgpack_skip(filters + pos, len - pos);
        if (key_len == 0)
            return -1;
        size_t value_len = df_msgpack_skip(filters + pos + key_len, len - pos - key_len);
        if (value_len == 0)
            return -1;
        const char *key;
        uint32_t key_str_len;
        if (!df__read_str(filters + pos, key_len, &key, &key_str_len))
            return -1;
        if (!key_skipped(key, key_str_len, skip)) {
            if (sb != NULL)
                msgpack_sbuffer_write(sb, filters + pos, key_len + value_len);
            copied++;
        }
        pos += key_len + value_len;
    }
    return copied;
}
