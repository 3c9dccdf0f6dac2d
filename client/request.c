/* request.c: building an api request map field by field and sending it, so that every
 * request of libdealflow is packed, checked for lack of memory and sent one way. */
#include <string.h>

#include "codec.h"
#include "internal.h"
#include "request.h"

/* Bytes of the largest map header (map 32), kept before the entries. */
#define HEADER_ROOM 5

static int request_write(void *data, const char *buf, size_t len)
{
    df__request *r = data;
    if (r->out_of_memory)
        return -1;
    if (msgpack_sbuffer_write(&r->buf, buf, len) != 0) {
        r->out_of_memory = true;
        return -1;
    }
    return 0;
}

void df__request_begin(df__request *r, const char *op)
{
    static const char room[HEADER_ROOM];
    msgpack_sbuffer_init(&r->buf);
    msgpack_packer_init(&r->pk, r, request_write);
    r->entries = 0;
    r->out_of_memory = false;
    request_write(r, room, sizeof room);
    df__request_str(r, "op", op);
}

void df__request_str(df__request *r, const char *key, const char *value)
{
    if (value != NULL)
        df__request_strn(r, key, value, strlen(value));
}

void df__request_strn(df__request *r, const char *key, const char *value, size_t len)
{
    df_pack_cstr(&r->pk, key);
    df_pack_str(&r->pk, value, len);
    r->entries++;
}

void df__request_uint(df__request *r, const char *key, uint64_t value)
{
    df_pack_cstr(&r->pk, key);
    msgpack_pack_uint64(&r->pk, value);
    r->entries++;
}

void df__request_bool(df__request *r, const char *key, bool value)
{
    df_pack_cstr(&r->pk, key);
    if (value)
        msgpack_pack_true(&r->pk);
    else
        msgpack_pack_false(&r->pk);
    r->entries++;
}

void df__request_time(df__request *r, const char *key, const int64_t *ms)
{
    if (ms == NULL)
        return;
    df_pack_cstr(&r->pk, key);
    msgpack_pack_int64(&r->pk, *ms);
    r->entries++;
}

void df__request_strs(df__request *r, const char *key, const char *const *values, size_t n)
{
    df_pack_cstr(&r->pk, key);
    msgpack_pack_array(&r->pk, n);
    for (size_t i = 0; i < n; i++)
        df_pack_cstr(&r->pk, values[i]);
    r->entries++;
}

void df__request_msgpack(df__request *r, const char *key, const void *value, size_t len)
{
    df_pack_cstr(&r->pk, key);
    request_write(r, value, len);
    r->entries++;
}

bool df__request_entries(df__request *r, const char *map, size_t len, const char *const *skip)
{
    long count = df__copy_map_entries(map, len, skip, NULL);
    if (count < 0)
        return false;
    /* room for the whole map first, so that copying its entries cannot run
     * out of memory half way */
    size_t before = r->buf.size;
    if (request_write(r, map, len) != 0)
        return true;
    r->buf.size = before;
    df__copy_map_entries(map, len, skip, &r->buf);
    r->entries += (uint32_t)count;
    return true;
}

typedef struct header_sink {
    char bytes[HEADER_ROOM];
    size_t len;
} header_sink;

static int header_write(void *data, const char *buf, size_t len)
{
    header_sink *h = data;
    if (len > sizeof h->bytes - h->len)
        return -1;
    memcpy(h->bytes + h->len, buf, len);
    h->len += len;
    return 0;
}

bool df__request_finish(df__request *r, const char **data, size_t *len)
{
    if (r->out_of_memory)
        return false;
    header_sink header = {.len = 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &header, header_write);
    msgpack_pack_map(&pk, r->entries);
    size_t start = HEADER_ROOM - header.len;
    memcpy(r->buf.data + start, header.bytes, header.len);
    *data = r->buf.data + start;
    *len = r->buf.size - start;
    return true;
}

void df__request_free(df__request *r)
{
    msgpack_sbuffer_destroy(&r->buf);
}

int df__request_send(df_client *c, df__request *r, df_bytes *reply, df_error *err)
{
    const char *data;
    size_t len;
    int rc;
    if (df__request_finish(r, &data, &len)) {
        rc = df_request(c, data, len, reply, err);
    } else {
        if (reply != NULL)
            *reply = (df_bytes){0};
        rc = df_fail(err, DF_EINTERNAL, "out of memory while building a request");
    }
    df__request_free(r);
    return rc;
}

int df__request_fetch(df_client *c, df__request *r, df_bytes *page, df_error *err)
{
    df_bytes reply;
    int rc = df__request_send(c, r, &reply, err);
    if (rc != 0) {
        df_bytes_free(&reply);
        return rc;
    }
    df_bytes_free(page);
    *page = reply;
    return 0;
}
