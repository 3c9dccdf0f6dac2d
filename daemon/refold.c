/* refold.c: rebuilding a deal from its recorded events. The events are
 * read twice, once to learn their order and once to fold them, so that
 * memory stays at 16 bytes an event however long the deal's history is. */
#include "refold.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct position {
    int64_t at;
    uint64_t seq;
} position;

struct df_refolder {
    msgpack_zone zone;
    df_event event;
    position *order;
    size_t count, cap;
    MDB_txn *txn;
    df_store *st;
    int64_t as_of;
    int rc;
};

df_refolder *df_refolder_new(void)
{
    df_refolder *r = calloc(1, sizeof(*r));
    if (r)
        msgpack_zone_init(&r->zone, 4096);
    return r;
}

void df_refolder_free(df_refolder *r)
{
    if (!r)
        return;
    msgpack_zone_destroy(&r->zone);
    free(r->order);
    free(r);
}

/* Decodes the recorded event seq into r->event (strings point into the map). */
static int load_event(df_refolder *r, uint64_t seq)
{
    MDB_val v;
    msgpack_object obj;
    int rc = df_store_log_get(r->st, r->txn, seq, &v);
    if (rc != 0)
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    msgpack_zone_clear(&r->zone);
    if (df_msgpack_unpack(v.mv_data, v.mv_size, &r->zone, &obj, NULL) != 0 ||
        df_recorded_decode(&obj, &r->event, NULL) != 0)
        return MDB_CORRUPTED;
    r->event.seq = seq;
    return 0;
}

static int collect(void *ctx, uint64_t seq)
{
    df_refolder *r = ctx;
    if ((r->rc = load_event(r, seq)) != 0)
        return 1;
    /* a redaction is in the deal's history, not in its fold */
    if (r->event.at > r->as_of || r->event.type == DF_EV_REDACTION)
        return 0;
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        position *grown = realloc(r->order, cap * sizeof(*grown));
        if (!grown) {
            r->rc = ENOMEM;
            return 1;
        }
        r->order = grown;
        r->cap = cap;
    }
    r->order[r->count++] = (position){r->event.at, seq};
    return 0;
}

static int by_position(const void *a, const void *b)
{
    const position *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int df_refold(df_refolder *r, df_store *st, MDB_txn *txn, const df_pipelines *pl, int64_t as_of,
              const uint64_t *pending, size_t npending, df_deal *d)
{
    df_name id = d->deal;
    r->txn = txn;
    r->st = st;
    r->as_of = as_of;
    r->count = 0;
    r->rc = 0;
    int rc = df_store_deal_event_scan(st, txn, id.s, id.len, 0, collect, r);
    if (rc == 0)
        rc = r->rc;
    for (size_t i = 0; rc == 0 && i < npending; i++)
        if (collect(r, pending[i]))
            rc = r->rc;
    if (rc != 0)
        return rc;
    if (r->count > 1) /* none at all when as_of is before every event */
        qsort(r->order, r->count, sizeof(*r->order), by_position);
    df_deal_init(d, id.s, id.len);
    for (size_t i = 0; i < r->count; i++) {
        if ((rc = load_event(r, r->order[i].seq)) != 0)
            return rc;
        df_fold_apply(d, &r->event, pl);
    }
    return 0;
}
