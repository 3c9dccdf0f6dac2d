/* readahead.c: the log read ahead of its fold (see readahead.h). The reader
 * fills batches of decoded events in a ring and the fold empties them in
 * order; a lock is taken once a batch, not once an event. The events'
 * strings point into the map, which the reader's read transaction keeps
 * until the fold is done with them. */
#include "readahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* A batch is a few hundred KB of decoded events (a df_event holds room for
 * a pipeline's stages); the ring lets the reader run a few ahead. */
#define BATCH_EVENTS 128
#define BATCHES      4

typedef struct batch {
    df_event events[BATCH_EVENTS];
    size_t count;
    msgpack_zone zone; /* the events' unpacked maps */
    bool last;         /* the walk ended after these events */
    int rc;            /* with this error (0: none) */
} batch;

struct df_readahead {
    df_store *st;
    uint64_t after, last;
    df_readahead_each each;
    void *ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t filled, emptied;
    size_t nfilled; /* batches filled and not yet given back (under mu) */
    bool stopping;  /* under mu */
    /* the reader's */
    size_t write_at;
    uint64_t next_seq;
    /* the fold's */
    size_t read_at, taken; /* the batch it reads, events of it handed over */
    bool holding;          /* it holds batch read_at */
    batch ring[BATCHES];
};

/* Hands the filled batch over and waits for the next to be free; false
 * when the walk is being stopped. */
static bool hand_over(df_readahead *ra)
{
    bool stopping;
    pthread_mutex_lock(&ra->mu);
    ra->nfilled++;
    pthread_cond_signal(&ra->filled);
    while (ra->nfilled == BATCHES && !ra->stopping)
        pthread_cond_wait(&ra->emptied, &ra->mu);
    stopping = ra->stopping;
    pthread_mutex_unlock(&ra->mu);
    ra->write_at = (ra->write_at + 1) % BATCHES;
    batch *b = &ra->ring[ra->write_at];
    b->count = 0;
    msgpack_zone_clear(&b->zone);
    return !stopping;
}

/* Decodes one record into the batch being filled. */
static int read_one(void *ctx, uint64_t seq, const MDB_val *v)
{
    df_readahead *ra = ctx;
    batch *b = &ra->ring[ra->write_at];
    df_event *ev = &b->events[b->count];
    msgpack_object obj;
    size_t offset = 0;
    if (seq != ra->next_seq) {
        b->rc = MDB_NOTFOUND;
        return 1;
    }
    /* its bytes matched their digest: they are those the recorder wrote
     * after ingest had checked them, so the unpacker gets them unchecked */
    if (msgpack_unpack(v->mv_data, v->mv_size, &offset, &b->zone, &obj) != MSGPACK_UNPACK_SUCCESS ||
        offset != v->mv_size || df_recorded_decode(&obj, ev, NULL) != 0) {
        b->rc = MDB_CORRUPTED;
        return 1;
    }
    ev->seq = seq;
    if ((b->rc = ra->each(ra->ctx, ev)) != 0)
        return 1;
    b->count++;
    ra->next_seq++;
    return b->count == BATCH_EVENTS && !hand_over(ra);
}

static void *read_ahead(void *arg)
{
    df_readahead *ra = arg;
    MDB_txn *txn = NULL;
    batch *b = &ra->ring[ra->write_at];
    int rc = df_store_snapshot_begin(ra->st, &txn);
    if (rc == 0)
        rc = df_store_log_scan(ra->st, txn, ra->after, ra->last - ra->after, read_one, ra);
    b = &ra->ring[ra->write_at];
    if (rc != 0 && b->rc == 0)
        b->rc = rc;
    if (b->rc == 0 && ra->next_seq != ra->last + 1)
        b->rc = MDB_NOTFOUND;
    b->last = true;
    pthread_mutex_lock(&ra->mu);
    if (!ra->stopping) {
        ra->nfilled++;
        pthread_cond_signal(&ra->filled);
    }
    /* the fold reads strings in the map until it is done */
    while (!ra->stopping)
        pthread_cond_wait(&ra->emptied, &ra->mu);
    pthread_mutex_unlock(&ra->mu);
    if (txn)
        mdb_txn_abort(txn);
    return NULL;
}

/* Frees what df_readahead_start made, its thread not running. */
static void destroy(df_readahead *ra)
{
    for (size_t i = 0; i < BATCHES; i++)
        msgpack_zone_destroy(&ra->ring[i].zone);
    pthread_cond_destroy(&ra->filled);
    pthread_cond_destroy(&ra->emptied);
    pthread_mutex_destroy(&ra->mu);
    free(ra);
}

int df_readahead_start(df_readahead **out, df_store *st, uint64_t after, uint64_t last,
                       df_readahead_each each, void *ctx)
{
    df_readahead *ra = calloc(1, sizeof(*ra));
    *out = NULL;
    if (!ra)
        return ENOMEM;
    ra->st = st;
    ra->after = after;
    ra->last = last;
    ra->each = each;
    ra->ctx = ctx;
    ra->next_seq = after + 1;
    for (size_t i = 0; i < BATCHES; i++)
        msgpack_zone_init(&ra->ring[i].zone, 64 * 1024);
    pthread_mutex_init(&ra->mu, NULL);
    pthread_cond_init(&ra->filled, NULL);
    pthread_cond_init(&ra->emptied, NULL);
    int rc = pthread_create(&ra->thread, NULL, read_ahead, ra);
    if (rc != 0) {
        destroy(ra);
        return rc;
    }
    *out = ra;
    return 0;
}

const df_event *df_readahead_next(df_readahead *ra, int *rc)
{
    *rc = 0;
    for (;;) {
        if (!ra->holding) {
            pthread_mutex_lock(&ra->mu);
            while (ra->nfilled == 0)
                pthread_cond_wait(&ra->filled, &ra->mu);
            pthread_mutex_unlock(&ra->mu);
            ra->holding = true;
            ra->taken = 0;
        }
        batch *b = &ra->ring[ra->read_at];
        if (ra->taken < b->count)
            return &b->events[ra->taken++];
        if (b->last) { /* kept: every later call ends here too */
            *rc = b->rc;
            return NULL;
        }
        pthread_mutex_lock(&ra->mu);
        ra->nfilled--;
        pthread_cond_signal(&ra->emptied);
        pthread_mutex_unlock(&ra->mu);
        ra->holding = false;
        ra->read_at = (ra->read_at + 1) % BATCHES;
    }
}

void df_readahead_stop(df_readahead *ra)
{
    if (!ra)
        return;
    pthread_mutex_lock(&ra->mu);
    ra->stopping = true;
    pthread_cond_signal(&ra->emptied);
    pthread_mutex_unlock(&ra->mu);
    pthread_join(ra->thread, NULL);
    destroy(ra);
}
