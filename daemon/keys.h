/* keys.h: the byte encodings of stored keys: big-endian integers, signed
 * times encoded so that their bytes sort as the numbers do, and keys built
 * from names and times. Pure. */
#ifndef DF_KEYS_H
#define DF_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

void df_put_be64(uint8_t *out, uint64_t v);
uint64_t df_get_be64(const uint8_t *in);
/* A signed time whose 8 bytes sort in memcmp order as the numbers do. */
void df_put_sortable(uint8_t *out, int64_t v);
int64_t df_get_sortable(const uint8_t *in);

/* The longest key dealflow builds: an aggregate row that names every stage
 * of a pipeline (metrics.h); index keys are far shorter. */
enum { DF_KEY_MAX = 4 + 2 * (DF_MAX_NAME + 1) + (DF_MAX_STAGES + 1) * (DF_MAX_NAME + 1) + 16 };

/* A key being built. Names end with a NUL (they hold none), so that a name
 * never sorts as the prefix of a longer one's row. */
typedef struct df_key {
    uint8_t b[DF_KEY_MAX];
    size_t len;
} df_key;

void df_key_add(df_key *k, const void *bytes, size_t len);
void df_key_add_name(df_key *k, const char *name, size_t len);
void df_key_add_sortable(df_key *k, int64_t t);
/* Copies only the bytes in use: a df_key is large. */
void df_key_copy(df_key *dst, const df_key *src);

#endif
