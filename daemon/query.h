/* query.h: the api's read operations (ping, stats, deal, history, list,
 * board, replay, rejected), each answered from one LMDB read transaction. */
#ifndef DF_QUERY_H
#define DF_QUERY_H

#include "daemon.h"

/* Packs the reply to a read request into pk. Returns 0, or DF_EUNKNOWN_OP
 * (nothing packed) when op is not a read operation. */
int df_query(df_daemon *d, df_str op, const msgpack_object *request, msgpack_packer *pk);

/* True for reads answered from the store's indexes (history, list, board,
 * deal with as_of): they wait until the derived state that the writer holds
 * in memory has been flushed. */
bool df_query_needs_flush(df_str op, const msgpack_object *request);

/* Packs a deal object as the contract defines it, as seen at `now`. */
void df_pack_deal(msgpack_packer *pk, const df_deal *deal, int64_t now, const df_pipelines *pl);

#endif
