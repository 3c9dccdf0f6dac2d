/* test_systemd.c: systemd's notify protocol as the real dealflowd speaks it,
 * received on a datagram socket of the test's own named by $NOTIFY_SOCKET:
 * STATUS= while the log is folded back, READY=1 once it is folded and the
 * sockets are bound (just before the loop's first turn, so that a ping sent
 * then is answered at once), STOPPING=1 at SIGTERM, and WATCHDOG=1 every
 * second when $WATCHDOG_USEC asks for it. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

#define NOTIFY_TIMEOUT_MS 20000
#define EVENTS            500

static it_daemon D;
static int notify_fd = -1;
static char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* Binds the datagram socket in the daemon's temp dir. */
static bool listen_for_notifications(void)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/notify", D.dir);
    CHECK(n > 0 && (size_t)n < sizeof(addr.sun_path));
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(notify_fd >= 0);
    if (notify_fd < 0 || bind(notify_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        fprintf(stderr, "notify socket %s: %s\n", addr.sun_path, strerror(errno));
        return false;
    }
    snprintf(notify_path, sizeof(notify_path), "%s", addr.sun_path);
    return true;
}

/* The next notification (its lines, NUL-terminated in buf), or false when
 * none came within timeout_ms. */
static bool next_notification(char *buf, size_t size, int timeout_ms)
{
    struct pollfd p = {.fd = notify_fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1)
        return false;
    ssize_t n = recv(notify_fd, buf, size - 1, 0);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* Whether a notification holds the line `line` (one of its lines, whole). */
static bool has_line(const char *notification, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = notification; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
            return true;
    return false;
}

/* Waits for a notification holding `line`; the ones before it are copied,
 * one after the other, into seen (when given). */
static bool wait_for(const char *line, char *seen, size_t seen_size)
{
    char buf[4096];
    int64_t deadline = it_mono_ms() + NOTIFY_TIMEOUT_MS;
    while (it_mono_ms() < deadline) {
        if (!next_notification(buf, sizeof(buf), (int)(deadline - it_mono_ms())))
            break;
        if (has_line(buf, line))
            return true;
        if (seen && strlen(seen) + strlen(buf) + 2 < seen_size)
            strcat(strcat(seen, buf), "\n");
    }
    fprintf(stderr, "no %s within %d ms\n", line, NOTIFY_TIMEOUT_MS);
    it_print_log(&D);
    return false;
}

/* Starts (or restarts) the daemon with $NOTIFY_SOCKET set; the test's
 * own requests go without it. */
static bool spawn(void)
{
    setenv("NOTIFY_SOCKET", notify_path, 1);
    bool ok = it_spawn(&D);
    unsetenv("NOTIFY_SOCKET");
    return ok;
}

static bool start(void)
{
    return it_init(&D, NULL) && listen_for_notifications() && spawn();
}

static void finish(void)
{
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
    it_cleanup(&D);
    unsetenv("WATCHDOG_USEC");
}

/* A ping answered at once, in one attempt. */
static bool answers_at_once(void)
{
    return it_poll_int(&D, "{op: ping}", "last_seq", 2000, true) != IT_NONE;
}

/* READY=1 comes after the log was folded back: after a crash that left
 * events unflushed, the STATUS before it says how many are folded, the log
 * says it was done, and the first request after it is answered at once with
 * every event. No WATCHDOG=1 comes without $WATCHDOG_USEC. */
static void test_ready_after_fold(void)
{
    CHECK(start());
    char seen[8192] = "";
    CHECK(wait_for("READY=1", seen, sizeof(seen)));
    CHECK(strstr(seen, "STATUS=folding 0 events of the log back into memory") != NULL);
    CHECK(answers_at_once());

    it_buf events = {0};
    it_buf_add(&events, "{op: append, events: [");
    for (int i = 0; i < EVENTS; i++)
        it_buf_add(&events, "%s{id: 'e%d', type: stage, deal: 'd%d', stage: lead}", i ? "," : "", i,
                   i % 50);
    it_buf_add(&events, "]}");
    const msgpack_object *r = it_call(&D, "%s", it_buf_get(&events));
    it_buf_free(&events);
    CHECK(r && it_bool(r, "ok") == 1);
    it_crash(&D);

    seen[0] = '\0';
    CHECK(spawn());
    CHECK(wait_for("READY=1", seen, sizeof(seen)));
    /* the log line is written before READY=1 is sent */
    CHECK(it_log_contains(&D, "events of the log back into memory in"));
    CHECK(strstr(seen, "STATUS=folding ") != NULL);
    CHECK(answers_at_once());
    CHECK_INT(it_last_seq(&D), EVENTS);
    char buf[4096];
    /* the whole 1.5 s is watched, also across quiet spells */
    int64_t quiet_until = it_mono_ms() + 1500, left;
    while ((left = quiet_until - it_mono_ms()) > 0)
        if (next_notification(buf, sizeof(buf), (int)left))
            CHECK(!has_line(buf, "WATCHDOG=1"));
    finish();
}

/* SIGTERM: STOPPING=1 comes, then the daemon exits 0. */
static void test_stopping(void)
{
    CHECK(start());
    CHECK(wait_for("READY=1", NULL, 0));
    CHECK(answers_at_once());
    CHECK(kill(D.pid, SIGTERM) == 0);
    CHECK(wait_for("STOPPING=1", NULL, 0));
    CHECK_INT(it_wait_exit(&D, NOTIFY_TIMEOUT_MS), 0);
    CHECK(it_log_contains(&D, "draining took"));
    finish();
}

/* With $WATCHDOG_USEC, WATCHDOG=1 comes after READY=1, and again. */
static void test_watchdog(void)
{
    setenv("WATCHDOG_USEC", "2000000", 1);
    CHECK(start());
    CHECK(wait_for("READY=1", NULL, 0));
    int64_t ready = it_mono_ms();
    CHECK(wait_for("WATCHDOG=1", NULL, 0));
    CHECK(wait_for("WATCHDOG=1", NULL, 0));
    CHECK(it_mono_ms() - ready < 5000);
    finish();
}

static const df_test tests[] = {
    {"ready_after_fold", test_ready_after_fold},
    {"stopping", test_stopping},
    {"watchdog", test_watchdog},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    int rc = df_test_main(argc, argv, tests, NULL);
    return rc ? rc : it_done();
}
