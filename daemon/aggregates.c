/* aggregates.c: the aggregate rows in their LMDB database. A value is the
 * row's sums packed (record.h), followed for a V row by its names; which key
 * a row is stored under is metrics.c's to say. */
#include "aggregates.h"

#include <string.h>

#include "log.h"
#include "record.h"
#include "store.h"

typedef struct row_writer {
    MDB_txn *txn;
    MDB_dbi aggs;
    /* the table was empty when the flush began (a rebuild): a row is
     * appended through this cursor when its key comes after every key
     * written so far, else merged by lookup as usual */
    MDB_cursor *appending;
} row_writer;

/* Appends a new row of sums after every row of the table, as put_row
 * writes it; MDB_KEYEXIST when its key does not come after them. */
static int append_row(const row_writer *w, MDB_val *k, const df_sums *sums)
{
    if (!w->appending)
        return MDB_KEYEXIST;
    uint8_t packed[DF_SUMS_PACKED_MAX];
    MDB_val v = {df_sums_pack(sums, packed), packed};
    return mdb_cursor_put(w->appending, k, &v, MDB_APPEND);
}

/* Writes sums (and names, for a V row) under k, or deletes the row when
 * they are 0 and it exists. */
static int put_row(const row_writer *w, MDB_val *k, const df_sums *sums, const uint8_t *names,
                   size_t names_len, bool exists)
{
    if (!names && df_sums_zero(sums))
        return exists ? mdb_del(w->txn, w->aggs, k, NULL) : 0;
    uint8_t packed[DF_SUMS_PACKED_MAX];
    size_t n = df_sums_pack(sums, packed);
    MDB_val v = {n + names_len, NULL};
    int rc = mdb_put(w->txn, w->aggs, k, &v, MDB_RESERVE);
    if (rc == 0) {
        memcpy(v.mv_data, packed, n);
        if (names_len)
            memcpy((uint8_t *)v.mv_data + n, names, names_len);
    }
    return rc;
}

static int apply_visited_set(const row_writer *w, const uint8_t *key, size_t len, df_agg_slot *slot,
                             const df_sums *delta)
{
    for (int probe = 0; probe < DF_AGG_PROBES; probe++) {
        if (probe > 0 && !df_agg_slot_at(slot, key, len, probe))
            break;
        MDB_val k = {slot->len, slot->key}, v;
        int rc = mdb_get(w->txn, w->aggs, &k, &v);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
        df_sums sums = {0};
        if (rc == 0) {
            size_t n = df_sums_unpack(v.mv_data, v.mv_size, &sums);
            if (n == 0 || v.mv_size - n != slot->names_len ||
                memcmp((const uint8_t *)v.mv_data + n, slot->names, slot->names_len) != 0)
                continue; /* another set with the same hash */
        }
        df_sums_add(&sums, delta, 1);
        return put_row(w, &k, &sums, slot->names, slot->names_len, rc == 0);
    }
    df_log("aggregates: %d stage sets share one hash; conversion figures leave one out",
           DF_AGG_PROBES);
    return 0;
}

static int apply_row(void *ctx, const uint8_t *key, size_t len, const df_sums *delta)
{
    const row_writer *w = ctx;
    df_agg_slot slot;
    if (!df_agg_slot_at(&slot, key, len, 0))
        return MDB_BAD_VALSIZE; /* a programmer error: keys are built by metrics.c */
    if (slot.names)
        return apply_visited_set(w, key, len, &slot, delta);
    MDB_val k = {slot.len, slot.key}, v;
    df_sums sums = {0};
    df_sums_add(&sums, delta, 1);
    if (!df_sums_zero(&sums)) {
        int rc = append_row(w, &k, &sums);
        if (rc != MDB_KEYEXIST)
            return rc;
    }
    memset(&sums, 0, sizeof sums);
    int rc = mdb_get(w->txn, w->aggs, &k, &v);
    if (rc == 0 && df_sums_unpack(v.mv_data, v.mv_size, &sums) != v.mv_size)
        memset(&sums, 0, sizeof sums); /* damaged: the row starts again */
    else if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    df_sums_add(&sums, delta, 1);
    return put_row(w, &k, &sums, NULL, 0, rc == 0);
}

int df_store_aggs_apply(df_store *st, MDB_txn *txn, df_agg_deltas *d)
{
    row_writer w = {txn, df_store_dbi(st, DF_DB_AGGS), NULL};
    MDB_stat stat;
    int rc = mdb_stat(txn, w.aggs, &stat);
    if (rc == 0 && stat.ms_entries == 0)
        rc = mdb_cursor_open(txn, w.aggs, &w.appending);
    if (rc == 0)
        rc = df_agg_deltas_each(d, apply_row, &w);
    if (w.appending)
        mdb_cursor_close(w.appending);
    if (rc == 0)
        df_agg_deltas_clear(d);
    return rc;
}

/* Calls each for the rows in [lo, hi) (hi NULL: every row that starts with
 * lo), V rows with their names in the key. */
static int aggs_walk(df_store *st, MDB_txn *txn, const uint8_t *lo, size_t lo_len,
                     const uint8_t *hi, size_t hi_len, df_agg_each each, void *ctx)
{
    MDB_cursor *cur;
    uint8_t logical[DF_AGG_LOGICAL_KEY_MAX];
    int rc;
    if (lo_len > DF_AGG_KEY_MAX)
        return 0;
    if ((rc = mdb_cursor_open(txn, df_store_dbi(st, DF_DB_AGGS), &cur)) != 0)
        return rc;
    MDB_val k = {lo_len, (void *)lo}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *key = k.mv_data;
        if (hi) {
            size_t n = k.mv_size < hi_len ? k.mv_size : hi_len;
            int c = memcmp(key, hi, n);
            if (c > 0 || (c == 0 && k.mv_size >= hi_len))
                break;
        } else if (k.mv_size < lo_len || memcmp(key, lo, lo_len) != 0) {
            break;
        }
        df_sums sums;
        size_t n = df_sums_unpack(v.mv_data, v.mv_size, &sums);
        if (n == 0)
            continue; /* damaged: LMDB has no checksums */
        size_t row_len;
        const uint8_t *row = df_agg_row_key(key, k.mv_size, &sums, (const uint8_t *)v.mv_data + n,
                                            v.mv_size - n, logical, &row_len);
        if (row && each(ctx, row, row_len, &sums))
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int df_store_aggs_scan(df_store *st, MDB_txn *txn, const uint8_t *prefix, size_t len,
                       df_agg_each each, void *ctx)
{
    return aggs_walk(st, txn, prefix, len, NULL, 0, each, ctx);
}

int df_store_aggs_range(df_store *st, MDB_txn *txn, const uint8_t *lo, size_t lo_len,
                        const uint8_t *hi, size_t hi_len, df_agg_each each, void *ctx)
{
    return aggs_walk(st, txn, lo, lo_len, hi, hi_len, each, ctx);
}
