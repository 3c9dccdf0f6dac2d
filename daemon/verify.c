/* verify.c: `dealflowd --verify`: each log record is checked against its
 * digest, the seqs against their order, the chain against its checkpoints
 * and its head; nothing is written, so the directory of a running dealflowd
 * can be verified too. */
#include "verify.h"

#include <lmdb.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keys.h"
#include "store.h"

/* What the walking child tells its parent, in memory they share: progress as
 * it goes, so that a child killed by a fault still says how far it got. */
typedef struct walk {
    uint64_t count;
    uint64_t redacted; /* records whose bytes were redacted by design */
    uint64_t last_good;
    uint64_t damaged_seq; /* 0: none */
    uint8_t head[DF_CHAIN_BYTES];
    char message[256];
} walk;

static int walk_fail(walk *w, uint64_t seq, const char *message)
{
    w->damaged_seq = seq;
    snprintf(w->message, sizeof(w->message), "%s", message);
    return 1;
}

static bool stored_hash(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t len, MDB_val *v)
{
    MDB_val k = {len, (void *)key};
    return mdb_get(txn, dbi, &k, v) == 0 && v->mv_size == DF_CHAIN_BYTES;
}

static int walk_log(MDB_txn *txn, MDB_dbi log, MDB_dbi chain, bool has_chain,
                    uint64_t short_checks_from, walk *w)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t hash[DF_CHAIN_BYTES] = {0};
    int rc = mdb_cursor_open(txn, log, &cur);
    if (rc != 0) {
        snprintf(w->message, sizeof(w->message), "cannot read the log: %s", mdb_strerror(rc));
        return 1;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t expected = w->last_good + 1;
        if (k.mv_size != 8 || df_get_be64(k.mv_data) != expected) {
            mdb_cursor_close(cur);
            return walk_fail(w, expected, "the log does not hold this seq next");
        }
        MDB_val event;
        df_log_proof proof;
        if (df_store_record_read(short_checks_from, expected, &v, &event, &proof) != 0) {
            mdb_cursor_close(cur);
            return walk_fail(w, expected, "the event does not match its digest");
        }
        /* a redacted record was checked against the digest of its redacted
         * bytes; the chain goes on with the digest of the bytes first recorded */
        w->redacted += proof.redacted;
        df_chain_next(hash, proof.digest, hash);
        uint8_t key[8];
        MDB_val kept;
        df_put_be64(key, expected);
        if (has_chain && stored_hash(txn, chain, key, 8, &kept) &&
            memcmp(kept.mv_data, hash, DF_CHAIN_BYTES) != 0) {
            mdb_cursor_close(cur);
            return walk_fail(w, expected, "the chain's hash kept here does not match the digests");
        }
        w->last_good = expected;
        w->count++;
        memcpy(w->head, hash, DF_CHAIN_BYTES);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        w->damaged_seq = w->last_good + 1;
        snprintf(w->message, sizeof(w->message), "cannot read the log after seq %llu: %s",
                 (unsigned long long)w->last_good, mdb_strerror(rc));
        return 1;
    }
    return 0;
}

/* The walk itself, in the child. */
static int walk_store(const char *dir, walk *w)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta, chain;
    int rc = mdb_env_create(&env);
    if (rc == 0 && (rc = mdb_env_set_maxdbs(env, 16)) == 0)
        rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD, 0);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        snprintf(w->message, sizeof(w->message), "cannot open the store: %s", mdb_strerror(rc));
        return 1;
    }
    if ((rc = mdb_dbi_open(txn, "log", 0, &log)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", 0, &meta)) != 0) {
        snprintf(w->message, sizeof(w->message), "the store holds no log: %s", mdb_strerror(rc));
        return 1;
    }
    static const char format_key[] = "format";
    MDB_val k = {sizeof(format_key) - 1, (void *)format_key}, format;
    uint64_t version = 0;
    if (mdb_get(txn, meta, &k, &format) == 0 && format.mv_size == 8)
        memcpy(&version, format.mv_data, 8);
    if (version < 2) {
        snprintf(w->message, sizeof(w->message),
                 "the store was written before events had digests: start dealflowd on it once "
                 "to compute them");
        mdb_txn_abort(txn);
        mdb_env_close(env);
        return 1;
    }
    /* format 2 kept every event's whole digest; 3 from short_checks_from on
     * keeps a short check */
    uint64_t short_checks_from = UINT64_MAX;
    static const char short_key[] = DF_SHORT_CHECKS_KEY;
    MDB_val sk = {sizeof(short_key) - 1, (void *)short_key}, from;
    if (version >= 3) {
        if (mdb_get(txn, meta, &sk, &from) != 0 || from.mv_size != 8) {
            snprintf(w->message, sizeof(w->message),
                     "the store's meta does not say where short checks start (%s)", short_key);
            mdb_txn_abort(txn);
            mdb_env_close(env);
            return 1;
        }
        memcpy(&short_checks_from, from.mv_data, 8);
    }
    bool has_chain = mdb_dbi_open(txn, "chain", 0, &chain) == 0;
    int failed = walk_log(txn, log, chain, has_chain, short_checks_from, w);
    MDB_val head;
    static const char head_key[] = "chain_head";
    if (!failed && w->count > 0 &&
        (!stored_hash(txn, meta, head_key, sizeof(head_key) - 1, &head) ||
         memcmp(head.mv_data, w->head, DF_CHAIN_BYTES) != 0))
        failed = walk_fail(w, w->last_good, "the chain head kept does not match the digests");
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return failed;
}

int df_verify(const char *dir)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (stat(path, &sb) != 0 || sb.st_size == 0) {
        fprintf(stderr, "dealflowd: %s holds no store (data.mdb is missing or empty)\n", dir);
        return 1;
    }
    walk *w = mmap(NULL, sizeof(*w), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w == MAP_FAILED) {
        perror("dealflowd: mmap");
        return 1;
    }
    memset(w, 0, sizeof(*w));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("dealflowd: fork");
        return 1;
    }
    if (pid == 0)
        _exit(walk_store(dir, w));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    int result = 1;
    if (WIFSIGNALED(status)) {
        fprintf(stderr,
                "dealflowd: the store in %s is damaged at seq %llu: reading it faulted (signal "
                "%d); the last good seq is %llu\n",
                dir, (unsigned long long)(w->last_good + 1), WTERMSIG(status),
                (unsigned long long)w->last_good);
    } else if (WEXITSTATUS(status) != 0 && w->damaged_seq) {
        fprintf(stderr, "dealflowd: the store in %s is damaged at seq %llu: %s\n", dir,
                (unsigned long long)w->damaged_seq, w->message);
    } else if (WEXITSTATUS(status) != 0) {
        fprintf(stderr, "dealflowd: %s: %s\n", dir, w->message);
    } else {
        char hex[2 * DF_CHAIN_BYTES + 1];
        sodium_bin2hex(hex, sizeof(hex), w->head, DF_CHAIN_BYTES);
        const char *plural = w->count == 1 ? "" : "s";
        if (w->redacted > 0)
            printf("%llu event%s, %llu redacted, chain head %s\n", (unsigned long long)w->count,
                   plural, (unsigned long long)w->redacted, hex);
        else
            printf("%llu event%s, chain head %s\n", (unsigned long long)w->count, plural, hex);
        result = 0;
    }
    munmap(w, sizeof(*w));
    return result;
}
