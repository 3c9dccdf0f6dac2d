/* test_keys.c: keys and roles on every socket: CURVE handshakes admitted by
 * the clients file, what each role may do on api, ingest and notify, `by`
 * on recorded events, SIGHUP reloading the clients, and the refusal of an
 * open bind without keys and of a key file others may read. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "check.h"
#include "harness_process.h"
#include "harness_wire.h"

#define T0 1700000000000LL

typedef struct key {
    char pub[41], sec[41];
} key;

static key server, producer, reader, admin, stranger;
static void *zctx;

static void make_key(key *k)
{
    CHECK_INT(zmq_curve_keypair(k->pub, k->sec), 0);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    CHECK_INT(chmod(path, mode), 0);
}

static char key_path[IT_PATH_MAX + 16], clients_path[IT_PATH_MAX + 16];

static void write_clients(const it_daemon *d, bool with_reader)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "# who may connect\nproducer %s prod-1\n%sadmin %s boss  # the admin\n", producer.pub,
             "", admin.pub);
    if (with_reader) {
        char line[128];
        snprintf(line, sizeof(line), "reader %s dash\n", reader.pub);
        strncat(text, line, sizeof(text) - strlen(text) - 1);
    }
    snprintf(clients_path, sizeof(clients_path), "%s/clients", d->dir);
    write_file(clients_path, text, 0644);
}

/* A socket of type to endpoint with k's keys (none when k is NULL). */
static void *client(int type, const char *endpoint, const key *k)
{
    void *s = zmq_socket(zctx, type);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    if (k) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server.pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, k->pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, k->sec, 40);
    }
    CHECK_INT(zmq_connect(s, endpoint), 0);
    return s;
}

static msgpack_unpacked reply_obj;

/* Sends request text as k and returns the reply's `error` ("" when ok), or
 * NULL when no reply came within timeout_ms. */
static const char *ask(const it_daemon *d, const key *k, int timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static const char *ask(const it_daemon *d, const key *k, int timeout_ms, const char *fmt, ...)
{
    static char error[64];
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    msgpack_sbuffer sb;
    it_encode(&sb, "%s", text);
    void *s = client(ZMQ_DEALER, d->api, k);
    /* neither the send nor the reads may wait past the deadline */
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout_ms, sizeof(timeout_ms));
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
    zmq_send(s, "", 0, ZMQ_SNDMORE);
    zmq_send(s, sb.data, sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
    zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
    const char *result = NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_poll(&item, 1, timeout_ms) == 1 && zmq_msg_recv(&msg, s, 0) >= 0 &&
        zmq_msg_recv(&msg, s, 0) >= 0) {
        msgpack_unpacked_destroy(&reply_obj);
        msgpack_unpacked_init(&reply_obj);
        /* the unpacked strings point into the bytes: they outlive the message */
        static char bytes[1 << 16];
        size_t size = zmq_msg_size(&msg) < sizeof(bytes) ? zmq_msg_size(&msg) : sizeof(bytes);
        memcpy(bytes, zmq_msg_data(&msg), size);
        if (msgpack_unpack_next(&reply_obj, bytes, size, NULL) == MSGPACK_UNPACK_SUCCESS) {
            const char *e = it_str(&reply_obj.data, "error");
            snprintf(error, sizeof(error), "%s", e ? e : "");
            result = error;
        }
    }
    zmq_msg_close(&msg);
    zmq_close(s);
    return result;
}

static bool is(const char *got, const char *want)
{
    if (got && strcmp(got, want) == 0)
        return true;
    fprintf(stderr, "  got %s, wanted `%s`\n", got ? got : "(no reply)", want);
    return false;
}

static bool start_keyed(it_daemon *d)
{
    static const char *extra[5];
    if (!it_init(d, NULL))
        return false;
    make_key(&server);
    snprintf(key_path, sizeof(key_path), "%s/server.key", d->dir);
    char text[128];
    snprintf(text, sizeof(text), "%s\n# the server's secret key\n", server.sec);
    write_file(key_path, text, 0600);
    write_clients(d, true);
    extra[0] = "--curve-key";
    extra[1] = key_path;
    extra[2] = "--clients";
    extra[3] = clients_path;
    extra[4] = NULL;
    for (int i = 0; i < 4; i++)
        d->extra[d->nextra++] = extra[i];
    if (!it_spawn(d))
        return false;
    for (int i = 0; i < 200; i++) {
        if (is(ask(d, &admin, 100, "{op: ping}"), ""))
            return true;
    }
    it_print_log(d);
    return false;
}

static void test_handshake(void)
{
    it_daemon d;
    CHECK(start_keyed(&d));
    CHECK(ask(&d, NULL, 300, "{op: ping}") == NULL);
    CHECK(ask(&d, &stranger, 300, "{op: ping}") == NULL);
    CHECK(is(ask(&d, &producer, 2000, "{op: ping}"), ""));
    CHECK(is(ask(&d, &reader, 2000, "{op: ping}"), ""));
    it_cleanup(&d);
}

static const char *const reads[] = {"{op: deal, deal: x}",
                                    "{op: history, deal: x}",
                                    "{op: list}",
                                    "{op: board}",
                                    "{op: metrics}",
                                    "{op: replay}",
                                    "{op: moves}",
                                    "{op: stats}",
                                    NULL};

#define STAGE_EVENT "{id: %s, type: stage, deal: x, pipeline: default, stage: lead, at: %lld}"
#define PIPELINE_EVENT                                                                             \
    "{id: %s, type: pipeline, pipeline: p2, stages: [{name: a, probability: 10}, {name: w, "       \
    "probability: 100, outcome: won}, {name: l, probability: 0, outcome: lost}]}"

/* The per-event result's error of an append, "" when recorded. */
static const char *result_error(void)
{
    const msgpack_object *results = it_get(&reply_obj.data, "results");
    if (!results || results->type != MSGPACK_OBJECT_ARRAY || results->via.array.size == 0)
        return "(no results)";
    const char *e = it_str(&results->via.array.ptr[0], "error");
    return e ? e : "";
}

static void test_roles_api(void)
{
    it_daemon d;
    CHECK(start_keyed(&d));
    for (int i = 0; reads[i]; i++) {
        const char *r = ask(&d, &reader, 2000, "%s", reads[i]);
        CHECK(r && strcmp(r, "forbidden") != 0);
        CHECK(is(ask(&d, &producer, 2000, "%s", reads[i]), "forbidden"));
        r = ask(&d, &admin, 2000, "%s", reads[i]);
        CHECK(r && strcmp(r, "forbidden") != 0);
    }
    CHECK(is(ask(&d, &reader, 2000, "{op: rejected}"), "forbidden"));
    CHECK(is(ask(&d, &producer, 2000, "{op: rejected}"), "forbidden"));
    CHECK(is(ask(&d, &admin, 2000, "{op: rejected}"), ""));

    CHECK(is(ask(&d, &reader, 2000, "{op: append, events: [" STAGE_EVENT "]}", "r1", T0),
             "forbidden"));
    CHECK(is(ask(&d, &producer, 2000, "{op: append, events: [" STAGE_EVENT "]}", "p1", T0), ""));
    CHECK(is(result_error(), ""));
    /* a producer's pipeline event is refused alone */
    CHECK(is(ask(&d, &producer, 2000, "{op: append, events: [" PIPELINE_EVENT ", " STAGE_EVENT "]}",
                 "p2", "p3", T0 + 1),
             ""));
    CHECK(is(result_error(), "forbidden"));
    const msgpack_object *results = it_get(&reply_obj.data, "results");
    CHECK(results && results->via.array.size == 2 &&
          it_str(&results->via.array.ptr[1], "error") == NULL);
    CHECK(is(ask(&d, &admin, 2000, "{op: append, events: [" PIPELINE_EVENT "]}", "a1"), ""));
    CHECK(is(result_error(), ""));

    /* `by` is recorded and shown; a sent `by` is refused */
    CHECK(is(ask(&d, &reader, 2000, "{op: history, deal: x}"), ""));
    const msgpack_object *events = it_get(&reply_obj.data, "events");
    CHECK(events && events->type == MSGPACK_OBJECT_ARRAY && events->via.array.size == 2);
    if (events && events->type == MSGPACK_OBJECT_ARRAY && events->via.array.size == 2) {
        CHECK_STR(it_str(&events->via.array.ptr[0], "by"), "prod-1");
        CHECK_STR(it_str(&events->via.array.ptr[1], "by"), "prod-1");
    }
    CHECK(is(ask(&d, &admin, 2000, "{op: replay}"), ""));
    events = it_get(&reply_obj.data, "events");
    CHECK(events && events->type == MSGPACK_OBJECT_ARRAY && events->via.array.size == 3);
    if (events && events->type == MSGPACK_OBJECT_ARRAY && events->via.array.size == 3)
        CHECK_STR(it_str(&events->via.array.ptr[2], "by"), "boss");
    CHECK(is(ask(&d, &admin, 2000,
                 "{op: append, events: [{id: b1, type: activity, deal: x, kind: call, by: me}]}"),
             ""));
    CHECK(is(result_error(), "bad_request"));

    /* redact is the admin's alone, and the redaction says who made it */
    const char *redact = "{op: redact, deal: x, fields: [owner], reason: test}";
    CHECK(is(ask(&d, &reader, 2000, "%s", redact), "forbidden"));
    CHECK(is(ask(&d, &producer, 2000, "%s", redact), "forbidden"));
    CHECK(is(ask(&d, &admin, 2000, "%s", redact), ""));
    CHECK(is(ask(&d, &reader, 2000, "{op: history, deal: x}"), ""));
    events = it_get(&reply_obj.data, "events");
    CHECK(events && events->type == MSGPACK_OBJECT_ARRAY && events->via.array.size == 3);
    if (events && events->type == MSGPACK_OBJECT_ARRAY && events->via.array.size == 3) {
        CHECK_STR(it_str(&events->via.array.ptr[2], "type"), "redaction");
        CHECK_STR(it_str(&events->via.array.ptr[2], "by"), "boss");
    }
    it_cleanup(&d);
}

static int64_t stat_of(it_daemon *d, const char *name)
{
    if (!is(ask(d, &admin, 2000, "{op: stats}"), ""))
        return -1;
    return it_int(&reply_obj.data, name);
}

static void push(it_daemon *d, const key *k, const char *text)
{
    msgpack_sbuffer sb;
    it_encode(&sb, "%s", text);
    void *s = client(ZMQ_PUSH, d->ingest, k);
    int linger = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_send(s, sb.data, sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
    zmq_close(s);
}

static bool wait_stat(it_daemon *d, const char *name, int64_t want)
{
    for (int i = 0; i < 100; i++) {
        if (stat_of(d, name) == want)
            return true;
        usleep(50000);
    }
    fprintf(stderr, "  %s stayed %lld, wanted %lld\n", name, (long long)stat_of(d, name),
            (long long)want);
    return false;
}

static void test_roles_ingest(void)
{
    it_daemon d;
    char text[512];
    CHECK(start_keyed(&d));
    snprintf(text, sizeof(text), STAGE_EVENT, "i1", T0);
    push(&d, &producer, text);
    CHECK(wait_stat(&d, "events", 1));
    snprintf(text, sizeof(text), STAGE_EVENT, "i2", T0);
    push(&d, &reader, text);
    CHECK(wait_stat(&d, "rejected", 1));
    snprintf(text, sizeof(text), PIPELINE_EVENT, "i3");
    push(&d, &producer, text);
    CHECK(wait_stat(&d, "rejected", 2));
    CHECK(is(ask(&d, &admin, 2000, "{op: rejected}"), ""));
    const msgpack_object *items = it_get(&reply_obj.data, "items");
    CHECK(items && items->type == MSGPACK_OBJECT_ARRAY && items->via.array.size == 2);
    if (items && items->type == MSGPACK_OBJECT_ARRAY && items->via.array.size == 2) {
        CHECK_STR(it_str(&items->via.array.ptr[0], "error"), "forbidden");
        CHECK_STR(it_str(&items->via.array.ptr[1], "error"), "forbidden");
    }
    snprintf(text, sizeof(text), STAGE_EVENT, "i4", T0 + 5);
    push(&d, &admin, text);
    CHECK(wait_stat(&d, "events", 2));
    CHECK(is(ask(&d, &reader, 2000, "{op: replay}"), ""));
    const msgpack_object *events = it_get(&reply_obj.data, "events");
    if (events && events->type == MSGPACK_OBJECT_ARRAY && events->via.array.size == 2) {
        CHECK_STR(it_str(&events->via.array.ptr[0], "by"), "prod-1");
        CHECK_STR(it_str(&events->via.array.ptr[1], "by"), "boss");
    } else {
        CHECK(false);
    }
    it_cleanup(&d);
}

/* Whether sub has a message waiting (taken), after up to timeout_ms. */
static bool received(void *sub, int timeout_ms)
{
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) != 1)
        return false;
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (zmq_msg_recv(&m, sub, ZMQ_DONTWAIT) >= 0)
        ;
    zmq_msg_close(&m);
    return true;
}

/* The four keys subscribe at once; moves are appended until the reader and
 * the admin have each received one (with a deadline, as handshakes take
 * their time), and by then neither the producer nor a stranger has. */
static void test_roles_notify(void)
{
    it_daemon d;
    CHECK(start_keyed(&d));
    const key *keys[4] = {&reader, &admin, &producer, &stranger};
    void *subs[4];
    bool got[4] = {false, false, false, false};
    for (int i = 0; i < 4; i++) {
        subs[i] = client(ZMQ_SUB, d.notify, keys[i]);
        zmq_setsockopt(subs[i], ZMQ_SUBSCRIBE, "deal.", 5);
    }
    int64_t deadline = it_mono_ms() + 10000;
    for (int n = 0; !(got[0] && got[1]) && it_mono_ms() < deadline; n++) {
        char deal[256];
        snprintf(deal, sizeof(deal),
                 "{op: append, events: [{id: n%d, type: stage, deal: n%d, "
                 "stage: lead, at: %lld}]}",
                 n, n, T0);
        CHECK(is(ask(&d, &admin, 2000, "%s", deal), ""));
        for (int i = 0; i < 4; i++)
            got[i] = received(subs[i], i < 2 ? 100 : 0) || got[i];
    }
    CHECK(got[0]);
    CHECK(got[1]);
    for (int i = 2; i < 4; i++)
        CHECK(!got[i] && !received(subs[i], 200));
    for (int i = 0; i < 4; i++)
        zmq_close(subs[i]);
    it_cleanup(&d);
}

static void test_reload(void)
{
    it_daemon d;
    CHECK(start_keyed(&d));
    CHECK(is(ask(&d, &reader, 2000, "{op: stats}"), ""));
    /* an open connection of the reader, kept across the reload */
    void *open = client(ZMQ_DEALER, d.api, &reader);
    msgpack_sbuffer sb;
    it_encode(&sb, "{op: ping}");
    zmq_send(open, "", 0, ZMQ_SNDMORE);
    zmq_send(open, sb.data, sb.size, 0);
    zmq_pollitem_t item = {open, 0, ZMQ_POLLIN, 0};
    CHECK_INT(zmq_poll(&item, 1, 2000), 1);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    zmq_msg_recv(&msg, open, 0);
    zmq_msg_recv(&msg, open, 0);

    /* the reader goes, the stranger comes, as an admin under the reader's
     * old name: the reader's open connection gains nothing by the name */
    char text[512];
    snprintf(text, sizeof(text), "producer %s prod-1\nadmin %s boss\nadmin %s dash\n", producer.pub,
             admin.pub, stranger.pub);
    write_file(clients_path, text, 0644);
    CHECK_INT(kill(d.pid, SIGHUP), 0);
    bool reloaded = false;
    for (int i = 0; i < 100 && !reloaded; i++) {
        reloaded = it_log_contains(&d, "3 clients loaded");
        usleep(20000);
    }
    CHECK(reloaded);
    CHECK(ask(&d, &reader, 300, "{op: ping}") == NULL);
    CHECK(is(ask(&d, &stranger, 2000, "{op: stats}"), ""));
    zmq_send(open, "", 0, ZMQ_SNDMORE);
    zmq_send(open, sb.data, sb.size, 0);
    CHECK_INT(zmq_poll(&item, 1, 2000), 1);
    zmq_msg_recv(&msg, open, 0);
    zmq_msg_recv(&msg, open, 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    CHECK(msgpack_unpack_next(&u, zmq_msg_data(&msg), zmq_msg_size(&msg), NULL) ==
          MSGPACK_UNPACK_SUCCESS);
    CHECK_STR(it_str(&u.data, "error"), "forbidden");
    msgpack_unpacked_destroy(&u);
    zmq_msg_close(&msg);
    zmq_close(open);
    msgpack_sbuffer_destroy(&sb);

    /* a malformed file keeps the set */
    write_file(clients_path, "reader not-a-key someone\n", 0644);
    CHECK_INT(kill(d.pid, SIGHUP), 0);
    reloaded = false;
    for (int i = 0; i < 100 && !reloaded; i++) {
        reloaded = it_log_contains(&d, "the old set stays");
        usleep(20000);
    }
    CHECK(reloaded);
    CHECK(is(ask(&d, &stranger, 2000, "{op: ping}"), ""));
    CHECK(d.pid > 0 && kill(d.pid, 0) == 0);
    it_cleanup(&d);
}

static void test_open_bind(void)
{
    it_daemon d;
    CHECK(it_init(&d, NULL));
    snprintf(d.api, sizeof(d.api), "tcp://0.0.0.0:%s", it_port(d.api));
    CHECK(it_spawn(&d));
    CHECK_INT(it_wait_exit(&d, 10000), 2);
    CHECK(it_log_contains(&d, "--insecure"));
    d.extra[d.nextra++] = "--insecure";
    CHECK(it_spawn(&d));
    CHECK(it_wait_ready(&d));
    CHECK(it_log_contains(&d, "warning"));
    it_cleanup(&d);
}

static void test_key_file_mode(void)
{
    it_daemon d;
    CHECK(it_init(&d, NULL));
    make_key(&server);
    snprintf(key_path, sizeof(key_path), "%s/server.key", d.dir);
    char text[64];
    snprintf(text, sizeof(text), "%s\n", server.sec);
    write_file(key_path, text, 0644);
    write_clients(&d, true);
    d.extra[d.nextra++] = "--curve-key";
    d.extra[d.nextra++] = key_path;
    d.extra[d.nextra++] = "--clients";
    d.extra[d.nextra++] = clients_path;
    CHECK(it_spawn(&d));
    CHECK_INT(it_wait_exit(&d, 10000), 2);
    CHECK(it_log_contains(&d, "chmod 600"));
    /* a malformed clients file names its line */
    write_file(key_path, text, 0600);
    write_file(clients_path, "# fine\nwriter abc x\n", 0644);
    CHECK(it_spawn(&d));
    CHECK_INT(it_wait_exit(&d, 10000), 2);
    CHECK(it_log_contains(&d, "clients:2:"));
    it_cleanup(&d);
}

static const df_test tests[] = {
    {"handshake", test_handshake},
    {"roles_api", test_roles_api},
    {"roles_ingest", test_roles_ingest},
    {"roles_notify", test_roles_notify},
    {"reload", test_reload},
    {"open_bind", test_open_bind},
    {"key_file_mode", test_key_file_mode},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    zctx = zmq_ctx_new();
    make_key(&producer);
    make_key(&reader);
    make_key(&admin);
    make_key(&stranger);
    msgpack_unpacked_init(&reply_obj);
    int rc = df_test_main(argc, argv, tests, NULL);
    msgpack_unpacked_destroy(&reply_obj);
    zmq_ctx_term(zctx);
    return rc || it_done() ? 1 : 0;
}
