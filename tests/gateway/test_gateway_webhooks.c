/* test_gateway_webhooks.c: webhooks out through the built dealflow-gateway: the real daemon, the
 * gateway with a config naming an HTTP receiver this test runs and a state directory. Moves are
 * delivered in seq order and signed, held while the receiver answers 500 and all delivered
 * after, and across a stop (SIGTERM) and a start of the gateway none is skipped and none that was
 * acknowledged comes again; GET /v1/webhooks shows each endpoint's state. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "gateway_harness.h"
#include "webhook_receiver.h"

#define MAX_SEEN       256
#define SECRET         "webhook-secret-0123"
#define PRODUCER_TOKEN "producer-token-0123456789"
#define READER_TOKEN   "reader-token-0123456789"

static it_daemon D;
static gw_gateway G;
static gw_receiver rx;
static char hook_url[96]; /* rx's, with credentials and a query that must not show */
static int next_id;

/* The receiver took exactly these seqs, in this order, each signed right and sent as JSON. */
static void check_received(const int64_t *seqs, int n)
{
    int accepted = gw_receiver_accepted(&rx);
    CHECK_INT(accepted, n);
    for (int i = 0; i < n && i < accepted; i++) {
        gw_received got = gw_receiver_accepted_at(&rx, i);
        if (got.seq != seqs[i])
            fprintf(stderr, "delivery %d: seq %lld, expected %lld\n", i, (long long)got.seq,
                    (long long)seqs[i]);
        CHECK(got.seq == seqs[i]);
        CHECK(strncmp(got.topic, "deal.moved.default.", 19) == 0);
    }
    CHECK_INT(gw_receiver_bad_signatures(&rx), 0);
    CHECK_INT(gw_receiver_bad_content_types(&rx), 0);
}

static bool wait_accepted(int n)
{
    return gw_receiver_wait_accepted(&rx, n, GW_WAIT_MS);
}

/* ---- HTTP to the gateway ---- */

/* method path with the token (NULL: none) and body (NULL: none). */
static gw_http request(const char *method, const char *path, const char *token, const char *body)
{
    return gw_request_as(&G, method, path, token, body);
}

/* The one endpoint's state from GET /v1/webhooks (a new reference), NULL without it. */
static json_t *endpoint_state(void)
{
    gw_http h = request("GET", "/v1/webhooks", READER_TOKEN, NULL);
    json_t *e = json_array_get(json_object_get(h.json, "webhooks"), 0);
    json_incref(e);
    gw_http_free(&h);
    return e;
}

static long long state_int(const json_t *e, const char *key)
{
    return (long long)json_integer_value(json_object_get(e, key));
}

/* Waits until the endpoint's `key` is at least at_least. */
static bool wait_state(const char *key, long long at_least)
{
    int64_t deadline = it_mono_ms() + GW_WAIT_MS;
    long long v = -1;
    while (it_mono_ms() < deadline) {
        json_t *e = endpoint_state();
        v = e ? state_int(e, key) : -1;
        json_decref(e);
        if (v >= at_least)
            return true;
        usleep(20 * 1000);
    }
    fprintf(stderr, "GET /v1/webhooks: %s is %lld, expected at least %lld\n", key, v, at_least);
    return false;
}

/* ---- moves ---- */

/* New deals' first stages through POST /v1/events, one request; their seqs into seqs. */
static bool post_moves(int n, int64_t *seqs)
{
    char body[8192] = "[";
    size_t len = 1;
    for (int i = 0; i < n; i++) {
        int id = ++next_id;
        len += (size_t)snprintf(body + len, sizeof body - len,
                                "%s{\"id\": \"w-%d\", \"type\": \"stage\", \"deal\": \"wd-%d\","
                                " \"stage\": \"lead\", \"at\": %lld}",
                                i ? "," : "", id, id, IT_T0 + id);
    }
    snprintf(body + len, sizeof body - len, "]");
    gw_http h = request("POST", "/v1/events", PRODUCER_TOKEN, body);
    json_t *results = json_object_get(h.json, "results");
    bool ok = h.status == 200 && json_array_size(results) == (size_t)n;
    for (int i = 0; ok && i < n; i++) {
        json_t *seq = json_object_get(json_array_get(results, (size_t)i), "seq");
        ok = json_is_integer(seq);
        seqs[i] = json_integer_value(seq);
    }
    if (!ok)
        fprintf(stderr, "POST /v1/events: %ld %s\n", h.status, h.text ? h.text : "(none)");
    gw_http_free(&h);
    CHECK(ok);
    return ok;
}

/* One move straight to the daemon, while the gateway is stopped. */
static int64_t append_move(void)
{
    int id = ++next_id;
    int64_t seq = it_append(&D, "{id: w-%d, type: stage, deal: wd-%d, stage: lead, at: %lld}", id,
                            id, IT_T0 + id);
    CHECK(seq > 0);
    return seq;
}

/* ---- the gateway process ---- */

static bool gateway_start(void)
{
    const char *const args[] = {"--api", D.api, "--ingest", D.ingest, "--notify", D.notify, NULL};
    return gw_start(&G, args);
}

static bool setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!it_start(&D, NULL) || !gw_receiver_start(&rx, SECRET, 200) ||
        !gw_init(&G, D.dir, "gateway"))
        return false;
    snprintf(hook_url, sizeof hook_url, "http://user:pw@127.0.0.1:%u/hook?key=k",
             (unsigned)rx.port);
    if (!gw_write_config(
            &G,
            "{\"tokens\": [{\"token\": \"%s\", \"role\": \"producer\", \"name\": \"crm\"},"
            " {\"token\": \"%s\", \"role\": \"reader\", \"name\": \"ops\"}],"
            " \"webhooks\": [{\"url\": \"%s\", \"topics\": \"deal.moved.\", \"secret\": \"%s\"}],"
            " \"state_dir\": \"%s/gateway-state\"}\n",
            PRODUCER_TOKEN, READER_TOKEN, hook_url, SECRET, D.dir))
        return false;
    /* a move first, so that the new endpoint has a daemon's end to start after */
    int64_t marker = append_move();
    if (!gateway_start() || !wait_state("position", marker))
        return false;
    return gw_log_contains(&G, "delivering webhooks to 1 endpoint");
}

static void teardown(void)
{
    if (G.process.pid > 0)
        CHECK_INT(gw_stop(&G), 0);
    gw_receiver_stop(&rx);
    it_cleanup(&D);
    CHECK_INT(it_done(), 0);
    curl_global_cleanup();
}

/* ---- the tests, in order: each adds to what the receiver took ---- */

static int64_t all_seqs[MAX_SEEN];
static int nseqs;

static void test_in_seq_order_and_signed(void)
{
    CHECK(post_moves(10, all_seqs + nseqs));
    nseqs += 10;
    CHECK(wait_accepted(nseqs));
    check_received(all_seqs, nseqs);
    CHECK(wait_state("position", all_seqs[nseqs - 1]));
    json_t *e = endpoint_state();
    CHECK(e != NULL);
    char url[96];
    snprintf(url, sizeof url, "http://%s/hook", strchr(hook_url, '@') + 1);
    *strchr(url, '?') = '\0';
    CHECK_STR(json_string_value(json_object_get(e, "url")), url);
    CHECK_STR(json_string_value(json_object_get(e, "topics")), "deal.moved.");
    CHECK_INT(state_int(e, "delivered"), 10);
    CHECK_INT(state_int(e, "failures"), 0);
    CHECK_INT(state_int(e, "retries"), 0);
    CHECK_INT(state_int(e, "position"), all_seqs[nseqs - 1]);
    CHECK_INT(state_int(e, "lag"), 0);
    CHECK(json_is_false(json_object_get(e, "failing")));
    json_decref(e);
    /* /metrics shows the same, under the url without its credentials or query */
    gw_http h = request("GET", "/metrics", NULL, NULL);
    CHECK_INT(h.status, 200);
    char line[256];
    snprintf(line, sizeof line, "dealflow_gateway_webhook_deliveries_total{url=\"%s\"} 10\n", url);
    CHECK(h.text && strstr(h.text, line) != NULL);
    CHECK(h.text && strstr(h.text, strchr(hook_url, '?')) == NULL);
    CHECK(h.text && strstr(h.text, "user:pw") == NULL);
    gw_http_free(&h);
}

static void test_route_roles(void)
{
    gw_http h = request("GET", "/v1/webhooks", NULL, NULL);
    CHECK_INT(h.status, 401);
    gw_http_free(&h);
    h = request("GET", "/v1/webhooks", PRODUCER_TOKEN, NULL);
    CHECK_INT(h.status, 403);
    gw_http_free(&h);
    h = request("POST", "/v1/webhooks", READER_TOKEN, "{}");
    CHECK_INT(h.status, 405);
    gw_http_free(&h);
    h = request("GET", "/v1/webhooks", READER_TOKEN, NULL);
    CHECK_INT(h.status, 200);
    CHECK(strstr(h.text ? h.text : "", "pw") == NULL);
    CHECK(strstr(h.text ? h.text : "", "key=") == NULL);
    gw_http_free(&h);
}

static void test_held_while_failing(void)
{
    gw_receiver_set_status(&rx, 500);
    CHECK(post_moves(5, all_seqs + nseqs));
    nseqs += 5;
    CHECK(wait_state("failures", 3));
    /* the daemon's end is asked for while failing: the lag shows */
    CHECK(wait_state("lag", 5));
    json_t *e = endpoint_state();
    CHECK(json_is_true(json_object_get(e, "failing")));
    CHECK(state_int(e, "retries") >= 2);
    CHECK(state_int(e, "position") < all_seqs[nseqs - 5]);
    json_decref(e);
    CHECK_INT(gw_receiver_accepted(&rx), nseqs - 5);

    gw_receiver_set_status(&rx, 200);
    CHECK(wait_accepted(nseqs));
    CHECK(wait_state("position", all_seqs[nseqs - 1]));
    check_received(all_seqs, nseqs);
    e = endpoint_state();
    CHECK(json_is_false(json_object_get(e, "failing")));
    CHECK_INT(state_int(e, "lag"), 0);
    CHECK_INT(state_int(e, "delivered"), nseqs);
    json_decref(e);
    CHECK(gw_log_contains(&G, "failing at seq"));
    CHECK(gw_log_contains(&G, "delivering again"));
}

static void test_restart_neither_skips_nor_repeats(void)
{
    CHECK(post_moves(3, all_seqs + nseqs));
    nseqs += 3;
    CHECK(wait_accepted(nseqs));
    CHECK(wait_state("position", all_seqs[nseqs - 1]));
    CHECK_INT(gw_stop(&G), 0);
    for (int i = 0; i < 4; i++)
        all_seqs[nseqs++] = append_move();
    CHECK(gateway_start());
    CHECK(wait_accepted(nseqs));
    CHECK(wait_state("position", all_seqs[nseqs - 1]));
    /* and what comes after the restart, too */
    CHECK(post_moves(2, all_seqs + nseqs));
    nseqs += 2;
    CHECK(wait_accepted(nseqs));
    CHECK(wait_state("position", all_seqs[nseqs - 1]));
    check_received(all_seqs, nseqs);
    json_t *e = endpoint_state();
    CHECK_INT(state_int(e, "delivered"), 6); /* since this start */
    json_decref(e);
}

int main(int argc, char **argv)
{
    static const df_test tests[] = {
        {"in_seq_order_and_signed", test_in_seq_order_and_signed},
        {"route_roles", test_route_roles},
        {"held_while_failing", test_held_while_failing},
        {"restart_neither_skips_nor_repeats", test_restart_neither_skips_nor_repeats},
        {NULL, NULL},
    };
    static const df_fixture fixture = {setup, teardown, NULL};
    return df_test_main(argc, argv, tests, &fixture);
}
