/* test_bounds.c: what one client can take of the daemon: replies capped in
 * bytes (pages that end early go on from where they ended, every event once,
 * in order), unread replies that do not grow the daemon, and a new client
 * served beside many idle connections when started with a low descriptor
 * limit. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "check.h"
#include "harness.h"

#define EVENTS           10000
#define EVENT_NOTE       2000 /* bytes of each event's note: about 2 KB an event */
#define EVENTS_PER_CALL  400  /* an append under the default 1 MiB --max-message */
#define DEALS            10
#define REPLY_CAP        (1 << 20) /* the byte cap at the default --max-message */
#define UNREAD_REPLAYS   40
#define RSS_MAX_KB       (512L << 10)
#define IDLE_CONNECTIONS 1500
#define CHILD_NOFILE     1024
#define TIMEOUT_MS       10000

static it_daemon D;

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* Records EVENTS activity events of about 2 KB over DEALS deals. */
static bool record_events(void)
{
    static char note[EVENT_NOTE];
    memset(note, 'x', sizeof note);
    for (int first = 0; first < EVENTS; first += EVENTS_PER_CALL) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 2);
        pack_str(&pk, "op");
        pack_str(&pk, "append");
        pack_str(&pk, "events");
        msgpack_pack_array(&pk, EVENTS_PER_CALL);
        for (int i = first; i < first + EVENTS_PER_CALL; i++) {
            char id[32], deal[32];
            snprintf(id, sizeof id, "e%05d", i);
            snprintf(deal, sizeof deal, "d%d", i % DEALS);
            msgpack_pack_map(&pk, 5);
            pack_str(&pk, "id");
            pack_str(&pk, id);
            pack_str(&pk, "type");
            pack_str(&pk, "activity");
            pack_str(&pk, "deal");
            pack_str(&pk, deal);
            pack_str(&pk, "kind");
            pack_str(&pk, "note");
            pack_str(&pk, "note");
            msgpack_pack_str(&pk, sizeof note);
            msgpack_pack_str_body(&pk, note, sizeof note);
        }
        const msgpack_object *reply = it_call_raw(&D, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        if (it_int(it_at(it_get(reply, "results"), EVENTS_PER_CALL - 1), "seq") !=
            first + EVENTS_PER_CALL) {
            CHECK(!"the events were recorded");
            return false;
        }
    }
    return true;
}

static bool start_daemon(void)
{
    /* freed memory must be reused for RssAnon to mean anything under ASan */
    const char *asan = getenv("ASAN_OPTIONS");
    if (!asan || !strstr(asan, "quarantine_size_mb")) {
        char options[512];
        snprintf(options, sizeof options, "%s%squarantine_size_mb=32", asan ? asan : "",
                 asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", options, 1);
    }
    if (!it_setup(&D, NULL))
        return false;
    return record_events();
}

static void stop_daemon(void)
{
    it_teardown(&D);
}

/* A /proc/PID/status figure in kB, -1 when unreadable. */
static long proc_status_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    long kb = -1;
    size_t len = strlen(key);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, len) == 0 && line[len] == ':')
            kb = atol(line + len + 1);
    if (f)
        fclose(f);
    return kb;
}

/* Sends request text on a DEALER (empty delimiter first). */
static bool send_request(void *dealer, const char *text)
{
    msgpack_sbuffer sb;
    if (!it_encode(&sb, "%s", text))
        return false;
    bool sent = zmq_send(dealer, "", 0, ZMQ_SNDMORE) == 0 &&
                zmq_send(dealer, sb.data, sb.size, 0) == (int)sb.size;
    msgpack_sbuffer_destroy(&sb);
    return sent;
}

/* The body of the next reply on a DEALER, in *msg (closed by the caller);
 * false when none came in timeout_ms. */
static bool receive_reply(void *dealer, zmq_msg_t *msg, int timeout_ms)
{
    zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
    int64_t deadline = it_mono_ms() + timeout_ms;
    zmq_msg_init(msg);
    for (;;) {
        int left = (int)(deadline - it_mono_ms());
        if (left <= 0 || zmq_poll(&item, 1, left) <= 0)
            return false;
        if (zmq_msg_recv(msg, dealer, 0) < 0)
            return false;
        if (!zmq_msg_more(msg))
            return true;
    }
}

/* A new client's ping to the api at endpoint is answered within TIMEOUT_MS. */
static bool new_client_served(const char *api)
{
    void *client = it_socket(ZMQ_DEALER, api);
    zmq_msg_t msg;
    bool served = false;
    if (client && send_request(client, "{op: ping}") && receive_reply(client, &msg, TIMEOUT_MS)) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        served = msgpack_unpack_next(&u, zmq_msg_data(&msg), zmq_msg_size(&msg), NULL) ==
                     MSGPACK_UNPACK_SUCCESS &&
                 it_bool(&u.data, "ok") == 1;
        msgpack_unpacked_destroy(&u);
        zmq_msg_close(&msg);
    }
    it_close(client);
    return served;
}

/* Replies a client asks for and never reads stay in the daemon only up to
 * its bound, and another client is answered meanwhile. */
static void test_unread_replies(void)
{
    void *greedy = it_socket(ZMQ_DEALER, D.api);
    /* the client's own queue and socket buffer take next to nothing: what
     * it does not read stays with the daemon */
    int one = 1, small = 4096;
    CHECK(zmq_setsockopt(greedy, ZMQ_RCVHWM, &one, sizeof one) == 0);
    CHECK(zmq_setsockopt(greedy, ZMQ_RCVBUF, &small, sizeof small) == 0);
    long before = proc_status_kb(D.pid, "RssAnon"), peak = before;
    for (int i = 0; i < UNREAD_REPLAYS; i++)
        CHECK(send_request(greedy, "{op: replay, after: 0, limit: 10000}"));
    /* the daemon answers them all within moments; RSS is watched meanwhile */
    int64_t until = it_mono_ms() + 1000;
    while (it_mono_ms() < until) {
        long rss = proc_status_kb(D.pid, "RssAnon");
        if (rss > peak)
            peak = rss;
        it_pause_briefly();
    }
    CHECK(new_client_served(D.api));
    CHECK_INT(it_poll_int(&D, "{op: ping}", "last_seq", TIMEOUT_MS, false), EVENTS);
    long rss = proc_status_kb(D.pid, "RssAnon");
    if (rss > peak)
        peak = rss;
    printf("RssAnon: %ld KiB before, %ld KiB at most with %d unread replays\n", before, peak,
           UNREAD_REPLAYS);
    CHECK(peak > 0);
    CHECK(peak < RSS_MAX_KB);
    it_close(greedy);
}

/* Pages after `after` until the end, on their own DEALER: every seq once,
 * in order; each reply within the cap, some of them ended by it. */
static void walk_pages(const char *request_head, int64_t expected, int64_t step, int64_t first)
{
    void *client = it_socket(ZMQ_DEALER, D.api);
    int64_t after = 0, seen = 0, next = first;
    int pages = 0, short_pages = 0;
    bool in_order = true;
    for (;;) {
        char request[160];
        snprintf(request, sizeof request, "%s, after: %lld}", request_head, (long long)after);
        zmq_msg_t msg;
        if (!send_request(client, request) || !receive_reply(client, &msg, TIMEOUT_MS)) {
            CHECK(!"a page came");
            break;
        }
        pages++;
        CHECK(zmq_msg_size(&msg) <= REPLY_CAP);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        const msgpack_object *events = NULL;
        if (msgpack_unpack_next(&u, zmq_msg_data(&msg), zmq_msg_size(&msg), NULL) ==
            MSGPACK_UNPACK_SUCCESS)
            events = it_get(&u.data, "events");
        long count = it_len(events);
        CHECK(count >= 0);
        for (long i = 0; i < count; i++) {
            int64_t seq = it_int(it_at(events, (uint32_t)i), "seq");
            in_order = in_order && seq == next;
            next += step;
            after = seq;
            seen++;
        }
        short_pages += count > 0 && count < 10000;
        msgpack_unpacked_destroy(&u);
        zmq_msg_close(&msg);
        if (count <= 0 || seen > expected)
            break;
    }
    it_close(client);
    printf("%s}: %lld events in %d pages\n", request_head, (long long)seen, pages);
    CHECK(in_order);
    CHECK_INT(seen, expected);
    CHECK(short_pages > 0);
}

/* Pages that the byte cap ends go on from where they ended: replay and a
 * deal's history give every event exactly once, in order. */
static void test_paging(void)
{
    walk_pages("{op: replay, limit: 10000", EVENTS, 1, 1);
    walk_pages("{op: history, deal: d3, limit: 10000", EVENTS / DEALS, DEALS, 4);
}

static long open_descriptors(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (!dir)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* Started with a soft limit of 1 024 descriptors, the daemon takes more
 * (its hard limit) and serves a new client beside 1 500 idle connections. */
static void test_idle_connections(void)
{
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    rlim_t need = IDLE_CONNECTIONS + 512;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        char why[96];
        snprintf(why, sizeof why, "the hard descriptor limit %llu is under %llu",
                 (unsigned long long)rl.rlim_max, (unsigned long long)need);
        df_skip(why);
        return;
    }
    if (rl.rlim_cur < need) {
        rl.rlim_cur = need;
        CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    }
    it_daemon low;
    if (!it_init(&low, NULL)) {
        CHECK(!"a daemon was set up");
        it_cleanup(&low);
        return;
    }
    low.nofile = CHILD_NOFILE;
    if (!it_spawn(&low) || !it_wait_ready(&low)) {
        CHECK(!"dealflowd started with a low descriptor limit");
        it_cleanup(&low);
        return;
    }
    CHECK(it_log_contains(&low, "descriptor limit"));
    CHECK(it_log_contains(&low, "raised from 1024"));

    static int idle[IDLE_CONNECTIONS];
    int opened = 0;
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_port = htons((uint16_t)atoi(it_port(low.api)));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    long base = open_descriptors(low.pid);
    for (; opened < IDLE_CONNECTIONS; opened++) {
        /* a listen backlog that overflows costs a second of SYN retry: let
         * the daemon accept each hundred before the next */
        int64_t accepted_by = it_mono_ms() + TIMEOUT_MS;
        while (opened % 100 == 0 && open_descriptors(low.pid) < base + opened &&
               it_mono_ms() < accepted_by)
            it_pause_briefly();
        idle[opened] = socket(AF_INET, SOCK_STREAM, 0);
        if (idle[opened] < 0 || connect(idle[opened], (struct sockaddr *)&addr, sizeof addr) != 0) {
            if (idle[opened] >= 0)
                close(idle[opened]);
            break;
        }
    }
    CHECK_INT(opened, IDLE_CONNECTIONS);
    /* every connection is accepted: each is one of the daemon's descriptors */
    int64_t until = it_mono_ms() + TIMEOUT_MS;
    while (open_descriptors(low.pid) < IDLE_CONNECTIONS && it_mono_ms() < until)
        it_pause_briefly();
    long fds = open_descriptors(low.pid);
    printf("dealflowd holds %ld descriptors beside %d idle connections\n", fds, opened);
    CHECK(fds > CHILD_NOFILE);

    CHECK(new_client_served(low.api));

    for (int i = 0; i < opened; i++)
        close(idle[i]);
    CHECK_INT(it_stop(&low), 0);
    it_cleanup(&low);
}

static const df_test tests[] = {
    {"paging", test_paging},
    {"unread_replies", test_unread_replies},
    {"idle_connections", test_idle_connections},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}
