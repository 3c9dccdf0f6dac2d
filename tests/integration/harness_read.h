/* harness_read.h: reads values out of the daemon's replies and keeps the replies and the
 * texts read from them alive until it_release; counts the harness's own failures. */
#ifndef DF_IT_HARNESS_READ_H
#define DF_IT_HARNESS_READ_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

/* What it_int returns when the key is absent or not an integer. */
#define IT_NONE INT64_MIN

/* Reading replies. Each accepts NULL or a non-map and answers "absent". */
const msgpack_object *it_get(const msgpack_object *map, const char *key);
/* The reply says ok: true. */
bool it_ok(const msgpack_object *reply);
/* A NUL-terminated copy of a str value, NULL when absent or not a str. */
const char *it_str(const msgpack_object *map, const char *key);
/* The reply's error code, or NULL. */
const char *it_err(const msgpack_object *reply);
int64_t it_int(const msgpack_object *map, const char *key);
/* An int or float as a double; NAN when absent or not a number. */
double it_num(const msgpack_object *map, const char *key);
/* 1 true, 0 false, -1 absent or not a bool. */
int it_bool(const msgpack_object *map, const char *key);
/* The key is present with the value nil. */
bool it_is_nil(const msgpack_object *map, const char *key);
/* Element i of an array, NULL when out of range or not an array. */
const msgpack_object *it_at(const msgpack_object *array, uint32_t i);
/* Elements of an array or pairs of a map; -1 for anything else. */
long it_len(const msgpack_object *o);
/* The object packs to the same bytes as the request text. */
bool it_same(const msgpack_object *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Two objects pack to the same bytes. */
bool it_equal(const msgpack_object *a, const msgpack_object *b);
/* The map has exactly these keys (NULL-terminated list); prints the difference. */
bool it_has_keys(const msgpack_object *map, const char *const *keys);
/* A NUL-terminated copy of a str or bin object, NULL otherwise. */
const char *it_text(const msgpack_object *o);

/* A reply unpacked from bytes the harness owns: the bytes its strings point
 * into, and the zone of its objects. */
typedef struct it_reply {
    struct it_reply *next;
    char *buf;
    msgpack_zone *zone;
    msgpack_object obj;
} it_reply;
/* Unpacks buf (taking it over); NULL (a harness failure naming what) when the
 * bytes are not one valid msgpack object with string keys. */
it_reply *it_reply_unpack(char *buf, size_t len, const char *what);
void it_reply_free(it_reply *r);
/* Keeps r until it_release and returns its object; a nil object for NULL. */
const msgpack_object *it_reply_keep(it_reply *r);
/* The unpacked form of bytes the harness holds on to, or a nil object. */
const msgpack_object *it_unpack_keep(const void *buf, size_t len);
/* Frees the replies received so far (pointers to them become invalid). */
void it_release(void);
/* A NUL-terminated copy of len bytes, kept until it_release. */
char *it_copy_text(const char *ptr, size_t len);

/* Reports a failure of the harness itself (not of the daemon under test). */
void it_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The harness failures so far. */
int it_failures(void);

#endif
