/* store.h: the LMDB layout of dealflow: how the log, the id index, each
 * deal's events, the deal projections, notifications, pipelines and rejected
 * items are keyed (the list indexes in index.h, the per-stage aggregates in
 * aggregates.h). The log is the truth; everything else is derived from it
 * and written by the writer's flushes.
 * Functions return 0 or an LMDB error code (MDB_NOTFOUND when absent). */
#ifndef DF_STORE_H
#define DF_STORE_H

#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregates.h"
#include "fold.h"
#include "index.h"
#include "metrics.h"

/* 2: each log record is the event's 32-byte digest followed by its bytes,
 * and the chain of digests is kept (see "The chain" in PROTOCOL.md). 3: the
 * records from short_checks_from on keep 8 bytes of the digest. */
#define DF_STORE_FORMAT 3
/* The layout of what derives from the log; a store with another is rebuilt
 * from its log when opened. 9: the aggregates of older ones may have lost
 * float amounts that changed while their deal stayed in its stage. */
#define DF_DERIVED_FORMAT 9

typedef struct df_store df_store;

/* Opens (creating when missing) the environment in dir. Returns 0, or
 * DF_EUNAVAILABLE with a message saying what is wrong with the directory. */
int df_store_open(df_store **out, const char *dir, size_t map_mib, df_error *err);
void df_store_close(df_store *st);
/* Replaces data.mdb in dir by a compacted copy of the open store (then
 * close it, unused): the bytes of freed pages are in no file afterwards.
 * Returns 0 or DF_EUNAVAILABLE with a message. */
int df_store_compact(df_store *st, const char *dir, df_error *err);
/* Clears reader slots left by dead processes. */
void df_store_check_readers(df_store *st);
/* Bytes the data file takes on disk. */
uint64_t df_store_disk_bytes(df_store *st);

/* Room on disk and in the map. */
typedef struct df_store_space {
    uint64_t disk_free;  /* bytes free on the store's filesystem (for unprivileged users) */
    uint64_t map_bytes;  /* the map's size */
    uint64_t map_used;   /* bytes of the map in use */
    uint64_t file_bytes; /* the data file's size */
} df_store_space;
df_store_space df_store_space_get(df_store *st);
/* Whether a write transaction of about need bytes fits: 0, ENOSPC when the
 * disk lacks room, or MDB_MAP_FULL when the map does and cannot grow now
 * (it grows only while no transaction is open: call it between them, on
 * the writer thread). */
int df_store_make_room(df_store *st, size_t need);

/* The databases whose records other modules lay out (index.c, aggregates.c;
 * a scan of every deal walks the projections' keys). */
typedef enum df_store_db {
    DF_DB_DEALS,
    DF_DB_INDEX,
    DF_DB_AGGS,
    DF_DB_LOG,
    DF_DB_CHAIN,
    DF_DB_META,
    DF_DB_REJECTED,
    DF_DB_MOVES
} df_store_db;
MDB_dbi df_store_dbi(df_store *st, df_store_db db);

/* A write transaction is begun and committed through these, never
 * mdb_txn_commit, so that what the transaction keeps in memory (the chain's
 * head) is written with it. */
int df_store_write_begin(df_store *st, MDB_txn **txn);
int df_store_write_commit(df_store *st, MDB_txn *txn);
/* Commits txn as one step of a larger write. The step's pages reach the
 * disk before its meta page is written, as in every commit, but the meta
 * page is not waited for: a system crash may undo the last step, never
 * damage the store, and the next commit's sync takes the meta page with
 * it. For writes whose steps need not survive alone (a flush's). */
int df_store_write_step(df_store *st, MDB_txn *txn);
/* A read transaction of its own for a thread other than the loop's, while
 * the map cannot grow (before the writer starts); mdb_txn_abort ends it. */
int df_store_snapshot_begin(df_store *st, MDB_txn **txn);
/* The one read transaction of the calling (loop) thread, renewed. */
int df_store_read_begin(df_store *st, MDB_txn **txn);
void df_store_read_end(df_store *st, MDB_txn *txn);

/* meta: small counters (absent = 0). */
int df_store_meta_get(df_store *st, MDB_txn *txn, const char *key, uint64_t *value);
int df_store_meta_put(df_store *st, MDB_txn *txn, const char *key, uint64_t value);

/* The chain: each event's digest is BLAKE2b-256 of its recorded bytes; the
 * hash at seq is BLAKE2b-256 of the hash at seq - 1 (32 zero bytes at 0)
 * followed by the digest at seq. */
#define DF_CHAIN_BYTES 32
void df_chain_digest(const void *data, size_t len, uint8_t digest[DF_CHAIN_BYTES]);
void df_chain_next(const uint8_t prev[DF_CHAIN_BYTES], const uint8_t digest[DF_CHAIN_BYTES],
                   uint8_t hash[DF_CHAIN_BYTES]);
/* Returned by the log's reads for a record that does not match its digest
 * (an errno, like ENOMEM, so that mdb_strerror still reads well: "Bad
 * message"); df_store_corrupt_seq() then names the last such seq found. */
#define DF_STORE_ECORRUPT EBADMSG
uint64_t df_store_corrupt_seq(df_store *st);
void df_store_note_corrupt(df_store *st, uint64_t seq);
/* A store written before events had digests gets them, and its chain, once
 * (at open, in txn). */
int df_store_add_digests(df_store *st, MDB_txn *txn);

/* The log: seq -> a check of the event's bytes, then the recorded event
 * map (eventlog.c). _put extends the chain in txn; _get and _scan give the
 * event's bytes, checked (DF_STORE_ECORRUPT when they do not match). */
int df_store_log_put(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len);
int df_store_log_get(df_store *st, MDB_txn *txn, uint64_t seq, MDB_val *out);
uint64_t df_store_log_last(df_store *st, MDB_txn *txn);
/* Calls each(ctx, seq, event) for events after `after`, in seq order,
 * until it returns non-zero or limit events were seen. */
typedef int (*df_log_each)(void *ctx, uint64_t seq, const MDB_val *event);
int df_store_log_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit, df_log_each each,
                      void *ctx);
/* What a proof of a recorded event shows besides its bytes: the digest of
 * its bytes as first recorded (the chain's), and whether they were redacted
 * since. */
typedef struct df_log_proof {
    uint8_t digest[DF_CHAIN_BYTES];
    bool redacted;
} df_log_proof;
int df_store_log_proof(df_store *st, MDB_txn *txn, uint64_t seq, df_log_proof *out);
/* Replaces the bytes of the recorded event seq by their redacted form; the
 * record keeps the digest the chain holds and gains a check of its new
 * bytes (see "Redaction" in PROTOCOL.md). */
int df_store_log_redact(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len);
/* Reads a raw log record of seq, for walks of the log's table (verify.c),
 * which pass the store's short_checks_from: 0, or DF_STORE_ECORRUPT when it
 * does not match its check; the event's bytes, and the proof when asked. */
int df_store_record_read(uint64_t short_checks_from, uint64_t seq, const MDB_val *record,
                         MDB_val *event, df_log_proof *proof);
/* The first seq whose record has a short check: records before it were
 * written by a dealflowd that kept each event's whole digest. Kept in meta
 * under this key. */
#define DF_SHORT_CHECKS_KEY "short_checks_from"
uint64_t df_store_short_checks_from(const df_store *st);
/* The chain's hash at seq (32 zero bytes at 0), and at the log's last seq. */
int df_store_chain_at(df_store *st, MDB_txn *txn, uint64_t seq, uint8_t hash[DF_CHAIN_BYTES]);
int df_store_chain_head(df_store *st, MDB_txn *txn, uint8_t hash[DF_CHAIN_BYTES]);
/* The chain's head as a write transaction extends it: read from the store
 * once, then kept here and written once, at commit, rather than got and put
 * for every event. A new write transaction forgets it. */
typedef struct df_chain_tip {
    uint8_t hash[DF_CHAIN_BYTES];
    bool known, unsaved;
} df_chain_tip;
df_chain_tip *df_store_chain_tip(df_store *st);
int df_store_chain_save(df_store *st, MDB_txn *txn);

/* deal.moved notifications as published: seq -> the msgpack body. */
int df_store_move_put(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len);
uint64_t df_store_moves_last(df_store *st, MDB_txn *txn);
/* The one made by the event seq (MDB_NOTFOUND: it moved nothing), and its
 * body replaced (by a redaction). */
int df_store_move_get(df_store *st, MDB_txn *txn, uint64_t seq, MDB_val *out);
int df_store_move_replace(df_store *st, MDB_txn *txn, uint64_t seq, const void *data, size_t len);
int df_store_moves_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit, df_log_each each,
                        void *ctx);

/* The _put functions of ids, each deal's events and projections take
 * `append` when the key comes after every key its table holds, as when a
 * flush fills empty tables in key order: LMDB then fills each page instead
 * of looking for the key's place (MDB_KEYEXIST when the key does not come
 * after them, which is a programmer error). */

/* Whether ids, each deal's events and the projections are empty (a new
 * store, or one whose derived state was dropped to be rebuilt). */
bool df_store_derived_empty(df_store *st, MDB_txn *txn);
/* Drops the derived state (ids, each deal's events, projections, indexes,
 * aggregates) and sets derived_seq to 0, so that the log is folded again
 * from its first event. */
int df_store_derived_drop(df_store *st, MDB_txn *txn);
/* Meta key, 1 while a flush that commits in steps is under way: derived
 * state that was left so is part old and part new, and is rebuilt. */
#define DF_FLUSH_OPEN_KEY "flush_open"
/* Meta key: the derived_seq of the derived state last dropped. A deal with
 * no event after it had its stale spells reported when that state was
 * flushed, so the rebuild's flushes do not report them again. */
#define DF_SPELLS_KNOWN_KEY "spells_known_through"

/* A flush's write of many keys may be committed in steps (recorder.c):
 * called between two keys, a step commits *txn and begins the next one in
 * its place (or leaves NULL there when that fails, returning the error). */
typedef struct df_write_steps {
    int (*step)(void *ctx, MDB_txn **txn);
    void *ctx;
    size_t every; /* values written between two steps, at least */
} df_write_steps;

/* How the values a put of ids or of a deal's events adds relate to what
 * the store holds. A put of many values must never meet one the table
 * holds: under a key that holds one value, LMDB stops at it without an
 * error and leaves the rest unwritten (the store says MDB_CORRUPTED when
 * it counts fewer written than given). */
typedef enum df_put_order {
    DF_PUT_APPEND, /* the table is empty, keys come in order (`append` above) */
    DF_PUT_AFTER,  /* none is held; a deal's seqs come after those it holds */
    DF_PUT_AGAIN,  /* some may be held already (a flush taken up again after a
                      failure that had committed part of it): those are left
                      out, at the cost of a lookup each */
} df_put_order;

/* Event ids: id -> seq, forever. _get finds the id's seq (MDB_NOTFOUND when
 * no event has it); _put adds ids, given in any order, taking steps (NULL:
 * none) between keys. On return, *txn is the transaction to go on with, or
 * NULL after a failed step. */
typedef struct df_id_seq {
    const char *id;
    size_t len;
    uint64_t seq;
} df_id_seq;
int df_store_id_get(df_store *st, MDB_txn *txn, const char *id, size_t len, uint64_t *seq);
int df_store_ids_put(df_store *st, MDB_txn **txn, const df_id_seq *ids, size_t count,
                     df_put_order order, const df_write_steps *steps);

/* Each deal's events: deal -> its seqs. _put adds seqs in ascending order;
 * _scan calls each(ctx, seq) for the deal's seqs after `after`, in order,
 * until it returns non-zero. */
int df_store_deal_events_put(df_store *st, MDB_txn *txn, const char *deal, size_t len,
                             const uint64_t *seqs, size_t count, df_put_order order);
typedef int (*df_seq_each)(void *ctx, uint64_t seq);
int df_store_deal_event_scan(df_store *st, MDB_txn *txn, const char *deal, size_t len,
                             uint64_t after, df_seq_each each, void *ctx);

/* Deal projections. df_store_deal_get takes the id from d->deal. */
int df_store_deal_get(df_store *st, MDB_txn *txn, df_deal *d);
int df_store_deal_put(df_store *st, MDB_txn *txn, const df_deal *d, bool append);
uint64_t df_store_deal_count(df_store *st, MDB_txn *txn);

/* Pipelines: the built-in default overlaid by every stored definition. */
int df_store_pipelines_load(df_store *st, MDB_txn *txn, df_pipelines *pl);
int df_store_pipeline_put(df_store *st, MDB_txn *txn, const df_pipeline *p);
/* The pipelines as they were at the end of the flushed state, so that the
 * log after it is folded again with the definitions it was folded with.
 * _get returns MDB_NOTFOUND when none was kept. */
int df_store_pipelines_snapshot_put(df_store *st, MDB_txn *txn, const df_pipelines *pl);
int df_store_pipelines_snapshot_get(df_store *st, MDB_txn *txn, df_pipelines *pl);

/* Rejected items: id -> msgpack {recv, error, message, raw}. */
int df_store_rejected_put(df_store *st, MDB_txn *txn, uint64_t id, const void *data, size_t len);
uint64_t df_store_rejected_last(df_store *st, MDB_txn *txn);
int df_store_rejected_scan(df_store *st, MDB_txn *txn, uint64_t after, size_t limit,
                           df_log_each each, void *ctx);

#endif
