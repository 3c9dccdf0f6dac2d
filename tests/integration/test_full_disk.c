/* test_full_disk.c: a full disk under the store (a small tmpfs) stops writes
 * without killing the daemon: appends are refused, reads are served, ingest
 * is held, and when space returns everything acknowledged or pushed is
 * recorded without a restart; a start on a full disk serves or exits 1. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

#define ACKED_BATCHES 20
#define ACKED_EVENTS  10
#define PUSHED        600

static it_daemon D;
static char mnt[IT_PATH_MAX - 8];
static char filler[IT_PATH_MAX + 16];
static bool mounted;
static int64_t expected; /* events the daemon must have recorded */

/* Fills the filesystem with one file until it has no room. */
static void fill_disk(void)
{
    static char block[64 << 10];
    int fd = open(filler, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    memset(block, 'x', sizeof block);
    size_t size = sizeof block;
    while (size > 0) {
        if (write(fd, block, size) < 0) {
            CHECK_INT(errno, ENOSPC);
            size /= 2; /* the last blocks, smaller */
        }
    }
    close(fd);
}

static bool start_daemon(void)
{
    static const char *extra[] = {"--map-size", "16", NULL};
    if (!it_init(&D, extra))
        return false;
    snprintf(mnt, sizeof mnt, "%s/mnt", D.dir);
    CHECK(mkdir(mnt, 0700) == 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=8m") != 0) {
        /* 77: ctest reports a skip, never a pass of nothing */
        printf("skipped: cannot mount a tmpfs here (%s)\n", strerror(errno));
        it_cleanup(&D);
        exit(77);
    }
    mounted = true;
    snprintf(D.data, sizeof D.data, "%s/data", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    return it_spawn(&D) && it_wait_ready(&D);
}

static void stop_daemon(void)
{
    if (D.pid > 0)
        CHECK_INT(it_stop(&D), 0);
    if (mounted)
        CHECK(umount(mnt) == 0);
    it_cleanup(&D);
    CHECK_INT(it_done(), 0);
}

static void append_acked(const char *prefix, int batch)
{
    it_buf t = {0};
    it_buf_add(&t, "{op: append, events: [");
    for (int i = 0; i < ACKED_EVENTS; i++)
        it_buf_add(&t, "%s{id: '%s-%d-%d', type: stage, deal: '%s-%d', stage: lead, at: %lld}",
                   i ? "," : "", prefix, batch, i, prefix, batch, IT_T0);
    it_buf_add(&t, "]}");
    const msgpack_object *r = it_call(&D, "%s", it_buf_get(&t));
    it_buf_free(&t);
    CHECK(it_ok(r));
    if (it_ok(r))
        expected += ACKED_EVENTS;
    it_release();
}

/* Fills the disk under acknowledged appends and a PULL flood; frees it. */
static void test_fill_and_free(void)
{
    for (int b = 0; b < ACKED_BATCHES; b++)
        append_acked("a", b);
    CHECK(it_wait_seq(&D, expected));
    fill_disk();
    /* a flood over ingest while the disk is full: held, not lost */
    for (int i = 0; i < PUSHED; i++)
        CHECK(it_push(&D, "{id: 'p-%d', type: stage, deal: 'p-%d', stage: lead, at: %lld}", i,
                      i % 50, IT_T0));
    expected += PUSHED;
    const msgpack_object *r = NULL;
    bool refused = false;
    for (int tries = 0; tries < 100 && !refused; tries++) {
        r = it_call(&D, "{op: append, events: [{id: full-1, type: stage, deal: z, stage: lead}]}");
        if (!it_ok(r)) {
            CHECK_STR(it_err(r), "unavailable");
            const char *message = it_str(r, "message");
            CHECK(message && strstr(message, "full") != NULL);
            refused = true;
        } else {
            expected++; /* it fitted in pages the store had already */
            it_release();
            r = it_call(&D,
                        "{op: append, events: [{id: 'full-%d', type: stage, deal: z, stage: "
                        "lead, pad: '%0500d'}]}",
                        tries + 2, 0);
            if (it_ok(r))
                expected++;
        }
        it_release();
    }
    CHECK(refused);
    /* reads keep working */
    r = it_call(&D, "{op: stats}");
    CHECK(it_ok(r));
    CHECK_INT(it_int(r, "store_full"), 1);
    CHECK(it_int(r, "disk_free_bytes") < (1 << 20));
    CHECK(it_int(r, "map_bytes") >= (16 << 20));
    CHECK(it_int(r, "map_used_bytes") > 0);
    it_release();
    r = it_call(&D, "{op: deal, deal: a-0}");
    CHECK(it_ok(r));
    it_release();
    CHECK(it_log_contains(&D, "writes stopped"));
    /* room again: everything held is recorded, without a restart */
    CHECK(unlink(filler) == 0);
    CHECK(it_wait_stat(&D, "events", expected));
    r = it_call(&D, "{op: stats}");
    CHECK_INT(it_int(r, "events"), expected);
    CHECK_INT(it_int(r, "store_full"), 0);
    CHECK_INT(it_int(r, "lost"), 0);
    CHECK_INT(it_int(r, "rejected"), 0);
    it_release();
    r = it_call(&D, "{op: history, deal: p-7}");
    CHECK_INT(it_len(it_get(r, "events")), PUSHED / 50);
    it_release();
    r = it_call(&D, "{op: append, events: [{id: after-1, type: stage, deal: z, stage: lead}]}");
    CHECK(it_ok(r));
    expected++;
    it_release();
    CHECK(it_log_contains(&D, "writes resumed"));
}

/* Started on a full disk, the daemon serves reads or exits 1 saying why. */
static void test_restart_full(void)
{
    CHECK_INT(it_stop(&D), 0);
    fill_disk();
    CHECK(it_spawn(&D));
    if (it_wait_ready(&D)) {
        const msgpack_object *r = it_call(&D, "{op: stats}");
        CHECK_INT(it_int(r, "events"), expected);
        it_release();
        r = it_call(&D,
                    "{op: append, events: [{id: again-1, type: stage, deal: z, stage: "
                    "lead, pad: '%02000d'}]}",
                    0);
        if (it_ok(r))
            expected++;
        else
            CHECK_STR(it_err(r), "unavailable");
        it_release();
        CHECK_INT(it_stop(&D), 0);
    } else {
        CHECK_INT(it_wait_exit(&D, 10000), 1);
    }
    CHECK(unlink(filler) == 0);
    CHECK(it_restart(&D));
    const msgpack_object *r = it_call(&D, "{op: stats}");
    CHECK_INT(it_int(r, "events"), expected);
    it_release();
}

static bool running(void)
{
    return D.pid > 0;
}

static const df_test tests[] = {
    {"fill_and_free", test_fill_and_free},
    {"restart_full", test_restart_full},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    if (geteuid() != 0) {
        printf("skipped: mounting a tmpfs needs root\n");
        return 77;
    }
    static const df_fixture fixture = {
        .setup = start_daemon, .teardown = stop_daemon, .ready = running};
    return df_test_main(argc, argv, tests, &fixture);
}
