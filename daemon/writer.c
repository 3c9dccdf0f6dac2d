/* writer.c: the writer thread: one write transaction per batch (the group
 * commit), in which each event is checked, recorded in the log and folded
 * into its deal, whose indexes and stage aggregates move with it. If the
 * store fails, the whole batch is rolled back and reported as not recorded. */
#include "writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refold.h"

struct df_writer {
    df_store *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    df_batch *submitted;
    df_batch *finished;
    bool working;
    bool stopping;
    void (*done)(void *ctx);
    void *done_ctx;
    df_writer_counters counters; /* under mu */

    /* owned by the writer thread */
    df_pipelines *pipelines;
    df_refolder *refolder;
    msgpack_zone zone;
    msgpack_sbuffer scratch;
    df_event event;
    df_deal before, after;
    uint64_t last_seq, last_rejected, prev_moved, duplicates;
};

/* ---- batches ---- */

df_batch *df_batch_new(void)
{
    return calloc(1, sizeof(df_batch));
}

void df_batch_free(df_batch *b)
{
    if (!b)
        return;
    free(b->arena);
    free(b->items);
    free(b->moves);
    free(b);
}

void df_batch_clear(df_batch *b)
{
    b->arena_len = 0;
    b->count = 0;
    b->nmoves = 0;
    b->failure = 0;
    b->failure_message[0] = 0;
    b->rejected = 0;
    b->duplicates = 0;
}

static bool grow(void **buf, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*buf, n * size);
    if (!p)
        return false;
    *buf = p;
    *cap = n;
    return true;
}

uint32_t df_batch_copy(df_batch *b, const void *data, size_t len)
{
    if (b->arena_len + len + 1 > UINT32_MAX ||
        !grow((void **)&b->arena, &b->arena_cap, b->arena_len + len + 1, 1))
        return DF_NO_TEXT;
    uint32_t at = (uint32_t)b->arena_len;
    if (len)
        memcpy(b->arena + at, data, len);
    b->arena[at + len] = 0; /* messages read back as C strings */
    b->arena_len += len + 1;
    return at;
}

df_item *df_batch_add(df_batch *b, const void *raw, size_t len, int64_t recv, void *request)
{
    if (!grow((void **)&b->items, &b->cap, b->count + 1, sizeof(df_item)))
        return NULL;
    uint32_t at = df_batch_copy(b, raw, len);
    if (at == DF_NO_TEXT)
        return NULL;
    df_item *it = &b->items[b->count++];
    memset(it, 0, sizeof(*it));
    it->raw = at;
    it->raw_len = (uint32_t)len;
    it->recv = recv;
    it->request = request;
    it->message = DF_NO_TEXT;
    return it;
}

const char *df_batch_text(const df_batch *b, uint32_t offset)
{
    return offset == DF_NO_TEXT ? "" : b->arena + offset;
}

/* ---- recording one item ---- */

static void fail_item(df_batch *b, df_item *it, const df_error *err)
{
    it->error = err->code;
    it->message = df_batch_copy(b, err->message, strlen(err->message));
}

/* Keeps what ingest could not record: {recv, error, message, raw}. */
static int reject(df_writer *w, MDB_txn *txn, df_batch *b, const df_item *it)
{
    msgpack_packer pk;
    const char *message = df_batch_text(b, it->message);
    msgpack_sbuffer_clear(&w->scratch);
    msgpack_packer_init(&pk, &w->scratch, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    df_pack_cstr(&pk, "recv");
    msgpack_pack_int64(&pk, it->recv);
    df_pack_cstr(&pk, "error");
    df_pack_cstr(&pk, df_error_name(it->error));
    df_pack_cstr(&pk, "message");
    df_pack_cstr(&pk, message);
    df_pack_cstr(&pk, "raw");
    msgpack_pack_bin_with_body(&pk, b->arena + it->raw, it->raw_len);
    b->rejected++;
    return df_store_rejected_put(w->st, txn, ++w->last_rejected, w->scratch.data, w->scratch.size);
}

static bool same_name(const df_name *a, const df_name *b)
{
    return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

static int add_move(df_writer *w, df_batch *b, bool existed)
{
    const df_deal *before = &w->before, *after = &w->after;
    if (!after->has_stage)
        return 0;
    if (existed && before->has_stage && same_name(&before->stage, &after->stage))
        return 0;
    if (!grow((void **)&b->moves, &b->moves_cap, b->nmoves + 1, sizeof(df_move)))
        return MDB_PANIC;
    df_move *m = &b->moves[b->nmoves++];
    int probability, rot_days;
    df_str pipeline = df_deal_pipeline(after);
    memset(m, 0, sizeof(*m));
    m->seq = w->event.seq;
    m->prev = w->prev_moved;
    w->prev_moved = m->seq;
    m->at = after->stage_since;
    m->deal = after->deal;
    df_name_set(&m->pipeline, pipeline.ptr, pipeline.len);
    m->has_from = existed && before->has_stage;
    if (m->has_from)
        m->from = before->stage;
    m->to = after->stage;
    m->amount = after->amount;
    m->has_owner = after->has_owner;
    m->owner = after->owner;
    df_deal_stage_info(after, w->pipelines, &m->status, &probability, &rot_days);
    return 0;
}

/* Folds the just-recorded event into its deal. */
static int fold_deal(df_writer *w, MDB_txn *txn, df_batch *b, bool existed)
{
    df_store *st = w->st;
    int rc;
    if ((rc = df_store_deal_event_put(st, txn, w->event.deal.ptr, w->event.deal.len,
                                      w->event.seq)) != 0)
        return rc;
    if (existed)
        w->after = w->before;
    else
        df_deal_init(&w->after, w->event.deal.ptr, w->event.deal.len);
    if (!existed || df_fold_in_order(&w->after, &w->event))
        df_fold_apply(&w->after, &w->event, w->pipelines);
    else if ((rc = df_refold(w->refolder, st, txn, w->pipelines, INT64_MAX, &w->after)) != 0)
        return rc;
    if ((rc = df_store_deal_reindex(st, txn, existed ? &w->before : NULL, &w->after)) != 0 ||
        (rc = df_store_deal_put(st, txn, &w->after)) != 0)
        return rc;
    return add_move(w, b, existed);
}

/* Records one item. Returns an LMDB error only when the store failed; what
 * is wrong with the event itself becomes the item's error. */
static int record_item(df_writer *w, MDB_txn *txn, df_batch *b, df_item *it)
{
    df_store *st = w->st;
    df_event *ev = &w->event;
    const char *raw = b->arena + it->raw;
    msgpack_object obj;
    df_error err = {0};
    bool existed = false;
    int rc;

    if (it->error)
        return it->request ? 0 : reject(w, txn, b, it);
    msgpack_zone_clear(&w->zone);
    if (df_msgpack_unpack(raw, it->raw_len, &w->zone, &obj, &err) != 0 ||
        df_event_decode(&obj, ev, &err) != 0)
        goto refuse;
    if ((rc = df_store_id_get(st, txn, ev->id.ptr, ev->id.len, &it->seq)) == 0) {
        it->dup = true;
        b->duplicates++;
        w->duplicates++;
        return 0;
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    if (ev->type != DF_EV_PIPELINE) {
        df_deal_init(&w->before, ev->deal.ptr, ev->deal.len);
        rc = df_store_deal_get(st, txn, &w->before);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
        existed = rc == 0;
        uint64_t version = existed ? w->before.version : 0;
        if (ev->has_expect && ev->expect != version) {
            df_fail(&err, DF_ECONFLICT, "deal `%.*s` is at version %llu, not %llu",
                    (int)ev->deal.len, ev->deal.ptr, (unsigned long long)version,
                    (unsigned long long)ev->expect);
            goto refuse;
        }
        if (df_check_event(w->pipelines, existed ? &w->before.pipeline : NULL, ev, &err) != 0)
            goto refuse;
    } else if (ev->has_expect) {
        df_fail(&err, DF_EBAD_REQUEST, "`expect` applies to deal events, not to pipeline events");
        goto refuse;
    } else if (!df_pipelines_find(w->pipelines, ev->pipeline.ptr, ev->pipeline.len) &&
               w->pipelines->count >= DF_MAX_PIPELINES) {
        df_fail(&err, DF_EBAD_REQUEST, "at most %d pipelines can be defined", DF_MAX_PIPELINES);
        goto refuse;
    }

    ev->seq = ++w->last_seq;
    ev->recv = it->recv;
    if (!ev->has_at)
        ev->at = it->recv;
    msgpack_sbuffer_clear(&w->scratch);
    if (df_event_record(raw, it->raw_len, ev->seq, ev->recv, !ev->has_at, &w->scratch) != 0)
        return MDB_PANIC;
    if ((rc = df_store_log_put(st, txn, ev->seq, w->scratch.data, w->scratch.size)) != 0 ||
        (rc = df_store_id_put(st, txn, ev->id.ptr, ev->id.len, ev->seq)) != 0)
        return rc;
    it->seq = ev->seq;
    if (ev->type == DF_EV_PIPELINE) {
        if (df_pipelines_apply(w->pipelines, ev, &err) != 0)
            return MDB_PANIC; /* checked before recording: cannot happen */
        const df_pipeline *p = df_pipelines_find(w->pipelines, ev->pipeline.ptr, ev->pipeline.len);
        return p ? df_store_pipeline_put(st, txn, p) : MDB_PANIC;
    }
    return fold_deal(w, txn, b, existed);

refuse:
    fail_item(b, it, &err);
    return it->request ? 0 : reject(w, txn, b, it);
}

/* ---- the batch ---- */

static int load_state(df_writer *w)
{
    MDB_txn *txn;
    int rc = df_store_write_begin(w->st, &txn);
    if (rc != 0)
        return rc;
    w->last_seq = df_store_log_last(w->st, txn);
    w->last_rejected = df_store_rejected_last(w->st, txn);
    if ((rc = df_store_meta_get(w->st, txn, "prev_moved", &w->prev_moved)) != 0 ||
        (rc = df_store_meta_get(w->st, txn, "duplicates", &w->duplicates)) != 0 ||
        (rc = df_store_pipelines_load(w->st, txn, w->pipelines)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    mdb_txn_abort(txn);
    return 0;
}

static void process(df_writer *w, df_batch *b)
{
    MDB_txn *txn = NULL;
    int rc = df_store_write_begin(w->st, &txn);
    for (size_t i = 0; rc == 0 && i < b->count; i++)
        rc = record_item(w, txn, b, &b->items[i]);
    if (rc == 0 && (rc = df_store_meta_put(w->st, txn, "prev_moved", w->prev_moved)) == 0 &&
        (rc = df_store_meta_put(w->st, txn, "duplicates", w->duplicates)) == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (rc == 0) {
        pthread_mutex_lock(&w->mu);
        w->counters.committed_seq = w->last_seq;
        w->counters.duplicates = w->duplicates;
        w->counters.rejected = w->last_rejected;
        w->counters.commits++;
        pthread_mutex_unlock(&w->mu);
        return;
    }
    if (txn)
        mdb_txn_abort(txn);
    b->failure = DF_EUNAVAILABLE;
    snprintf(b->failure_message, sizeof(b->failure_message),
             "the store could not record the batch: %s%s", mdb_strerror(rc),
             rc == MDB_MAP_FULL ? " (restart dealflowd with a larger --map-size)" : "");
    b->nmoves = 0;
    b->rejected = 0;
    b->duplicates = 0;
    for (size_t i = 0; i < b->count; i++) {
        b->items[i].error = DF_EUNAVAILABLE;
        b->items[i].dup = false;
        b->items[i].message = DF_NO_TEXT;
    }
    /* what the rolled-back transaction changed in memory is read back */
    load_state(w);
}

static void *writer_main(void *arg)
{
    df_writer *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->submitted && !w->stopping)
            pthread_cond_wait(&w->wake, &w->mu);
        df_batch *b = w->submitted;
        w->submitted = NULL;
        w->working = b != NULL;
        pthread_mutex_unlock(&w->mu);
        if (!b)
            break;
        process(w, b);
        pthread_mutex_lock(&w->mu);
        w->finished = b;
        w->working = false;
        pthread_mutex_unlock(&w->mu);
        w->done(w->done_ctx);
    }
    return NULL;
}

int df_writer_start(df_writer **out, df_store *st, void (*done)(void *ctx), void *ctx,
                    df_error *err)
{
    df_writer *w = calloc(1, sizeof(*w));
    int rc;
    if (!w || !(w->pipelines = malloc(sizeof(*w->pipelines))) ||
        !(w->refolder = df_refolder_new())) {
        if (w) {
            free(w->pipelines);
            free(w);
        }
        return df_fail(err, DF_EUNAVAILABLE, "out of memory");
    }
    w->st = st;
    w->done = done;
    w->done_ctx = ctx;
    msgpack_zone_init(&w->zone, 8192);
    msgpack_sbuffer_init(&w->scratch);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    if ((rc = load_state(w)) != 0) {
        df_writer_stop(w);
        return df_fail(err, DF_EUNAVAILABLE, "cannot read the store: %s", mdb_strerror(rc));
    }
    w->counters.committed_seq = w->last_seq;
    w->counters.duplicates = w->duplicates;
    w->counters.rejected = w->last_rejected;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        df_writer_stop(w);
        return df_fail(err, DF_EUNAVAILABLE, "cannot start the writer thread");
    }
    *out = w;
    return 0;
}

void df_writer_submit(df_writer *w, df_batch *b)
{
    pthread_mutex_lock(&w->mu);
    w->submitted = b;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
}

df_batch *df_writer_take(df_writer *w)
{
    pthread_mutex_lock(&w->mu);
    df_batch *b = w->finished;
    w->finished = NULL;
    pthread_mutex_unlock(&w->mu);
    return b;
}

bool df_writer_idle(df_writer *w)
{
    pthread_mutex_lock(&w->mu);
    bool idle = !w->submitted && !w->working && !w->finished;
    pthread_mutex_unlock(&w->mu);
    return idle;
}

df_writer_counters df_writer_counters_get(df_writer *w)
{
    pthread_mutex_lock(&w->mu);
    df_writer_counters c = w->counters;
    pthread_mutex_unlock(&w->mu);
    return c;
}

void df_writer_stop(df_writer *w)
{
    if (!w)
        return;
    if (w->thread) {
        pthread_mutex_lock(&w->mu);
        w->stopping = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    msgpack_zone_destroy(&w->zone);
    msgpack_sbuffer_destroy(&w->scratch);
    df_refolder_free(w->refolder);
    free(w->pipelines);
    free(w);
}
