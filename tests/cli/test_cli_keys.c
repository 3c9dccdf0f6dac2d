/* test_cli_keys.c: keys and roles end to end: keys made with `dealflow keygen`,
 * the clients file written from `keygen --public`, the real daemon started with
 * --curve-key and --clients, and then libdealflow and the dealflow command (keys
 * from the environment) as a producer, a reader, an admin, a stranger and no
 * one; `tail` with a reader's key repairing a gap, and SIGHUP letting a new key
 * in without a restart. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "check.h"
#include "cli_run.h"
#include "codec.h"
#include "dealflow.h"
#include "internal.h"

#define WAIT_MS 30000

/* One key pair made with keygen: its secret key file and its public key. */
typedef struct role_key {
    const char *name;
    char file[IT_PATH_MAX + 32];
    char pub[41];
} role_key;

static it_daemon daemon_;
static role_key server = {.name = "server"}, producer = {.name = "producer"},
                reader = {.name = "reader"}, admin = {.name = "admin"},
                stranger = {.name = "stranger"}, latecomer = {.name = "latecomer"};
static char clients_path[IT_PATH_MAX + 32], server_pub_path[IT_PATH_MAX + 32];

/* The dealflow command runs with k's key and the server's public key from the
 * environment, as a user's shell would give them (k NULL: no keys). */
static void use_key(const role_key *k)
{
    if (k) {
        setenv("DEALFLOW_SERVER_KEY", server.pub, 1);
        setenv("DEALFLOW_KEY_FILE", k->file, 1);
    } else {
        unsetenv("DEALFLOW_SERVER_KEY");
        unsetenv("DEALFLOW_KEY_FILE");
    }
}

#define AS(k, input, ...) (use_key(k), CLI(&daemon_, (input), __VA_ARGS__))

/* `dealflow keygen --out` for k, then its public key from `keygen --public`. */
static bool keygen(role_key *k)
{
    snprintf(k->file, sizeof k->file, "%s/%s.key", daemon_.dir, k->name);
    use_key(NULL);
    cli_result r = CLI(&daemon_, NULL, "keygen", "--out", k->file);
    CHECK_STATUS(r, 0);
    cli_result_free(&r);
    r = CLI(&daemon_, NULL, "keygen", "--public", k->file);
    CHECK_STATUS(r, 0);
    snprintf(k->pub, sizeof k->pub, "%.*s", (int)strcspn(r.out, "\n"), r.out);
    cli_result_free(&r);
    return strlen(k->pub) == 40;
}

/* The clients file: producer "crm", reader "dash", admin "boss", and the
 * latecomer as a reader "late" when with_latecomer. */
static void write_clients(bool with_latecomer)
{
    char text[1024];
    int n = snprintf(text, sizeof text,
                     "# role public-key name\n"
                     "producer %s crm\n"
                     "reader   %s dash\n"
                     "admin    %s boss\n",
                     producer.pub, reader.pub, admin.pub);
    if (with_latecomer)
        snprintf(text + n, sizeof text - (size_t)n, "reader   %s late\n", latecomer.pub);
    cli_write_file(clients_path, text);
}

/* A libdealflow client of endpoints api/ingest/notify with k's key (NULL: none). */
static df_client *open_as_at(const role_key *k, const char *api, int timeout_ms, int attempts)
{
    df_client_options opt = {.api = api,
                             .ingest = daemon_.ingest,
                             .notify = daemon_.notify,
                             .timeout_ms = timeout_ms,
                             .attempts = attempts,
                             .server_key = k ? server_pub_path : "",
                             .key_file = k ? k->file : ""};
    df_client *c = NULL;
    df_error err;
    int rc = df_client_open(&c, &opt, &err);
    if (rc != 0)
        fprintf(stderr, "df_client_open: %s\n", err.message);
    CHECK_INT(rc, 0);
    return c;
}

static df_client *open_as(const role_key *k)
{
    return open_as_at(k, daemon_.api, 0, 0);
}

/* Pings api with the admin's key until it answers. */
static bool wait_answers(const char *api)
{
    df_client *c = open_as_at(&admin, api, 200, 1);
    int64_t deadline = it_wall_ms() + WAIT_MS;
    bool up = false;
    while (c && !up && it_wall_ms() < deadline) {
        df_bytes reply = {0};
        df_error err;
        up = df_ping(c, &reply, &err) == 0;
        df_bytes_free(&reply);
    }
    df_client_close(c);
    return up;
}

static bool start_daemon(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (!it_init(&daemon_, NULL)) {
        CHECK(!"a temp dir and free ports");
        return false;
    }
    bool keys = keygen(&server) && keygen(&producer) && keygen(&reader) && keygen(&admin) &&
                keygen(&stranger) && keygen(&latecomer);
    CHECK(keys);
    if (!keys)
        return false;
    /* the server's public key as a file, as a client machine would keep it */
    snprintf(server_pub_path, sizeof server_pub_path, "%s/server.pub", daemon_.dir);
    char line[64];
    snprintf(line, sizeof line, "%s\n", server.pub);
    cli_write_file(server_pub_path, line);
    snprintf(clients_path, sizeof clients_path, "%s/clients", daemon_.dir);
    write_clients(false);
    daemon_.extra[daemon_.nextra++] = "--curve-key";
    daemon_.extra[daemon_.nextra++] = server.file;
    daemon_.extra[daemon_.nextra++] = "--clients";
    daemon_.extra[daemon_.nextra++] = clients_path;
    if (it_spawn(&daemon_) && wait_answers(daemon_.api))
        return true;
    it_print_log(&daemon_);
    CHECK(!"dealflowd started with keys");
    return false;
}

static void stop_daemon(void)
{
    if (df_checks_failed)
        it_print_log(&daemon_);
    use_key(NULL);
    CHECK_INT(it_stop(&daemon_), 0);
    it_cleanup(&daemon_);
    CHECK_INT(it_done(), 0);
}

/* A msgpack array of stage events, deals and ids "<tag>-<first + i>". */
static void pack_moves(msgpack_sbuffer *sb, const char *tag, int first, int n, const char *stage)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        char name[64];
        int len = snprintf(name, sizeof name, "%s-%04d", tag, first + i);
        msgpack_pack_map(&pk, 4);
        const char *keys[] = {"id", "type", "deal", "stage"};
        const char *values[] = {name, "stage", name, stage};
        for (int j = 0; j < 4; j++) {
            msgpack_pack_str(&pk, strlen(keys[j]));
            msgpack_pack_str_body(&pk, keys[j], strlen(keys[j]));
            size_t vlen = j == 0 || j == 2 ? (size_t)len : strlen(values[j]);
            msgpack_pack_str(&pk, vlen);
            msgpack_pack_str_body(&pk, values[j], vlen);
        }
    }
}

/* Appends n new deals as c; the seq of the last, or 0 (the first refusal's code in *code). */
static uint64_t append_moves(df_client *c, const char *tag, int first, int n, int *code)
{
    msgpack_sbuffer sb;
    pack_moves(&sb, tag, first, n, "lead");
    df_append_result *results = calloc((size_t)n, sizeof *results);
    df_error err = {0};
    int rc = df_append(c, sb.data, sb.size, results, (size_t)n, &err);
    msgpack_sbuffer_destroy(&sb);
    uint64_t last = 0;
    *code = rc;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (results[i].error && !*code)
            *code = results[i].error;
        last = results[i].seq;
    }
    free(results);
    return *code ? 0 : last;
}

static uint64_t append_ok(df_client *c, const char *tag, int first, int n)
{
    int code;
    uint64_t last = append_moves(c, tag, first, n, &code);
    CHECK_INT(code, 0);
    return last;
}

/* The `by` of each event of a deal's history, as the reader reads it. */
static int history_by(df_client *c, const char *deal, const char *want)
{
    df_iter *it;
    df_error err;
    int n = 0, rc;
    CHECK_INT(df_history_open(c, deal, 0, &it, &err), 0);
    const char *item;
    size_t len;
    while ((rc = df_iter_next(it, &item, &len, &err)) == 1) {
        const char *by;
        uint32_t by_len;
        CHECK(df_msgpack_map_str(item, len, "by", &by, &by_len) && by_len == strlen(want) &&
              memcmp(by, want, by_len) == 0);
        n++;
    }
    CHECK_INT(rc, 0);
    df_iter_free(it);
    return n;
}

/* libdealflow: each role does what it may and is refused the rest; a key
 * the daemon does not list, and no key, get no answer at all. */
static void test_library_roles(void)
{
    df_client *prod = open_as(&producer), *read = open_as(&reader), *boss = open_as(&admin);
    df_bytes reply = {0};
    df_error err;
    int code;
    uint64_t seq = append_ok(prod, "lib", 0, 1);
    CHECK(seq > 0);
    msgpack_sbuffer sb;
    pack_moves(&sb, "lib", 1, 1, "qualified");
    CHECK_INT(df_publish(prod, sb.data, sb.size, &err), 0);
    msgpack_sbuffer_destroy(&sb);
    /* the published event is recorded in the background: the reader waits for it */
    int64_t deadline = it_wall_ms() + WAIT_MS;
    uint64_t last = 0;
    while (last <= seq && it_wall_ms() < deadline) {
        CHECK_INT(df_ping(read, &reply, &err), 0);
        df_msgpack_map_uint(reply.data, reply.len, "last_seq", &last);
        df_bytes_free(&reply);
    }
    CHECK(last > seq);
    CHECK_INT(df_get_deal(read, "lib-0000", NULL, NULL, &reply, &err), 0);
    df_bytes_free(&reply);
    CHECK_INT(history_by(read, "lib-0000", "crm"), 1);
    CHECK_INT(history_by(read, "lib-0001", "crm"), 1);
    CHECK_INT(df_get_board(read, NULL, NULL, &reply, &err), 0);
    df_bytes_free(&reply);

    /* what a role may not do is forbidden, with the daemon's reply */
    CHECK_INT(append_moves(read, "lib-r", 0, 1, &code), 0);
    CHECK_INT(code, DF_EFORBIDDEN);
    CHECK_INT(df_get_deal(prod, "lib-0000", NULL, NULL, &reply, &err), DF_EFORBIDDEN);
    df_bytes_free(&reply);
    CHECK_INT(df_get_stats(prod, &reply, &err), DF_EFORBIDDEN);
    df_bytes_free(&reply);

    /* only an admin defines a pipeline */
    msgpack_sbuffer pl;
    CHECK(it_encode(&pl,
                    "[{id: lib-pl, type: pipeline, pipeline: libpip, stages: "
                    "[{name: a, probability: 10}, {name: w, probability: 100, outcome: won}]}]"));
    df_append_result result;
    CHECK_INT(df_append(prod, pl.data, pl.size, &result, 1, &err), 0);
    CHECK_INT(result.error, DF_EFORBIDDEN);
    CHECK_INT(df_append(boss, pl.data, pl.size, &result, 1, &err), 0);
    CHECK_INT(result.error, 0);
    msgpack_sbuffer_destroy(&pl);
    CHECK_INT(df_get_board(read, "libpip", NULL, &reply, &err), 0);
    df_bytes_free(&reply);

    /* unknown key, no key: the handshake fails, so no reply ever comes */
    df_client *nobody = open_as_at(&stranger, daemon_.api, 200, 1);
    CHECK_INT(df_ping(nobody, &reply, &err), DF_EUNREACHABLE);
    df_client_close(nobody);
    nobody = open_as_at(NULL, daemon_.api, 200, 1);
    CHECK_INT(df_ping(nobody, &reply, &err), DF_EUNREACHABLE);
    df_client_close(nobody);
    df_client_close(boss);
    df_client_close(read);
    df_client_close(prod);
}

/* A reader's subscription over CURVE gets the producer's moves, and repairs
 * (with `moves`, as the reader) those it missed while cut off. */
static void test_library_subscription_gap(void)
{
    df_client *prod = open_as(&producer), *read = open_as(&reader);
    df_subscription *s;
    df_error err;
    CHECK_INT(df_subscribe(read, "deal.moved.", 0, &s, &err), 0);
    uint64_t start = df_subscription_last_seq(s);
    uint64_t until = append_ok(prod, "sg-a", 0, 10);
    int live = 0, repaired = 0, extra = 0;
    bool cut = false, in_order = true;
    uint64_t prev = 0;
    int64_t deadline = it_wall_ms() + WAIT_MS;
    while (it_wall_ms() < deadline) {
        if (df_subscription_last_seq(s) >= until) {
            if (cut)
                break;
            /* cut the subscriber off while moves go by, then let it back */
            void *sub = df__subscription_socket(s);
            CHECK_INT(zmq_disconnect(sub, daemon_.notify), 0);
            append_ok(prod, "sg-b", 0, 300);
            until = append_ok(prod, "sg-b", 300, 300);
            CHECK_INT(zmq_connect(sub, daemon_.notify), 0);
            cut = true;
        }
        df_notification n;
        int rc = df_subscription_next(s, 200, &n, &err);
        CHECK(rc >= 0);
        if (rc < 0) {
            fprintf(stderr, "subscription: %s\n", err.message);
            break;
        }
        if (rc == 0) { /* a gap shows only when a later move arrives */
            until = append_ok(prod, "sg-c", extra++, 1);
            continue;
        }
        /* from the first on every event is a move: each seq follows the last */
        in_order &= prev == 0 ? n.seq > start : n.seq == prev + 1;
        prev = n.seq;
        if (n.repaired)
            repaired++;
        else
            live++;
    }
    CHECK(cut);
    CHECK(in_order);
    CHECK(df_subscription_last_seq(s) >= until);
    CHECK(live > 0);
    CHECK(repaired > 0);
    printf("a reader's subscription cut off got %d moves live and %d by repair\n", live, repaired);
    df_subscription_close(s);
    df_client_close(read);
    df_client_close(prod);
}

/* The dealflow command with keys from the environment. */
static void test_cli_roles(void)
{
    cli_result r = AS(&producer, NULL, "send",
                      "{\"id\":\"cli-1\",\"type\":\"stage\",\"deal\":\"cli\",\"stage\":\"lead\","
                      "\"amount\":500,\"at\":1700000000000}",
                      "{\"id\":\"cli-2\",\"type\":\"update\",\"deal\":\"cli\",\"amount\":750,"
                      "\"at\":1700003600000}");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "2 recorded, 0 duplicates, 0 refused"));
    cli_result_free(&r);
    r = AS(&producer,
           "{\"id\":\"cli-3\",\"type\":\"stage\",\"deal\":\"cli\",\"stage\":"
           "\"qualified\",\"at\":1700007200000}\n",
           "send", "--no-ack");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "1 event published"));
    cli_result_free(&r);

    /* the reader sees what the producer sent, recorded `by` the producer's name */
    int64_t deadline = it_wall_ms() + WAIT_MS;
    json_t *lines = NULL;
    do {
        json_decref(lines);
        r = AS(&reader, NULL, "--json", "history", "cli");
        CHECK_STATUS(r, 0);
        lines = cli_ndjson(r.out);
        cli_result_free(&r);
    } while (json_array_size(lines) < 3 && it_wall_ms() < deadline);
    CHECK_INT(json_array_size(lines), 3);
    for (size_t i = 0; i < json_array_size(lines); i++)
        CHECK_STR(json_string_value(json_object_get(json_array_get(lines, i), "by")), "crm");
    json_decref(lines);
    r = AS(&reader, NULL, "history", "cli");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "moved to qualified"));
    cli_result_free(&r);
    r = AS(&reader, NULL, "deal", "cli");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "qualified"));
    CHECK(cli_has(r.out, "750"));
    cli_result_free(&r);
    r = AS(&reader, NULL, "board");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "qualified"));
    cli_result_free(&r);

    /* a reader may not send, a producer may not read or define pipelines */
    r = AS(&reader, NULL, "send",
           "{\"id\":\"cli-r\",\"type\":\"stage\",\"deal\":\"cli\",\"stage\":\"won\"}");
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "forbidden"));
    cli_result_free(&r);
    r = AS(&producer, NULL, "deal", "cli");
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "forbidden"));
    cli_result_free(&r);
    const char *pipeline = "{\"id\":\"cli-pl\",\"type\":\"pipeline\",\"pipeline\":\"team\","
                           "\"stages\":[{\"name\":\"new\",\"probability\":10},"
                           "{\"name\":\"done\",\"probability\":100,\"outcome\":\"won\"}]}";
    r = AS(&producer, NULL, "send", pipeline);
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "forbidden"));
    cli_result_free(&r);
    r = AS(&admin, NULL, "send", pipeline);
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "1 recorded"));
    cli_result_free(&r);
    r = AS(&reader, NULL, "board", "--pipeline", "team");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "pipeline team"));
    cli_result_free(&r);

    /* an unknown key and no key are unreachable: nothing answers them */
    r = AS(&stranger, NULL, "ping", "--timeout", "200", "--attempts", "1");
    CHECK_STATUS(r, 3);
    CHECK(cli_has(r.err, "unreachable"));
    cli_result_free(&r);
    r = AS(NULL, NULL, "board", "--timeout", "200", "--attempts", "1");
    CHECK_STATUS(r, 3);
    CHECK(cli_has(r.err, "unreachable"));
    cli_result_free(&r);
}

/* Lines in the file at path, waiting up to the deadline for at least n. */
static int wait_lines(const char *path, int n, pid_t pid)
{
    int64_t deadline = it_wall_ms() + WAIT_MS;
    int got = 0;
    while (it_wall_ms() < deadline) {
        char *text = cli_read_file(path);
        got = cli_count_lines(text);
        free(text);
        if (got >= n || cli_wait(pid, 20) != -1)
            break;
    }
    return got;
}

/* `dealflow tail` as a reader: live moves, then moves it could not have
 * received (the daemon recorded them while it listened elsewhere) repaired
 * in order once the next live move shows the gap. */
static void test_cli_tail_gap(void)
{
    enum { MISSED = 5, COUNT = 16 };
    char out_path[IT_PATH_MAX + 16];
    snprintf(out_path, sizeof out_path, "%s/tail.out", daemon_.dir);
    use_key(&reader);
    pid_t pid = cli_spawn(&daemon_, out_path,
                          (const char *const[]){"--json", "tail", "--count", "16", NULL});
    CHECK(pid > 0);
    df_client *prod = open_as(&producer);
    /* moves until the tail has printed two: its subscription is live */
    for (int i = 0; i < 100 && wait_lines(out_path, 0, pid) < 2 && cli_wait(pid, 300) == -1; i++)
        append_ok(prod, "tl-a", i, 1);
    CHECK(wait_lines(out_path, 2, pid) >= 2);
    df_client_close(prod);

    /* the daemon moves to other ports for a while and records moves there */
    CHECK_INT(it_stop(&daemon_), 0);
    it_daemon away = daemon_;
    away.dealer = away.push = NULL;
    char endpoints[3][IT_ENDPOINT_MAX];
    CHECK(it_pick_ports(endpoints));
    snprintf(away.ingest, sizeof away.ingest, "%s", endpoints[0]);
    snprintf(away.api, sizeof away.api, "%s", endpoints[1]);
    snprintf(away.notify, sizeof away.notify, "%s", endpoints[2]);
    CHECK(it_spawn(&away) && wait_answers(away.api));
    prod = open_as_at(&producer, away.api, 0, 0);
    uint64_t missed_last = append_ok(prod, "tl-b", 0, MISSED);
    df_client_close(prod);
    CHECK_INT(it_stop(&away), 0);

    /* back where the tail listens: the next live move shows the gap */
    CHECK(it_spawn(&daemon_) && wait_answers(daemon_.api));
    prod = open_as(&producer);
    int status = -1;
    for (int j = 0; status == -1 && j < 200; j++) {
        append_ok(prod, "tl-c", j, 1);
        status = cli_wait(pid, 300);
    }
    df_client_close(prod);
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    CHECK_INT(status, 0);
    char *text = cli_read_file(out_path);
    json_t *lines = cli_ndjson(text);
    CHECK_INT(json_array_size(lines), COUNT);
    int repaired_missed = 0;
    for (size_t k = 0; k < json_array_size(lines); k++) {
        json_t *l = json_array_get(lines, k);
        json_int_t seq = json_integer_value(json_object_get(l, "seq"));
        if (k > 0)
            CHECK_INT(seq,
                      json_integer_value(json_object_get(json_array_get(lines, k - 1), "seq")) + 1);
        const char *deal = json_string_value(json_object_get(l, "deal"));
        if (deal && strncmp(deal, "tl-b-", 5) == 0) {
            CHECK(json_is_true(json_object_get(l, "repaired")));
            repaired_missed++;
        }
        if (seq == (json_int_t)missed_last)
            CHECK(k + 1 < json_array_size(lines)); /* a live one came after */
    }
    CHECK_INT(repaired_missed, MISSED);
    json_decref(lines);
    free(text);
    use_key(NULL);
}

/* A key added to the clients file is let in by SIGHUP, the daemon running on. */
static void test_sighup_adds_key(void)
{
    cli_result r = AS(&latecomer, NULL, "ping", "--timeout", "200", "--attempts", "1");
    CHECK_STATUS(r, 3);
    cli_result_free(&r);
    pid_t before = daemon_.pid;
    write_clients(true);
    CHECK_INT(kill(daemon_.pid, SIGHUP), 0);
    bool reloaded = false;
    for (int i = 0; i < 250 && !reloaded; i++) {
        reloaded = it_log_contains(&daemon_, "4 clients loaded");
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK(reloaded);
    r = AS(&latecomer, NULL, "board");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "pipeline default"));
    cli_result_free(&r);
    r = AS(&latecomer, NULL, "send",
           "{\"id\":\"late-1\",\"type\":\"stage\",\"deal\":\"late\",\"stage\":\"won\"}");
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "forbidden"));
    cli_result_free(&r);
    CHECK_INT(daemon_.pid, before);
    CHECK(kill(daemon_.pid, 0) == 0);
}

static const df_test tests[] = {
    {"library_roles", test_library_roles},
    {"library_subscription_gap", test_library_subscription_gap},
    {"cli_roles", test_cli_roles},
    {"cli_tail_gap", test_cli_tail_gap},
    {"sighup_adds_key", test_sighup_adds_key},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}
