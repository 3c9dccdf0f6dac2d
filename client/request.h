/* request.h: building an api request map field by field and sending it, so that every
 * request of libdealflow is packed, checked for lack of memory and sent one way. */
#ifndef DF_CLIENT_REQUEST_H
#define DF_CLIENT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "dealflow.h"

/* A request map being built. The map header is written when the request is
 * finished, into room kept before the entries, so the bytes are those of a
 * map packed with its count up front. */
typedef struct df__request {
    msgpack_sbuffer buf;
    msgpack_packer pk;
    uint32_t entries;
    bool out_of_memory;
} df__request;

/* Begins a request; op NULL when it is added later (with df__request_str). */
void df__request_begin(df__request *r, const char *op);
/* Adds key: value. A NULL value adds nothing. */
void df__request_str(df__request *r, const char *key, const char *value);
void df__request_strn(df__request *r, const char *key, const char *value, size_t len);
void df__request_uint(df__request *r, const char *key, uint64_t value);
void df__request_bool(df__request *r, const char *key, bool value);
/* A time (ms since the epoch); NULL adds nothing. */
void df__request_time(df__request *r, const char *key, const int64_t *ms);
/* An array of the n strings values[0..n), none of them NULL. */
void df__request_strs(df__request *r, const char *key, const char *const *values, size_t n);
/* A value that is checked msgpack already, copied as it is. */
void df__request_msgpack(df__request *r, const char *key, const void *value, size_t len);
/* The entries of the checked map map[0..len), but for the keys in skip
 * (NULL-terminated); false when map is not a map. */
bool df__request_entries(df__request *r, const char *map, size_t len, const char *const *skip);

/* Whether a caller's struct of `size` bytes (its first member) holds the
 * member at offset with that size: members past what the caller was built
 * with are not read. */
#define DF__HAS_FIELD(q, type, member)                                                             \
    ((q)->size >= offsetof(type, member) + sizeof(((type *)0)->member))
/* The member when the caller's struct holds it, else fallback. */
#define DF__FIELD(q, type, member, fallback)                                                       \
    (DF__HAS_FIELD(q, type, member) ? (q)->member : (fallback))

/* The finished map, valid until the request is freed; false when memory ran
 * out while it was built. */
bool df__request_finish(df__request *r, const char **data, size_t *len);
void df__request_free(df__request *r);

/* Sends the request as df_request does, then frees it. */
int df__request_send(df_client *c, df__request *r, df_bytes *reply, df_error *err);
/* Sends the request and frees it. A reply that says ok replaces *page (the
 * old one freed); after a failure *page is as it was, so the caller can ask
 * for the same page again. */
int df__request_fetch(df_client *c, df__request *r, df_bytes *page, df_error *err);

#endif
