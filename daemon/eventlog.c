/* eventlog.c: the log of recorded events and the chain over it. Each record
 * is a check of the event's bytes (the start of their BLAKE2b-256 digest)
 * followed by the bytes (a redacted one also keeps the digest of its bytes
 * as first recorded); the chain hashes each digest onto the hash before it,
 * its head kept in meta and a checkpoint every CHECKPOINT_EVERY events, in
 * the commit that appends the event. Reads check a record against its
 * digest and name the seq of one that does not match. The rejected items
 * and the stored moves are keyed by a counter as the log is. */
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

/* A record is a check of the event's bytes, then the bytes. The check is
 * the first CHECK_BYTES of their BLAKE2b-256 digest, which a read computes
 * whole to compare: the digest the chain and proofs need is so had for
 * nothing, and not kept. Records of a store an older dealflowd wrote, before
 * the store's short_checks_from, keep the whole digest (LONG_CHECK_BYTES).
 *
 * A redacted record: the check of its bytes now, REDACTED_MARK, the digest
 * of its bytes as first recorded (the chain's, which can no longer be
 * computed), then the bytes now. The mark stands where an unredacted record
 * has its map's first byte, and msgpack uses 0xc1 for nothing, so the
 * record says which it is. */
#define CHECK_BYTES      8
#define LONG_CHECK_BYTES DF_CHAIN_BYTES
#define REDACTED_MARK    0xc1

static size_t check_bytes(uint64_t short_checks_from, uint64_t seq)
{
    return seq >= short_checks_from ? CHECK_BYTES : LONG_CHECK_BYTES;
}

int df_store_record_read(uint64_t short_checks_from, uint64_t seq, const MDB_val *record,
                         MDB_val *event, df_log_proof *proof)
{
    const uint8_t *b = record->mv_data;
    size_t check = check_bytes(short_checks_from, seq);
    if (record->mv_size < check + 1)
        return DF_STORE_ECORRUPT;
    bool redacted = b[check] == REDACTED_MARK;
    size_t header = redacted ? check + 1 + DF_CHAIN_BYTES : check;
    uint8_t now[DF_CHAIN_BYTES];
    if (record->mv_size < header)
        return DF_STORE_ECORRUPT;
    df_chain_digest(b + header, record->mv_size - header, now);
    if (sodium_memcmp(now, b, check) != 0)
        return DF_STORE_ECORRUPT;
    *event = (MDB_val){record->mv_size - header, (uint8_t *)b + header};
    if (proof) {
        proof->redacted = redacted;
        memcpy(proof->digest, redacted ? b + check + 1 : now, DF_CHAIN_BYTES);
    }
    return 0;
}

/* The event's bytes in the record of seq, checked; the seq is named when
 * they do not match. */
static int record_event(df_store *st, uint64_t seq, const MDB_val *record, MDB_val *event,
                        df_log_proof *proof)
{
    int rc = df_store_record_read(df_store_short_checks_from(st), seq, record, event, proof);
    if (rc != 0)
        df_store_note_corrupt(st, seq);
    return rc;
}

static int record_get(df_store *st, MDB_txn *txn, uint64_t seq, MDB_val *event, df_log_proof *proof)
{
    uint8_t key[8];
    df_put_be64(key, seq);
    MDB_val k = {8, key}, record;
    int rc = mdb_get(txn, df_store_dbi(st, DF_DB_LOG), &k, &record);
    return rc != 0 ? rc : record_event(st, seq, &record, event, proof);
}

/* Writes a record of len bytes: its check (of the bytes now) and, when
 * first is not NULL, the redaction mark and the digest first recorded. */
static int record_put(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len,
                      const uint8_t *first, unsigned flags)
{
    uint8_t key[8], digest[DF_CHAIN_BYTES];
    size_t check = check_bytes(df_store_short_checks_from(st), seq);
    size_t header = first ? check + 1 + DF_CHAIN_BYTES : check;
    df_chain_digest(data, len, digest);
    df_put_be64(key, seq);
    MDB_val k = {8, key}, v = {len + header, NULL};
    int rc = mdb_put(txn, df_store_dbi(st, DF_DB_LOG), &k, &v, flags | MDB_RESERVE);
    if (rc != 0)
        return rc;
    uint8_t *out = v.mv_data;
    memcpy(out, digest, check);
    if (first) {
        out[check] = REDACTED_MARK;
        memcpy(out + check + 1, first, DF_CHAIN_BYTES);
    }
    memcpy(out + header, data, len);
    return first ? 0 : chain_extend(st, txn, seq, digest);
}

int df_store_log_redact(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len)
{
    MDB_val event;
    df_log_proof proof;
    int rc = record_get(st, txn, seq, &event, &proof);
    if (rc != 0)
        return rc;
    return record_put(st, txn, seq, data, len, proof.digest, 0);
}

int df_store_log_put(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len)
{
    return record_put(st, txn, seq, data, len, NULL, MDB_APPEND);
}

int df_store_log_get(df_store *st, MDB_txn *txn, uint64_t seq, MDB_val *out)
{
    return record_get(st, txn, seq, out, NULL);
}

int df_store_log_proof(df_store *st, MDB_txn *txn, uint64_t seq, df_log_proof *out)
{
    MDB_val event;
    return record_get(st, txn, seq, &event, out);
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
    if ((c->rc = record_event(c->st, seq, record, &event, NULL)) != 0)
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

typedef struct chain_walk {
    df_store *st;
    uint8_t *hash;
    int rc;
} chain_walk;

static int chain_walk_each(void *ctx, uint64_t seq, const MDB_val *record)
{
    chain_walk *w = ctx;
    MDB_val event;
    df_log_proof proof;
    if ((w->rc = record_event(w->st, seq, record, &event, &proof)) != 0)
        return 1;
    df_chain_next(w->hash, proof.digest, w->hash);
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
