/* writer.c: the writer thread. Each batch is one write transaction (the
 * group commit) that appends to the log, which is the truth and all that an
 * acknowledgement waits for. What derives from the log (ids, each deal's
 * events, projections, list indexes, pipeline aggregates) is kept in memory and
 * reaches the store in larger, rarer flush transactions, where many updates
 * of one deal become one write and keys arrive sorted; `derived_seq` in meta
 * says how far the flushed state goes, and after a crash the log is replayed
 * from there before anything is answered. If a commit fails, the batch is
 * reported as not recorded and the memory state is rebuilt from the log. */
#include "writer.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "record.h"
#include "refold.h"
#include "table.h"

/* Derived state is flushed when this many events are waiting in memory, when
 * it takes this many bytes, when reads ask for it, or after a quiet spell. */
#define FLUSH_EVENTS  500000
#define FLUSH_BYTES   (128u << 20)
#define FLUSH_IDLE_MS 200

/* Stale deals are looked for in the flushed state: after each flush, and on
 * request when nothing waits to be flushed; a request flushes first when the
 * last look is this old. Found notifications wait for the loop up to a cap
 * (a bulk import of old deals can make many stale at once). */
#define STALE_FORCE_MS 60000
#define STALE_MAX      100000

/* What the writer holds of a deal changed since the last flush. Readers on
 * the loop thread see `record`, or `committed` while the batch being
 * recorded has changed the deal (touched), so never an uncommitted state. */
typedef struct pending_deal {
    uint8_t *record;    /* its latest state (record.h) */
    uint8_t *committed; /* while touched: its state at the last commit; NULL: the store's */
    uint32_t len, committed_len;
    uint64_t *seqs; /* its events the deal-event index does not hold yet */
    uint32_t nseqs, cap;
    bool touched;
    bool refold_waiting; /* late events were taken; a refold at the end of the batch folds them */
    uint8_t id_len;
    char id[];
} pending_deal;

/* Rough heap cost of a table entry and of an allocation, for FLUSH_BYTES. */
#define ENTRY_COST 64
#define ALLOC_COST 16

struct df_writer {
    df_store *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    df_batch *submitted;
    df_batch *finished;
    bool working;
    bool stopping;
    bool started;
    void (*done)(void *ctx);
    void *done_ctx;
    df_writer_counters counters; /* under mu */
    df_table *visible;           /* the deals readers look in (changes under mu) */
    bool flush_wanted;           /* under mu */
    bool stale_wanted;           /* under mu */
    df_stale *stale;             /* found, not yet taken by the loop (under mu) */
    size_t nstale, stale_cap;
    uint64_t stale_dropped;
    atomic_bool stale_ready; /* something to take: the loop looks without the lock */

    /* owned by the writer thread */
    df_pipelines *pipelines;
    df_refolder *refolder;
    msgpack_zone zone;
    msgpack_sbuffer scratch;
    msgpack_sbuffer move_body;
    df_event event;
    df_deal before, after;
    uint64_t last_seq, last_rejected, prev_moved, duplicates, deal_count;
    uint64_t derived_seq;  /* the flushed state covers the log up to here */
    int64_t stale_checked; /* deals that went stale up to here were found */
    int64_t stale_looked;  /* when the writer last looked, by its clock */
    bool stale_failing;    /* the last look failed (and said so) */
    df_stale *found;       /* by the flush or look under way */
    size_t nfound, found_cap;
    uint64_t found_dropped;
    df_table *ids;          /* id -> seq, recorded since the last flush */
    df_agg_deltas *deltas;  /* what a flush changes in the pipeline aggregates */
    df_table *deals;        /* deal -> pending_deal */
    pending_deal **touched; /* deals the current batch changed */
    size_t ntouched, touched_cap;
    size_t pending_events;
    size_t nwaiting; /* touched deals whose late events wait for a refold */
    size_t pending_bytes;
    bool pipelines_changed; /* by the batch being recorded */
};

/* ---- the deals and ids held in memory ---- */

static void free_pending(void *value)
{
    pending_deal *p = value;
    if (p) {
        free(p->record);
        free(p->committed);
        free(p->seqs);
        free(p);
    }
}

static bool id_recorded(df_writer *w, MDB_txn *txn, df_str id, uint64_t *seq, int *rc)
{
    void *v = df_table_get(w->ids, id.ptr, id.len);
    *rc = 0;
    if (v) {
        *seq = (uint64_t)(uintptr_t)v;
        return true;
    }
    *rc = df_store_id_get(w->st, txn, id.ptr, id.len, seq);
    if (*rc == MDB_NOTFOUND) {
        *rc = 0;
        return false;
    }
    return *rc == 0;
}

static int remember_id(df_writer *w, df_str id, uint64_t seq)
{
    bool added;
    void **slot = df_table_put(w->ids, id.ptr, id.len, &added);
    if (!slot)
        return MDB_PANIC;
    *slot = (void *)(uintptr_t)seq;
    w->pending_bytes += id.len + ENTRY_COST;
    return 0;
}

/* Reads the latest state of deal d->deal: from memory, else from the store.
 * *existed is false for a deal with no event yet. */
static int load_deal(df_writer *w, MDB_txn *txn, df_deal *d, bool *existed)
{
    pending_deal *p = df_table_get(w->deals, d->deal.s, d->deal.len);
    *existed = true;
    if (p && p->record)
        return df_deal_decode(p->record, p->len, d) == 0 ? 0 : MDB_CORRUPTED;
    int rc = df_store_deal_get(w->st, txn, d);
    if (rc == MDB_NOTFOUND) {
        *existed = false;
        return 0;
    }
    return rc;
}

static pending_deal *pending_for(df_writer *w, df_str deal)
{
    pending_deal *p = df_table_get(w->deals, deal.ptr, deal.len);
    if (p)
        return p;
    bool added;
    /* the table may grow: readers must not look meanwhile */
    pthread_mutex_lock(&w->mu);
    void **slot = df_table_put(w->deals, deal.ptr, deal.len, &added);
    if (slot && (p = calloc(1, sizeof(*p) + deal.len))) {
        p->id_len = (uint8_t)deal.len;
        memcpy(p->id, deal.ptr, deal.len);
        *slot = p;
        w->pending_bytes += sizeof(*p) + deal.len + ALLOC_COST + ENTRY_COST;
    }
    pthread_mutex_unlock(&w->mu);
    return p;
}

static bool push_seq(df_writer *w, pending_deal *p, uint64_t seq)
{
    if (p->nseqs == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 4;
        uint64_t *seqs = realloc(p->seqs, cap * sizeof(*seqs));
        if (!seqs)
            return false;
        w->pending_bytes += (cap - p->cap) * sizeof(*seqs) + (p->cap ? 0 : ALLOC_COST);
        p->seqs = seqs;
        p->cap = cap;
    }
    p->seqs[p->nseqs++] = seq;
    return true;
}

static bool keep_record(df_writer *w, pending_deal *p, const df_deal *d)
{
    uint8_t buf[DF_DEAL_RECORD_MAX];
    size_t len = df_deal_encode(d, buf);
    if (!p->touched) {
        if (w->ntouched == w->touched_cap) {
            size_t cap = w->touched_cap ? w->touched_cap * 2 : 1024;
            pending_deal **touched = realloc(w->touched, cap * sizeof(*touched));
            if (!touched)
                return false;
            w->touched = touched;
            w->touched_cap = cap;
        }
        w->touched[w->ntouched++] = p;
        /* the committed state steps aside for readers until the commit */
        pthread_mutex_lock(&w->mu);
        p->committed = p->record;
        p->committed_len = p->len;
        p->record = NULL;
        p->len = 0;
        p->touched = true;
        pthread_mutex_unlock(&w->mu);
    }
    if (len != p->len || !p->record) {
        uint8_t *record = realloc(p->record, len);
        if (!record)
            return false;
        w->pending_bytes += len - p->len + (p->record ? 0 : ALLOC_COST);
        p->record = record;
        p->len = (uint32_t)len;
    }
    memcpy(p->record, buf, len);
    return true;
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

/* Adds the deal.moved notification of the event just folded, when it moved
 * its deal, and keeps it in the store for `moves`. */
static int add_move(df_writer *w, MDB_txn *txn, df_batch *b, bool existed)
{
    const df_deal *before = &w->before, *after = &w->after;
    if (!after->has_stage)
        return 0;
    if (existed && before->has_stage && df_name_same(&before->stage, &after->stage))
        return 0;
    df_move *m = df_batch_add_move(b);
    if (!m)
        return MDB_PANIC;
    int probability, rot_days;
    df_str pipeline = df_deal_pipeline(after);
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
    msgpack_packer pk;
    msgpack_sbuffer_clear(&w->move_body);
    msgpack_packer_init(&pk, &w->move_body, msgpack_sbuffer_write);
    df_move_pack_stored(&pk, m);
    return df_store_move_put(w->st, txn, m->seq, w->move_body.data, w->move_body.size);
}

/* A refold folds every event with today's pipelines. When the deal is
 * still in the same visit of the same stage, what that stage was when the
 * deal moved there (its outcome and probability, which matter once a
 * `pipeline` event removed it) is what it was before the refold. */
static void keep_stage_as_moved(const df_deal *before, df_deal *after)
{
    if (before->has_stage && after->has_stage && before->stage_since == after->stage_since &&
        df_name_same(&before->stage, &after->stage) &&
        df_name_same(&before->pipeline, &after->pipeline)) {
        after->stage_outcome = before->stage_outcome;
        after->stage_probability = before->stage_probability;
    }
}

/* Folds the recorded event w->event into its deal, whose state before it is
 * w->before; b is NULL while the log is replayed (nothing to publish). */
/* Whether a late event can wait for the refold at the end of the batch. It
 * can when it cannot move the deal: a stage event before the event that
 * moved the deal into its current stage (that event, and every stage event
 * after it, names that stage), or an activity or update; and it names no
 * other pipeline. One refold then serves every such event of the deal,
 * where a history sent newest first would otherwise refold it for each. */
static bool refold_can_wait(const df_deal *d, const df_event *ev)
{
    if (ev->pipeline.len > 0) {
        if (!df_str_same(ev->pipeline, df_deal_pipeline(d)))
            return false;
    }
    return ev->type != DF_EV_STAGE || (d->has_stage && ev->at < d->stage_since);
}

static int refold_now(df_writer *w, MDB_txn *txn, pending_deal *p)
{
    int rc =
        df_refold(w->refolder, w->st, txn, w->pipelines, INT64_MAX, p->seqs, p->nseqs, &w->after);
    if (rc == 0)
        keep_stage_as_moved(&w->before, &w->after);
    if (p->refold_waiting)
        w->nwaiting--;
    p->refold_waiting = false;
    return rc;
}

/* Refolds the deals whose late events waited: at the end of a batch (or of
 * a replay), and before a pipeline definition changes. */
static int refold_waiting(df_writer *w, MDB_txn *txn)
{
    for (size_t i = 0; w->nwaiting > 0 && i < w->ntouched; i++) {
        pending_deal *p = w->touched[i];
        int rc;
        if (!p->refold_waiting)
            continue;
        df_deal_init(&w->before, p->id, p->id_len);
        df_deal_init(&w->after, p->id, p->id_len);
        if (df_deal_decode(p->record, p->len, &w->before) != 0)
            return MDB_CORRUPTED;
        if ((rc = refold_now(w, txn, p)) != 0)
            return rc;
        if (!keep_record(w, p, &w->after))
            return MDB_PANIC;
    }
    return 0;
}

/* Folds the recorded event w->event into its deal, whose state before it is
 * w->before; b is NULL while the log is replayed (nothing to publish). */
static int fold_deal(df_writer *w, MDB_txn *txn, df_batch *b, bool existed)
{
    df_event *ev = &w->event;
    pending_deal *p = pending_for(w, ev->deal);
    int rc;
    if (!p || !push_seq(w, p, ev->seq))
        return MDB_PANIC;
    w->pending_events++;
    if (existed)
        df_deal_copy(&w->after, &w->before);
    else
        df_deal_init(&w->after, ev->deal.ptr, ev->deal.len);
    bool late = existed && !df_fold_in_order(&w->after, ev);
    if (late && refold_can_wait(&w->after, ev)) {
        if (p->refold_waiting || !df_fold_late(&w->after, ev)) {
            /* what the refold will set; the rest of the state waits for it */
            w->after.version++;
            if (ev->at < w->after.created)
                w->after.created = ev->at;
            w->nwaiting += !p->refold_waiting;
            p->refold_waiting = true;
        }
    } else if (p->refold_waiting || (late && !df_fold_late(&w->after, ev))) {
        if ((rc = refold_now(w, txn, p)) != 0)
            return rc;
    } else if (!late) {
        df_fold_apply(&w->after, ev, w->pipelines);
    }
    if (!keep_record(w, p, &w->after))
        return MDB_PANIC;
    return b ? add_move(w, txn, b, existed) : 0;
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
    if (id_recorded(w, txn, ev->id, &it->seq, &rc)) {
        it->dup = true;
        b->duplicates++;
        w->duplicates++;
        return 0;
    } else if (rc != 0) {
        return rc;
    }
    if (ev->type != DF_EV_PIPELINE) {
        df_deal_init(&w->before, ev->deal.ptr, ev->deal.len);
        if ((rc = load_deal(w, txn, &w->before, &existed)) != 0)
            return rc;
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
        (rc = remember_id(w, ev->id, ev->seq)) != 0)
        return rc;
    it->seq = ev->seq;
    if (ev->type == DF_EV_PIPELINE) {
        /* rare and small: pipelines go to the store with the log; deals
         * whose refold waits are folded with the definitions before it */
        if ((rc = refold_waiting(w, txn)) != 0)
            return rc;
        if (df_pipelines_apply(w->pipelines, ev, &err) != 0)
            return MDB_PANIC;
        w->pipelines_changed = true;
        const df_pipeline *p = df_pipelines_find(w->pipelines, ev->pipeline.ptr, ev->pipeline.len);
        return p ? df_store_pipeline_put(st, txn, p) : MDB_PANIC;
    }
    if (!existed)
        w->deal_count++;
    return fold_deal(w, txn, b, existed);

refuse:
    fail_item(b, it, &err);
    return it->request ? 0 : reject(w, txn, b, it);
}

/* ---- publishing, flushing, replaying ---- */

/* Makes the deals the last commit changed visible to readers. */
static void publish(df_writer *w)
{
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->ntouched; i++) {
        pending_deal *p = w->touched[i];
        if (p->committed)
            w->pending_bytes -= p->committed_len + ALLOC_COST;
        free(p->committed);
        p->committed = NULL;
        p->committed_len = 0;
        p->touched = false;
    }
    w->ntouched = 0;
    if (w->pipelines_changed)
        w->counters.pipeline_changes++;
    w->pipelines_changed = false;
    w->counters.committed_seq = w->last_seq;
    w->counters.duplicates = w->duplicates;
    w->counters.rejected = w->last_rejected;
    w->counters.deals = w->deal_count;
    pthread_mutex_unlock(&w->mu);
}

/* ---- stale deals ---- */

/* Adds a notification to those found by the flush or look under way; they
 * reach the loop only once it succeeded. */
static void add_stale(df_writer *w, const df_name *deal, df_str pipeline, const df_name *stage,
                      int64_t since, int64_t now)
{
    if (w->nfound >= STALE_MAX ||
        !df_grow((void **)&w->found, &w->found_cap, w->nfound + 1, sizeof(df_stale))) {
        w->found_dropped++;
        return;
    }
    df_stale *n = &w->found[w->nfound++];
    n->deal = *deal;
    df_name_set(&n->pipeline, pipeline.ptr, pipeline.len);
    n->stage = *stage;
    n->since = since;
    n->idle_days = df_days_between(since, now);
}

/* Hands what the flush or look found to the loop, or forgets it when that
 * failed (the next one finds it again). */
static void hand_over_stale(df_writer *w, bool succeeded)
{
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; succeeded && i < w->nfound; i++) {
        if (w->nstale >= STALE_MAX ||
            !df_grow((void **)&w->stale, &w->stale_cap, w->nstale + 1, sizeof(df_stale)))
            w->stale_dropped++;
        else
            w->stale[w->nstale++] = w->found[i];
    }
    if (succeeded)
        w->stale_dropped += w->found_dropped;
    if (w->nstale || w->stale_dropped)
        atomic_store_explicit(&w->stale_ready, true, memory_order_release);
    pthread_mutex_unlock(&w->mu);
    w->nfound = 0;
    w->found_dropped = 0;
}

typedef struct look {
    df_writer *w;
    int64_t now;
} look;

static void found_stale(void *ctx, const df_name *deal, df_str pipeline, const df_name *stage,
                        int64_t since)
{
    look *l = ctx;
    add_stale(l->w, deal, pipeline, stage, since, l->now);
}

/* Finds the open deals that went stale since the last look and moves the
 * mark; the store must hold every recorded event (nothing waits to be
 * flushed). */
static int look_for_stale(df_writer *w)
{
    int64_t now = df_now_ms();
    MDB_txn *txn;
    int rc;
    w->stale_looked = now;
    if (now <= w->stale_checked)
        return 0;
    if ((rc = df_store_write_begin(w->st, &txn)) != 0)
        return rc;
    look l = {w, now};
    rc = df_stale_scan(w->st, txn, w->pipelines, w->stale_checked, now, found_stale, &l);
    /* The mark is kept only when the look found something, so that an idle
     * daemon does not commit every second: a look that finds nothing may
     * be done again after a restart without reporting anything twice (and
     * flushes keep the mark too). */
    if (rc == 0 && w->nfound > 0 &&
        (rc = df_store_meta_put(w->st, txn, "stale_checked", (uint64_t)now)) == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    if (rc == 0)
        w->stale_checked = now;
    hand_over_stale(w, rc == 0);
    /* it is tried every second: say it once, and once more when it works again */
    if (rc != 0 && !w->stale_failing)
        df_log("looking for stale deals failed (tried again every second): %s%s", mdb_strerror(rc),
               rc == MDB_MAP_FULL ? " (restart dealflowd with a larger --map-size)" : "");
    else if (rc == 0 && w->stale_failing)
        df_log("looking for stale deals works again");
    w->stale_failing = rc != 0;
    return rc;
}

/* Writes the derived state held in memory to the store in one transaction,
 * deals and ids in key order. */
static int flush(df_writer *w)
{
    df_store *st = w->st;
    MDB_txn *txn = NULL;
    df_table_item *deals = df_table_sorted(w->deals), *ids = df_table_sorted(w->ids);
    size_t ndeals = df_table_count(w->deals), nids = df_table_count(w->ids);
    int64_t now = df_now_ms();
    int rc = (ndeals && !deals) || (nids && !ids) ? MDB_PANIC : df_store_write_begin(st, &txn);
    for (size_t i = 0; rc == 0 && i < ndeals; i++) {
        pending_deal *p = deals[i].value;
        bool existed = true;
        if (!p->record)
            continue; /* its first event failed to fold; the batch was not recorded */
        df_deal_init(&w->before, p->id, p->id_len);
        df_deal_init(&w->after, p->id, p->id_len);
        rc = df_store_deal_get(st, txn, &w->before);
        if (rc == MDB_NOTFOUND) {
            existed = false;
            rc = 0;
        }
        if (rc == 0 && df_deal_decode(p->record, p->len, &w->after) != 0)
            rc = MDB_CORRUPTED;
        if (rc == 0)
            rc = df_store_deal_reindex(st, txn, existed ? &w->before : NULL, &w->after);
        if (rc == 0 && !df_agg_deltas_deal(w->deltas, existed ? &w->before : NULL, &w->after))
            rc = MDB_PANIC;
        int64_t since;
        if (rc == 0 && df_stale_on_arrival(existed ? &w->before : NULL, &w->after, w->pipelines,
                                           w->stale_checked, &since))
            add_stale(w, &w->after.deal, df_deal_pipeline(&w->after), &w->after.stage, since, now);
        if (rc == 0)
            rc = df_store_deal_put(st, txn, &w->after);
        for (uint32_t j = 0; rc == 0 && j < p->nseqs; j++)
            rc = df_store_deal_event_put(st, txn, p->id, p->id_len, p->seqs[j]);
    }
    for (size_t i = 0; rc == 0 && i < nids; i++)
        rc = df_store_id_put(st, txn, ids[i].key, ids[i].len, (uint64_t)(uintptr_t)ids[i].value);
    if (rc == 0)
        rc = df_store_aggs_apply(st, txn, w->deltas);
    df_agg_deltas_clear(w->deltas);
    if (rc == 0)
        rc = df_store_pipelines_snapshot_put(st, txn, w->pipelines);
    /* deals reported as stale on arrival went stale before this mark */
    if (rc == 0)
        rc = df_store_meta_put(st, txn, "stale_checked", (uint64_t)w->stale_checked);
    if (rc == 0)
        rc = df_store_meta_put(st, txn, "derived_seq", w->last_seq);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    free(deals);
    free(ids);
    if (txn)
        mdb_txn_abort(txn);
    if (rc != 0) {
        hand_over_stale(w, false);
        pthread_mutex_lock(&w->mu);
        bool first = !w->counters.flush_failing;
        w->counters.flush_failing = true;
        pthread_mutex_unlock(&w->mu);
        if (first)
            df_log("flushing derived state failed (it stays in memory and is retried): %s%s",
                   mdb_strerror(rc),
                   rc == MDB_MAP_FULL ? " (restart dealflowd with a larger --map-size)" : "");
        return rc;
    }
    w->derived_seq = w->last_seq;
    /* readers now find these deals in the store */
    pthread_mutex_lock(&w->mu);
    df_table_clear(w->deals, free_pending);
    w->counters.flushed_seq = w->last_seq;
    w->counters.flushes++;
    w->counters.flush_failing = false;
    pthread_mutex_unlock(&w->mu);
    df_table_clear(w->ids, NULL);
    w->pending_events = 0;
    w->pending_bytes = 0;
    malloc_trim(0);
    hand_over_stale(w, true);
    look_for_stale(w);
    return 0;
}

/* Folds the recorded events after the flushed state back into memory: at
 * start after a crash, and after a failed commit. */
static int replay_log(df_writer *w)
{
    MDB_txn *txn;
    msgpack_object obj;
    bool existed;
    int rc = df_store_write_begin(w->st, &txn);
    for (uint64_t seq = w->derived_seq + 1; rc == 0 && seq <= w->last_seq; seq++) {
        MDB_val v;
        if ((rc = df_store_log_get(w->st, txn, seq, &v)) != 0)
            break;
        msgpack_zone_clear(&w->zone);
        if (df_msgpack_unpack(v.mv_data, v.mv_size, &w->zone, &obj, NULL) != 0 ||
            df_recorded_decode(&obj, &w->event, NULL) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        w->event.seq = seq;
        if ((rc = remember_id(w, w->event.id, seq)) != 0)
            continue;
        if (w->event.type == DF_EV_PIPELINE) {
            /* later events were folded with this definition */
            if ((rc = refold_waiting(w, txn)) == 0 &&
                df_pipelines_apply(w->pipelines, &w->event, NULL) != 0)
                rc = MDB_CORRUPTED;
            continue;
        }
        df_deal_init(&w->before, w->event.deal.ptr, w->event.deal.len);
        if ((rc = load_deal(w, txn, &w->before, &existed)) == 0)
            rc = fold_deal(w, txn, NULL, existed);
    }
    if (rc == 0)
        rc = refold_waiting(w, txn);
    mdb_txn_abort(txn);
    if (rc == 0)
        publish(w);
    return rc;
}

static int load_state(df_writer *w)
{
    MDB_txn *txn;
    uint64_t stale_checked = 0;
    int rc = df_store_write_begin(w->st, &txn);
    if (rc != 0)
        return rc;
    w->last_seq = df_store_log_last(w->st, txn);
    w->last_rejected = df_store_rejected_last(w->st, txn);
    if ((rc = df_store_meta_get(w->st, txn, "prev_moved", &w->prev_moved)) != 0 ||
        (rc = df_store_meta_get(w->st, txn, "duplicates", &w->duplicates)) != 0 ||
        (rc = df_store_meta_get(w->st, txn, "deals", &w->deal_count)) != 0 ||
        (rc = df_store_meta_get(w->st, txn, "derived_seq", &w->derived_seq)) != 0 ||
        (rc = df_store_meta_get(w->st, txn, "stale_checked", &stale_checked)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    /* A store that never looked starts looking now: deals already stale in
     * it are not reported, only those that go stale from now on. */
    w->stale_checked = stale_checked ? (int64_t)stale_checked : df_now_ms();
    /* a flush to look is forced only after a minute without one */
    w->stale_looked = df_now_ms();
    /* the log after the flushed state is folded again with the pipelines it
     * was folded with: those of the flushed state, then its own definitions */
    if (w->derived_seq == 0)
        df_pipelines_init(w->pipelines);
    else if ((rc = df_store_pipelines_snapshot_get(w->st, txn, w->pipelines)) == MDB_NOTFOUND)
        rc = df_store_pipelines_load(w->st, txn, w->pipelines);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    mdb_txn_abort(txn);
    /* rebuilt in a new table; readers keep the old one until it is ready */
    df_table *old = w->deals;
    if (!(w->deals = df_table_new())) {
        w->deals = old;
        return MDB_PANIC;
    }
    df_table_clear(w->ids, NULL);
    w->ntouched = 0;
    w->nwaiting = 0;
    w->pending_events = 0;
    w->pending_bytes = 0;
    if (w->last_seq > w->derived_seq)
        df_log("folding seq %llu..%llu of the log back into memory",
               (unsigned long long)w->derived_seq + 1, (unsigned long long)w->last_seq);
    rc = replay_log(w);
    pthread_mutex_lock(&w->mu);
    w->visible = w->deals;
    pthread_mutex_unlock(&w->mu);
    df_table_free(old, free_pending);
    return rc;
}

/* ---- the batch ---- */

static void process(df_writer *w, df_batch *b)
{
    MDB_txn *txn = NULL;
    int rc = df_store_write_begin(w->st, &txn);
    for (size_t i = 0; rc == 0 && i < b->count; i++)
        rc = record_item(w, txn, b, &b->items[i]);
    if (rc == 0)
        rc = refold_waiting(w, txn);
    if (rc == 0 && (rc = df_store_meta_put(w->st, txn, "prev_moved", w->prev_moved)) == 0 &&
        (rc = df_store_meta_put(w->st, txn, "duplicates", w->duplicates)) == 0 &&
        (rc = df_store_meta_put(w->st, txn, "deals", w->deal_count)) == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (rc == 0) {
        publish(w);
        pthread_mutex_lock(&w->mu);
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
    if ((rc = load_state(w)) != 0)
        df_log("cannot read the store back after a failed commit: %s", mdb_strerror(rc));
}

static bool flush_due(df_writer *w)
{
    return w->pending_events >= FLUSH_EVENTS || w->pending_bytes >= FLUSH_BYTES;
}

static void *writer_main(void *arg)
{
    df_writer *w = arg;
    for (;;) {
        bool idle = false;
        pthread_mutex_lock(&w->mu);
        while (!w->submitted && !w->stopping && !w->flush_wanted && !w->stale_wanted && !idle) {
            if (w->last_seq == w->derived_seq) {
                pthread_cond_wait(&w->wake, &w->mu);
                continue;
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += FLUSH_IDLE_MS * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            if (pthread_cond_timedwait(&w->wake, &w->mu, &until) == ETIMEDOUT)
                idle = true;
        }
        df_batch *b = w->submitted;
        bool stopping = w->stopping && !b;
        bool want_flush = w->flush_wanted || idle || stopping || flush_due(w);
        bool want_stale = w->stale_wanted && !stopping;
        w->submitted = NULL;
        w->flush_wanted = false;
        w->stale_wanted = false;
        w->working = b != NULL || want_flush || want_stale;
        pthread_mutex_unlock(&w->mu);

        if (want_stale && w->last_seq > w->derived_seq &&
            df_now_ms() - w->stale_looked >= STALE_FORCE_MS)
            want_flush = true;
        if (want_flush && w->last_seq > w->derived_seq)
            flush(w); /* looks for stale deals too */
        else if (want_stale && w->last_seq == w->derived_seq)
            look_for_stale(w);
        if (b)
            process(w, b);
        pthread_mutex_lock(&w->mu);
        if (b)
            w->finished = b;
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
    int rc;
    if (!w)
        return df_fail(err, DF_EUNAVAILABLE, "out of memory");
    w->st = st;
    w->done = done;
    w->done_ctx = ctx;
    msgpack_zone_init(&w->zone, 8192);
    msgpack_sbuffer_init(&w->scratch);
    msgpack_sbuffer_init(&w->move_body);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (!(w->pipelines = malloc(sizeof(*w->pipelines))) || !(w->refolder = df_refolder_new()) ||
        !(w->ids = df_table_new()) || !(w->deals = df_table_new()) ||
        !(w->deltas = df_agg_deltas_new())) {
        df_writer_stop(w);
        return df_fail(err, DF_EUNAVAILABLE, "out of memory");
    }
    if ((rc = load_state(w)) != 0) {
        df_writer_stop(w);
        return df_fail(err, DF_EUNAVAILABLE, "cannot read the store: %s", mdb_strerror(rc));
    }
    w->counters.committed_seq = w->last_seq;
    w->counters.flushed_seq = w->derived_seq;
    w->counters.duplicates = w->duplicates;
    w->counters.rejected = w->last_rejected;
    w->counters.deals = w->deal_count;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        df_writer_stop(w);
        return df_fail(err, DF_EUNAVAILABLE, "cannot start the writer thread");
    }
    w->started = true;
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
    df_batch *b = w->finished;
    w->finished = NULL;
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
    *out = NULL;
    /* called on every turn of the loop: the mutex is for when there is something */
    if (!atomic_load_explicit(&w->stale_ready, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&w->mu);
    atomic_store_explicit(&w->stale_ready, false, memory_order_relaxed);
    size_t n = w->nstale;
    uint64_t dropped = w->stale_dropped;
    *out = w->stale;
    w->stale = NULL;
    w->nstale = w->stale_cap = 0;
    w->stale_dropped = 0;
    pthread_mutex_unlock(&w->mu);
    if (dropped)
        df_log("%llu deal.stale notifications were not published: more than %d went stale at once",
               (unsigned long long)dropped, STALE_MAX);
    return n;
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

bool df_writer_lookup(df_writer *w, const char *deal, size_t len, uint8_t *record,
                      size_t *record_len)
{
    pthread_mutex_lock(&w->mu);
    const pending_deal *p = df_table_get(w->visible, deal, len);
    const uint8_t *state = NULL;
    if (p) {
        state = p->touched ? p->committed : p->record;
        *record_len = p->touched ? p->committed_len : p->len;
    }
    if (state)
        memcpy(record, state, *record_len);
    pthread_mutex_unlock(&w->mu);
    return state != NULL;
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
    msgpack_zone_destroy(&w->zone);
    msgpack_sbuffer_destroy(&w->scratch);
    msgpack_sbuffer_destroy(&w->move_body);
    df_refolder_free(w->refolder);
    df_table_free(w->ids, NULL);
    df_agg_deltas_free(w->deltas);
    df_table_free(w->deals, free_pending);
    free(w->touched);
    free(w->stale);
    free(w->found);
    free(w->pipelines);
    free(w);
}
