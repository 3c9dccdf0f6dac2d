/* keys.h: the byte encodings of stored keys: big-endian integers, and
 * signed times encoded so that their bytes sort as the numbers do. Pure. */
#ifndef DF_KEYS_H
#define DF_KEYS_H

#include <stdint.h>

void df_put_be64(uint8_t *out, uint64_t v);
uint64_t df_get_be64(const uint8_t *in);
/* A signed time whose 8 bytes sort in memcmp order as the numbers do. */
void df_put_sortable(uint8_t *out, int64_t v);
int64_t df_get_sortable(const uint8_t *in);

#endif
