/* fields.h: values of unpacked msgpack: strings and numbers as the wire
 * holds them, fields read out of request maps, and packing replies. */
#ifndef DF_FIELDS_H
#define DF_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

/* A string inside a received frame: not NUL-terminated, valid while the frame is. */
typedef struct df_str {
    const char *ptr;
    uint32_t len;
} df_str;

bool df_str_eq(df_str s, const char *cstr);

/* Copies s[0..len) into out (cap bytes, NUL-terminated, cut to fit) with
 * every byte outside printable ASCII as '?', for quoting input in messages.
 * Returns out. */
const char *df_printable(const char *s, size_t len, char *out, size_t cap);

/* True when s[0..len) is well-formed UTF-8. */
bool df_utf8_valid(const char *s, size_t len);

typedef enum df_num_kind { DF_NUM_NONE = 0, DF_NUM_INT, DF_NUM_FLOAT } df_num_kind;

/* A number as the sender wrote it: amounts are int or float. */
typedef struct df_num {
    df_num_kind kind;
    int64_t i;
    double f;
} df_num;

double df_num_value(df_num n);

/* Reads an integer object that fits int64_t; false for any other object. */
bool df_object_int(const msgpack_object *o, int64_t *out);

/* Request maps. Each getter returns NULL / false when the key is absent or
 * nil, and sets *bad when the key is present with the wrong type. */
const msgpack_object *df_map_get(const msgpack_object *map, const char *key);
bool df_get_str(const msgpack_object *map, const char *key, df_str *out, bool *bad);
bool df_get_uint(const msgpack_object *map, const char *key, uint64_t *out, bool *bad);
bool df_get_int(const msgpack_object *map, const char *key, int64_t *out, bool *bad);
bool df_get_bool(const msgpack_object *map, const char *key, bool *out, bool *bad);

/* Finds a key that appears twice among the str keys of kv[0..n). Returns 1
 * (*dup set), 0, or -1 when memory ran out. */
int df_map_duplicate_key(const msgpack_object_kv *kv, uint32_t n, const msgpack_object **dup);

/* Packing helpers for replies. */
void df_pack_cstr(msgpack_packer *pk, const char *s);
void df_pack_str(msgpack_packer *pk, const char *s, size_t len);
void df_pack_num(msgpack_packer *pk, df_num n); /* nil for DF_NUM_NONE */
/* Packs {ok: false, error: NAME, message: MESSAGE}. */
void df_pack_error(msgpack_packer *pk, int code, const char *message);

#endif
