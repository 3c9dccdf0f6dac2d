/* store.c: the LMDB environment and its layout: one named database per kind
 * of record, the directory's lock and identity, the map's growth while the
 * disk has room; meta, ids, each deal's events, projections and pipelines.
 * The log and its chain are in eventlog.c, indexes in index.c, aggregate
 * rows in aggregates.c. Integers in keys are big-endian so that LMDB's byte
 * order is numeric order. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "reader.h"
#include "record.h"

struct df_store {
    MDB_env *env;
    MDB_dbi log, ids, deal_events, deals, index, aggs, meta, pipelines, rejected, moves, chain;
    MDB_txn *read_txn;
    /* the map is grown only while the loop thread's read transaction is
     * closed: LMDB maps the file again */
    pthread_mutex_t map_mu;
    bool reading; /* under map_mu */
    int lock_fd, dir_fd;
    /* the last damaged log record a read found (either thread) */
    _Atomic uint64_t corrupt_seq;
    df_chain_tip chain_tip; /* the writer's, in its write transaction */
    /* cursors that append to ids, each deal's events and projections in the
     * writer's write transaction, opened at the first append (which LMDB
     * then makes without a search from the root for each key) */
    MDB_cursor *appending[3];
    uint8_t id_hash_key[crypto_shorthash_KEYBYTES]; /* ids' (see below) */
    uint64_t short_checks_from;                     /* eventlog.c's */
    char path[4096];
};

/* LMDB's default limit on key size is 511 bytes. */
#define KEY_MAX 512

static int open_dbi(MDB_txn *txn, const char *name, MDB_dbi *dbi)
{
    return mdb_dbi_open(txn, name, MDB_CREATE, dbi);
}

/* ids and each deal's events keep sorted sets of fixed-size values under
 * each key, which LMDB packs without a header per value. */
#define SEQ_SETS (MDB_DUPSORT | MDB_DUPFIXED)
#define LAYOUT_FLAGS                                                                               \
    (MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP)

/* Opens a table of the derived state in this dealflowd's layout. LMDB keeps
 * the flags a table was made with, so one an older dealflowd laid out
 * otherwise is deleted and made again, and the derived state is rebuilt
 * from the log (*relaid). */
static int open_derived_dbi(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi,
                            bool *relaid)
{
    unsigned made_with = 0;
    int rc = mdb_dbi_open(txn, name, MDB_CREATE | flags, dbi);
    if (rc == 0)
        rc = mdb_dbi_flags(txn, *dbi, &made_with);
    if (rc != 0 || (made_with & LAYOUT_FLAGS) == flags)
        return rc;
    *relaid = true;
    if ((rc = mdb_drop(txn, *dbi, 1)) != 0)
        return rc;
    return mdb_dbi_open(txn, name, MDB_CREATE | flags, dbi);
}

/* Derived state (projections, indexes, aggregates) laid out by an older
 * dealflowd is dropped, and the log is folded again from its start. The ids
 * and each deal's events go too: that fold remembers every id and event
 * again, and their puts refuse a key that is there. */
int df_store_derived_drop(df_store *st, MDB_txn *txn)
{
    uint64_t flushed = 0, known = 0;
    int rc;
    if ((rc = df_store_meta_get(st, txn, "derived_seq", &flushed)) != 0 ||
        (rc = df_store_meta_get(st, txn, DF_SPELLS_KNOWN_KEY, &known)) != 0 ||
        (flushed > known && (rc = df_store_meta_put(st, txn, DF_SPELLS_KNOWN_KEY, flushed)) != 0))
        return rc;
    if ((rc = mdb_drop(txn, st->deals, 0)) != 0 || (rc = mdb_drop(txn, st->index, 0)) != 0 ||
        (rc = mdb_drop(txn, st->aggs, 0)) != 0 || (rc = mdb_drop(txn, st->ids, 0)) != 0 ||
        (rc = mdb_drop(txn, st->deal_events, 0)) != 0 ||
        (rc = df_store_meta_put(st, txn, DF_FLUSH_OPEN_KEY, 0)) != 0)
        return rc;
    return df_store_meta_put(st, txn, "derived_seq", 0);
}

static int rebuild_if_old(df_store *st, MDB_txn *txn, bool relaid)
{
    uint64_t derived = 0, last_seq;
    int rc = df_store_meta_get(st, txn, "derived_format", &derived);
    if (rc != 0 || (derived == DF_DERIVED_FORMAT && !relaid))
        return rc;
    last_seq = df_store_log_last(st, txn);
    if (last_seq > 0)
        df_log("the store's projections and aggregates are from an older dealflowd: rebuilding "
               "them from the log (%llu events)",
               (unsigned long long)last_seq);
    if ((rc = df_store_derived_drop(st, txn)) != 0)
        return rc;
    return df_store_meta_put(st, txn, "derived_format", DF_DERIVED_FORMAT);
}

/* ---- the store's identity ----
 * A store, once created, is named by a random id kept both in its meta and in
 * a marker file beside data.mdb: a directory whose data.mdb went missing,
 * was emptied or replaced by another store's is refused, never started
 * afresh. */

#define MARKER_NAME  "dealflowd.store"
#define STORE_ID_LEN 32 /* hex of 16 random bytes */

static bool read_marker(const char *dir, char id[STORE_ID_LEN + 1])
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/" MARKER_NAME, dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(id, 1, STORE_ID_LEN, f);
    fclose(f);
    id[n] = '\0';
    return true;
}

static int write_marker(const char *dir, const char *id)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/" MARKER_NAME, dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    size_t len = strlen(id);
    int ok = write(fd, id, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static bool data_file_present(const char *dir)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    return stat(path, &sb) == 0 && sb.st_size > 0;
}

/* The store's id from its meta; one is made for a store that has none, unless
 * the directory's marker says the store should already have one (then the
 * empty id makes the caller refuse). */
static int store_id_get(df_store *st, MDB_txn *txn, bool had_marker, char id[STORE_ID_LEN + 1])
{
    static const char key[] = "store_id";
    MDB_val k = {sizeof(key) - 1, (void *)key}, v;
    int rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == 0 && v.mv_size == STORE_ID_LEN) {
        memcpy(id, v.mv_data, STORE_ID_LEN);
        id[STORE_ID_LEN] = '\0';
        return 0;
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    id[0] = '\0';
    if (had_marker)
        return 0;
    uint8_t random[STORE_ID_LEN / 2];
    randombytes_buf(random, sizeof(random));
    sodium_bin2hex(id, STORE_ID_LEN + 1, random, sizeof(random));
    v = (MDB_val){STORE_ID_LEN, id};
    return mdb_put(txn, st->meta, &k, &v, 0);
}

int df_store_open(df_store **out, const char *dir, size_t map_mib, df_error *err)
{
    df_store *st = calloc(1, sizeof(*st));
    MDB_txn *txn = NULL;
    int rc;
    if (!st)
        return df_fail(err, DF_EINTERNAL, "out of memory");
    st->lock_fd = -1;
    pthread_mutex_init(&st->map_mu, NULL);
    st->dir_fd = -1;
    if (sodium_init() < 0) {
        df_fail(err, DF_EINTERNAL, "libsodium cannot start");
        goto fail;
    }
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
    /* the directory itself is locked too: deleting the lock file cannot
     * let a second dealflowd in */
    st->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0 || st->dir_fd < 0 ||
        flock(st->dir_fd, LOCK_EX | LOCK_NB) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "data directory %s is in use by another dealflowd", dir);
        goto fail;
    }
    char marker[STORE_ID_LEN + 1] = "";
    bool had_marker = read_marker(dir, marker);
    if (had_marker && !data_file_present(dir)) {
        df_fail(err, DF_EUNAVAILABLE,
                "data directory %s held a store (" MARKER_NAME
                ") but its data.mdb is missing or empty: refusing to start afresh",
                dir);
        goto fail;
    }
    if ((rc = mdb_env_create(&st->env)) != 0 ||
        (rc = mdb_env_set_mapsize(st->env, map_mib << 20)) != 0 ||
        (rc = mdb_env_set_maxdbs(st->env, 16)) != 0 ||
        (rc = mdb_env_set_maxreaders(st->env, 126)) != 0 ||
        (rc = mdb_env_open(st->env, dir, MDB_NOTLS | MDB_NORDAHEAD, 0640)) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "cannot open the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    bool relaid = false;
    if ((rc = df_store_write_begin(st, &txn)) != 0 || (rc = open_dbi(txn, "log", &st->log)) != 0 ||
        (rc = open_derived_dbi(txn, "ids", SEQ_SETS, &st->ids, &relaid)) != 0 ||
        (rc = open_derived_dbi(txn, "deal_events", SEQ_SETS, &st->deal_events, &relaid)) != 0 ||
        (rc = open_dbi(txn, "deals", &st->deals)) != 0 ||
        (rc = open_dbi(txn, "index", &st->index)) != 0 ||
        (rc = open_dbi(txn, "aggs", &st->aggs)) != 0 ||
        (rc = open_dbi(txn, "meta", &st->meta)) != 0 ||
        (rc = open_dbi(txn, "pipelines", &st->pipelines)) != 0 ||
        (rc = open_dbi(txn, "rejected", &st->rejected)) != 0 ||
        (rc = open_dbi(txn, "moves", &st->moves)) != 0 ||
        (rc = open_dbi(txn, "chain", &st->chain)) != 0) {
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
    if (format == 1 && (rc = df_store_add_digests(st, txn)) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "cannot add digests to the store in %s: %s", dir,
                mdb_strerror(rc));
        goto fail;
    }
    /* the log's records keep short checks from here on; those before keep
     * what they were written with */
    if (format < DF_STORE_FORMAT) {
        st->short_checks_from = df_store_log_last(st, txn) + 1;
        rc = df_store_meta_put(st, txn, DF_SHORT_CHECKS_KEY, st->short_checks_from);
    } else {
        rc = df_store_meta_get(st, txn, DF_SHORT_CHECKS_KEY, &st->short_checks_from);
    }
    if (rc == 0 && format < DF_STORE_FORMAT)
        rc = df_store_meta_put(st, txn, "format", DF_STORE_FORMAT);
    if (rc != 0) {
        df_fail(err, DF_EUNAVAILABLE, "cannot write the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    char store_id[STORE_ID_LEN + 1];
    if ((rc = store_id_get(st, txn, had_marker, store_id)) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "cannot write the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    /* ids are hashed under a key drawn from the store's random id */
    crypto_generichash(st->id_hash_key, sizeof(st->id_hash_key), (const uint8_t *)"event ids", 9,
                       (const uint8_t *)store_id, STORE_ID_LEN);
    if (had_marker && strcmp(marker, store_id) != 0) {
        df_fail(err, DF_EUNAVAILABLE,
                "data directory %s held another store (" MARKER_NAME
                " does not name its data.mdb): refusing to start",
                dir);
        goto fail;
    }
    if ((rc = rebuild_if_old(st, txn, relaid)) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "cannot write the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    if ((rc = df_store_write_commit(st, txn)) != 0) {
        txn = NULL;
        df_fail(err, DF_EUNAVAILABLE, "cannot write the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    if (!had_marker && write_marker(dir, store_id) != 0) {
        df_fail(err, DF_EUNAVAILABLE, "cannot write %s/" MARKER_NAME ": %s", dir, strerror(errno));
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
    pthread_mutex_destroy(&st->map_mu);
    if (st->dir_fd >= 0)
        close(st->dir_fd);
    free(st);
}

int df_store_compact(df_store *st, const char *dir, df_error *err)
{
    char copy[4200], path[4200];
    snprintf(copy, sizeof(copy), "%s/data.mdb.compact", dir);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    /* Derived rows may hold a redacted owner's name in their keys (a row of
     * the aggregates is kept, emptied, where others probe past it): they
     * go, and the next start writes them again from the redacted log. */
    MDB_txn *txn = NULL;
    int drc = df_store_write_begin(st, &txn);
    if (drc == 0) {
        if ((drc = df_store_derived_drop(st, txn)) == 0)
            drc = df_store_write_commit(st, txn);
        else
            mdb_txn_abort(txn);
    }
    if (drc != 0)
        return df_fail(err, DF_EUNAVAILABLE, "cannot drop the derived state in %s: %s", dir,
                       mdb_strerror(drc));
    int fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return df_fail(err, DF_EUNAVAILABLE, "cannot create %s: %s", copy, strerror(errno));
    /* only the pages in use are copied, and written afresh: the bytes of
     * freed pages (redacted values among them) stay behind */
    int rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
    if (rc == 0 && fsync(fd) != 0)
        rc = errno;
    if (close(fd) != 0 && rc == 0)
        rc = errno;
    if (rc == 0 && rename(copy, path) != 0)
        rc = errno;
    if (rc == 0 && st->dir_fd >= 0 && fsync(st->dir_fd) != 0)
        rc = errno;
    if (rc != 0) {
        unlink(copy);
        return df_fail(err, DF_EUNAVAILABLE, "cannot compact the store in %s: %s", dir,
                       mdb_strerror(rc));
    }
    return 0;
}

uint64_t df_store_corrupt_seq(df_store *st)
{
    return atomic_load(&st->corrupt_seq);
}

void df_store_note_corrupt(df_store *st, uint64_t seq)
{
    atomic_store(&st->corrupt_seq, seq);
}

uint64_t df_store_short_checks_from(const df_store *st)
{
    return st->short_checks_from;
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
    case DF_DB_LOG:
        return st->log;
    case DF_DB_CHAIN:
        return st->chain;
    case DF_DB_META:
        return st->meta;
    case DF_DB_REJECTED:
        return st->rejected;
    case DF_DB_MOVES:
        return st->moves;
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
    st->chain_tip.known = st->chain_tip.unsaved = false;
    /* LMDB closed those of the last write transaction when it ended */
    memset(st->appending, 0, sizeof(st->appending));
    return mdb_txn_begin(st->env, NULL, 0, txn);
}

int df_store_write_commit(df_store *st, MDB_txn *txn)
{
    int rc = df_store_chain_save(st, txn);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

int df_store_write_step(df_store *st, MDB_txn *txn)
{
    int rc = mdb_env_set_flags(st->env, MDB_NOMETASYNC, 1);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = df_store_write_commit(st, txn);
    int restored = mdb_env_set_flags(st->env, MDB_NOMETASYNC, 0);
    return rc ? rc : restored;
}

df_chain_tip *df_store_chain_tip(df_store *st)
{
    return &st->chain_tip;
}

int df_store_snapshot_begin(df_store *st, MDB_txn **txn)
{
    return mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
}

int df_store_read_begin(df_store *st, MDB_txn **txn)
{
    int rc;
    pthread_mutex_lock(&st->map_mu);
    st->reading = true;
    pthread_mutex_unlock(&st->map_mu);
    if (st->read_txn) {
        rc = mdb_txn_renew(st->read_txn);
    } else {
        rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->read_txn);
    }
    *txn = rc == 0 ? st->read_txn : NULL;
    if (rc != 0) {
        pthread_mutex_lock(&st->map_mu);
        st->reading = false;
        pthread_mutex_unlock(&st->map_mu);
    }
    return rc;
}

void df_store_read_end(df_store *st, MDB_txn *txn)
{
    if (!txn)
        return;
    mdb_txn_reset(txn);
    pthread_mutex_lock(&st->map_mu);
    st->reading = false;
    pthread_mutex_unlock(&st->map_mu);
}

/* Bytes left free on disk besides what a write asks for: the flushes and
 * LMDB's own pages need some too. */
#define DISK_RESERVE (64u << 10)

df_store_space df_store_space_get(df_store *st)
{
    df_store_space s = {0};
    MDB_envinfo info;
    MDB_stat ms;
    struct statvfs vfs;
    char path[4200];
    struct stat sb;
    if (statvfs(st->path, &vfs) == 0)
        s.disk_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (mdb_env_info(st->env, &info) == 0 && mdb_env_stat(st->env, &ms) == 0) {
        s.map_bytes = info.me_mapsize;
        s.map_used = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
    }
    snprintf(path, sizeof(path), "%s/data.mdb", st->path);
    if (stat(path, &sb) == 0)
        s.file_bytes = (uint64_t)sb.st_size;
    return s;
}

/* Doubles the map (at least need bytes more) while no read transaction is
 * open; false when one is, or LMDB refused. */
static bool grow_map(df_store *st, const df_store_space *s, size_t need)
{
    uint64_t size = s->map_bytes * 2;
    bool grown = false;
    if (size < s->map_used + need)
        size = s->map_used + need;
    pthread_mutex_lock(&st->map_mu);
    if (!st->reading) {
        int rc = mdb_env_set_mapsize(st->env, (size_t)size);
        if (rc == 0)
            df_log("the store's map grew from %llu to %llu MiB",
                   (unsigned long long)(s->map_bytes >> 20), (unsigned long long)(size >> 20));
        else
            df_log("cannot grow the store's map: %s", mdb_strerror(rc));
        grown = rc == 0;
    }
    pthread_mutex_unlock(&st->map_mu);
    return grown;
}

int df_store_make_room(df_store *st, size_t need)
{
    df_store_space s = df_store_space_get(st);
    uint64_t end = s.map_used + need;
    /* pages LMDB writes past the end of the file take blocks from the disk */
    uint64_t disk_need = end > s.file_bytes ? end - s.file_bytes : 0;
    if (disk_need > 0 && s.disk_free < disk_need + DISK_RESERVE)
        return ENOSPC;
    if (end > s.map_bytes && !grow_map(st, &s, need))
        return MDB_MAP_FULL;
    return 0;
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

/* A seq in a set of seqs: 6 bytes, big-endian, so that the set's byte
 * order is the seqs' order. 2^48 events are far beyond any map. */
#define SEQ_BYTES 6
#define SEQ_LIMIT (UINT64_C(1) << 48)

static void put_seq(uint8_t *out, uint64_t seq)
{
    for (int i = SEQ_BYTES - 1; i >= 0; i--, seq >>= 8)
        out[i] = (uint8_t)seq;
}

static uint64_t get_seq(const uint8_t *in)
{
    uint64_t seq = 0;
    for (int i = 0; i < SEQ_BYTES; i++)
        seq = seq << 8 | in[i];
    return seq;
}

enum { APPEND_IDS, APPEND_DEAL_EVENTS, APPEND_DEALS };

/* The writer's cursor on dbi for this write transaction (kept for appends,
 * which LMDB then makes without a search from the root). */
static int write_cursor(df_store *st, MDB_txn *txn, MDB_dbi dbi, int which, MDB_cursor **cur)
{
    int rc = 0;
    if (!st->appending[which])
        rc = mdb_cursor_open(txn, dbi, &st->appending[which]);
    *cur = st->appending[which];
    return rc;
}

/* Puts k into dbi, after every key it holds when append. */
static int put(df_store *st, MDB_txn *txn, MDB_dbi dbi, int appending, MDB_val *k, MDB_val *v,
               unsigned flags, bool append)
{
    MDB_cursor *cur;
    int rc;
    if (!append)
        return mdb_put(txn, dbi, k, v, flags);
    if ((rc = write_cursor(st, txn, dbi, appending, &cur)) != 0)
        return rc;
    return mdb_cursor_put(cur, k, v, MDB_APPEND);
}

/* Puts count values of `size` bytes, sorted, under k of a table of sets;
 * after every key it holds when append, else after every value k holds
 * when after_all. */
static int put_set(df_store *st, MDB_txn *txn, MDB_dbi dbi, int which, MDB_val *k,
                   const uint8_t *values, size_t size, size_t count, bool append, bool after_all)
{
    MDB_cursor *cur;
    int rc;
    if (count == 0)
        return 0;
    if ((rc = write_cursor(st, txn, dbi, which, &cur)) != 0)
        return rc;
    MDB_val v[2] = {{size, (void *)values}, {count, NULL}};
    unsigned flags =
        MDB_MULTIPLE | (append ? MDB_APPEND | MDB_APPENDDUP : 0) | (after_all ? MDB_APPENDDUP : 0);
    if ((rc = mdb_cursor_put(cur, k, v, flags)) != 0)
        return rc;
    return v[1].mv_size == count ? 0 : MDB_CORRUPTED;
}

/* ---- ids: the id's keyed hashes -> the seqs of the events with them ----
 * An id is hashed with SipHash under a key of the store's own (so that ids
 * cannot be chosen to collide). 12 bits of the hash of the id without its
 * last ID_TAIL bytes name one of 4 096 keys; under it, 48 bits of the hash
 * of the whole id and the seq make a 12-byte value. An entry so takes about
 * 12 bytes however long the id, where the id itself as the key took its
 * length and a node's 8-byte header, with pages half full. Ids that differ
 * only in their tail (counters, time-ordered ids) share a key, so that a
 * flush of new ones rewrites the pages of a few keys, not of all. A
 * matching hash says only that the id may be there: the event at that seq
 * is read from the log and its id compared, so a collision never passes a
 * new event for a duplicate. */

#define ID_KEY_BYTES   2
#define ID_HASH_BYTES  6
#define ID_VALUE_BYTES (ID_HASH_BYTES + SEQ_BYTES)
#define ID_TAIL        3
/* Bits of the whole id's hash kept: 48; the sanitizer build's tests keep
 * fewer, so that ids collide (DF_SHORT_ID_HASHES). */
#ifndef DF_ID_HASH_BITS
#define DF_ID_HASH_BITS 48
#endif

static uint64_t siphash(const df_store *st, const char *data, size_t len)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const uint8_t *)data, len, st->id_hash_key);
    return df_get_be64(h);
}

/* The id's key (12 bits) and whole hash (48 bits) as one 60-bit number,
 * whose order is that of the entries. */
static uint64_t id_hash(const df_store *st, const char *id, size_t len)
{
    uint64_t key = siphash(st, id, len > ID_TAIL ? len - ID_TAIL : 0) >> 52;
    uint64_t whole = siphash(st, id, len) >> (64 - DF_ID_HASH_BITS);
    return key << 48 | whole;
}

static void id_entry(uint64_t hash, uint64_t seq, uint8_t key[ID_KEY_BYTES],
                     uint8_t value[ID_VALUE_BYTES])
{
    key[0] = (uint8_t)(hash >> 56);
    key[1] = (uint8_t)(hash >> 48);
    for (int i = 0; i < ID_HASH_BYTES; i++)
        value[i] = (uint8_t)(hash >> (8 * (ID_HASH_BYTES - 1 - i)));
    put_seq(value + ID_HASH_BYTES, seq);
}

/* Whether the recorded event seq has the id (1), not (0), or an error. */
static int event_has_id(df_store *st, MDB_txn *txn, uint64_t seq, const char *id, size_t len)
{
    MDB_val event;
    msgpack_object map;
    int rc = df_store_log_get(st, txn, seq, &event);
    if (rc == MDB_NOTFOUND)
        return MDB_CORRUPTED; /* an id entry names an event the log lacks */
    if (rc != 0)
        return rc;
    msgpack_zone *zone = msgpack_zone_new(1024);
    if (!zone)
        return ENOMEM;
    rc = MDB_CORRUPTED;
    if (df_msgpack_unpack(event.mv_data, event.mv_size, zone, &map, NULL) == 0 &&
        map.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < map.via.map.size; i++) {
            const msgpack_object *k = &map.via.map.ptr[i].key, *v = &map.via.map.ptr[i].val;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 2 &&
                memcmp(k->via.str.ptr, "id", 2) == 0) {
                rc = v->type == MSGPACK_OBJECT_STR && v->via.str.size == len &&
                     memcmp(v->via.str.ptr, id, len) == 0;
                break;
            }
        }
    }
    msgpack_zone_free(zone);
    return rc;
}

int df_store_id_get(df_store *st, MDB_txn *txn, const char *id, size_t len, uint64_t *seq)
{
    uint8_t key[ID_KEY_BYTES], value[ID_VALUE_BYTES];
    MDB_cursor *cur;
    id_entry(id_hash(st, id, len), 0, key, value);
    MDB_val k = {sizeof(key), key}, v = {sizeof(value), value};
    int rc = mdb_cursor_open(txn, st->ids, &cur);
    if (rc != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    while (rc == 0) {
        if (v.mv_size != ID_VALUE_BYTES) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (memcmp(v.mv_data, value, ID_HASH_BYTES) != 0) {
            rc = MDB_NOTFOUND;
            break;
        }
        uint64_t candidate = get_seq((const uint8_t *)v.mv_data + ID_HASH_BYTES);
        int has = event_has_id(st, txn, candidate, id, len);
        if (has == 1) {
            *seq = candidate;
            rc = 0;
            break;
        }
        rc = has != 0 ? has : mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
    }
    mdb_cursor_close(cur);
    return rc;
}

typedef struct id_hashed {
    uint64_t hash, seq;
} id_hashed;

static int by_hash_then_seq(const void *a, const void *b)
{
    const id_hashed *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Whether the table of sets holds the value under k (a value of a put
 * taken up again: LMDB's puts of many values must never meet one that is
 * there, see df_put_order). */
static int set_holds(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, const uint8_t *value, size_t size,
                     bool *held)
{
    MDB_cursor *cur;
    MDB_val key = *k, v = {size, (void *)value};
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return rc;
    rc = mdb_cursor_get(cur, &key, &v, MDB_GET_BOTH);
    mdb_cursor_close(cur);
    *held = rc == 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int df_store_ids_put(df_store *st, MDB_txn **txn, const df_id_seq *ids, size_t count,
                     df_put_order order, const df_write_steps *steps)
{
    id_hashed *hashed = count ? malloc(count * sizeof(*hashed)) : NULL;
    uint8_t *values = count ? malloc(count * ID_VALUE_BYTES) : NULL;
    size_t n = 0;
    int rc = count && (!hashed || !values) ? ENOMEM : 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (ids[i].seq >= SEQ_LIMIT)
            rc = MDB_BAD_VALSIZE;
        else
            hashed[n++] = (id_hashed){id_hash(st, ids[i].id, ids[i].len), ids[i].seq};
    }
    if (rc == 0)
        qsort(hashed, n, sizeof(*hashed), by_hash_then_seq);
    /* one put of many values for each key */
    for (size_t i = 0, first = 0, held = 0, stepped = 0; rc == 0 && i < n; i++) {
        uint8_t key[ID_KEY_BYTES];
        uint8_t *value = values + (i - first - held) * ID_VALUE_BYTES;
        id_entry(hashed[i].hash, hashed[i].seq, key, value);
        MDB_val k = {sizeof(key), key};
        bool there = false;
        if (order == DF_PUT_AGAIN &&
            (rc = set_holds(*txn, st->ids, &k, value, ID_VALUE_BYTES, &there)) != 0)
            break;
        held += there;
        if (i + 1 < n && hashed[i + 1].hash >> 48 == hashed[i].hash >> 48)
            continue;
        rc = put_set(st, *txn, st->ids, APPEND_IDS, &k, values, ID_VALUE_BYTES,
                     i + 1 - first - held, order == DF_PUT_APPEND, false);
        first = i + 1;
        held = 0;
        if (rc == 0 && steps && first - stepped >= steps->every && first < n) {
            rc = steps->step(steps->ctx, txn);
            stepped = first;
        }
    }
    free(hashed);
    free(values);
    return rc;
}

/* ---- each deal's events: deal id -> its seqs ---- */

int df_store_deal_events_put(df_store *st, MDB_txn *txn, const char *deal, size_t len,
                             const uint64_t *seqs, size_t count, df_put_order order)
{
    uint8_t values[64 * SEQ_BYTES];
    MDB_val k = {len, (void *)deal};
    int rc = 0;
    size_t done = 0;
    if (order == DF_PUT_AGAIN && count > 0) {
        /* those the store holds are the first: put the others after them */
        MDB_cursor *cur;
        MDB_val key = k, v;
        if ((rc = mdb_cursor_open(txn, st->deal_events, &cur)) != 0)
            return rc;
        rc = mdb_cursor_get(cur, &key, &v, MDB_SET_KEY);
        if (rc == 0)
            rc = mdb_cursor_get(cur, &key, &v, MDB_LAST_DUP);
        if (rc == 0 && v.mv_size != SEQ_BYTES)
            rc = MDB_CORRUPTED;
        uint64_t last = rc == 0 ? get_seq(v.mv_data) : 0;
        mdb_cursor_close(cur);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
        rc = 0;
        while (done < count && seqs[done] <= last)
            done++;
    }
    /* a deal's new events come after every one the store holds of it */
    while (rc == 0 && done < count) {
        size_t n = count - done < 64 ? count - done : 64;
        for (size_t i = 0; i < n; i++) {
            if (seqs[done + i] >= SEQ_LIMIT)
                return MDB_BAD_VALSIZE;
            put_seq(values + i * SEQ_BYTES, seqs[done + i]);
        }
        rc = put_set(st, txn, st->deal_events, APPEND_DEAL_EVENTS, &k, values, SEQ_BYTES, n,
                     order == DF_PUT_APPEND && done == 0, true);
        done += n;
    }
    return rc;
}

int df_store_deal_event_scan(df_store *st, MDB_txn *txn, const char *deal, size_t len,
                             uint64_t after, df_seq_each each, void *ctx)
{
    uint8_t from[SEQ_BYTES];
    MDB_cursor *cur;
    int rc;
    if (after >= SEQ_LIMIT - 1)
        return 0;
    put_seq(from, after + 1);
    MDB_val k = {len, (void *)deal}, v = {sizeof(from), from};
    if ((rc = mdb_cursor_open(txn, st->deal_events, &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    while (rc == 0) {
        if (v.mv_size != SEQ_BYTES) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (each(ctx, get_seq(v.mv_data)))
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
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

int df_store_deal_put(df_store *st, MDB_txn *txn, const df_deal *d, bool append)
{
    uint8_t buf[DF_DEAL_RECORD_MAX];
    MDB_val k = {d->deal.len, (void *)d->deal.s}, v = {df_deal_encode(d, buf), buf};
    return put(st, txn, st->deals, APPEND_DEALS, &k, &v, 0, append);
}

static uint64_t entries(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat s;
    return mdb_stat(txn, dbi, &s) == 0 ? s.ms_entries : UINT64_MAX;
}

bool df_store_derived_empty(df_store *st, MDB_txn *txn)
{
    return entries(txn, st->ids) == 0 && entries(txn, st->deal_events) == 0 &&
           entries(txn, st->deals) == 0;
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
