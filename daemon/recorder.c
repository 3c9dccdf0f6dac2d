/* recorder.c: recording batches into the log and into what the writer holds
 * in memory between flushes (see recorder.h). Each batch is one write
 * transaction that appends to the log, which is the truth and all that an
 * acknowledgement waits for; what derives from it reaches the store in
 * larger, rarer flushes, where many updates of one deal become one write and
 * keys arrive sorted. */
#include "recorder.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "log.h"
#include "readahead.h"
#include "record.h"
#include "redact.h"
#include "refold.h"
#include "room.h"
#include "table.h"

/* Derived state is flushed when this many events are waiting in memory or
 * when it takes this many bytes (besides reads asking and quiet spells).
 * The sanitizer build's tests flush every few thousand events, so that a
 * replay of theirs flushes on the way (DF_SMALL_FLUSH_CHUNKS). */
#ifndef DF_FLUSH_EVENTS
#define DF_FLUSH_EVENTS 500000
#endif
#define FLUSH_EVENTS DF_FLUSH_EVENTS
#define FLUSH_BYTES  (128u << 20)
/* Aggregate changes a flush gathers before it writes them (about 200 bytes
 * each in memory). The sanitizer build's tests use a handful, so that they
 * cross this boundary many times in every flush (DF_SMALL_FLUSH_CHUNKS). */
#ifndef DF_FLUSH_AGG_ROWS
#define DF_FLUSH_AGG_ROWS 262144
#endif
#define FLUSH_AGG_ROWS DF_FLUSH_AGG_ROWS

/* A flush commits its writes in steps of this many deals, and of this many
 * ids, rather than in one transaction: LMDB keeps a copy in the heap of
 * every page a write transaction changes, and keeps those copies for the
 * next transaction, so memory follows the largest transaction. A step
 * changes the pages of its own deals; a whole flush, those of every deal
 * it holds (half the store's deal pages, at a million deals). A flush into
 * empty tables (after a rebuild dropped them) is one transaction. The
 * sanitizer build's tests take steps of a few, so that every flush of
 * theirs takes many (DF_SMALL_FLUSH_CHUNKS). */
#ifndef DF_FLUSH_STEP_DEALS
#define DF_FLUSH_STEP_DEALS 32768
#endif
#define FLUSH_STEP_DEALS DF_FLUSH_STEP_DEALS
#define FLUSH_STEP_IDS   (4 * FLUSH_STEP_DEALS)

/* Rough heap cost of a table entry, for FLUSH_BYTES. */
#define ENTRY_COST 64

struct df_recorder {
    df_store *st;
    df_overlay *overlay;
    df_stale_finder *stale;
    df_pipelines *pipelines;
    df_refolder *refolder;
    df_table *ids;         /* id -> seq, recorded since the last flush */
    df_agg_deltas *deltas; /* what a flush changes in the pipeline aggregates */
    msgpack_zone zone;
    msgpack_sbuffer scratch;
    msgpack_sbuffer move_body;
    df_event event;
    df_deal before, after;
    uint64_t last_seq, last_rejected, prev_moved, duplicates, deal_count;
    uint64_t derived_seq;
    /* during a replay: the last id the read-ahead remembered, and the last
     * a flush during the replay wrote (flush_replayed) */
    uint64_t ids_remembered_through, ids_flushed_through;
    uint64_t spells_known; /* DF_SPELLS_KNOWN_KEY */
    int64_t max_future;    /* ms an event's `at` may be ahead of its recv */
    size_t pending_events;
    size_t ids_bytes;
    size_t nwaiting;        /* touched deals whose late events wait for a refold */
    bool pipelines_changed; /* by a recorded event since the writer last asked */
    bool redacted;          /* the batch redacted a deal: undone only by a load */
    bool flush_open;        /* a flush committed steps and has not ended: the store
                               holds part of it (DF_FLUSH_OPEN_KEY) */
    df_redactor redactor;
};

df_recorder *df_recorder_new(df_store *st, df_overlay *overlay, df_stale_finder *stale)
{
    df_recorder *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->st = st;
    r->overlay = overlay;
    r->stale = stale;
    r->max_future = DF_DEFAULT_MAX_FUTURE;
    msgpack_zone_init(&r->zone, 8192);
    msgpack_sbuffer_init(&r->scratch);
    msgpack_sbuffer_init(&r->move_body);
    df_redactor_init(&r->redactor);
    if (!(r->pipelines = malloc(sizeof(*r->pipelines))) || !(r->refolder = df_refolder_new()) ||
        !(r->ids = df_table_new()) || !(r->deltas = df_agg_deltas_new())) {
        df_recorder_free(r);
        return NULL;
    }
    return r;
}

void df_recorder_set_max_future(df_recorder *r, int64_t ms)
{
    r->max_future = ms;
}

void df_recorder_free(df_recorder *r)
{
    if (!r)
        return;
    msgpack_zone_destroy(&r->zone);
    msgpack_sbuffer_destroy(&r->scratch);
    msgpack_sbuffer_destroy(&r->move_body);
    df_redactor_destroy(&r->redactor);
    df_refolder_free(r->refolder);
    df_table_free(r->ids, NULL);
    df_agg_deltas_free(r->deltas);
    free(r->pipelines);
    free(r);
}

/* ---- ids and deals held in memory ---- */

static bool id_recorded(df_recorder *r, MDB_txn *txn, df_str id, uint64_t *seq, int *rc)
{
    void *v = df_table_get(r->ids, id.ptr, id.len);
    *rc = 0;
    if (v) {
        *seq = (uint64_t)(uintptr_t)v;
        return true;
    }
    *rc = df_store_id_get(r->st, txn, id.ptr, id.len, seq);
    if (*rc == MDB_NOTFOUND) {
        *rc = 0;
        return false;
    }
    return *rc == 0;
}

static int remember_id(df_recorder *r, df_str id, uint64_t seq)
{
    bool added;
    void **slot = df_table_put(r->ids, id.ptr, id.len, &added);
    if (!slot)
        return ENOMEM;
    *slot = (void *)(uintptr_t)seq;
    r->ids_bytes += id.len + ENTRY_COST;
    return 0;
}

/* Reads the latest state of the deal into r->before: from memory (*p is its
 * pending state, or NULL), else from the store. *existed is false for a
 * deal with no event yet. */
static int load_deal(df_recorder *r, MDB_txn *txn, df_str deal, df_pending **p, bool *existed)
{
    df_deal_init(&r->before, deal.ptr, deal.len);
    *p = df_overlay_find(r->overlay, deal.ptr, deal.len);
    *existed = true;
    if (*p && (*p)->record)
        return df_deal_decode((*p)->record, (*p)->len, &r->before) == 0 ? 0 : MDB_CORRUPTED;
    int rc = df_store_deal_get(r->st, txn, &r->before);
    if (rc == MDB_NOTFOUND) {
        *existed = false;
        return 0;
    }
    return rc;
}

/* ---- folding ---- */

static int refold_now(df_recorder *r, MDB_txn *txn, df_pending *p)
{
    int rc =
        df_refold(r->refolder, r->st, txn, r->pipelines, INT64_MAX, p->seqs, p->nseqs, &r->after);
    if (rc == 0)
        df_apply_keep_stage_as_moved(&r->before, &r->after);
    if (p->refold_waiting)
        r->nwaiting--;
    p->refold_waiting = false;
    return rc;
}

/* Refolds the deals whose late events waited: at the end of a batch (or of
 * a replay), and before a pipeline definition changes. */
static int refold_waiting(df_recorder *r, MDB_txn *txn)
{
    size_t ntouched;
    df_pending *const *touched = df_overlay_touched(r->overlay, &ntouched);
    for (size_t i = 0; r->nwaiting > 0 && i < ntouched; i++) {
        df_pending *p = touched[i];
        int rc;
        if (!p->refold_waiting)
            continue;
        df_deal_init(&r->before, p->id, p->id_len);
        df_deal_init(&r->after, p->id, p->id_len);
        if (df_deal_decode(p->record, p->len, &r->before) != 0)
            return MDB_CORRUPTED;
        if ((rc = refold_now(r, txn, p)) != 0)
            return rc;
        if (!df_overlay_keep(r->overlay, p, &r->after))
            return ENOMEM;
    }
    return 0;
}

/* Adds the deal.moved notification of the event just folded, when it moved
 * its deal, and keeps it in the store for `moves`. */
static int add_move(df_recorder *r, MDB_txn *txn, df_batch *b, const df_deal *before)
{
    if (!df_apply_moved(before, &r->after))
        return 0;
    df_move *m = df_batch_add_move(b);
    if (!m)
        return ENOMEM;
    m->seq = r->event.seq;
    m->prev = r->prev_moved;
    r->prev_moved = m->seq;
    df_apply_move(r->pipelines, before, &r->after, m);
    msgpack_packer pk;
    msgpack_sbuffer_clear(&r->move_body);
    msgpack_packer_init(&pk, &r->move_body, msgpack_sbuffer_write);
    df_move_pack_stored(&pk, m);
    return df_store_move_put(r->st, txn, m->seq, r->move_body.data, r->move_body.size);
}

/* Keeps what df_apply decided for the recorded event ev in the deal's
 * pending state p (NULL: none yet), whose state before it is `before`
 * (NULL: new); b is NULL while the log is replayed (nothing to publish). */
static int fold_deal(df_recorder *r, MDB_txn *txn, df_batch *b, const df_event *ev, df_pending *p,
                     const df_deal *before, df_apply_result result)
{
    int rc;
    if (!p && !(p = df_overlay_add(r->overlay, ev->deal.ptr, ev->deal.len)))
        return ENOMEM;
    if (!df_overlay_push_seq(r->overlay, p, ev->seq))
        return ENOMEM;
    r->pending_events++;
    if (result == DF_APPLY_WAITS) {
        r->nwaiting += !p->refold_waiting;
        p->refold_waiting = true;
    } else if (result == DF_APPLY_REFOLD && (rc = refold_now(r, txn, p)) != 0) {
        goto untouched;
    }
    if (!df_overlay_keep(r->overlay, p, &r->after)) {
        rc = ENOMEM;
        goto untouched;
    }
    return b ? add_move(r, txn, b, before) : 0;
untouched:
    /* the deal is not among those the batch touched, so undo would not
     * trim this seq: a later batch reuses it */
    p->nseqs--;
    r->pending_events--;
    return rc;
}

/* ---- recording one item ---- */

/* Keeps what ingest could not record: {recv, error, message, raw}. */
static int reject(df_recorder *r, MDB_txn *txn, df_batch *b, const df_item *it)
{
    msgpack_packer pk;
    const char *message = df_batch_text(b, it->message);
    msgpack_sbuffer_clear(&r->scratch);
    msgpack_packer_init(&pk, &r->scratch, msgpack_sbuffer_write);
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
    return df_store_rejected_put(r->st, txn, ++r->last_rejected, r->scratch.data, r->scratch.size);
}

static int refuse(df_recorder *r, MDB_txn *txn, df_batch *b, df_item *it, const df_error *err)
{
    it->error = err->code;
    it->message = df_batch_copy(b, err->message, strlen(err->message));
    return it->request ? 0 : reject(r, txn, b, it);
}

/* Appends the admitted event r->event, whose seq is the next, to the log. */
static int append(df_recorder *r, MDB_txn *txn, const df_batch *b, df_item *it)
{
    df_event *ev = &r->event;
    int rc;
    r->last_seq = ev->seq;
    msgpack_sbuffer_clear(&r->scratch);
    df_str by = {it->by_len ? b->arena + it->by : NULL, it->by_len};
    if (df_event_record_by(b->arena + it->raw, it->raw_len, ev->seq, ev->recv, !ev->has_at, by,
                           &r->scratch) != 0)
        return MDB_PANIC;
    if ((rc = df_store_log_put(r->st, txn, ev->seq, r->scratch.data, r->scratch.size)) != 0 ||
        (rc = remember_id(r, ev->id, ev->seq)) != 0)
        return rc;
    it->seq = ev->seq;
    return 0;
}

/* Defines or replaces the pipeline of the recorded event r->event. */
static int define_pipeline(df_recorder *r, MDB_txn *txn)
{
    const df_event *ev = &r->event;
    /* deals whose refold waits are folded with the definitions before it */
    int rc = refold_waiting(r, txn);
    if (rc != 0)
        return rc;
    if (df_pipelines_apply(r->pipelines, ev, NULL) != 0)
        return MDB_PANIC;
    r->pipelines_changed = true;
    /* rare and small: pipelines go to the store with the log */
    const df_pipeline *p = df_pipelines_find(r->pipelines, ev->pipeline.ptr, ev->pipeline.len);
    return p ? df_store_pipeline_put(r->st, txn, p) : MDB_PANIC;
}

/* ---- redacting a deal ---- */

/* The deal's pending state, made from r->before when memory holds none,
 * with the event seq among its events; a refold of it waits. */
static df_pending *pending_with(df_recorder *r, df_pending *p, uint64_t seq)
{
    if (!p && (!(p = df_overlay_add(r->overlay, r->before.deal.s, r->before.deal.len)) ||
               !df_overlay_keep(r->overlay, p, &r->before)))
        return NULL;
    if (!df_overlay_push_seq(r->overlay, p, seq))
        return NULL;
    r->pending_events++;
    return p;
}

/* A `redact` request: the deal's events lose the values, the redaction is
 * recorded, and the deal is refolded from its redacted events, so that its
 * projection, indexes and aggregates follow at the next flush. */
static int redact(df_recorder *r, MDB_txn *txn, df_batch *b, df_item *it)
{
    msgpack_object obj;
    df_redact_request rq;
    df_error err = {0};
    df_pending *p;
    bool existed;
    uint32_t changed;
    df_str by = {it->by_len ? b->arena + it->by : NULL, it->by_len};
    int rc;
    msgpack_zone_clear(&r->zone);
    if (df_msgpack_unpack(b->arena + it->raw, it->raw_len, &r->zone, &obj, &err) != 0 ||
        df_redact_read(&obj, &rq, &err) != 0)
        return refuse(r, txn, b, it, &err);
    if ((rc = load_deal(r, txn, rq.deal, &p, &existed)) != 0)
        return rc;
    if (!existed || (p && !p->record)) {
        df_fail(&err, DF_ENOT_FOUND, "no deal `%.*s`", (int)rq.deal.len, rq.deal.ptr);
        return refuse(r, txn, b, it, &err);
    }
    if ((rc = df_redact_events(&r->redactor, r->st, txn, &rq, p ? p->seqs : NULL, p ? p->nseqs : 0,
                               p != NULL, &changed)) != 0)
        return rc;
    uint64_t seq = r->last_seq + 1;
    msgpack_sbuffer_clear(&r->scratch);
    if ((rc = df_redact_record(&rq, changed, by, seq, it->recv, &r->scratch)) != 0 ||
        (rc = df_store_log_put(r->st, txn, seq, r->scratch.data, r->scratch.size)) != 0)
        return rc;
    char id[40];
    int idlen = snprintf(id, sizeof(id), DF_REDACTION_ID_PREFIX "%llu", (unsigned long long)seq);
    if ((rc = remember_id(r, (df_str){id, (uint32_t)idlen}, seq)) != 0)
        return rc;
    r->last_seq = seq;
    it->seq = seq;
    it->redacted = changed;
    r->redacted = true;
    if (!(p = pending_with(r, p, seq)))
        return ENOMEM;
    df_deal_init(&r->after, p->id, p->id_len);
    if ((rc = refold_now(r, txn, p)) != 0)
        return rc;
    return df_overlay_keep(r->overlay, p, &r->after) ? 0 : ENOMEM;
}

/* Unpacks the item's bytes into r->zone; those ingest checked are not
 * checked twice. */
static int unpack_item(df_recorder *r, const df_batch *b, const df_item *it, msgpack_object *obj,
                       df_error *err)
{
    const char *raw = b->arena + it->raw;
    return it->checked ? df_msgpack_unpack_checked(raw, it->raw_len, &r->zone, obj, err)
                       : df_msgpack_unpack(raw, it->raw_len, &r->zone, obj, err);
}

int df_recorder_item(df_recorder *r, MDB_txn *txn, df_batch *b, df_item *it)
{
    df_event *ev = &r->event;
    msgpack_object obj;
    df_error err = {0};
    df_pending *p;
    bool existed;
    int rc;

    if (it->error)
        return it->request ? 0 : reject(r, txn, b, it);
    if (it->redaction)
        return redact(r, txn, b, it);
    msgpack_zone_clear(&r->zone);
    if (unpack_item(r, b, it, &obj, &err) != 0 || df_event_decode(&obj, ev, &err) != 0)
        return refuse(r, txn, b, it, &err);
    if (id_recorded(r, txn, ev->id, &it->seq, &rc)) {
        it->dup = true;
        b->duplicates++;
        r->duplicates++;
        return 0;
    } else if (rc != 0) {
        return rc;
    }
    /* as it is recorded when admitted */
    ev->seq = r->last_seq + 1;
    ev->recv = it->recv;
    if (!ev->has_at)
        ev->at = it->recv;
    if (ev->type == DF_EV_PIPELINE) {
        if (!df_apply_pipeline_admitted(r->pipelines, ev, r->max_future, &err))
            return refuse(r, txn, b, it, &err);
        if ((rc = append(r, txn, b, it)) != 0)
            return rc;
        return define_pipeline(r, txn);
    }
    if ((rc = load_deal(r, txn, ev->deal, &p, &existed)) != 0)
        return rc;
    const df_deal *before = existed ? &r->before : NULL;
    df_apply_result result =
        df_apply(r->pipelines, before, p && p->refold_waiting, ev, r->max_future, &r->after, &err);
    if (result == DF_APPLY_REFUSED)
        return refuse(r, txn, b, it, &err);
    if ((rc = append(r, txn, b, it)) != 0)
        return rc;
    if (!existed)
        r->deal_count++;
    return fold_deal(r, txn, b, ev, p, before, result);
}

df_recorder_mark df_recorder_mark_get(const df_recorder *r)
{
    return (df_recorder_mark){r->last_seq,   r->last_rejected,  r->prev_moved, r->duplicates,
                              r->deal_count, r->pending_events, r->ids_bytes};
}

bool df_recorder_undo(df_recorder *r, const df_batch *b, const df_recorder_mark *m)
{
    /* a definition changed the pipelines, or a redaction the log's bytes
     * under the deals it refolded: only a load restores them */
    if (r->pipelines_changed || r->redacted)
        return false;
    df_overlay_undo(r->overlay, m->last_seq);
    /* the ids the batch recorded are forgotten (a NULL value is absent) */
    for (size_t i = 0; i < b->count; i++) {
        const df_item *it = &b->items[i];
        msgpack_object obj;
        if (it->error || it->dup || it->seq <= m->last_seq || it->redaction)
            continue;
        msgpack_zone_clear(&r->zone);
        if (df_msgpack_unpack(b->arena + it->raw, it->raw_len, &r->zone, &obj, NULL) != 0 ||
            df_event_decode(&obj, &r->event, NULL) != 0)
            return false;
        void *v = df_table_get(r->ids, r->event.id.ptr, r->event.id.len);
        if (v && (uint64_t)(uintptr_t)v > m->last_seq) {
            bool added;
            void **slot = df_table_put(r->ids, r->event.id.ptr, r->event.id.len, &added);
            if (slot)
                *slot = NULL;
        }
    }
    r->last_seq = m->last_seq;
    r->last_rejected = m->last_rejected;
    r->prev_moved = m->prev_moved;
    r->duplicates = m->duplicates;
    r->deal_count = m->deal_count;
    r->pending_events = m->pending_events;
    r->ids_bytes = m->ids_bytes;
    r->nwaiting = 0;
    return true;
}

int df_recorder_end_batch(df_recorder *r, MDB_txn *txn)
{
    int rc;
    if ((rc = refold_waiting(r, txn)) == 0 &&
        (rc = df_store_meta_put(r->st, txn, "prev_moved", r->prev_moved)) == 0 &&
        (rc = df_store_meta_put(r->st, txn, "duplicates", r->duplicates)) == 0)
        rc = df_store_meta_put(r->st, txn, "deals", r->deal_count);
    return rc;
}

void df_recorder_publish(df_recorder *r)
{
    r->redacted = false;
    df_overlay_publish(r->overlay);
}

df_recorder_counts df_recorder_counts_get(const df_recorder *r)
{
    return (df_recorder_counts){r->last_seq, r->derived_seq, r->last_rejected, r->duplicates,
                                r->deal_count};
}

bool df_recorder_take_pipelines_changed(df_recorder *r)
{
    bool changed = r->pipelines_changed;
    r->pipelines_changed = false;
    return changed;
}

const df_pipelines *df_recorder_pipelines(const df_recorder *r)
{
    return r->pipelines;
}

/* ---- flushing ---- */

bool df_recorder_flush_due(const df_recorder *r)
{
    return r->pending_events >= FLUSH_EVENTS ||
           r->ids_bytes + df_overlay_bytes(r->overlay) >= FLUSH_BYTES;
}

/* Writes one pending deal: its projection, indexes and (unless gathered
 * apart) aggregates. fresh: the store holds no deal, and deals come in key
 * order. */
static int flush_deal(df_recorder *r, MDB_txn *txn, const df_pending *p, int64_t now, bool fresh,
                      bool deltas)
{
    bool existed = !fresh;
    int rc = 0;
    df_deal_init(&r->after, p->id, p->id_len);
    if (!fresh) {
        df_deal_init(&r->before, p->id, p->id_len);
        rc = df_store_deal_get(r->st, txn, &r->before);
        if (rc == MDB_NOTFOUND) {
            existed = false;
            rc = 0;
        }
    }
    const df_deal *before = existed ? &r->before : NULL;
    if (rc == 0 && df_deal_decode(p->record, p->len, &r->after) != 0)
        rc = MDB_CORRUPTED;
    if (rc == 0)
        rc = df_store_deal_reindex(r->st, txn, before, &r->after);
    if (rc == 0 && deltas && !df_agg_deltas_deal(r->deltas, before, &r->after))
        rc = ENOMEM;
    /* a rebuild's deals whose events were all flushed before it: their
     * spells were reported then */
    bool known = p->nseqs > 0 && p->seqs[p->nseqs - 1] <= r->spells_known;
    if (rc == 0 && !known)
        df_stale_finder_arrival(r->stale, before, &r->after, r->pipelines, now);
    if (rc == 0)
        rc = df_store_deal_put(r->st, txn, &r->after, fresh);
    return rc;
}

/* Commits what the flush wrote so far, and begins the transaction that
 * goes on. The first step marks the store as holding a flush that has not
 * ended: a start that finds the mark rebuilds the derived state, for part
 * of it is newer than derived_seq says. Deals found stale on arrival in
 * what is committed are handed over: a flush taken up again after a
 * failure would not find them again. */
static int flush_step(void *ctx, MDB_txn **txn)
{
    df_recorder *r = ctx;
    int rc = r->flush_open ? 0 : df_store_meta_put(r->st, *txn, DF_FLUSH_OPEN_KEY, 1);
    if (rc != 0) {
        mdb_txn_abort(*txn);
        *txn = NULL;
        return rc;
    }
    /* whether or not the commit says it worked, the mark may be in the
     * store: a flush taken up again puts everything again */
    r->flush_open = true;
    rc = df_store_write_step(r->st, *txn);
    *txn = NULL;
    if (rc != 0)
        return rc;
    df_stale_finder_hand_over(r->stale, true);
    return df_store_write_begin(r->st, txn);
}

/* Writes the events of each pending deal that memory holds, in the deals'
 * key order (appended after every key when the store holds none: fresh),
 * in steps unless fresh. again: an earlier try committed part of this
 * flush, so the store may hold some of them. */
static int flush_deal_events(df_recorder *r, MDB_txn **txn, const df_table_item *deals,
                             size_t ndeals, bool fresh, bool again)
{
    df_put_order order = fresh ? DF_PUT_APPEND : again ? DF_PUT_AGAIN : DF_PUT_AFTER;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ndeals; i++) {
        const df_pending *p = deals[i].value;
        if (!fresh && i > 0 && i % FLUSH_STEP_DEALS == 0 && (rc = flush_step(r, txn)) != 0)
            break;
        if (p->record)
            rc = df_store_deal_events_put(r->st, *txn, p->id, p->id_len, p->seqs, p->nseqs, order);
    }
    return rc;
}

/* Writes the ids recorded since the last flush, in steps unless fresh
 * (again: as flush_deal_events). */
static int flush_ids(df_recorder *r, MDB_txn **txn, bool fresh, bool again)
{
    size_t nids = df_table_count(r->ids), n = 0;
    if (nids == 0)
        return 0;
    df_table_item *items = df_table_items(r->ids);
    df_id_seq *ids = malloc(nids * sizeof(*ids));
    int rc = items && ids ? 0 : ENOMEM;
    for (size_t i = 0; rc == 0 && i < nids; i++)
        if (items[i].value) /* else forgotten: its batch was not committed */
            ids[n++] = (df_id_seq){items[i].key, items[i].len, (uint64_t)(uintptr_t)items[i].value};
    df_write_steps steps = {flush_step, r, FLUSH_STEP_IDS};
    if (rc == 0)
        rc = df_store_ids_put(r->st, txn, ids, n,
                              fresh   ? DF_PUT_APPEND
                              : again ? DF_PUT_AGAIN
                                      : DF_PUT_AFTER,
                              fresh ? NULL : &steps);
    free(items);
    free(ids);
    return rc;
}

/* The aggregate changes of deals new to the store, gathered on a second
 * thread while the flush writes the rest: they need nothing of the store,
 * and take as long as all the writes. Every FLUSH_AGG_ROWS rows the thread
 * waits for the flush to write them, at the same deals as a flush that
 * gathers itself, so that sums in floating point come out the same. */
typedef struct new_deltas {
    df_agg_deltas *deltas;
    df_table_item *deals; /* its own copy, in the flush's order */
    size_t ndeals;
    int rc;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool full;     /* the rows wait to be written (under mu) */
    bool done;     /* every deal is in (under mu) */
    bool stopping; /* the flush failed (under mu) */
    df_deal deal;
} new_deltas;

static void *gather_new_deltas(void *arg)
{
    new_deltas *g = arg;
    bool stopping = false;
    for (size_t i = 0; g->rc == 0 && !stopping && i < g->ndeals; i++) {
        const df_pending *p = g->deals[i].value;
        if (!p->record)
            continue;
        df_deal_init(&g->deal, p->id, p->id_len);
        if (df_deal_decode(p->record, p->len, &g->deal) != 0)
            g->rc = MDB_CORRUPTED;
        else if (!df_agg_deltas_deal(g->deltas, NULL, &g->deal))
            g->rc = ENOMEM;
        else if (df_agg_deltas_count(g->deltas) >= FLUSH_AGG_ROWS) {
            pthread_mutex_lock(&g->mu);
            g->full = true;
            pthread_cond_broadcast(&g->cv);
            while (g->full && !g->stopping)
                pthread_cond_wait(&g->cv, &g->mu);
            stopping = g->stopping;
            pthread_mutex_unlock(&g->mu);
        }
    }
    pthread_mutex_lock(&g->mu);
    g->done = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* Starts gathering; NULL when it cannot (the flush then gathers itself). */
static new_deltas *new_deltas_start(df_recorder *r, const df_table_item *deals, size_t ndeals)
{
    new_deltas *g = calloc(1, sizeof(*g));
    if (g && (g->deals = malloc(ndeals * sizeof(*deals))) != NULL) {
        memcpy(g->deals, deals, ndeals * sizeof(*deals));
        g->deltas = r->deltas;
        g->ndeals = ndeals;
        pthread_mutex_init(&g->mu, NULL);
        pthread_cond_init(&g->cv, NULL);
        if (pthread_create(&g->thread, NULL, gather_new_deltas, g) == 0)
            return g;
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g->deals);
    }
    free(g);
    return NULL;
}

/* Writes the rows the thread handed over, if any; with until_done, waits
 * for it to gather every deal, writing on the way. */
static int new_deltas_write(df_recorder *r, MDB_txn *txn, new_deltas *g, bool until_done)
{
    int rc = 0;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        if (g->full) {
            pthread_mutex_unlock(&g->mu);
            rc = df_store_aggs_apply(r->st, txn, g->deltas);
            pthread_mutex_lock(&g->mu);
            g->full = false;
            pthread_cond_broadcast(&g->cv);
            if (rc != 0)
                break;
        } else if (g->done || !until_done) {
            break;
        } else {
            pthread_cond_wait(&g->cv, &g->mu);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* Ends the gathering: with ok, writes what was handed over until the last
 * deal is in (the rest the flush writes); else stops the thread. */
static int new_deltas_finish(df_recorder *r, MDB_txn *txn, new_deltas *g, bool ok)
{
    int rc = ok ? new_deltas_write(r, txn, g, true) : 0;
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    if (rc == 0)
        rc = g->rc;
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g->deals);
    free(g);
    return rc;
}

/* Writes the derived state of the log up to `upto` (r->last_seq, but
 * for a flush during a replay) that memory holds. */
static int flush_upto(df_recorder *r, uint64_t upto)
{
    df_store *st = r->st;
    MDB_txn *txn = NULL;
    size_t ndeals;
    df_table_item *deals = df_overlay_sorted(r->overlay, &ndeals);
    int64_t now = df_now_ms();
    int rc = ndeals && !deals ? ENOMEM : df_store_write_begin(st, &txn);
    /* after a rebuild dropped the derived state, every key is new and comes
     * sorted: the tables are filled by appending, in one transaction */
    bool fresh = rc == 0 && df_store_derived_empty(st, txn);
    /* Taken up again after a failure that committed steps, the flush writes
     * every deal again: each one's old state is read from the store, so a
     * deal a step committed changes nothing, or only what came since. */
    bool again = r->flush_open;
    new_deltas *gathering = fresh && ndeals ? new_deltas_start(r, deals, ndeals) : NULL;
    for (size_t i = 0; rc == 0 && i < ndeals; i++) {
        const df_pending *p = deals[i].value;
        if (p->record) /* else its first event failed to fold; the batch was not recorded */
            rc = flush_deal(r, txn, p, now, fresh, !gathering);
        /* the changes of a flush of many deals are written as they come,
         * so that they are never all in memory at once; a step commits
         * deals with their aggregate changes */
        bool step = !fresh && (i + 1) % FLUSH_STEP_DEALS == 0 && i + 1 < ndeals;
        if (rc == 0 && gathering)
            rc = new_deltas_write(r, txn, gathering, false);
        else if (rc == 0 && (step || df_agg_deltas_count(r->deltas) >= FLUSH_AGG_ROWS))
            rc = df_store_aggs_apply(st, txn, r->deltas);
        if (rc == 0 && step)
            rc = flush_step(r, &txn);
    }
    /* the steps that follow commit the last deals: with their changes */
    if (rc == 0 && !gathering)
        rc = df_store_aggs_apply(st, txn, r->deltas);
    if (rc == 0)
        rc = flush_deal_events(r, &txn, deals, ndeals, fresh, again);
    if (rc == 0)
        rc = flush_ids(r, &txn, fresh, again);
    if (gathering) {
        int gathered = new_deltas_finish(r, txn, gathering, rc == 0);
        rc = rc ? rc : gathered;
    }
    if (rc == 0)
        rc = df_store_aggs_apply(st, txn, r->deltas);
    df_agg_deltas_clear(r->deltas);
    if (rc == 0)
        rc = df_store_pipelines_snapshot_put(st, txn, r->pipelines);
    /* deals reported as stale on arrival went stale before this mark */
    if (rc == 0)
        rc = df_store_meta_put(st, txn, "stale_checked",
                               (uint64_t)df_stale_finder_checked(r->stale));
    if (rc == 0)
        rc = df_store_meta_put(st, txn, "derived_seq", upto);
    if (rc == 0 && r->flush_open)
        rc = df_store_meta_put(st, txn, DF_FLUSH_OPEN_KEY, 0);
    if (rc == 0) {
        rc = df_store_write_commit(st, txn);
        txn = NULL;
    }
    free(deals);
    if (txn)
        mdb_txn_abort(txn);
    if (rc != 0)
        return rc;
    r->flush_open = false;
    r->derived_seq = upto;
    /* readers now find these deals in the store */
    df_overlay_clear(r->overlay);
    df_table_clear(r->ids, NULL);
    r->pending_events = 0;
    r->ids_bytes = 0;
    return 0;
}

int df_recorder_flush(df_recorder *r)
{
    return flush_upto(r, r->last_seq);
}

/* ---- loading ---- */

/* Remembers the id of an event of the log, on the thread that reads it:
 * but for the ids a flush during the replay wrote already (those the
 * read-ahead had remembered ahead of the fold). */
static int remember_read(void *ctx, const df_event *ev)
{
    df_recorder *r = ctx;
    if (ev->seq <= r->ids_flushed_through)
        return 0;
    if (ev->seq > r->ids_remembered_through)
        r->ids_remembered_through = ev->seq;
    return remember_id(r, ev->id, ev->seq);
}

/* Folds one recorded event back into memory. */
static int replay_event(df_recorder *r, MDB_txn *txn, const df_event *ev)
{
    df_pending *p;
    bool existed;
    int rc;
    if (ev->type == DF_EV_PIPELINE) {
        /* later events were folded with this definition */
        if ((rc = refold_waiting(r, txn)) == 0 && df_pipelines_apply(r->pipelines, ev, NULL) != 0)
            rc = MDB_CORRUPTED;
        return rc;
    }
    if ((rc = load_deal(r, txn, ev->deal, &p, &existed)) != 0)
        return rc;
    if (ev->type == DF_EV_REDACTION) {
        /* the flushed projection may predate it: the deal is refolded
         * from its redacted events */
        if (!existed || !(p = pending_with(r, p, ev->seq)))
            return existed ? ENOMEM : MDB_CORRUPTED;
        if (!p->refold_waiting) {
            r->nwaiting++;
            p->refold_waiting = true;
        }
        return 0;
    }
    const df_deal *before = existed ? &r->before : NULL;
    df_apply_result result =
        df_apply_fold(r->pipelines, before, p && p->refold_waiting, ev, &r->after);
    return fold_deal(r, txn, NULL, ev, p, before, result);
}

/* A replay flushes at this many times what makes a flush due: a flush
 * into empty tables is the quickest, so a log of a few million events is
 * best folded whole and written in one, while a longer one must not hold
 * all of itself in memory. */
#define REPLAY_FLUSH_FACTOR 4

/* df_recorder_flush_due for a replay: the read-ahead thread counts the
 * bytes of the ids it remembers, so an id's cost is taken as ENTRY_COST. */
static bool replay_flush_due(const df_recorder *r)
{
    return r->pending_events >= REPLAY_FLUSH_FACTOR * (size_t)FLUSH_EVENTS ||
           df_overlay_bytes(r->overlay) + r->pending_events * ENTRY_COST >=
               REPLAY_FLUSH_FACTOR * (size_t)FLUSH_BYTES;
}

/* A long replay (a rebuild, or a log far ahead of its flushed state) is
 * flushed as it goes (replay_flush_due), so that memory stays bounded and
 * the tables in memory small enough to be quick, whatever the length of
 * the log. The read-ahead remembers ids into the table a flush empties, so
 * it is stopped for the flush and started again after the last event
 * folded (`folded`). A flush that fails (a full disk) leaves the rest of
 * the replay in memory, as a replay did before, and clears *flushing; the
 * writer's flushes take it up. */
static int flush_replayed(df_recorder *r, MDB_txn **txn, df_readahead **ra, uint64_t folded,
                          bool *flushing)
{
    df_readahead_stop(*ra);
    *ra = NULL;
    int rc = refold_waiting(r, *txn);
    mdb_txn_abort(*txn);
    *txn = NULL;
    if (rc != 0)
        return rc;
    int flushed = df_store_make_room(r->st, 2 * df_overlay_bytes(r->overlay) + DF_ROOM_MIN);
    if (flushed == 0)
        flushed = flush_upto(r, folded);
    if (flushed == 0) /* the table held them, read ahead or not */
        r->ids_flushed_through = r->ids_remembered_through;
    df_stale_finder_hand_over(r->stale, flushed == 0);
    if (flushed != 0) {
        *flushing = false;
        df_log("flushing derived state during the replay failed (the rest stays in memory): %s",
               mdb_strerror(flushed));
    }
    if ((rc = df_store_write_begin(r->st, txn)) == 0 && folded < r->last_seq)
        rc = df_readahead_start(ra, r->st, folded, r->last_seq, remember_read, r);
    return rc;
}

/* Folds the recorded events after the flushed state back into memory; a
 * second thread reads, checks and decodes them (and remembers their ids)
 * ahead of the fold. */
static int replay_log(df_recorder *r)
{
    MDB_txn *txn = NULL;
    df_readahead *ra = NULL;
    const df_event *ev;
    bool flushing = true;
    r->ids_remembered_through = r->ids_flushed_through = 0;
    int rc = df_store_write_begin(r->st, &txn);
    if (rc == 0 && r->last_seq > r->derived_seq)
        rc = df_readahead_start(&ra, r->st, r->derived_seq, r->last_seq, remember_read, r);
    while (rc == 0 && ra && (ev = df_readahead_next(ra, &rc)) != NULL) {
        uint64_t folded = ev->seq;
        if ((rc = replay_event(r, txn, ev)) == 0 && flushing && replay_flush_due(r) &&
            folded < r->last_seq)
            rc = flush_replayed(r, &txn, &ra, folded, &flushing);
    }
    if (rc == DF_STORE_ECORRUPT)
        df_log("the stored event at seq %llu does not match its digest: the store is "
               "damaged (dealflowd --verify walks it)",
               (unsigned long long)df_store_corrupt_seq(r->st));
    df_readahead_stop(ra);
    if (rc == 0)
        rc = refold_waiting(r, txn);
    if (txn)
        mdb_txn_abort(txn);
    if (rc == 0)
        df_overlay_publish(r->overlay);
    return rc;
}

/* A flush that committed steps and never ended (the daemon stopped during
 * it) left derived state that is part older and part newer than
 * derived_seq: it is dropped, and the log folded again from its start. */
static int drop_open_flush(df_recorder *r)
{
    MDB_txn *txn;
    uint64_t open = 0;
    int rc = df_store_write_begin(r->st, &txn);
    if (rc == 0)
        rc = df_store_meta_get(r->st, txn, DF_FLUSH_OPEN_KEY, &open);
    if (rc == 0 && open) {
        df_log("the last flush of derived state did not end (dealflowd stopped during it): "
               "rebuilding the derived state from the log");
        if ((rc = df_store_derived_drop(r->st, txn)) == 0)
            rc = df_store_write_commit(r->st, txn);
        else
            mdb_txn_abort(txn);
    } else if (txn) {
        mdb_txn_abort(txn);
    }
    if (rc == 0)
        r->flush_open = false;
    return rc;
}

int df_recorder_load(df_recorder *r)
{
    MDB_txn *txn;
    uint64_t stale_checked = 0;
    int rc = drop_open_flush(r);
    if (rc == 0)
        rc = df_store_write_begin(r->st, &txn);
    if (rc != 0)
        return rc;
    r->last_seq = df_store_log_last(r->st, txn);
    r->last_rejected = df_store_rejected_last(r->st, txn);
    if ((rc = df_store_meta_get(r->st, txn, "prev_moved", &r->prev_moved)) != 0 ||
        (rc = df_store_meta_get(r->st, txn, "duplicates", &r->duplicates)) != 0 ||
        (rc = df_store_meta_get(r->st, txn, "deals", &r->deal_count)) != 0 ||
        (rc = df_store_meta_get(r->st, txn, "derived_seq", &r->derived_seq)) != 0 ||
        (rc = df_store_meta_get(r->st, txn, DF_SPELLS_KNOWN_KEY, &r->spells_known)) != 0 ||
        (rc = df_store_meta_get(r->st, txn, "stale_checked", &stale_checked)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    df_stale_finder_start(r->stale, (int64_t)stale_checked, df_now_ms());
    /* the log after the flushed state is folded again with the pipelines it
     * was folded with: those of the flushed state, then its own definitions */
    if (r->derived_seq == 0)
        df_pipelines_init(r->pipelines);
    else if ((rc = df_store_pipelines_snapshot_get(r->st, txn, r->pipelines)) == MDB_NOTFOUND)
        rc = df_store_pipelines_load(r->st, txn, r->pipelines);
    mdb_txn_abort(txn);
    if (rc != 0)
        return rc;
    /* rebuilt in a new table; readers keep the old one until it is ready */
    if (!df_overlay_rebuild(r->overlay))
        return ENOMEM;
    df_table_clear(r->ids, NULL);
    r->nwaiting = 0;
    r->redacted = false;
    r->pending_events = 0;
    r->ids_bytes = 0;
    if (r->last_seq > r->derived_seq)
        df_log("folding seq %llu..%llu of the log back into memory",
               (unsigned long long)r->derived_seq + 1, (unsigned long long)r->last_seq);
    rc = replay_log(r);
    df_overlay_rebuilt(r->overlay);
    return rc;
}
