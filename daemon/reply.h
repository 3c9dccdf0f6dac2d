/* reply.h: every map the api answers with, packed as the contract defines
 * it: the ok and error envelopes and the bodies of each operation's reply.
 * Packing only: what goes in is read elsewhere. */
#ifndef DF_REPLY_H
#define DF_REPLY_H

#include "batch.h"
#include "store.h"
#include "writer.h"

/* A paged reply (`history`, `replay`, `list`, `moves`, `rejected`) ends its
 * page before the item that would take it past df_reply_bytes_max bytes,
 * exactly as a page ended by `limit`: what ZeroMQ queues for a peer that
 * does not read is then bounded by its queue's length times this. The
 * bound is --max-message, and at least 1 MiB, so that any one recorded
 * event fits; a page always holds its first item, so that the next one
 * goes on after it, and a reply passes the bound only by what its one item
 * does. */
#define DF_REPLY_BYTES_MIN (1u << 20)
size_t df_reply_bytes_max(size_t max_message);
/* What a paged reply packs besides its items, at most (its keys, the
 * array's header, `last_seq` or `cursor`): the items may take the rest. */
#define DF_REPLY_FRAME_BYTES 512
/* What the `rejected` reply packs for an item beyond its stored bytes (its
 * `id`, or nil values in place of a damaged item). */
#define DF_REPLY_REJECTED_EXTRA 48

/* The head of a successful reply: a map of `ok` and `keys` more keys, which
 * the caller packs next. */
void df_reply_ok(msgpack_packer *pk, size_t keys);
void df_reply_error(msgpack_packer *pk, int code, const char *message);

/* A deal object as seen in view (df_deal_view_at); a value of the `deal`
 * reply and of the `list` reply's `deals`. */
void df_pack_deal(msgpack_packer *pk, const df_deal *deal, const df_deal_view *view);

/* What `stats` reports beyond the writer's counters. */
typedef struct df_stats {
    uint64_t notifications;
    uint64_t stale_notifications;
    uint64_t pending;
    int64_t uptime_ms;
    uint64_t db_bytes;
    uint64_t disk_free_bytes;
    uint64_t map_bytes;
    uint64_t map_used_bytes;
    uint8_t chain_head[DF_CHAIN_BYTES]; /* the log's last hash (store.h) */
    df_histogram_snapshot commit_latency;
    df_histogram_snapshot append_latency;
} df_stats;

void df_reply_stats(msgpack_packer *pk, const df_writer_counters *c, const df_stats *s);
void df_reply_deal(msgpack_packer *pk, const df_deal *deal, const df_deal_view *view);
/* `history` and `replay`: recorded events as they are stored. */
void df_reply_history(msgpack_packer *pk, const MDB_val *events, size_t count);
void df_reply_replay(msgpack_packer *pk, const MDB_val *events, size_t count, uint64_t last_seq);
/* `replay` with `proof: true`: each event map gains `raw` (its bytes),
 * `digest` (its proof's, store.h), `redacted` when it was, and `hash`
 * (hashes[i * 32], the chain's hash at it). */
void df_reply_replay_proof(msgpack_packer *pk, const MDB_val *events, const df_log_proof *proofs,
                           const uint8_t *hashes, size_t count, uint64_t last_seq);
/* `rejected`: stored items, the first with id first_id (ids count up from 1
 * without a gap). */
void df_reply_rejected(msgpack_packer *pk, const MDB_val *items, size_t count, uint64_t first_id);
/* `moves` and `list` take their items already packed, count of them. */
void df_reply_moves(msgpack_packer *pk, size_t count, const msgpack_sbuffer *moves,
                    uint64_t last_seq);
/* cursor NULL: the last page. */
void df_reply_list(msgpack_packer *pk, size_t count, const msgpack_sbuffer *deals,
                   const char *cursor, size_t cursor_len);
void df_reply_board(msgpack_packer *pk, const df_figures *f);
/* The `count`, `amount` and `weighted` pairs of a board stage, a forecast
 * period or cell, without their map's header. */
void df_pack_count_amount_weighted(msgpack_packer *pk, const df_sums *s, double weighted);
/* `pipelines`: the given pipelines, each with its stages in pipeline order. */
void df_reply_pipelines(msgpack_packer *pk, const df_pipeline *const *pipelines, size_t count);
void df_reply_metrics(msgpack_packer *pk, const df_figures *f, const df_metrics *m);
/* The same with `series`, the msgpack array series[0..len) packed already
 * of df_pack_metrics_period maps. */
void df_reply_metrics_series(msgpack_packer *pk, const df_figures *f, const df_metrics *m,
                             const char *series, size_t len);
/* One period of a series: its window and the figures that depend on it. */
void df_pack_metrics_period(msgpack_packer *pk, int64_t start, int64_t end, const df_figures *f,
                            const df_metrics *m);
/* An append's results: one per event of items [first, end) of a committed
 * batch; for a redact (one item), its seq and how many events it changed. */
void df_reply_append(msgpack_packer *pk, const df_batch *b, size_t first, size_t end);

#endif
