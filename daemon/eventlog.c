/* eventlog.c: the log of recorded events and the chain over it. Each record
 * is the event's BLAKE2b-256 digest followed by its bytes (a redacted one
 * also keeps the digest of its bytes as first recorded); the chain hashes
 * each digest onto the hash before it, its head kept in meta and a
 * checkpoint every CHECKPOINT_EVERY events, in the commit that appends the
 * event. Reads check a record against its digest and name the seq of one
 * that does not match. The rejected items and the stored moves are keyed by
 * a counter as the log is. */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "store.h"

/* ---- the chain ---- */

/* A hash kept every so many events, so that the hash at any seq is found
 * without walking the whole log. */
#define CHECKPOINT_EVERY 1024

static const char CHAIN_HEAD_KEY[] = "chain_head";

void df_chain_digest(const void *data, size_t len, uint8_t digest[DF_CHAIN_BYTES])
{
    crypto_generichash(digest, DF_CHAIN_BYTES, data, len, NULL, 0);
}

void df_chain_next(const uint8_t prev[DF_CHAIN_BYTES], const uint8_t digest[DF_CHAIN_BYTES],
                   uint8_t hash[DF_CHAIN_BYTES])
{
    uint8_t both[2 * DF_CHAIN_BYTES];
    memcpy(both, prev, DF_CHAIN_BYTES);
    memcpy(both + DF_CHAIN_BYTES, digest, DF_CHAIN_BYTES);
    crypto_generichash(hash, DF_CHAIN_BYTES, both, sizeof(both), NULL, 0);
}

int df_store_chain_head(df_store *st, MDB_txn *txn, uint8_t hash[DF_CHAIN_BYTES])
{
    MDB_val k = {sizeof(CHAIN_HEAD_KEY) - 1, (void *)CHAIN_HEAD_KEY}, v;
    int rc = mdb_get(txn, df_store_dbi(st, DF_DB_META), &k, &v);
    memset(hash, 0, DF_CHAIN_BYTES);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0 && v.mv_size != DF_CHAIN_BYTES)
        return MDB_CORRUPTED;
    if (rc == 0)
        memcpy(hash, v.mv_data, DF_CHAIN_BYTES);
    return rc;
}

/* Extends the chain by one event's digest: the head, kept in memory until
 * the commit, and a checkpoint. */
static int chain_extend(df_store *st, MDB_txn *txn, uint64_t seq,
                        const uint8_t digest[DF_CHAIN_BYTES])
{
    df_chain_tip *tip = df_store_chain_tip(st);
    int rc;
    if (!tip->known) {
        if ((rc = df_store_chain_head(st, txn, tip->hash)) != 0)
            return rc;
        tip->known = true;
    }
    df_chain_next(tip->hash, digest, tip->hash);
    tip->unsaved = true;
    if (seq % CHECKPOINT_EVERY != 0)
        return 0;
    uint8_t key[8];
    df_put_be64(key, seq);
    MDB_val k = {8, key}, v = {DF_CHAIN_BYTES, tip->hash};
    return mdb_put(txn, df_store_dbi(st, DF_DB_CHAIN), &k, &v, 0);
}

int df_store_chain_save(df_store *st, MDB_txn *txn)
{
    df_chain_tip *tip = df_store_chain_tip(st);
    if (!tip->unsaved)
        return 0;
    MDB_val k = {sizeof(CHAIN_HEAD_KEY) - 1, (void *)CHAIN_HEAD_KEY},
            v = {DF_CHAIN_BYTES, tip->hash};
    int rc = mdb_put(txn, df_store_dbi(st, DF_DB_META), &k, &v, 0);
    if (rc == 0)
        tip->unsaved = false;
    return rc;
}

/* A store written before digests were kept: each event's digest is computed
 * once, from its bytes as they are now, and the seq up to which that was done
 * is kept in meta as digests_added_at. */
int df_store_add_digests(df_store *st, MDB_txn *txn)
{
    uint64_t last = df_store_log_last(st, txn);
    int rc = 0;
    if (last > 0)
        df_log("the store was written before events had digests: computing the digests and the "
               "chain of its %llu events once",
               (unsigned long long)last);
    for (uint64_t seq = 1; rc == 0 && seq <= last; seq++) {
        uint8_t key[8], digest[DF_CHAIN_BYTES];
        df_put_be64(key, seq);
        MDB_val k = {8, key}, v;
        if ((rc = mdb_get(txn, df_store_dbi(st, DF_DB_LOG), &k, &v)) != 0)
            return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
        uint8_t *record = malloc(v.mv_size + DF_CHAIN_BYTES);
        if (!record)
            return ENOMEM;
        df_chain_digest(v.mv_data, v.mv_size, digest);
        memcpy(record, digest, DF_CHAIN_BYTES);
        memcpy(record + DF_CHAIN_BYTES, v.mv_data, v.mv_size);
        MDB_val nv = {v.mv_size + DF_CHAIN_BYTES, record};
        rc = mdb_put(txn, df_store_dbi(st, DF_DB_LOG), &k, &nv, 0);
        free(record);
        if (rc == 0)
            rc = chain_extend(st, txn, seq, digest);
    }
    return rc ? rc : df_store_meta_put(st, txn, "digests_added_at", last);
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

/* A redacted record: the digest of its bytes now, REDACTED_MARK, the digest
 * of its bytes as first recorded (the chain's), then the bytes now. The mark
 * stands where an unredacted record has its map's first byte, and msgpack
 * uses 0xc1 for nothing, so the record says which it is; the redacted bytes
 * keep a check against damage, and the chain's digest stays 32 bytes before
 * the event in both forms. */
#define REDACTED_MARK   0xc1
#define REDACTED_HEADER (2 * DF_CHAIN_BYTES + 1)

static bool record_redacted(const MDB_val *record)
{
    return record->mv_size >= REDACTED_HEADER &&
           ((const uint8_t *)record->mv_data)[DF_CHAIN_BYTES] == REDACTED_MARK;
}

/* Where the event's bytes start in a record. */
static size_t record_header(const MDB_val *record)
{
    return record_redacted(record) ? REDACTED_HEADER : DF_CHAIN_BYTES;
}

static bool record_intact(const MDB_val *record)
{
    uint8_t digest[DF_CHAIN_BYTES];
    if (record->mv_size < DF_CHAIN_BYTES)
        return false;
    size_t header = record_header(record);
    df_chain_digest((const uint8_t *)record->mv_data + header, record->mv_size - header, digest);
    return sodium_memcmp(digest, record->mv_data, DF_CHAIN_BYTES) == 0;
}

/* The event's bytes in a log record checked against its digest. */
static int record_event(df_store *st, uint64_t seq, const MDB_val *record, MDB_val *event)
{
    if (!record_intact(record)) {
        df_store_note_corrupt(st, seq);
        return DF_STORE_ECORRUPT;
    }
    size_t header = record_header(record);
    *event = (MDB_val){record->mv_size - header, (uint8_t *)record->mv_data + header};
    return 0;
}

const uint8_t *df_store_record_chain_digest(const MDB_val *record)
{
    return (const uint8_t *)record->mv_data + record_header(record) - DF_CHAIN_BYTES;
}

bool df_store_record_redacted(const MDB_val *record)
{
    return record_redacted(record);
}

int df_store_record_check(const MDB_val *record)
{
    return record_intact(record) ? 0 : DF_STORE_ECORRUPT;
}

int df_store_log_redact(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len)
{
    uint8_t key[8], chain_digest[DF_CHAIN_BYTES];
    df_put_be64(key, seq);
    MDB_val k = {8, key}, record;
    int rc = mdb_get(txn, df_store_dbi(st, DF_DB_LOG), &k, &record);
    if (rc != 0)
        return rc;
    if (!record_intact(&record)) {
        df_store_note_corrupt(st, seq);
        return DF_STORE_ECORRUPT;
    }
    memcpy(chain_digest, df_store_record_chain_digest(&record), DF_CHAIN_BYTES);
    MDB_val v = {len + REDACTED_HEADER, NULL};
    if ((rc = mdb_put(txn, df_store_dbi(st, DF_DB_LOG), &k, &v, MDB_RESERVE)) != 0)
        return rc;
    uint8_t *out = v.mv_data;
    df_chain_digest(data, len, out);
    out[DF_CHAIN_BYTES] = REDACTED_MARK;
    memcpy(out + DF_CHAIN_BYTES + 1, chain_digest, DF_CHAIN_BYTES);
    memcpy(out + REDACTED_HEADER, data, len);
    return 0;
}

int df_store_log_put(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len)
{
    uint8_t key[8], digest[DF_CHAIN_BYTES];
    df_chain_digest(data, len, digest);
    df_put_be64(key, seq);
    MDB_val k = {8, key}, v = {len + DF_CHAIN_BYTES, NULL};
    int rc = mdb_put(txn, df_store_dbi(st, DF_DB_LOG), &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc != 0)
        return rc;
    memcpy(v.mv_data, digest, DF_CHAIN_BYTES);
    memcpy((uint8_t *)v.mv_data + DF_CHAIN_BYTES, data, len);
    return chain_extend(st, txn, seq, digest);
}

int df_store_log_get(df_store *st, MDB_txn *txn, uint64_t seq, MDB_val *out)
{
    uint8_t key[8];
    df_put_be64(key, seq);
    MDB_val k = {8, key}, record;
    int rc = mdb_get(txn, df_store_dbi(st, DF_DB_LOG), &k, &record);
    return rc != 0 ? rc : record_event(st, seq, &record, out);
}

uint64_t df_store_log_last(df_store *st, MDB_txn *txn)
{
    return counter_last(txn, df_store_dbi(st, DF_DB_LOG));
}

typedef struct checked_scan {
    df_store *st;
    df_log_each each;
    void *ctx;
    int rc;
} checked_scan;

static int checked_each(void *ctx, uint64_t seq, const MDB_val *record)
{
    checked_scan *c = ctx;
    MDB_val event;
    if ((c->rc = record_event(c->st, seq, record, &event)) != 0)
        return 1;
    return c->each(c->ctx, seq, &event);
}

int df_store_log_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit, df_log_each each,
                      void *ctx)
{
    checked_scan c = {st, each, ctx, 0};
    int rc = counter_scan(txn, df_store_dbi(st, DF_DB_LOG), after, limit, checked_each, &c);
    return rc ? rc : c.rc;
}

const uint8_t *df_store_log_digest(const MDB_val *event)
{
    return (const uint8_t *)event->mv_data - DF_CHAIN_BYTES;
}

bool df_store_log_redacted(const MDB_val *event)
{
    uint8_t digest[DF_CHAIN_BYTES];
    df_chain_digest(event->mv_data, event->mv_size, digest);
    return sodium_memcmp(digest, df_store_log_digest(event), DF_CHAIN_BYTES) != 0;
}

typedef struct chain_walk {
    df_store *st;
    uint8_t *hash;
    int rc;
} chain_walk;

static int chain_walk_each(void *ctx, uint64_t seq, const MDB_val *record)
{
    chain_walk *w = ctx;
    if (record->mv_size < DF_CHAIN_BYTES) {
        df_store_note_corrupt(w->st, seq);
        w->rc = DF_STORE_ECORRUPT;
        return 1;
    }
    df_chain_next(w->hash, df_store_record_chain_digest(record), w->hash);
    return 0;
}

int df_store_chain_at(df_store *st, MDB_txn *txn, uint64_t seq, uint8_t hash[DF_CHAIN_BYTES])
{
    uint64_t from = 0;
    memset(hash, 0, DF_CHAIN_BYTES);
    if (seq == 0)
        return 0;
    uint8_t key[8];
    df_put_be64(key, seq);
    MDB_cursor *cur;
    MDB_val k = {8, key}, v;
    int rc = mdb_cursor_open(txn, df_store_dbi(st, DF_DB_CHAIN), &cur);
    if (rc != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && !(k.mv_size == 8 && df_get_be64(k.mv_data) == seq))
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8 && v.mv_size == DF_CHAIN_BYTES && df_get_be64(k.mv_data) <= seq) {
        from = df_get_be64(k.mv_data);
        memcpy(hash, v.mv_data, DF_CHAIN_BYTES);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (from == seq)
        return 0;
    chain_walk w = {st, hash, 0};
    rc = counter_scan(txn, df_store_dbi(st, DF_DB_LOG), from, seq - from, chain_walk_each, &w);
    return rc ? rc : w.rc;
}

int df_store_rejected_put(df_store *st, MDB_txn *txn, uint64_t id, const void *data, size_t len)
{
    return counter_put(txn, df_store_dbi(st, DF_DB_REJECTED), id, data, len);
}

uint64_t df_store_rejected_last(df_store *st, MDB_txn *txn)
{
    return counter_last(txn, df_store_dbi(st, DF_DB_REJECTED));
}

int df_store_rejected_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit,
                           df_log_each each, void *ctx)
{
    return counter_scan(txn, df_store_dbi(st, DF_DB_REJECTED), after, limit, each, ctx);
}

int df_store_move_put(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len)
{
    return counter_put(txn, df_store_dbi(st, DF_DB_MOVES), seq, data, len);
}

uint64_t df_store_moves_last(df_store *st, MDB_txn *txn)
{
    return counter_last(txn, df_store_dbi(st, DF_DB_MOVES));
}

int df_store_moves_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit, df_log_each each,
                        void *ctx)
{
    return counter_scan(txn, df_store_dbi(st, DF_DB_MOVES), after, limit, each, ctx);
}

int df_store_move_get(df_store *st, MDB_txn *txn, uint64_t seq, MDB_val *out)
{
    uint8_t key[8];
    df_put_be64(key, seq);
    MDB_val k = {8, key};
    return mdb_get(txn, df_store_dbi(st, DF_DB_MOVES), &k, out);
}

int df_store_move_replace(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len)
{
    uint8_t key[8];
    df_put_be64(key, seq);
    MDB_val k = {8, key}, v = {len, (void *)data};
    return mdb_put(txn, df_store_dbi(st, DF_DB_MOVES), &k, &v, 0);
}
