/* writer.c: the writer thread. It takes the batches the loop hands over and
 * records each in one write transaction (the group commit, recorder.h),
 * publishes what the commit changed, flushes the derived state held in
 * memory when it grows or the daemon is quiet, looks for stale deals, and
 * hands results back. If a commit fails, the batch is reported as not
 * recorded and the memory state is rebuilt from the log. */
#include "writer.h"

#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "overlay.h"
#include "recorder.h"
#include "room.h"

/* Derived state is also flushed after a quiet spell this long. */
#define FLUSH_IDLE_MS 200

struct df_writer {
    df_store *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* waits on CLOCK_MONOTONIC */
    df_batch *queued;    /* the next batch, while the writer works on one */
    bool queued_held;    /* submitted behind a held batch the loop has not taken back */
    df_batch *current;   /* the batch being recorded */
    df_batch *joined;    /* an append batch taken from `queued` into current's commit */
    df_batch *finished[DF_WRITER_HOLDS]; /* oldest first */
    size_t nfinished;
    size_t held_untaken; /* held batches in finished */
    bool working;
    bool stopping;
    bool started;
    bool flush_wanted; /* under mu */
    bool stale_wanted; /* under mu */
    df_room room;      /* whether the store has room (writer thread; `full` read by all) */
    /* why the memory state could not be read back from the store after a
     * failed commit (writer thread): until it is, nothing is recorded or
     * flushed from a state that is half of one batch */
    int unloaded;
    void (*done)(void *ctx);
    void *done_ctx;
    df_writer_counters counters; /* under mu */
    df_histogram commit_latency; /* of mdb_txn_commit, fsync included (relaxed atomics) */

    df_overlay *overlay;    /* what readers see of the deals in memory (locks itself) */
    df_stale_finder *stale; /* the look, and what it found for the loop (locks itself) */
    df_recorder *recorder;  /* the writer thread's */
};

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The monotonic time ms from now, for a timed wait on `wake`. */
static struct timespec deadline_in(int64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_nsec += (ms % 1000) * 1000000L;
    t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

/* Publishes the recorder's counts: after the deals they count are visible. */
static void publish_counts(df_writer *w)
{
    df_recorder_counts c = df_recorder_counts_get(w->recorder);
    bool pipelines_changed = df_recorder_take_pipelines_changed(w->recorder);
    pthread_mutex_lock(&w->mu);
    if (pipelines_changed)
        w->counters.pipeline_changes++;
    w->counters.committed_seq = c.last_seq;
    w->counters.duplicates = c.duplicates;
    w->counters.rejected = c.last_rejected;
    w->counters.deals = c.deals;
    pthread_mutex_unlock(&w->mu);
}

static int load(df_writer *w)
{
    int rc = df_recorder_load(w->recorder);
    if (rc == 0)
        publish_counts(w);
    return rc;
}

static void look_for_stale(df_writer *w)
{
    df_stale_finder_look(w->stale, w->st, df_recorder_pipelines(w->recorder));
}

/* Whether the memory state is whole: read back now if a failed commit left
 * it half-built. */
static bool state_whole(df_writer *w)
{
    if (w->unloaded == 0)
        return true;
    if ((w->unloaded = load(w)) == 0)
        df_log("the state was read back from the store: recording again");
    return w->unloaded == 0;
}

static void flush(df_writer *w)
{
    if (!state_whole(w))
        return;
    int rc = df_store_make_room(w->st, 2 * df_overlay_bytes(w->overlay) + DF_ROOM_MIN);
    if (rc == 0)
        rc = df_recorder_flush(w->recorder);
    if (rc != 0) {
        df_stale_finder_hand_over(w->stale, false);
        pthread_mutex_lock(&w->mu);
        bool first = !w->counters.flush_failing;
        w->counters.flush_failing = true;
        pthread_mutex_unlock(&w->mu);
        if (first)
            df_log("flushing derived state failed (it stays in memory and is retried): %s%s",
                   mdb_strerror(rc), df_room_map_hint(rc));
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->counters.flushed_seq = df_recorder_counts_get(w->recorder).derived_seq;
    w->counters.flushes++;
    w->counters.flush_failing = false;
    pthread_mutex_unlock(&w->mu);
    malloc_trim(0);
    df_stale_finder_hand_over(w->stale, true);
    look_for_stale(w);
}

/* While the store is full, waits out the retry delay (or a stop). */
static void wait_for_retry(df_writer *w)
{
    int64_t wait_ms = df_room_retry_in(&w->room);
    if (wait_ms <= 0)
        return;
    struct timespec until = deadline_in(wait_ms);
    pthread_mutex_lock(&w->mu);
    while (!w->stopping && pthread_cond_timedwait(&w->wake, &w->mu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&w->mu);
}

/* Whether a batch holds the events of append requests, which wait for its commit. */
static bool of_requests(const df_batch *b)
{
    return b->count > 0 && b->items[0].request;
}

/* An append batch queued behind the ingest batch being recorded is taken
 * into the same commit, so that an acknowledged append waits for one fsync
 * behind a flood rather than two. NULL when none is queued, or the store has
 * no room for both. */
static df_batch *join_queued(df_writer *w, const df_batch *b)
{
    if (of_requests(b))
        return NULL;
    pthread_mutex_lock(&w->mu);
    df_batch *q = w->queued && !w->queued_held && of_requests(w->queued) ? w->queued : NULL;
    pthread_mutex_unlock(&w->mu);
    /* only this thread takes `queued` back, so q stays queued meanwhile */
    if (!q || df_room_make(&w->room, w->st, 4 * (b->arena_len + q->arena_len)) != 0)
        return NULL;
    pthread_mutex_lock(&w->mu);
    w->queued = NULL;
    w->joined = q;
    pthread_mutex_unlock(&w->mu);
    return q;
}

/* Marks a batch the failed commit did not record. */
static void not_recorded(df_writer *w, df_batch *b, int rc, bool full)
{
    if (full) {
        /* the room looked for was not enough: held like a batch not tried */
        df_room_hold(&w->room, b);
        return;
    }
    b->failure = DF_EUNAVAILABLE;
    snprintf(b->failure_message, sizeof(b->failure_message),
             "the store could not record the batch: %s%s", mdb_strerror(rc), df_room_map_hint(rc));
    b->nmoves = 0;
    b->rejected = 0;
    b->duplicates = 0;
    for (size_t i = 0; i < b->count; i++) {
        b->items[i].error = DF_EUNAVAILABLE;
        b->items[i].dup = false;
        b->items[i].message = DF_NO_TEXT;
    }
}

static int record_items(df_writer *w, MDB_txn *txn, df_batch *b)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < b->count; i++)
        rc = df_recorder_item(w->recorder, txn, b, &b->items[i]);
    return rc;
}

/* Records b, and an append batch queued behind it (returned in *joined), in one commit. */
static void process(df_writer *w, df_batch *b, bool behind_held, df_batch **joined)
{
    MDB_txn *txn = NULL;
    df_batch *q = NULL;
    int rc;
    *joined = NULL;
    if (behind_held) {
        /* recorded now, its events would come before the held ones the loop
         * puts back ahead of what arrived since */
        df_room_hold(&w->room, b);
        return;
    }
    if (!state_whole(w)) {
        not_recorded(w, b, w->unloaded, false);
        return;
    }
    if (df_room_full(&w->room))
        wait_for_retry(w);
    if (df_room_make(&w->room, w->st, 4 * b->arena_len) != 0) {
        df_room_hold(&w->room, b);
        return;
    }
    df_recorder_mark mark = df_recorder_mark_get(w->recorder);
    rc = df_store_write_begin(w->st, &txn);
    if (rc == 0)
        rc = record_items(w, txn, b);
    if (rc == 0 && (q = join_queued(w, b)) != NULL) {
        *joined = q;
        rc = record_items(w, txn, q);
    }
    uint64_t commit_ns = 0;
    if (rc == 0 && (rc = df_recorder_end_batch(w->recorder, txn)) == 0) {
        commit_ns = now_ns();
        rc = df_store_write_commit(w->st, txn);
        commit_ns = now_ns() - commit_ns;
        txn = NULL;
    }
    if (rc == 0) {
        df_histogram_observe(&w->commit_latency, commit_ns / 1000);
        df_recorder_publish(w->recorder);
        publish_counts(w);
        pthread_mutex_lock(&w->mu);
        w->counters.commits++;
        pthread_mutex_unlock(&w->mu);
        return;
    }
    if (txn)
        mdb_txn_abort(txn);
    /* what the batches changed in memory is undone; only a pipeline
     * definition makes the unflushed log be folded back */
    bool undone =
        (!q || df_recorder_undo(w->recorder, q, &mark)) && df_recorder_undo(w->recorder, b, &mark);
    if (!undone && (w->unloaded = load(w)) != 0)
        df_log("cannot read the store back after a failed commit (nothing is recorded until it "
               "is): %s",
               mdb_strerror(w->unloaded));
    bool full = df_room_commit_failed(&w->room, w->st, rc) != 0;
    not_recorded(w, b, rc, full);
    if (q)
        not_recorded(w, q, rc, full);
}

/* Whether the log holds events the flushed state does not cover. */
static bool unflushed(const df_writer *w)
{
    df_recorder_counts c = df_recorder_counts_get(w->recorder);
    return c.last_seq > c.derived_seq;
}

/* Waits under mu for something to do, or FLUSH_IDLE_MS of quiet while
 * something waits to be flushed; returns true for the quiet spell. */
static bool wait_for_work(df_writer *w)
{
    struct timespec until;
    bool timed = false;
    while (!w->queued && !w->stopping && !w->flush_wanted && !w->stale_wanted) {
        if (df_room_full(&w->room)) {
            /* looks for room again even when nothing comes: the loop sends
             * nothing while the store is full */
            int64_t wait_ms = df_room_retry_in(&w->room);
            if (wait_ms <= 0)
                return false;
            struct timespec retry = deadline_in(wait_ms);
            if (pthread_cond_timedwait(&w->wake, &w->mu, &retry) == ETIMEDOUT)
                return false;
            continue;
        }
        if (!unflushed(w)) {
            pthread_cond_wait(&w->wake, &w->mu);
            timed = false;
            continue;
        }
        if (!timed) {
            until = deadline_in(FLUSH_IDLE_MS);
            timed = true;
        }
        if (pthread_cond_timedwait(&w->wake, &w->mu, &until) == ETIMEDOUT)
            return true;
    }
    return false;
}

static void *writer_main(void *arg)
{
    df_writer *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        bool idle = wait_for_work(w);
        df_batch *b = w->queued;
        bool behind_held = w->queued_held;
        bool stopping = w->stopping && !b;
        bool want_flush = w->flush_wanted || idle || stopping || df_recorder_flush_due(w->recorder);
        bool want_stale = w->stale_wanted && !stopping;
        w->queued = NULL;
        w->queued_held = false;
        w->current = b;
        w->flush_wanted = false;
        w->stale_wanted = false;
        w->working = b != NULL || want_flush || want_stale;
        pthread_mutex_unlock(&w->mu);
        uint64_t began = now_ns();

        if (!b && df_room_full(&w->room) && df_room_retry_in(&w->room) <= 0)
            df_room_make(&w->room, w->st, 0);
        if (want_stale && unflushed(w) && df_stale_finder_overdue(w->stale, df_now_ms()))
            want_flush = true;
        if (want_flush && unflushed(w))
            flush(w); /* looks for stale deals too */
        else if (want_stale && !unflushed(w))
            look_for_stale(w);
        df_batch *joined = NULL;
        if (b) {
            process(w, b, behind_held, &joined);
            b->writer_ns = now_ns() - began;
        }
        pthread_mutex_lock(&w->mu);
        df_batch *done[2] = {b, joined};
        for (size_t i = 0; i < 2 && done[i]; i++) {
            assert(w->nfinished < DF_WRITER_HOLDS);
            w->finished[w->nfinished++] = done[i];
            if (done[i]->store_full) {
                w->held_untaken++;
                if (w->queued)
                    w->queued_held = true;
            }
        }
        w->current = NULL;
        w->joined = NULL;
        w->working = false;
        pthread_mutex_unlock(&w->mu);
        if (stopping)
            break;
        w->done(w->done_ctx);
    }
    return NULL;
}

int df_writer_start(df_writer **out, df_store *st, void (*done)(void *ctx), void *ctx,
                    df_error *err)
{
    df_writer *w = calloc(1, sizeof(*w));
    pthread_condattr_t attr;
    int rc;
    if (!w)
        return df_fail(err, DF_EUNAVAILABLE, "out of memory");
    w->st = st;
    w->done = done;
    w->done_ctx = ctx;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    df_histogram_init(&w->commit_latency);
    if (!(w->overlay = df_overlay_new()) || !(w->stale = df_stale_finder_new()) ||
        !(w->recorder = df_recorder_new(st, w->overlay, w->stale))) {
        df_writer_stop(w);
        return df_fail(err, DF_EUNAVAILABLE, "out of memory");
    }
    if ((rc = load(w)) != 0) {
        df_writer_stop(w);
        return df_fail(err, DF_EUNAVAILABLE, "cannot read the store: %s", mdb_strerror(rc));
    }
    w->counters.flushed_seq = df_recorder_counts_get(w->recorder).derived_seq;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        df_writer_stop(w);
        return df_fail(err, DF_EUNAVAILABLE, "cannot start the writer thread");
    }
    w->started = true;
    *out = w;
    return 0;
}

void df_writer_set_max_future(df_writer *w, int64_t ms)
{
    /* the writer reads it only for a batch, which df_writer_submit hands
     * over under the lock: set before the first, it is seen */
    df_recorder_set_max_future(w->recorder, ms);
}

/* Under mu: the batches handed over and not taken back. */
static size_t holds(const df_writer *w)
{
    return (w->queued != NULL) + (w->current != NULL) + (w->joined != NULL) + w->nfinished;
}

bool df_writer_can_take(df_writer *w)
{
    pthread_mutex_lock(&w->mu);
    bool room = holds(w) < DF_WRITER_HOLDS && !w->queued;
    pthread_mutex_unlock(&w->mu);
    return room;
}

void df_writer_submit(df_writer *w, df_batch *b)
{
    pthread_mutex_lock(&w->mu);
    assert(holds(w) < DF_WRITER_HOLDS && !w->queued);
    w->queued = b;
    w->queued_held = w->held_untaken > 0;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
}

void df_writer_request_flush(df_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->flush_wanted = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
}

df_batch *df_writer_take(df_writer *w)
{
    pthread_mutex_lock(&w->mu);
    df_batch *b = NULL;
    if (w->nfinished > 0) {
        b = w->finished[0];
        w->nfinished--;
        memmove(w->finished, w->finished + 1, w->nfinished * sizeof(w->finished[0]));
        if (b->store_full)
            w->held_untaken--;
    }
    pthread_mutex_unlock(&w->mu);
    return b;
}

void df_writer_request_stale_check(df_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->stale_wanted = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
}

size_t df_writer_take_stale(df_writer *w, df_stale **out)
{
    return df_stale_finder_take(w->stale, out);
}

bool df_writer_idle(df_writer *w)
{
    pthread_mutex_lock(&w->mu);
    bool idle = holds(w) == 0 && !w->working;
    pthread_mutex_unlock(&w->mu);
    return idle;
}

bool df_writer_store_full(df_writer *w)
{
    return df_room_full(&w->room);
}

void df_writer_count_lost(df_writer *w, uint64_t events)
{
    pthread_mutex_lock(&w->mu);
    w->counters.lost += events;
    pthread_mutex_unlock(&w->mu);
}

df_writer_counters df_writer_counters_get(df_writer *w)
{
    pthread_mutex_lock(&w->mu);
    df_writer_counters c = w->counters;
    pthread_mutex_unlock(&w->mu);
    c.store_full = df_room_full(&w->room);
    return c;
}

df_histogram_snapshot df_writer_commit_latency(df_writer *w)
{
    return df_histogram_read(&w->commit_latency);
}

bool df_writer_lookup(df_writer *w, const char *deal, size_t len, uint8_t *record,
                      size_t *record_len)
{
    return df_overlay_lookup(w->overlay, deal, len, record, record_len);
}

void df_writer_stop(df_writer *w)
{
    if (!w)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stopping = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    df_recorder_free(w->recorder);
    df_stale_finder_free(w->stale);
    df_overlay_free(w->overlay);
    free(w);
}
