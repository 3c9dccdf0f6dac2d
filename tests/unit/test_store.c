/* test_store.c: the store and the writer together, without sockets: batches
 * recorded in one transaction, duplicates, expect, refusals kept in the
 * rejected store, late events refolded, indexes and aggregates, and all of
 * it surviving a close and reopen of the environment. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "keys.h"
#include "record.h"
#include "report.h"
#include "store.h"
#include "writer.h"

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int done_count;

static void on_done(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&done_mu);
    done_count++;
    pthread_cond_signal(&done_cv);
    pthread_mutex_unlock(&done_mu);
}

static df_store *store;
static df_writer *writer;
static char dir[] = "/tmp/dealflow-test-store-XXXXXX";

static void start(void)
{
    df_error err;
    CHECK(df_store_open(&store, dir, 256, &err) == 0);
    CHECK(df_writer_start(&writer, store, on_done, NULL, &err) == 0);
}

static void stop(void)
{
    df_writer_stop(writer);
    df_store_close(store);
    writer = NULL;
    store = NULL;
}

/* An event built from key/value pairs; values starting with '#' are integers. */
static void pack_event(msgpack_sbuffer *sb, const char *const *kv)
{
    msgpack_packer pk;
    size_t n = 0;
    while (kv[2 * n])
        n++;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; i < n; i++) {
        df_pack_cstr(&pk, kv[2 * i]);
        if (kv[2 * i + 1][0] == '#')
            msgpack_pack_int64(&pk, atoll(kv[2 * i + 1] + 1));
        else
            df_pack_cstr(&pk, kv[2 * i + 1]);
    }
}

/* Records the events (NULL-terminated lists of key/value pairs) as one batch
 * and returns it once committed. Over "append" when appended, else ingest. */
static df_batch *record(bool appended, const char *const *const *events)
{
    static int request;
    df_batch *b = df_batch_new();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (size_t i = 0; events[i]; i++) {
        pack_event(&sb, events[i]);
        df_batch_add(b, sb.data, sb.size, 1700000000000LL, appended ? &request : NULL);
    }
    msgpack_sbuffer_destroy(&sb);
    pthread_mutex_lock(&done_mu);
    int before = done_count;
    df_writer_submit(writer, b);
    while (done_count == before)
        pthread_cond_wait(&done_cv, &done_mu);
    pthread_mutex_unlock(&done_mu);
    CHECK(df_writer_take(writer) == b);
    return b;
}

/* Asks the writer to flush what it holds in memory and waits until it has
 * tried; returns its counters then. */
static df_writer_counters try_flush(void)
{
    pthread_mutex_lock(&done_mu);
    int before = done_count;
    df_writer_request_flush(writer);
    while (done_count == before)
        pthread_cond_wait(&done_cv, &done_mu);
    pthread_mutex_unlock(&done_mu);
    return df_writer_counters_get(writer);
}

/* The same, and it worked. */
static void flush(void)
{
    df_writer_counters c = try_flush();
    CHECK_INT(c.flushed_seq, c.committed_seq);
}

#define EVENTS(...) ((const char *const *const[]){__VA_ARGS__, NULL})
#define EV(...)     ((const char *const[]){__VA_ARGS__, NULL})

static void get_deal(const char *id, df_deal *d)
{
    MDB_txn *txn;
    flush();
    CHECK(df_store_read_begin(store, &txn) == 0);
    df_deal_init(d, id, strlen(id));
    CHECK(df_store_deal_get(store, txn, d) == 0);
    df_store_read_end(store, txn);
}

static uint64_t stage_count(const char *pipeline, const char *stage)
{
    static df_pipelines pl;
    static df_figures figures;
    MDB_txn *txn;
    flush();
    CHECK(df_store_read_begin(store, &txn) == 0);
    CHECK(df_store_pipelines_load(store, txn, &pl) == 0);
    const df_pipeline *p = df_pipelines_find(&pl, pipeline, strlen(pipeline));
    CHECK(p != NULL);
    df_figures_init(&figures, p, 0);
    CHECK(df_report_load(store, txn, p, DF_SCOPE_ALL, (df_str){NULL, 0}, &figures,
                         DF_REPORT_METRICS) == 0);
    df_store_read_end(store, txn);
    const df_stage_figures *s = df_figures_stage(&figures, stage, strlen(stage));
    return s ? (uint64_t)s->now_in.count : 0;
}

static void test_append_and_duplicates(void)
{
    df_batch *b = record(
        true,
        EVENTS(EV("id", "e1", "type", "stage", "deal", "d1", "stage", "lead", "at", "#1000",
                  "amount", "#500"),
               EV("id", "e2", "type", "activity", "deal", "d1", "kind", "call", "at", "#2000"),
               EV("id", "e1", "type", "stage", "deal", "d1", "stage", "lead", "at", "#1000"),
               EV("id", "e3", "type", "stage", "deal", "d1", "stage", "nowhere", "at", "#3000"),
               EV("id", "e4", "type", "stage", "deal", "d2", "stage", "qualified", "at", "#1500",
                  "amount", "#100")));
    CHECK_INT(b->count, 5);
    CHECK_INT(b->items[0].seq, 1);
    CHECK(!b->items[0].dup);
    CHECK_INT(b->items[1].seq, 2);
    CHECK(b->items[2].dup);
    CHECK_INT(b->items[2].seq, 1);
    CHECK_INT(b->items[3].error, DF_EUNKNOWN_STAGE);
    CHECK_INT(b->items[4].seq, 3);
    CHECK_INT(b->nmoves, 2);
    CHECK_INT(b->moves[0].prev, 0);
    CHECK_INT(b->moves[1].prev, 1);
    df_batch_free(b);

    df_deal d;
    get_deal("d1", &d);
    CHECK_INT(d.version, 2);
    CHECK_INT(d.activities, 1);
    CHECK_INT(d.stage_since, 1000);
    CHECK_INT(stage_count("default", "lead"), 1);
    CHECK_INT(stage_count("default", "qualified"), 1);
    CHECK_INT(df_writer_counters_get(writer).committed_seq, 3);
    CHECK_INT(df_writer_counters_get(writer).duplicates, 1);
}

static void test_expect(void)
{
    df_batch *b = record(
        true,
        EVENTS(EV("id", "x1", "type", "activity", "deal", "d1", "kind", "call", "expect", "#1"),
               EV("id", "x2", "type", "activity", "deal", "d1", "kind", "call", "expect", "#2"),
               EV("id", "x3", "type", "activity", "deal", "new", "kind", "note", "expect", "#0")));
    CHECK_INT(b->items[0].error, DF_ECONFLICT);
    CHECK_INT(b->items[1].error, 0);
    CHECK_INT(b->items[1].seq, 4);
    CHECK_INT(b->items[2].error, 0);
    df_batch_free(b);
}

static void test_rejected_over_ingest(void)
{
    df_batch *b = record(
        false, EVENTS(EV("id", "r1", "type", "bogus", "deal", "d9"),
                      EV("id", "r2", "type", "stage", "deal", "d9", "stage", "lead", "seq", "#5")));
    CHECK_INT(b->rejected, 2);
    CHECK_INT(df_writer_counters_get(writer).rejected, 2);
    df_batch_free(b);
}

static void test_late_event_refolds(void)
{
    df_batch *b = record(true, EVENTS(EV("id", "l1", "type", "stage", "deal", "late", "stage",
                                         "lead", "at", "#1000"),
                                      EV("id", "l2", "type", "stage", "deal", "late", "stage",
                                         "proposal", "at", "#5000")));
    df_batch_free(b);
    /* qualified at 3000 arrives last: the deal stays in proposal, but it
     * spent 2000 ms in lead and 2000 ms in qualified */
    b = record(true, EVENTS(EV("id", "l3", "type", "stage", "deal", "late", "stage", "qualified",
                               "at", "#3000")));
    CHECK_INT(b->nmoves, 0);
    df_batch_free(b);
    df_deal d;
    get_deal("late", &d);
    CHECK_STR(d.stage.len == 8 ? "proposal" : "?", "proposal");
    CHECK_INT(d.stage_since, 5000);
    CHECK_INT(d.version, 3);
    CHECK_INT(d.nstage_times, 2);
    int64_t lead = -1, qualified = -1;
    for (int i = 0; i < d.nstage_times; i++) {
        if (df_name_eq(&d.stage_times[i].stage, "lead", 4))
            lead = d.stage_times[i].ms;
        if (df_name_eq(&d.stage_times[i].stage, "qualified", 9))
            qualified = d.stage_times[i].ms;
    }
    CHECK_INT(lead, 2000);
    CHECK_INT(qualified, 2000);
    CHECK_INT(stage_count("default", "proposal"), 1);
    CHECK_INT(stage_count("default", "qualified"), 1); /* d2 only */
}

static void test_restart(void)
{
    uint64_t seq = df_writer_counters_get(writer).committed_seq;
    stop();
    start();
    CHECK_INT(df_writer_counters_get(writer).committed_seq, seq);
    CHECK_INT(df_writer_counters_get(writer).duplicates, 1);
    df_batch *b =
        record(true, EVENTS(EV("id", "e2", "type", "activity", "deal", "d1", "kind", "call"),
                            EV("id", "n1", "type", "stage", "deal", "d1", "stage", "won")));
    CHECK(b->items[0].dup);
    CHECK_INT(b->items[0].seq, 2);
    CHECK_INT(b->items[1].seq, seq + 1);
    CHECK_INT(b->nmoves, 1);
    CHECK_INT(b->moves[0].prev, 7); /* l2 was the last move before the restart */
    CHECK_INT(b->moves[0].status, DF_WON);
    df_batch_free(b);
    CHECK_INT(stage_count("default", "lead"), 0);
    CHECK_INT(stage_count("default", "won"), 1);
}

/* A store whose derived state an older dealflowd laid out is rebuilt from
 * its log: the same figures, ids still known, and flushes that succeed. */
static void test_older_derived_format(void)
{
    df_error err;
    MDB_txn *txn;
    flush();
    uint64_t seq = df_writer_counters_get(writer).committed_seq;
    stop();
    CHECK(df_store_open(&store, dir, 256, &err) == 0);
    CHECK(df_store_write_begin(store, &txn) == 0);
    uint64_t last_move = df_store_moves_last(store, txn);
    CHECK(last_move > 0);
    CHECK(df_store_meta_put(store, txn, "derived_format", DF_DERIVED_FORMAT - 1) == 0);
    CHECK(df_store_write_commit(store, txn) == 0);
    df_store_close(store);
    start();
    CHECK_INT(df_writer_counters_get(writer).committed_seq, seq);
    /* the deal.moved notifications from before the rebuild are all kept,
     * so that a subscriber resuming from an older seq still catches up */
    CHECK(df_store_write_begin(store, &txn) == 0);
    CHECK_INT(df_store_moves_last(store, txn), last_move);
    mdb_txn_abort(txn);
    CHECK_INT(stage_count("default", "lead"), 0);
    CHECK_INT(stage_count("default", "won"), 1);
    df_batch *b =
        record(true, EVENTS(EV("id", "n1", "type", "stage", "deal", "d1", "stage", "won"),
                            EV("id", "o1", "type", "stage", "deal", "o", "stage", "lead")));
    CHECK(b->items[0].dup);
    CHECK_INT(b->items[1].seq, seq + 1);
    df_batch_free(b);
    CHECK_INT(stage_count("default", "lead"), 1);
    stop();
    start();
    CHECK_INT(stage_count("default", "lead"), 1);
    CHECK_INT(stage_count("default", "won"), 1);
}

/* Stops, and sets key in the store's meta to value. */
static void stop_and_put_meta(const char *key, uint64_t value)
{
    df_error err;
    MDB_txn *txn;
    stop();
    CHECK(df_store_open(&store, dir, 256, &err) == 0);
    CHECK(df_store_write_begin(store, &txn) == 0);
    CHECK(df_store_meta_put(store, txn, key, value) == 0);
    CHECK(df_store_write_commit(store, txn) == 0);
    df_store_close(store);
    store = NULL;
}

/* Stops, marks the derived state as laid out by an older dealflowd, and
 * starts again: the start rebuilds it from the log. */
static void restart_rebuilding(void)
{
    stop_and_put_meta("derived_format", DF_DERIVED_FORMAT - 1);
    start();
}

/* The strings of one generated event, and its key/value pairs. */
typedef struct generated {
    char id[32], deal[16], at[24];
    const char *kv[13];
} generated;

/* Records n generated events, make(done, arg, g) building each, in batches
 * of 64 over "append" when appended, else ingest; every one is recorded. */
static void record_generated(int n, bool appended, void (*make)(int, const void *, generated *),
                             const void *arg)
{
    static generated g[64];
    for (int done = 0; done < n;) {
        const char *const *events[65];
        int k = 0;
        for (; k < 64 && done < n; k++, done++) {
            make(done, arg, &g[k]);
            events[k] = g[k].kv;
        }
        events[k] = NULL;
        df_batch *b = record(appended, events);
        for (int i = 0; i < k; i++)
            CHECK(b->items[i].error == 0);
        df_batch_free(b);
    }
}

/* Event `done` of many over a few deals: stages back and forth,
 * activities, some of them late. */
static void make_many(int done, const void *arg, generated *g)
{
    static const char *const stages[] = {"lead", "qualified", "proposal", "won", "lost"};
    (void)arg;
    snprintf(g->id, sizeof g->id, "many-%d", done);
    snprintf(g->deal, sizeof g->deal, "m%d", done % 37);
    /* every seventh event comes a day before the others */
    snprintf(g->at, sizeof g->at, "#%lld",
             1690000000000LL + done * 60000LL - (done % 7 == 0) * 86400000LL);
    const char **e = g->kv;
    int j = 0;
    e[j++] = "id", e[j++] = g->id, e[j++] = "deal", e[j++] = g->deal;
    e[j++] = "at", e[j++] = g->at;
    if (done % 3 == 0) {
        e[j++] = "type", e[j++] = "activity", e[j++] = "kind", e[j++] = "call";
    } else {
        e[j++] = "type", e[j++] = "stage", e[j++] = "stage";
        e[j++] = stages[done % 5];
    }
    e[j] = NULL;
}

static void record_many(int n)
{
    record_generated(n, true, make_many, NULL);
}

/* What the store holds of those deals and their stages, packed. */
static void figures_of_many(msgpack_sbuffer *out)
{
    static const char *const stages[] = {"lead", "qualified", "proposal", "won", "lost"};
    msgpack_sbuffer_clear(out);
    for (int i = 0; i < 5; i++) {
        uint64_t n = stage_count("default", stages[i]);
        msgpack_sbuffer_write(out, (const char *)&n, sizeof(n));
    }
    for (int i = 0; i < 37; i++) {
        char id[16];
        df_deal d;
        uint8_t buf[DF_DEAL_RECORD_MAX];
        snprintf(id, sizeof id, "m%d", i);
        get_deal(id, &d);
        msgpack_sbuffer_write(out, (const char *)buf, df_deal_encode(&d, buf));
    }
}

/* A rebuild folds a log longer than the events read ahead at a time into
 * the same deals and figures; a record that no longer matches its digest
 * stops it, named by its seq, and the start fails. */
static void test_rebuild_reads_ahead(void)
{
    df_error err;
    MDB_txn *txn;
    msgpack_sbuffer before, after;
    msgpack_sbuffer_init(&before);
    msgpack_sbuffer_init(&after);
    record_many(3000);
    figures_of_many(&before);
    uint64_t seq = df_writer_counters_get(writer).committed_seq;
    restart_rebuilding();
    CHECK_INT(df_writer_counters_get(writer).committed_seq, seq);
    figures_of_many(&after);
    CHECK(before.size == after.size && memcmp(before.data, after.data, before.size) == 0);
    df_batch *b =
        record(true, EVENTS(EV("id", "many-2999", "type", "stage", "deal", "m0", "stage", "won")));
    CHECK(b->items[0].dup);
    df_batch_free(b);

    /* drop the derived state again, then damage a record near the end */
    uint64_t damaged = seq - 5;
    uint8_t record_bytes[4096], key[8];
    size_t len = 0;
    stop_and_put_meta("derived_format", DF_DERIVED_FORMAT - 1);
    CHECK(df_store_open(&store, dir, 256, &err) == 0);
    CHECK(df_store_write_begin(store, &txn) == 0);
    df_put_be64(key, damaged);
    MDB_val k = {sizeof key, key}, raw;
    CHECK(mdb_get(txn, df_store_dbi(store, DF_DB_LOG), &k, &raw) == 0);
    len = raw.mv_size;
    CHECK(len <= sizeof record_bytes);
    memcpy(record_bytes, raw.mv_data, len);
    record_bytes[len - 1] ^= 1;
    MDB_val bad = {len, record_bytes};
    CHECK(mdb_put(txn, df_store_dbi(store, DF_DB_LOG), &k, &bad, 0) == 0);
    CHECK(df_store_write_commit(store, txn) == 0);
    CHECK(df_writer_start(&writer, store, on_done, NULL, &err) != 0);
    writer = NULL;
    CHECK_INT(df_store_corrupt_seq(store), damaged);
    /* repaired, the store folds again */
    record_bytes[len - 1] ^= 1;
    CHECK(df_store_write_begin(store, &txn) == 0);
    CHECK(mdb_put(txn, df_store_dbi(store, DF_DB_LOG), &k, &bad, 0) == 0);
    CHECK(df_store_write_commit(store, txn) == 0);
    df_store_close(store);
    start();
    figures_of_many(&after);
    CHECK(before.size == after.size && memcmp(before.data, after.data, before.size) == 0);
    msgpack_sbuffer_destroy(&before);
    msgpack_sbuffer_destroy(&after);
}

/* A data directory written by a newer dealflowd is refused, untouched. */
static void test_newer_format(void)
{
    df_error err;
    stop_and_put_meta("format", DF_STORE_FORMAT + 1);
    CHECK(df_store_open(&store, dir, 256, &err) == DF_EUNAVAILABLE);
    CHECK(strstr(err.message, "newer") != NULL);
    CHECK(df_store_open(&store, dir, 256, &err) == DF_EUNAVAILABLE);
}

static bool make_store(void)
{
    CHECK(mkdtemp(dir) != NULL);
    start();
    return true;
}

static void remove_store(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* A deal record keeps source, last open stage and loss reason; a record of
 * the format before them still reads, as a deal without them. */
/* The deal of test_deal_record_formats as an older dealflowd stored it:
 * format 2 or 3, integers as 8 bytes in the machine's order. */
static size_t fixed_record(uint8_t *out, int format)
{
    uint8_t *p = out;
#define U8(v)  (*p++ = (uint8_t)(v))
#define U64(v) (memcpy(p, &(uint64_t){(uint64_t)(v)}, 8), p += 8)
#define STR(s) (U8(strlen(s)), memcpy(p, s, strlen(s)), p += strlen(s))
    U8(format);
    U8(1); /* has a stage */
    STR("default");
    STR("lost");
    U64(0); /* stage_since */
    U8(DF_LOST);
    U8(0);
    U64(0), U64(0); /* last activity, created */
    U8(DF_NUM_NONE);
    STR(""), STR(""), STR("");
    U64(0); /* close date */
    U64(0); /* activities */
    U64(3); /* version */
    U64(0), U64(0), U64(0), U64(0), U64(0);
    for (int i = 0; i < 5; i++)
        U64(INT64_MIN), U64(0);
    U8(1);
    STR("meeting");
    U64(99);
    if (format == 3) {
        U8(7); /* a source, a last open stage, a reason */
        STR("web");
        U64(1234), U64(7);
        STR("meeting");
        STR("price");
    }
#undef U8
#undef U64
#undef STR
    return (size_t)(p - out);
}

static void test_deal_record_formats(void)
{
    df_deal d, back;
    df_deal_init(&d, "r1", 2);
    d.has_stage = true;
    df_name_set(&d.stage, "lost", 4);
    d.stage_outcome = DF_LOST;
    d.version = 3;
    d.has_source = true;
    df_name_set(&d.source, "web", 3);
    d.source_pos = (df_pos){1234, 7};
    d.has_last_open = true;
    df_name_set(&d.last_open, "meeting", 7);
    d.has_reason = true;
    df_name_set(&d.reason, "price", 5);
    d.nstage_times = 1;
    df_name_set(&d.stage_times[0].stage, "meeting", 7);
    d.stage_times[0].ms = 99;
    uint8_t record[DF_DEAL_RECORD_MAX];
    size_t len = df_deal_encode(&d, record);
    df_deal_init(&back, "r1", 2);
    CHECK_INT(df_deal_decode(record, len, &back), 0);
    CHECK(back.has_source && df_name_eq(&back.source, "web", 3));
    CHECK(back.source_pos.at == 1234 && back.source_pos.seq == 7);
    CHECK(back.has_last_open && df_name_eq(&back.last_open, "meeting", 7));
    CHECK(back.has_reason && df_name_eq(&back.reason, "price", 5));
    CHECK(back.nstage_times == 1 && back.stage_times[0].ms == 99);

    /* the bytes stay within the bound in the worst case: every integer takes
     * its 10 bytes, every name and stage time is there */
    for (int i = 0; i < DF_MAX_STAGES; i++) {
        char name[DF_MAX_NAME];
        memset(name, 'a' + i % 26, sizeof name);
        df_name_set(&d.stage_times[i].stage, name, sizeof name);
        d.stage_times[i].ms = INT64_MAX;
    }
    d.nstage_times = DF_MAX_STAGES;
    d.last_seq = d.version = d.activities = UINT64_MAX;
    d.stage_since = d.created = d.last_at = INT64_MAX;
    CHECK(df_deal_encode(&d, record) <= DF_DEAL_RECORD_MAX);
    df_deal_init(&back, "r1", 2);
    CHECK_INT(df_deal_decode(record, df_deal_encode(&d, record), &back), 0);
    CHECK(back.last_seq == UINT64_MAX && back.stage_since == INT64_MAX);
    CHECK(back.nstage_times == DF_MAX_STAGES && back.stage_times[7].ms == INT64_MAX);

    /* formats 2 and 3, written by older dealflowds: integers of 8 bytes;
     * 2 ends after the stage times */
    uint8_t old[256];
    for (int format = 2; format <= 3; format++) {
        size_t n = fixed_record(old, format);
        df_deal_init(&back, "r1", 2);
        CHECK_INT(df_deal_decode(old, n, &back), 0);
        CHECK(back.has_stage && df_name_eq(&back.stage, "lost", 4));
        CHECK(back.nstage_times == 1 && back.stage_times[0].ms == 99 && back.version == 3);
        if (format == 2) {
            CHECK(!back.has_source && back.source.len == 0 && back.source_pos.at == INT64_MIN);
            CHECK(!back.has_last_open && !back.has_reason);
            /* with bytes after it, it is damaged */
            CHECK(df_deal_decode(old, n + 1, &back) != 0);
        } else {
            CHECK(back.has_source && df_name_eq(&back.source, "web", 3));
            CHECK(back.source_pos.at == 1234 && back.source_pos.seq == 7);
            CHECK(back.has_reason && df_name_eq(&back.reason, "price", 5));
            /* cut short, it is damaged */
            CHECK(df_deal_decode(old, n - 1, &back) != 0);
        }
    }
}

/* Damaged aggregate rows (LMDB has no checksums) are left out of the
 * figures: a month row whose day no time falls on, a value that is not
 * packed sums, a key cut short. The deal of this test stays in lead. */
static void test_damaged_aggregate_rows(void)
{
    df_batch *b = record(true, EVENTS(EV("id", "dmg-1", "type", "stage", "deal", "dmg", "stage",
                                         "lead", "at", "#86400000")));
    df_batch_free(b);
    uint64_t before = stage_count("default", "lead");
    CHECK(before >= 1);
    df_key month = {.len = 0};
    month.len = df_agg_prefix(month.b, (df_str){"default", 7}, NULL);
    month.b[month.len++] = 'c';
    df_key_add_name(&month, "lead", 4);
    month.b[month.len++] = DF_OPEN;
    df_key whole = month, cut = month;
    df_key_add_sortable(&month, INT64_MAX);
    df_key_add_sortable(&whole, -31); /* December 1969, a month of no deal */
    uint8_t count_one[] = {0x01, 0x02}, not_sums[] = {0xff, 0xff, 0xff};
    MDB_txn *txn;
    CHECK(df_store_write_begin(store, &txn) == 0);
    MDB_dbi aggs = df_store_dbi(store, DF_DB_AGGS);
    MDB_val k = {month.len, month.b}, v = {sizeof count_one, count_one};
    CHECK(mdb_put(txn, aggs, &k, &v, 0) == 0);
    k = (MDB_val){whole.len, whole.b};
    v = (MDB_val){sizeof not_sums, not_sums};
    CHECK(mdb_put(txn, aggs, &k, &v, 0) == 0);
    k = (MDB_val){cut.len + 3, cut.b};
    v = (MDB_val){sizeof count_one, count_one};
    CHECK(mdb_put(txn, aggs, &k, &v, 0) == 0);
    CHECK(df_store_write_commit(store, txn) == 0);
    CHECK_INT(stage_count("default", "lead"), before);
}

/* Records count activity events of ids "<prefix>-<n>" over a few deals and
 * returns the seq of the first. */
static uint64_t record_ids(const char *prefix, int count)
{
    uint64_t first = 0;
    for (int done = 0; done < count;) {
        static char ids[64][32], deals[64][16];
        const char *kv[64][9];
        const char *const *events[65];
        int k = 0;
        for (; k < 64 && done < count; k++, done++) {
            snprintf(ids[k], sizeof ids[k], "%s-%d", prefix, done);
            snprintf(deals[k], sizeof deals[k], "ids%d", done % 7);
            const char **e = kv[k];
            e[0] = "id", e[1] = ids[k], e[2] = "type", e[3] = "activity", e[4] = "deal";
            e[5] = deals[k], e[6] = "kind", e[7] = "call", e[8] = NULL;
            events[k] = kv[k];
        }
        events[k] = NULL;
        df_batch *b = record(true, events);
        for (int i = 0; i < k; i++) {
            CHECK(!b->items[i].dup && b->items[i].error == 0);
            if (first == 0)
                first = b->items[i].seq;
        }
        df_batch_free(b);
        flush();
    }
    return first;
}

/* Sends the ids again and checks that each is a duplicate of its event. */
static void check_ids_known(const char *prefix, int count, uint64_t first)
{
    for (int i = 0; i < count; i += 97) {
        char id[32];
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        df_batch *b =
            record(true, EVENTS(EV("id", id, "type", "activity", "deal", "x", "kind", "call")));
        CHECK(b->items[0].dup);
        CHECK_INT(b->items[0].seq, first + (uint64_t)i);
        df_batch_free(b);
    }
}

/* Ids are kept as hashes, checked against the log: every id recorded is
 * known again, with its seq, after flushes of the store's own and after a
 * rebuild (which writes them in one sorted pass), and no id that was never
 * recorded is taken for one. The sanitizer build keeps 16 bits of each
 * hash (DF_ID_HASH_BITS), so that there the ids collide by the hundred. */
static uint64_t hashed_first;

static void test_ids_by_hash(void)
{
    MDB_txn *txn;
    uint64_t first = hashed_first = record_ids("hashed", 3000);
    check_ids_known("hashed", 3000, first);
    CHECK(df_store_read_begin(store, &txn) == 0);
    for (int i = 0; i < 3000; i++) {
        char id[32];
        uint64_t seq;
        snprintf(id, sizeof id, "never-%d", i);
        CHECK_INT(df_store_id_get(store, txn, id, strlen(id), &seq), MDB_NOTFOUND);
        snprintf(id, sizeof id, "hashed-%d", i);
        CHECK_INT(df_store_id_get(store, txn, id, strlen(id), &seq), 0);
        CHECK_INT(seq, first + (uint64_t)i);
    }
    df_store_read_end(store, txn);
    restart_rebuilding();
    check_ids_known("hashed", 3000, first);
}

/* A flush that committed steps and never ended (the daemon stopped during
 * it) left derived state part newer than derived_seq says: the start drops
 * it and folds the log again, so the figures are the log's. The damage
 * here (aggregates gone, a deal's projection gone) stands for whatever a
 * step had written. */
static void test_flush_left_open(void)
{
    MDB_txn *txn;
    df_error err;
    msgpack_sbuffer before, after;
    msgpack_sbuffer_init(&before);
    msgpack_sbuffer_init(&after);
    record_many(400);
    figures_of_many(&before);
    uint64_t seq = df_writer_counters_get(writer).committed_seq;
    stop_and_put_meta(DF_FLUSH_OPEN_KEY, 1);
    CHECK(df_store_open(&store, dir, 256, &err) == 0);
    CHECK(df_store_write_begin(store, &txn) == 0);
    CHECK(mdb_drop(txn, df_store_dbi(store, DF_DB_AGGS), 0) == 0);
    MDB_val k = {2, "m3"};
    CHECK(mdb_del(txn, df_store_dbi(store, DF_DB_DEALS), &k, NULL) == 0);
    CHECK(df_store_write_commit(store, txn) == 0);
    df_store_close(store);
    store = NULL;
    start();
    CHECK_INT(df_writer_counters_get(writer).committed_seq, seq);
    figures_of_many(&after);
    CHECK(before.size == after.size && memcmp(before.data, after.data, before.size) == 0);
    uint64_t open = 1;
    CHECK(df_store_read_begin(store, &txn) == 0);
    CHECK(df_store_meta_get(store, txn, DF_FLUSH_OPEN_KEY, &open) == 0);
    CHECK_INT(open, 0);
    df_store_read_end(store, txn);
    msgpack_sbuffer_destroy(&before);
    msgpack_sbuffer_destroy(&after);
}

static int collect_seq(void *ctx, uint64_t seq)
{
    msgpack_sbuffer *sb = ctx;
    msgpack_sbuffer_write(sb, (const char *)&seq, sizeof seq);
    return 0;
}

/* What the store holds of the part-way test's deals: every stage's count,
 * each deal's projection and its events. */
/* Rounds 0 to 8 of the part-way test make 300 deals each; the later ones
 * 4 deals with many events, so that most of their flush is new ids. */
#define PART_WAY_ROUNDS 17
static int part_way_deals(int round)
{
    return round <= 8 ? 300 : 4;
}

static void snapshot_part_way(msgpack_sbuffer *out)
{
    static const char *const stages[] = {"lead", "qualified", "proposal", "won", "lost"};
    MDB_txn *txn;
    msgpack_sbuffer_clear(out);
    for (int i = 0; i < 5; i++) {
        uint64_t n = stage_count("default", stages[i]);
        msgpack_sbuffer_write(out, (const char *)&n, sizeof(n));
    }
    flush();
    CHECK(df_store_read_begin(store, &txn) == 0);
    for (int round = 0; round < PART_WAY_ROUNDS; round++) {
        for (int i = 0; i < part_way_deals(round); i++) {
            char id[24];
            df_deal d;
            uint8_t buf[DF_DEAL_RECORD_MAX];
            snprintf(id, sizeof id, "pw%d-%d", round, i);
            df_deal_init(&d, id, strlen(id));
            CHECK(df_store_deal_get(store, txn, &d) == 0);
            msgpack_sbuffer_write(out, (const char *)buf, df_deal_encode(&d, buf));
            CHECK(df_store_deal_event_scan(store, txn, id, strlen(id), 0, collect_seq, out) == 0);
        }
    }
    df_store_read_end(store, txn);
}

/* Event `done` of a round of the part-way test over its new deals; each
 * deal ends in lead. */
typedef struct part_way_round {
    int round, deals;
} part_way_round;

static void make_part_way(int done, const void *arg, generated *g)
{
    static const char *const stages[] = {"lead", "qualified", "proposal", "won", "lead"};
    const part_way_round *r = arg;
    /* the counter first, so that ids fall under many keys (store.c) */
    snprintf(g->id, sizeof g->id, "%d-part-way-%d", done, r->round);
    snprintf(g->deal, sizeof g->deal, "pw%d-%d", r->round, done % r->deals);
    snprintf(g->at, sizeof g->at, "#%lld", 1695000000000LL + done * 1000LL);
    const char **e = g->kv;
    int j = 0;
    e[j++] = "id", e[j++] = g->id, e[j++] = "deal", e[j++] = g->deal;
    e[j++] = "at", e[j++] = g->at, e[j++] = "type", e[j++] = "stage";
    e[j++] = "stage", e[j++] = stages[(done / r->deals) % 5];
    e[j] = NULL;
}

static void record_part_way(int round, int n, int deals)
{
    part_way_round r = {round, deals};
    record_generated(n, false, make_part_way, &r);
}

/* A flush that fails part way, after steps were committed (the file may
 * not grow: RLIMIT_FSIZE stands for a full disk), is taken up again once
 * it may: the store then holds what a rebuild from the log makes, and the
 * ids of the events are known once. Each round lets the file grow by
 * another margin, so that the flush fails in another of its steps. */
static void test_flush_fails_part_way(void)
{
    enum { EVENTS = 1500 };
    struct stat sb;
    off_t grown = 0; /* by the first round's flush, which may grow the file */
    int failed = 0;
    struct rlimit was, limit;
    char path[64];
    msgpack_sbuffer after, rebuilt;
    msgpack_sbuffer_init(&after);
    msgpack_sbuffer_init(&rebuilt);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    CHECK(getrlimit(RLIMIT_FSIZE, &was) == 0);
    signal(SIGXFSZ, SIG_IGN);
    for (int round = 0; round < PART_WAY_ROUNDS; round++) {
        flush();
        record_part_way(round, EVENTS, part_way_deals(round));
        CHECK(stat(path, &sb) == 0);
        if (round == 0) {
            flush();
            grown = sb.st_size;
            CHECK(stat(path, &sb) == 0);
            grown = sb.st_size - grown;
            CHECK(grown > 0);
            continue;
        }
        /* none, an eighth, a quarter, ... of what the first flush took,
         * or of a quarter of it when the flush is mostly ids */
        off_t margin = round <= 8 ? grown * (round - 1) / 8 : grown * (round - 8) / 32;
        limit = was;
        limit.rlim_cur = (rlim_t)(sb.st_size + margin);
        CHECK(setrlimit(RLIMIT_FSIZE, &limit) == 0);
        /* a flush after a quiet spell may have taken the events already */
        failed += try_flush().flush_failing;
        CHECK(setrlimit(RLIMIT_FSIZE, &was) == 0);
        flush();
    }
    CHECK(failed >= PART_WAY_ROUNDS / 2);
    snapshot_part_way(&after);
    df_batch *b = record(
        true, EVENTS(EV("id", "7-part-way-1", "type", "stage", "deal", "pw1-7", "stage", "won")));
    CHECK(b->items[0].dup);
    df_batch_free(b);
    restart_rebuilding();
    snapshot_part_way(&rebuilt);
    CHECK(after.size == rebuilt.size && memcmp(after.data, rebuilt.data, after.size) == 0);
    msgpack_sbuffer_destroy(&after);
    msgpack_sbuffer_destroy(&rebuilt);
}

static int steps_taken;

/* A step that keeps the transaction (the test aborts it), and counts. */
static int count_step(void *ctx, MDB_txn **txn)
{
    (void)ctx;
    (void)txn;
    steps_taken++;
    return 0;
}

/* A flush taken up again after a failure that had committed part of it puts
 * ids and deals' events the store holds again: each is kept once. A put
 * that says every seq is new refuses one that is not. Ids are put in
 * steps between keys. */
static void test_puts_again(void)
{
    MDB_txn *txn;
    MDB_stat st;
    const uint64_t seqs[] = {900001, 900002, 900003};
    flush();
    CHECK(df_store_write_begin(store, &txn) == 0);
    CHECK(df_store_deal_events_put(store, txn, "again", 5, seqs, 2, DF_PUT_AFTER) == 0);
    CHECK_INT(df_store_deal_events_put(store, txn, "again", 5, seqs, 3, DF_PUT_AFTER),
              MDB_KEYEXIST);
    CHECK(df_store_deal_events_put(store, txn, "again", 5, seqs, 3, DF_PUT_AGAIN) == 0);
    CHECK(df_store_deal_events_put(store, txn, "again", 5, seqs, 3, DF_PUT_AGAIN) == 0);
    msgpack_sbuffer got;
    msgpack_sbuffer_init(&got);
    CHECK(df_store_deal_event_scan(store, txn, "again", 5, 0, collect_seq, &got) == 0);
    CHECK(got.size == sizeof seqs && memcmp(got.data, seqs, sizeof seqs) == 0);
    msgpack_sbuffer_destroy(&got);

    /* ids the store holds (record_many's), with their seqs, and new ones */
    df_id_seq ids[200];
    char names[200][16];
    for (int i = 0; i < 200; i++) {
        snprintf(names[i], sizeof names[i], i < 100 ? "many-%d" : "again-%d", i);
        ids[i] = (df_id_seq){names[i], strlen(names[i]), 900000 + (uint64_t)i};
        if (i < 100)
            CHECK(df_store_id_get(store, txn, ids[i].id, ids[i].len, &ids[i].seq) == 0);
    }
    MDB_dbi ids_dbi;
    CHECK(mdb_dbi_open(txn, "ids", 0, &ids_dbi) == 0);
    CHECK(mdb_stat(txn, ids_dbi, &st) == 0);
    size_t held = st.ms_entries;
    df_write_steps steps = {count_step, NULL, 10};
    steps_taken = 0;
    CHECK(df_store_ids_put(store, &txn, ids, 200, DF_PUT_AGAIN, &steps) == 0);
    CHECK(steps_taken >= 1);
    CHECK(mdb_stat(txn, ids_dbi, &st) == 0);
    CHECK_INT(st.ms_entries, held + 100);
    CHECK(df_store_ids_put(store, &txn, ids, 200, DF_PUT_AGAIN, NULL) == 0);
    CHECK(mdb_stat(txn, ids_dbi, &st) == 0);
    CHECK_INT(st.ms_entries, held + 100);
    for (int i = 0; i < 100; i++) {
        uint64_t seq = 0;
        CHECK(df_store_id_get(store, txn, ids[i].id, ids[i].len, &seq) == 0);
        CHECK_INT(seq, ids[i].seq);
    }
    mdb_txn_abort(txn);
}

static uint64_t scanned_seqs;

/* The seqs of deal ids0 come in order, one every seventh from the first. */
static int scanned_seq(void *ctx, uint64_t seq)
{
    const uint64_t *skipped = ctx;
    CHECK_INT(seq, hashed_first + 7 * (*skipped + scanned_seqs));
    scanned_seqs++;
    return 0;
}

/* A store whose ids and deals' events an older dealflowd kept one entry a
 * key (no sets of values) has those tables made again in this layout and
 * its derived state rebuilt from the log. */
static void test_older_table_layout(void)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    df_error err;
    flush();
    uint64_t seq = df_writer_counters_get(writer).committed_seq;
    stop();
    CHECK(df_store_open(&store, dir, 256, &err) == 0);
    CHECK(df_store_write_begin(store, &txn) == 0);
    static const char *const tables[] = {"ids", "deal_events"};
    for (int i = 0; i < 2; i++) {
        CHECK(mdb_dbi_open(txn, tables[i], 0, &dbi) == 0);
        CHECK(mdb_drop(txn, dbi, 1) == 0);
        CHECK(mdb_dbi_open(txn, tables[i], MDB_CREATE, &dbi) == 0);
        MDB_val k = {5, "e1xyz"}, v = {8, "12345678"};
        CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
    }
    CHECK(df_store_write_commit(store, txn) == 0);
    df_store_close(store);
    start();
    CHECK_INT(df_writer_counters_get(writer).committed_seq, seq);
    check_ids_known("hashed", 3000, hashed_first);
    flush();
    CHECK(df_store_read_begin(store, &txn) == 0);
    uint64_t skipped = 0;
    scanned_seqs = 0;
    CHECK(df_store_deal_event_scan(store, txn, "ids0", 4, 0, scanned_seq, &skipped) == 0);
    CHECK_INT(scanned_seqs, 429); /* every seventh of the 3 000 */
    skipped = 401;
    scanned_seqs = 0;
    CHECK(df_store_deal_event_scan(store, txn, "ids0", 4, hashed_first + 7 * 400, scanned_seq,
                                   &skipped) == 0);
    CHECK_INT(scanned_seqs, 28);
    df_store_read_end(store, txn);
}

static const df_test tests[] = {
    {"append_and_duplicates", test_append_and_duplicates},
    {"expect", test_expect},
    {"rejected_over_ingest", test_rejected_over_ingest},
    {"late_event_refolds", test_late_event_refolds},
    {"restart", test_restart},
    {"older_derived_format", test_older_derived_format},
    {"rebuild_reads_ahead", test_rebuild_reads_ahead},
    {"ids_by_hash", test_ids_by_hash},
    {"older_table_layout", test_older_table_layout},
    {"flush_left_open", test_flush_left_open},
    {"puts_again", test_puts_again},
    {"flush_fails_part_way", test_flush_fails_part_way},
    /* after every test that counts the deals in lead, before the store is
     * made unreadable */
    {"damaged_aggregate_rows", test_damaged_aggregate_rows},
    {"newer_format", test_newer_format},
    {"deal_record_formats", test_deal_record_formats},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = make_store, .teardown = remove_store};
    return df_test_main(argc, argv, tests, &fixture);
}
