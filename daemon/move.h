/* move.h: deal.moved notifications: the map that is published (and given
 * back by `moves`), and the compact form the store keeps. No I/O. */
#ifndef DF_MOVE_H
#define DF_MOVE_H

#include <stdbool.h>
#include <stdint.h>

#include "fold.h"

typedef struct df_move {
    uint64_t seq;
    uint64_t prev;
    int64_t at;
    df_name deal;
    df_name pipeline;
    bool has_from;
    df_name from;
    df_name to;
    df_num amount;
    bool has_owner;
    df_name owner;
    int status;
} df_move;

/* Packs the notification's body as it is published. */
void df_move_pack(msgpack_packer *pk, const df_move *m);

/* The stored form, without key names or the seq (the store's key):
 * [prev, at, deal, pipeline, from, to, amount, owner, status]. */
void df_move_pack_stored(msgpack_packer *pk, const df_move *m);

/* Reads a stored form back; zone holds what unpacking needs. Returns 0, or
 * DF_EINTERNAL when the bytes are not a stored move. */
int df_move_unpack_stored(const char *buf, size_t len, uint64_t seq, msgpack_zone *zone,
                          df_move *m);

#endif
