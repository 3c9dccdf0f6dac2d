/* writer.h: the writer thread. It owns every write transaction: the loop
 * hands it a batch of received events, it appends them to the log in one
 * transaction, folds them into the deals it holds in memory, commits, and
 * hands the batch back with a result per event and the deal.moved
 * notifications to publish. While it records one batch it holds the next,
 * so that it goes from one commit straight to the next. Derived state
 * reaches the store in flushes. */
#ifndef DF_WRITER_H
#define DF_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "histogram.h"
#include "stale.h"
#include "store.h"

typedef struct df_writer df_writer;

/* What the writer counts, readable from the loop thread. */
typedef struct df_writer_counters {
    uint64_t committed_seq; /* recorded and visible */
    uint64_t flushed_seq;   /* the store's indexes and aggregates cover the log up to here */
    uint64_t duplicates;
    uint64_t rejected;
    uint64_t deals;
    uint64_t commits;
    uint64_t flushes;
    uint64_t pipeline_changes; /* commits that defined or replaced a pipeline */
    bool flush_failing; /* the last flush failed (a full disk or map): reads of indexes cannot be
                           served */
    bool store_full;    /* the disk or the map is full: batches are held, not tried */
    uint64_t lost;      /* received ingest events neither recorded nor kept as rejected */
} df_writer_counters;

/* Starts the thread. `done` is called from the writer thread after each
 * batch (use uv_async_send). Returns 0 or DF_EUNAVAILABLE with a message. */
int df_writer_start(df_writer **out, df_store *st, void (*done)(void *ctx), void *ctx,
                    df_error *err);
/* How far ahead of its arrival a sent event's `at` may be, in ms (apply.h;
 * by default DF_DEFAULT_MAX_FUTURE). Call it before the first batch. */
void df_writer_set_max_future(df_writer *w, int64_t ms);
/* The batches the writer holds at most, handed over and not yet taken
 * back: the one it records and the one queued behind it. */
#define DF_WRITER_HOLDS 2
/* Whether df_writer_submit may be called: nothing is queued, and the writer
 * holds at most one batch (being recorded, or finished and not taken). */
bool df_writer_can_take(df_writer *w);
/* Hands a batch over (df_writer_can_take must be true). Batches are recorded
 * one after another on the writer thread, in the order submitted. While a
 * batch came back held (store_full) and was not taken yet, the batch queued
 * behind it is held too without being tried, so that the loop can put the
 * held events back ahead of newer ones in their order. */
void df_writer_submit(df_writer *w, df_batch *b);
/* Returns the oldest batch the writer finished, or NULL while none is; the
 * batches come back in the order they were submitted. */
df_batch *df_writer_take(df_writer *w);
/* Whether the writer holds no batch and is doing nothing. */
bool df_writer_idle(df_writer *w);
/* Asks for the derived state held in memory to be flushed to the store
 * soon; `done` is called when it was. */
void df_writer_request_flush(df_writer *w);
/* Copies the committed record (record.h) of a deal changed since the last
 * flush into record (DF_DEAL_RECORD_MAX bytes). Returns false when the
 * store itself holds the deal's latest state (or nothing). */
bool df_writer_lookup(df_writer *w, const char *deal, size_t len, uint8_t *record,
                      size_t *record_len);
df_writer_counters df_writer_counters_get(df_writer *w);
/* How long the commits of batches took (successful ones: as many as
 * `commits`), readable from any thread. */
df_histogram_snapshot df_writer_commit_latency(df_writer *w);
/* Asks the writer to look for open deals that went stale since it last
 * looked (call it every second or so); `done` is called when it found some. */
void df_writer_request_stale_check(df_writer *w);
/* Hands over the deal.stale notifications found so far (*out, count
 * returned; the caller frees *out). */
size_t df_writer_take_stale(df_writer *w, df_stale **out);
/* Whether the store is full: appends are refused, ingest is held, and the
 * writer tries the next batch after a delay. */
bool df_writer_store_full(df_writer *w);
/* Counts received events that could be neither recorded nor rejected. */
void df_writer_count_lost(df_writer *w, uint64_t events);
/* Stops the thread after the batches it holds. */
void df_writer_stop(df_writer *w);

#endif
