/* wire.c: copying the entries of a caller's map into the requests the library
 * builds. */
#include <string.h>

#include "codec.h"
#include "internal.h"

static bool key_skipped(const char *key, uint32_t key_len, const char *const *skip)
{
    for (; *skip != NULL; skip++) {
        if (strlen(*skip) == key_len && memcmp(*skip, key, key_len) == 0)
            return true;
    }
    return false;
}

long df__copy_map_entries(const char *filters, size_t len, const char *const *skip,
                          msgpack_sbuffer *sb)
{
    df_msgpack_header map;
    if (!df_msgpack_head(filters, len, &map) || map.type != DF_MSGPACK_MAP)
        return -1;
    size_t pos = map.header_size;
    long copied = 0;
    for (uint32_t i = 0; i < map.count; i++) {
        size_t key_len = df_msgpack_skip(filters + pos, len - pos);
        if (key_len == 0)
            return -1;
        size_t value_len = df_msgpack_skip(filters + pos + key_len, len - pos - key_len);
        if (value_len == 0)
            return -1;
        const char *key;
        uint32_t key_str_len;
        if (!df_msgpack_read_str(filters + pos, key_len, &key, &key_str_len))
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
