/* keys.c: the byte encodings of stored keys (see keys.h). */
#include "keys.h"

#include <string.h>

void df_put_be64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t df_get_be64(const uint8_t *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

void df_put_sortable(uint8_t *out, int64_t v)
{
    df_put_be64(out, (uint64_t)v ^ (1ULL << 63));
}

int64_t df_get_sortable(const uint8_t *in)
{
    return (int64_t)(df_get_be64(in) ^ (1ULL << 63));
}

void df_key_add(df_key *k, const void *bytes, size_t len)
{
    if (len > 0)
        memcpy(k->b + k->len, bytes, len);
    k->len += len;
}

void df_key_add_name(df_key *k, const char *name, size_t len)
{
    df_key_add(k, name, len);
    k->b[k->len++] = 0;
}

void df_key_add_sortable(df_key *k, int64_t t)
{
    df_put_sortable(k->b + k->len, t);
    k->len += 8;
}

void df_key_copy(df_key *dst, const df_key *src)
{
    memcpy(dst->b, src->b, src->len);
    dst->len = src->len;
}
