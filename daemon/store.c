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

struct df_store {
    MDB_env *env;
    MDB_dbi log, ids, deal_events, deals, index, aggs, meta, pipelines, rejected, moves;
    MDB_txn *read_txn;
    int lock_fd;
    char path[4096];
};

/* LMDB's default limit on key size is 511 bytes. */
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

MDB_dbi df_store_dbi(df_store *st, df_store_db db)
{
    switch (db) {
    case DF_DB_DEALS:
        return st->deals;
    case DF_DB_INDEX:
        return st->index;
    case DF_DB_AGGS:
        return st->aggs;
    }
    return st->deals; /* not reached: every db is above */
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

/* A value being packed, which remembers that the buffer could not grow (the
 * packers go on as if it had). */
typedef struct packed {
    msgpack_sbuffer sb;
    bool failed;
} packed;

static int packed_write(void *data, const char *buf, size_t len)
{
    packed *p = data;
    if (!p->failed && msgpack_sbuffer_write(&p->sb, buf, len) != 0)
        p->failed = true;
    return p->failed ? -1 : 0;
}

static void packed_init(packed *p, msgpack_packer *pk)
{
    msgpack_sbuffer_init(&p->sb);
    p->failed = false;
    msgpack_packer_init(pk, p, packed_write);
}

static int packed_put(packed *p, MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
    MDB_val v = {p->sb.size, p->sb.data};
    int rc = p->failed ? ENOMEM : mdb_put(txn, dbi, k, &v, 0);
    msgpack_sbuffer_destroy(&p->sb);
    return rc;
}

int df_store_pipeline_put(df_store *st, MDB_txn *txn, const df_pipeline *p)
{
    packed value;
    msgpack_packer pk;
    packed_init(&value, &pk);
    df_pipeline_pack(&pk, p);
    MDB_val k = {p->name.len, (void *)p->name.s};
    return packed_put(&value, txn, st->pipelines, &k);
}

/* The pipelines as they were when the flushed state was folded, kept under a
 * key no pipeline can have (names hold no NUL): a stream of name, stages. */
static const char SNAPSHOT_KEY[] = "\0derived";

int df_store_pipelines_snapshot_put(df_store *st, MDB_txn *txn, const df_pipelines *pl)
{
    packed value;
    msgpack_packer pk;
    packed_init(&value, &pk);
    for (int i = 0; i < pl->count; i++) {
        df_pack_str(&pk, pl->items[i].name.s, pl->items[i].name.len);
        df_pipeline_pack(&pk, &pl->items[i]);
    }
    MDB_val k = {sizeof(SNAPSHOT_KEY) - 1, (void *)SNAPSHOT_KEY};
    return packed_put(&value, txn, st->pipelines, &k);
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
        df_msgpack_header name;
        if (!df_msgpack_head(at, (size_t)(end - at), &name) || name.type != DF_MSGPACK_STR)
            return MDB_CORRUPTED;
        size_t name_len = name.size;
        size_t stages_len = df_msgpack_skip(at + name_len, (size_t)(end - at) - name_len);
        if (!stages_len || name.count == 0 || name.count > DF_MAX_NAME ||
            pl->count >= DF_MAX_PIPELINES)
            return MDB_CORRUPTED;
        df_pipeline *p = &pl->items[pl->count++];
        df_name_set(&p->name, at + name.header_size, name.count);
        if (df_pipeline_unpack(at + name_len, stages_len, p) != 0)
            return MDB_CORRUPTED;
        at += name_len + stages_len;
    }
    return 0;
}
