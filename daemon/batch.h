/* batch.h: a batch: the events the loop received for one commit, handed to
 * the writer and back with what became of each and the deal.moved
 * notifications to publish. Its bytes live in one growing arena. */
#ifndef DF_BATCH_H
#define DF_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "move.h"

#define DF_NO_TEXT UINT32_MAX

/* One received event and what became of it. */
typedef struct df_item {
    uint32_t raw; /* offset of its bytes in the batch's arena */
    uint32_t raw_len;
    int64_t recv;
    void *request;    /* the append request it belongs to; NULL over ingest */
    int error;        /* set by the loop when it could not take the event, or by the writer */
    uint32_t message; /* offset of the error message in the arena, or DF_NO_TEXT */
    bool dup;
    bool redaction;    /* a `redact` request rather than an event (redact.h) */
    bool checked;      /* its bytes passed df_msgpack_check where they were received */
    uint32_t redacted; /* for a redaction: how many recorded events it changed */
    uint64_t seq;      /* its seq, or the original's for a duplicate */
    uint32_t by;       /* offset of the sender's key name in the arena, when by_len > 0 */
    uint32_t by_len;   /* 0: sent without keys, recorded without `by` */
} df_item;

typedef struct df_batch {
    char *arena;
    size_t arena_len, arena_cap;
    df_item *items;
    size_t count, cap;
    df_move *moves;
    size_t nmoves, moves_cap;
    size_t request_bytes; /* held by the append requests that wait on the batch */
    /* filled by the writer */
    int failure; /* 0, or why nothing of the batch was recorded */
    char failure_message[DF_MESSAGE_MAX];
    bool store_full;   /* the failure: the disk or map is full, and nothing was tried */
    uint64_t rejected; /* items kept in the rejected store */
    uint64_t duplicates;
    uint64_t writer_ns; /* the writer's time on it, a flush just before it included */
} df_batch;

df_batch *df_batch_new(void);
void df_batch_free(df_batch *b);
void df_batch_clear(df_batch *b);
/* Copies bytes (or a message) into the arena; returns the offset or DF_NO_TEXT. */
uint32_t df_batch_copy(df_batch *b, const void *data, size_t len);
/* Adds an item; returns it or NULL when out of memory. */
df_item *df_batch_add(df_batch *b, const void *raw, size_t len, int64_t recv, void *request);
const char *df_batch_text(const df_batch *b, uint32_t offset);
/* Adds a zeroed move; NULL when out of memory. */
df_move *df_batch_add_move(df_batch *b);

/* Grows the array *buf of *cap items of size bytes to hold need items
 * (doubling). Returns false, changing nothing, when out of memory. */
bool df_grow(void **buf, size_t *cap, size_t need, size_t size);

#endif
