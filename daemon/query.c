/* query.c: the api's read operations. Each sees committed state only: every
 * acknowledged event and nothing that is not yet on disk. `deal` looks in
 * the writer's in-memory state first; the others read one LMDB read
 * transaction, after the derived state they need has been flushed. */
#include "query.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "refold.h"
#include "report.h"
#include "version.h"

#define VERSION_STRING DF_VERSION

#define LIST_DEFAULT     100
#define LIST_SCAN_BUDGET 100000 /* deals one list page may look at */
#define PAGE_MAX         10000
#define EVENTS_DEFAULT   1000
#define REJECTED_DEFAULT 100

/* What one request works with. */
typedef struct query {
    df_daemon *d;
    const msgpack_object *req;
    msgpack_packer *pk;
    MDB_txn *txn;
    int64_t now;
    uint64_t pipeline_changes; /* the writer's count, read before txn began */
} query;

/* The pipelines as of the writer's pipeline_changes count `pipelines_at`:
 * read again from the store only when a commit changed them. */
static df_pipelines pipelines;
static uint64_t pipelines_at = UINT64_MAX;
static df_refolder *refolder;

static int fail(query *q, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(query *q, int code, const char *fmt, ...)
{
    char message[DF_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    df_pack_error(q->pk, code, message);
    return 0;
}

static int store_failed(query *q, int rc)
{
    df_log("read failed: %s", mdb_strerror(rc));
    return fail(q, DF_EINTERNAL, "the store could not be read: %s", mdb_strerror(rc));
}

static void pack_ok(msgpack_packer *pk, size_t keys)
{
    msgpack_pack_map(pk, keys + 1);
    df_pack_cstr(pk, "ok");
    msgpack_pack_true(pk);
}

static void pack_name(msgpack_packer *pk, bool has, const char *s, size_t len)
{
    if (has)
        df_pack_str(pk, s, len);
    else
        msgpack_pack_nil(pk);
}

static void pack_opt_int(msgpack_packer *pk, bool has, int64_t v)
{
    if (has)
        msgpack_pack_int64(pk, v);
    else
        msgpack_pack_nil(pk);
}

void df_pack_deal(msgpack_packer *pk, const df_deal *deal, int64_t now, const df_pipelines *pl)
{
    static df_deal_view view; /* large; the loop thread is the only caller */
    df_str pipeline = df_deal_pipeline(deal);
    df_deal_view_at(deal, now, pl, &view);
    msgpack_pack_map(pk, 22);
    df_pack_cstr(pk, "deal");
    df_pack_str(pk, deal->deal.s, deal->deal.len);
    df_pack_cstr(pk, "pipeline");
    df_pack_str(pk, pipeline.ptr, pipeline.len);
    df_pack_cstr(pk, "stage");
    pack_name(pk, deal->has_stage, deal->stage.s, deal->stage.len);
    df_pack_cstr(pk, "status");
    df_pack_cstr(pk, df_outcome_name(view.status));
    df_pack_cstr(pk, "stage_since");
    pack_opt_int(pk, deal->has_stage, deal->stage_since);
    df_pack_cstr(pk, "days_in_stage");
    pack_opt_int(pk, view.has_days_in_stage, view.days_in_stage);
    df_pack_cstr(pk, "last_activity");
    pack_opt_int(pk, deal->has_activity, deal->last_activity);
    df_pack_cstr(pk, "days_since_activity");
    pack_opt_int(pk, view.has_days_since_activity, view.days_since_activity);
    df_pack_cstr(pk, "created");
    msgpack_pack_int64(pk, deal->created);
    df_pack_cstr(pk, "amount");
    df_pack_num(pk, deal->amount);
    df_pack_cstr(pk, "owner");
    pack_name(pk, deal->has_owner, deal->owner.s, deal->owner.len);
    df_pack_cstr(pk, "name");
    pack_name(pk, deal->has_name, deal->name.s, deal->name.len);
    df_pack_cstr(pk, "product");
    pack_name(pk, deal->has_product, deal->product.s, deal->product.len);
    df_pack_cstr(pk, "close_date");
    pack_opt_int(pk, deal->has_close_date, deal->close_date);
    df_pack_cstr(pk, "probability");
    pack_opt_int(pk, deal->has_stage, view.probability);
    df_pack_cstr(pk, "activities");
    msgpack_pack_uint64(pk, deal->activities);
    df_pack_cstr(pk, "version");
    msgpack_pack_uint64(pk, deal->version);
    df_pack_cstr(pk, "time_in_stage");
    msgpack_pack_map(pk, (size_t)view.nstage_times);
    for (int i = 0; i < view.nstage_times; i++) {
        df_pack_str(pk, view.stage_times[i].stage.s, view.stage_times[i].stage.len);
        msgpack_pack_int64(pk, view.stage_times[i].ms);
    }
    df_pack_cstr(pk, "stale");
    if (view.stale)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    df_pack_cstr(pk, "regressions");
    msgpack_pack_uint32(pk, deal->regressions);
    df_pack_cstr(pk, "reopened");
    msgpack_pack_uint32(pk, deal->reopened);
    df_pack_cstr(pk, "pushes");
    msgpack_pack_uint32(pk, deal->pushes);
}

/* ---- request keys ---- */

static bool bad_key(query *q, const char *key, const char *what)
{
    fail(q, DF_EBAD_REQUEST, "`%s` must be %s", key, what);
    return false;
}

/* Reads an optional string key into out (len 0 when absent). */
static bool opt_str(query *q, const char *key, df_str *out)
{
    bool bad = false;
    out->ptr = NULL;
    out->len = 0;
    if (!df_get_str(q->req, key, out, &bad) && bad)
        return bad_key(q, key, "a string");
    return true;
}

static bool opt_uint(query *q, const char *key, uint64_t *out, uint64_t fallback, uint64_t min,
                     uint64_t max)
{
    bool bad = false;
    char what[80];
    if (!df_get_uint(q->req, key, out, &bad))
        *out = fallback;
    if (bad || *out < min || *out > max) {
        snprintf(what, sizeof(what), "an integer in %llu..%llu", (unsigned long long)min,
                 (unsigned long long)max);
        return bad_key(q, key, what);
    }
    return true;
}

static bool opt_time(query *q, const char *key, int64_t *out, bool *given)
{
    bool bad = false;
    *given = df_get_int(q->req, key, out, &bad);
    if (bad)
        return bad_key(q, key, "an integer (ms since the Unix epoch)");
    return true;
}

static bool read_now(query *q)
{
    bool given;
    int64_t now;
    if (!opt_time(q, "now", &now, &given))
        return false;
    q->now = given ? now : df_now_ms();
    return true;
}

static int load_pipelines(query *q)
{
    if (pipelines_at == q->pipeline_changes)
        return 0;
    int rc = df_store_pipelines_load(q->d->store, q->txn, &pipelines);
    pipelines_at = rc == 0 ? q->pipeline_changes : UINT64_MAX;
    return rc;
}

/* ---- ping and stats ---- */

static int op_ping(query *q)
{
    df_writer_counters c = df_writer_counters_get(q->d->writer);
    pack_ok(q->pk, 2);
    df_pack_cstr(q->pk, "version");
    df_pack_cstr(q->pk, VERSION_STRING);
    df_pack_cstr(q->pk, "last_seq");
    msgpack_pack_uint64(q->pk, c.committed_seq);
    return 0;
}

static int op_stats(query *q)
{
    df_daemon *d = q->d;
    df_writer_counters c = df_writer_counters_get(d->writer);
    pack_ok(q->pk, 13);
    df_pack_cstr(q->pk, "events");
    msgpack_pack_uint64(q->pk, c.committed_seq);
    df_pack_cstr(q->pk, "duplicates");
    msgpack_pack_uint64(q->pk, c.duplicates);
    df_pack_cstr(q->pk, "rejected");
    msgpack_pack_uint64(q->pk, c.rejected);
    df_pack_cstr(q->pk, "deals");
    msgpack_pack_uint64(q->pk, c.deals);
    df_pack_cstr(q->pk, "last_seq");
    msgpack_pack_uint64(q->pk, c.committed_seq);
    df_pack_cstr(q->pk, "flushed_seq");
    msgpack_pack_uint64(q->pk, c.flushed_seq);
    df_pack_cstr(q->pk, "commits");
    msgpack_pack_uint64(q->pk, c.commits);
    df_pack_cstr(q->pk, "flushes");
    msgpack_pack_uint64(q->pk, c.flushes);
    df_pack_cstr(q->pk, "notifications");
    msgpack_pack_uint64(q->pk, d->notifications);
    df_pack_cstr(q->pk, "stale_notifications");
    msgpack_pack_uint64(q->pk, d->stale_notifications);
    df_pack_cstr(q->pk, "pending");
    msgpack_pack_uint64(q->pk, d->filling->count);
    df_pack_cstr(q->pk, "uptime_ms");
    msgpack_pack_int64(q->pk, df_now_ms() - d->started_ms);
    df_pack_cstr(q->pk, "db_bytes");
    msgpack_pack_uint64(q->pk, df_store_disk_bytes(d->store));
    return 0;
}

/* ---- deal and history ---- */

static bool read_deal_id(query *q, df_deal *deal)
{
    df_str id;
    if (!opt_str(q, "deal", &id))
        return false;
    if (id.len == 0 || id.len > DF_MAX_ID)
        return bad_key(q, "deal", "a string of 1..128 bytes");
    df_deal_init(deal, id.ptr, id.len);
    return true;
}

static int op_deal(query *q)
{
    static df_deal deal;
    char shown[64];
    int64_t as_of;
    bool has_as_of, has_now;
    int rc;
    if (!read_deal_id(q, &deal) || !opt_time(q, "as_of", &as_of, &has_as_of) ||
        !opt_time(q, "now", &q->now, &has_now))
        return 0;
    if (!has_now)
        q->now = has_as_of ? as_of : df_now_ms();
    if ((rc = load_pipelines(q)) != 0)
        return store_failed(q, rc);
    uint8_t record[DF_DEAL_RECORD_MAX];
    size_t len;
    if (!has_as_of && df_writer_lookup(q->d->writer, deal.deal.s, deal.deal.len, record, &len)) {
        rc = df_deal_decode(record, len, &deal) == 0 ? 0 : MDB_CORRUPTED;
    } else {
        /* a flush may have moved the deal from memory to the store since the
         * transaction began: only a transaction begun after the miss sees it */
        df_store_read_end(q->d->store, q->txn);
        if ((rc = df_store_read_begin(q->d->store, &q->txn)) != 0)
            return store_failed(q, rc);
        rc = df_store_deal_get(q->d->store, q->txn, &deal);
    }
    if (rc == MDB_NOTFOUND)
        return fail(q, DF_ENOT_FOUND, "deal `%s` is not known",
                    df_printable(deal.deal.s, deal.deal.len, shown, sizeof(shown)));
    if (rc != 0)
        return store_failed(q, rc);
    if (has_as_of) {
        /* the request waited for a flush: the store holds every event of the deal */
        if (!refolder && !(refolder = df_refolder_new()))
            return fail(q, DF_EINTERNAL, "out of memory");
        if ((rc = df_refold(refolder, q->d->store, q->txn, &pipelines, as_of, NULL, 0, &deal)) != 0)
            return store_failed(q, rc);
        if (deal.version == 0)
            return fail(q, DF_ENOT_FOUND, "deal `%s` has no event at or before %lld",
                        df_printable(deal.deal.s, deal.deal.len, shown, sizeof(shown)),
                        (long long)as_of);
    }
    pack_ok(q->pk, 1);
    df_pack_cstr(q->pk, "deal");
    df_pack_deal(q->pk, &deal, q->now, &pipelines);
    return 0;
}

/* Collected events of a page: pointers into the read transaction's snapshot. */
typedef struct page {
    query *q;
    MDB_val *events;
    size_t count, limit;
    int rc;
} page;

static int page_add(page *p, const MDB_val *event)
{
    p->events[p->count++] = *event;
    return p->count >= p->limit;
}

static int history_each(void *ctx, uint64_t seq)
{
    page *p = ctx;
    MDB_val event;
    p->rc = df_store_log_get(p->q->d->store, p->q->txn, seq, &event);
    if (p->rc != 0)
        return 1;
    return page_add(p, &event);
}

static int log_each(void *ctx, uint64_t seq, const MDB_val *event)
{
    (void)seq;
    return page_add(ctx, event);
}

static void pack_events(msgpack_packer *pk, const page *p)
{
    df_pack_cstr(pk, "events");
    msgpack_pack_array(pk, p->count);
    for (size_t i = 0; i < p->count; i++)
        pk->callback(pk->data, p->events[i].mv_data, p->events[i].mv_size);
}

static bool page_init(query *q, page *p, uint64_t limit)
{
    p->q = q;
    p->count = 0;
    p->limit = limit;
    p->rc = 0;
    p->events = malloc(limit * sizeof(*p->events));
    if (!p->events)
        fail(q, DF_EINTERNAL, "out of memory");
    return p->events != NULL;
}

static int op_history(query *q)
{
    static df_deal deal;
    char shown[64];
    uint64_t after, limit;
    page p;
    int rc;
    if (!read_deal_id(q, &deal) || !opt_uint(q, "after", &after, 0, 0, UINT64_MAX) ||
        !opt_uint(q, "limit", &limit, EVENTS_DEFAULT, 1, PAGE_MAX))
        return 0;
    rc = df_store_deal_get(q->d->store, q->txn, &deal);
    if (rc == MDB_NOTFOUND)
        return fail(q, DF_ENOT_FOUND, "deal `%s` is not known",
                    df_printable(deal.deal.s, deal.deal.len, shown, sizeof(shown)));
    if (rc != 0)
        return store_failed(q, rc);
    if (!page_init(q, &p, limit))
        return 0;
    rc = df_store_deal_event_scan(q->d->store, q->txn, deal.deal.s, deal.deal.len, after,
                                  history_each, &p);
    if (rc == 0)
        rc = p.rc;
    if (rc != 0) {
        free(p.events);
        return store_failed(q, rc);
    }
    pack_ok(q->pk, 1);
    pack_events(q->pk, &p);
    free(p.events);
    return 0;
}

typedef int (*counter_scan)(df_store *st, MDB_txn *txn, uint64_t after, size_t limit,
                            df_log_each each, void *ctx);

/* Reads `after` and `limit` and the page of the log or of the rejected
 * items they ask for. Returns false when it answered with an error. */
static bool read_counter_page(query *q, uint64_t default_limit, counter_scan scan, page *p,
                              uint64_t *after)
{
    uint64_t limit;
    if (!opt_uint(q, "after", after, 0, 0, UINT64_MAX) ||
        !opt_uint(q, "limit", &limit, default_limit, 1, PAGE_MAX) || !page_init(q, p, limit))
        return false;
    int rc = scan(q->d->store, q->txn, *after, limit, log_each, p);
    if (rc != 0) {
        free(p->events);
        store_failed(q, rc);
        return false;
    }
    return true;
}

static int op_replay(query *q)
{
    uint64_t after;
    page p;
    if (!read_counter_page(q, EVENTS_DEFAULT, df_store_log_scan, &p, &after))
        return 0;
    pack_ok(q->pk, 2);
    pack_events(q->pk, &p);
    df_pack_cstr(q->pk, "last_seq");
    msgpack_pack_uint64(q->pk, df_store_log_last(q->d->store, q->txn));
    free(p.events);
    return 0;
}

typedef struct moves_page {
    msgpack_packer *pk;
    msgpack_zone zone;
    size_t count;
    int rc;
} moves_page;

static int pack_stored_move(void *ctx, uint64_t seq, const MDB_val *stored)
{
    moves_page *p = ctx;
    df_move m;
    msgpack_zone_clear(&p->zone);
    if (df_move_unpack_stored(stored->mv_data, stored->mv_size, seq, &p->zone, &m) != 0) {
        p->rc = MDB_CORRUPTED;
        return 1;
    }
    df_move_pack(p->pk, &m);
    p->count++;
    return 0;
}

/* deal.moved notifications as they were published, for subscribers that
 * missed some. The page is packed into its own buffer first: a damaged
 * stored move turns the whole reply into an error. */
static int op_moves(query *q)
{
    uint64_t after, limit;
    if (!opt_uint(q, "after", &after, 0, 0, UINT64_MAX) ||
        !opt_uint(q, "limit", &limit, EVENTS_DEFAULT, 1, PAGE_MAX))
        return 0;
    msgpack_sbuffer items;
    msgpack_packer pk;
    msgpack_sbuffer_init(&items);
    msgpack_packer_init(&pk, &items, msgpack_sbuffer_write);
    moves_page p = {.pk = &pk};
    msgpack_zone_init(&p.zone, 1024);
    int rc = df_store_moves_scan(q->d->store, q->txn, after, limit, pack_stored_move, &p);
    msgpack_zone_destroy(&p.zone);
    if (rc == 0)
        rc = p.rc;
    if (rc != 0) {
        msgpack_sbuffer_destroy(&items);
        return store_failed(q, rc);
    }
    pack_ok(q->pk, 2);
    df_pack_cstr(q->pk, "moves");
    msgpack_pack_array(q->pk, p.count);
    q->pk->callback(q->pk->data, items.data, items.size);
    df_pack_cstr(q->pk, "last_seq");
    msgpack_pack_uint64(q->pk, df_store_moves_last(q->d->store, q->txn));
    msgpack_sbuffer_destroy(&items);
    return 0;
}

static int op_rejected(query *q)
{
    uint64_t after;
    page p;
    if (!read_counter_page(q, REJECTED_DEFAULT, df_store_rejected_scan, &p, &after))
        return 0;
    pack_ok(q->pk, 1);
    df_pack_cstr(q->pk, "items");
    msgpack_pack_array(q->pk, p.count);
    for (size_t i = 0; i < p.count; i++) {
        /* a stored item is a 4-entry map; the reply puts its id in front
         * (ids count up from 1 without a gap) */
        const char *item = p.events[i].mv_data;
        msgpack_pack_map(q->pk, 5);
        df_pack_cstr(q->pk, "id");
        msgpack_pack_uint64(q->pk, after + 1 + i);
        df_msgpack_header head;
        if (df_msgpack_head(item, p.events[i].mv_size, &head) && head.type == DF_MSGPACK_MAP &&
            head.count == 4 && p.events[i].mv_size > head.size) {
            q->pk->callback(q->pk->data, item + head.size, p.events[i].mv_size - head.size);
            continue;
        }
        static const char *const keys[] = {"recv", "error", "message", "raw"};
        for (int k = 0; k < 4; k++) { /* a damaged item still answers a whole map */
            df_pack_cstr(q->pk, keys[k]);
            msgpack_pack_nil(q->pk);
        }
    }
    free(p.events);
    return 0;
}

/* ---- list ---- */

typedef struct list_filter {
    query *q;
    df_str pipeline, stage, owner;
    int status; /* -1: any */
    int stale;  /* -1: any */
    bool has_idle;
    uint64_t idle_days;
    uint64_t limit;
    size_t count;
    bool more;
    char last[DF_MAX_ID]; /* id of the last deal looked at: the next cursor */
    size_t last_len;
    size_t examined;
    df_deal deal;
    msgpack_sbuffer deals;
    msgpack_packer pk;
    int rc;
} list_filter;

static bool matches(list_filter *f, const df_deal *deal, const df_deal_view *view)
{
    df_str pipeline = df_deal_pipeline(deal);
    if (f->pipeline.len &&
        (f->pipeline.len != pipeline.len || memcmp(f->pipeline.ptr, pipeline.ptr, pipeline.len)))
        return false;
    if (f->stage.len && (!deal->has_stage || !df_name_eq(&deal->stage, f->stage.ptr, f->stage.len)))
        return false;
    if (f->owner.len && (!deal->has_owner || !df_name_eq(&deal->owner, f->owner.ptr, f->owner.len)))
        return false;
    if (f->status >= 0 && view->status != f->status)
        return false;
    if (f->stale >= 0 && view->stale != (f->stale == 1))
        return false;
    if (f->has_idle) {
        int64_t since = view->idle_since;
        int64_t idle;
        if (__builtin_sub_overflow(f->q->now, since, &idle))
            idle = f->q->now < since ? INT64_MIN : INT64_MAX;
        if (idle < (int64_t)f->idle_days * DF_DAY_MS)
            return false;
    }
    return true;
}

static int list_each(void *ctx, const char *id, size_t len)
{
    static df_deal_view view;
    list_filter *f = ctx;
    if (len == 0 || len > DF_MAX_ID)
        return 0;
    if (++f->examined > LIST_SCAN_BUDGET && f->count < f->limit) {
        /* a filter that matches few deals must not hold the loop for long:
         * the page ends early, and the cursor goes on from the last deal seen */
        f->more = true;
        return 1;
    }
    df_deal_init(&f->deal, id, len);
    f->rc = df_store_deal_get(f->q->d->store, f->q->txn, &f->deal);
    if (f->rc == MDB_NOTFOUND) {
        /* a filter name holding a NUL byte can match the tail of another key */
        f->rc = 0;
        return 0;
    }
    if (f->rc != 0)
        return 1;
    df_deal_view_at(&f->deal, f->q->now, &pipelines, &view);
    if (!matches(f, &f->deal, &view))
        return 0;
    if (f->count == f->limit) {
        f->more = true;
        return 1;
    }
    df_pack_deal(&f->pk, &f->deal, f->q->now, &pipelines);
    f->count++;
    return 0;
}

/* Remembers the deal a scan is at, for the cursor, then looks at it. */
static int list_at(void *ctx, const char *id, size_t len)
{
    list_filter *f = ctx;
    int stop = list_each(ctx, id, len);
    if (!stop && len <= DF_MAX_ID) {
        memcpy(f->last, id, len);
        f->last_len = len;
    }
    return stop;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool read_cursor(query *q, char *out, size_t *len, bool *has)
{
    df_str cursor;
    *has = false;
    if (!opt_str(q, "cursor", &cursor))
        return false;
    if (!cursor.ptr)
        return true;
    if (cursor.len == 0 || cursor.len % 2 || cursor.len / 2 > DF_MAX_ID)
        return bad_key(q, "cursor", "a cursor from an earlier `list` reply");
    for (uint32_t i = 0; i < cursor.len; i += 2) {
        int hi = hex_digit(cursor.ptr[i]), lo = hex_digit(cursor.ptr[i + 1]);
        if (hi < 0 || lo < 0)
            return bad_key(q, "cursor", "a cursor from an earlier `list` reply");
        out[i / 2] = (char)(hi << 4 | lo);
    }
    *len = cursor.len / 2;
    *has = true;
    return true;
}

static bool read_list_filter(query *q, list_filter *f)
{
    df_str status;
    bool bad = false, stale;
    f->q = q;
    f->status = -1;
    f->stale = -1;
    if (!opt_str(q, "pipeline", &f->pipeline) || !opt_str(q, "stage", &f->stage) ||
        !opt_str(q, "owner", &f->owner) || !opt_str(q, "status", &status) || !read_now(q) ||
        !opt_uint(q, "limit", &f->limit, LIST_DEFAULT, 1, PAGE_MAX))
        return false;
    if (status.ptr) {
        for (int o = DF_OPEN; o <= DF_LOST; o++)
            if (df_str_eq(status, df_outcome_name(o)))
                f->status = o;
        if (f->status < 0)
            return bad_key(q, "status", "one of open, won, lost");
    }
    if (df_get_bool(q->req, "stale", &stale, &bad))
        f->stale = stale;
    if (bad)
        return bad_key(q, "stale", "true or false");
    f->has_idle = df_get_uint(q->req, "idle_days", &f->idle_days, &bad);
    if (bad || f->idle_days > 1000000)
        return bad_key(q, "idle_days", "an integer in 0..1000000");
    return true;
}

static int op_list(query *q)
{
    static list_filter f;
    char after[DF_MAX_ID];
    size_t after_len = 0;
    bool has_after;
    int rc;
    memset(&f, 0, sizeof(f));
    if (!read_list_filter(q, &f) || !read_cursor(q, after, &after_len, &has_after))
        return 0;
    if ((rc = load_pipelines(q)) != 0)
        return store_failed(q, rc);
    /* walk the narrowest index the filters allow; the rest are checked per deal */
    df_scan_kind kind = DF_SCAN_ALL;
    df_str a = {0}, b = {0};
    if (f.stage.len && f.pipeline.len) {
        kind = DF_SCAN_STAGE;
        a = f.pipeline;
        b = f.stage;
    } else if (f.owner.len) {
        kind = DF_SCAN_OWNER;
        a = f.owner;
    } else if (f.pipeline.len) {
        kind = DF_SCAN_PIPELINE;
        a = f.pipeline;
    }
    msgpack_sbuffer_init(&f.deals);
    msgpack_packer_init(&f.pk, &f.deals, msgpack_sbuffer_write);
    rc = df_store_deal_scan(q->d->store, q->txn, kind, a, b, has_after ? after : NULL, after_len,
                            list_at, &f);
    if (rc == 0)
        rc = f.rc;
    if (rc != 0) {
        msgpack_sbuffer_destroy(&f.deals);
        return store_failed(q, rc);
    }
    pack_ok(q->pk, 2);
    df_pack_cstr(q->pk, "deals");
    msgpack_pack_array(q->pk, f.count);
    q->pk->callback(q->pk->data, f.deals.data, f.deals.size);
    df_pack_cstr(q->pk, "cursor");
    if (f.more) {
        char hex[2 * DF_MAX_ID];
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < f.last_len; i++) {
            hex[2 * i] = digits[(uint8_t)f.last[i] >> 4];
            hex[2 * i + 1] = digits[(uint8_t)f.last[i] & 15];
        }
        df_pack_str(q->pk, hex, 2 * f.last_len);
    } else {
        msgpack_pack_nil(q->pk);
    }
    msgpack_sbuffer_destroy(&f.deals);
    return 0;
}

/* ---- board and metrics ---- */

static df_figures figures; /* large; the loop thread is the only caller */

/* Reads `pipeline` (default `default`), which must be defined. */
static const df_pipeline *read_pipeline(query *q)
{
    df_str name;
    int rc;
    if (!opt_str(q, "pipeline", &name))
        return NULL;
    if (!name.ptr)
        name = (df_str){DF_DEFAULT_PIPELINE, sizeof DF_DEFAULT_PIPELINE - 1};
    if ((rc = load_pipelines(q)) != 0) {
        store_failed(q, rc);
        return NULL;
    }
    const df_pipeline *p = df_pipelines_find(&pipelines, name.ptr, name.len);
    if (!p)
        fail(q, DF_EUNKNOWN_PIPELINE, "pipeline `%.*s` is not defined", (int)name.len, name.ptr);
    return p;
}

static int op_board(query *q)
{
    const df_pipeline *p;
    int rc;
    if (!read_now(q) || !(p = read_pipeline(q)))
        return 0;
    df_figures_init(&figures, p, q->now);
    if ((rc = df_report_load(q->d->store, q->txn, p, NULL, &figures, true)) != 0)
        return store_failed(q, rc);
    pack_ok(q->pk, 1);
    df_report_pack_board(q->pk, &figures);
    return 0;
}

static int op_metrics(query *q)
{
    const df_pipeline *p;
    df_str owner;
    int64_t from, to;
    bool has_from, has_to;
    int rc;
    if (!read_now(q) || !opt_str(q, "owner", &owner) || !opt_time(q, "from", &from, &has_from) ||
        !opt_time(q, "to", &to, &has_to) || !(p = read_pipeline(q)))
        return 0;
    df_figures_init(&figures, p, q->now);
    figures.has_from = has_from;
    figures.from = from;
    figures.has_to = has_to;
    figures.to = to;
    if ((rc = df_report_load(q->d->store, q->txn, p, owner.ptr ? &owner : NULL, &figures, false)) !=
        0)
        return store_failed(q, rc);
    pack_ok(q->pk, DF_METRICS_KEYS);
    df_report_pack_metrics(q->pk, &figures);
    return 0;
}

/* ---- dispatch ---- */

typedef struct read_op {
    const char *name;
    int (*run)(query *q);
} read_op;

static const read_op read_ops[] = {
    {"ping", op_ping},   {"stats", op_stats},     {"deal", op_deal},     {"history", op_history},
    {"list", op_list},   {"board", op_board},     {"replay", op_replay}, {"rejected", op_rejected},
    {"moves", op_moves}, {"metrics", op_metrics},
};

bool df_query_needs_flush(df_str op, const msgpack_object *request)
{
    if (df_str_eq(op, "deal"))
        return df_map_get(request, "as_of") != NULL;
    return df_str_eq(op, "history") || df_str_eq(op, "list") || df_str_eq(op, "board") ||
           df_str_eq(op, "metrics");
}

int df_query(df_daemon *d, df_str op, const msgpack_object *request, msgpack_packer *pk)
{
    for (size_t i = 0; i < sizeof(read_ops) / sizeof(read_ops[0]); i++) {
        if (!df_str_eq(op, read_ops[i].name))
            continue;
        query q = {.d = d, .req = request, .pk = pk};
        q.pipeline_changes = df_writer_counters_get(d->writer).pipeline_changes;
        int rc = df_store_read_begin(d->store, &q.txn);
        if (rc != 0)
            return store_failed(&q, rc);
        read_ops[i].run(&q);
        df_store_read_end(d->store, q.txn);
        return 0;
    }
    return DF_EUNKNOWN_OP;
}
