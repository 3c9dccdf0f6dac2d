/* test_table.c: the writer's hash table (table.c): keys in and back, the
 * walk in key order (that of LMDB: bytes, then the shorter first, whatever
 * prefixes and lengths the keys share), and clearing, which gives back a
 * large table's memory. */
#include <stdint.h>
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

static int memcmp_order(const void *a, const void *b)
{
    const df_table_item *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* A xorshift generator, so that every run sees the same keys. */
static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Puts n keys made by make(i, key) (returning the length), each with the
 * value i + 1, and checks df_table_sorted against a sort by whole keys. */
static void check_sorted(size_t n, size_t (*make)(size_t i, uint64_t *s, char *key))
{
    df_table *t = df_table_new();
    df_table_item *expect = malloc(n * sizeof(*expect));
    CHECK(t && expect);
    if (!t || !expect)
        return;
    uint64_t s = 88172645463325252ULL;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        char key[64];
        size_t len = make(i, &s, key);
        bool added;
        void **slot = df_table_put(t, key, len, &added);
        CHECK(slot != NULL);
        if (slot && added)
            *slot = (void *)(uintptr_t)(i + 1);
        count += added;
    }
    CHECK_INT(df_table_count(t), count);
    df_table_item *items = df_table_sorted(t);
    CHECK(items != NULL);
    for (size_t i = 0; items && i < count; i++) {
        expect[i] = items[i];
        CHECK(df_table_get(t, items[i].key, items[i].len) == items[i].value);
    }
    qsort(expect, count, sizeof(*expect), memcmp_order);
    for (size_t i = 0; items && i < count; i++) {
        CHECK(expect[i].key == items[i].key && expect[i].value == items[i].value);
        if (i > 0)
            CHECK(memcmp_order(&items[i - 1], &items[i]) < 0);
    }
    free(items);
    free(expect);
    df_table_free(t, NULL);
}

/* Ids as producers make them: a short prefix and a number. */
static size_t numbered(size_t i, uint64_t *s, char *key)
{
    (void)s;
    return (size_t)snprintf(key, 64, "evt-%zu", i);
}

/* Random bytes of random lengths over a small alphabet with zero bytes:
 * many keys are prefixes of others or differ only by zero bytes at the end. */
static size_t random_bytes(size_t i, uint64_t *s, char *key)
{
    (void)i;
    size_t len = next(s) % 20;
    for (size_t j = 0; j < len; j++)
        key[j] = "\0\1ab"[next(s) % 4];
    return len;
}

/* Keys that share long prefixes, as aggregate rows do, and then differ. */
static size_t long_prefixes(size_t i, uint64_t *s, char *key)
{
    size_t len = (size_t)snprintf(key, 64, "default%cstage-with-a-long-name%c", 0, 0);
    size_t tail = next(s) % 12;
    for (size_t j = 0; j < tail; j++)
        key[len++] = (char)(next(s) % 3);
    (void)i;
    return len;
}

static void test_sorted_small(void)
{
    check_sorted(20, numbered);
    check_sorted(300, random_bytes);
}

static void test_sorted_numbered(void)
{
    check_sorted(200000, numbered);
}

static void test_sorted_random_bytes(void)
{
    check_sorted(100000, random_bytes);
}

static void test_sorted_long_prefixes(void)
{
    check_sorted(100000, long_prefixes);
}

static void test_empty(void)
{
    df_table *t = df_table_new();
    CHECK(t != NULL);
    CHECK(df_table_sorted(t) == NULL);
    CHECK(df_table_get(t, "x", 1) == NULL);
    df_table_free(t, NULL);
}

static const df_test tests[] = {
    {"put_get_walk", test_put_get_walk},
    {"clear", test_clear},
    {"empty", test_empty},
    {"sorted_small", test_sorted_small},
    {"sorted_numbered", test_sorted_numbered},
    {"sorted_random_bytes", test_sorted_random_bytes},
    {"sorted_long_prefixes", test_sorted_long_prefixes},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return df_test_main(argc, argv, tests, NULL);
}
