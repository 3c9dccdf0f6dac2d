/* table.c: open addressing with linear probing; short keys are copied into
 * their slots, longer ones into one growing arena per table, since entries
 * are only ever added until the table is cleared as a whole. */
#include "table.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Slots a new table has, and the most a cleared one keeps (1 MiB of them). */
#define FIRST_CAPACITY 1024
#define KEPT_CAPACITY  32768

/* A slot is half a cache line. A key of up to INLINE_KEY bytes (ids and
 * deals, the keys looked up for every event) sits in its slot, so that a
 * lookup reads one line rather than also the arena; a longer one sits in
 * the arena. */
#define INLINE_KEY 16

typedef struct slot {
    void *value;
    uint32_t hash; /* 0: empty */
    uint32_t len;
    union {
        char bytes[INLINE_KEY]; /* len <= INLINE_KEY */
        size_t offset;          /* else: of the key in the arena */
    } key;
} slot;

struct df_table {
    slot *slots;
    size_t capacity; /* a power of two */
    size_t count;
    char *arena;
    size_t arena_len, arena_cap;
};

/* Slot arrays from this size on ask for huge pages: a table of millions of
 * ids (a rebuild's) is probed at random, and with 4 KiB pages nearly every
 * probe misses the TLB and every new page faults. */
#define HUGE_FROM (8u << 20)
#define HUGE_PAGE (2u << 20)

static slot *slots_new(size_t capacity)
{
    slot *slots = calloc(capacity, sizeof(slot));
    size_t bytes = capacity * sizeof(slot);
    if (slots && bytes >= HUGE_FROM) {
        /* the whole huge pages inside the allocation; a hint only */
        uintptr_t from = ((uintptr_t)slots + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
        uintptr_t to = ((uintptr_t)slots + bytes) & ~(uintptr_t)(HUGE_PAGE - 1);
        if (to > from)
            (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
    }
    return slots;
}

/* A seed per process, so that a sender cannot choose ids that collide. */
static uint64_t hash_seed(void)
{
    static uint64_t seed;
    if (!seed) {
        uint64_t s = 0;
        if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != sizeof(s))
            s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        seed = s | 1;
    }
    return seed;
}

static uint64_t load32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* A word at a time from a random start mixed with the length (short tails
 * are read as two overlapping words), then a finaliser so that the low bits
 * are well mixed; never 0, which marks an empty slot. */
static uint32_t hash_bytes(const char *key, size_t len)
{
    uint64_t h = hash_seed() ^ ((uint64_t)len * 0x9e3779b97f4a7c15ULL);
    for (; len > 8; key += 8, len -= 8) {
        uint64_t w = load32(key) | load32(key + 4) << 32;
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
    }
    uint64_t w;
    if (len >= 4)
        w = load32(key) | load32(key + len - 4) << 32;
    else if (len > 0)
        w = (uint64_t)(uint8_t)key[0] | (uint64_t)(uint8_t)key[len / 2] << 8 |
            (uint64_t)(uint8_t)key[len - 1] << 16;
    else
        w = 0;
    h = mix((h ^ w) * 0xbf58476d1ce4e5b9ULL);
    uint32_t folded = (uint32_t)(h ^ (h >> 32));
    return folded ? folded : 1;
}

static const char *key_of(const df_table *t, const slot *s)
{
    return s->len <= INLINE_KEY ? s->key.bytes : t->arena + s->key.offset;
}

df_table *df_table_new(void)
{
    hash_seed(); /* chosen before any other thread can hash */
    df_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->capacity = FIRST_CAPACITY;
    t->slots = slots_new(t->capacity);
    if (!t->slots) {
        free(t);
        return NULL;
    }
    return t;
}

static void free_values(df_table *t, void (*free_value)(void *value))
{
    if (!free_value)
        return;
    for (size_t i = 0; i < t->capacity; i++)
        if (t->slots[i].hash)
            free_value(t->slots[i].value);
}

void df_table_free(df_table *t, void (*free_value)(void *value))
{
    if (!t)
        return;
    free_values(t, free_value);
    free(t->slots);
    free(t->arena);
    free(t);
}

void df_table_clear(df_table *t, void (*free_value)(void *value))
{
    free_values(t, free_value);
    t->count = 0;
    t->arena_len = 0;
    slot *small;
    if (t->capacity > KEPT_CAPACITY && (small = calloc(KEPT_CAPACITY, sizeof(slot)))) {
        free(t->slots);
        t->slots = small;
        t->capacity = KEPT_CAPACITY;
        free(t->arena);
        t->arena = NULL;
        t->arena_cap = 0;
        return;
    }
    memset(t->slots, 0, t->capacity * sizeof(slot));
}

static slot *find(const df_table *t, const char *key, size_t len, uint32_t h)
{
    size_t mask = t->capacity - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot *s = &t->slots[i];
        if (!s->hash)
            return s;
        if (s->hash == h && s->len == len && memcmp(key_of(t, s), key, len) == 0)
            return s;
    }
}

void *df_table_get(const df_table *t, const char *key, size_t len)
{
    slot *s = find(t, key, len, hash_bytes(key, len));
    return s->hash ? s->value : NULL;
}

static bool grow(df_table *t)
{
    size_t capacity = t->capacity * 2;
    slot *old = t->slots, *slots = slots_new(capacity);
    if (!slots)
        return false;
    size_t old_capacity = t->capacity;
    t->slots = slots;
    t->capacity = capacity;
    for (size_t i = 0; i < old_capacity; i++) {
        if (!old[i].hash)
            continue;
        size_t mask = capacity - 1, j = old[i].hash & mask;
        while (slots[j].hash)
            j = (j + 1) & mask;
        slots[j] = old[i];
    }
    free(old);
    return true;
}

void **df_table_put(df_table *t, const char *key, size_t len, bool *added)
{
    uint32_t h = hash_bytes(key, len);
    slot *s = find(t, key, len, h);
    *added = false;
    if (s->hash)
        return &s->value;
    if ((t->count + 1) * 4 > t->capacity * 3) {
        if (!grow(t))
            return NULL;
        s = find(t, key, len, h);
    }
    if (len <= INLINE_KEY) {
        memcpy(s->key.bytes, key, len);
    } else {
        if (t->arena_len + len > t->arena_cap) {
            size_t cap = t->arena_cap ? t->arena_cap : 65536;
            while (cap < t->arena_len + len)
                cap *= 2;
            char *arena = realloc(t->arena, cap);
            if (!arena)
                return NULL;
            t->arena = arena;
            t->arena_cap = cap;
        }
        memcpy(t->arena + t->arena_len, key, len);
        s->key.offset = t->arena_len;
        t->arena_len += len;
    }
    s->hash = h;
    s->len = (uint32_t)len;
    s->value = NULL;
    t->count++;
    *added = true;
    return &s->value;
}

size_t df_table_count(const df_table *t)
{
    return t->count;
}

size_t df_table_bytes(const df_table *t)
{
    return t->capacity * sizeof(slot) + t->arena_cap;
}

static int by_key(const void *a, const void *b)
{
    const df_table_item *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* A slot and 8 bytes of its key from some offset, big-endian and
 * zero-padded: of keys equal before the offset, those whose prefixes
 * differ are in the order of their prefixes. */
typedef struct prefixed {
    uint64_t prefix;
    size_t slot;
} prefixed;

static uint64_t key_prefix(const df_table *t, const slot *s, size_t offset)
{
    uint8_t b[8] = {0};
    uint64_t prefix = 0;
    if (s->len > offset)
        memcpy(b, key_of(t, s) + offset, s->len - offset < 8 ? s->len - offset : 8);
    for (int i = 0; i < 8; i++)
        prefix = prefix << 8 | b[i];
    return prefix;
}

/* Sorts a by prefix, stably, a byte a pass from the lowest, through tmp (as
 * long); a pass whose byte all share is skipped. */
static void radix_sort(prefixed *a, prefixed *tmp, size_t n)
{
    prefixed *from = a, *to = tmp;
    size_t start[256];
    for (int shift = 0; shift < 64; shift += 8) {
        memset(start, 0, sizeof(start));
        for (size_t i = 0; i < n; i++)
            start[(from[i].prefix >> shift) & 0xff]++;
        if (start[(from[0].prefix >> shift) & 0xff] == n)
            continue;
        size_t sum = 0;
        for (size_t d = 0; d < 256; d++) {
            size_t c = start[d];
            start[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            to[start[(from[i].prefix >> shift) & 0xff]++] = from[i];
        prefixed *swap = from;
        from = to;
        to = swap;
    }
    if (from != a)
        memcpy(a, from, n * sizeof(*a));
}

static int by_slot_key(const df_table *t, const prefixed *x, const prefixed *y)
{
    const slot *a = &t->slots[x->slot], *b = &t->slots[y->slot];
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(key_of(t, a), key_of(t, b), n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* Below this many keys, a range is sorted by whole keys. */
#define RADIX_MIN 32

static void insertion_sort(const df_table *t, prefixed *order, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        prefixed x = order[i];
        size_t j = i;
        for (; j > 0 && by_slot_key(t, &x, &order[j - 1]) < 0; j--)
            order[j] = order[j - 1];
        order[j] = x;
    }
}

/* Sorts order[0..n), whose keys are equal before offset, by their keys: by
 * the 8 bytes from offset, then each run that shares them from offset + 8. */
static void sort_from(const df_table *t, prefixed *order, prefixed *tmp, size_t n, size_t offset)
{
    if (n < RADIX_MIN) {
        insertion_sort(t, order, n);
        return;
    }
    bool longer = false; /* a key goes on past these 8 bytes */
    for (size_t i = 0; i < n; i++) {
        const slot *s = &t->slots[order[i].slot];
        order[i].prefix = key_prefix(t, s, offset);
        longer |= s->len > offset + 8;
    }
    radix_sort(order, tmp, n);
    for (size_t i = 0, run; i < n; i += run) {
        for (run = 1; i + run < n && order[i + run].prefix == order[i].prefix; run++)
            ;
        if (run > 1 && longer)
            sort_from(t, order + i, tmp, run, offset + 8);
        else if (run > 1) /* equal but for zero bytes at their ends: at most 9 */
            insertion_sort(t, order + i, run);
    }
}
df_table_item *df_table_items(const df_table *t)
{
    df_table_item *items = t->count ? malloc(t->count * sizeof(*items)) : NULL;
    size_t n = 0;
    for (size_t i = 0; items && i < t->capacity; i++) {
        const slot *s = &t->slots[i];
        if (s->hash)
            items[n++] = (df_table_item){key_of(t, s), s->len, s->value};
    }
    return items;
}

df_table_item *df_table_sorted(const df_table *t)
{
    if (t->count == 0)
        return NULL;
    df_table_item *items = malloc(t->count * sizeof(*items));
    if (!items)
        return NULL;
    prefixed *order = malloc(t->count * sizeof(*order)), *tmp = malloc(t->count * sizeof(*tmp));
    size_t n = 0;
    if (order && tmp) {
        for (size_t i = 0; i < t->capacity; i++)
            if (t->slots[i].hash)
                order[n++].slot = i;
        sort_from(t, order, tmp, n, 0);
        for (size_t i = 0; i < n; i++) {
            const slot *s = &t->slots[order[i].slot];
            items[i] = (df_table_item){key_of(t, s), s->len, s->value};
        }
    }
    free(order);
    free(tmp);
    if (n == t->count)
        return items;
    n = 0;
    for (size_t i = 0; i < t->capacity; i++) {
        const slot *s = &t->slots[i];
        if (s->hash)
            items[n++] = (df_table_item){key_of(t, s), s->len, s->value};
    }
    qsort(items, n, sizeof(*items), by_key);
    return items;
}
