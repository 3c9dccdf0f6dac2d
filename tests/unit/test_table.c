/* test_table.c: the writer's hash table (table.c): keys in and back, the
 * walk in key order, and clearing, which gives back a large table's memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "table.h"

#define MANY 200000

static size_t key_of(int i, char *buf)
{
    return (size_t)snprintf(buf, 16, "k%07d", i);
}

static void fill(df_table *t, int n)
{
    char key[16];
    for (int i = 0; i < n; i++) {
        bool added;
        size_t len = key_of(i, key);
        void **slot = df_table_put(t, key, len, &added);
        CHECK(slot && added);
        if (slot)
            *slot = (void *)(intptr_t)(i + 1);
    }
}

static void test_put_get_walk(void)
{
    df_table *t = df_table_new();
    CHECK(t != NULL);
    if (!t)
        return;
    fill(t, MANY);
    CHECK_INT(df_table_count(t), MANY);
    char key[16];
    bool added = true;
    size_t len = key_of(77, key);
    void **slot = df_table_put(t, key, len, &added);
    CHECK(!added && slot && *slot == (void *)(intptr_t)78);
    CHECK(df_table_get(t, "absent", 6) == NULL);
    df_table_item *items = df_table_sorted(t);
    CHECK(items != NULL);
    for (int i = 0; items && i < MANY; i++) {
        len = key_of(i, key);
        CHECK(items[i].len == len && memcmp(items[i].key, key, len) == 0);
        CHECK(items[i].value == (void *)(intptr_t)(i + 1));
    }
    free(items);
    df_table_free(t, NULL);
}

static void test_clear(void)
{
    df_table *t = df_table_new();
    CHECK(t != NULL);
    if (!t)
        return;
    size_t small = df_table_bytes(t);
    fill(t, MANY);
    size_t large = df_table_bytes(t);
    CHECK(large > 8 * small);
    df_table_clear(t, NULL);
    CHECK_INT(df_table_count(t), 0);
    CHECK(df_table_get(t, "k0000001", 8) == NULL);
    CHECK(df_table_sorted(t) == NULL);
    /* the large table's slots and keys are given back */
    CHECK(df_table_bytes(t) < large / 8);
    /* and it fills again */
    fill(t, 1000);
    CHECK_INT(df_table_count(t), 1000);
    CHECK(df_table_get(t, "k0000999", 8) == (void *)(intptr_t)1000);
    /* a small one keeps its memory */
    size_t kept = df_table_bytes(t);
    df_table_clear(t, NULL);
    CHECK_INT(df_table_bytes(t), kept);
    df_table_free(t, NULL);
}

static const df_test tests[] = {
    {"put_get_walk", test_put_get_walk},
    {"clear", test_clear},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return df_test_main(argc, argv, tests, NULL);
}
