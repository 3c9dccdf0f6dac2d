/* reader.h: reading raw, untrusted msgpack bytes without unpacking them:
 * the header of one object, the check that makes bytes safe to unpack, and
 * typed readers of single values and map entries inside checked bytes. */
#ifndef DF_READER_H
#define DF_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "dealflow.h"

/* Limits of the wire format (proto/PROTOCOL.md documents them). */
#define DF_MAX_DEPTH 16     /* nesting of arrays and maps */
#define DF_MAX_NODES 200000 /* msgpack objects in one frame */

typedef enum df_msgpack_type {
    DF_MSGPACK_NIL,
    DF_MSGPACK_BOOL,
    DF_MSGPACK_UINT, /* positive fixint, uint 8..64 */
    DF_MSGPACK_INT,  /* negative fixint, int 8..64 (whatever the value's sign) */
    DF_MSGPACK_FLOAT,
    DF_MSGPACK_STR,
    DF_MSGPACK_BIN,
    DF_MSGPACK_EXT,
    DF_MSGPACK_ARRAY,
    DF_MSGPACK_MAP,
} df_msgpack_type;

/* The header of one msgpack object as it sits in the bytes. */
typedef struct df_msgpack_header {
    df_msgpack_type type;
    /* str, bin, ext: payload bytes; array: elements; map: pairs; else 0 */
    uint32_t count;
    /* bytes before the payload or the first element; a scalar's whole size */
    size_t header_size;
    /* header and payload; for arrays and maps the header only */
    size_t size;
} df_msgpack_header;

/* Reads the header of the object at the start of buf[0..len): false when
 * len is 0, the first byte is never used (0xc1), or the header or the
 * payload of a str, bin or ext runs past len. The elements of arrays and
 * maps are not looked at. */
bool df_msgpack_head(const char *buf, size_t len, df_msgpack_header *out);

/* True when the object at the start of buf[0..len) is a map, or an array. */
bool df_msgpack_is_map(const char *buf, size_t len);
bool df_msgpack_is_array(const char *buf, size_t len);

/* Checks that buf[0..len) holds exactly one msgpack object (nothing after
 * it) whose every declared count fits the bytes that remain, nested at most
 * DF_MAX_DEPTH deep, with at most DF_MAX_NODES objects. Map keys must be
 * strings. Only checked bytes may be given to the msgpack-c unpacker.
 * Returns 0, or DF_EBAD_REQUEST with a message. */
int df_msgpack_check(const char *buf, size_t len, df_error *err);

/* Returns the byte length of the first msgpack object in buf[0..len), or 0
 * when it is malformed or truncated. Does not allocate. */
size_t df_msgpack_skip(const char *buf, size_t len);

/* Reads the header of the array at the start of checked bytes: its element
 * count and the header's length. Returns false when it is not an array. */
bool df_msgpack_array_header(const char *buf, size_t len, uint32_t *count, size_t *header_len);

/* Finds a key of the map at the start of checked bytes and gives the span of
 * its value. Returns false when it is not a map or has no such key. */
bool df_msgpack_map_find(const char *buf, size_t len, const char *key, const char **value,
                         size_t *value_len);

/* Checks buf[0..len) as df_msgpack_check does, then unpacks it into obj;
 * the objects live in zone (which the caller clears or destroys) and strings
 * point into buf. The one way untrusted bytes reach the msgpack-c unpacker.
 * Returns 0 or DF_EBAD_REQUEST with a message. */
int df_msgpack_unpack(const char *buf, size_t len, msgpack_zone *zone, msgpack_object *obj,
                      df_error *err);
/* As df_msgpack_unpack, for bytes df_msgpack_check has already accepted
 * (or a whole object inside such bytes): they are not checked again. */
int df_msgpack_unpack_checked(const char *buf, size_t len, msgpack_zone *zone, msgpack_object *obj,
                              df_error *err);

/* Readers of the one value at the start of value[0..len). Each returns false
 * when it has another type or does not fit. A uint is any integer >= 0,
 * whatever its encoding; an int any integer that fits int64_t. */
bool df_msgpack_read_uint(const char *value, size_t len, uint64_t *out);
bool df_msgpack_read_int(const char *value, size_t len, int64_t *out);
bool df_msgpack_read_bool(const char *value, size_t len, bool *out);
/* str points into value and is not NUL-terminated. */
bool df_msgpack_read_str(const char *value, size_t len, const char **str, uint32_t *str_len);
bool df_msgpack_is_nil(const char *value, size_t len);

/* Finds key in the map at the start of checked bytes map[0..len) and reads
 * its value as above; false when the key is absent too. */
bool df_msgpack_map_uint(const char *map, size_t len, const char *key, uint64_t *out);
bool df_msgpack_map_int(const char *map, size_t len, const char *key, int64_t *out);
bool df_msgpack_map_bool(const char *map, size_t len, const char *key, bool *out);
bool df_msgpack_map_str(const char *map, size_t len, const char *key, const char **str,
                        uint32_t *str_len);
/* The array under key: its element count, where its first element starts
 * and the length of its elements' bytes. */
bool df_msgpack_map_array(const char *map, size_t len, const char *key, const char **first,
                          size_t *rest_len, uint32_t *count);

#endif
