/* listing.h: pages read from the store for the api: deals for `list` (which
 * deals a filter matches, the walk over the narrowest index it allows, the
 * cursor that goes on from where a page ended), and events, rejected items
 * and stored moves for `history`, `replay`, `rejected` and `moves`. */
#ifndef DF_LISTING_H
#define DF_LISTING_H

#include "store.h"

/* Which deals a list asks for; an empty name matches every deal. */
typedef struct df_list_filter {
    df_str pipeline, stage, owner, product, source;
    int status; /* a df_outcome, or -1: any */
    int stale;  /* 0 or 1, or -1: any */
    bool has_idle;
    uint64_t idle_days;
    int64_t now; /* the time deals are seen at */
} df_list_filter;

/* One page of a list, and the room it works in. */
typedef struct df_list_page {
    df_list_filter filter;
    uint64_t limit;
    size_t bytes_max; /* what the packed deals may take, past the first */
    /* the page: count deals packed into `deals`, and whether more match */
    size_t count;
    bool more;
    msgpack_sbuffer deals;
    msgpack_packer pk;
    char last[DF_MAX_ID]; /* id of the last deal looked at: the next cursor */
    size_t last_len;
    size_t examined;
    /* what the walk reads with, and the deal it is at */
    df_store *st;
    MDB_txn *txn;
    const df_pipelines *pipelines;
    df_deal deal;
    df_deal_view view;
    int rc;
} df_list_page;

/* Any deal, limit and the page empty. */
void df_list_page_reset(df_list_page *l);

/* Packs the deals of l->filter after the deal id (after, after_len) (from
 * the first when after is NULL) into l->deals, up to l->limit of them and,
 * past the first, up to l->bytes_max bytes; l->more says that a page more
 * may follow. Returns 0 or an LMDB error.
 * The caller releases l->deals with msgpack_sbuffer_destroy either way. */
int df_list_scan(df_list_page *l, df_store *st, MDB_txn *txn, const df_pipelines *pl,
                 const char *after, size_t after_len);

/* A cursor is the id of the last deal a page looked at, in lower-case hex. */
#define DF_CURSOR_MAX (2 * DF_MAX_ID)
/* Writes the cursor of id into hex (2 * len bytes). Returns its length. */
size_t df_cursor_encode(const char *id, size_t len, char *hex);
/* Reads a cursor into id (DF_MAX_ID bytes). Returns false when cursor is
 * not one that df_cursor_encode writes. */
bool df_cursor_decode(df_str cursor, char *id, size_t *len);

/* A page of stored events or rejected items, as stored: pointers into the
 * read transaction's snapshot, valid while it lasts. A page ends at `limit`
 * items, or before the item that would take what the reply packs of them
 * (each item's stored bytes and item_extra more) past bytes_max; the first
 * item is always taken, so that the next page starts after it. */
typedef struct df_page {
    MDB_val *events;
    uint64_t *seqs; /* each item's seq (its id for rejected items) */
    size_t count, limit;
    size_t bytes, bytes_max, item_extra;
} df_page;

/* Room for limit items; false when out of memory. */
bool df_page_init(df_page *p, size_t limit, size_t bytes_max, size_t item_extra);
void df_page_free(df_page *p);
/* Each fills p with the items after `after`, up to p's limits, and returns 0
 * or an LMDB error: a deal's events (after a seq), the log's events, the
 * rejected items (after an id). */
int df_page_deal_events(df_page *p, df_store *st, MDB_txn *txn, const df_deal *deal,
                        uint64_t after);
int df_page_log(df_page *p, df_store *st, MDB_txn *txn, uint64_t after);
int df_page_rejected(df_page *p, df_store *st, MDB_txn *txn, uint64_t after);

/* Packs the stored deal.moved notifications after seq `after`, up to limit
 * and, past the first, up to bytes_max bytes, into *out (initialised here,
 * destroyed by the caller either way), *count of them. Returns 0 or an LMDB
 * error (MDB_CORRUPTED for a move that no longer reads): a damaged move
 * fails the whole page. */
int df_pack_moves(msgpack_sbuffer *out, df_store *st, MDB_txn *txn, uint64_t after, size_t limit,
                  size_t bytes_max, size_t *count);

#endif
