/* server.c: the gateway's HTTP server on libmicrohttpd. A small pool of threads serves every
 * connection; each thread has its own df_client (libdealflow clients are not thread-safe), made
 * on its first request. Route, method, token and role are judged from the headers, before any
 * body is read, and a body is refused (413) the moment it passes the limit, so that a hostile
 * request costs at most the limit. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "admission.h"
#include "append.h"
#include "deadline.h"
#include "events.h"
#include "hook_request.h"
#include "prometheus.h"
#include "reads.h"
#include "webhook_state.h"

#define MAX_PARAMS     32
#define BEARER         "Bearer "
#define TOKEN_MAX      4096
#define RAW_PATH_MAX   2048
#define LISTEN_BACKLOG 512
#define HOOKS_PREFIX   "/v1/hooks/"

typedef enum route {
    ROUTE_EVENTS,
    ROUTE_HOOK,
    ROUTE_PROMETHEUS,
    ROUTE_DEAL,
    ROUTE_HISTORY,
    ROUTE_BOARD,
    ROUTE_METRICS,
    ROUTE_HEALTHZ,
    ROUTE_WEBHOOKS,
    ROUTE_UNKNOWN,
    ROUTE_COUNT
} route;

static const char *const route_names[ROUTE_COUNT] = {
    "/v1/events", "/v1/hooks/{name}", "/metrics", "/v1/deals/{id}", "/v1/deals/{id}/history",
    "/v1/board",  "/v1/metrics",      "/healthz", "/v1/webhooks",   "other",
};

/* The statuses the gateway answers, for counting. */
static const int statuses[] = {200, 400, 401, 403, 404, 405, 409, 413, 500, 502, 503};
#define NSTATUSES (sizeof statuses / sizeof *statuses)

struct gw_server {
    const gw_config *config;
    df_client_options daemon;
    gw_delivery *delivery; /* NULL without webhooks */
    struct MHD_Daemon *mhd;
    int listen_fd;
    unsigned port;
    pthread_key_t client_key;
    _Atomic uint64_t counts[ROUTE_COUNT][NSTATUSES];
    gw_deadlines *deadlines; /* cuts requests that arrive too slowly */
    gw_admission *admission; /* accepts, or answers 503 over the limit */
    _Atomic unsigned open;   /* connections libmicrohttpd holds */
    /* bytes held by bodies being received, and how many they may hold in
     * all: each body is bounded, but without this as many as there are
     * connections could be held at once */
    _Atomic size_t bodies_held;
    size_t bodies_budget;
};

/* Bodies the gateway holds at once, at the most, in units of limits.body_bytes. */
#define BODIES_PER_THREAD 2
#define BODIES_SPARE      4

/* One request, from its first line to its answer. */
typedef struct request {
    char *raw_uri; /* as sent, before libmicrohttpd decodes it */
    bool started;  /* its headers were judged */
    route route;
    char *deal;                 /* decoded id, for the deal routes */
    const gw_config_hook *hook; /* for ROUTE_HOOK */
    char *body;
    size_t len, cap;
    bool too_large;
    bool busy; /* the bodies being received hold the budget */
} request;

/* ---- answers ---- */

/* Whether the route takes a POST with a body (else GET and HEAD). */
static bool route_posts(route r)
{
    return r == ROUTE_EVENTS || r == ROUTE_HOOK;
}

static void count(gw_server *s, route r, int status)
{
    for (size_t i = 0; i < NSTATUSES; i++)
        if (statuses[i] == status)
            atomic_fetch_add(&s->counts[r][i], 1);
}

/* Queues the answer (taking its body) with the headers its status calls for. */
static enum MHD_Result send_answer(gw_server *s, struct MHD_Connection *conn, route r, gw_answer *a)
{
    if (!a->body) { /* out of memory while building it */
        a->status = 500;
        a->body = json_pack("{s:s, s:s}", "error", "internal", "message", "out of memory");
    }
    char *text = a->body ? json_dumps(a->body, JSON_COMPACT) : NULL;
    json_decref(a->body);
    a->body = NULL;
    static const char fallback[] = "{\"error\":\"internal\",\"message\":\"out of memory\"}";
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(sizeof fallback - 1, (void *)fallback,
                                               MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    int status = text ? a->status : 500;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, route_posts(r) ? "POST" : "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (rc == MHD_YES)
        count(s, r, status);
    return rc;
}

static enum MHD_Result send_error(gw_server *s, struct MHD_Connection *conn, route r, int status,
                                  const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static enum MHD_Result send_error(gw_server *s, struct MHD_Connection *conn, route r, int status,
                                  const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    gw_answer a = {.status = status,
                   .body = json_pack("{s:s, s:s}", "error", code, "message", message)};
    return send_answer(s, conn, r, &a);
}

/* ---- the daemon, one client per thread ---- */

static void close_client(void *client)
{
    df_client_close(client);
}

/* This thread's client; NULL with why in err. */
static df_client *thread_client(gw_server *s, df_error *err)
{
    df_client *c = pthread_getspecific(s->client_key);
    if (c)
        return c;
    if (df_client_open(&c, &s->daemon, err) < 0)
        return NULL;
    if (pthread_setspecific(s->client_key, c) != 0) {
        df_client_close(c);
        snprintf(err->message, sizeof err->message, "out of memory");
        return NULL;
    }
    return c;
}

/* ---- routes ---- */

/* The route of a raw path; the deal id decoded into *deal (malloc'd) for the deal routes. */
static route find_route(const char *raw_uri, char **deal)
{
    size_t len = strcspn(raw_uri, "?#");
    *deal = NULL;
#define IS(path) (len == sizeof(path) - 1 && memcmp(raw_uri, path, len) == 0)
    if (IS("/v1/events"))
        return ROUTE_EVENTS;
    if (IS("/metrics"))
        return ROUTE_PROMETHEUS;
    if (len > sizeof HOOKS_PREFIX - 1 &&
        memcmp(raw_uri, HOOKS_PREFIX, sizeof HOOKS_PREFIX - 1) == 0)
        return ROUTE_HOOK;
    if (IS("/v1/board"))
        return ROUTE_BOARD;
    if (IS("/v1/metrics"))
        return ROUTE_METRICS;
    if (IS("/healthz"))
        return ROUTE_HEALTHZ;
    if (IS("/v1/webhooks"))
        return ROUTE_WEBHOOKS;
#undef IS
    static const char prefix[] = "/v1/deals/";
    if (len <= sizeof prefix - 1 || memcmp(raw_uri, prefix, sizeof prefix - 1) != 0)
        return ROUTE_UNKNOWN;
    const char *id = raw_uri + sizeof prefix - 1;
    size_t id_len = strcspn(id, "/?#");
    const char *rest = id + id_len;
    size_t rest_len = len - (size_t)(rest - raw_uri);
    route r;
    if (rest_len == 0)
        r = ROUTE_DEAL;
    else if (rest_len == 8 && memcmp(rest, "/history", 8) == 0)
        r = ROUTE_HISTORY;
    else
        return ROUTE_UNKNOWN;
    if (id_len == 0 || !(*deal = strndup(id, id_len)))
        return ROUTE_UNKNOWN;
    /* a deal id may hold '/' as %2F: it is decoded only once the path is split */
    size_t decoded = MHD_http_unescape(*deal);
    if (decoded == 0 || decoded != strlen(*deal)) {
        free(*deal);
        *deal = NULL;
        return ROUTE_UNKNOWN;
    }
    return r;
}

static gw_role route_role(route r)
{
    return route_posts(r) ? GW_ROLE_PRODUCER : GW_ROLE_READER;
}

/* The hook a /v1/hooks/NAME path names; NULL when none has that name. */
static const gw_config_hook *find_hook(const gw_config *c, const char *raw_uri)
{
    const char *name = raw_uri + sizeof HOOKS_PREFIX - 1;
    return gw_config_hook_find(c, name, strcspn(name, "?#"));
}

/* Whether the request must carry a bearer token. A hook whose sender signs (HubSpot, Pipedrive's
 * basic credentials) cannot send one of ours: its signature is the proof. /metrics is open
 * unless the config asks for a reader token. */
static bool needs_token(const gw_server *s, const request *rq)
{
    switch (rq->route) {
    case ROUTE_HEALTHZ:
        return false;
    case ROUTE_HOOK:
        return !rq->hook->signed_by_sender;
    case ROUTE_PROMETHEUS:
        return s->config->metrics_token_required;
    default:
        return true;
    }
}

/* Checks the bearer token and its role: *allowed, or the refusal queued (its result returned). */
static enum MHD_Result judge_token(gw_server *s, struct MHD_Connection *conn, route r,
                                   const char *method, bool *allowed)
{
    *allowed = false;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncasecmp(auth, BEARER, sizeof BEARER - 1) != 0)
        return send_error(s, conn, r, 401, "unauthorized",
                          "an Authorization: Bearer TOKEN header is needed");
    const char *token = auth + sizeof BEARER - 1;
    while (*token == ' ')
        token++;
    size_t token_len = strnlen(token, TOKEN_MAX + 1);
    const gw_token *t = token_len <= TOKEN_MAX ? gw_token_find(s->config, token, token_len) : NULL;
    if (!t)
        return send_error(s, conn, r, 401, "unauthorized", "the token is not known");
    if (!gw_role_allows(t->role, route_role(r)))
        return send_error(s, conn, r, 403, "forbidden", "the role %s may not %s %s",
                          gw_role_name(t->role), method, route_names[r]);
    *allowed = true;
    return MHD_YES;
}

/* Judges method, token and role from the headers; MHD_YES to go on (with no answer queued). */
static enum MHD_Result judge_headers(gw_server *s, struct MHD_Connection *conn, request *rq,
                                     const char *method, bool *answered)
{
    *answered = true;
    route r = rq->route;
    if (r == ROUTE_UNKNOWN)
        return send_error(s, conn, r, 404, "not_found", "no such route");
    bool is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if ((route_posts(r) && strcmp(method, "POST") != 0) || (!route_posts(r) && !is_get))
        return send_error(s, conn, r, 405, "method_not_allowed", "%s is not allowed here",
                          route_posts(r) ? "only POST" : "only GET");
    if (r == ROUTE_HOOK && !(rq->hook = find_hook(s->config, rq->raw_uri)))
        return send_error(s, conn, r, 404, "not_found", "no such hook");
    if (needs_token(s, rq)) {
        bool allowed;
        enum MHD_Result rc = judge_token(s, conn, r, method, &allowed);
        if (!allowed)
            return rc;
    }
    if (route_posts(r)) {
        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        char *end;
        errno = 0;
        unsigned long long declared = length ? strtoull(length, &end, 10) : 0;
        if (length && (errno || declared > s->config->body_bytes))
            return send_error(s, conn, r, 413, "too_large", "the body is over %zu bytes",
                              s->config->body_bytes);
    }
    *answered = false;
    return MHD_YES;
}

/* Takes a piece of the body; false once it passes the limit. */
static bool take_body(gw_server *s, request *rq, const char *data, size_t size)
{
    if (size > s->config->body_bytes - rq->len) {
        rq->too_large = true;
        atomic_fetch_sub(&s->bodies_held, rq->cap);
        free(rq->body);
        rq->body = NULL;
        rq->len = rq->cap = 0;
        return false;
    }
    if (rq->len + size > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 4096;
        while (cap < rq->len + size)
            cap *= 2;
        if (cap > s->config->body_bytes)
            cap = s->config->body_bytes;
        size_t more = cap - rq->cap;
        if (atomic_fetch_add(&s->bodies_held, more) + more > s->bodies_budget) {
            atomic_fetch_sub(&s->bodies_held, more);
            rq->busy = true;
            return false;
        }
        char *grown = realloc(rq->body, cap);
        if (!grown) {
            atomic_fetch_sub(&s->bodies_held, more);
            return false;
        }
        rq->body = grown;
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, size);
    rq->len += size;
    return true;
}

/* POST /v1/events: the body into events, appended, each one's result. */
static enum MHD_Result post_events(gw_server *s, struct MHD_Connection *conn, request *rq)
{
    char why[512];
    df_bytes events = {0};
    size_t n = 0;
    if (gw_events_from_body(rq->body ? rq->body : "", rq->len, &events, &n, why, sizeof why) < 0)
        return send_error(s, conn, rq->route, 400, "bad_request", "%s", why);
    df_error err = {0};
    df_client *c = thread_client(s, &err);
    gw_answer a = {0};
    if (!c)
        gw_answer_error(&a, 500, "internal", "no client of the daemon: %s", err.message);
    else
        gw_append_answer(c, &events, n, &a);
    df_bytes_free(&events);
    return send_answer(s, conn, rq->route, &a);
}

static const char *request_header(void *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static int64_t wall_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* POST /v1/hooks/NAME: the sender's signature checked, its payload mapped, the events appended
 * and answered as POST /v1/events answers; a payload whose every item is skipped is answered
 * without the daemon. */
static enum MHD_Result post_hook(gw_server *s, struct MHD_Connection *conn, request *rq)
{
    /* the URL as the sender called it, for signatures over it (a hook may name it instead) */
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    char url[RAW_PATH_MAX + 300];
    snprintf(url, sizeof url, "%s%.255s%s", host ? "http://" : "", host ? host : "", rq->raw_uri);
    gw_hook_request hr = {
        .method = "POST",
        .url = url,
        .body = rq->body ? rq->body : "",
        .body_len = rq->len,
        .header = request_header,
        .header_ctx = conn,
        .now_ms = wall_ms(),
    };
    df_bytes events = {0};
    size_t n = 0;
    gw_answer a = {0};
    if (gw_hook_events(rq->hook->hook, &hr, &events, &n, &a) < 0)
        return send_answer(s, conn, rq->route, &a);
    if (n == 0) {
        a.status = 200;
        a.body = json_pack("{s:[]}", "results");
        return send_answer(s, conn, rq->route, &a);
    }
    df_error err = {0};
    df_client *c = thread_client(s, &err);
    if (!c)
        gw_answer_error(&a, 500, "internal", "no client of the daemon: %s", err.message);
    else
        gw_append_answer(c, &events, n, &a);
    df_bytes_free(&events);
    return send_answer(s, conn, rq->route, &a);
}

/* The query parameters, decoded; over says there were more than fit. */
typedef struct query {
    gw_param params[MAX_PARAMS];
    size_t n;
    bool over;
} query;

static enum MHD_Result collect_param(void *ctx, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    query *q = ctx;
    if (q->n == MAX_PARAMS) {
        q->over = true;
        return MHD_NO;
    }
    q->params[q->n].name = key;
    q->params[q->n].value = value ? value : "";
    q->n++;
    return MHD_YES;
}

static enum MHD_Result get_read(gw_server *s, struct MHD_Connection *conn, request *rq)
{
    query q = {.n = 0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_param, &q);
    if (q.over)
        return send_error(s, conn, rq->route, 400, "bad_request", "over %d query parameters",
                          MAX_PARAMS);
    df_error err = {0};
    df_client *c = thread_client(s, &err);
    if (!c)
        return send_error(s, conn, rq->route, 500, "internal", "no client of the daemon: %s",
                          err.message);
    static const gw_read_kind kinds[] = {[ROUTE_DEAL] = GW_READ_DEAL,
                                         [ROUTE_HISTORY] = GW_READ_HISTORY,
                                         [ROUTE_BOARD] = GW_READ_BOARD,
                                         [ROUTE_METRICS] = GW_READ_METRICS};
    gw_answer a;
    gw_read(c, kinds[rq->route], rq->deal, q.params, q.n, &a);
    return send_answer(s, conn, rq->route, &a);
}

/* GET /v1/webhooks: each endpoint's delivery state, in the config's order. */
static enum MHD_Result get_webhooks(gw_server *s, struct MHD_Connection *conn, request *rq)
{
    size_t n = s->config->nwebhooks;
    gw_delivery_state *states = n ? calloc(n, sizeof *states) : NULL;
    const char **topics = n ? calloc(n, sizeof *topics) : NULL;
    gw_answer a = {.status = 200};
    if (n && (!states || !topics)) {
        a.status = 500; /* send_answer says out of memory */
    } else {
        n = gw_delivery_states(s->delivery, states, n);
        for (size_t i = 0; i < n; i++)
            topics[i] = s->config->webhooks[i].topics;
        a.body = gw_webhook_state_json(states, topics, n);
    }
    free(states);
    free(topics);
    return send_answer(s, conn, rq->route, &a);
}

static enum MHD_Result get_health(gw_server *s, struct MHD_Connection *conn, request *rq)
{
    df_error err = {0};
    df_client *c = thread_client(s, &err);
    df_bytes reply = {0};
    int rc = c ? df_ping(c, &reply, &err) : DF_EUNREACHABLE;
    df_bytes_free(&reply);
    gw_answer a = {0};
    if (rc == 0) {
        a.status = 200;
        a.body = json_pack("{s:s}", "status", "ok");
    } else {
        gw_answer_error(&a, 503, df_error_name(rc), "the daemon does not answer: %s",
                        err.message[0] ? err.message : df_error_name(rc));
    }
    return send_answer(s, conn, rq->route, &a);
}

#define PUBLIC_URL_MAX 2048

/* The delivery states of webhooks out (NULL and none without webhooks), their urls without what
 * may be a secret (user, password, query), in *urls; both malloc'd. */
static gw_delivery_state *delivery_states(gw_server *s, size_t *n, char **urls)
{
    *n = 0;
    *urls = NULL;
    size_t want = gw_delivery_states(s->delivery, NULL, 0);
    gw_delivery_state *states = want ? calloc(want, sizeof *states) : NULL;
    *urls = states ? malloc(want * PUBLIC_URL_MAX) : NULL;
    if (!*urls) {
        free(states);
        return NULL;
    }
    *n = gw_delivery_states(s->delivery, states, want);
    if (*n > want)
        *n = want;
    for (size_t i = 0; i < *n; i++) {
        char *url = *urls + i * PUBLIC_URL_MAX;
        gw_webhook_public_url(states[i].url ? states[i].url : "", url, PUBLIC_URL_MAX);
        states[i].url = url;
    }
    return states;
}

/* GET /metrics: the daemon's stats (none when it does not answer: dealflow_gateway_daemon_up
 * says so), the requests answered so far and the deliveries, in the Prometheus text format. */
static enum MHD_Result get_prometheus(gw_server *s, struct MHD_Connection *conn, request *rq)
{
    df_error err = {0};
    df_client *c = thread_client(s, &err);
    df_bytes stats = {0};
    bool up = c && df_get_stats(c, &stats, &err) == 0;
    gw_route_count routes[ROUTE_COUNT * NSTATUSES];
    size_t nroutes = 0;
    for (size_t r = 0; r < ROUTE_COUNT; r++)
        for (size_t i = 0; i < NSTATUSES; i++) {
            uint64_t n = atomic_load(&s->counts[r][i]);
            if (n)
                routes[nroutes++] = (gw_route_count){route_names[r], statuses[i], n};
        }
    size_t ndeliveries;
    char *urls;
    gw_delivery_state *deliveries = delivery_states(s, &ndeliveries, &urls);
    char *text = NULL;
    size_t len = 0;
    int rc = gw_prometheus_render(up ? stats.data : NULL, up ? stats.len : 0, routes, nroutes,
                                  deliveries, ndeliveries, &text, &len);
    free(deliveries);
    free(urls);
    df_bytes_free(&stats);
    struct MHD_Response *resp =
        rc == 0 ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        free(text);
        gw_answer a = {.status = 500, .body = NULL}; /* send_answer says out of memory */
        return send_answer(s, conn, rq->route, &a);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, GW_PROMETHEUS_CONTENT_TYPE);
    enum MHD_Result queued = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    if (queued == MHD_YES)
        count(s, rq->route, 200);
    return queued;
}

/* A GET route's answer. */
static enum MHD_Result answer_get(gw_server *s, struct MHD_Connection *conn, request *rq)
{
    switch (rq->route) {
    case ROUTE_HEALTHZ:
        return get_health(s, conn, rq);
    case ROUTE_PROMETHEUS:
        return get_prometheus(s, conn, rq);
    case ROUTE_WEBHOOKS:
        return get_webhooks(s, conn, rq);
    default:
        return get_read(s, conn, rq);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)url;
    (void)version;
    gw_server *s = cls;
    request *rq = *req_cls;
    if (!rq)
        return MHD_NO; /* no memory for it when it began */
    if (!rq->started) {
        rq->started = true;
        rq->route = find_route(rq->raw_uri, &rq->deal);
        if (!route_posts(rq->route))
            gw_deadlines_arrived(conn); /* no body follows */
        bool answered;
        enum MHD_Result rc = judge_headers(s, conn, rq, method, &answered);
        if (answered || rc != MHD_YES)
            return rc;
        if (!route_posts(rq->route))
            return answer_get(s, conn, rq);
        return MHD_YES; /* the body follows */
    }
    if (*upload_data_size > 0) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_large || rq->busy)
            return MHD_NO;
        if (!take_body(s, rq, upload_data, size)) {
            if (rq->busy) /* as for 413: the connection closes when it cannot be answered */
                return send_error(s, conn, rq->route, 503, "unavailable",
                                  "the gateway holds as many bodies as it may; retry");
            if (!rq->too_large)
                return MHD_NO; /* out of memory: drop the connection */
            /* answered now, without reading the rest; when libmicrohttpd
             * cannot answer in the middle of a body, the connection is closed */
            return send_error(s, conn, rq->route, 413, "too_large", "the body is over %zu bytes",
                              s->config->body_bytes);
        }
        return MHD_YES;
    }
    gw_deadlines_arrived(conn);
    return rq->route == ROUTE_HOOK ? post_hook(s, conn, rq) : post_events(s, conn, rq);
}

/* Keeps the URI as sent, so that an id's %2F is not taken for a '/'. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    request *rq = calloc(1, sizeof *rq);
    if (rq && !(rq->raw_uri = strndup(uri, RAW_PATH_MAX))) {
        free(rq);
        rq = NULL;
    }
    return rq;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode why)
{
    gw_server *s = cls;
    (void)why;
    gw_deadlines_next(conn);
    request *rq = *req_cls;
    if (!rq)
        return;
    atomic_fetch_sub(&s->bodies_held, rq->cap);
    free(rq->raw_uri);
    free(rq->deal);
    free(rq->body);
    free(rq);
    *req_cls = NULL;
}

/* A connection opened or closed: watched for its deadline, and counted for admission. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    gw_server *s = cls;
    gw_deadlines_notify(s->deadlines, conn, socket_context, toe);
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
        atomic_fetch_sub(&s->open, 1);
}

static void on_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void on_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    fprintf(stderr, "dealflow-gateway: http: %s\n", line);
}

/* ---- start and stop ---- */

/* A listening socket on HOST:PORT; -1 with why in err. */
static int open_listener(const char *listen_on, unsigned *port, bool *ipv6, char *err, size_t cap)
{
    char host[256];
    const char *colon = strrchr(listen_on, ':');
    size_t host_len = colon ? (size_t)(colon - listen_on) : 0;
    if (!colon || host_len == 0 || host_len >= sizeof host) {
        snprintf(err, cap, "--listen %s: not HOST:PORT", listen_on);
        return -1;
    }
    memcpy(host, listen_on, host_len);
    host[host_len] = '\0';
    if (host[0] == '[' && host[host_len - 1] == ']') {
        memmove(host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int gai = getaddrinfo(host, colon + 1, &hints, &found);
    if (gai != 0) {
        snprintf(err, cap, "cannot listen on %s: %s", listen_on, gai_strerror(gai));
        return -1;
    }
    int fd = -1, why = 0;
    for (struct addrinfo *ai = found; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            why = errno;
            continue;
        }
        int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0 ||
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
            why = errno;
            close(fd);
            fd = -1;
            continue;
        }
        *ipv6 = ai->ai_family == AF_INET6;
    }
    freeaddrinfo(found);
    if (fd < 0) {
        snprintf(err, cap, "cannot listen on %s: %s", listen_on, strerror(why));
        return -1;
    }
    struct sockaddr_storage addr;
    socklen_t addr_len = sizeof addr;
    *port = 0;
    if (getsockname(fd, (struct sockaddr *)&addr, &addr_len) == 0) {
        if (addr.ss_family == AF_INET)
            *port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
        else if (addr.ss_family == AF_INET6)
            *port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    }
    return fd;
}

int gw_server_start(gw_server **out, const gw_config *config, const df_client_options *daemon,
                    gw_delivery *delivery, const char *listen_on, char *err, size_t cap)
{
    *out = NULL;
    gw_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    s->config = config;
    s->bodies_budget = config->body_bytes * (BODIES_PER_THREAD * config->threads + BODIES_SPARE);
    s->daemon = *daemon;
    s->delivery = delivery;
    bool ipv6 = false;
    s->listen_fd = open_listener(listen_on, &s->port, &ipv6, err, cap);
    if (s->listen_fd < 0) {
        free(s);
        return -1;
    }
    if (gw_deadlines_start(&s->deadlines, config->timeout_s) < 0) {
        snprintf(err, cap, "cannot start a thread");
        close(s->listen_fd);
        free(s);
        return -1;
    }
    if (pthread_key_create(&s->client_key, close_client) != 0) {
        snprintf(err, cap, "out of memory");
        gw_deadlines_stop(s->deadlines);
        close(s->listen_fd);
        free(s);
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | (ipv6 ? MHD_USE_IPv6 : 0);
    /* the logger goes first, so that every message of the start goes through it */
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_log, (void *)NULL,
        MHD_OPTION_THREAD_POOL_SIZE, config->threads,
        /* the limit is kept by admission, with room for the pool's uneven shares */
        MHD_OPTION_CONNECTION_LIMIT, 2 * config->connections, MHD_OPTION_CONNECTION_TIMEOUT,
        config->timeout_s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)s, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, s, MHD_OPTION_END);
    if (s->mhd && gw_admission_start(&s->admission, s->listen_fd, s->mhd, config->connections,
                                     &s->open) < 0) {
        MHD_stop_daemon(s->mhd);
        s->mhd = NULL;
    }
    if (!s->mhd) {
        snprintf(err, cap, "cannot start the HTTP server on %s (its message is above)", listen_on);
        gw_deadlines_stop(s->deadlines);
        pthread_key_delete(s->client_key);
        close(s->listen_fd);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

unsigned gw_server_port(const gw_server *s)
{
    return s->port;
}

size_t gw_server_counts(gw_server *s, gw_request_count *out, size_t cap)
{
    size_t n = 0;
    for (size_t r = 0; r < ROUTE_COUNT; r++)
        for (size_t i = 0; i < NSTATUSES; i++) {
            uint64_t c = atomic_load(&s->counts[r][i]);
            if (c == 0)
                continue;
            if (n < cap)
                out[n] = (gw_request_count){route_names[r], statuses[i], c};
            n++;
        }
    return n;
}

void gw_server_stop(gw_server *s)
{
    if (!s)
        return;
    /* the pool's threads close their clients as they exit */
    gw_admission_stop(s->admission);
    MHD_stop_daemon(s->mhd);
    gw_deadlines_stop(s->deadlines); /* after every connection is closed */
    close(s->listen_fd);
    pthread_key_delete(s->client_key);
    free(s);
}
