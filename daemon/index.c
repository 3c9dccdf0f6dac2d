/* index.c: the list indexes, in one LMDB database. Keys are a tag, then
 * NUL-separated names, then the deal id; an idle entry has the time the deal
 * went idle (sortable) before the id, so that a stage's deals come in the
 * order they went idle. Values are empty. */
#include "index.h"

#include <string.h>

#include "store.h"

enum { TAG_PIPELINE = 'P', TAG_STAGE = 'S', TAG_OWNER = 'O', TAG_IDLE = 'I' };

/* Builds the prefix of a scan (tag, names) before the deal id. */
static void index_prefix(df_key *k, int tag, df_str a, df_str b)
{
    k->len = 0;
    k->b[k->len++] = (uint8_t)tag;
    if (tag == TAG_PIPELINE || tag == TAG_STAGE || tag == TAG_OWNER)
        df_key_add_name(k, a.ptr, a.len);
    if (tag == TAG_STAGE)
        df_key_add_name(k, b.ptr, b.len);
}

static df_str name_str(const df_name *n)
{
    return (df_str){n->s, n->len};
}

static void idle_entry(df_key *k, const df_deal *d)
{
    k->len = 0;
    k->b[k->len++] = TAG_IDLE;
    df_str pipeline = df_deal_pipeline(d);
    df_key_add_name(k, pipeline.ptr, pipeline.len);
    df_key_add_name(k, d->stage.s, d->stage.len);
    df_key_add_sortable(k, df_deal_idle_since(d));
    df_key_add(k, d->deal.s, d->deal.len);
}

/* The index entries a deal holds: pipeline, stage and idle entries for a
 * deal with a stage, an owner entry for a deal with an owner. */
static int index_entries(const df_deal *d, df_key out[4])
{
    int n = 0;
    index_prefix(&out[n], TAG_PIPELINE, df_deal_pipeline(d), (df_str){0});
    df_key_add(&out[n++], d->deal.s, d->deal.len);
    if (d->has_stage) {
        index_prefix(&out[n], TAG_STAGE, df_deal_pipeline(d), name_str(&d->stage));
        df_key_add(&out[n++], d->deal.s, d->deal.len);
        idle_entry(&out[n++], d);
    }
    if (d->has_owner) {
        index_prefix(&out[n], TAG_OWNER, name_str(&d->owner), (df_str){0});
        df_key_add(&out[n++], d->deal.s, d->deal.len);
    }
    return n;
}

static bool has_entry(const df_key *set, int n, const df_key *k)
{
    for (int i = 0; i < n; i++)
        if (set[i].len == k->len && memcmp(set[i].b, k->b, k->len) == 0)
            return true;
    return false;
}

int df_store_deal_reindex(df_store *st, MDB_txn *txn, const df_deal *before, const df_deal *after)
{
    df_key old_keys[4], new_keys[4];
    int n_old = before ? index_entries(before, old_keys) : 0;
    int n_new = index_entries(after, new_keys);
    MDB_dbi index = df_store_dbi(st, DF_DB_INDEX);
    int rc;
    for (int i = 0; i < n_old; i++) {
        if (has_entry(new_keys, n_new, &old_keys[i]))
            continue;
        MDB_val k = {old_keys[i].len, old_keys[i].b};
        if ((rc = mdb_del(txn, index, &k, NULL)) != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    for (int i = 0; i < n_new; i++) {
        if (has_entry(old_keys, n_old, &new_keys[i]))
            continue;
        MDB_val k = {new_keys[i].len, new_keys[i].b}, v = {0, NULL};
        if ((rc = mdb_put(txn, index, &k, &v, 0)) != 0)
            return rc;
    }
    return 0;
}

int df_store_deal_scan(df_store *st, MDB_txn *txn, df_scan_kind kind, df_str a, df_str b,
                       const char *after, size_t after_len, df_deal_id_each each, void *ctx)
{
    static const int tags[] = {0, TAG_PIPELINE, TAG_STAGE, TAG_OWNER};
    df_key prefix = {.len = 0}, start;
    MDB_dbi dbi =
        kind == DF_SCAN_ALL ? df_store_dbi(st, DF_DB_DEALS) : df_store_dbi(st, DF_DB_INDEX);
    MDB_cursor *cur;
    int rc;
    if (a.len > DF_MAX_NAME || b.len > DF_MAX_NAME || after_len > DF_MAX_ID)
        return 0; /* no stored name is that long */
    if (kind != DF_SCAN_ALL)
        index_prefix(&prefix, tags[kind], a, b);
    if (prefix.len + after_len + 1 > DF_KEY_MAX)
        return 0;
    df_key_copy(&start, &prefix);
    if (after) {
        df_key_add(&start, after, after_len);
        start.b[start.len++] = 0; /* the smallest key after `after` */
    }
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        return rc;
    MDB_val k = {start.len, start.b}, v;
    rc = start.len ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                   : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size < prefix.len || memcmp(k.mv_data, prefix.b, prefix.len) != 0)
            break;
        if (each(ctx, (const char *)k.mv_data + prefix.len, k.mv_size - prefix.len))
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int df_store_idle_scan(df_store *st, MDB_txn *txn, df_str pipeline, df_str stage, int64_t after,
                       int64_t until, df_idle_each each, void *ctx)
{
    df_key prefix, start;
    MDB_cursor *cur;
    int rc;
    if (pipeline.len > DF_MAX_NAME || stage.len > DF_MAX_NAME ||
        (after >= until && after != INT64_MIN))
        return 0;
    prefix.len = 0;
    prefix.b[prefix.len++] = TAG_IDLE;
    df_key_add_name(&prefix, pipeline.ptr, pipeline.len);
    df_key_add_name(&prefix, stage.ptr, stage.len);
    df_key_copy(&start, &prefix);
    /* after is excluded, except INT64_MIN: from the very start */
    df_key_add_sortable(&start, after == INT64_MIN ? INT64_MIN : after + 1);
    if ((rc = mdb_cursor_open(txn, df_store_dbi(st, DF_DB_INDEX), &cur)) != 0)
        return rc;
    MDB_val k = {start.len, start.b}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kb = k.mv_data;
        if (k.mv_size <= prefix.len + 8 || memcmp(kb, prefix.b, prefix.len) != 0)
            break;
        int64_t idle = df_get_sortable(kb + prefix.len);
        if (idle > until)
            break;
        if (each(ctx, (const char *)kb + prefix.len + 8, k.mv_size - prefix.len - 8, idle))
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int count_idle(void *ctx, const char *deal, size_t len, int64_t idle_since)
{
    (void)deal;
    (void)len;
    (void)idle_since;
    ++*(uint64_t *)ctx;
    return 0;
}

int df_store_idle_count(df_store *st, MDB_txn *txn, df_str pipeline, df_str stage,
                        int64_t idle_from, int64_t idle_before, uint64_t *count)
{
    *count = 0;
    if (idle_from == INT64_MIN)
        return df_store_idle_scan(st, txn, pipeline, stage, INT64_MIN, idle_before, count_idle,
                                  count);
    return df_store_idle_scan(st, txn, pipeline, stage, idle_from - 1, idle_before, count_idle,
                              count);
}
