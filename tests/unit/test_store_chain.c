/* test_store_chain.c: the store's chain of digests: a store written before
 * digests gets them once, one of format 2 keeps its records' whole digests
 * while new records get short checks, a record that no longer matches its
 * digest is named, and a data.mdb replaced by another store's is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "keys.h"
#include "store.h"
#include "verify.h"

static char dir[] = "/tmp/dealflow-test-chain-XXXXXX";
static char other[] = "/tmp/dealflow-test-chain-other-XXXXXX";
static char format2[] = "/tmp/dealflow-test-chain-format2-XXXXXX";

static const char *const EVENTS[] = {"\x81\xa2id\xa1"
                                     "a",
                                     "\x81\xa2id\xa1"
                                     "b",
                                     "\x81\xa2id\xa1"
                                     "c"};
#define NEVENTS 3

static void remove_dir(const char *path)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", path);
    CHECK(system(cmd) == 0);
}

/* Writes a store of an older format by hand: in format 1 a log record is
 * the event's bytes alone; in format 2 the event's whole digest, then its
 * bytes, with the chain's head (left in head) in meta. */
static void write_old_store(const char *path, uint64_t format, uint8_t head[DF_CHAIN_BYTES])
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    memset(head, 0, DF_CHAIN_BYTES);
    CHECK(mdb_env_create(&env) == 0);
    CHECK(mdb_env_set_maxdbs(env, 16) == 0);
    CHECK(mdb_env_set_mapsize(env, 16u << 20) == 0);
    CHECK(mdb_env_open(env, path, 0, 0640) == 0);
    CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    CHECK(mdb_dbi_open(txn, "log", MDB_CREATE, &log) == 0);
    CHECK(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta) == 0);
    for (int i = 0; i < NEVENTS; i++) {
        uint8_t key[8], record[64];
        size_t len = strlen(EVENTS[i]), digest = format >= 2 ? DF_CHAIN_BYTES : 0;
        if (digest) {
            df_chain_digest(EVENTS[i], len, record);
            df_chain_next(head, record, head);
        }
        memcpy(record + digest, EVENTS[i], len);
        df_put_be64(key, (uint64_t)i + 1);
        MDB_val k = {8, key}, v = {digest + len, record};
        CHECK(mdb_put(txn, log, &k, &v, 0) == 0);
    }
    MDB_val k = {6, "format"}, v = {8, &format};
    CHECK(mdb_put(txn, meta, &k, &v, 0) == 0);
    if (format >= 2) {
        k = (MDB_val){10, "chain_head"}, v = (MDB_val){DF_CHAIN_BYTES, head};
        CHECK(mdb_put(txn, meta, &k, &v, 0) == 0);
    }
    CHECK(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
}

static void test_old_store_gets_digests(void)
{
    df_store *st;
    df_error err;
    MDB_txn *txn;
    uint8_t hash[DF_CHAIN_BYTES] = {0}, digest[DF_CHAIN_BYTES], head[DF_CHAIN_BYTES];
    write_old_store(dir, 1, head);
    CHECK(df_store_open(&st, dir, 16, &err) == 0);
    CHECK(df_store_read_begin(st, &txn) == 0);
    for (int i = 0; i < NEVENTS; i++) {
        MDB_val v;
        CHECK(df_store_log_get(st, txn, (uint64_t)i + 1, &v) == 0);
        CHECK(v.mv_size == strlen(EVENTS[i]) && memcmp(v.mv_data, EVENTS[i], v.mv_size) == 0);
        df_chain_digest(EVENTS[i], strlen(EVENTS[i]), digest);
        df_log_proof proof;
        CHECK(df_store_log_proof(st, txn, (uint64_t)i + 1, &proof) == 0);
        CHECK(memcmp(proof.digest, digest, DF_CHAIN_BYTES) == 0 && !proof.redacted);
        df_chain_next(hash, digest, hash);
        CHECK(df_store_chain_at(st, txn, (uint64_t)i + 1, head) == 0);
        CHECK(memcmp(head, hash, DF_CHAIN_BYTES) == 0);
    }
    CHECK(df_store_chain_head(st, txn, head) == 0);
    CHECK(memcmp(head, hash, DF_CHAIN_BYTES) == 0);
    uint64_t added = 0, format = 0;
    CHECK(df_store_meta_get(st, txn, "digests_added_at", &added) == 0);
    CHECK_INT(added, NEVENTS);
    CHECK(df_store_meta_get(st, txn, "format", &format) == 0);
    CHECK_INT(format, DF_STORE_FORMAT);
    df_store_read_end(st, txn);

    /* the chain goes on from there, and is the same after a reopen */
    CHECK(df_store_write_begin(st, &txn) == 0);
    CHECK(df_store_log_put(st, txn, NEVENTS + 1, "\x80", 1) == 0);
    CHECK(df_store_write_commit(st, txn) == 0);
    df_chain_digest("\x80", 1, digest);
    df_chain_next(hash, digest, hash);
    df_store_close(st);
    CHECK(df_store_open(&st, dir, 16, &err) == 0);
    CHECK(df_store_read_begin(st, &txn) == 0);
    CHECK(df_store_chain_head(st, txn, head) == 0);
    CHECK(memcmp(head, hash, DF_CHAIN_BYTES) == 0);
    /* the records written before keep their whole digest, the new one a
     * short check; the chain walks both */
    uint64_t short_from = 0;
    CHECK(df_store_meta_get(st, txn, DF_SHORT_CHECKS_KEY, &short_from) == 0);
    CHECK_INT(short_from, NEVENTS + 1);
    for (uint64_t seq = 1; seq <= NEVENTS + 1; seq++) {
        uint8_t key[8];
        df_put_be64(key, seq);
        MDB_val k = {8, key}, record, event;
        CHECK(mdb_get(txn, df_store_dbi(st, DF_DB_LOG), &k, &record) == 0);
        CHECK(df_store_record_read(short_from, seq, &record, &event, NULL) == 0);
        CHECK_INT(record.mv_size - event.mv_size, seq <= NEVENTS ? DF_CHAIN_BYTES : 8);
        /* read as the other form, it does not pass */
        CHECK(df_store_record_read(seq <= NEVENTS ? 1 : UINT64_MAX, seq, &record, &event, NULL) !=
              0);
    }
    CHECK(df_store_chain_at(st, txn, NEVENTS + 1, head) == 0);
    CHECK(memcmp(head, hash, DF_CHAIN_BYTES) == 0);
    df_store_read_end(st, txn);
    df_store_close(st);
}

/* The check bytes a record of seq holds before its event (after the
 * redaction mark and first digest of a redacted one). */
static size_t record_check_bytes(df_store *st, MDB_txn *txn, uint64_t seq)
{
    uint8_t key[8];
    df_put_be64(key, seq);
    MDB_val k = {8, key}, record, event;
    df_log_proof proof;
    CHECK(mdb_get(txn, df_store_dbi(st, DF_DB_LOG), &k, &record) == 0);
    CHECK(df_store_record_read(df_store_short_checks_from(st), seq, &record, &event, &proof) == 0);
    return record.mv_size - event.mv_size - (proof.redacted ? 1 + DF_CHAIN_BYTES : 0);
}

/* A store of format 2 keeps its records with whole digests; records from
 * then on have short checks; redactions of both forms keep the digest the
 * chain holds; `--verify` passes at every step. */
static void test_format2_store(void)
{
    df_store *st;
    df_error err;
    MDB_txn *txn;
    uint8_t hash[DF_CHAIN_BYTES], head[DF_CHAIN_BYTES], digest[DF_CHAIN_BYTES];
    static const char fourth[] = "\x81\xa2id\xa1"
                                 "d";
    static const char redacted[] = "\x80";
    write_old_store(format2, 2, hash);
    CHECK_INT(df_verify(format2), 0);
    CHECK(df_store_open(&st, format2, 16, &err) == 0);
    CHECK_INT(df_store_short_checks_from(st), NEVENTS + 1);
    CHECK(df_store_write_begin(st, &txn) == 0);
    CHECK(df_store_log_put(st, txn, NEVENTS + 1, fourth, strlen(fourth)) == 0);
    CHECK(df_store_write_commit(st, txn) == 0);
    df_chain_digest(fourth, strlen(fourth), digest);
    df_chain_next(hash, digest, hash);
    /* one record of each form redacted */
    CHECK(df_store_write_begin(st, &txn) == 0);
    CHECK(df_store_log_redact(st, txn, 2, redacted, 1) == 0);
    CHECK(df_store_log_redact(st, txn, NEVENTS + 1, redacted, 1) == 0);
    CHECK(df_store_write_commit(st, txn) == 0);
    CHECK(df_store_read_begin(st, &txn) == 0);
    for (uint64_t seq = 1; seq <= NEVENTS + 1; seq++) {
        df_log_proof proof;
        const char *first = seq <= NEVENTS ? EVENTS[seq - 1] : fourth;
        CHECK_INT(record_check_bytes(st, txn, seq), seq <= NEVENTS ? DF_CHAIN_BYTES : 8);
        CHECK(df_store_log_proof(st, txn, seq, &proof) == 0);
        df_chain_digest(first, strlen(first), digest);
        CHECK(memcmp(proof.digest, digest, DF_CHAIN_BYTES) == 0);
        CHECK(proof.redacted == (seq == 2 || seq == NEVENTS + 1));
    }
    CHECK(df_store_chain_head(st, txn, head) == 0);
    CHECK(memcmp(head, hash, DF_CHAIN_BYTES) == 0);
    CHECK(df_store_chain_at(st, txn, NEVENTS + 1, head) == 0);
    CHECK(memcmp(head, hash, DF_CHAIN_BYTES) == 0);
    df_store_read_end(st, txn);
    df_store_close(st);
    CHECK_INT(df_verify(format2), 0);
}

/* Damage to a record's bytes is named by its seq. */
static void test_damage_named(void)
{
    df_store *st;
    df_error err;
    MDB_txn *txn;
    MDB_val v;
    CHECK(df_store_open(&st, dir, 16, &err) == 0);
    CHECK(df_store_write_begin(st, &txn) == 0);
    /* the record's last byte (the event's) flipped */
    uint8_t record[4096], key[8];
    df_put_be64(key, 2);
    MDB_val k = {sizeof key, key}, raw;
    CHECK(mdb_get(txn, df_store_dbi(st, DF_DB_LOG), &k, &raw) == 0);
    size_t len = raw.mv_size;
    CHECK(len <= sizeof record);
    memcpy(record, raw.mv_data, len);
    record[len - 1] ^= 1;
    MDB_val damaged = {len, record};
    CHECK(mdb_put(txn, df_store_dbi(st, DF_DB_LOG), &k, &damaged, 0) == 0);
    CHECK_INT(df_store_log_get(st, txn, 2, &v), DF_STORE_ECORRUPT);
    CHECK_INT(df_store_corrupt_seq(st), 2);
    CHECK_INT(df_store_log_get(st, txn, 1, &v), 0);
    mdb_txn_abort(txn);
    df_store_close(st);
}

/* A data.mdb that is another store's is refused. */
static void test_foreign_refused(void)
{
    df_store *st;
    df_error err;
    char from[128], to[128];
    CHECK(df_store_open(&st, other, 16, &err) == 0);
    df_store_close(st);
    snprintf(from, sizeof(from), "%s/data.mdb", other);
    snprintf(to, sizeof(to), "%s/data.mdb", dir);
    CHECK(rename(from, to) == 0);
    CHECK_INT(df_store_open(&st, dir, 16, &err), DF_EUNAVAILABLE);
    CHECK(strstr(err.message, "another store") != NULL);
}

static bool make_dirs(void)
{
    CHECK(mkdtemp(dir) != NULL);
    CHECK(mkdtemp(other) != NULL);
    CHECK(mkdtemp(format2) != NULL);
    return true;
}

static void remove_dirs(void)
{
    remove_dir(dir);
    remove_dir(other);
    remove_dir(format2);
}

static const df_test tests[] = {
    {"old_store_gets_digests", test_old_store_gets_digests},
    {"format2_store", test_format2_store},
    {"damage_named", test_damage_named},
    {"foreign_refused", test_foreign_refused},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = make_dirs, .teardown = remove_dirs};
    return df_test_main(argc, argv, tests, &fixture);
}
