/* room.c: a store with no room (see room.h). */
#include "room.h"

#include <errno.h>
#include <stdio.h>

#include "log.h"

/* While the store is full, a batch is tried again after this long. */
#define RETRY_MS 500

static const char *reason(int why)
{
    return why == ENOSPC ? "the disk is full" : "the store's map is full and cannot grow now";
}

static void note(df_room *r, df_store *st, int why)
{
    bool was = atomic_exchange(&r->full, why != 0);
    if (why != 0) {
        r->why = why;
        r->retry_at = df_now_ms() + RETRY_MS;
        if (!was)
            df_log("writes stopped: %s (%llu bytes free); appends are refused and ingest is "
                   "held until there is room",
                   reason(why), (unsigned long long)df_store_space_get(st).disk_free);
    } else if (was) {
        df_log("writes resumed: the store has room again");
    }
}

int df_room_make(df_room *r, df_store *st, size_t bytes)
{
    int why = df_store_make_room(st, bytes + DF_ROOM_MIN);
    note(r, st, why);
    return why;
}

int df_room_commit_failed(df_room *r, df_store *st, int rc)
{
    int why = 0;
    if (rc == ENOSPC || rc == MDB_MAP_FULL)
        why = rc;
    else if (rc == EIO && df_store_space_get(st).disk_free < DF_ROOM_MIN)
        why = ENOSPC;
    if (why != 0)
        note(r, st, why);
    return why;
}

bool df_room_full(const df_room *r)
{
    return atomic_load(&r->full);
}

int64_t df_room_retry_in(const df_room *r)
{
    return r->retry_at - df_now_ms();
}

void df_room_hold(const df_room *r, df_batch *b)
{
    b->failure = DF_EUNAVAILABLE;
    b->store_full = true;
    b->nmoves = 0;
    b->rejected = 0;
    b->duplicates = 0;
    snprintf(b->failure_message, sizeof(b->failure_message),
             "%s: nothing was recorded; retry when there is room",
             reason(r->why ? r->why : ENOSPC));
}

const char *df_room_map_hint(int rc)
{
    return rc == MDB_MAP_FULL ? " (restart dealflowd with a larger --map-size)" : "";
}
