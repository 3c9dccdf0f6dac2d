/* clients.h: the clients file, one client a line (`ROLE PUBLIC_KEY NAME`, # comments), parsed
 * from its text into the set of keys the daemon admits, sorted by key. */
#ifndef DF_CLIENTS_H
#define DF_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

/* The longest line of a clients file, without its end of line. */
#define DF_CLIENTS_LINE_MAX 510

typedef struct df_client_entry {
    unsigned roles;
    uint8_t key[32];
    char name[DF_AUTH_NAME_MAX + 1];
} df_client_entry;

typedef struct df_client_set {
    df_client_entry *items; /* sorted by key */
    size_t count;
} df_client_set;

/* Parses a clients file's text[0..len) (any bytes) into *out. file names it in why, which
 * says what is wrong as `file:LINE: ...`. Returns false with why set and *out untouched. */
bool df_clients_parse(const char *text, size_t len, const char *file, df_client_set *out, char *why,
                      size_t why_len);

/* The client of key, or NULL. */
const df_client_entry *df_clients_find(const df_client_set *set, const uint8_t key[32]);

void df_clients_free(df_client_set *set);

#endif
