/* room.h: a store with no room: whether a batch fits, the batches held
 * while none does, and the log lines when writes stop and resume. The
 * writer thread owns it; whether writes are stopped is also read by the
 * loop, hence atomic. */
#ifndef DF_ROOM_H
#define DF_ROOM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "store.h"

/* Room asked of the store beyond what a batch or a flush needs itself. */
#define DF_ROOM_MIN (256u << 10)

typedef struct df_room {
    atomic_bool full; /* writes are stopped */
    int why;          /* while full: ENOSPC or MDB_MAP_FULL */
    int64_t retry_at; /* while full: when a batch is tried again */
} df_room;

/* Makes room in st for `bytes` more (the map grows while the disk has
 * room) and notes whether the store is full. Returns 0, or why it is full. */
int df_room_make(df_room *r, df_store *st, size_t bytes);
/* Notes a commit that failed (rc) for want of room; returns why (ENOSPC or
 * MDB_MAP_FULL), or 0 when it failed for another reason. LMDB reports a
 * short write to a full disk as EIO, so the disk is looked at again. */
int df_room_commit_failed(df_room *r, df_store *st, int rc);
bool df_room_full(const df_room *r);
/* Ms until a held batch is tried again (0 or less: now). */
int64_t df_room_retry_in(const df_room *r);
/* Marks a batch the full store did not take: nothing of it was tried, so
 * memory is untouched; the loop answers its appends and holds its ingest
 * events. */
void df_room_hold(const df_room *r, df_batch *b);
/* What to tell an operator whose map is full (rc MDB_MAP_FULL), else "". */
const char *df_room_map_hint(int rc);

#endif
