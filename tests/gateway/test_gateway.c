/* test_gateway.c: dealflow-gateway end to end: the real daemon and the built gateway on free
 * loopback ports, spoken to over HTTP: events in all three body forms recorded (read back from
 * the daemon), a retry answered dup, each refusal with its status, 503 while the daemon is down
 * and 200 again after it is back, and the reads answering the daemon's figures as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "gateway_harness.h"

#define BODY_LIMIT     4096
#define PRODUCER_TOKEN "producer-token-0123456789"
#define READER_TOKEN   "reader-token-0123456789"
#define ADMIN_TOKEN    "admin-token-0123456789"

static it_daemon D;
static gw_gateway G;

static gw_http request(const char *method, const char *path, const char *token, const char *body)
{
    return gw_request_as(&G, method, path, token, body);
}

/* The deal's version as the daemon itself says (how many events it recorded). */
static int64_t recorded_version(const char *deal)
{
    const msgpack_object *r = it_call(&D, "{op: deal, deal: %s}", deal);
    int64_t v = it_ok(r) ? it_int(it_get(r, "deal"), "version") : -1;
    it_release();
    return v;
}

static bool setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!it_start(&D, NULL) || !gw_init(&G, D.dir, "gateway"))
        return false;
    if (!gw_write_config(
            &G,
            "{\"tokens\": [{\"token\": \"%s\", \"role\": \"producer\", \"name\": \"crm\"},"
            " {\"token\": \"%s\", \"role\": \"reader\", \"name\": \"dash\"},"
            " {\"token\": \"%s\", \"role\": \"admin\", \"name\": \"ops\"}],"
            " \"daemon\": {\"timeout_ms\": 1000, \"attempts\": 2},"
            " \"limits\": {\"body_bytes\": %d, \"connections\": 64, \"timeout_s\": 10}}\n",
            PRODUCER_TOKEN, READER_TOKEN, ADMIN_TOKEN, BODY_LIMIT))
        return false;
    const char *const args[] = {"--api", D.api, NULL};
    return gw_start(&G, args);
}

static void teardown(void)
{
    if (G.process.pid > 0) {
        CHECK(gw_running(&G));
        CHECK_INT(gw_stop(&G), 0);
    }
    it_cleanup(&D);
    CHECK_INT(it_done(), 0);
    curl_global_cleanup();
}

static void test_one_event(void)
{
    gw_http h = request("POST", "/v1/events", PRODUCER_TOKEN,
                        "{\"id\":\"one-1\",\"type\":\"stage\",\"deal\":\"one\",\"stage\":\"lead\","
                        "\"amount\":1000,\"at\":\"2024-01-31T10:00:00Z\"}");
    CHECK_HTTP(h, 200);
    CHECK_STR(gw_header(&h, "Content-Type"), "application/json");
    int dup;
    CHECK(gw_result_seq(&h, 0, &dup) > 0);
    CHECK_INT(dup, 0);
    gw_http_free(&h);
    CHECK_INT(recorded_version("one"), 1);
    const msgpack_object *r = it_call(&D, "{op: history, deal: one}");
    CHECK_INT(it_int(it_at(it_get(r, "events"), 0), "at"), 1706695200000LL);
    CHECK_INT(it_int(it_at(it_get(r, "events"), 0), "amount"), 1000);
    it_release();
}

static void test_array_of_events(void)
{
    gw_http h =
        request("POST", "/v1/events", PRODUCER_TOKEN,
                "[{\"id\":\"arr-1\",\"type\":\"stage\",\"deal\":\"arr\",\"stage\":\"lead\"},"
                " {\"id\":\"arr-2\",\"type\":\"activity\",\"deal\":\"arr\",\"kind\":\"call\"},"
                " {\"id\":\"arr-3\",\"type\":\"stage\",\"deal\":\"arr\",\"stage\":\"qualified\"}]");
    CHECK_HTTP(h, 200);
    CHECK_INT(json_array_size(json_object_get(h.json, "results")), 3);
    gw_http_free(&h);
    CHECK_INT(recorded_version("arr"), 3);
}

static void test_ndjson(void)
{
    gw_http h =
        request("POST", "/v1/events", PRODUCER_TOKEN,
                "{\"id\":\"nd-1\",\"type\":\"stage\",\"deal\":\"nd\",\"stage\":\"lead\"}\n"
                "{\"id\":\"nd-2\",\"type\":\"activity\",\"deal\":\"nd\",\"kind\":\"email\"}\n");
    CHECK_HTTP(h, 200);
    CHECK_INT(json_array_size(json_object_get(h.json, "results")), 2);
    gw_http_free(&h);
    CHECK_INT(recorded_version("nd"), 2);
}

static void test_dup_on_retry(void)
{
    const char *body = "{\"id\":\"dup-1\",\"type\":\"stage\",\"deal\":\"dup\",\"stage\":\"lead\"}";
    gw_http first = request("POST", "/v1/events", PRODUCER_TOKEN, body);
    gw_http again = request("POST", "/v1/events", ADMIN_TOKEN, body);
    CHECK_HTTP(first, 200);
    CHECK_HTTP(again, 200);
    int dup1, dup2;
    long long seq1 = gw_result_seq(&first, 0, &dup1), seq2 = gw_result_seq(&again, 0, &dup2);
    CHECK(seq1 > 0);
    CHECK_INT(seq2, seq1);
    CHECK_INT(dup1, 0);
    CHECK_INT(dup2, 1);
    gw_http_free(&first);
    gw_http_free(&again);
    CHECK_INT(recorded_version("dup"), 1);
}

static void test_refused_event_in_batch(void)
{
    /* the daemon refuses one event alone; the others are recorded */
    gw_http h =
        request("POST", "/v1/events", PRODUCER_TOKEN,
                "[{\"id\":\"mix-1\",\"type\":\"stage\",\"deal\":\"mix\",\"stage\":\"lead\"},"
                " {\"id\":\"mix-2\",\"type\":\"stage\",\"deal\":\"mix\",\"stage\":\"nowhere\"}]");
    CHECK_HTTP(h, 200);
    json_t *bad = json_array_get(json_object_get(h.json, "results"), 1);
    CHECK_STR(json_string_value(json_object_get(bad, "error")), "unknown_stage");
    gw_http_free(&h);
    CHECK_INT(recorded_version("mix"), 1);
}

static void test_bad_bodies(void)
{
    static const char *const bodies[] = {
        "{\"id\": ", "[1, 2]", "\"an event\"", "", "[]", "{\"id\":\"t\",\"at\":\"soon\"}", NULL};
    for (int i = 0; bodies[i]; i++) {
        gw_http h = request("POST", "/v1/events", PRODUCER_TOKEN, bodies[i]);
        CHECK_HTTP(h, 400);
        CHECK_STR(gw_error_of(&h), "bad_request");
        CHECK(json_is_string(json_object_get(h.json, "message")));
        CHECK_STR(gw_header(&h, "Content-Type"), "application/json");
        gw_http_free(&h);
    }
}

static void test_tokens_and_roles(void)
{
    const char *body = "{\"id\":\"tok-1\",\"type\":\"stage\",\"deal\":\"tok\",\"stage\":\"lead\"}";
    gw_http none = request("POST", "/v1/events", NULL, body);
    gw_http unknown = request("POST", "/v1/events", "not-a-token", body);
    gw_http reader = request("POST", "/v1/events", READER_TOKEN, body);
    gw_http producer_reads = request("GET", "/v1/board", PRODUCER_TOKEN, NULL);
    CHECK_HTTP(none, 401);
    CHECK_HTTP(unknown, 401);
    CHECK_HTTP(reader, 403);
    CHECK_HTTP(producer_reads, 403);
    CHECK_STR(gw_error_of(&reader), "forbidden");
    gw_http_free(&none);
    gw_http_free(&unknown);
    gw_http_free(&reader);
    gw_http_free(&producer_reads);
    CHECK_INT(recorded_version("tok"), -1);
}

static void test_over_limit(void)
{
    char *body = malloc(BODY_LIMIT * 2 + 1);
    memset(body, ' ', BODY_LIMIT * 2);
    static const char start[] =
        "[{\"id\":\"big-1\",\"type\":\"stage\",\"deal\":\"big\",\"stage\":\"lead\"}";
    memcpy(body, start, sizeof start - 1);
    body[BODY_LIMIT * 2 - 1] = ']';
    body[BODY_LIMIT * 2] = '\0';
    gw_http h = request("POST", "/v1/events", PRODUCER_TOKEN, body);
    CHECK_HTTP(h, 413);
    CHECK_STR(gw_error_of(&h), "too_large");
    gw_http_free(&h);
    free(body);
    CHECK_INT(recorded_version("big"), -1);
}

static void test_routes_and_methods(void)
{
    static const struct {
        const char *method, *path;
        long status;
    } cases[] = {
        {"GET", "/v1/nothing", 404},       {"POST", "/v1/hooks/hubspot", 404},
        {"GET", "/metricz", 404},          {"POST", "/metrics", 405},
        {"GET", "/v1/hooks/hubspot", 405}, {"GET", "/v1/events", 405},
        {"DELETE", "/v1/board", 405},      {"GET", "/v1/deals/one/else", 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gw_http h = request(cases[i].method, cases[i].path, ADMIN_TOKEN, NULL);
        CHECK_HTTP(h, cases[i].status);
        gw_http_free(&h);
    }
}

static void test_reads(void)
{
    gw_http h =
        request("POST", "/v1/events", PRODUCER_TOKEN,
                "[{\"id\":\"rd-1\",\"type\":\"stage\",\"deal\":\"re/ad\",\"stage\":\"lead\","
                "\"amount\":500,\"at\":1700000000000},"
                " {\"id\":\"rd-2\",\"type\":\"stage\",\"deal\":\"re/ad\",\"stage\":\"won\","
                "\"at\":1700086400000}]");
    CHECK_HTTP(h, 200);
    gw_http_free(&h);

    h = request("GET", "/v1/deals/re%2Fad?now=2023-11-20", READER_TOKEN, NULL);
    CHECK_HTTP(h, 200);
    json_t *deal = json_object_get(h.json, "deal");
    CHECK_STR(json_string_value(json_object_get(deal, "stage")), "won");
    CHECK_STR(json_string_value(json_object_get(deal, "status")), "won");
    CHECK_INT(json_integer_value(json_object_get(deal, "version")), 2);
    CHECK(json_object_get(h.json, "ok") == NULL);
    gw_http_free(&h);

    h = request("GET", "/v1/deals/re%2Fad?as_of=1700000000000", READER_TOKEN, NULL);
    CHECK_STR(json_string_value(json_object_get(json_object_get(h.json, "deal"), "stage")), "lead");
    gw_http_free(&h);

    h = request("GET", "/v1/deals/re%2Fad/history", ADMIN_TOKEN, NULL);
    CHECK_HTTP(h, 200);
    json_t *events = json_object_get(h.json, "events");
    CHECK_INT(json_array_size(events), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(events, 1), "id")), "rd-2");
    CHECK(json_is_false(json_object_get(h.json, "more")));
    gw_http_free(&h);

    h = request("GET", "/v1/deals/re%2Fad/history?limit=1", READER_TOKEN, NULL);
    CHECK_INT(json_array_size(json_object_get(h.json, "events")), 1);
    CHECK(json_is_true(json_object_get(h.json, "more")));
    json_t *first = json_array_get(json_object_get(h.json, "events"), 0);
    char path[128];
    snprintf(path, sizeof path, "/v1/deals/re%%2Fad/history?after=%lld",
             (long long)json_integer_value(json_object_get(first, "seq")));
    gw_http_free(&h);
    h = request("GET", path, READER_TOKEN, NULL);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(h.json, "events"), 0), "id")),
              "rd-2");
    gw_http_free(&h);

    h = request("GET", "/v1/deals/nobody", READER_TOKEN, NULL);
    CHECK_HTTP(h, 404);
    CHECK_STR(gw_error_of(&h), "not_found");
    gw_http_free(&h);

    /* the board and the metrics as the daemon gives them */
    h = request("GET", "/v1/board?pipeline=default&now=2023-11-20", READER_TOKEN, NULL);
    CHECK_HTTP(h, 200);
    const msgpack_object *r =
        it_call(&D, "{op: board, pipeline: default, now: %lld}", 1700438400000LL);
    json_t *stages = json_object_get(h.json, "stages");
    CHECK_INT((long)json_array_size(stages), it_len(it_get(r, "stages")));
    for (uint32_t i = 0; i < json_array_size(stages); i++) {
        json_t *s = json_array_get(stages, i);
        CHECK_STR(json_string_value(json_object_get(s, "stage")),
                  it_str(it_at(it_get(r, "stages"), i), "stage"));
        CHECK_INT(json_integer_value(json_object_get(s, "count")),
                  it_int(it_at(it_get(r, "stages"), i), "count"));
    }
    it_release();
    gw_http_free(&h);

    h = request("GET", "/v1/metrics?from=2023-11-01&to=2023-12-01", READER_TOKEN, NULL);
    CHECK_HTTP(h, 200);
    r = it_call(&D, "{op: metrics, from: %lld, to: %lld}", 1698796800000LL, 1701388800000LL);
    CHECK_INT(json_integer_value(json_object_get(h.json, "won")), it_int(r, "won"));
    CHECK(json_integer_value(json_object_get(h.json, "won")) >= 1);
    CHECK_INT(json_integer_value(json_object_get(h.json, "open")), it_int(r, "open"));
    it_release();
    gw_http_free(&h);

    static const char *const bad[] = {"/v1/metrics?form=2023-11-01", "/v1/board?now=later",
                                      "/v1/deals/one/history?limit=0", "/v1/board?now=1&now=2",
                                      NULL};
    for (int i = 0; bad[i]; i++) {
        h = request("GET", bad[i], READER_TOKEN, NULL);
        CHECK_HTTP(h, 400);
        gw_http_free(&h);
    }
    h = request("GET", "/v1/board?pipeline=nope", READER_TOKEN, NULL);
    CHECK_HTTP(h, 404);
    CHECK_STR(gw_error_of(&h), "unknown_pipeline");
    gw_http_free(&h);
}

static void test_daemon_down(void)
{
    CHECK_INT(it_stop(&D), 0);
    const char *body =
        "{\"id\":\"down-1\",\"type\":\"stage\",\"deal\":\"down\",\"stage\":\"lead\"}";
    gw_http h = request("POST", "/v1/events", PRODUCER_TOKEN, body);
    CHECK_HTTP(h, 503);
    CHECK_STR(gw_header(&h, "Retry-After"), "1");
    CHECK_STR(gw_error_of(&h), "unreachable");
    gw_http_free(&h);
    h = request("GET", "/v1/board", READER_TOKEN, NULL);
    CHECK_HTTP(h, 503);
    gw_http_free(&h);
    h = request("GET", "/healthz", NULL, NULL);
    CHECK_HTTP(h, 503);
    CHECK_STR(gw_header(&h, "Retry-After"), "1");
    gw_http_free(&h);

    CHECK(it_restart(&D));
    CHECK(gw_wait_ready(&G));
    h = request("POST", "/v1/events", PRODUCER_TOKEN, body);
    CHECK_HTTP(h, 200);
    gw_http_free(&h);
    CHECK_INT(recorded_version("down"), 1);
}

int main(int argc, char **argv)
{
    static const df_test tests[] = {
        {"one_event", test_one_event},
        {"array_of_events", test_array_of_events},
        {"ndjson", test_ndjson},
        {"dup_on_retry", test_dup_on_retry},
        {"refused_event_in_batch", test_refused_event_in_batch},
        {"bad_bodies", test_bad_bodies},
        {"tokens_and_roles", test_tokens_and_roles},
        {"over_limit", test_over_limit},
        {"routes_and_methods", test_routes_and_methods},
        {"reads", test_reads},
        {"daemon_down", test_daemon_down},
        {NULL, NULL},
    };
    static const df_fixture fixture = {setup, teardown, NULL};
    return df_test_main(argc, argv, tests, &fixture);
}
