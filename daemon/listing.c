/* listing.c: the `list` operation's page. A page walks one deal index in
 * deal id order and checks the rest of the filter per deal; a filter that
 * matches few deals ends its page early, so that one request never holds
 * the loop for long. */
#include "listing.h"

#include <stdlib.h>
#include <string.h>

#include "move.h"
#include "reply.h"

#define LIST_SCAN_BUDGET 100000 /* deals one list page may look at */

void df_list_page_reset(df_list_page *l)
{
    memset(l, 0, sizeof(*l));
    l->filter.status = -1;
    l->filter.stale = -1;
}

static bool matches(const df_list_filter *f, const df_deal *deal, const df_deal_view *view)
{
    df_str pipeline = df_deal_pipeline(deal);
    if (f->pipeline.len &&
        (f->pipeline.len != pipeline.len || memcmp(f->pipeline.ptr, pipeline.ptr, pipeline.len)))
        return false;
    if (f->stage.len && (!deal->has_stage || !df_name_eq(&deal->stage, f->stage.ptr, f->stage.len)))
        return false;
    if (f->owner.len && (!deal->has_owner || !df_name_eq(&deal->owner, f->owner.ptr, f->owner.len)))
        return false;
    if (f->product.len && (!deal->has_product || deal->product.len != f->product.len ||
                           memcmp(deal->product.s, f->product.ptr, f->product.len) != 0))
        return false;
    if (f->source.len &&
        (!deal->has_source || !df_name_eq(&deal->source, f->source.ptr, f->source.len)))
        return false;
    if (f->status >= 0 && view->status != f->status)
        return false;
    if (f->stale >= 0 && view->stale != (f->stale == 1))
        return false;
    if (f->has_idle) {
        int64_t since = view->idle_since;
        int64_t idle;
        if (__builtin_sub_overflow(f->now, since, &idle))
            idle = f->now < since ? INT64_MIN : INT64_MAX;
        if (idle < (int64_t)f->idle_days * DF_DAY_MS)
            return false;
    }
    return true;
}

static int list_each(void *ctx, const char *id, size_t len)
{
    df_list_page *l = ctx;
    if (len == 0 || len > DF_MAX_ID)
        return 0;
    if (++l->examined > LIST_SCAN_BUDGET) {
        /* the page ends early, and the cursor goes on from the last deal seen */
        l->more = true;
        return 1;
    }
    df_deal_init(&l->deal, id, len);
    l->rc = df_store_deal_get(l->st, l->txn, &l->deal);
    if (l->rc == MDB_NOTFOUND) {
        /* a filter name holding a NUL byte can match the tail of another key */
        l->rc = 0;
        return 0;
    }
    if (l->rc != 0)
        return 1;
    df_deal_view_at(&l->deal, l->filter.now, l->pipelines, &l->view);
    if (!matches(&l->filter, &l->deal, &l->view))
        return 0;
    if (l->count == l->limit) {
        l->more = true;
        return 1;
    }
    size_t before = l->deals.size;
    df_pack_deal(&l->pk, &l->deal, &l->view);
    if (l->count > 0 && l->deals.size > l->bytes_max) {
        /* past the byte cap: the next page starts with this deal, as after
         * a page ended by limit */
        l->deals.size = before;
        l->more = true;
        return 1;
    }
    l->count++;
    return 0;
}

/* Remembers the deal a scan is at, for the cursor, then looks at it. */
static int list_at(void *ctx, const char *id, size_t len)
{
    df_list_page *l = ctx;
    int stop = list_each(ctx, id, len);
    if (!stop && len <= DF_MAX_ID) {
        memcpy(l->last, id, len);
        l->last_len = len;
    }
    return stop;
}

int df_list_scan(df_list_page *l, df_store *st, MDB_txn *txn, const df_pipelines *pl,
                 const char *after, size_t after_len)
{
    const df_list_filter *f = &l->filter;
    l->st = st;
    l->txn = txn;
    l->pipelines = pl;
    /* walk the narrowest index the filter allows; the rest is checked per deal */
    df_scan_kind kind = DF_SCAN_ALL;
    df_str a = {0}, b = {0};
    if (f->stage.len && f->pipeline.len) {
        kind = DF_SCAN_STAGE;
        a = f->pipeline;
        b = f->stage;
    } else if (f->owner.len) {
        kind = DF_SCAN_OWNER;
        a = f->owner;
    } else if (f->pipeline.len) {
        kind = DF_SCAN_PIPELINE;
        a = f->pipeline;
    }
    msgpack_sbuffer_init(&l->deals);
    msgpack_packer_init(&l->pk, &l->deals, msgpack_sbuffer_write);
    int rc = df_store_deal_scan(st, txn, kind, a, b, after, after_len, list_at, l);
    return rc ? rc : l->rc;
}

size_t df_cursor_encode(const char *id, size_t len, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[(uint8_t)id[i] >> 4];
        hex[2 * i + 1] = digits[(uint8_t)id[i] & 15];
    }
    return 2 * len;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool df_cursor_decode(df_str cursor, char *id, size_t *len)
{
    if (cursor.len == 0 || cursor.len % 2 || cursor.len / 2 > DF_MAX_ID)
        return false;
    for (uint32_t i = 0; i < cursor.len; i += 2) {
        int hi = hex_digit(cursor.ptr[i]), lo = hex_digit(cursor.ptr[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        id[i / 2] = (char)(hi << 4 | lo);
    }
    *len = cursor.len / 2;
    return true;
}

bool df_page_init(df_page *p, size_t limit, size_t bytes_max, size_t item_extra)
{
    p->count = 0;
    p->limit = limit;
    p->bytes = 0;
    p->bytes_max = bytes_max;
    p->item_extra = item_extra;
    p->events = malloc(limit * sizeof(*p->events));
    p->seqs = malloc(limit * sizeof(*p->seqs));
    if (!p->events || !p->seqs)
        df_page_free(p);
    return p->events != NULL;
}

void df_page_free(df_page *p)
{
    free(p->events);
    free(p->seqs);
    p->events = NULL;
    p->seqs = NULL;
}

/* Returns 1 when the page is full: the item was the last to fit, or does
 * not fit and is left for the next page. */
static int page_add(df_page *p, uint64_t seq, const MDB_val *event)
{
    size_t bytes = p->bytes + event->mv_size + p->item_extra;
    if (p->count > 0 && bytes > p->bytes_max)
        return 1;
    p->bytes = bytes;
    p->seqs[p->count] = seq;
    p->events[p->count++] = *event;
    return p->count >= p->limit;
}

/* A deal's event index holds seqs: each is looked up in the log. */
typedef struct deal_events {
    df_page *page;
    df_store *st;
    MDB_txn *txn;
    int rc;
} deal_events;

static int deal_event_each(void *ctx, uint64_t seq)
{
    deal_events *e = ctx;
    MDB_val event;
    e->rc = df_store_log_get(e->st, e->txn, seq, &event);
    if (e->rc != 0)
        return 1;
    return page_add(e->page, seq, &event);
}

int df_page_deal_events(df_page *p, df_store *st, MDB_txn *txn, const df_deal *deal, uint64_t after)
{
    deal_events e = {.page = p, .st = st, .txn = txn};
    int rc =
        df_store_deal_event_scan(st, txn, deal->deal.s, deal->deal.len, after, deal_event_each, &e);
    return rc ? rc : e.rc;
}

static int log_each(void *ctx, uint64_t seq, const MDB_val *event)
{
    return page_add(ctx, seq, event);
}

int df_page_log(df_page *p, df_store *st, MDB_txn *txn, uint64_t after)
{
    return df_store_log_scan(st, txn, after, p->limit, log_each, p);
}

int df_page_rejected(df_page *p, df_store *st, MDB_txn *txn, uint64_t after)
{
    return df_store_rejected_scan(st, txn, after, p->limit, log_each, p);
}

typedef struct moves_page {
    msgpack_sbuffer *out;
    msgpack_packer pk;
    size_t bytes_max;
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
    size_t before = p->out->size;
    df_move_pack(&p->pk, &m);
    if (p->count > 0 && p->out->size > p->bytes_max) {
        p->out->size = before; /* the next page starts with this move */
        return 1;
    }
    p->count++;
    return 0;
}

int df_pack_moves(msgpack_sbuffer *out, df_store *st, MDB_txn *txn, uint64_t after, size_t limit,
                  size_t bytes_max, size_t *count)
{
    moves_page p = {.out = out, .bytes_max = bytes_max};
    msgpack_sbuffer_init(out);
    msgpack_packer_init(&p.pk, out, msgpack_sbuffer_write);
    msgpack_zone_init(&p.zone, 1024);
    int rc = df_store_moves_scan(st, txn, after, limit, pack_stored_move, &p);
    msgpack_zone_destroy(&p.zone);
    *count = p.count;
    return rc ? rc : p.rc;
}
