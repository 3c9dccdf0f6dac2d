/* iter.c: iterators over the api's paged replies: `list` by cursor, `history`,
 * `replay` and `rejected` by after + limit. */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "internal.h"
#include "request.h"

typedef enum iter_kind { ITER_LIST, ITER_HISTORY, ITER_REPLAY, ITER_REJECTED } iter_kind;

struct df_iter {
    df_client *client;
    iter_kind kind;
    char *filters; /* list: the caller's filter map, checked */
    size_t filters_len;
    char *deal; /* history */
    uint64_t after;
    uint64_t last_seq; /* replay: the log's end when the page was read */
    char *cursor;      /* list: where the next page starts; NULL before the first */
    uint32_t cursor_len;
    uint32_t page_size;
    df_bytes page;
    const char *item; /* the next item in page */
    size_t rest;      /* bytes of page from item on */
    uint32_t left;    /* items of page not yet given */
    uint32_t page_count;
    bool started;
    bool at_end; /* no page after the current one */
};

static int iter_new(df_client *c, iter_kind kind, df_iter **out, df_error *err)
{
    if (out == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "an iterator needs somewhere to go");
    *out = NULL;
    if (c == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "an iterator needs a client");
    df_iter *it = calloc(1, sizeof *it);
    if (it == NULL)
        return df_fail(err, DF_EINTERNAL, "out of memory");
    it->client = c;
    it->kind = kind;
    it->page_size = DF__PAGE_DEFAULT;
    *out = it;
    return 0;
}

int df_list_open(df_client *c, const void *filters, size_t len, df_iter **out, df_error *err)
{
    static const char *const none[] = {NULL};
    df_error check;
    if (filters != NULL && (df_msgpack_check(filters, len, &check) != 0 ||
                            df__copy_map_entries(filters, len, none, NULL) < 0))
        return df_fail(err, DF_EBAD_REQUEST, "the list filters must be a msgpack map");
    int rc = iter_new(c, ITER_LIST, out, err);
    if (rc != 0 || filters == NULL)
        return rc;
    (*out)->filters = malloc(len);
    if ((*out)->filters == NULL) {
        df_iter_free(*out);
        *out = NULL;
        return df_fail(err, DF_EINTERNAL, "out of memory");
    }
    memcpy((*out)->filters, filters, len);
    (*out)->filters_len = len;
    return 0;
}

/* df_list_open with the filters built, which it frees. */
static int open_with(df_client *c, df__request *filters, df_iter **out, df_error *err)
{
    const char *map;
    size_t len;
    int rc;
    if (df__request_finish(filters, &map, &len)) {
        rc = df_list_open(c, map, len, out, err);
    } else {
        if (out != NULL)
            *out = NULL;
        rc = df_fail(err, DF_EINTERNAL, "out of memory for the list filters");
    }
    df__request_free(filters);
    return rc;
}

int df_list_open_filters(df_client *c, const df_list_filters *f, df_iter **out, df_error *err)
{
    static const df_list_filters every_deal;
    if (f == NULL)
        f = &every_deal;
    df__request filters;
    df__request_begin(&filters, NULL);
    df__request_str(&filters, "pipeline", f->pipeline);
    df__request_str(&filters, "stage", f->stage);
    df__request_str(&filters, "owner", f->owner);
    df__request_str(&filters, "status", f->status);
    if (f->stale)
        df__request_bool(&filters, "stale", true);
    if (f->idle_days != NULL)
        df__request_uint(&filters, "idle_days", *f->idle_days);
    df__request_time(&filters, "now", f->now);
    return open_with(c, &filters, out, err);
}

int df_list_open_query(df_client *c, const df_list_query *q, df_iter **out, df_error *err)
{
    static const df_list_query every_deal = {.size = sizeof every_deal};
    if (q == NULL)
        q = &every_deal;
    if (!DF__HAS_FIELD(q, df_list_query, pipeline)) {
        if (out != NULL)
            *out = NULL;
        return df_fail(err, DF_EBAD_REQUEST,
                       "df_list_open_query: q->size is not sizeof(df_list_query)");
    }
    df__request filters;
    df__request_begin(&filters, NULL);
    df__request_str(&filters, "pipeline", q->pipeline);
    df__request_str(&filters, "stage", DF__FIELD(q, df_list_query, stage, NULL));
    df__request_str(&filters, "owner", DF__FIELD(q, df_list_query, owner, NULL));
    df__request_str(&filters, "product", DF__FIELD(q, df_list_query, product, NULL));
    df__request_str(&filters, "source", DF__FIELD(q, df_list_query, source, NULL));
    df__request_str(&filters, "status", DF__FIELD(q, df_list_query, status, NULL));
    if (DF__FIELD(q, df_list_query, stale, false))
        df__request_bool(&filters, "stale", true);
    const uint64_t *idle_days = DF__FIELD(q, df_list_query, idle_days, NULL);
    if (idle_days != NULL)
        df__request_uint(&filters, "idle_days", *idle_days);
    df__request_time(&filters, "now", DF__FIELD(q, df_list_query, now, NULL));
    return open_with(c, &filters, out, err);
}

int df_history_open(df_client *c, const char *deal, uint64_t after, df_iter **out, df_error *err)
{
    if (deal == NULL || deal[0] == '\0' || strlen(deal) > DF_MAX_ID)
        return df_fail(err, DF_EBAD_REQUEST, "a deal id is 1..%d bytes", DF_MAX_ID);
    int rc = iter_new(c, ITER_HISTORY, out, err);
    if (rc != 0)
        return rc;
    size_t len = strlen(deal);
    (*out)->deal = malloc(len + 1);
    if ((*out)->deal == NULL) {
        df_iter_free(*out);
        *out = NULL;
        return df_fail(err, DF_EINTERNAL, "out of memory");
    }
    memcpy((*out)->deal, deal, len + 1);
    (*out)->after = after;
    return 0;
}

int df_replay_open(df_client *c, uint64_t after, df_iter **out, df_error *err)
{
    int rc = iter_new(c, ITER_REPLAY, out, err);
    if (rc == 0)
        (*out)->after = after;
    return rc;
}

int df_rejected_open(df_client *c, uint64_t after, df_iter **out, df_error *err)
{
    int rc = iter_new(c, ITER_REJECTED, out, err);
    if (rc == 0)
        (*out)->after = after;
    return rc;
}

int df_iter_set_page_size(df_iter *it, uint32_t n, df_error *err)
{
    if (it == NULL || n == 0 || n > DF__PAGE_MAX)
        return df_fail(err, DF_EBAD_REQUEST, "a page holds 1..%u items", DF__PAGE_MAX);
    it->page_size = n;
    return 0;
}

/* The request for the page after it->after (or it->cursor). */
static void build_request(const df_iter *it, df__request *r)
{
    static const char *const reserved[] = {"op", "limit", "cursor", NULL};
    switch (it->kind) {
    case ITER_LIST:
        /* the filters first, as the caller gave them (checked as a map when
         * the iterator was opened) */
        df__request_begin(r, NULL);
        if (it->filters != NULL)
            df__request_entries(r, it->filters, it->filters_len, reserved);
        df__request_str(r, "op", "list");
        if (it->cursor != NULL)
            df__request_strn(r, "cursor", it->cursor, it->cursor_len);
        break;
    case ITER_HISTORY:
        df__request_begin(r, "history");
        df__request_str(r, "deal", it->deal);
        df__request_uint(r, "after", it->after);
        break;
    case ITER_REPLAY:
    case ITER_REJECTED:
        df__request_begin(r, it->kind == ITER_REPLAY ? "replay" : "rejected");
        df__request_uint(r, "after", it->after);
        break;
    }
    df__request_uint(r, "limit", it->page_size);
}

/* list: keeps the reply's cursor for the next page, or marks the end. */
static int take_cursor(df_iter *it, df_error *err)
{
    const char *value, *str;
    size_t value_len;
    uint32_t str_len;
    if (!df_msgpack_map_find(it->page.data, it->page.len, "cursor", &value, &value_len) ||
        df_msgpack_is_nil(value, value_len)) {
        it->at_end = true;
        return 0;
    }
    if (!df_msgpack_read_str(value, value_len, &str, &str_len))
        return df_fail(err, DF_EINTERNAL, "the daemon's list cursor is not a str");
    char *copy = malloc(str_len + 1u);
    if (copy == NULL)
        return df_fail(err, DF_EINTERNAL, "out of memory");
    memcpy(copy, str, str_len);
    free(it->cursor);
    it->cursor = copy;
    it->cursor_len = str_len;
    return 0;
}

static int fetch_page(df_iter *it, df_error *err)
{
    df__request r;
    build_request(it, &r);
    int rc = df__request_fetch(it->client, &r, &it->page, err);
    if (rc != 0)
        return rc;
    it->started = true;
    const char *key = it->kind == ITER_LIST       ? "deals"
                      : it->kind == ITER_REJECTED ? "items"
                                                  : "events";
    if (!df_msgpack_map_array(it->page.data, it->page.len, key, &it->item, &it->rest, &it->left)) {
        it->left = 0;
        return df_fail(err, DF_EINTERNAL, "the daemon's reply has no `%s` array", key);
    }
    it->page_count = it->left;
    switch (it->kind) {
    case ITER_LIST:
        return take_cursor(it, err);
    case ITER_REPLAY:
        if (!df_msgpack_map_uint(it->page.data, it->page.len, "last_seq", &it->last_seq))
            return df_fail(err, DF_EINTERNAL, "the daemon's replay reply has no `last_seq`");
        /* fall through */
    case ITER_HISTORY:
    case ITER_REJECTED:
        /* the daemon also ends a page at its byte cap: only an empty page
         * says that nothing follows */
        if (it->page_count == 0)
            it->at_end = true;
        break;
    }
    return 0;
}

int df_iter_next(df_iter *it, const char **item, size_t *len, df_error *err)
{
    if (it == NULL || item == NULL || len == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "df_iter_next needs an iterator, item and len");
    while (it->left == 0) {
        if (it->started && (it->at_end || (it->kind == ITER_REPLAY && it->after >= it->last_seq)))
            return 0;
        int rc = fetch_page(it, err);
        if (rc != 0)
            return rc;
    }
    size_t item_len = df_msgpack_skip(it->item, it->rest);
    if (item_len == 0)
        return df_fail(err, DF_EINTERNAL, "the daemon's reply ends inside an item");
    if (it->kind != ITER_LIST) {
        /* the position the next page starts after: a seq, or a rejected item's id */
        const char *key = it->kind == ITER_REJECTED ? "id" : "seq";
        uint64_t position;
        if (!df_msgpack_map_uint(it->item, item_len, key, &position) || position <= it->after)
            return df_fail(err, DF_EINTERNAL, "an item in the daemon's reply has no new `%s`", key);
        it->after = position;
    }
    *item = it->item;
    *len = item_len;
    it->item += item_len;
    it->rest -= item_len;
    it->left--;
    return 1;
}

void df_iter_free(df_iter *it)
{
    if (it == NULL)
        return;
    df_bytes_free(&it->page);
    free(it->filters);
    free(it->deal);
    free(it->cursor);
    free(it);
}
