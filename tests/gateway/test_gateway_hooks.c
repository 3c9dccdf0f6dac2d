/* test_gateway_hooks.c: hooks in and GET /metrics through the built gateway in front of the real
 * daemon: the HubSpot and Pipedrive example payloads of examples/, signed as their senders sign
 * them, recorded as the right events (read back from the daemon); a bad signature, a stale
 * HubSpot timestamp and wrong credentials refused with 401, a payload that does not fit with
 * 400; the bearer token required only by a hook without a signature; and /metrics read by
 * python3-prometheus-client's parser, its figures those of `stats` taken right after and its
 * request counts those of the requests made here. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "gateway_harness.h"
#include "prometheus_parse.h"

#define PRODUCER_TOKEN   "producer-token-0123456789"
#define READER_TOKEN     "reader-token-0123456789"
#define HUBSPOT_SECRET   "hubspot-client-secret-for-the-test"
#define HUBSPOT_URL      "https://gateway.example.com/v1/hooks/hubspot"
#define PIPEDRIVE_USER   "dealflow"
#define PIPEDRIVE_SECRET "pipedrive-password-for-the-test"
#define MAX_TALLY        64

static it_daemon D;
static gw_gateway G;

/* Every answer the gateway gave this test, by route pattern and status, to check /metrics. */
typedef struct answered {
    const char *route;
    long status;
    uint64_t count;
} answered;
static answered tally[MAX_TALLY];
static size_t ntally;

static const char *route_of(const char *path)
{
    if (strncmp(path, "/v1/hooks/", 10) == 0)
        return "/v1/hooks/{name}";
    if (strcmp(path, "/metrics") == 0)
        return "/metrics";
    if (strcmp(path, "/healthz") == 0)
        return "/healthz";
    return "/v1/events";
}

static void count_answer(const char *path, long status)
{
    if (status == 0)
        return;
    const char *route = route_of(path);
    for (size_t i = 0; i < ntally; i++)
        if (strcmp(tally[i].route, route) == 0 && tally[i].status == status) {
            tally[i].count++;
            return;
        }
    CHECK(ntally < MAX_TALLY);
    if (ntally < MAX_TALLY)
        tally[ntally++] = (answered){route, status, 1};
}

/* method path with the headers (NULL-ended "Name: value" lines) and body (NULL: none). */
static gw_http request(const char *method, const char *path, const char *const *headers,
                       const char *body)
{
    return gw_request(&G, method, path, headers, body);
}

static char *load_example(const char *name)
{
    char path[IT_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", EXAMPLES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *text = malloc((size_t)size + 1);
    if (text && fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        text = NULL;
    }
    if (text)
        text[size] = '\0';
    fclose(f);
    return text;
}

/* The X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp lines of a HubSpot request at ts. */
static void hubspot_headers(const char *secret, const char *body, int64_t ts, char sig_line[128],
                            char ts_line[64])
{
    char stamp[32];
    snprintf(stamp, sizeof stamp, "%lld", (long long)ts);
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"POST", 4);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)HUBSPOT_URL, strlen(HUBSPOT_URL));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)stamp, strlen(stamp));
    crypto_auth_hmacsha256_final(&st, mac);
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    snprintf(sig_line, 128, "X-HubSpot-Signature-v3: %s", b64);
    snprintf(ts_line, 64, "X-HubSpot-Request-Timestamp: %s", stamp);
}

static gw_http post_hubspot(const char *secret, const char *body, int64_t ts)
{
    char sig[128], stamp[64];
    hubspot_headers(secret, body, ts, sig, stamp);
    const char *const headers[] = {sig, stamp, "Content-Type: application/json", NULL};
    return request("POST", "/v1/hooks/hubspot", headers, body);
}

static gw_http post_pipedrive(const char *user, const char *password, const char *body)
{
    char credentials[128], b64[192], auth[256];
    snprintf(credentials, sizeof credentials, "%s:%s", user, password);
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)credentials, strlen(credentials),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(auth, sizeof auth, "Authorization: Basic %s", b64);
    const char *const headers[] = {auth, "Content-Type: application/json", NULL};
    return request("POST", "/v1/hooks/pipedrive", headers, body);
}

/* ---- setup ---- */

static bool write_config(void)
{
    json_error_t jerr;
    char path[IT_PATH_MAX];
    snprintf(path, sizeof path, "%s/hubspot-deals.json", EXAMPLES_DIR);
    json_t *hubspot = json_load_file(path, 0, &jerr);
    snprintf(path, sizeof path, "%s/pipedrive-deals.json", EXAMPLES_DIR);
    json_t *pipedrive = json_load_file(path, 0, &jerr);
    if (!hubspot || !pipedrive)
        return false;
    json_t *hooks = json_object();
    json_t *h = json_object_get(json_object_get(hubspot, "hooks"), "hubspot");
    json_object_set_new(h, "secret", json_string(HUBSPOT_SECRET));
    json_object_set(hooks, "hubspot", h);
    json_t *p = json_object_get(json_object_get(pipedrive, "hooks"), "pipedrive");
    json_object_set_new(p, "user", json_string(PIPEDRIVE_USER));
    json_object_set_new(p, "password", json_string(PIPEDRIVE_SECRET));
    json_object_set(hooks, "pipedrive", p);
    json_object_set_new(hooks, "open",
                        json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "signature", "none", "event",
                                  "id", "$.id", "type", "stage", "deal", "$.deal", "stage",
                                  "$.stage"));
    json_t *config =
        json_pack("{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}], s:{s:i, s:i}, s:o, s:{s:i, s:i}}",
                  "tokens", "token", PRODUCER_TOKEN, "role", "producer", "name", "crm", "token",
                  READER_TOKEN, "role", "reader", "name", "dash", "daemon", "timeout_ms", 2000,
                  "attempts", 2, "hooks", hooks, "limits", "connections", 64, "timeout_s", 10);
    int rc = config ? json_dump_file(config, G.config, JSON_INDENT(2)) : -1;
    json_decref(config);
    json_decref(hubspot);
    json_decref(pipedrive);
    return rc == 0;
}

static bool setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (sodium_init() < 0 || !it_start(&D, NULL) || !gw_init(&G, D.dir, "gateway") ||
        !write_config())
        return false;
    G.on_answer = count_answer; /* from the first /healthz on */
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

/* ---- hooks in ---- */

static void test_hubspot_example(void)
{
    char *body = load_example("hubspot-deal-payload.json");
    CHECK(body != NULL);
    if (!body)
        return;
    gw_http h = post_hubspot(HUBSPOT_SECRET, body, it_wall_ms() - 1000);
    CHECK_HTTP(h, 200);
    /* five notifications, the deal.creation one skipped by the mapping */
    CHECK_INT(json_array_size(json_object_get(h.json, "results")), 4);
    int dup;
    long long first = gw_result_seq(&h, 0, &dup);
    CHECK(first > 0);
    CHECK_INT(dup, 0);
    gw_http_free(&h);

    const msgpack_object *r = it_call(&D, "{op: history, deal: hubspot-18045012}");
    const msgpack_object *events = it_get(r, "events");
    CHECK_INT(it_len(events), 2);
    CHECK_STR(it_str(it_at(events, 0), "id"), "hubspot-18045012-dealstage-1717236000000");
    CHECK_STR(it_str(it_at(events, 0), "type"), "stage");
    CHECK_STR(it_str(it_at(events, 0), "stage"), "qualified");
    CHECK_INT(it_int(it_at(events, 0), "at"), 1717236000000LL);
    CHECK_INT(it_int(it_at(events, 0), "seq"), first);
    CHECK_STR(it_str(it_at(events, 1), "type"), "update");
    CHECK(fabs(it_num(it_at(events, 1), "amount") - 12500.5) < 1e-9);
    it_release();
    r = it_call(&D, "{op: deal, deal: hubspot-18045977}");
    const msgpack_object *deal = it_get(r, "deal");
    CHECK_STR(it_str(deal, "stage"), "won");
    CHECK_STR(it_str(deal, "status"), "won");
    CHECK_INT(it_int(deal, "close_date"), 1719792000000LL);
    CHECK_INT(it_int(deal, "version"), 2);
    it_release();
    r = it_call(&D, "{op: deal, deal: hubspot-18046001}");
    CHECK_STR(it_err(r), "not_found");
    it_release();

    /* HubSpot retries a notification it got no 2xx for: the same events are duplicates */
    h = post_hubspot(HUBSPOT_SECRET, body, it_wall_ms());
    CHECK_HTTP(h, 200);
    CHECK_INT(gw_result_seq(&h, 0, &dup), first);
    CHECK_INT(dup, 1);
    gw_http_free(&h);
    free(body);
}

static void test_hubspot_refusals(void)
{
    char *body = load_example("hubspot-deal-payload.json");
    CHECK(body != NULL);
    if (!body)
        return;
    int64_t seq = it_last_seq(&D);
    gw_http h = post_hubspot("not-the-secret", body, it_wall_ms());
    CHECK_HTTP(h, 401);
    CHECK_STR(gw_error_of(&h), "unauthorized");
    CHECK(strstr(json_string_value(json_object_get(h.json, "message")), "does not match") != NULL);
    gw_http_free(&h);
    /* signed with the right secret, but six minutes ago: a replay */
    h = post_hubspot(HUBSPOT_SECRET, body, it_wall_ms() - 6 * 60 * 1000);
    CHECK_HTTP(h, 401);
    CHECK(strstr(json_string_value(json_object_get(h.json, "message")), "5 minutes") != NULL);
    gw_http_free(&h);
    /* a signature over another body */
    char sig[128], stamp[64];
    hubspot_headers(HUBSPOT_SECRET, "[]", it_wall_ms(), sig, stamp);
    const char *const headers[] = {sig, stamp, NULL};
    h = request("POST", "/v1/hooks/hubspot", headers, body);
    CHECK_HTTP(h, 401);
    gw_http_free(&h);
    /* no signature at all, even with a producer token */
    const char *const bearer[] = {"Authorization: Bearer " PRODUCER_TOKEN, NULL};
    h = request("POST", "/v1/hooks/hubspot", bearer, body);
    CHECK_HTTP(h, 401);
    gw_http_free(&h);
    /* signed, but not what the mapping expects: an object where HubSpot sends an array */
    h = post_hubspot(HUBSPOT_SECRET, "{\"objectId\": 1}", it_wall_ms());
    CHECK_HTTP(h, 400);
    CHECK_STR(gw_error_of(&h), "bad_request");
    gw_http_free(&h);
    h = post_hubspot(HUBSPOT_SECRET, "[{\"objectId\": 1", it_wall_ms());
    CHECK_HTTP(h, 400);
    gw_http_free(&h);
    /* a dealstage change without the deal's id cannot become an event */
    h = post_hubspot(HUBSPOT_SECRET,
                     "[{\"subscriptionType\": \"deal.propertyChange\", \"propertyName\": "
                     "\"dealstage\", \"propertyValue\": \"closedwon\", \"occurredAt\": 1}]",
                     it_wall_ms());
    CHECK_HTTP(h, 400);
    gw_http_free(&h);
    CHECK_INT(it_last_seq(&D), seq);
    free(body);
}

static void test_all_skipped(void)
{
    int64_t seq = it_last_seq(&D);
    const char *body = "[{\"subscriptionType\": \"deal.creation\", \"objectId\": 5, "
                       "\"occurredAt\": 1717240000000}]";
    gw_http h = post_hubspot(HUBSPOT_SECRET, body, it_wall_ms());
    CHECK_HTTP(h, 200);
    const json_t *results = json_object_get(h.json, "results");
    CHECK(json_is_array(results) && json_array_size(results) == 0 && json_object_size(h.json) == 1);
    gw_http_free(&h);
    CHECK_INT(it_last_seq(&D), seq);
}

static void test_pipedrive_example(void)
{
    char *body = load_example("pipedrive-deal-payload.json");
    CHECK(body != NULL);
    if (!body)
        return;
    gw_http h = post_pipedrive(PIPEDRIVE_USER, PIPEDRIVE_SECRET, body);
    CHECK_HTTP(h, 200);
    CHECK_INT(json_array_size(json_object_get(h.json, "results")), 1);
    gw_http_free(&h);
    const msgpack_object *r = it_call(&D, "{op: history, deal: pipedrive-746}");
    const msgpack_object *event = it_at(it_get(r, "events"), 0);
    CHECK_STR(it_str(event, "id"), "pipedrive-0f5d2a6c-8b41-4c3e-a1f9-7e2d4b6c8a10");
    CHECK_STR(it_str(event, "type"), "stage");
    CHECK_STR(it_str(event, "stage"), "proposal");
    CHECK_INT(it_int(event, "at"), 1727447128412LL);
    CHECK_INT(it_int(event, "amount"), 24000);
    CHECK_STR(it_str(event, "owner"), "pipedrive-user-18487521");
    it_release();

    int64_t seq = it_last_seq(&D);
    h = post_pipedrive(PIPEDRIVE_USER, "wrong-password", body);
    CHECK_HTTP(h, 401);
    gw_http_free(&h);
    const char *const bearer[] = {"Authorization: Bearer " PRODUCER_TOKEN, NULL};
    h = request("POST", "/v1/hooks/pipedrive", bearer, body);
    CHECK_HTTP(h, 401);
    gw_http_free(&h);
    /* a deal change whose time is not one */
    h = post_pipedrive(PIPEDRIVE_USER, PIPEDRIVE_SECRET,
                       "{\"meta\": {\"entity\": \"deal\", \"action\": \"change\", \"id\": "
                       "\"x\", \"timestamp\": \"yesterday\"}, \"data\": {\"id\": 1}}");
    CHECK_HTTP(h, 400);
    gw_http_free(&h);
    CHECK_INT(it_last_seq(&D), seq);
    free(body);
}

static void test_unsigned_hook_needs_token(void)
{
    const char *body = "{\"id\": \"open-1\", \"deal\": \"open\", \"stage\": \"lead\"}";
    gw_http h = request("POST", "/v1/hooks/open", NULL, body);
    CHECK_HTTP(h, 401);
    gw_http_free(&h);
    const char *const reader[] = {"Authorization: Bearer " READER_TOKEN, NULL};
    h = request("POST", "/v1/hooks/open", reader, body);
    CHECK_HTTP(h, 403);
    gw_http_free(&h);
    const char *const producer[] = {"Authorization: Bearer " PRODUCER_TOKEN, NULL};
    h = request("POST", "/v1/hooks/open", producer, body);
    CHECK_HTTP(h, 200);
    int dup;
    CHECK(gw_result_seq(&h, 0, &dup) > 0);
    gw_http_free(&h);
    h = request("POST", "/v1/hooks/nothing", producer, body);
    CHECK_HTTP(h, 404);
    gw_http_free(&h);
    h = request("GET", "/v1/hooks/open", producer, NULL);
    CHECK_HTTP(h, 405);
    gw_http_free(&h);
}

/* A mapping the gateway cannot use stops its start, naming the hook. */
static void test_bad_mapping_stops_start(void)
{
    gw_gateway bad;
    CHECK(gw_init(&bad, D.dir, "bad"));
    CHECK(gw_write_config(&bad,
                          "{\"tokens\": [{\"token\": \"%s\", \"role\": \"producer\"}],"
                          " \"hooks\": {\"crm\": {\"signature\": \"generic\", \"event\": "
                          "{\"id\": \"$.id\"}}}}\n",
                          PRODUCER_TOKEN));
    const char *const args[] = {"--api", D.api, NULL};
    if (!gw_spawn(&bad, args))
        return;
    int code = gw_wait_exit(&bad, GW_WAIT_MS);
    if (code < 0)
        gw_stop(&bad);
    CHECK(code >= 0); /* it ended within the deadline */
    CHECK_INT(code, 1);
    CHECK(gw_log_contains(&bad, "`hooks.crm`"));
}

/* ---- /metrics ---- */

static void test_metrics(void)
{
    if (!pp_find_python()) {
        df_skip("no python3 with prometheus_client (python3-prometheus-client)");
        return;
    }
    /* the scrape is counted once answered, so the counts it shows are those made before it */
    size_t before = ntally;
    answered made[MAX_TALLY];
    memcpy(made, tally, sizeof made);
    gw_http h = request("GET", "/metrics", NULL, NULL);
    CHECK_HTTP(h, 200);
    CHECK_STR(gw_header(&h, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    const msgpack_object *stats = it_call(&D, "{op: stats}");
    CHECK(it_ok(stats));
    json_t *samples = h.text ? pp_parse(h.text, strlen(h.text), D.dir) : NULL;
    CHECK(samples != NULL);
    if (samples) {
        CHECK_INT(pp_sample(samples, "dealflow_gateway_daemon_up", NULL), 1);
        CHECK_INT(pp_sample(samples, "dealflow_events_total", NULL), it_int(stats, "events"));
        CHECK_INT(pp_sample(samples, "dealflow_duplicates_total", NULL),
                  it_int(stats, "duplicates"));
        CHECK(it_int(stats, "duplicates") >= 4);
        CHECK_INT(pp_sample(samples, "dealflow_rejected_total", NULL), it_int(stats, "rejected"));
        CHECK_INT(pp_sample(samples, "dealflow_last_seq", NULL), it_int(stats, "last_seq"));
        CHECK_INT(pp_sample(samples, "dealflow_append_latency_seconds_count", NULL),
                  it_int(it_get(stats, "append_latency"), "count"));
        CHECK(it_int(it_get(stats, "append_latency"), "count") >= 4);
        CHECK_INT(pp_sample(samples, "dealflow_commit_latency_seconds_count", NULL),
                  it_int(it_get(stats, "commit_latency"), "count"));
        for (size_t i = 0; i < before; i++) {
            char status[16];
            snprintf(status, sizeof status, "%ld", made[i].status);
            double shown = pp_sample(samples, "dealflow_gateway_http_requests_total", "route",
                                     made[i].route, "status", status, NULL);
            if (shown != (double)made[i].count)
                fprintf(stderr, "%s %s: shown %g, made %llu\n", made[i].route, status, shown,
                        (unsigned long long)made[i].count);
            CHECK(shown == (double)made[i].count);
        }
        /* and nothing else was counted */
        double total = 0, expected = 0;
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(samples, "samples"), i, s)
        {
            if (strcmp(json_string_value(json_array_get(s, 0)),
                       "dealflow_gateway_http_requests_total") == 0)
                total += json_number_value(json_array_get(s, 2));
        }
        for (size_t k = 0; k < before; k++)
            expected += (double)made[k].count;
        CHECK(total == expected);
        json_decref(samples);
    }
    it_release();
    gw_http_free(&h);

    /* the second scrape shows the first */
    h = request("GET", "/metrics", NULL, NULL);
    CHECK_HTTP(h, 200);
    samples = h.text ? pp_parse(h.text, strlen(h.text), D.dir) : NULL;
    CHECK_INT(pp_sample(samples, "dealflow_gateway_http_requests_total", "route", "/metrics",
                        "status", "200", NULL),
              1);
    json_decref(samples);
    gw_http_free(&h);
}

int main(int argc, char **argv)
{
    static const df_test tests[] = {
        {"hubspot_example", test_hubspot_example},
        {"hubspot_refusals", test_hubspot_refusals},
        {"all_skipped", test_all_skipped},
        {"pipedrive_example", test_pipedrive_example},
        {"unsigned_hook_needs_token", test_unsigned_hook_needs_token},
        {"bad_mapping_stops_start", test_bad_mapping_stops_start},
        {"metrics", test_metrics},
        {NULL, NULL},
    };
    static const df_fixture fixture = {setup, teardown, NULL};
    return df_test_main(argc, argv, tests, &fixture);
}
