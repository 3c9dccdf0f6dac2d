/* store.c: the LMDB layout: one environment, one named database per kind of
 * record. Integers in keys are big-endian so that LMDB's byte order is
 * numeric order; the log is appended with MDB_APPEND. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "table.h"

struct df_store {
    MDB_env *env;
    MDB_dbi log, ids, deal_events, deals, index, aggs, meta, pipelines, rejected, moves;
    MDB_txn *read_txn;
    int lock_fd;
    char path[4096];
};

/* Keys of the list index: a tag, then NUL-separated names, then the deal id. */
enum { TAG_PIPELINE = 'P', TAG_STAGE = 'S', TAG_OWNER = 'O', TAG_IDLE = 'I' };
#define KEY_MAX 512

static int open_dbi(MDB_txn *txn, const char *name, MDB_dbi *dbi)
{
    return mdb_dbi_open(txn, name, MDB_CREATE, dbi);
}

/* Derived state (projections, indexes, aggregates) laid out by an older
 * dealflowd is dropped, and the log is folded again from its start. */
static int rebuild_if_old(df_store *st, MDB_txn *txn)
{
    uint64_t derived = 0, last_seq;
    int rc = df_store_meta_get(st, txn, "derived_format", &derived);
    if (rc != 0 || derived == DF_DERIVED_FORMAT)
        return rc;
    last_seq = df_store_log_last(st, txn);
    if (last_seq > 0)
        df_log("the store's projections and aggregates are from an older dealflowd: rebuilding "
               "them from the log (%llu events)",
               (unsigned long long)last_seq);
    if ((rc = mdb_drop(txn, st->deals, 0)) != 0 || (rc = mdb_drop(txn, st->index, 0)) != 0 ||
        (rc = mdb_drop(txn, st->aggs, 0)) != 0 ||
        (rc = df_store_meta_put(st, txn, "derived_seq", 0)) != 0)
        return rc;
    return df_store_meta_put(st, txn, "derived_format", DF_DERIVED_FORMAT);
}

int df_store_open(df_store **out, const char *dir, size_t map_mib, df_error *err)
{
    df_store *st = calloc(1, sizeof(*st));
    MDB_txn *txn = NULL;
    int rc;
    if (!st)
        return df_fail(err, DF_EINTERNAL, "out of memory");
    st->lock_fd = -1;
    snprintf(st->path, sizeof(st->path), "%s", dir);
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        df_fail(err, DF_EUNAVAILABLE, "cannot create data directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    char lock_path[4200];
    snprintf(lock_path, sizeof(lock_path), "%s/dealflowd.lock", dir);
    st->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (st->lock_fd < 0) {
        df_fail(err, DF_EUNAVAILABLE, "data directory %s is not writable: %s", dir,
                strerror(errno));
        goto fail;
    }
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "data directory %s is in use by another dealflowd", dir);
        goto fail;
    }
    if ((rc = mdb_env_create(&st->env)) != 0 ||
        (rc = mdb_env_set_mapsize(st->env, map_mib << 20)) != 0 ||
        (rc = mdb_env_set_maxdbs(st->env, 16)) != 0 ||
        (rc = mdb_env_set_maxreaders(st->env, 126)) != 0 ||
        (rc = mdb_env_open(st->env, dir, MDB_NOTLS | MDB_NORDAHEAD | MDB_WRITEMAP, 0640)) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "cannot open the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0 ||
        (rc = open_dbi(txn, "log", &st->log)) != 0 || (rc = open_dbi(txn, "ids", &st->ids)) != 0 ||
        (rc = open_dbi(txn, "deal_events", &st->deal_events)) != 0 ||
        (rc = open_dbi(txn, "deals", &st->deals)) != 0 ||
        (rc = open_dbi(txn, "index", &st->index)) != 0 ||
        (rc = open_dbi(txn, "aggs", &st->aggs)) != 0 ||
        (rc = open_dbi(txn, "meta", &st->meta)) != 0 ||
        (rc = open_dbi(txn, "pipelines", &st->pipelines)) != 0 ||
        (rc = open_dbi(txn, "rejected", &st->rejected)) != 0 ||
        (rc = open_dbi(txn, "moves", &st->moves)) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "cannot open the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    uint64_t format = 0;
    if ((rc = df_store_meta_get(st, txn, "format", &format)) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "cannot read the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    if (format > DF_STORE_FORMAT) {
        df_fail(err, DF_EUNAVAILABLE,
                "data directory %s has format %llu, newer than this dealflowd (%d): upgrade "
                "dealflowd",
                dir, (unsigned long long)format, DF_STORE_FORMAT);
        goto fail;
    }
    if (format == 0 && (rc = df_store_meta_put(st, txn, "format", DF_STORE_FORMAT)) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "cannot write the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    if ((rc = rebuild_if_old(st, txn)) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "cannot write the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        df_fail(err, DF_EUNAVAILABLE, "cannot write the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    df_store_check_readers(st);
    *out = st;
    return 0;
fail:
    if (txn)
        mdb_txn_abort(txn);
    df_store_close(st);
    return err ? err->code : DF_EUNAVAILABLE;
}

void df_store_close(df_store *st)
{
    if (!st)
        return;
    if (st->read_txn)
        mdb_txn_abort(st->read_txn);
    if (st->env)
        mdb_env_close(st->env);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st);
}

void df_store_check_readers(df_store *st)
{
    int dead = 0;
    mdb_reader_check(st->env, &dead);
}

uint64_t df_store_disk_bytes(df_store *st)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/data.mdb", st->path);
    if (stat(path, &sb) != 0)
        return 0;
    return (uint64_t)sb.st_blocks * 512;
}

int df_store_write_begin(df_store *st, MDB_txn **txn)
{
    return mdb_txn_begin(st->env, NULL, 0, txn);
}

int df_store_read_begin(df_store *st, MDB_txn **txn)
{
    int rc;
    if (st->read_txn) {
        rc = mdb_txn_renew(st->read_txn);
    } else {
        rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->read_txn);
    }
    *txn = rc == 0 ? st->read_txn : NULL;
    return rc;
}

void df_store_read_end(df_store *st, MDB_txn *txn)
{
    (void)st;
    if (txn)
        mdb_txn_reset(txn);
}

int df_store_meta_get(df_store *st, MDB_txn *txn, const char *key, uint64_t *value)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(txn, st->meta, &k, &v);
    *value = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0 && v.mv_size == 8)
        memcpy(value, v.mv_data, 8);
    return rc;
}

int df_store_meta_put(df_store *st, MDB_txn *txn, const char *key, uint64_t value)
{
    MDB_val k = {strlen(key), (void *)key}, v = {8, &value};
    return mdb_put(txn, st->meta, &k, &v, 0);
}

/* ---- the log and the rejected items: both keyed by a big-endian counter ---- */

static int counter_put(MDB_txn *txn, MDB_dbi dbi, uint64_t n, const void *data, size_t len)
{
    uint8_t key[8];
    df_put_be64(key, n);
    MDB_val k = {8, key}, v = {len, (void *)data};
    return mdb_put(txn, dbi, &k, &v, MDB_APPEND);
}

static uint64_t counter_last(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t last = 0;
    if (mdb_cursor_open(txn, dbi, &cur) != 0)
        return 0;
    if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
        last = df_get_be64(k.mv_data);
    mdb_cursor_close(cur);
    return last;
}

static int counter_scan(MDB_txn *txn, MDB_dbi dbi, uint64_t after, size_t limit, df_log_each each,
                        void *ctx)
{
    MDB_cursor *cur;
    uint8_t start[8];
    size_t seen = 0;
    int rc;
    if (after == UINT64_MAX)
        return 0;
    df_put_be64(start, after + 1);
    MDB_val k = {8, start}, v;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && seen < limit) {
        if (k.mv_size != 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        seen++;
        if (each(ctx, df_get_be64(k.mv_data), &v))
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int df_store_log_put(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len)
{
    return counter_put(txn, st->log, seq, data, len);
}

int df_store_log_get(df_store *st, MDB_txn *txn, uint64_t seq, MDB_val *out)
{
    uint8_t key[8];
    df_put_be64(key, seq);
    MDB_val k = {8, key};
    return mdb_get(txn, st->log, &k, out);
}

uint64_t df_store_log_last(df_store *st, MDB_txn *txn)
{
    return counter_last(txn, st->log);
}

int df_store_log_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit, df_log_each each,
                      void *ctx)
{
    return counter_scan(txn, st->log, after, limit, each, ctx);
}

int df_store_rejected_put(df_store *st, MDB_txn *txn, uint64_t id, const void *data, size_t len)
{
    return counter_put(txn, st->rejected, id, data, len);
}

uint64_t df_store_rejected_last(df_store *st, MDB_txn *txn)
{
    return counter_last(txn, st->rejected);
}

int df_store_rejected_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit,
                           df_log_each each, void *ctx)
{
    return counter_scan(txn, st->rejected, after, limit, each, ctx);
}

int df_store_move_put(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len)
{
    return counter_put(txn, st->moves, seq, data, len);
}

uint64_t df_store_moves_last(df_store *st, MDB_txn *txn)
{
    return counter_last(txn, st->moves);
}

int df_store_moves_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit, df_log_each each,
                        void *ctx)
{
    return counter_scan(txn, st->moves, after, limit, each, ctx);
}

/* ---- ids ---- */

int df_store_id_get(df_store *st, MDB_txn *txn, const char *id, size_t len, uint64_t *seq)
{
    MDB_val k = {len, (void *)id}, v;
    int rc = mdb_get(txn, st->ids, &k, &v);
    if (rc == 0) {
        if (v.mv_size != 8)
            return MDB_CORRUPTED;
        memcpy(seq, v.mv_data, 8);
    }
    return rc;
}

int df_store_id_put(df_store *st, MDB_txn *txn, const char *id, size_t len, uint64_t seq)
{
    MDB_val k = {len, (void *)id}, v = {8, &seq};
    return mdb_put(txn, st->ids, &k, &v, MDB_NOOVERWRITE);
}

/* ---- each deal's events: key = length byte, deal id, big-endian seq ---- */

static size_t deal_event_key(uint8_t *key, const char *deal, size_t len, uint64_t seq)
{
    key[0] = (uint8_t)len;
    memcpy(key + 1, deal, len);
    df_put_be64(key + 1 + len, seq);
    return len + 9;
}

int df_store_deal_event_put(df_store *st, MDB_txn *txn, const char *deal, size_t len, uint64_t seq)
{
    uint8_t key[KEY_MAX];
    MDB_val k = {deal_event_key(key, deal, len, seq), key}, v = {0, NULL};
    return mdb_put(txn, st->deal_events, &k, &v, MDB_NOOVERWRITE);
}

int df_store_deal_event_scan(df_store *st, MDB_txn *txn, const char *deal, size_t len,
                             uint64_t after, df_seq_each each, void *ctx)
{
    uint8_t key[KEY_MAX];
    MDB_cursor *cur;
    int rc;
    if (after == UINT64_MAX)
        return 0;
    MDB_val k = {deal_event_key(key, deal, len, after + 1), key}, v;
    if ((rc = mdb_cursor_open(txn, st->deal_events, &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        const uint8_t *kb = k.mv_data;
        if (k.mv_size != len + 9 || kb[0] != len || memcmp(kb + 1, deal, len) != 0)
            break;
        if (each(ctx, df_get_be64(kb + 1 + len)))
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- deals ---- */

int df_store_deal_get(df_store *st, MDB_txn *txn, df_deal *d)
{
    MDB_val k = {d->deal.len, d->deal.s}, v;
    int rc = mdb_get(txn, st->deals, &k, &v);
    if (rc != 0)
        return rc;
    return df_deal_decode(v.mv_data, v.mv_size, d) == 0 ? 0 : MDB_CORRUPTED;
}

int df_store_deal_put(df_store *st, MDB_txn *txn, const df_deal *d)
{
    uint8_t buf[DF_DEAL_RECORD_MAX];
    MDB_val k = {d->deal.len, (void *)d->deal.s}, v = {df_deal_encode(d, buf), buf};
    return mdb_put(txn, st->deals, &k, &v, 0);
}

uint64_t df_store_deal_count(df_store *st, MDB_txn *txn)
{
    MDB_stat s;
    if (mdb_stat(txn, st->deals, &s) != 0)
        return 0;
    return s.ms_entries;
}

/* ---- list indexes and stage aggregates ---- */

typedef struct key_buf {
    uint8_t b[KEY_MAX];
    size_t len;
} key_buf;

static void key_add(key_buf *k, const void *p, size_t len)
{
    memcpy(k->b + k->len, p, len);
    k->len += len;
}

static void key_add_name(key_buf *k, df_str s)
{
    key_add(k, s.ptr, s.len);
    k->b[k->len++] = 0;
}

/* Builds the prefix of a scan (tag, names) before the deal id. */
static void index_prefix(key_buf *k, int tag, df_str a, df_str b)
{
    k->len = 0;
    k->b[k->len++] = (uint8_t)tag;
    if (tag == TAG_PIPELINE || tag == TAG_STAGE || tag == TAG_OWNER)
        key_add_name(k, a);
    if (tag == TAG_STAGE)
        key_add_name(k, b);
}

static df_str name_str(const df_name *n)
{
    return (df_str){n->s, n->len};
}

static uint64_t idle_key(int64_t t)
{
    return (uint64_t)t ^ (1ULL << 63);
}

static void idle_entry(key_buf *k, const df_deal *d)
{
    k->len = 0;
    k->b[k->len++] = TAG_IDLE;
    key_add_name(k, df_deal_pipeline(d));
    key_add_name(k, name_str(&d->stage));
    uint8_t t[8];
    df_put_sortable(t, df_deal_idle_since(d));
    key_add(k, t, 8);
    key_add(k, d->deal.s, d->deal.len);
}

/* The index entries a deal holds: pipeline, stage and idle entries for a
 * deal with a stage, an owner entry for a deal with an owner. */
static int index_entries(const df_deal *d, key_buf out[4])
{
    int n = 0;
    index_prefix(&out[n], TAG_PIPELINE, df_deal_pipeline(d), (df_str){0});
    key_add(&out[n++], d->deal.s, d->deal.len);
    if (d->has_stage) {
        index_prefix(&out[n], TAG_STAGE, df_deal_pipeline(d), name_str(&d->stage));
        key_add(&out[n++], d->deal.s, d->deal.len);
        idle_entry(&out[n++], d);
    }
    if (d->has_owner) {
        index_prefix(&out[n], TAG_OWNER, name_str(&d->owner), (df_str){0});
        key_add(&out[n++], d->deal.s, d->deal.len);
    }
    return n;
}

static bool has_entry(const key_buf *set, int n, const key_buf *k)
{
    for (int i = 0; i < n; i++)
        if (set[i].len == k->len && memcmp(set[i].b, k->b, k->len) == 0)
            return true;
    return false;
}

int df_store_deal_reindex(df_store *st, MDB_txn *txn, const df_deal *before, const df_deal *after)
{
    key_buf old_keys[4], new_keys[4];
    int n_old = before ? index_entries(before, old_keys) : 0;
    int n_new = index_entries(after, new_keys);
    int rc;
    for (int i = 0; i < n_old; i++) {
        if (has_entry(new_keys, n_new, &old_keys[i]))
            continue;
        MDB_val k = {old_keys[i].len, old_keys[i].b};
        if ((rc = mdb_del(txn, st->index, &k, NULL)) != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    for (int i = 0; i < n_new; i++) {
        if (has_entry(old_keys, n_old, &new_keys[i]))
            continue;
        MDB_val k = {new_keys[i].len, new_keys[i].b}, v = {0, NULL};
        if ((rc = mdb_put(txn, st->index, &k, &v, 0)) != 0)
            return rc;
    }
    return 0;
}

int df_store_deal_scan(df_store *st, MDB_txn *txn, df_scan_kind kind, df_str a, df_str b,
                       const char *after, size_t after_len, df_deal_id_each each, void *ctx)
{
    static const int tags[] = {0, TAG_PIPELINE, TAG_STAGE, TAG_OWNER};
    key_buf prefix = {.len = 0}, start;
    MDB_dbi dbi = kind == DF_SCAN_ALL ? st->deals : st->index;
    MDB_cursor *cur;
    int rc;
    if (a.len > DF_MAX_NAME || b.len > DF_MAX_NAME || after_len > DF_MAX_ID)
        return 0; /* no stored name is that long */
    if (kind != DF_SCAN_ALL)
        index_prefix(&prefix, tags[kind], a, b);
    if (prefix.len + after_len + 1 > KEY_MAX)
        return 0;
    start = prefix;
    if (after) {
        key_add(&start, after, after_len);
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
    key_buf prefix, start;
    MDB_cursor *cur;
    int rc;
    if (pipeline.len > DF_MAX_NAME || stage.len > DF_MAX_NAME ||
        (after >= until && after != INT64_MIN))
        return 0;
    prefix.len = 0;
    prefix.b[prefix.len++] = TAG_IDLE;
    key_add_name(&prefix, pipeline);
    key_add_name(&prefix, stage);
    start = prefix;
    /* after is excluded, except INT64_MIN: from the very start */
    df_put_be64(start.b + start.len, after == INT64_MIN ? 0 : idle_key(after) + 1);
    start.len += 8;
    if ((rc = mdb_cursor_open(txn, st->index, &cur)) != 0)
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

/* ---- pipeline aggregates ---- */

/* The rows one deal's old state takes away, gathered so that those its new
 * state adds back unchanged cancel out before they reach the table (most
 * rows of a changed deal are unchanged). */
#define GATHER_ROWS  512
#define GATHER_BYTES (4 * DF_AGG_LOGICAL_KEY_MAX + 64 * 1024)

typedef struct gathered_row {
    uint32_t offset, len;
    df_sums sums;
    bool cancelled;
} gathered_row;

struct df_agg_deltas {
    df_table *rows; /* logical key -> df_sums */
    gathered_row *taken;
    size_t ntaken;
    uint8_t *keys;
    size_t keys_len;
    bool overflow; /* the old state's rows did not fit: none are gathered */
};

df_agg_deltas *df_agg_deltas_new(void)
{
    df_agg_deltas *d = calloc(1, sizeof(*d));
    if (d &&
        (!(d->rows = df_table_new()) || !(d->taken = malloc(GATHER_ROWS * sizeof(gathered_row))) ||
         !(d->keys = malloc(GATHER_BYTES)))) {
        df_agg_deltas_free(d);
        return NULL;
    }
    return d;
}

void df_agg_deltas_free(df_agg_deltas *d)
{
    if (d) {
        df_table_free(d->rows, free);
        free(d->taken);
        free(d->keys);
        free(d);
    }
}

typedef struct delta_ctx {
    df_agg_deltas *d;
    bool failed;
} delta_ctx;

static void add_delta(void *ctx, const uint8_t *key, size_t len, const df_sums *sums)
{
    delta_ctx *c = ctx;
    bool added;
    void **slot = df_table_put(c->d->rows, (const char *)key, len, &added);
    if (!slot) {
        c->failed = true;
        return;
    }
    if (!*slot && !(*slot = calloc(1, sizeof(df_sums)))) {
        c->failed = true;
        return;
    }
    df_sums_add(*slot, sums, 1);
}

static void gather_taken(void *ctx, const uint8_t *key, size_t len, const df_sums *sums)
{
    df_agg_deltas *d = ctx;
    if (d->overflow || d->ntaken == GATHER_ROWS || d->keys_len + len > GATHER_BYTES) {
        d->overflow = true;
        return;
    }
    gathered_row *r = &d->taken[d->ntaken++];
    r->offset = (uint32_t)d->keys_len;
    r->len = (uint32_t)len;
    r->sums = *sums;
    r->cancelled = false;
    memcpy(d->keys + d->keys_len, key, len);
    d->keys_len += len;
}

static bool cancels(const df_sums *taken, const df_sums *added)
{
    df_sums sum = *taken;
    df_sums_add(&sum, added, 1);
    return df_sums_zero(&sum) && sum.amount_float == 0 && sum.weighted_float == 0;
}

/* A row the new state adds: it cancels a gathered one that took away the
 * same, else it goes to the table. */
static void add_or_cancel(void *ctx, const uint8_t *key, size_t len, const df_sums *sums)
{
    delta_ctx *c = ctx;
    df_agg_deltas *d = c->d;
    for (size_t i = 0; i < d->ntaken; i++) {
        gathered_row *r = &d->taken[i];
        if (!r->cancelled && r->len == len && memcmp(d->keys + r->offset, key, len) == 0 &&
            cancels(&r->sums, sums)) {
            r->cancelled = true;
            return;
        }
    }
    add_delta(ctx, key, len, sums);
}

bool df_agg_deltas_deal(df_agg_deltas *d, const df_deal *before, const df_deal *after)
{
    delta_ctx c = {d, false};
    if (before && after && df_contribution_same_but_idle(before, after)) {
        if (!df_same_idle(before, after)) {
            df_deal_contribute_idle(before, -1, add_delta, &c);
            df_deal_contribute_idle(after, +1, add_delta, &c);
        }
        return !c.failed;
    }
    d->ntaken = d->keys_len = 0;
    d->overflow = false;
    if (before)
        df_deal_contribute(before, -1, gather_taken, d);
    if (d->overflow) { /* a deal with very many stages: no cancelling */
        d->ntaken = 0;
        df_deal_contribute(before, -1, add_delta, &c);
    }
    if (after)
        df_deal_contribute(after, +1, add_or_cancel, &c);
    for (size_t i = 0; i < d->ntaken; i++) {
        if (!d->taken[i].cancelled)
            add_delta(&c, d->keys + d->taken[i].offset, d->taken[i].len, &d->taken[i].sums);
    }
    return !c.failed;
}

/* Where the kind byte of a logical key is: after "pipeline NUL" and the
 * scope ("A", or "O owner NUL"). 0 when the key is malformed. */
static size_t kind_offset(const uint8_t *key, size_t len)
{
    const uint8_t *nul = memchr(key, 0, len);
    if (!nul || (size_t)(nul - key) + 2 >= len)
        return 0;
    size_t at = (size_t)(nul - key) + 1;
    if (key[at] == 'A')
        return at + 1 < len ? at + 1 : 0;
    if (key[at] != 'O' || !(nul = memchr(key + at, 0, len - at)))
        return 0;
    at = (size_t)(nul - key) + 1;
    return at < len ? at : 0;
}

static uint64_t fnv1a(const uint8_t *p, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* A V row's names can be longer than a key: it is keyed by their hash and
 * holds them in its value. Rows are never deleted (an emptied one stays with
 * count 0), so a collision is resolved by probing the next hashes. */
#define V_PROBES 64

static int apply_visited_set(df_store *st, MDB_txn *txn, const uint8_t *key, size_t kind_at,
                             size_t len, const df_sums *delta)
{
    const uint8_t *names = key + kind_at + 1;
    size_t names_len = len - kind_at - 1;
    uint8_t k[DF_AGG_KEY_MAX];
    uint64_t h = fnv1a(names, names_len);
    memcpy(k, key, kind_at + 1);
    for (int probe = 0; probe < V_PROBES; probe++, h++) {
        df_put_be64(k + kind_at + 1, h);
        MDB_val kv = {kind_at + 9, k}, v;
        int rc = mdb_get(txn, st->aggs, &kv, &v);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
        df_sums sums = {0};
        if (rc == 0) {
            if (v.mv_size != sizeof(df_sums) + names_len ||
                memcmp((const uint8_t *)v.mv_data + sizeof(df_sums), names, names_len) != 0)
                continue; /* another set with the same hash */
            memcpy(&sums, v.mv_data, sizeof(sums));
        }
        df_sums_add(&sums, delta, 1);
        uint8_t *value;
        v.mv_size = sizeof(df_sums) + names_len;
        if ((rc = mdb_put(txn, st->aggs, &kv, &v, MDB_RESERVE)) != 0)
            return rc;
        value = v.mv_data;
        memcpy(value, &sums, sizeof(sums));
        memcpy(value + sizeof(sums), names, names_len);
        return 0;
    }
    df_log("aggregates: %d stage sets share one hash; conversion figures leave one out", V_PROBES);
    return 0;
}

static int apply_row(df_store *st, MDB_txn *txn, const uint8_t *key, size_t len,
                     const df_sums *delta)
{
    size_t kind_at = kind_offset(key, len);
    if (kind_at == 0)
        return MDB_BAD_VALSIZE; /* a programmer error: keys are built by metrics.c */
    if (key[kind_at] == 'V')
        return apply_visited_set(st, txn, key, kind_at, len, delta);
    if (len > DF_AGG_KEY_MAX)
        return MDB_BAD_VALSIZE;
    MDB_val k = {len, (void *)key}, v;
    df_sums sums = {0};
    int rc = mdb_get(txn, st->aggs, &k, &v);
    if (rc == 0 && v.mv_size == sizeof(sums))
        memcpy(&sums, v.mv_data, sizeof(sums));
    else if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    df_sums_add(&sums, delta, 1);
    if (df_sums_zero(&sums))
        return rc == 0 ? mdb_del(txn, st->aggs, &k, NULL) : 0;
    v.mv_size = sizeof(sums);
    v.mv_data = &sums;
    return mdb_put(txn, st->aggs, &k, &v, 0);
}

int df_store_aggs_apply(df_store *st, MDB_txn *txn, df_agg_deltas *d)
{
    size_t n = df_table_count(d->rows);
    df_table_item *rows = df_table_sorted(d->rows);
    int rc = n && !rows ? MDB_PANIC : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const df_sums *delta = rows[i].value;
        if (!df_sums_zero(delta))
            rc = apply_row(st, txn, (const uint8_t *)rows[i].key, rows[i].len, delta);
    }
    free(rows);
    if (rc == 0)
        df_table_clear(d->rows, free);
    return rc;
}

void df_agg_deltas_clear(df_agg_deltas *d)
{
    df_table_clear(d->rows, free);
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
    if ((rc = mdb_cursor_open(txn, st->aggs, &cur)) != 0)
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
        if (v.mv_size < sizeof(df_sums))
            continue; /* damaged: LMDB has no checksums */
        df_sums sums;
        memcpy(&sums, v.mv_data, sizeof(sums));
        size_t kind_at = kind_offset(key, k.mv_size);
        const uint8_t *row = key;
        size_t row_len = k.mv_size;
        if (kind_at && key[kind_at] == 'V') {
            size_t names_len = v.mv_size - sizeof(df_sums);
            if (sums.count == 0 || kind_at + 1 + names_len > sizeof(logical))
                continue;
            memcpy(logical, key, kind_at + 1);
            memcpy(logical + kind_at + 1, (const uint8_t *)v.mv_data + sizeof(df_sums), names_len);
            row = logical;
            row_len = kind_at + 1 + names_len;
        }
        if (each(ctx, row, row_len, &sums))
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

/* ---- pipelines ---- */

int df_store_pipelines_load(df_store *st, MDB_txn *txn, df_pipelines *pl)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    df_pipelines_init(pl);
    if ((rc = mdb_cursor_open(txn, st->pipelines, &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size == 0 || *(const char *)k.mv_data == 0) { /* not a pipeline: a snapshot */
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        df_pipeline *p = (df_pipeline *)df_pipelines_find(pl, k.mv_data, k.mv_size);
        if (!p && pl->count < DF_MAX_PIPELINES && k.mv_size <= DF_MAX_NAME) {
            p = &pl->items[pl->count++];
            df_name_set(&p->name, k.mv_data, k.mv_size);
        }
        if (p && df_pipeline_unpack(v.mv_data, v.mv_size, p) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int df_store_pipeline_put(df_store *st, MDB_txn *txn, const df_pipeline *p)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    df_pipeline_pack(&pk, p);
    MDB_val k = {p->name.len, (void *)p->name.s}, v = {sb.size, sb.data};
    int rc = mdb_put(txn, st->pipelines, &k, &v, 0);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* The pipelines as they were when the flushed state was folded, kept under a
 * key no pipeline can have (names hold no NUL): a stream of name, stages. */
static const char SNAPSHOT_KEY[] = "\0derived";

int df_store_pipelines_snapshot_put(df_store *st, MDB_txn *txn, const df_pipelines *pl)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (int i = 0; i < pl->count; i++) {
        df_pack_str(&pk, pl->items[i].name.s, pl->items[i].name.len);
        df_pipeline_pack(&pk, &pl->items[i]);
    }
    MDB_val k = {sizeof(SNAPSHOT_KEY) - 1, (void *)SNAPSHOT_KEY}, v = {sb.size, sb.data};
    int rc = mdb_put(txn, st->pipelines, &k, &v, 0);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int df_store_pipelines_snapshot_get(df_store *st, MDB_txn *txn, df_pipelines *pl)
{
    MDB_val k = {sizeof(SNAPSHOT_KEY) - 1, (void *)SNAPSHOT_KEY}, v;
    int rc = mdb_get(txn, st->pipelines, &k, &v);
    if (rc != 0)
        return rc;
    const char *at = v.mv_data, *end = at + v.mv_size;
    pl->count = 0;
    while (at < end) {
        size_t name_len = df_msgpack_skip(at, (size_t)(end - at));
        size_t stages_len =
            name_len ? df_msgpack_skip(at + name_len, (size_t)(end - at) - name_len) : 0;
        /* a str header of 1, 2 or 3 bytes before the name */
        uint8_t tag = (uint8_t)at[0];
        size_t header = (tag & 0xe0) == 0xa0 ? 1 : tag == 0xd9 ? 2 : tag == 0xda ? 3 : 0;
        if (!stages_len || !header || name_len <= header || name_len - header > DF_MAX_NAME ||
            pl->count >= DF_MAX_PIPELINES)
            return MDB_CORRUPTED;
        df_pipeline *p = &pl->items[pl->count++];
        df_name_set(&p->name, at + header, name_len - header);
        if (df_pipeline_unpack(at + name_len, stages_len, p) != 0)
            return MDB_CORRUPTED;
        at += name_len + stages_len;
    }
    return 0;
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
