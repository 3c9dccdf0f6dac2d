/* fuzz_request.c: hostile api requests through the daemon's request
 * checking and every read operation, against a small store opened once in
 * a temporary directory and filled through the real writer. Requests are
 * checked and dispatched as the api socket does; appends are not taken
 * (fuzz_event covers their events). Every reply must be one msgpack map. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "query.h"
#include "read_state.h"

#include "fuzz.h"

#define T0  1700000000000LL
#define DAY DF_DAY_MS
/* when the store received the events: after the last `at`, so that no
 * event is further ahead of its arrival than --max-future allows */
#define RECEIVED (T0 + 10 * DAY)

static df_daemon daemon_state;
static char dir[] = "/tmp/dealflow-fuzz-request-XXXXXX";

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

/* Runs step (a submit or a flush request) and waits until the writer is done. */
static void wait_writer(df_writer *w, df_batch *b)
{
    pthread_mutex_lock(&done_mu);
    int before = done_count;
    if (b)
        df_writer_submit(w, b);
    else
        df_writer_request_flush(w);
    while (done_count == before)
        pthread_cond_wait(&done_cv, &done_mu);
    pthread_mutex_unlock(&done_mu);
}

/* An event from key/value pairs; values starting with '#' are integers. */
static void add_event(df_batch *b, const char *const *kv)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t n = 0;
    while (kv[2 * n])
        n++;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; i < n; i++) {
        df_pack_cstr(&pk, kv[2 * i]);
        if (kv[2 * i + 1][0] == '#')
            msgpack_pack_int64(&pk, atoll(kv[2 * i + 1] + 1) * DAY + T0);
        else
            df_pack_cstr(&pk, kv[2 * i + 1]);
    }
    REQUIRE(df_batch_add(b, sb.data, sb.size, RECEIVED, NULL) != NULL);
    msgpack_sbuffer_destroy(&sb);
}

static void add_pipeline(df_batch *b)
{
    static const char *const stages[][2] = {{"new", "open"}, {"won", "won"}, {"lost", "lost"}};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    df_pack_cstr(&pk, "id");
    df_pack_cstr(&pk, "pl-sales");
    df_pack_cstr(&pk, "type");
    df_pack_cstr(&pk, "pipeline");
    df_pack_cstr(&pk, "pipeline");
    df_pack_cstr(&pk, "sales");
    df_pack_cstr(&pk, "stages");
    msgpack_pack_array(&pk, 3);
    for (int i = 0; i < 3; i++) {
        msgpack_pack_map(&pk, 4);
        df_pack_cstr(&pk, "name");
        df_pack_cstr(&pk, stages[i][0]);
        df_pack_cstr(&pk, "probability");
        msgpack_pack_int(&pk, 50 * i);
        df_pack_cstr(&pk, "rot_days");
        msgpack_pack_int(&pk, i + 1);
        df_pack_cstr(&pk, "outcome");
        df_pack_cstr(&pk, stages[i][1]);
    }
    REQUIRE(df_batch_add(b, sb.data, sb.size, RECEIVED, NULL) != NULL);
    msgpack_sbuffer_destroy(&sb);
}

#define EV(...) add_event(b, (const char *const[]){__VA_ARGS__, NULL})

/* The open environment keeps its files: removing them at once leaves
 * nothing behind however the run ends (libFuzzer exits without atexit). */
static void remove_store_files(void)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", "dealflowd.lock",
                                        "dealflowd.store"};
    char path[sizeof(dir) + 16];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    REQUIRE(rmdir(dir) == 0);
}

/* A store with two pipelines, deals in stages, activities, updates, a late
 * event, a duplicate and a refused event, all flushed. */
static void open_store(void)
{
    df_daemon *d = &daemon_state;
    df_error err;
    REQUIRE(mkdtemp(dir) != NULL);
    REQUIRE(df_store_open(&d->store, dir, 64, &err) == 0);
    REQUIRE(df_writer_start(&d->writer, d->store, on_done, NULL, &err) == 0);
    d->opt.max_message = DF_DEFAULT_MAX_MESSAGE;
    d->filling = df_batch_new();
    d->started_ms = df_now_ms();
    REQUIRE((d->read_state = df_read_state_new()) != NULL);

    df_batch *b = df_batch_new();
    add_pipeline(b);
    EV("id", "a1", "type", "stage", "deal", "deal-a", "stage", "lead", "at", "#0");
    EV("id", "a2", "type", "update", "deal", "deal-a", "owner", "ann", "name", "Acme", "at", "#1");
    EV("id", "a3", "type", "activity", "deal", "deal-a", "kind", "call", "at", "#2");
    EV("id", "a4", "type", "stage", "deal", "deal-a", "stage", "proposal", "at", "#3");
    EV("id", "b1", "type", "stage", "deal", "deal-b", "pipeline", "sales", "stage", "new", "at",
       "#1");
    EV("id", "b2", "type", "stage", "deal", "deal-b", "stage", "won", "owner", "bob", "at", "#4");
    EV("id", "c1", "type", "stage", "deal", "deal-\xc3\xa9", "stage", "won", "at", "#2");
    EV("id", "c2", "type", "stage", "deal", "deal-\xc3\xa9", "stage", "qualified", "at", "#5");
    EV("id", "a0", "type", "stage", "deal", "deal-a", "stage", "qualified", "at", "#-1");
    EV("id", "a1", "type", "stage", "deal", "deal-a", "stage", "lead", "at", "#0");
    EV("id", "bad", "type", "stage", "deal", "deal-a");
    wait_writer(d->writer, b);
    REQUIRE(df_writer_take(d->writer) == b);
    df_batch_free(b);
    wait_writer(d->writer, NULL);
    df_writer_counters c = df_writer_counters_get(d->writer);
    REQUIRE(c.committed_seq >= 9 && c.flushed_seq == c.committed_seq);
    remove_store_files();
}

/* What the api does with the body of a request, answering into pk; an
 * append, which the api would queue, is refused. Everything is flushed: a
 * read that would wait is answered at once. */
static void handle(const char *body, size_t len, msgpack_packer *pk)
{
    if (df_request_handle(&daemon_state, body, len, pk) == DF_HANDLED_APPEND)
        df_pack_error(pk, DF_EBAD_REQUEST, "refused");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        open_store();
        ready = true;
    }
    msgpack_sbuffer reply;
    msgpack_packer pk;
    df_error err;
    msgpack_sbuffer_init(&reply);
    msgpack_packer_init(&pk, &reply, msgpack_sbuffer_write);
    handle((const char *)data, size, &pk);
    REQUIRE(df_msgpack_check(reply.data, reply.size, &err) == 0);
    REQUIRE(df_msgpack_is_map(reply.data, reply.size));
    msgpack_sbuffer_destroy(&reply);
    return 0;
}
