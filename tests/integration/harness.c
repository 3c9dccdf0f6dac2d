/* harness.c: starts and stops dealflowd for the integration tests and speaks its sockets. */
#include "harness.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "codec.h"

#ifndef DEALFLOWD_PATH
#error "DEALFLOWD_PATH must name the dealflowd binary"
#endif

/* Deadlines. Generous: a sanitizer build is several times slower, and a
 * deadline only decides how long a broken daemon takes to be reported. */
#define REQUEST_TIMEOUT_MS 20000
#define READY_TIMEOUT_MS   30000
#define READY_PING_MS      250
#define STOP_TIMEOUT_MS    30000
#define WAIT_TIMEOUT_MS    90000
#define SEND_TIMEOUT_MS    10000
#define MAX_SOCKETS        64
#define MAX_LOG_READ       (4 << 20)

/* A reply kept until it_release: the bytes its strings point into, and the zone of its objects. */
typedef struct kept_reply {
    struct kept_reply *next;
    char *buf;
    msgpack_zone *zone;
    msgpack_object obj;
} kept_reply;

static void *zmq_context;
static int harness_failures;
static kept_reply *kept_replies;
static msgpack_zone *text_arena;
static void *open_sockets[MAX_SOCKETS];
static int open_socket_count;
static const msgpack_object nil_object = {.type = MSGPACK_OBJECT_NIL};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "harness: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    harness_failures++;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polling interval of the wait loops. */
static void pause_briefly(void)
{
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void *context(void)
{
    if (!zmq_context)
        zmq_context = zmq_ctx_new();
    return zmq_context;
}

__attribute__((format(printf, 1, 0))) static char *vformat(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return NULL;
    char *out = malloc((size_t)n + 1);
    if (out)
        vsnprintf(out, (size_t)n + 1, fmt, ap);
    return out;
}

static char *arena_copy(const char *ptr, size_t len)
{
    if (!text_arena)
        text_arena = msgpack_zone_new(8192);
    char *out = msgpack_zone_malloc(text_arena, len + 1);
    if (!out)
        return NULL;
    memcpy(out, ptr, len);
    out[len] = '\0';
    return out;
}

/* ---- sockets ---- */

static void set_int_option(void *socket, int option, int value)
{
    zmq_setsockopt(socket, option, &value, sizeof value);
}

void *it_socket(int type, const char *endpoint)
{
    if (open_socket_count == MAX_SOCKETS) {
        fail("too many sockets open");
        return NULL;
    }
    void *socket = zmq_socket(context(), type);
    if (!socket) {
        fail("zmq_socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    set_int_option(socket, ZMQ_LINGER, 0);
    set_int_option(socket, ZMQ_RECONNECT_IVL, 10);
    set_int_option(socket, ZMQ_SNDTIMEO, SEND_TIMEOUT_MS);
    if (endpoint && zmq_connect(socket, endpoint) != 0) {
        fail("connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
        zmq_close(socket);
        return NULL;
    }
    open_sockets[open_socket_count++] = socket;
    return socket;
}

void it_close(void *socket)
{
    if (!socket)
        return;
    for (int i = 0; i < open_socket_count; i++) {
        if (open_sockets[i] == socket) {
            open_sockets[i] = open_sockets[--open_socket_count];
            break;
        }
    }
    zmq_close(socket);
}

/* Binds throwaway sockets of a private context to port 0; terminating that
 * context closes their listeners before the ports are handed out. */
static bool pick_ports(char endpoints[3][IT_ENDPOINT_MAX])
{
    void *ctx = zmq_ctx_new();
    void *sockets[3] = {NULL, NULL, NULL};
    bool ok = true;
    for (int i = 0; i < 3 && ok; i++) {
        sockets[i] = zmq_socket(ctx, ZMQ_PULL);
        size_t size = IT_ENDPOINT_MAX;
        ok = sockets[i] && zmq_bind(sockets[i], "tcp://127.0.0.1:*") == 0 &&
             zmq_getsockopt(sockets[i], ZMQ_LAST_ENDPOINT, endpoints[i], &size) == 0;
    }
    if (!ok)
        fail("picking free ports: %s", zmq_strerror(zmq_errno()));
    for (int i = 0; i < 3; i++) {
        if (sockets[i])
            zmq_close(sockets[i]);
    }
    zmq_ctx_term(ctx);
    return ok;
}

/* ---- request text ---- */

typedef struct text_reader {
    const char *start;
    const char *p;
    bool bad;
} text_reader;

static void text_error(text_reader *t, const char *why)
{
    if (!t->bad)
        fail("request text, offset %ld: %s: %s", (long)(t->p - t->start), why, t->start);
    t->bad = true;
}

static void skip_space(text_reader *t)
{
    while (*t->p && isspace((unsigned char)*t->p))
        t->p++;
}

static bool is_word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-' || c == '/';
}

/* Returns the position after the closing quote of the string at p, or NULL. */
static const char *skip_quoted(const char *p)
{
    char quote = *p++;
    while (*p && *p != quote) {
        if (*p == '\\' && p[1])
            p++;
        p++;
    }
    return *p ? p + 1 : NULL;
}

/* Counts the items of the array or map whose body starts at p. */
static uint32_t count_items(const char *p)
{
    int depth = 0;
    uint32_t commas = 0;
    bool any = false;
    while (*p) {
        char c = *p;
        if (c == '\'' || c == '"') {
            any = true;
            p = skip_quoted(p);
            if (!p)
                return 0;
            continue;
        }
        if (c == '[' || c == '{') {
            depth++;
        } else if (c == ']' || c == '}') {
            if (depth == 0)
                return any ? commas + 1 : 0;
            depth--;
        } else if (c == ',' && depth == 0) {
            commas++;
        }
        if (!isspace((unsigned char)c))
            any = true;
        p++;
    }
    return 0;
}

static void expect_char(text_reader *t, char c)
{
    skip_space(t);
    if (*t->p != c) {
        char why[32];
        snprintf(why, sizeof why, "expected '%c'", c);
        text_error(t, why);
        return;
    }
    t->p++;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void pack_quoted(text_reader *t, msgpack_packer *pk)
{
    const char *end = skip_quoted(t->p);
    if (!end) {
        text_error(t, "unterminated string");
        return;
    }
    char *out = malloc((size_t)(end - t->p));
    size_t len = 0;
    for (const char *p = t->p + 1; p < end - 1; p++) {
        if (*p != '\\') {
            out[len++] = *p;
            continue;
        }
        p++;
        switch (*p) {
        case 'n':
            out[len++] = '\n';
            break;
        case 't':
            out[len++] = '\t';
            break;
        case '0':
            out[len++] = '\0';
            break;
        case 'x':
            if (hex_digit(p[1]) >= 0 && hex_digit(p[2]) >= 0) {
                out[len++] = (char)(hex_digit(p[1]) * 16 + hex_digit(p[2]));
                p += 2;
            } else {
                text_error(t, "bad \\x escape");
            }
            break;
        default:
            out[len++] = *p;
            break;
        }
    }
    msgpack_pack_str_with_body(pk, out, len);
    free(out);
    t->p = end;
}

static void pack_number(text_reader *t, msgpack_packer *pk)
{
    char *int_end;
    char *float_end;
    errno = 0;
    double f = strtod(t->p, &float_end);
    if (t->p[0] == '-') {
        long long i = strtoll(t->p, &int_end, 10);
        if (float_end > int_end) {
            msgpack_pack_double(pk, f);
            t->p = float_end;
        } else {
            msgpack_pack_int64(pk, i);
            t->p = int_end;
        }
    } else {
        unsigned long long u = strtoull(t->p, &int_end, 10);
        if (float_end > int_end) {
            msgpack_pack_double(pk, f);
            t->p = float_end;
        } else {
            msgpack_pack_uint64(pk, u);
            t->p = int_end;
        }
    }
    if (errno == ERANGE)
        text_error(t, "number out of range");
}

static void pack_value(text_reader *t, msgpack_packer *pk, int depth)
{
    skip_space(t);
    char c = *t->p;
    if (depth > 64) {
        text_error(t, "too deep");
    } else if (c == '{' || c == '[') {
        bool is_map = c == '{';
        uint32_t n = count_items(t->p + 1);
        if (is_map)
            msgpack_pack_map(pk, n);
        else
            msgpack_pack_array(pk, n);
        t->p++;
        for (uint32_t i = 0; i < n && !t->bad; i++) {
            if (i > 0)
                expect_char(t, ',');
            pack_value(t, pk, depth + 1);
            if (is_map) {
                expect_char(t, ':');
                pack_value(t, pk, depth + 1);
            }
        }
        expect_char(t, is_map ? '}' : ']');
    } else if (c == '\'' || c == '"') {
        pack_quoted(t, pk);
    } else if (isdigit((unsigned char)c) || (c == '-' && isdigit((unsigned char)t->p[1]))) {
        pack_number(t, pk);
    } else if (isalpha((unsigned char)c) || c == '_') {
        const char *start = t->p;
        while (is_word_char(*t->p))
            t->p++;
        size_t len = (size_t)(t->p - start);
        if (len == 3 && memcmp(start, "nil", 3) == 0)
            msgpack_pack_nil(pk);
        else if (len == 4 && memcmp(start, "true", 4) == 0)
            msgpack_pack_true(pk);
        else if (len == 5 && memcmp(start, "false", 5) == 0)
            msgpack_pack_false(pk);
        else
            msgpack_pack_str_with_body(pk, start, len);
    } else {
        text_error(t, "unexpected character");
    }
}

static bool pack_text(msgpack_packer *pk, const char *text)
{
    text_reader t = {.start = text, .p = text, .bad = false};
    pack_value(&t, pk, 0);
    skip_space(&t);
    if (*t.p && !t.bad)
        text_error(&t, "trailing characters");
    return !t.bad;
}

bool it_vpack(msgpack_packer *pk, const char *fmt, va_list ap)
{
    char *text = vformat(fmt, ap);
    if (!text) {
        fail("out of memory");
        return false;
    }
    bool ok = pack_text(pk, text);
    free(text);
    return ok;
}

bool it_pack(msgpack_packer *pk, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = it_vpack(pk, fmt, ap);
    va_end(ap);
    return ok;
}

bool it_encode(msgpack_sbuffer *out, const char *fmt, ...)
{
    msgpack_sbuffer_init(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    va_list ap;
    va_start(ap, fmt);
    bool ok = it_vpack(&pk, fmt, ap);
    va_end(ap);
    return ok;
}

/* ---- replies ---- */

/* Unpacks buf (taking it over) into a kept reply; NULL (a failure) when the
 * bytes are not one valid msgpack object with string keys. */
static kept_reply *unpack_reply(char *buf, size_t len, const char *what)
{
    df_error err;
    if (df_msgpack_check(buf, len, &err) != 0) {
        fail("%s: not valid msgpack (%s), %zu bytes", what, err.message, len);
        free(buf);
        return NULL;
    }
    kept_reply *r = calloc(1, sizeof *r);
    r->buf = buf;
    r->zone = msgpack_zone_new(4096);
    if (df_msgpack_unpack(buf, len, r->zone, &r->obj, &err) != 0) {
        fail("%s: cannot unpack (%s)", what, err.message);
        msgpack_zone_free(r->zone);
        free(buf);
        free(r);
        return NULL;
    }
    return r;
}

static void free_reply(kept_reply *r)
{
    if (!r)
        return;
    msgpack_zone_free(r->zone);
    free(r->buf);
    free(r);
}

static const msgpack_object *keep(kept_reply *r)
{
    if (!r)
        return &nil_object;
    r->next = kept_replies;
    kept_replies = r;
    return &r->obj;
}

const msgpack_object *it_unpack_keep(const void *buf, size_t len)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    return keep(unpack_reply(copy, len, "unpack"));
}

void it_release(void)
{
    while (kept_replies) {
        kept_reply *next = kept_replies->next;
        free_reply(kept_replies);
        kept_replies = next;
    }
    if (text_arena) {
        msgpack_zone_free(text_arena);
        text_arena = NULL;
    }
}

/* Receives every frame of one message; returns the last frame's bytes
 * (malloc'd) and the frame count, or NULL on a receive error. */
static char *receive_message(void *socket, size_t *len, int *frames, char **first,
                             size_t *first_len)
{
    char *last = NULL;
    *frames = 0;
    if (first)
        *first = NULL;
    int more = 1;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            free(last);
            if (first)
                free(*first);
            return NULL;
        }
        size_t size = zmq_msg_size(&msg);
        char *copy = malloc(size ? size : 1);
        memcpy(copy, zmq_msg_data(&msg), size);
        if (*frames == 0 && first) {
            *first = copy;
            *first_len = size;
            copy = NULL;
        }
        (*frames)++;
        more = zmq_msg_more(&msg);
        zmq_msg_close(&msg);
        if (more) {
            free(copy);
        } else {
            if (!copy) {
                copy = malloc(size ? size : 1);
                memcpy(copy, *first, size);
            }
            free(last);
            last = copy;
            *len = size;
        }
    }
    return last;
}

static bool wait_readable(void *socket, int timeout_ms)
{
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left < 0)
            left = 0;
        int rc = zmq_poll(&item, 1, (long)left);
        if (rc > 0)
            return true;
        if (rc == 0 || zmq_errno() != EINTR)
            return false;
    }
}

/* Sends one request and waits for its reply. On a timeout the DEALER is
 * closed, so a late reply can never be taken for the next request's. */
static kept_reply *exchange(it_daemon *d, const void *buf, size_t len, int timeout_ms, bool quiet)
{
    if (!d->dealer)
        d->dealer = it_socket(ZMQ_DEALER, d->api);
    if (!d->dealer)
        return NULL;
    if (zmq_send(d->dealer, "", 0, ZMQ_SNDMORE) != 0 || zmq_send(d->dealer, buf, len, 0) < 0) {
        if (!quiet)
            fail("send to api: %s", zmq_strerror(zmq_errno()));
        it_close(d->dealer);
        d->dealer = NULL;
        return NULL;
    }
    if (!wait_readable(d->dealer, timeout_ms)) {
        if (!quiet) {
            fail("no reply from the api within %d ms", timeout_ms);
            it_print_log(d);
        }
        it_close(d->dealer);
        d->dealer = NULL;
        return NULL;
    }
    size_t body_len = 0, first_len = 0;
    int frames = 0;
    char *first = NULL;
    char *body = receive_message(d->dealer, &body_len, &frames, &first, &first_len);
    if (!body) {
        fail("receive from api: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    if (frames != 2 || first_len != 0)
        fail("api reply envelope: %d frames, first %zu bytes (expected an empty delimiter and "
             "the body)",
             frames, first_len);
    free(first);
    return unpack_reply(body, body_len, "api reply");
}

static const msgpack_object *call_bytes(it_daemon *d, const void *buf, size_t len, const char *what)
{
    kept_reply *r = exchange(d, buf, len, REQUEST_TIMEOUT_MS, false);
    if (!r)
        fprintf(stderr, "harness:   (request: %.300s)\n", what);
    return keep(r);
}

const msgpack_object *it_call_raw(it_daemon *d, const void *buf, size_t len)
{
    return call_bytes(d, buf, len, "raw bytes");
}

__attribute__((format(printf, 2, 0))) static const msgpack_object *
vcall(it_daemon *d, const char *fmt, va_list ap)
{
    char *text = vformat(fmt, ap);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const msgpack_object *reply = &nil_object;
    if (text && pack_text(&pk, text))
        reply = call_bytes(d, sb.data, sb.size, text);
    msgpack_sbuffer_destroy(&sb);
    free(text);
    return reply;
}

const msgpack_object *it_call(it_daemon *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const msgpack_object *reply = vcall(d, fmt, ap);
    va_end(ap);
    return reply;
}

int64_t it_append(it_daemon *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *events = vformat(fmt, ap);
    va_end(ap);
    const msgpack_object *reply = it_call(d, "{op: append, events: [%s]}", events);
    int64_t seq = it_int(it_at(it_get(reply, "results"), 0), "seq");
    if (seq == IT_NONE) {
        fprintf(stderr, "it_append: no seq for [%s]: ", events);
        msgpack_object_print(stderr, *reply);
        fprintf(stderr, "\n");
    }
    free(events);
    return seq;
}

/* A request whose reply is read and dropped at once: for the polling loops. */
static int64_t poll_value(it_daemon *d, const char *request, const char *key, int timeout_ms,
                          bool quiet)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int64_t value = IT_NONE;
    if (pack_text(&pk, request)) {
        kept_reply *r = exchange(d, sb.data, sb.size, timeout_ms, quiet);
        if (r)
            value = it_int(&r->obj, key);
        free_reply(r);
    }
    msgpack_sbuffer_destroy(&sb);
    return value;
}

int64_t it_last_seq(it_daemon *d)
{
    return poll_value(d, "{op: ping}", "last_seq", REQUEST_TIMEOUT_MS, false);
}

int64_t it_stat(it_daemon *d, const char *key)
{
    return poll_value(d, "{op: stats}", key, REQUEST_TIMEOUT_MS, false);
}

static bool wait_value(it_daemon *d, const char *request, const char *key, int64_t n)
{
    int64_t deadline = now_ms() + WAIT_TIMEOUT_MS;
    int64_t value = IT_NONE;
    while (now_ms() < deadline) {
        value = poll_value(d, request, key, REQUEST_TIMEOUT_MS, false);
        if (value != IT_NONE && value >= n)
            return true;
        pause_briefly();
    }
    fail("%s: %s stayed at %" PRId64 ", waited for %" PRId64, request, key, value, n);
    return false;
}

bool it_wait_seq(it_daemon *d, int64_t n)
{
    return wait_value(d, "{op: ping}", "last_seq", n);
}

bool it_wait_stat(it_daemon *d, const char *key, int64_t n)
{
    return wait_value(d, "{op: stats}", key, n);
}

/* ---- ingest ---- */

bool it_push_raw(it_daemon *d, const void *buf, size_t len)
{
    if (!d->push)
        d->push = it_socket(ZMQ_PUSH, d->ingest);
    if (!d->push)
        return false;
    if (zmq_send(d->push, buf, len, 0) < 0) {
        fail("push to ingest: %s", zmq_strerror(zmq_errno()));
        return false;
    }
    return true;
}

bool it_push(it_daemon *d, const char *fmt, ...)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    va_list ap;
    va_start(ap, fmt);
    bool ok = it_vpack(&pk, fmt, ap);
    va_end(ap);
    if (ok)
        ok = it_push_raw(d, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return ok;
}

void it_push_close(it_daemon *d, int linger_ms)
{
    if (!d->push)
        return;
    set_int_option(d->push, ZMQ_LINGER, linger_ms);
    it_close(d->push);
    d->push = NULL;
}

/* ---- notify ---- */

void *it_sub_open(it_daemon *d, const char *prefix)
{
    static int monitors;
    char monitor_endpoint[64];
    snprintf(monitor_endpoint, sizeof monitor_endpoint, "inproc://it-monitor-%d", ++monitors);
    void *sub = it_socket(ZMQ_SUB, NULL);
    if (!sub)
        return NULL;
    zmq_socket_monitor(sub, monitor_endpoint, ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    void *monitor = zmq_socket(context(), ZMQ_PAIR);
    set_int_option(monitor, ZMQ_LINGER, 0);
    zmq_connect(monitor, monitor_endpoint);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, prefix, strlen(prefix));
    bool live = zmq_connect(sub, d->notify) == 0 && wait_readable(monitor, REQUEST_TIMEOUT_MS);
    if (live) {
        size_t len = 0;
        int frames = 0;
        free(receive_message(monitor, &len, &frames, NULL, NULL));
    }
    zmq_socket_monitor(sub, NULL, 0);
    zmq_close(monitor);
    if (!live) {
        fail("no handshake with the notify socket %s", d->notify);
        it_close(sub);
        return NULL;
    }
    /* Reading ZMQ_EVENTS makes the SUB attach the new connection, which
     * sends the subscription; the ping after it gives the daemon time to
     * take it in before anything the test does next. */
    int events = 0;
    size_t size = sizeof events;
    zmq_getsockopt(sub, ZMQ_EVENTS, &events, &size);
    if (poll_value(d, "{op: ping}", "last_seq", REQUEST_TIMEOUT_MS, false) == IT_NONE) {
        it_close(sub);
        return NULL;
    }
    return sub;
}

const msgpack_object *it_sub_recv(void *sub, int timeout_ms, const char **topic)
{
    *topic = NULL;
    if (!sub || !wait_readable(sub, timeout_ms))
        return NULL;
    size_t len = 0, topic_len = 0;
    int frames = 0;
    char *first = NULL;
    char *body = receive_message(sub, &len, &frames, &first, &topic_len);
    if (!body) {
        fail("receive from notify: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    if (frames != 2)
        fail("notification of %d frames (expected topic and body)", frames);
    *topic = arena_copy(first, topic_len);
    free(first);
    return keep(unpack_reply(body, len, "notification"));
}

void it_sub_close(void *sub)
{
    it_close(sub);
}

/* ---- the process ---- */

bool it_init(it_daemon *d, const char *const *extra)
{
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "/tmp/dealflow-it-XXXXXX");
    if (!mkdtemp(d->dir)) {
        fail("mkdtemp: %s", strerror(errno));
        d->dir[0] = '\0';
        return false;
    }
    snprintf(d->data, sizeof d->data, "%s/data", d->dir);
    snprintf(d->log, sizeof d->log, "%s/daemon.log", d->dir);
    for (int i = 0; extra && extra[i] && d->nextra < IT_MAX_EXTRA; i++)
        d->extra[d->nextra++] = extra[i];
    char endpoints[3][IT_ENDPOINT_MAX];
    if (!pick_ports(endpoints))
        return false;
    memcpy(d->ingest, endpoints[0], IT_ENDPOINT_MAX);
    memcpy(d->api, endpoints[1], IT_ENDPOINT_MAX);
    memcpy(d->notify, endpoints[2], IT_ENDPOINT_MAX);
    return true;
}

bool it_spawn(it_daemon *d)
{
    const char *argv[12 + IT_MAX_EXTRA];
    int argc = 0;
    argv[argc++] = DEALFLOWD_PATH;
    argv[argc++] = "--data";
    argv[argc++] = d->data;
    argv[argc++] = "--ingest";
    argv[argc++] = d->ingest;
    argv[argc++] = "--api";
    argv[argc++] = d->api;
    argv[argc++] = "--notify";
    argv[argc++] = d->notify;
    for (int i = 0; i < d->nextra; i++)
        argv[argc++] = d->extra[i];
    argv[argc] = NULL;

    long max_fd = sysconf(_SC_OPEN_MAX);
    if (max_fd < 0 || max_fd > 4096)
        max_fd = 4096;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fail("fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        int log = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int null = open("/dev/null", O_RDONLY);
        if (log >= 0) {
            dup2(log, STDOUT_FILENO);
            dup2(log, STDERR_FILENO);
        }
        if (null >= 0)
            dup2(null, STDIN_FILENO);
        for (int fd = 3; fd < max_fd; fd++)
            close(fd);
        execv(DEALFLOWD_PATH, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    return true;
}

static const char *describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, size, "status %d", status);
    return buf;
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int it_wait_exit(it_daemon *d, int timeout_ms)
{
    if (d->pid <= 0)
        return -1;
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int status = 0;
        pid_t rc = waitpid(d->pid, &status, WNOHANG);
        if (rc == d->pid) {
            d->pid = 0;
            return exit_code(status);
        }
        if (rc < 0 && errno != EINTR) {
            fail("waitpid: %s", strerror(errno));
            d->pid = 0;
            return -1;
        }
        if (now_ms() >= deadline)
            return -1;
        pause_briefly();
    }
}

bool it_wait_ready(it_daemon *d)
{
    int64_t deadline = now_ms() + READY_TIMEOUT_MS;
    while (now_ms() < deadline) {
        int status = 0;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            char why[64];
            d->pid = 0;
            fail("dealflowd ended before answering (%s)", describe_status(status, why, sizeof why));
            it_print_log(d);
            return false;
        }
        if (poll_value(d, "{op: ping}", "last_seq", READY_PING_MS, true) != IT_NONE)
            return true;
    }
    fail("dealflowd did not answer ping within %d ms", READY_TIMEOUT_MS);
    it_print_log(d);
    return false;
}

bool it_start(it_daemon *d, const char *const *extra)
{
    return it_init(d, extra) && it_spawn(d) && it_wait_ready(d);
}

int it_stop(it_daemon *d)
{
    if (d->pid <= 0)
        return -1;
    it_push_close(d, 0);
    kill(d->pid, SIGTERM);
    int code = it_wait_exit(d, STOP_TIMEOUT_MS);
    if (code < 0 && d->pid > 0) {
        fail("dealflowd still running %d ms after SIGTERM", STOP_TIMEOUT_MS);
        kill(d->pid, SIGKILL);
        it_wait_exit(d, STOP_TIMEOUT_MS);
    }
    if (code != 0)
        it_print_log(d);
    return code;
}

void it_crash(it_daemon *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    if (it_wait_exit(d, STOP_TIMEOUT_MS) < 0)
        fail("dealflowd survived SIGKILL");
    it_push_close(d, 0);
    it_close(d->dealer);
    d->dealer = NULL;
}

bool it_restart(it_daemon *d)
{
    if (d->pid > 0) {
        fail("it_restart: the daemon is still running");
        return false;
    }
    return it_spawn(d) && it_wait_ready(d);
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        struct dirent *entry;
        while (dir && (entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            char child[IT_PATH_MAX * 2];
            snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
            remove_tree(child);
        }
        if (dir)
            closedir(dir);
        rmdir(path);
    } else {
        unlink(path);
    }
}

void it_cleanup(it_daemon *d)
{
    if (d->pid > 0) {
        int code = it_stop(d);
        if (code != 0)
            fprintf(stderr, "harness: dealflowd ended with %d at cleanup\n", code);
    }
    it_push_close(d, 0);
    it_close(d->dealer);
    d->dealer = NULL;
    if (d->dir[0])
        remove_tree(d->dir);
    d->dir[0] = '\0';
}

static char *read_log(const it_daemon *d)
{
    FILE *f = fopen(d->log, "rb");
    if (!f)
        return NULL;
    char *text = malloc(MAX_LOG_READ + 1);
    size_t n = fread(text, 1, MAX_LOG_READ, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

void it_print_log(const it_daemon *d)
{
    char *text = read_log(d);
    fprintf(stderr, "---- %s ----\n%s---- end of log ----\n", d->log, text ? text : "(none)\n");
    free(text);
}

bool it_log_contains(const it_daemon *d, const char *needle)
{
    char *text = read_log(d);
    bool found = text && strstr(text, needle) != NULL;
    free(text);
    return found;
}

const char *it_port(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    return colon ? colon + 1 : endpoint;
}

int it_done(void)
{
    it_release();
    while (open_socket_count > 0)
        it_close(open_sockets[0]);
    if (zmq_context) {
        zmq_ctx_term(zmq_context);
        zmq_context = NULL;
    }
    return harness_failures;
}

/* ---- reading replies ---- */

const msgpack_object *it_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t len = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
            memcmp(k->via.str.ptr, key, len) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

bool it_ok(const msgpack_object *reply)
{
    return it_bool(reply, "ok") == 1;
}

const char *it_text(const msgpack_object *o)
{
    if (o && o->type == MSGPACK_OBJECT_STR)
        return arena_copy(o->via.str.ptr, o->via.str.size);
    if (o && o->type == MSGPACK_OBJECT_BIN)
        return arena_copy(o->via.bin.ptr, o->via.bin.size);
    return NULL;
}

const char *it_str(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = it_get(map, key);
    return o && o->type == MSGPACK_OBJECT_STR ? it_text(o) : NULL;
}

const char *it_err(const msgpack_object *reply)
{
    return it_str(reply, "error");
}

int64_t it_int(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = it_get(map, key);
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        return (int64_t)o->via.u64;
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return IT_NONE;
}

double it_num(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = it_get(map, key);
    if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32))
        return o->via.f64;
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (double)o->via.u64;
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return (double)o->via.i64;
    return NAN;
}

int it_bool(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = it_get(map, key);
    if (o && o->type == MSGPACK_OBJECT_BOOLEAN)
        return o->via.boolean ? 1 : 0;
    return -1;
}

bool it_is_nil(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = it_get(map, key);
    return o && o->type == MSGPACK_OBJECT_NIL;
}

const msgpack_object *it_at(const msgpack_object *array, uint32_t i)
{
    if (!array || array->type != MSGPACK_OBJECT_ARRAY || i >= array->via.array.size)
        return NULL;
    return &array->via.array.ptr[i];
}

long it_len(const msgpack_object *o)
{
    if (o && o->type == MSGPACK_OBJECT_ARRAY)
        return (long)o->via.array.size;
    if (o && o->type == MSGPACK_OBJECT_MAP)
        return (long)o->via.map.size;
    return -1;
}

static void pack_object(msgpack_sbuffer *sb, const msgpack_object *o)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (o)
        msgpack_pack_object(&pk, *o);
}

bool it_equal(const msgpack_object *a, const msgpack_object *b)
{
    msgpack_sbuffer sa, sb;
    pack_object(&sa, a);
    pack_object(&sb, b);
    bool same = a && b && sa.size == sb.size && memcmp(sa.data, sb.data, sa.size) == 0;
    msgpack_sbuffer_destroy(&sa);
    msgpack_sbuffer_destroy(&sb);
    return same;
}

bool it_same(const msgpack_object *o, const char *fmt, ...)
{
    msgpack_sbuffer expected;
    msgpack_sbuffer_init(&expected);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &expected, msgpack_sbuffer_write);
    va_list ap;
    va_start(ap, fmt);
    bool ok = it_vpack(&pk, fmt, ap);
    va_end(ap);
    msgpack_sbuffer actual;
    pack_object(&actual, o);
    bool same = ok && o && actual.size == expected.size &&
                memcmp(actual.data, expected.data, actual.size) == 0;
    if (!same) {
        fprintf(stderr, "  it_same: got ");
        if (o)
            msgpack_object_print(stderr, *o);
        else
            fprintf(stderr, "(absent)");
        fprintf(stderr, "\n  expected %s\n", fmt);
    }
    msgpack_sbuffer_destroy(&expected);
    msgpack_sbuffer_destroy(&actual);
    return same;
}

bool it_has_keys(const msgpack_object *map, const char *const *keys)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP) {
        fprintf(stderr, "  it_has_keys: not a map\n");
        return false;
    }
    bool ok = true;
    size_t wanted = 0;
    for (; keys[wanted]; wanted++) {
        if (!it_get(map, keys[wanted])) {
            fprintf(stderr, "  it_has_keys: missing key %s\n", keys[wanted]);
            ok = false;
        }
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        bool known = false;
        for (size_t j = 0; j < wanted && !known; j++)
            known = k->type == MSGPACK_OBJECT_STR && strlen(keys[j]) == k->via.str.size &&
                    memcmp(keys[j], k->via.str.ptr, k->via.str.size) == 0;
        if (!known) {
            fprintf(stderr, "  it_has_keys: unexpected key ");
            msgpack_object_print(stderr, *k);
            fprintf(stderr, "\n");
            ok = false;
        }
    }
    return ok;
}

/* ---- small utilities ---- */

void it_buf_add(it_buf *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *piece = vformat(fmt, ap);
    va_end(ap);
    if (!piece)
        return;
    size_t n = strlen(piece);
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        t->ptr = realloc(t->ptr, cap);
        t->cap = cap;
    }
    memcpy(t->ptr + t->len, piece, n + 1);
    t->len += n;
    free(piece);
}

const char *it_buf_get(const it_buf *t)
{
    return t->ptr ? t->ptr : "";
}

void it_buf_free(it_buf *t)
{
    free(t->ptr);
    memset(t, 0, sizeof *t);
}

int64_t it_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
