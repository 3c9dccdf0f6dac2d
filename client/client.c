/* client.c: opening a client (options and environment) and the api request path with
 * the zguide's Lazy Pirate retries. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "codec.h"
#include "internal.h"
#include "socket.h"

#define DEFAULT_TIMEOUT_MS 3000
#define DEFAULT_ATTEMPTS   5
#define ENDPOINT_MAX       1024

void df_bytes_free(df_bytes *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The endpoint a role uses: the option, else the environment, else the default. */
static int pick_endpoint(const char *given, const char *env_name, const char *fallback,
                         const char *role, char **out, df_error *err)
{
    const char *from = "option";
    const char *endpoint = given;
    if (endpoint == NULL) {
        endpoint = getenv(env_name);
        from = env_name;
    }
    if (endpoint == NULL || endpoint[0] == '\0') {
        endpoint = fallback;
        from = "default";
    }
    size_t len = strlen(endpoint);
    if (len >= ENDPOINT_MAX || strstr(endpoint, "://") == NULL)
        return df_fail(err, DF_EBAD_REQUEST,
                       "the %s endpoint (%s) is not a ZeroMQ endpoint such as tcp://host:port",
                       role, from);
    /* localhost is what people type, but it is a name ZeroMQ need not
     * resolve (nor to the IPv4 address the daemon's loopback binds use) */
    static const char local_name[] = "tcp://localhost:", local_address[] = "tcp://127.0.0.1:";
    size_t name_len = sizeof local_name - 1, address_len = sizeof local_address - 1;
    bool local = strncmp(endpoint, local_name, name_len) == 0;
    size_t out_len = local ? len - name_len + address_len : len;
    *out = malloc(out_len + 1);
    if (*out == NULL)
        return df_fail(err, DF_EINTERNAL, "out of memory");
    if (local) {
        memcpy(*out, local_address, address_len);
        memcpy(*out + address_len, endpoint + name_len, len - name_len + 1);
    } else {
        memcpy(*out, endpoint, len + 1);
    }
    return 0;
}

int df_client_open(df_client **out, const df_client_options *opt, df_error *err)
{
    static const df_client_options defaults;
    if (out == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "df_client_open needs somewhere to put the client");
    *out = NULL;
    if (opt == NULL)
        opt = &defaults;
    if (opt->timeout_ms < 0 || opt->attempts < 0)
        return df_fail(err, DF_EBAD_REQUEST, "timeout_ms and attempts must not be negative");

    df_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return df_fail(err, DF_EINTERNAL, "out of memory");
    c->timeout_ms = opt->timeout_ms ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->attempts = opt->attempts ? opt->attempts : DEFAULT_ATTEMPTS;
    int rc = pick_endpoint(opt->api, "DEALFLOW_API", DF_DEFAULT_API_ENDPOINT, "api", &c->api, err);
    if (rc == 0)
        rc = pick_endpoint(opt->ingest, "DEALFLOW_INGEST", DF_DEFAULT_INGEST_ENDPOINT, "ingest",
                           &c->ingest, err);
    if (rc == 0)
        rc = pick_endpoint(opt->notify, "DEALFLOW_NOTIFY", DF_DEFAULT_NOTIFY_ENDPOINT, "notify",
                           &c->notify, err);
    if (rc == 0)
        rc = df__curve_keys_load(opt->server_key, opt->key_file, &c->curve, &c->use_curve, err);
    if (rc == 0) {
        c->context = zmq_ctx_new();
        if (c->context == NULL)
            rc = df_fail(err, DF_EINTERNAL, "cannot create a ZeroMQ context: %s",
                         zmq_strerror(errno));
    }
    if (rc != 0) {
        df_client_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void close_dealer(df_client *c)
{
    if (c->dealer != NULL) {
        zmq_close(c->dealer);
        c->dealer = NULL;
    }
}

void df_client_close(df_client *c)
{
    if (c == NULL)
        return;
    close_dealer(c);
    if (c->push != NULL)
        zmq_close(c->push); /* its linger gives queued frames their time to leave */
    if (c->context != NULL) {
        while (zmq_ctx_term(c->context) != 0 && errno == EINTR) {
        }
    }
    free(c->api);
    free(c->ingest);
    free(c->notify);
    df__curve_keys_wipe(&c->curve);
    free(c);
}

static int open_dealer(df_client *c, df_error *err)
{
    df__socket_spec spec = {
        .type = ZMQ_DEALER,
        .role = "api",
        .endpoint = c->api,
        .linger_ms = 0,
        .max_message = DF__MAX_REPLY,
        .send_timeout_ms = c->timeout_ms,
        .curve = c->use_curve ? &c->curve : NULL,
    };
    return df__socket_open(c->context, &spec, &c->dealer, err);
}

/* Receives one whole message; keeps its last frame in *body when it has
 * exactly two frames, the first being want_id. Returns false for anything
 * else (a stale or malformed reply, which the caller ignores). */
static bool receive_reply(void *socket, uint64_t want_id, zmq_msg_t *body)
{
    int frames = 0;
    bool id_matches = false;
    int more = 1;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            break;
        }
        frames++;
        more = zmq_msg_more(&frame);
        if (frames == 1) {
            id_matches = zmq_msg_size(&frame) == sizeof want_id &&
                         memcmp(zmq_msg_data(&frame), &want_id, sizeof want_id) == 0;
            zmq_msg_close(&frame);
        } else if (frames == 2) {
            zmq_msg_move(body, &frame);
            zmq_msg_close(&frame);
        } else {
            zmq_msg_close(&frame);
        }
    }
    return id_matches && frames == 2;
}

/* Waits up to timeout_ms for the reply to request want_id. 1: *body holds
 * it; 0: none came; negative: the socket failed. */
static int await_reply(df_client *c, uint64_t want_id, zmq_msg_t *body, df_error *err)
{
    int64_t deadline = monotonic_ms() + c->timeout_ms;
    for (;;) {
        int64_t left = deadline - monotonic_ms();
        if (left < 0)
            left = 0;
        zmq_pollitem_t item = {c->dealer, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, (long)left);
        if (n < 0 && errno != EINTR)
            return df_fail(err, DF_EINTERNAL, "waiting for a reply failed: %s",
                           zmq_strerror(errno));
        if (n > 0 && receive_reply(c->dealer, want_id, body))
            return 1;
        if (left == 0)
            return 0;
    }
}

/* Judges a reply: 0 for ok: true, else the code and message it carries. */
static int judge_reply(const char *data, size_t len, bool *well_formed, df_error *err)
{
    df_error check;
    *well_formed = false;
    if (df_msgpack_check(data, len, &check) != 0)
        return df_fail(err, DF_EINTERNAL, "the daemon's reply is not valid msgpack: %s",
                       check.message);
    const char *value;
    size_t value_len;
    bool ok = false;
    if (!df_msgpack_map_find(data, len, "ok", &value, &value_len) ||
        !df_msgpack_read_bool(value, value_len, &ok))
        return df_fail(err, DF_EINTERNAL, "the daemon's reply is not a map with a bool `ok`");
    *well_formed = true;
    if (ok)
        return 0;
    const char *name = NULL, *message = NULL;
    uint32_t name_len = 0, message_len = 0;
    int code = DF_EINTERNAL;
    if (df_msgpack_map_str(data, len, "error", &name, &name_len))
        code = df_error_from_name(name, name_len);
    if (code == DF_OK)
        code = DF_EINTERNAL;
    if (!df_msgpack_map_str(data, len, "message", &message, &message_len) ||
        !df_utf8_valid(message, message_len))
        return df_fail(err, code, "the daemon answered %s", df_error_name(code));
    /* a NUL byte inside the message ends it */
    return df_fail(err, code, "%.*s", (int)message_len, message);
}

int df_request(df_client *c, const void *request, size_t len, df_bytes *reply, df_error *err)
{
    if (reply != NULL) {
        reply->data = NULL;
        reply->len = 0;
    }
    if (c == NULL || request == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "df_request needs a client and a request");
    df_error check;
    if (df_msgpack_check(request, len, &check) != 0)
        return df_fail(err, DF_EBAD_REQUEST, "the request is not valid msgpack: %s", check.message);

    for (int attempt = 0; attempt < c->attempts; attempt++) {
        if (c->dealer == NULL) {
            int rc = open_dealer(c, err);
            if (rc != 0)
                return rc;
        }
        uint64_t id = ++c->next_request_id;
        if (zmq_send(c->dealer, &id, sizeof id, ZMQ_SNDMORE) < 0 ||
            zmq_send(c->dealer, request, len, 0) < 0) {
            close_dealer(c); /* a queue full for timeout_ms counts as a lost attempt */
            continue;
        }
        zmq_msg_t body;
        zmq_msg_init(&body);
        int got = await_reply(c, id, &body, err);
        if (got < 0) {
            zmq_msg_close(&body);
            close_dealer(c);
            return got;
        }
        if (got == 0) {
            /* Lazy Pirate: the socket may hold a dead connection or a
             * request the daemon never read; only a fresh one is sure */
            zmq_msg_close(&body);
            close_dealer(c);
            continue;
        }
        size_t body_len = zmq_msg_size(&body);
        bool well_formed;
        int rc = judge_reply(zmq_msg_data(&body), body_len, &well_formed, err);
        if (reply != NULL && well_formed) {
            reply->data = malloc(body_len);
            if (reply->data == NULL) {
                zmq_msg_close(&body);
                return df_fail(err, DF_EINTERNAL, "out of memory for a reply of %zu bytes",
                               body_len);
            }
            memcpy(reply->data, zmq_msg_data(&body), body_len);
            reply->len = body_len;
        }
        zmq_msg_close(&body);
        return rc;
    }
    return df_fail(err, DF_EUNREACHABLE,
                   "no reply from the daemon at %s after %d attempt%s of %d ms%s", c->api,
                   c->attempts, c->attempts == 1 ? "" : "s", c->timeout_ms,
                   c->use_curve ? " (with CURVE keys: is the server key right, and is this "
                                  "client's key listed?)"
                                : "");
}
