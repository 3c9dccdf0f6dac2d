/* harness_wire.c: the harness's ZeroMQ sockets to the daemon: request text packed into
 * msgpack, requests and their replies with deadlines, ingest frames, notifications. */
#include "harness_wire.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "harness_read.h"

/* Deadlines. Generous: a sanitizer build is several times slower, and a
 * deadline only decides how long a broken daemon takes to be reported. */
#define REQUEST_TIMEOUT_MS 20000
#define WAIT_TIMEOUT_MS    90000
#define SEND_TIMEOUT_MS    10000
#define MAX_SOCKETS        64

static void *zmq_context;
static void *open_sockets[MAX_SOCKETS];
static int open_socket_count;

int64_t it_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void it_pause_briefly(void)
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

/* ---- sockets ---- */

static void set_int_option(void *socket, int option, int value)
{
    zmq_setsockopt(socket, option, &value, sizeof value);
}

void *it_socket(int type, const char *endpoint)
{
    if (open_socket_count == MAX_SOCKETS) {
        it_fail("too many sockets open");
        return NULL;
    }
    void *socket = zmq_socket(context(), type);
    if (!socket) {
        it_fail("zmq_socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    set_int_option(socket, ZMQ_LINGER, 0);
    set_int_option(socket, ZMQ_RECONNECT_IVL, 10);
    set_int_option(socket, ZMQ_SNDTIMEO, SEND_TIMEOUT_MS);
    if (endpoint && zmq_connect(socket, endpoint) != 0) {
        it_fail("connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
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

/* ---- request text ---- */

typedef struct text_reader {
    const char *start;
    const char *p;
    bool bad;
} text_reader;

static void text_error(text_reader *t, const char *why)
{
    if (!t->bad)
        it_fail("request text, offset %ld: %s: %s", (long)(t->p - t->start), why, t->start);
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
        it_fail("out of memory");
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
    int64_t deadline = it_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - it_mono_ms();
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
static it_reply *exchange(it_daemon *d, const void *buf, size_t len, int timeout_ms, bool quiet)
{
    if (!d->dealer)
        d->dealer = it_socket(ZMQ_DEALER, d->api);
    if (!d->dealer)
        return NULL;
    if (zmq_send(d->dealer, "", 0, ZMQ_SNDMORE) != 0 || zmq_send(d->dealer, buf, len, 0) < 0) {
        if (!quiet)
            it_fail("send to api: %s", zmq_strerror(zmq_errno()));
        it_close(d->dealer);
        d->dealer = NULL;
        return NULL;
    }
    if (!wait_readable(d->dealer, timeout_ms)) {
        if (!quiet) {
            it_fail("no reply from the api within %d ms", timeout_ms);
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
        it_fail("receive from api: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    if (frames != 2 || first_len != 0)
        it_fail("api reply envelope: %d frames, first %zu bytes (expected an empty delimiter and "
                "the body)",
                frames, first_len);
    free(first);
    return it_reply_unpack(body, body_len, "api reply");
}

static const msgpack_object *call_bytes(it_daemon *d, const void *buf, size_t len, const char *what)
{
    it_reply *r = exchange(d, buf, len, REQUEST_TIMEOUT_MS, false);
    if (!r)
        fprintf(stderr, "harness:   (request: %.300s)\n", what);
    return it_reply_keep(r);
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
    const msgpack_object *reply = it_reply_keep(NULL);
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

int64_t it_poll_int(it_daemon *d, const char *request, const char *key, int timeout_ms, bool quiet)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int64_t value = IT_NONE;
    if (pack_text(&pk, request)) {
        it_reply *r = exchange(d, sb.data, sb.size, timeout_ms, quiet);
        if (r)
            value = it_int(&r->obj, key);
        it_reply_free(r);
    }
    msgpack_sbuffer_destroy(&sb);
    return value;
}

int64_t it_last_seq(it_daemon *d)
{
    return it_poll_int(d, "{op: ping}", "last_seq", REQUEST_TIMEOUT_MS, false);
}

int64_t it_stat(it_daemon *d, const char *key)
{
    return it_poll_int(d, "{op: stats}", key, REQUEST_TIMEOUT_MS, false);
}

static bool wait_value(it_daemon *d, const char *request, const char *key, int64_t n)
{
    int64_t deadline = it_mono_ms() + WAIT_TIMEOUT_MS;
    int64_t value = IT_NONE;
    while (it_mono_ms() < deadline) {
        value = it_poll_int(d, request, key, REQUEST_TIMEOUT_MS, false);
        if (value != IT_NONE && value >= n)
            return true;
        it_pause_briefly();
    }
    it_fail("%s: %s stayed at %" PRId64 ", waited for %" PRId64, request, key, value, n);
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
        it_fail("push to ingest: %s", zmq_strerror(zmq_errno()));
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
        it_fail("no handshake with the notify socket %s", d->notify);
        it_close(sub);
        return NULL;
    }
    /* Reading ZMQ_EVENTS makes the SUB attach the new connection, which
     * sends the subscription; the ping after it gives the daemon time to
     * take it in before anything the test does next. */
    int events = 0;
    size_t size = sizeof events;
    zmq_getsockopt(sub, ZMQ_EVENTS, &events, &size);
    if (it_poll_int(d, "{op: ping}", "last_seq", REQUEST_TIMEOUT_MS, false) == IT_NONE) {
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
        it_fail("receive from notify: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    if (frames != 2)
        it_fail("notification of %d frames (expected topic and body)", frames);
    *topic = it_copy_text(first, topic_len);
    free(first);
    return it_reply_keep(it_reply_unpack(body, len, "notification"));
}

void it_sub_close(void *sub)
{
    it_close(sub);
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
    return it_failures();
}

/* ---- requests built in pieces ---- */

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
