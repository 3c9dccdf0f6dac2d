/* test_client.c: libdealflow against the real daemon: requests and errors, appends
 * retried across a restart, publish, paged iterators, and subscriptions that repair gaps. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "check.h"
#include "dealflow.h"
#include "harness.h"
#include "codec.h"
#include "internal.h"
#include "request.h"

#define WAIT_MS 20000

static it_daemon D;

static df_client *open_client(int timeout_ms, int attempts)
{
    df_client_options opt = {.api = D.api,
                             .ingest = D.ingest,
                             .notify = D.notify,
                             .timeout_ms = timeout_ms,
                             .attempts = attempts};
    df_client *c = NULL;
    df_error err;
    int rc = df_client_open(&c, &opt, &err);
    CHECK_INT(rc, 0);
    return c;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A packed request from relaxed text (see harness.h). */
__attribute__((format(printf, 1, 0))) static msgpack_sbuffer vtext(const char *fmt, va_list ap)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    CHECK(it_vpack(&pk, fmt, ap));
    return sb;
}

__attribute__((format(printf, 1, 2))) static msgpack_sbuffer text(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msgpack_sbuffer sb = vtext(fmt, ap);
    va_end(ap);
    return sb;
}

__attribute__((format(printf, 4, 5))) static int request_text(df_client *c, df_bytes *reply,
                                                              df_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msgpack_sbuffer sb = vtext(fmt, ap);
    va_end(ap);
    int rc = df_request(c, sb.data, sb.size, reply, err);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void pack_stage(msgpack_packer *pk, const char *id, const char *deal, const char *stage)
{
    msgpack_pack_map(pk, 4);
    msgpack_pack_str(pk, 2);
    msgpack_pack_str_body(pk, "id", 2);
    msgpack_pack_str(pk, strlen(id));
    msgpack_pack_str_body(pk, id, strlen(id));
    msgpack_pack_str(pk, 4);
    msgpack_pack_str_body(pk, "type", 4);
    msgpack_pack_str(pk, 5);
    msgpack_pack_str_body(pk, "stage", 5);
    msgpack_pack_str(pk, 4);
    msgpack_pack_str_body(pk, "deal", 4);
    msgpack_pack_str(pk, strlen(deal));
    msgpack_pack_str_body(pk, deal, strlen(deal));
    msgpack_pack_str(pk, 5);
    msgpack_pack_str_body(pk, "stage", 5);
    msgpack_pack_str(pk, strlen(stage));
    msgpack_pack_str_body(pk, stage, strlen(stage));
}

/* Appends n stage events: ids and deals "<tag>-<first + i>", each a new
 * deal, so each one moves a deal and publishes a deal.moved. Returns the
 * seq of the last, or 0. */
static uint64_t append_new_deals(df_client *c, const char *tag, int first, int n, const char *stage)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%06d", tag, first + i);
        pack_stage(&pk, name, name, stage);
    }
    df_append_result *results = calloc((size_t)n, sizeof *results);
    df_error err;
    int rc = df_append(c, sb.data, sb.size, results, (size_t)n, &err);
    msgpack_sbuffer_destroy(&sb);
    CHECK_INT(rc, 0);
    uint64_t last = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        CHECK_INT(results[i].error, 0);
        last = results[i].seq;
    }
    if (rc != 0)
        fprintf(stderr, "append: %s\n", err.message);
    free(results);
    return last;
}

static bool request_is(df__request *r, const msgpack_sbuffer *want)
{
    const char *data;
    size_t len;
    bool same = df__request_finish(r, &data, &len) && len == want->size &&
                memcmp(data, want->data, len) == 0;
    df__request_free(r);
    return same;
}

/* The request builder packs the very bytes of a map packed with its count
 * first: fixmap and map 16 headers, skipped NULLs, copied entries. */
static void test_request_bytes(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int64_t now = 1700000000000, before_epoch = -5;
    df__request r;
    df__request_begin(&r, "deal");
    df__request_str(&r, "deal", "acme");
    df__request_str(&r, "pipeline", NULL);
    df__request_time(&r, "now", &now);
    df__request_time(&r, "as_of", NULL);
    df__request_time(&r, "from", &before_epoch);
    df__request_uint(&r, "limit", 1000);
    df__request_bool(&r, "stale", true);
    msgpack_pack_map(&pk, 6);
    df_pack_cstr(&pk, "op");
    df_pack_cstr(&pk, "deal");
    df_pack_cstr(&pk, "deal");
    df_pack_cstr(&pk, "acme");
    df_pack_cstr(&pk, "now");
    msgpack_pack_int64(&pk, now);
    df_pack_cstr(&pk, "from");
    msgpack_pack_int64(&pk, before_epoch);
    df_pack_cstr(&pk, "limit");
    msgpack_pack_uint32(&pk, 1000);
    df_pack_cstr(&pk, "stale");
    msgpack_pack_true(&pk);
    CHECK(request_is(&r, &sb));

    /* 20 entries: a map 16 header; the filters come before op */
    sb.size = 0;
    msgpack_sbuffer filters;
    msgpack_packer fpk;
    msgpack_sbuffer_init(&filters);
    msgpack_packer_init(&fpk, &filters, msgpack_sbuffer_write);
    msgpack_pack_map(&fpk, 20);
    msgpack_pack_map(&pk, 20);
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        df_pack_cstr(&fpk, i == 7 ? "limit" : key);
        msgpack_pack_uint64(&fpk, (uint64_t)i << 40);
        if (i != 7) {
            df_pack_cstr(&pk, key);
            msgpack_pack_uint64(&pk, (uint64_t)i << 40);
        }
    }
    df_pack_cstr(&pk, "op");
    df_pack_cstr(&pk, "list");
    static const char *const skip[] = {"limit", NULL};
    df__request_begin(&r, NULL);
    CHECK(df__request_entries(&r, filters.data, filters.size, skip));
    df__request_str(&r, "op", "list");
    CHECK(request_is(&r, &sb));
    df__request_begin(&r, NULL);
    CHECK(!df__request_entries(&r, "\x91\x01", 2, skip)); /* an array is no map */
    df__request_free(&r);

    /* a value that is msgpack already goes in as it is */
    sb.size = 0;
    msgpack_pack_map(&pk, 2);
    df_pack_cstr(&pk, "op");
    df_pack_cstr(&pk, "append");
    df_pack_cstr(&pk, "events");
    msgpack_sbuffer_write(&sb, filters.data, filters.size);
    df__request_begin(&r, "append");
    df__request_msgpack(&r, "events", filters.data, filters.size);
    CHECK(request_is(&r, &sb));
    msgpack_sbuffer_destroy(&filters);
    msgpack_sbuffer_destroy(&sb);
}

static void test_options(void)
{
    df_client *c = NULL;
    df_error err;
    df_client_options bad = {0};
    bad.timeout_ms = -1;
    CHECK_INT(df_client_open(&c, &bad, &err), DF_EBAD_REQUEST);
    CHECK(c == NULL);
    df_client_options not_endpoint = {.api = "localhost:7702"};
    CHECK_INT(df_client_open(&c, &not_endpoint, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "api") != NULL);

    /* the environment names the endpoints when the options do not */
    setenv("DEALFLOW_API", D.api, 1);
    CHECK_INT(df_client_open(&c, NULL, &err), 0);
    unsetenv("DEALFLOW_API");
    df_bytes reply;
    CHECK_INT(request_text(c, &reply, &err, "{op: %s}", "ping"), 0);
    const msgpack_object *o = it_unpack_keep(reply.data, reply.len);
    CHECK_STR(it_str(o, "version"), "0.1.0");
    df_bytes_free(&reply);
    CHECK(reply.data == NULL);
    df_client_close(c);
}

/* The library's version is the daemon's, which ping tells. */
static void test_version(void)
{
    CHECK_STR(df_version(), "0.1.0");
    df_client *c = open_client(0, 0);
    df_bytes reply;
    df_error err;
    CHECK_INT(request_text(c, &reply, &err, "{op: %s}", "ping"), 0);
    CHECK_STR(it_str(it_unpack_keep(reply.data, reply.len), "version"), df_version());
    df_bytes_free(&reply);
    df_client_close(c);
}

static void test_request_errors(void)
{
    df_client *c = open_client(0, 0);
    df_error err;
    df_bytes reply;

    CHECK_INT(request_text(c, &reply, &err, "{op: %s}", "no_such_op"), DF_EUNKNOWN_OP);
    CHECK_INT(err.code, DF_EUNKNOWN_OP);
    CHECK(err.message[0] != '\0');
    CHECK(reply.data != NULL); /* a failed reply is given too */
    CHECK_ERR(it_unpack_keep(reply.data, reply.len), "unknown_op");
    df_bytes_free(&reply);

    CHECK_INT(request_text(c, &reply, &err, "{op: deal, deal: %s}", "nobody"), DF_ENOT_FOUND);
    CHECK(strstr(err.message, "nobody") != NULL);
    df_bytes_free(&reply);

    CHECK_INT(request_text(c, NULL, &err, "{op: list, limit: %s}", "many"), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "limit") != NULL);

    /* the library refuses what is not msgpack before sending it */
    CHECK_INT(df_request(c, "\xc1", 1, &reply, &err), DF_EBAD_REQUEST);
    CHECK(reply.data == NULL);
    /* the daemon refuses a request that is msgpack but no map */
    CHECK_INT(df_request(c, "\x01", 1, NULL, &err), DF_EBAD_REQUEST);
    df_client_close(c);
}

static void test_append_results(void)
{
    df_client *c = open_client(0, 0);
    df_error err;
    msgpack_sbuffer sb = text("[{id: a-1, type: stage, deal: %s, stage: lead},"
                              " {id: a-1, type: stage, deal: acme, stage: lead},"
                              " {id: a-2, type: stage, deal: acme, stage: signed},"
                              " {id: a-3, type: activity, deal: acme, kind: call, expect: 0}]",
                              "acme");
    df_append_result r[4];
    CHECK_INT(df_append(c, sb.data, sb.size, r, 4, &err), 0);
    CHECK(r[0].seq > 0 && !r[0].dup && r[0].error == 0);
    CHECK(r[1].seq == r[0].seq && r[1].dup && r[1].error == 0);
    CHECK_INT(r[2].error, DF_EUNKNOWN_STAGE);
    CHECK_INT(r[2].seq, 0);
    CHECK(strstr(r[2].message, "signed") != NULL);
    CHECK_INT(r[3].error, DF_ECONFLICT);
    CHECK_INT(df_append(c, sb.data, sb.size, r, 3, &err), DF_EBAD_REQUEST); /* too few results */
    msgpack_sbuffer_destroy(&sb);

    sb = text("{id: %s, type: stage, deal: acme, stage: lead}", "a-9");
    CHECK_INT(df_append(c, sb.data, sb.size, r, 4, &err), DF_EBAD_REQUEST); /* not an array */
    msgpack_sbuffer_destroy(&sb);
    sb = text("[%s]", "");
    CHECK_INT(df_append(c, sb.data, sb.size, r, 4, &err), DF_EBAD_REQUEST); /* empty */
    msgpack_sbuffer_destroy(&sb);
    df_client_close(c);
}

typedef struct append_job {
    atomic_int started;
    int rc;
    df_error err;
    df_append_result results[2];
} append_job;

static const char *const RESTART_EVENTS = "[{id: r-1, type: stage, deal: %s, stage: lead},"
                                          " {id: r-2, type: update, deal: restart, amount: 5}]";

static void *append_while_down(void *arg)
{
    append_job *job = arg;
    df_client *c = open_client(300, 200); /* a minute of attempts */
    msgpack_sbuffer sb = text(RESTART_EVENTS, "restart");
    atomic_store(&job->started, 1);
    job->rc = df_append(c, sb.data, sb.size, job->results, 2, &job->err);
    msgpack_sbuffer_destroy(&sb);
    df_client_close(c);
    return NULL;
}

static void test_append_across_restart(void)
{
    CHECK_INT(it_stop(&D), 0);
    append_job job = {0};
    pthread_t thread;
    CHECK_INT(pthread_create(&thread, NULL, append_while_down, &job), 0);
    int64_t deadline = now_ms() + WAIT_MS;
    while (!atomic_load(&job.started) && now_ms() < deadline) {
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    CHECK(it_restart(&D));
    pthread_join(thread, NULL);
    CHECK_INT(job.rc, 0);
    if (job.rc != 0)
        fprintf(stderr, "append across restart: %s\n", job.err.message);
    CHECK(job.results[0].seq > 0 && !job.results[0].dup);
    CHECK_INT(job.results[1].seq, job.results[0].seq + 1);

    /* the same events again are duplicates of the first ones */
    df_client *c = open_client(0, 0);
    df_error err;
    msgpack_sbuffer sb = text(RESTART_EVENTS, "restart");
    df_append_result again[2];
    CHECK_INT(df_append(c, sb.data, sb.size, again, 2, &err), 0);
    msgpack_sbuffer_destroy(&sb);
    CHECK(again[0].dup && again[1].dup);
    CHECK_INT(again[0].seq, job.results[0].seq);
    CHECK_INT(again[1].seq, job.results[1].seq);

    /* and the log holds each once */
    df_iter *it;
    CHECK_INT(df_history_open(c, "restart", 0, &it, &err), 0);
    const char *item;
    size_t len;
    int n = 0;
    while (df_iter_next(it, &item, &len, &err) == 1)
        n++;
    CHECK_INT(n, 2);
    df_iter_free(it);
    df_client_close(c);
}

static void test_publish(void)
{
    df_client *c = open_client(0, 0);
    df_error err;
    int64_t before = it_last_seq(&D);
    msgpack_sbuffer one = text("{id: p-1, type: stage, deal: %s, stage: lead}", "pub");
    msgpack_sbuffer two = text("[{id: p-2, type: activity, deal: %s, kind: call},"
                               " {id: p-3, type: activity, deal: pub, kind: email}]",
                               "pub");
    CHECK_INT(df_publish(c, one.data, one.size, &err), 0);
    CHECK_INT(df_publish(c, two.data, two.size, &err), 0);
    CHECK_INT(df_publish(c, "\x01", 1, &err), DF_EBAD_REQUEST); /* neither map nor array */
    CHECK_INT(df_publish(c, "\x91", 1, &err), DF_EBAD_REQUEST); /* truncated */
    msgpack_sbuffer_destroy(&one);
    msgpack_sbuffer_destroy(&two);
    CHECK(it_wait_seq(&D, before + 3));
    df_client_close(c);
}

/* Counts what an iterator gives, checking that `key` strictly increases
 * (bytewise for str, numerically for seq). */
static long drain(df_iter *it, const char *key)
{
    char prev[256] = "";
    uint64_t prev_seq = 0;
    long n = 0;
    const char *item;
    size_t len;
    df_error err;
    int rc;
    while ((rc = df_iter_next(it, &item, &len, &err)) == 1) {
        n++;
        if (strcmp(key, "seq") == 0) {
            uint64_t seq = 0;
            CHECK(df_msgpack_map_uint(item, len, "seq", &seq));
            CHECK_INT(seq, prev_seq + (prev_seq ? 1 : seq));
            prev_seq = seq;
        } else {
            const char *s;
            uint32_t slen;
            char cur[256];
            CHECK(df_msgpack_map_str(item, len, key, &s, &slen) && slen < sizeof cur);
            snprintf(cur, sizeof cur, "%.*s", (int)slen, s);
            CHECK(strcmp(prev, cur) < 0);
            memcpy(prev, cur, sizeof cur);
        }
    }
    CHECK_INT(rc, 0);
    if (rc < 0)
        fprintf(stderr, "iterator: %s\n", err.message);
    return n;
}

static void test_iterators(void)
{
    df_client *c = open_client(0, 0);
    df_error err;
    for (int i = 0; i < 2500; i += 500)
        append_new_deals(c, "it", i, 500, "qualified");

    df_iter *it;
    CHECK_INT(df_list_open(c, NULL, 0, &it, &err), 0);
    long all = drain(it, "deal");
    df_iter_free(it);
    CHECK(all >= 2500);

    msgpack_sbuffer filters = text("{stage: %s, limit: 1, cursor: junk}", "qualified");
    CHECK_INT(df_list_open(c, filters.data, filters.size, &it, &err), 0);
    CHECK_INT(df_iter_set_page_size(it, 0, &err), DF_EBAD_REQUEST);
    CHECK_INT(df_iter_set_page_size(it, 700, &err), 0);
    CHECK_INT(drain(it, "deal"), 2500);
    df_iter_free(it);
    msgpack_sbuffer_destroy(&filters);

    filters = text("{owner: %s}", "nobody");
    CHECK_INT(df_list_open(c, filters.data, filters.size, &it, &err), 0);
    CHECK_INT(drain(it, "deal"), 0);
    df_iter_free(it);
    msgpack_sbuffer_destroy(&filters);
    CHECK_INT(df_list_open(c, "\x93", 1, &it, &err), DF_EBAD_REQUEST);

    /* the filters as fields */
    df_list_filters fields = {.stage = "qualified"};
    CHECK_INT(df_list_open_filters(c, &fields, &it, &err), 0);
    CHECK_INT(df_iter_set_page_size(it, 700, &err), 0);
    CHECK_INT(drain(it, "deal"), 2500);
    df_iter_free(it);
    uint64_t idle_days = 0;
    fields = (df_list_filters){.owner = "nobody", .stale = true, .idle_days = &idle_days};
    CHECK_INT(df_list_open_filters(c, &fields, &it, &err), 0);
    CHECK_INT(drain(it, "deal"), 0);
    df_iter_free(it);
    fields = (df_list_filters){.status = "pending"};
    CHECK_INT(df_list_open_filters(c, &fields, &it, &err), 0);
    const char *refused;
    size_t refused_len;
    CHECK_INT(df_iter_next(it, &refused, &refused_len, &err), DF_EBAD_REQUEST);
    df_iter_free(it);

    int64_t last = it_last_seq(&D);
    CHECK_INT(df_replay_open(c, 0, &it, &err), 0);
    CHECK_INT(df_iter_set_page_size(it, 300, &err), 0);
    CHECK_INT(drain(it, "seq"), last);
    df_iter_free(it);
    CHECK_INT(df_replay_open(c, (uint64_t)last - 10, &it, &err), 0);
    CHECK_INT(drain(it, "seq"), 10);
    df_iter_free(it);

    msgpack_sbuffer events = text("[{id: h-1, type: stage, deal: %s, stage: lead},"
                                  " {id: h-2, type: activity, deal: hist, kind: call},"
                                  " {id: h-3, type: stage, deal: hist, stage: meeting},"
                                  " {id: h-4, type: update, deal: hist, amount: 7},"
                                  " {id: h-5, type: activity, deal: hist, kind: email}]",
                                  "hist");
    df_append_result r[5];
    CHECK_INT(df_append(c, events.data, events.size, r, 5, &err), 0);
    msgpack_sbuffer_destroy(&events);
    CHECK_INT(df_history_open(c, "hist", 0, &it, &err), 0);
    CHECK_INT(df_iter_set_page_size(it, 2, &err), 0);
    CHECK_INT(drain(it, "seq"), 5);
    df_iter_free(it);
    CHECK_INT(df_history_open(c, "hist", r[2].seq, &it, &err), 0);
    CHECK_INT(drain(it, "seq"), 2);
    df_iter_free(it);

    const char *item;
    size_t len;
    CHECK_INT(df_history_open(c, "nobody", 0, &it, &err), 0);
    CHECK_INT(df_iter_next(it, &item, &len, &err), DF_ENOT_FOUND);
    df_iter_free(it);
    df_client_close(c);
}

/* What a subscriber saw: the seqs of deal.moved in delivery order. */
typedef struct seen {
    uint64_t seqs[65536];
    int n;
    int repaired;
    bool in_order;
} seen;

/* Takes notifications until the subscription has delivered every move up
 * to `until`, producing one more move (deal "<tag>-*") whenever none comes
 * for a while: a gap shows only when a later move arrives. */
static void collect(df_subscription *s, df_client *c, seen *w, uint64_t until, const char *tag)
{
    int64_t deadline = now_ms() + WAIT_MS;
    int extra = 0;
    while (df_subscription_last_seq(s) < until && now_ms() < deadline) {
        df_notification n;
        df_error err;
        int rc = df_subscription_next(s, 200, &n, &err);
        CHECK(rc >= 0);
        if (rc < 0) {
            fprintf(stderr, "subscription: %s\n", err.message);
            return;
        }
        if (rc == 0) {
            until = append_new_deals(c, tag, 900000 + extra++, 1, "lead");
            continue;
        }
        CHECK(strncmp(n.topic, "deal.moved.", 11) == 0);
        uint64_t body_seq = 0;
        CHECK(df_msgpack_map_uint(n.body, n.body_len, "seq", &body_seq) && body_seq == n.seq);
        if (w->n > 0 && n.seq <= w->seqs[w->n - 1])
            w->in_order = false;
        if (w->n < (int)(sizeof w->seqs / sizeof w->seqs[0]))
            w->seqs[w->n++] = n.seq;
        w->repaired += n.repaired;
        CHECK_INT(df_subscription_last_seq(s), n.seq);
    }
    CHECK(df_subscription_last_seq(s) >= until);
}

/* Every seq in first..last was delivered, once and in order. */
static void check_contiguous(const seen *w, uint64_t first, uint64_t last)
{
    CHECK(w->in_order);
    CHECK(w->n > 0);
    if (w->n == 0)
        return;
    CHECK_INT(w->seqs[0], first);
    CHECK_INT(w->seqs[w->n - 1], last);
    CHECK_INT(w->n, last - first + 1);
}

/* The single-reply reads, and the rejected items page after page. */
static void test_reads(void)
{
    df_client *c = open_client(0, 0);
    df_error err;
    df_bytes reply = {0};
    uint64_t seq = append_new_deals(c, "rd-deal", 0, 1, "proposal");
    CHECK(seq > 0);
    int64_t now = IT_T0 + 10 * IT_DAY, as_of = IT_T0 - 1;
    CHECK_INT(df_get_deal(c, "rd-deal-000000", &now, NULL, &reply, &err), 0);
    const char *stage;
    uint32_t len;
    const char *deal_value;
    size_t deal_len;
    CHECK(df_msgpack_map_find(reply.data, reply.len, "deal", &deal_value, &deal_len));
    CHECK(df_msgpack_map_str(deal_value, deal_len, "stage", &stage, &len) && len == 8 &&
          memcmp(stage, "proposal", 8) == 0);
    df_bytes_free(&reply);
    /* before all its events: not found, with the reply */
    CHECK_INT(df_get_deal(c, "rd-deal-000000", NULL, &as_of, &reply, &err), DF_ENOT_FOUND);
    df_bytes_free(&reply);
    CHECK_INT(df_get_deal(c, "", NULL, NULL, &reply, &err), DF_EBAD_REQUEST);
    df_bytes_free(&reply); /* the daemon's answer */

    CHECK_INT(df_get_board(c, NULL, &now, &reply, &err), 0);
    CHECK(df_msgpack_map_find(reply.data, reply.len, "stages", &deal_value, &deal_len));
    df_bytes_free(&reply);
    CHECK_INT(df_get_board(c, "nosuchpipeline", NULL, &reply, &err), DF_EUNKNOWN_PIPELINE);
    df_bytes_free(&reply);

    int64_t from = 0, to = IT_T0;
    df_metrics_request q = {.owner = "nobody", .now = &now, .from = &from, .to = &to};
    CHECK_INT(df_get_metrics(c, &q, &reply, &err), 0);
    uint64_t won = 99;
    CHECK(df_msgpack_map_uint(reply.data, reply.len, "won", &won) && won == 0);
    df_bytes_free(&reply);
    CHECK_INT(df_get_metrics(c, NULL, &reply, &err), 0);
    df_bytes_free(&reply);
    /* names are the daemon's to judge: an empty owner matches no deal */
    q.owner = "";
    CHECK_INT(df_get_metrics(c, &q, &reply, &err), 0);
    df_bytes_free(&reply);
    CHECK_INT(df_get_board(c, "", NULL, &reply, &err), DF_EUNKNOWN_PIPELINE);
    df_bytes_free(&reply);

    CHECK_INT(df_ping(c, &reply, &err), 0);
    uint64_t last_seq = 0;
    CHECK(df_msgpack_map_uint(reply.data, reply.len, "last_seq", &last_seq) && last_seq >= seq);
    df_bytes_free(&reply);
    CHECK_INT(df_ping(NULL, &reply, &err), DF_EBAD_REQUEST);
    CHECK(reply.data == NULL);

    CHECK_INT(df_get_stats(c, &reply, &err), 0);
    uint64_t events = 0;
    CHECK(df_msgpack_map_uint(reply.data, reply.len, "events", &events) && events >= seq);
    df_bytes_free(&reply);

    /* 25 frames ingest cannot record, read back 10 at a time */
    uint64_t before = 0;
    CHECK_INT(df_get_stats(c, &reply, &err), 0);
    CHECK(df_msgpack_map_uint(reply.data, reply.len, "rejected", &before));
    df_bytes_free(&reply);
    for (int i = 0; i < 25; i++)
        CHECK_INT(df_publish(c, "\x81\xa2id\x07", 5, &err), 0); /* {id: 7}: no type */
    CHECK(it_wait_stat(&D, "rejected", (int64_t)before + 25));
    df_iter *it;
    CHECK_INT(df_rejected_open(c, before, &it, &err), 0);
    CHECK_INT(df_iter_set_page_size(it, 10, &err), 0);
    const char *item;
    size_t item_len;
    int n = 0, rc;
    while ((rc = df_iter_next(it, &item, &item_len, &err)) == 1) {
        uint64_t id = 0;
        CHECK(df_msgpack_map_uint(item, item_len, "id", &id) && id == before + 1 + (uint64_t)n);
        n++;
    }
    CHECK_INT(rc, 0);
    CHECK_INT(n, 25);
    df_iter_free(it);
    df_client_close(c);
}

static uint64_t reply_uint(const df_bytes *reply, const char *key)
{
    uint64_t v = UINT64_MAX;
    CHECK(df_msgpack_map_uint(reply->data, reply->len, key, &v));
    return v;
}

/* How many items a list iterator gives. */
static long list_count(df_iter *it)
{
    const char *item;
    size_t len;
    df_error err;
    long n = 0;
    int rc;
    while ((rc = df_iter_next(it, &item, &len, &err)) == 1)
        n++;
    return rc == 0 ? n : rc;
}

/* df_get_figures and df_list_open_query: every key of the figures ops and
 * of list, and fields past the caller's size left unread. */
static void test_figures_api(void)
{
    df_client *c = open_client(0, 0);
    df_error err;
    df_bytes reply = {0};
    df_append_result results[4];
    msgpack_sbuffer events =
        text("[{id: lib-1, type: stage, deal: lib-1, stage: lead, amount: 10, at: %lld},"
             "{id: lib-2, type: stage, deal: lib-2, stage: won, amount: 20, at: %lld},"
             "{id: lib-3, type: update, deal: lib-1, close_date: %lld, product: kit, source: web, "
             "at: %lld},"
             "{id: lib-4, type: update, deal: lib-2, product: kit, at: %lld}]",
             (long long)IT_T0, (long long)(IT_T0 + IT_DAY), (long long)(IT_T0 + 40 * IT_DAY),
             (long long)IT_T0, (long long)IT_T0);
    CHECK_INT(df_append(c, events.data, events.size, results, 4, &err), 0);
    msgpack_sbuffer_destroy(&events);

    int64_t now = IT_T0 + 2 * IT_DAY, from = IT_T0 - 40 * IT_DAY, to = IT_T0 + 80 * IT_DAY;
    df_figures_request q = {.size = sizeof q, .product = "kit", .now = &now};
    CHECK_INT(df_get_figures(c, "metrics", &q, &reply, &err), 0);
    CHECK_INT(reply_uint(&reply, "won"), 1);
    CHECK_INT(reply_uint(&reply, "open"), 1);
    df_bytes_free(&reply);
    CHECK_INT(df_get_figures(c, "board", &q, &reply, &err), 0);
    df_bytes_free(&reply);
    q = (df_figures_request){
        .size = sizeof q, .source = "web", .now = &now, .from = &from, .to = &to, .by = "month"};
    CHECK_INT(df_get_figures(c, "forecast", &q, &reply, &err), 0);
    const char *periods;
    size_t periods_len;
    CHECK(df_msgpack_map_find(reply.data, reply.len, "periods", &periods, &periods_len));
    CHECK(periods_len > 1 && (uint8_t)periods[0] >= 0x93); /* 3 months or more */
    df_bytes_free(&reply);
    CHECK_INT(df_get_figures(c, "metrics", &q, &reply, &err), 0);
    CHECK(df_msgpack_map_find(reply.data, reply.len, "series", &periods, &periods_len));
    df_bytes_free(&reply);
    CHECK_INT(df_get_figures(c, "calibration", &q, &reply, &err), 0);
    CHECK(df_msgpack_map_find(reply.data, reply.len, "stages", &periods, &periods_len));
    df_bytes_free(&reply);
    CHECK_INT(df_get_figures(c, "calibration", NULL, &reply, &err), 0);
    df_bytes_free(&reply);

    /* the daemon's refusal, then fields past size left unread */
    q.by = "fortnight";
    CHECK_INT(df_get_figures(c, "forecast", &q, &reply, &err), DF_EBAD_REQUEST);
    df_bytes_free(&reply);
    q.size = offsetof(df_figures_request, by);
    CHECK_INT(df_get_figures(c, "forecast", &q, &reply, &err), 0);
    df_bytes_free(&reply);
    q = (df_figures_request){.size = offsetof(df_figures_request, owner), .owner = "nobody"};
    CHECK_INT(df_get_figures(c, "metrics", &q, &reply, &err), 0);
    CHECK(reply_uint(&reply, "won") >= 1); /* every owner's */
    df_bytes_free(&reply);
    /* refused before anything is sent */
    q.size = sizeof q.size;
    CHECK_INT(df_get_figures(c, "metrics", &q, &reply, &err), DF_EBAD_REQUEST);
    CHECK(reply.data == NULL);
    CHECK_INT(df_get_figures(c, "deal", NULL, &reply, &err), DF_EBAD_REQUEST);
    CHECK_INT(df_get_figures(c, NULL, NULL, &reply, &err), DF_EBAD_REQUEST);
    CHECK_INT(df_get_figures(NULL, "board", NULL, &reply, &err), DF_EBAD_REQUEST);

    /* list by product and source */
    df_iter *it;
    df_list_query lq = {.size = sizeof lq, .product = "kit"};
    CHECK_INT(df_list_open_query(c, &lq, &it, &err), 0);
    CHECK_INT(list_count(it), 2);
    df_iter_free(it);
    lq = (df_list_query){.size = sizeof lq, .source = "web", .status = "open"};
    CHECK_INT(df_list_open_query(c, &lq, &it, &err), 0);
    CHECK_INT(list_count(it), 1);
    df_iter_free(it);
    lq = (df_list_query){.size = offsetof(df_list_query, status), .source = "web"};
    lq.status = "pending"; /* past size: not read */
    CHECK_INT(df_list_open_query(c, &lq, &it, &err), 0);
    CHECK_INT(list_count(it), 1);
    df_iter_free(it);
    lq.size = 0;
    CHECK_INT(df_list_open_query(c, &lq, &it, &err), DF_EBAD_REQUEST);
    CHECK(it == NULL);
    CHECK_INT(df_list_open_query(c, NULL, &it, &err), 0);
    CHECK(list_count(it) >= 2);
    df_iter_free(it);
    df_client_close(c);
}

/* df_redact: an owner becomes its pseudonym and a name goes (nil), in the deal
 * the daemon gives back; a field that is no personal value and a deal with
 * no event are the daemon's errors, with its message. */
static void test_redact(void)
{
    df_client *c = open_client(0, 0);
    df_error err;
    df_bytes reply = {0};
    CHECK(it_append(&D, "{id: rx-1, type: stage, deal: rx-deal, stage: lead, owner: rx-owner}") >
          0);
    CHECK(it_append(&D, "{id: rx-2, type: update, deal: rx-deal, name: rx-name}") > 0);
    const char *const fields[] = {"owner", "name"};
    uint64_t seq = 0, redacted = 0;
    CHECK_INT(df_redact(c, "rx-deal", fields, 2, "erasure request", &seq, &redacted, &err), 0);
    CHECK(seq > 0);
    CHECK_INT(redacted, 2);
    CHECK_INT(df_get_deal(c, "rx-deal", NULL, NULL, &reply, &err), 0);
    const char *deal, *owner;
    size_t deal_len;
    uint32_t owner_len;
    CHECK(df_msgpack_map_find(reply.data, reply.len, "deal", &deal, &deal_len));
    CHECK(df_msgpack_map_str(deal, deal_len, "owner", &owner, &owner_len) && owner_len == 22 &&
          memcmp(owner, "owner-", 6) == 0);
    const char *name;
    size_t name_len;
    CHECK(!df_msgpack_map_find(deal, deal_len, "name", &name, &name_len) ||
          df_msgpack_is_nil(name, name_len));
    df_bytes_free(&reply);

    const char *const stage[] = {"stage"};
    seq = 99;
    CHECK_INT(df_redact(c, "rx-deal", stage, 1, "erasure request", &seq, NULL, &err),
              DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "stage") != NULL);
    CHECK_INT(seq, 0);
    CHECK_INT(df_redact(c, "rx-nobody", fields, 2, "erasure request", NULL, &redacted, &err),
              DF_ENOT_FOUND);
    CHECK(err.message[0] != '\0');
    CHECK_INT(redacted, 0);
    CHECK_INT(df_redact(c, "rx-deal", NULL, 1, "erasure request", NULL, NULL, &err),
              DF_EBAD_REQUEST);
    df_client_close(c);
}

static void test_subscription_gap(void)
{
    df_client *c = open_client(0, 0);
    df_error err;
    df_subscription *s;
    /* from now on: after the last move so far; every event from here on is a move */
    uint64_t start = (uint64_t)it_int(it_call(&D, "{op: moves, limit: 1}"), "last_seq");
    CHECK_INT(df_subscribe(c, "deal.moved.", 0, &s, &err), 0);
    CHECK_INT(df_subscription_last_seq(s), start);
    uint64_t first = (uint64_t)it_last_seq(&D) + 1;
    static seen w = {.in_order = true};

    uint64_t last = append_new_deals(c, "sa", 0, 10, "lead");
    collect(s, c, &w, last, "sa");

    /* cut the subscriber off while moves go by */
    void *sub = df__subscription_socket(s);
    CHECK_INT(zmq_disconnect(sub, D.notify), 0);
    append_new_deals(c, "sb", 0, 300, "lead");
    last = append_new_deals(c, "sb", 300, 300, "meeting");
    CHECK_INT(zmq_connect(sub, D.notify), 0);
    int before = w.repaired;
    collect(s, c, &w, last, "sc");
    /* zmq_disconnect takes effect in the background: most of the 600 are
     * missed, and what was missed was repaired */
    CHECK(w.repaired > before);
    printf("a subscriber cut off got %d of 600 moves by repair\n", w.repaired - before);
    check_contiguous(&w, first, df_subscription_last_seq(s));

    /* a subscription that does not read while many more moves go by than its
     * queue holds (ZeroMQ's default high-water mark is 1000) */
    last = 0;
    for (int i = 0; i < 30; i++)
        last = append_new_deals(c, "sd", i * 1000, 1000, "lead");
    before = w.repaired;
    collect(s, c, &w, last, "se");
    printf("a subscriber that did not read got %d of 30000 moves by repair\n", w.repaired - before);
    check_contiguous(&w, first, df_subscription_last_seq(s));
    df_subscription_close(s);
    df_client_close(c);
}

/* A df_subscription_run callback: checks the seqs come one after another
 * and stops (returning 7) at stop_at. */
typedef struct run_state {
    uint64_t next, stop_at;
    int calls;
} run_state;

static int count_until(void *ctx, const df_notification *n)
{
    run_state *run = ctx;
    CHECK_INT(n->seq, run->next);
    run->next = n->seq + 1;
    run->calls++;
    return n->seq >= run->stop_at ? 7 : 0;
}

static void test_subscription_resume(void)
{
    df_client *c = open_client(0, 0);
    df_error err;
    uint64_t from = append_new_deals(c, "ra", 0, 20, "lead");
    uint64_t last = append_new_deals(c, "rb", 0, 1500, "lead");

    df_subscription *s;
    CHECK_INT(df_subscribe(c, "deal.", from, &s, &err), 0);
    static seen w = {.in_order = true};
    collect(s, c, &w, last, "rc");
    CHECK(w.repaired >= 1500);
    last = append_new_deals(c, "rd", 0, 5, "lead");
    collect(s, c, &w, last, "re");
    check_contiguous(&w, from + 1, df_subscription_last_seq(s));
    df_subscription_close(s);

    /* a prefix that lets only some moves through gets those, in order */
    uint64_t at = last;
    CHECK_INT(df_subscribe(c, "deal.moved.default.won", at, &s, &err), 0);
    append_new_deals(c, "rf", 0, 5, "lead");
    append_new_deals(c, "rg", 0, 3, "won");
    last = append_new_deals(c, "rh", 0, 5, "lead");
    int got = 0;
    int64_t deadline = now_ms() + WAIT_MS;
    while (df_subscription_last_seq(s) < last - 5 && now_ms() < deadline) {
        df_notification n;
        int rc = df_subscription_next(s, 200, &n, &err);
        CHECK(rc >= 0);
        if (rc < 0)
            break;
        if (rc == 1) {
            CHECK_STR(n.topic, "deal.moved.default.won");
            got++;
        }
    }
    CHECK_INT(got, 3);
    df_subscription_close(s);

    /* the callback style: every move after `at`, in order, until the callback says stop */
    CHECK_INT(df_subscribe(c, "deal.moved.", at, &s, &err), 0);
    run_state run = {at + 1, last, 0};
    CHECK_INT(df_subscription_run(s, count_until, &run, &err), 7);
    CHECK_INT(run.calls, (int)(last - at));
    df_subscription_close(s);

    /* a prefix that lets no move through needs no daemon to start */
    df_subscription *stale;
    CHECK_INT(df_subscribe(c, "deal.stale.", 0, &stale, &err), 0);
    df_notification n;
    CHECK_INT(df_subscription_next(stale, 0, &n, &err), 0);
    df_subscription_close(stale);
    df_client_close(c);
}

static void test_unreachable(void)
{
    it_daemon dead;
    CHECK(it_init(&dead, NULL)); /* free ports, nothing started on them */
    df_client_options opt = {.api = dead.api,
                             .ingest = dead.ingest,
                             .notify = dead.notify,
                             .timeout_ms = 200,
                             .attempts = 3};
    df_client *c;
    df_error err;
    CHECK_INT(df_client_open(&c, &opt, &err), 0);
    int64_t began = now_ms();
    df_bytes reply;
    CHECK_INT(request_text(c, &reply, &err, "{op: %s}", "ping"), DF_EUNREACHABLE);
    CHECK(reply.data == NULL);
    CHECK(strstr(err.message, dead.api) != NULL);
    CHECK(strstr(err.message, "3 attempts") != NULL);
    printf("unreachable after %lld ms: %s\n", (long long)(now_ms() - began), err.message);
    df_subscription *s;
    CHECK_INT(df_subscribe(c, "", 0, &s, &err), DF_EUNREACHABLE);
    df_client_close(c);
    it_cleanup(&dead);
}

/* A CURVE server of the test's own: a ROUTER answering every request with
 * {ok: true, version: curve} and a PULL, both CURVE servers with a key pair
 * made here. With no ZAP handler in its context it admits any client key. */
typedef struct curve_server {
    void *context, *router, *pull, *pub;
    char public_key[41], secret_key[41];
    char api[128], ingest[128], notify[128];
    pthread_t thread;
    atomic_bool stop;
} curve_server;

static void *curve_serve(void *arg)
{
    curve_server *srv = arg;
    static const char reply[] = "\x82\xa2ok\xc3\xa7version\xa5"
                                "curve";
    while (!atomic_load(&srv->stop)) {
        zmq_pollitem_t item = {srv->router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 50) <= 0)
            continue;
        zmq_msg_t frames[3];
        int n = 0, more = 1;
        while (more) {
            zmq_msg_t frame;
            zmq_msg_init(&frame);
            if (zmq_msg_recv(&frame, srv->router, 0) < 0) {
                zmq_msg_close(&frame);
                break;
            }
            more = zmq_msg_more(&frame);
            if (n < 3) {
                zmq_msg_init(&frames[n]);
                zmq_msg_move(&frames[n++], &frame);
            }
            zmq_msg_close(&frame);
        }
        if (n == 3) { /* peer, request id, body */
            zmq_msg_send(&frames[0], srv->router, ZMQ_SNDMORE);
            zmq_msg_send(&frames[1], srv->router, ZMQ_SNDMORE);
            zmq_send(srv->router, reply, sizeof reply - 1, 0);
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&frames[i]);
    }
    return NULL;
}

static void *curve_socket(curve_server *srv, int type, char *endpoint, size_t cap)
{
    void *s = zmq_socket(srv->context, type);
    int on = 1, linger = 0;
    CHECK_INT(zmq_setsockopt(s, ZMQ_CURVE_SERVER, &on, sizeof on), 0);
    CHECK_INT(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, srv->secret_key, 40), 0);
    CHECK_INT(zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger), 0);
    CHECK_INT(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
    CHECK_INT(zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, endpoint, &cap), 0);
    return s;
}

static void curve_server_start(curve_server *srv)
{
    memset(srv, 0, sizeof *srv);
    CHECK_INT(zmq_curve_keypair(srv->public_key, srv->secret_key), 0);
    srv->context = zmq_ctx_new();
    srv->router = curve_socket(srv, ZMQ_ROUTER, srv->api, sizeof srv->api);
    srv->pull = curve_socket(srv, ZMQ_PULL, srv->ingest, sizeof srv->ingest);
    srv->pub = curve_socket(srv, ZMQ_PUB, srv->notify, sizeof srv->notify);
    atomic_init(&srv->stop, false);
    CHECK_INT(pthread_create(&srv->thread, NULL, curve_serve, srv), 0);
}

static void curve_server_stop(curve_server *srv)
{
    atomic_store(&srv->stop, true);
    pthread_join(srv->thread, NULL);
    zmq_close(srv->router);
    zmq_close(srv->pull);
    zmq_close(srv->pub);
    zmq_ctx_term(srv->context);
}

/* Writes text into dir/name with mode; the path in out. */
static void write_key_file(const char *dir, const char *name, const char *text, mode_t mode,
                           char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
    FILE *f = fopen(out, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
    CHECK_INT(chmod(out, mode), 0);
}

static int open_curve_client(const curve_server *srv, const char *server_key, const char *key_file,
                             int timeout_ms, df_client **c, df_error *err)
{
    df_client_options opt = {.api = srv->api,
                             .ingest = srv->ingest,
                             .notify = srv->notify,
                             .timeout_ms = timeout_ms,
                             .attempts = 2,
                             .server_key = server_key,
                             .key_file = key_file};
    return df_client_open(c, &opt, err);
}

static void expect_curve_ping(df_client *c)
{
    df_bytes reply;
    df_error err;
    int rc = df_ping(c, &reply, &err);
    CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "ping over CURVE: %s\n", err.message);
    else
        CHECK_STR(it_str(it_unpack_keep(reply.data, reply.len), "version"), "curve");
    df_bytes_free(&reply);
}

/* The server key and a key file make every socket a CURVE client: the api
 * gets its reply and ingest delivers; without keys nothing answers; bad keys
 * and key files others can read are refused at open, naming what is wrong. */
static void test_curve_keys(void)
{
    curve_server srv;
    curve_server_start(&srv);
    char dir[] = "/tmp/df-keys-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char client_public[41], client_secret[41], text[200];
    CHECK_INT(zmq_curve_keypair(client_public, client_secret), 0);
    char key_path[256], open_path[256], server_path[256], bad_path[256], wrong_path[256];
    snprintf(text, sizeof text, "%s\n# public %s\n", client_secret, client_public);
    write_key_file(dir, "client.key", text, 0600, key_path, sizeof key_path);
    write_key_file(dir, "open.key", text, 0644, open_path, sizeof open_path);
    write_key_file(dir, "bad.key", "not a key\n", 0600, bad_path, sizeof bad_path);
    snprintf(text, sizeof text, "%s\n# public %s\n", client_secret, srv.public_key);
    write_key_file(dir, "wrong.key", text, 0600, wrong_path, sizeof wrong_path);
    snprintf(text, sizeof text, "%s\n", srv.public_key);
    write_key_file(dir, "server.pub", text, 0644, server_path, sizeof server_path);

    df_client *c = NULL;
    df_error err;
    CHECK_INT(open_curve_client(&srv, srv.public_key, key_path, 2000, &c, &err), 0);
    expect_curve_ping(c);
    static const char event[] = "\x81\xa2id\xa1x";
    CHECK_INT(df_publish(c, event, sizeof event - 1, &err), 0);
    char got[64];
    int timeout = WAIT_MS;
    zmq_setsockopt(srv.pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    CHECK_INT(zmq_recv(srv.pull, got, sizeof got, 0), (int)sizeof event - 1);
    /* notify: published until the subscription has joined */
    df_subscription *sub = NULL;
    CHECK_INT(df_subscribe(c, "deal.stale.", 0, &sub, &err), 0);
    static const char topic[] = "deal.stale.default.lead";
    static const char body[] = "\x81\xa4"
                               "deal\xa1x";
    df_notification n;
    int delivered = 0;
    for (int64_t until = now_ms() + WAIT_MS; sub != NULL && delivered == 0 && now_ms() < until;) {
        zmq_send(srv.pub, topic, sizeof topic - 1, ZMQ_SNDMORE);
        zmq_send(srv.pub, body, sizeof body - 1, 0);
        delivered = df_subscription_next(sub, 50, &n, &err);
    }
    CHECK_INT(delivered, 1);
    if (delivered == 1)
        CHECK_STR(n.topic, topic);
    df_subscription_close(sub);
    df_client_close(c);

    /* from the environment, the server key as a file */
    setenv("DEALFLOW_SERVER_KEY", server_path, 1);
    setenv("DEALFLOW_KEY_FILE", key_path, 1);
    CHECK_INT(open_curve_client(&srv, NULL, NULL, 2000, &c, &err), 0);
    expect_curve_ping(c);
    df_client_close(c);
    unsetenv("DEALFLOW_SERVER_KEY");
    unsetenv("DEALFLOW_KEY_FILE");

    /* no keys: the CURVE server never answers */
    CHECK_INT(open_curve_client(&srv, NULL, NULL, 200, &c, &err), 0);
    CHECK_INT(df_ping(c, NULL, &err), DF_EUNREACHABLE);
    df_client_close(c);

    c = NULL;
    CHECK_INT(open_curve_client(&srv, "tooshort", key_path, 200, &c, &err), DF_EBAD_REQUEST);
    CHECK(c == NULL);
    CHECK(strstr(err.message, "server key") != NULL && strstr(err.message, "Z85") != NULL);
    char not_z85[41];
    memcpy(not_z85, srv.public_key, sizeof not_z85);
    not_z85[7] = '~';
    CHECK_INT(open_curve_client(&srv, not_z85, key_path, 200, &c, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "Z85") != NULL);
    CHECK_INT(open_curve_client(&srv, srv.public_key, bad_path, 200, &c, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "bad.key") != NULL && strstr(err.message, "secret key") != NULL);
    CHECK_INT(open_curve_client(&srv, srv.public_key, wrong_path, 200, &c, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "# public") != NULL);
    CHECK_INT(open_curve_client(&srv, srv.public_key, open_path, 200, &c, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "too open") != NULL && strstr(err.message, "0644") != NULL);
    CHECK_INT(open_curve_client(&srv, srv.public_key, "/nonexistent/df.key", 200, &c, &err),
              DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "/nonexistent/df.key") != NULL);
    /* the client's own secret key file is no server key */
    CHECK_INT(open_curve_client(&srv, wrong_path, key_path, 200, &c, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "secret key") != NULL);
    /* one without the other */
    CHECK_INT(open_curve_client(&srv, srv.public_key, NULL, 200, &c, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "no key file") != NULL);
    CHECK_INT(open_curve_client(&srv, NULL, key_path, 200, &c, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "no server key") != NULL);
    /* an empty option is none, even when the environment names one */
    setenv("DEALFLOW_KEY_FILE", open_path, 1);
    CHECK_INT(open_curve_client(&srv, "", "", 200, &c, &err), 0);
    df_client_close(c);
    unsetenv("DEALFLOW_KEY_FILE");

    const char *names[] = {"client.key", "open.key", "bad.key", "wrong.key", "server.pub"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(text, sizeof text, "%s/%s", dir, names[i]);
        unlink(text);
    }
    rmdir(dir);
    curve_server_stop(&srv);
}

static bool start_daemon(void)
{
    return it_setup(&D, NULL);
}

static void stop_daemon(void)
{
    it_cleanup(&D);
    CHECK_INT(it_done(), 0);
}

static const df_test tests[] = {
    {"request_bytes", test_request_bytes},
    {"options", test_options},
    {"version", test_version},
    {"request_errors", test_request_errors},
    {"append_results", test_append_results},
    {"append_across_restart", test_append_across_restart},
    {"publish", test_publish},
    {"iterators", test_iterators},
    {"reads", test_reads},
    {"figures_api", test_figures_api},
    {"redact", test_redact},
    {"subscription_gap", test_subscription_gap},
    {"subscription_resume", test_subscription_resume},
    {"unreachable", test_unreachable},
    {"curve_keys", test_curve_keys},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}
