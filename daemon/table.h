/* table.h: a hash table from byte-string keys to pointers, for the state the
 * writer keeps in memory between flushes (ids, deals, aggregate changes).
 * Not thread-safe. */
#ifndef DF_TABLE_H
#define DF_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct df_table df_table;

df_table *df_table_new(void);
/* Frees the table; free_value (when not NULL) is called on every value. */
void df_table_free(df_table *t, void (*free_value)(void *value));
/* Empties the table. It keeps the memory of a small table for reuse, and
 * gives back that of a large one: a flush of a million deals would
 * otherwise keep hundreds of MiB of slots for the next, small, one. */
void df_table_clear(df_table *t, void (*free_value)(void *value));

/* Returns the value of key, or NULL. */
void *df_table_get(const df_table *t, const char *key, size_t len);
/* Returns the slot holding key's value, adding the key with a NULL value
 * when absent (*added says which). NULL when out of memory. The slot is
 * valid until the next df_table_put. */
void **df_table_put(df_table *t, const char *key, size_t len, bool *added);

size_t df_table_count(const df_table *t);
/* Bytes the table holds, keys included. */
size_t df_table_bytes(const df_table *t);

/* A key and its value, for walking the table. */
typedef struct df_table_item {
    const char *key;
    size_t len;
    void *value;
} df_table_item;

/* Returns a newly allocated array of every item sorted by key (free() it),
 * or NULL when out of memory or empty. The keys point into the table: they
 * are valid until it next changes. */
df_table_item *df_table_sorted(const df_table *t);
/* The same in no particular order, for when the order does not matter. */
df_table_item *df_table_items(const df_table *t);

#endif
