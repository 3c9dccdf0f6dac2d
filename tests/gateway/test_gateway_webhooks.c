/* test_gateway_webhooks.c: webhooks out through the built dealflow-gateway: the real daemon, the
 * gateway with a config naming an HTTP receiver this test runs and a state directory. Moves are
 * delivered in seq order and signed, held while the receiver answers 500 and all delivered
 * after, and across a stop (SIGTERM) and a start of the gateway none is skipped and none that was
 * acknowledged comes again; GET /v1/webhooks shows each endpoint's state. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "harness.h"

#define WAIT_MS        30000
#define MAX_SEEN       256
#define SECRET         "webhook-secret-0123"
#define PRODUCER_TOKEN "producer-token-0123456789"
#define READER_TOKEN   "reader-token-0123456789"

static it_daemon D;
static pid_t gateway;
static char base_url[96], listen_on[64], gateway_log[IT_PATH_MAX + 32],
    config_path[IT_PATH_MAX + 32];
static int next_id;

/* ---- the receiver: takes POSTs, checks their signatures, answers `status` ---- */

static struct {
    struct MHD_Daemon *mhd;
    char url[96];
    pthread_mutex_t lock;
    int status;             /* what POSTs are answered */
    int64_t seqs[MAX_SEEN]; /* of the bodies answered 2xx, in arrival order */
    char topics[MAX_SEEN][64];
    int accepted, refused; /* POSTs answered 2xx, and not */
    int bad_signatures;    /* POSTs whose X-Dealflow-Signature was wrong */
} rx = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct upload {
    char *data;
    size_t len;
} upload;

static bool signed_right(const char *body, size_t len, const char *header)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)SECRET, strlen(SECRET));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    char hex[2 * sizeof mac + 1];
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    return header && strncmp(header, "sha256=", 7) == 0 && strcmp(header + 7, hex) == 0;
}

static enum MHD_Result on_post(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    upload *up = *con_cls;
    if (!up) {
        if (!(up = calloc(1, sizeof *up)))
            return MHD_NO;
        *con_cls = up;
        return MHD_YES;
    }
    if (*size > 0) {
        char *grown = realloc(up->data, up->len + *size + 1);
        if (!grown)
            return MHD_NO;
        up->data = grown;
        memcpy(up->data + up->len, data, *size);
        up->len += *size;
        up->data[up->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    const char *sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Dealflow-Signature");
    json_t *body = up->data ? json_loadb(up->data, up->len, 0, NULL) : NULL;
    pthread_mutex_lock(&rx.lock);
    int status = strcmp(method, "POST") == 0 ? rx.status : 405;
    if (!signed_right(up->data ? up->data : "", up->len, sig))
        rx.bad_signatures++;
    if (status == 200 && rx.accepted < MAX_SEEN) {
        const char *topic = json_string_value(json_object_get(body, "topic"));
        rx.seqs[rx.accepted] = json_integer_value(json_object_get(body, "seq"));
        snprintf(rx.topics[rx.accepted], sizeof rx.topics[0], "%s", topic ? topic : "(none)");
        rx.accepted++;
    } else {
        rx.refused++;
    }
    pthread_mutex_unlock(&rx.lock);
    json_decref(body);
    struct MHD_Response *res = MHD_create_response_from_buffer(2, "{}", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, res);
    MHD_destroy_response(res);
    return rc;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    upload *up = *con_cls;
    if (up) {
        free(up->data);
        free(up);
    }
    *con_cls = NULL;
}

static bool receiver_start(void)
{
    rx.status = 200;
    rx.mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                  MHD_USE_ERROR_LOG,
                              0, NULL, NULL, on_post, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_done,
                              NULL, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        rx.mhd ? MHD_get_daemon_info(rx.mhd, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info || info->port == 0)
        return false;
    /* the credentials and query must not show in GET /v1/webhooks */
    snprintf(rx.url, sizeof rx.url, "http://user:pw@127.0.0.1:%u/hook?key=k", (unsigned)info->port);
    return true;
}

static void receiver_set_status(int status)
{
    pthread_mutex_lock(&rx.lock);
    rx.status = status;
    pthread_mutex_unlock(&rx.lock);
}

static int receiver_accepted(void)
{
    pthread_mutex_lock(&rx.lock);
    int n = rx.accepted;
    pthread_mutex_unlock(&rx.lock);
    return n;
}

static bool wait_accepted(int n)
{
    int64_t deadline = it_mono_ms() + WAIT_MS;
    while (receiver_accepted() < n && it_mono_ms() < deadline)
        usleep(10 * 1000);
    if (receiver_accepted() < n)
        fprintf(stderr, "the receiver took %d deliveries, expected %d\n", receiver_accepted(), n);
    return receiver_accepted() >= n;
}

/* The receiver took exactly these seqs, in this order, each signed right. */
static void check_received(const int64_t *seqs, int n)
{
    pthread_mutex_lock(&rx.lock);
    CHECK_INT(rx.accepted, n);
    for (int i = 0; i < n && i < rx.accepted; i++) {
        if (rx.seqs[i] != seqs[i])
            fprintf(stderr, "delivery %d: seq %lld, expected %lld\n", i, (long long)rx.seqs[i],
                    (long long)seqs[i]);
        CHECK(rx.seqs[i] == seqs[i]);
        CHECK(strncmp(rx.topics[i], "deal.moved.default.", 19) == 0);
    }
    CHECK_INT(rx.bad_signatures, 0);
    pthread_mutex_unlock(&rx.lock);
}

/* ---- HTTP to the gateway ---- */

typedef struct http {
    long status;
    json_t *json;
    char *text;
    size_t len;
} http;

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    http *h = ctx;
    char *grown = realloc(h->text, h->len + size * n + 1);
    if (!grown)
        return 0;
    h->text = grown;
    memcpy(h->text + h->len, data, size * n);
    h->len += size * n;
    h->text[h->len] = '\0';
    return size * n;
}

/* method path with the token (NULL: none) and body (NULL: none). */
static http request(const char *method, const char *path, const char *token, const char *body)
{
    http h = {0};
    CURL *c = curl_easy_init();
    char url[256], auth[128];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    struct curl_slist *headers = curl_slist_append(NULL, "Expect:");
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)WAIT_MS);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (h.text)
        h.json = json_loadb(h.text, h.len, 0, NULL);
    return h;
}

static void http_free(http *h)
{
    json_decref(h->json);
    free(h->text);
}

/* The one endpoint's state from GET /v1/webhooks (a new reference), NULL without it. */
static json_t *endpoint_state(void)
{
    http h = request("GET", "/v1/webhooks", READER_TOKEN, NULL);
    json_t *e = json_array_get(json_object_get(h.json, "webhooks"), 0);
    json_incref(e);
    http_free(&h);
    return e;
}

static long long state_int(const json_t *e, const char *key)
{
    return (long long)json_integer_value(json_object_get(e, key));
}

/* Waits until the endpoint's `key` is at least at_least. */
static bool wait_state(const char *key, long long at_least)
{
    int64_t deadline = it_mono_ms() + WAIT_MS;
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
    http h = request("POST", "/v1/events", PRODUCER_TOKEN, body);
    json_t *results = json_object_get(h.json, "results");
    bool ok = h.status == 200 && json_array_size(results) == (size_t)n;
    for (int i = 0; ok && i < n; i++) {
        json_t *seq = json_object_get(json_array_get(results, (size_t)i), "seq");
        ok = json_is_integer(seq);
        seqs[i] = json_integer_value(seq);
    }
    if (!ok)
        fprintf(stderr, "POST /v1/events: %ld %s\n", h.status, h.text ? h.text : "(none)");
    http_free(&h);
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

static void print_gateway_log(void)
{
    FILE *log = fopen(gateway_log, "r");
    for (int c; log && (c = fgetc(log)) != EOF;)
        fputc(c, stderr);
    if (log)
        fclose(log);
}

static bool gateway_log_contains(const char *needle)
{
    FILE *log = fopen(gateway_log, "r");
    if (!log)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, log))
        found = strstr(line, needle) != NULL;
    fclose(log);
    return found;
}

static bool gateway_start(void)
{
    gateway = fork();
    if (gateway == 0) {
        FILE *log = freopen(gateway_log, "a", stderr);
        (void)log;
        execl(GATEWAY_PATH, GATEWAY_PATH, "--config", config_path, "--listen", listen_on, "--api",
              D.api, "--ingest", D.ingest, "--notify", D.notify, (char *)NULL);
        _exit(127);
    }
    int64_t deadline = it_mono_ms() + WAIT_MS;
    while (gateway > 0 && it_mono_ms() < deadline) {
        http h = request("GET", "/healthz", NULL, NULL);
        long status = h.status;
        http_free(&h);
        if (status == 200)
            return true;
        usleep(50 * 1000);
    }
    fprintf(stderr, "the gateway did not answer /healthz:\n");
    print_gateway_log();
    return false;
}

/* SIGTERM, and the exit status (0 expected). */
static int gateway_stop(void)
{
    if (gateway <= 0)
        return -1;
    kill(gateway, SIGTERM);
    int status = 0;
    pid_t got = waitpid(gateway, &status, 0);
    gateway = 0;
    return got > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (sodium_init() < 0 || !it_start(&D, NULL) || !receiver_start())
        return false;
    char ports[3][IT_ENDPOINT_MAX];
    if (!it_pick_ports(ports))
        return false;
    snprintf(listen_on, sizeof listen_on, "127.0.0.1:%s", it_port(ports[0]));
    snprintf(base_url, sizeof base_url, "http://%s", listen_on);
    snprintf(config_path, sizeof config_path, "%s/gateway.json", D.dir);
    snprintf(gateway_log, sizeof gateway_log, "%s/gateway.log", D.dir);
    FILE *f = fopen(config_path, "w");
    if (!f)
        return false;
    fprintf(f,
            "{\"tokens\": [{\"token\": \"%s\", \"role\": \"producer\", \"name\": \"crm\"},"
            " {\"token\": \"%s\", \"role\": \"reader\", \"name\": \"ops\"}],"
            " \"webhooks\": [{\"url\": \"%s\", \"topics\": \"deal.moved.\", \"secret\": \"%s\"}],"
            " \"state_dir\": \"%s/gateway-state\"}\n",
            PRODUCER_TOKEN, READER_TOKEN, rx.url, SECRET, D.dir);
    fclose(f);
    /* a move first, so that the new endpoint has a daemon's end to start after */
    int64_t marker = append_move();
    if (!gateway_start() || !wait_state("position", marker))
        return false;
    return gateway_log_contains("delivering webhooks to 1 endpoint");
}

static void teardown(void)
{
    if (gateway > 0)
        CHECK_INT(gateway_stop(), 0);
    if (rx.mhd)
        MHD_stop_daemon(rx.mhd);
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
    snprintf(url, sizeof url, "http://%s/hook", strchr(rx.url, '@') + 1);
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
    http h = request("GET", "/metrics", NULL, NULL);
    CHECK_INT(h.status, 200);
    char line[256];
    snprintf(line, sizeof line, "dealflow_gateway_webhook_deliveries_total{url=\"%s\"} 10\n", url);
    CHECK(h.text && strstr(h.text, line) != NULL);
    CHECK(h.text && strstr(h.text, strchr(rx.url, '?')) == NULL);
    CHECK(h.text && strstr(h.text, "user:pw") == NULL);
    http_free(&h);
}

static void test_route_roles(void)
{
    http h = request("GET", "/v1/webhooks", NULL, NULL);
    CHECK_INT(h.status, 401);
    http_free(&h);
    h = request("GET", "/v1/webhooks", PRODUCER_TOKEN, NULL);
    CHECK_INT(h.status, 403);
    http_free(&h);
    h = request("POST", "/v1/webhooks", READER_TOKEN, "{}");
    CHECK_INT(h.status, 405);
    http_free(&h);
    h = request("GET", "/v1/webhooks", READER_TOKEN, NULL);
    CHECK_INT(h.status, 200);
    CHECK(strstr(h.text ? h.text : "", "pw") == NULL);
    CHECK(strstr(h.text ? h.text : "", "key=") == NULL);
    http_free(&h);
}

static void test_held_while_failing(void)
{
    receiver_set_status(500);
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
    CHECK_INT(receiver_accepted(), nseqs - 5);

    receiver_set_status(200);
    CHECK(wait_accepted(nseqs));
    CHECK(wait_state("position", all_seqs[nseqs - 1]));
    check_received(all_seqs, nseqs);
    e = endpoint_state();
    CHECK(json_is_false(json_object_get(e, "failing")));
    CHECK_INT(state_int(e, "lag"), 0);
    CHECK_INT(state_int(e, "delivered"), nseqs);
    json_decref(e);
    CHECK(gateway_log_contains("failing at seq"));
    CHECK(gateway_log_contains("delivering again"));
}

static void test_restart_neither_skips_nor_repeats(void)
{
    CHECK(post_moves(3, all_seqs + nseqs));
    nseqs += 3;
    CHECK(wait_accepted(nseqs));
    CHECK(wait_state("position", all_seqs[nseqs - 1]));
    CHECK_INT(gateway_stop(), 0);
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
