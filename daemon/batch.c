/* batch.c: a batch of received events: an arena for their bytes and
 * messages, an item for each, and the moves the writer found. */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

df_batch *df_batch_new(void)
{
    return calloc(1, sizeof(df_batch));
}

void df_batch_free(df_batch *b)
{
    if (!b)
        return;
    free(b->arena);
    free(b->items);
    free(b->moves);
    free(b);
}

void df_batch_clear(df_batch *b)
{
    b->arena_len = 0;
    b->request_bytes = 0;
    b->count = 0;
    b->nmoves = 0;
    b->failure = 0;
    b->store_full = false;
    b->failure_message[0] = 0;
    b->rejected = 0;
    b->duplicates = 0;
    b->writer_ns = 0;
}

bool df_grow(void **buf, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*buf, n * size);
    if (!p)
        return false;
    *buf = p;
    *cap = n;
    return true;
}

uint32_t df_batch_copy(df_batch *b, const void *data, size_t len)
{
    if (b->arena_len + len + 1 > UINT32_MAX ||
        !df_grow((void **)&b->arena, &b->arena_cap, b->arena_len + len + 1, 1))
        return DF_NO_TEXT;
    uint32_t at = (uint32_t)b->arena_len;
    if (len)
        memcpy(b->arena + at, data, len);
    b->arena[at + len] = 0; /* messages read back as C strings */
    b->arena_len += len + 1;
    return at;
}

df_item *df_batch_add(df_batch *b, const void *raw, size_t len, int64_t recv, void *request)
{
    if (!df_grow((void **)&b->items, &b->cap, b->count + 1, sizeof(df_item)))
        return NULL;
    uint32_t at = df_batch_copy(b, raw, len);
    if (at == DF_NO_TEXT)
        return NULL;
    df_item *it = &b->items[b->count++];
    memset(it, 0, sizeof(*it));
    it->raw = at;
    it->raw_len = (uint32_t)len;
    it->recv = recv;
    it->request = request;
    it->message = DF_NO_TEXT;
    return it;
}

const char *df_batch_text(const df_batch *b, uint32_t offset)
{
    return offset == DF_NO_TEXT ? "" : b->arena + offset;
}

df_move *df_batch_add_move(df_batch *b)
{
    if (!df_grow((void **)&b->moves, &b->moves_cap, b->nmoves + 1, sizeof(df_move)))
        return NULL;
    df_move *m = &b->moves[b->nmoves++];
    memset(m, 0, sizeof(*m));
    return m;
}
