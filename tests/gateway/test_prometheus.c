/* test_prometheus.c: the Prometheus text of gw_prometheus_render, read back
 * by the reference parser (python3-prometheus-client) and checked for names,
 * types, labels and values; hostile stats bytes leave the gateway's own
 * figures intact; a real daemon's reply shows as it reads. Skips (77)
 * without python3 and the parser. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>

#include "check.h"
#include "dealflow.h"
#include "harness.h"
#include "prometheus.h"
#include "prometheus_parse.h"

/* Renders and parses; the parse, or NULL (a failed check) when the parser
 * refused the text. *text_out, when given, takes the text. */
static json_t *render_and_parse(const msgpack_sbuffer *stats, const gw_route_count *routes,
                                size_t nroutes, const gw_delivery_state *deliveries,
                                size_t ndeliveries, char **text_out)
{
    char *text = NULL;
    size_t len = 0;
    CHECK_INT(gw_prometheus_render(stats ? stats->data : NULL, stats ? stats->size : 0, routes,
                                   nroutes, deliveries, ndeliveries, &text, &len),
              0);
    if (!text)
        return NULL;
    CHECK_INT(strlen(text), len);
    CHECK(len > 0 && text[len - 1] == '\n');
    char dir[] = "/tmp/test_prometheus-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    json_t *parsed = pp_parse(text, len, dir);
    CHECK(parsed != NULL);
    if (!parsed)
        fprintf(stderr, "the text the parser refused:\n%s", text);
    else
        CHECK_INT(json_array_size(json_object_get(parsed, "duplicates")), 0);
    rmdir(dir);
    if (text_out)
        *text_out = text;
    else
        free(text);
    return parsed;
}

#define CHECK_VALUE(actual, expected)                                                              \
    do {                                                                                           \
        double check_v_ = (actual), check_w_ = (expected);                                         \
        if (fabs(check_v_ - check_w_) <= 1e-9 * fabs(check_w_)) {                                  \
            df_checks_passed++;                                                                    \
        } else {                                                                                   \
            DF_CHECK_FAILED(__FILE__, __LINE__);                                                   \
            fprintf(stderr, "%s is %.17g, expected %.17g\n", #actual, check_v_, check_w_);         \
        }                                                                                          \
    } while (0)

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static const uint64_t BOUNDS_US[] = {50, 100, 250, 500, 1000, 2500, 1000000, 10000000};
#define NBOUNDS (sizeof(BOUNDS_US) / sizeof(BOUNDS_US[0]))

/* {buckets: [[le_us, count], ...], count, sum_us} with cumulative counts. */
static void pack_histogram(msgpack_packer *pk, const uint64_t *cumulative, uint64_t count,
                           uint64_t sum_us)
{
    msgpack_pack_map(pk, 3);
    pack_str(pk, "buckets");
    msgpack_pack_array(pk, NBOUNDS);
    for (size_t i = 0; i < NBOUNDS; i++) {
        msgpack_pack_array(pk, 2);
        msgpack_pack_uint64(pk, BOUNDS_US[i]);
        msgpack_pack_uint64(pk, cumulative[i]);
    }
    pack_str(pk, "count");
    msgpack_pack_uint64(pk, count);
    pack_str(pk, "sum_us");
    msgpack_pack_uint64(pk, sum_us);
}

static const uint64_t COMMIT_LE[NBOUNDS] = {0, 1, 4, 9, 12, 12, 13, 13};
static const uint64_t APPEND_LE[NBOUNDS] = {0, 0, 0, 2, 6, 7, 7, 7};

/* A `stats` reply as the daemon packs it, with two keys it may add later
 * and one that is no number. */
static void pack_stats(msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    static const struct {
        const char *key;
        uint64_t value;
    } counts[] = {
        {"events", 42},          {"duplicates", 3},
        {"rejected", 1},         {"deals", 7},
        {"last_seq", 42},        {"flushed_seq", 40},
        {"commits", 13},         {"flushes", 2},
        {"notifications", 9},    {"stale_notifications", 0},
        {"pending", 4},          {"uptime_ms", 12345},
        {"db_bytes", 65536},     {"disk_free_bytes", 123456789012},
        {"map_bytes", 1u << 30}, {"map_used_bytes", 40960},
        {"store_full", 0},       {"lost", 0},
    };
    size_t n = sizeof(counts) / sizeof(counts[0]);
    msgpack_pack_map(&pk, 1 + n + 1 + 2 + 3);
    pack_str(&pk, "ok");
    msgpack_pack_true(&pk);
    for (size_t i = 0; i < n; i++) {
        pack_str(&pk, counts[i].key);
        msgpack_pack_uint64(&pk, counts[i].value);
    }
    pack_str(&pk, "chain_head");
    msgpack_pack_bin(&pk, 32);
    msgpack_pack_bin_body(&pk, "0123456789abcdef0123456789abcdef", 32);
    pack_str(&pk, "commit_latency");
    pack_histogram(&pk, COMMIT_LE, 13, 9876);
    pack_str(&pk, "append_latency");
    pack_histogram(&pk, APPEND_LE, 8, 12000500);
    pack_str(&pk, "replication_lag_ms");
    msgpack_pack_int64(&pk, -1500);
    pack_str(&pk, "cache.hit-ratio");
    msgpack_pack_double(&pk, 0.25);
    pack_str(&pk, "role");
    pack_str(&pk, "primary");
}

static void test_daemon_stats(void)
{
    msgpack_sbuffer sb;
    pack_stats(&sb);
    char *text = NULL;
    json_t *p = render_and_parse(&sb, NULL, 0, NULL, 0, &text);
    msgpack_sbuffer_destroy(&sb);
    if (!p)
        return;
    CHECK_STR(pp_family_type(p, "dealflow_gateway_daemon_up"), "gauge");
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_daemon_up", NULL), 1);
    /* counters: the family drops _total, the sample keeps it */
    CHECK_STR(pp_family_type(p, "dealflow_events"), "counter");
    CHECK_VALUE(pp_sample(p, "dealflow_events_total", NULL), 42);
    CHECK_STR(pp_family_type(p, "dealflow_duplicates"), "counter");
    CHECK_VALUE(pp_sample(p, "dealflow_duplicates_total", NULL), 3);
    CHECK_VALUE(pp_sample(p, "dealflow_rejected_total", NULL), 1);
    CHECK_VALUE(pp_sample(p, "dealflow_commits_total", NULL), 13);
    CHECK_VALUE(pp_sample(p, "dealflow_flushes_total", NULL), 2);
    CHECK_VALUE(pp_sample(p, "dealflow_notifications_total", NULL), 9);
    CHECK_VALUE(pp_sample(p, "dealflow_stale_notifications_total", NULL), 0);
    CHECK_STR(pp_family_type(p, "dealflow_lost"), "counter");
    CHECK_VALUE(pp_sample(p, "dealflow_lost_total", NULL), 0);
    /* gauges, in base units */
    CHECK_STR(pp_family_type(p, "dealflow_deals"), "gauge");
    CHECK_VALUE(pp_sample(p, "dealflow_deals", NULL), 7);
    CHECK_VALUE(pp_sample(p, "dealflow_last_seq", NULL), 42);
    CHECK_VALUE(pp_sample(p, "dealflow_flushed_seq", NULL), 40);
    CHECK_VALUE(pp_sample(p, "dealflow_pending_items", NULL), 4);
    CHECK_STR(pp_family_type(p, "dealflow_uptime_seconds"), "gauge");
    CHECK_VALUE(pp_sample(p, "dealflow_uptime_seconds", NULL), 12.345);
    CHECK_VALUE(pp_sample(p, "dealflow_db_bytes", NULL), 65536);
    CHECK_VALUE(pp_sample(p, "dealflow_disk_free_bytes", NULL), 123456789012.0);
    CHECK_VALUE(pp_sample(p, "dealflow_map_bytes", NULL), 1u << 30);
    CHECK_VALUE(pp_sample(p, "dealflow_map_used_bytes", NULL), 40960);
    CHECK_VALUE(pp_sample(p, "dealflow_store_full", NULL), 0);
    /* histograms in seconds, the +Inf bucket equal to the count */
    CHECK_STR(pp_family_type(p, "dealflow_commit_latency_seconds"), "histogram");
    CHECK_VALUE(pp_sample(p, "dealflow_commit_latency_seconds_bucket", "le", "0.00005", NULL), 0);
    CHECK_VALUE(pp_sample(p, "dealflow_commit_latency_seconds_bucket", "le", "0.0001", NULL), 1);
    CHECK_VALUE(pp_sample(p, "dealflow_commit_latency_seconds_bucket", "le", "0.001", NULL), 12);
    CHECK_VALUE(pp_sample(p, "dealflow_commit_latency_seconds_bucket", "le", "1", NULL), 13);
    CHECK_VALUE(pp_sample(p, "dealflow_commit_latency_seconds_bucket", "le", "10", NULL), 13);
    CHECK_VALUE(pp_sample(p, "dealflow_commit_latency_seconds_bucket", "le", "+Inf", NULL), 13);
    CHECK_VALUE(pp_sample(p, "dealflow_commit_latency_seconds_count", NULL), 13);
    CHECK_VALUE(pp_sample(p, "dealflow_commit_latency_seconds_sum", NULL), 0.009876);
    CHECK_STR(pp_family_type(p, "dealflow_append_latency_seconds"), "histogram");
    CHECK_VALUE(pp_sample(p, "dealflow_append_latency_seconds_bucket", "le", "0.0005", NULL), 2);
    CHECK_VALUE(pp_sample(p, "dealflow_append_latency_seconds_bucket", "le", "0.0025", NULL), 7);
    CHECK_VALUE(pp_sample(p, "dealflow_append_latency_seconds_bucket", "le", "+Inf", NULL), 8);
    CHECK_VALUE(pp_sample(p, "dealflow_append_latency_seconds_count", NULL), 8);
    CHECK_VALUE(pp_sample(p, "dealflow_append_latency_seconds_sum", NULL), 12.0005);
    /* keys a later daemon may add: gauges, named as the format allows */
    CHECK_STR(pp_family_type(p, "dealflow_replication_lag_seconds"), "gauge");
    CHECK_VALUE(pp_sample(p, "dealflow_replication_lag_seconds", NULL), -1.5);
    CHECK_STR(pp_family_type(p, "dealflow_cache_hit_ratio"), "gauge");
    CHECK_VALUE(pp_sample(p, "dealflow_cache_hit_ratio", NULL), 0.25);
    /* no number, no figure */
    CHECK(pp_family_type(p, "dealflow_role") == NULL);
    CHECK(pp_family_type(p, "dealflow_chain_head") == NULL);
    CHECK(pp_family_type(p, "dealflow_ok") == NULL);
    /* every family has its HELP and TYPE lines */
    const char *key;
    json_t *type;
    json_object_foreach(json_object_get(p, "families"), key, type)
    {
        char help[160], type_line[160];
        bool counter = strcmp(json_string_value(type), "counter") == 0;
        snprintf(help, sizeof(help), "# HELP %s%s ", key, counter ? "_total" : "");
        snprintf(type_line, sizeof(type_line), "# TYPE %s%s %s\n", key, counter ? "_total" : "",
                 json_string_value(type));
        CHECK(strstr(text, help) != NULL);
        CHECK(strstr(text, type_line) != NULL);
    }
    free(text);
    json_decref(p);
}

static void test_gateway_counts(void)
{
    static const gw_route_count routes[] = {
        {"/v1/events", 200, 10}, {"/v1/events", 400, 2},          {"/metrics", 200, 1},
        {"/v1/events", 200, 5},  {"/odd \"route\"\\\nx", 404, 3},
    };
    static const gw_delivery_state deliveries[] = {
        {.url = "http://127.0.0.1:9/a",
         .delivered = 5,
         .retries = 2,
         .failures = 3,
         .position = 10,
         .daemon_seq = 12,
         .failing = true},
        {.url = "http://127.0.0.1:9/b?x=\"1\"\\", .delivered = 7, .position = 20, .daemon_seq = 20},
        /* the same url for other topics: added together, the worst lag */
        {.url = "http://127.0.0.1:9/a",
         .delivered = 1,
         .failures = 1,
         .position = 2,
         .daemon_seq = 12},
        /* a position ahead of the seq last seen is no negative lag */
        {.url = "http://127.0.0.1:9/c", .position = 30, .daemon_seq = 25},
    };
    json_t *p = render_and_parse(NULL, routes, sizeof(routes) / sizeof(routes[0]), deliveries,
                                 sizeof(deliveries) / sizeof(deliveries[0]), NULL);
    if (!p)
        return;
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_daemon_up", NULL), 0);
    CHECK(pp_family_type(p, "dealflow_events") == NULL);
    CHECK_STR(pp_family_type(p, "dealflow_gateway_http_requests"), "counter");
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_http_requests_total", "route", "/v1/events",
                          "status", "200", NULL),
                15);
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_http_requests_total", "route", "/v1/events",
                          "status", "400", NULL),
                2);
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_http_requests_total", "route", "/metrics", "status",
                          "200", NULL),
                1);
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_http_requests_total", "route", "/odd \"route\"\\\nx",
                          "status", "404", NULL),
                3);
    const char *a = "http://127.0.0.1:9/a", *b = "http://127.0.0.1:9/b?x=\"1\"\\",
               *c = "http://127.0.0.1:9/c";
    CHECK_STR(pp_family_type(p, "dealflow_gateway_webhook_deliveries"), "counter");
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_webhook_deliveries_total", "url", a, NULL), 6);
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_webhook_deliveries_total", "url", b, NULL), 7);
    CHECK_STR(pp_family_type(p, "dealflow_gateway_webhook_retries"), "counter");
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_webhook_retries_total", "url", a, NULL), 2);
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_webhook_retries_total", "url", b, NULL), 0);
    CHECK_STR(pp_family_type(p, "dealflow_gateway_webhook_failures"), "counter");
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_webhook_failures_total", "url", a, NULL), 4);
    CHECK_STR(pp_family_type(p, "dealflow_gateway_webhook_lag_events"), "gauge");
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_webhook_lag_events", "url", a, NULL), 10);
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_webhook_lag_events", "url", b, NULL), 0);
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_webhook_lag_events", "url", c, NULL), 0);
    CHECK_STR(pp_family_type(p, "dealflow_gateway_webhook_failing"), "gauge");
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_webhook_failing", "url", a, NULL), 1);
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_webhook_failing", "url", b, NULL), 0);
    json_decref(p);
}

/* Nothing at all: the families are there, empty, and the text parses. */
static void test_empty(void)
{
    json_t *p = render_and_parse(NULL, NULL, 0, NULL, 0, NULL);
    if (!p)
        return;
    CHECK_VALUE(pp_sample(p, "dealflow_gateway_daemon_up", NULL), 0);
    CHECK_STR(pp_family_type(p, "dealflow_gateway_http_requests"), "counter");
    CHECK_STR(pp_family_type(p, "dealflow_gateway_webhook_lag_events"), "gauge");
    json_decref(p);
}

/* An error reply, garbage and a reply whose values do not fit: the daemon
 * is shown down or the misfits left out, and the text still parses. */
static void test_hostile_stats(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "ok");
    msgpack_pack_false(&pk);
    pack_str(&pk, "error");
    pack_str(&pk, "forbidden");
    pack_str(&pk, "events");
    msgpack_pack_uint64(&pk, 5);
    json_t *p = render_and_parse(&sb, NULL, 0, NULL, 0, NULL);
    if (p) {
        CHECK_VALUE(pp_sample(p, "dealflow_gateway_daemon_up", NULL), 0);
        CHECK(pp_family_type(p, "dealflow_events") == NULL);
        json_decref(p);
    }
    msgpack_sbuffer_destroy(&sb);

    /* an array header that claims more than the bytes hold */
    static const char garbage[] = "\x81\xa2ok\xc3\xdd\xff\xff\xff\xff";
    msgpack_sbuffer raw = {.size = sizeof(garbage) - 1, .data = (char *)garbage};
    p = render_and_parse(&raw, NULL, 0, NULL, 0, NULL);
    if (p) {
        CHECK_VALUE(pp_sample(p, "dealflow_gateway_daemon_up", NULL), 0);
        json_decref(p);
    }

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 9);
    pack_str(&pk, "ok");
    msgpack_pack_true(&pk);
    pack_str(&pk, "events");
    msgpack_pack_int64(&pk, -3); /* a counter below zero */
    pack_str(&pk, "deals");
    msgpack_pack_uint64(&pk, 8);
    pack_str(&pk, "deals"); /* a second of the same key: the first counts */
    msgpack_pack_uint64(&pk, 9);
    pack_str(&pk, "commit_latency"); /* counts that fall: no histogram */
    static const uint64_t falling[NBOUNDS] = {5, 4, 4, 4, 4, 4, 4, 4};
    pack_histogram(&pk, falling, 5, 10);
    pack_str(&pk, "append_latency"); /* a bucket over the count */
    static const uint64_t over[NBOUNDS] = {0, 0, 0, 0, 0, 0, 0, 9};
    pack_histogram(&pk, over, 5, 10);
    pack_str(&pk, "gateway_daemon_up"); /* a name the gateway gives */
    msgpack_pack_uint64(&pk, 7);
    pack_str(&pk, "deals_total"); /* a sample name another family gives */
    msgpack_pack_uint64(&pk, 7);
    pack_str(&pk, "nested");
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "x");
    msgpack_pack_uint64(&pk, 1);
    p = render_and_parse(&sb, NULL, 0, NULL, 0, NULL);
    if (p) {
        CHECK_VALUE(pp_sample(p, "dealflow_gateway_daemon_up", NULL), 1);
        CHECK(pp_family_type(p, "dealflow_events") == NULL);
        CHECK_VALUE(pp_sample(p, "dealflow_deals", NULL), 8);
        CHECK(pp_family_type(p, "dealflow_commit_latency_seconds") == NULL);
        CHECK(pp_family_type(p, "dealflow_append_latency_seconds") == NULL);
        CHECK(pp_family_type(p, "dealflow_deals_total") == NULL);
        CHECK(pp_family_type(p, "dealflow_nested") == NULL);
        CHECK(pp_family_type(p, "dealflow_nested_seconds") == NULL);
        json_decref(p);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* A real daemon's `stats` after some appends: the figures of the text are
 * those of the reply, the histograms' counts those of the appends and
 * commits. */
static void test_real_daemon(void)
{
    static it_daemon d;
    if (!it_setup(&d, NULL))
        return;
    for (int i = 0; i < 4; i++)
        CHECK(it_append(&d, "{id: p-%d, type: stage, deal: p-%d, stage: lead, at: %lld}", i, i,
                        (long long)IT_T0) > 0);
    df_client_options opt = {.api = d.api, .ingest = d.ingest, .notify = d.notify};
    df_client *c = NULL;
    df_error err;
    df_bytes reply = {0};
    CHECK_INT(df_client_open(&c, &opt, &err), 0);
    CHECK_INT(df_get_stats(c, &reply, &err), 0);
    df_client_close(c);
    msgpack_sbuffer sb = {.size = reply.len, .data = reply.data};
    json_t *p = render_and_parse(&sb, NULL, 0, NULL, 0, NULL);
    msgpack_zone zone;
    msgpack_object stats;
    msgpack_zone_init(&zone, 4096);
    CHECK_INT(msgpack_unpack(reply.data, reply.len, NULL, &zone, &stats), MSGPACK_UNPACK_SUCCESS);
    if (p) {
        CHECK_VALUE(pp_sample(p, "dealflow_gateway_daemon_up", NULL), 1);
        CHECK_VALUE(pp_sample(p, "dealflow_events_total", NULL), it_int(&stats, "events"));
        CHECK_VALUE(pp_sample(p, "dealflow_events_total", NULL), 4);
        CHECK_VALUE(pp_sample(p, "dealflow_deals", NULL), 4);
        CHECK_VALUE(pp_sample(p, "dealflow_commits_total", NULL), it_int(&stats, "commits"));
        CHECK_VALUE(pp_sample(p, "dealflow_map_bytes", NULL), it_int(&stats, "map_bytes"));
        CHECK_VALUE(pp_sample(p, "dealflow_uptime_seconds", NULL),
                    (double)it_int(&stats, "uptime_ms") / 1000);
        CHECK_VALUE(pp_sample(p, "dealflow_append_latency_seconds_count", NULL), 4);
        CHECK_VALUE(pp_sample(p, "dealflow_commit_latency_seconds_count", NULL),
                    it_int(&stats, "commits"));
        const msgpack_object *commit = it_get(&stats, "commit_latency");
        CHECK_VALUE(pp_sample(p, "dealflow_commit_latency_seconds_sum", NULL),
                    (double)it_int(commit, "sum_us") / 1e6);
        CHECK_VALUE(pp_sample(p, "dealflow_commit_latency_seconds_bucket", "le", "0.01", NULL),
                    (double)it_at(it_at(it_get(commit, "buckets"), 7), 1)->via.u64);
        /* every number of the reply is shown */
        static const char *const shown[] = {"dealflow_events",
                                            "dealflow_duplicates",
                                            "dealflow_rejected",
                                            "dealflow_deals",
                                            "dealflow_last_seq",
                                            "dealflow_flushed_seq",
                                            "dealflow_commits",
                                            "dealflow_flushes",
                                            "dealflow_notifications",
                                            "dealflow_stale_notifications",
                                            "dealflow_pending_items",
                                            "dealflow_uptime_seconds",
                                            "dealflow_db_bytes",
                                            "dealflow_disk_free_bytes",
                                            "dealflow_map_bytes",
                                            "dealflow_map_used_bytes",
                                            "dealflow_store_full",
                                            "dealflow_lost",
                                            "dealflow_commit_latency_seconds",
                                            "dealflow_append_latency_seconds"};
        for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
            if (!pp_family_type(p, shown[i])) {
                fprintf(stderr, "%s is not shown\n", shown[i]);
                CHECK(pp_family_type(p, shown[i]) != NULL);
            }
        CHECK_INT(json_object_size(json_object_get(p, "families")),
                  sizeof(shown) / sizeof(shown[0]) + 1 + 6);
        json_decref(p);
    }
    msgpack_zone_destroy(&zone);
    df_bytes_free(&reply);
    it_teardown(&d);
}

static const df_test tests[] = {
    {"daemon_stats", test_daemon_stats},
    {"gateway_counts", test_gateway_counts},
    {"empty", test_empty},
    {"hostile_stats", test_hostile_stats},
    {"real_daemon", test_real_daemon},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    if (!pp_find_python()) {
        fprintf(stderr, "skipped: no python3 with prometheus_client (python3-prometheus-client)\n");
        return 77;
    }
    return df_test_main(argc, argv, tests, NULL);
}
