/* test_gateway_hostile.c: the built gateway in front of the real daemon, under hostile HTTP: a
 * 100 KB header, bodies far over the limit with and without Content-Length, broken JSON and
 * requests, senders that trickle a byte a second (cut by the timeout, while others are served),
 * and as many connections as the descriptor limit allows up to 10 000 (a normal client served or
 * refused at once, never left hanging). After each, the gateway is up and its RSS bounded. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "gateway_harness.h"

#define BODY_LIMIT     65536
#define TIMEOUT_S      2
#define CONNECTIONS    256
#define MAX_CONNS      10000
#define RSS_LIMIT_KIB  (256 * 1024)
#define PRODUCER_TOKEN "producer-token-0123456789"

static it_daemon D;
static gw_gateway G;

/* ---- plain sockets ---- */

static int connect_gateway(bool nonblocking)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(G.port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends all of data unless the gateway closes first; false then. */
static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads until the gateway closes or the deadline: the status of the answer (0 when the
 * connection closed without one), or -1 when it neither answered nor closed in time. */
static int read_status(int fd, int64_t deadline)
{
    char buf[4096];
    size_t have = 0;
    for (;;) {
        int64_t left = deadline - it_mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = poll(&p, 1, (int)left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return -1;
        ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            have += (size_t)n;
        buf[have] = '\0';
        int status;
        if (have >= 12 && sscanf(buf, "HTTP/1.%*d %d", &status) == 1)
            return status;
        if (n <= 0 || have == sizeof buf - 1)
            return 0;
    }
}

/* One request on a fresh connection: its status, 0 when closed without one, -1 on no answer. */
static int exchange(const char *request, int64_t timeout_ms)
{
    int fd = connect_gateway(false);
    if (fd < 0)
        return 0;
    int status = send_all(fd, request, strlen(request)) ? read_status(fd, it_mono_ms() + timeout_ms)
                                                        : read_status(fd, it_mono_ms() + 1000);
    close(fd);
    return status;
}

static int healthz(int64_t timeout_ms)
{
    return exchange("GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", timeout_ms);
}

/* The gateway's resident memory in KiB, -1 when it cannot be read. */
static long rss_kib(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)G.process.pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* The gateway runs, answers /healthz within a deadline, and its memory is bounded. */
static void check_still_up(const char *after)
{
    CHECK(gw_running(&G));
    int64_t deadline = it_mono_ms() + GW_WAIT_MS;
    int answer = 0;
    while (answer != 200 && it_mono_ms() < deadline)
        answer = healthz(5000);
    if (answer != 200)
        fprintf(stderr, "after %s: /healthz answers %d\n", after, answer);
    CHECK_INT(answer, 200);
    long kib = rss_kib();
    if (kib >= RSS_LIMIT_KIB)
        fprintf(stderr, "after %s: VmRSS %ld KiB\n", after, kib);
    CHECK(kib > 0 && kib < RSS_LIMIT_KIB);
}

/* ---- setup ---- */

static bool setup(void)
{
    /* as many descriptors as allowed, for this process and the gateway it starts */
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    if (!it_start(&D, NULL) || !gw_init(&G, D.dir, "gateway"))
        return false;
    if (!gw_write_config(
            &G,
            "{\"tokens\": [{\"token\": \"%s\", \"role\": \"producer\", \"name\": \"crm\"}],"
            " \"hooks\": {\"open\": {\"signature\": \"none\", \"event\": {\"id\": \"$.id\","
            " \"type\": \"stage\", \"deal\": \"$.deal\", \"stage\": \"lead\"}}},"
            " \"daemon\": {\"timeout_ms\": 2000, \"attempts\": 2},"
            " \"limits\": {\"body_bytes\": %d, \"connections\": %d, \"timeout_s\": %d}}\n",
            PRODUCER_TOKEN, BODY_LIMIT, CONNECTIONS, TIMEOUT_S))
        return false;
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
}

/* ---- the tests ---- */

static void test_huge_header(void)
{
    size_t big = 100 * 1024;
    char *request = malloc(big + 256);
    CHECK(request != NULL);
    if (!request)
        return;
    int n = snprintf(request, 256, "GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Big: ");
    memset(request + n, 'a', big);
    strcpy(request + n + big, "\r\n\r\n");
    /* refused (431) or the connection closed; never served nor left waiting */
    int status = exchange(request, 10000);
    CHECK(status == 431 || status == 0);
    /* many headers of a few bytes each, as large in all */
    size_t len = (size_t)snprintf(request, 256, "GET /healthz HTTP/1.1\r\nHost: gw\r\n");
    while (len + 32 < big)
        len += (size_t)sprintf(request + len, "X-%zu: a\r\n", len);
    strcpy(request + len, "\r\n");
    status = exchange(request, 10000);
    CHECK(status == 431 || status == 0);
    free(request);
    check_still_up("a 100 KB header");
}

static void test_body_over_limit(void)
{
    /* declared: refused from the headers, before the body is sent */
    char head[512];
    snprintf(head, sizeof head,
             "POST /v1/events HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
             PRODUCER_TOKEN, 64 * 1024 * 1024);
    int fd = connect_gateway(false);
    CHECK(fd >= 0);
    CHECK(send_all(fd, head, strlen(head)));
    CHECK_INT(read_status(fd, it_mono_ms() + 10000), 413);
    close(fd);

    /* chunked: cut once it passes the limit, while the sender still sends */
    snprintf(head, sizeof head,
             "POST /v1/hooks/open HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"
             "Transfer-Encoding: chunked\r\n\r\n",
             PRODUCER_TOKEN);
    fd = connect_gateway(false);
    CHECK(fd >= 0);
    CHECK(send_all(fd, head, strlen(head)));
    static char chunk[8192 + 16];
    int n = snprintf(chunk, sizeof chunk, "2000\r\n");
    memset(chunk + n, ' ', 8192);
    memcpy(chunk + n + 8192, "\r\n", 2);
    size_t sent = 0, chunk_len = (size_t)n + 8192 + 2;
    /* 64 MiB at most: the gateway must give up long before */
    while (sent < 64u * 1024 * 1024 && send_all(fd, chunk, chunk_len))
        sent += chunk_len;
    CHECK(sent < 64u * 1024 * 1024);
    int status = read_status(fd, it_mono_ms() + 10000);
    CHECK(status == 413 || status == 0);
    close(fd);
    check_still_up("bodies over the limit");
}

/* Bodies received at once hold at most limits.body_bytes x (2 x threads + 4)
 * (threads 4 here: 12 bodies): past that a body is refused (503, or the
 * connection closed mid-body) at once, not held until its deadline. */
static void test_bodies_held(void)
{
    enum { SENDERS = 20, HELD = 12 };
    static char body[BODY_LIMIT];
    memset(body, ' ', sizeof body);
    struct pollfd fds[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        char head[512];
        snprintf(head, sizeof head,
                 "POST /v1/events HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
                 PRODUCER_TOKEN, BODY_LIMIT);
        fds[i] = (struct pollfd){.fd = connect_gateway(false), .events = POLLIN};
        CHECK(fds[i].fd >= 0);
        /* all of the body but its last bytes: held until the deadline */
        if (fds[i].fd >= 0 && send_all(fds[i].fd, head, strlen(head)))
            send_all(fds[i].fd, body, sizeof body - 16);
    }
    /* well within the request deadline (TIMEOUT_S), the refused ones are
     * answered or closed; the held ones are not */
    int refused = 0, waiting = 0;
    int64_t until = it_mono_ms() + 1000;
    while (refused < SENDERS - HELD && it_mono_ms() < until) {
        if (poll(fds, SENDERS, (int)(until - it_mono_ms())) <= 0)
            continue;
        for (int i = 0; i < SENDERS; i++) {
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            int status = read_status(fds[i].fd, it_mono_ms() + 100);
            refused += status == 503 || status == 0;
            close(fds[i].fd);
            fds[i].fd = -1;
        }
    }
    for (int i = 0; i < SENDERS; i++) {
        waiting += fds[i].fd >= 0;
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    }
    printf("%d of %d bodies refused at once, %d held\n", refused, SENDERS, waiting);
    CHECK(refused >= SENDERS - HELD);
    CHECK(waiting >= 1);
    check_still_up("bodies held at once");
}

static void test_broken_requests(void)
{
    static const char *const bodies[] = {"{\"id\": ", "[1, 2", "\xff\xfe{}", "{}}", "nul"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        for (int hook = 0; hook < 2; hook++) {
            char request[512];
            snprintf(request, sizeof request,
                     "POST %s HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                     hook ? "/v1/hooks/open" : "/v1/events", PRODUCER_TOKEN, strlen(bodies[i]),
                     bodies[i]);
            CHECK_INT(exchange(request, 10000), 400);
        }
    }
    /* not HTTP: refused or closed */
    static const char *const garbage[] = {
        "GARBAGE\r\n\r\n",
        "GET /healthz HTTP/9.9\r\n\r\n",
        "POST /v1/events HTTP/1.1\r\nHost: gw\r\nContent-Length: -5\r\n\r\n",
        "POST /v1/events HTTP/1.1\r\nHost: gw\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "\r\n\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++) {
        int status = exchange(garbage[i], 10000);
        if (status != 0 && (status < 400 || status > 505))
            fprintf(stderr, "%s: %d\n", garbage[i], status);
        CHECK(status == 0 || (status >= 400 && status <= 505));
    }
    check_still_up("broken requests");
}

/* Senders of a byte a second never finish a request: each is cut by the timeout, while a normal
 * client is served all along. */
static void test_slow_senders(void)
{
    enum { SLOW = 8 };
    static const char request[] = "GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Slow: aaaaaaaaaaaaaaaa";
    int fds[SLOW];
    int64_t cut_at[SLOW];
    for (int i = 0; i < SLOW; i++) {
        fds[i] = connect_gateway(false);
        CHECK(fds[i] >= 0);
        cut_at[i] = 0;
    }
    int64_t start = it_mono_ms(), deadline = start + (TIMEOUT_S + 10) * 1000;
    size_t at = 0;
    int served = 0, cut = 0;
    while (cut < SLOW && it_mono_ms() < deadline) {
        /* a byte from each, then a second in which the gateway may close them */
        for (int i = 0; i < SLOW; i++)
            if (!cut_at[i] && !send_all(fds[i], request + at % (sizeof request - 1), 1))
                cut_at[i] = it_mono_ms();
        at++;
        int64_t next = it_mono_ms() + 1000;
        while (it_mono_ms() < next) {
            struct pollfd p[SLOW];
            for (int i = 0; i < SLOW; i++)
                p[i] = (struct pollfd){.fd = cut_at[i] ? -1 : fds[i], .events = POLLIN};
            if (poll(p, SLOW, (int)(next - it_mono_ms())) <= 0)
                break;
            for (int i = 0; i < SLOW; i++) {
                char c;
                if (p[i].revents && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0)
                    cut_at[i] = it_mono_ms();
            }
        }
        /* others are not held */
        int64_t asked = it_mono_ms();
        CHECK_INT(healthz(5000), 200);
        CHECK(it_mono_ms() - asked < 5000);
        served++;
        cut = 0;
        for (int i = 0; i < SLOW; i++)
            cut += cut_at[i] != 0;
    }
    CHECK_INT(cut, SLOW);
    CHECK(served >= TIMEOUT_S);
    for (int i = 0; i < SLOW; i++) {
        /* cut by the deadline on the whole request, not left to trickle on */
        CHECK(cut_at[i] != 0 && cut_at[i] - start < (TIMEOUT_S + 3) * 1000);
        close(fds[i]);
    }
    check_still_up("slow senders");
}

/* As many connections as the descriptors allow (up to 10 000): a normal client is answered or
 * refused at once, never left hanging, and served once they are gone. */
static void test_many_connections(void)
{
    struct rlimit lim;
    CHECK_INT(getrlimit(RLIMIT_NOFILE, &lim), 0);
    long want = (long)lim.rlim_cur - 64;
    if (want > MAX_CONNS)
        want = MAX_CONNS;
    if (want < CONNECTIONS * 2) {
        fprintf(stderr, "skipped: only %ld descriptors\n", (long)lim.rlim_cur);
        return;
    }
    int *fds = calloc((size_t)want, sizeof *fds);
    CHECK(fds != NULL);
    if (!fds)
        return;
    long opened = 0;
    for (; opened < want; opened++)
        if ((fds[opened] = connect_gateway(true)) < 0)
            break;
    fprintf(stderr, "%ld connections opened (of %ld wanted)\n", opened, want);
    CHECK(opened >= CONNECTIONS * 2);
    /* half send the start of a request, so that the gateway has work on them */
    for (long i = 0; i < opened; i += 2)
        send(fds[i], "GET /healthz HTTP/1.1\r\n", 23, MSG_NOSIGNAL);
    for (int round = 0; round < 3; round++) {
        int64_t asked = it_mono_ms();
        int status = healthz(10000);
        /* served, or refused at once at the limit: not left without an answer */
        fprintf(stderr, "a normal client got %d in %lld ms\n", status,
                (long long)(it_mono_ms() - asked));
        CHECK(status == 200 || status == 503);
        CHECK(it_mono_ms() - asked < 10000);
    }
    long kib = rss_kib();
    fprintf(stderr, "VmRSS with %ld connections: %ld KiB\n", opened, kib);
    CHECK(kib > 0 && kib < RSS_LIMIT_KIB);
    for (long i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    check_still_up("many connections");
}

int main(int argc, char **argv)
{
    static const df_test tests[] = {
        {"huge_header", test_huge_header},
        {"body_over_limit", test_body_over_limit},
        {"bodies_held", test_bodies_held},
        {"broken_requests", test_broken_requests},
        {"slow_senders", test_slow_senders},
        {"many_connections", test_many_connections},
        {NULL, NULL},
    };
    signal(SIGPIPE, SIG_IGN);
    static const df_fixture fixture = {setup, teardown, NULL};
    return df_test_main(argc, argv, tests, &fixture);
}
