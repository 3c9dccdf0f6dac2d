/* test_chain.c: the chain of digests checked from outside the daemon, as a
 * client in any language would, and damage to the store found and named:
 * by `dealflowd --verify`, by reads (`corrupt`) and at start. */
#define _GNU_SOURCE /* SEEK_DATA: data.mdb is sparse */
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

#define T0     IT_T0
#define DAY    IT_DAY
#define EVENTS 12
/* In one stored event only: where a test damages the store. */
#define MARK     "zq7chainmarkzq"
#define MARK_SEQ 5

/* A daemon with EVENTS events recorded, the MARK_SEQth carrying MARK. */
static bool start_with_events(it_daemon *d)
{
    if (!it_setup(d, NULL))
        return false;
    for (int i = 1; i <= EVENTS; i++) {
        int64_t seq;
        if (i == MARK_SEQ)
            seq = it_append(d,
                            "{id: c-%d, type: activity, deal: c1, kind: note, at: %lld, "
                            "x_note: " MARK "}",
                            i, T0 + i * DAY);
        else
            seq = it_append(d, "{id: c-%d, type: stage, deal: c%d, stage: lead, at: %lld}", i,
                            i % 3, T0 + i * DAY);
        CHECK_INT(seq, i);
    }
    return true;
}

static const msgpack_object *bin(const msgpack_object *map, const char *key, uint32_t size)
{
    const msgpack_object *o = it_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_BIN || (size && o->via.bin.size != size)) {
        it_fail("`%s` is not a bin of %u bytes", key, size);
        return NULL;
    }
    return o;
}

/* Each event's digest and hash recomputed from `raw` alone, and the head. */
static void test_proof(void)
{
    it_daemon d;
    if (!start_with_events(&d))
        return;
    const msgpack_object *plain = it_call(&d, "{op: replay, limit: 100}");
    const msgpack_object *r = it_call(&d, "{op: replay, proof: true, limit: 100}");
    CHECK(it_ok(r));
    const msgpack_object *events = it_get(r, "events");
    CHECK_INT(it_len(events), EVENTS);
    uint8_t hash[32] = {0}, digest[32];
    for (uint32_t i = 0; i < (uint32_t)it_len(events); i++) {
        const msgpack_object *ev = it_at(events, i);
        const msgpack_object *raw = bin(ev, "raw", 0), *dg = bin(ev, "digest", 32),
                             *h = bin(ev, "hash", 32);
        if (!raw || !dg || !h)
            break;
        crypto_generichash(digest, 32, (const uint8_t *)raw->via.bin.ptr, raw->via.bin.size, NULL,
                           0);
        CHECK(memcmp(digest, dg->via.bin.ptr, 32) == 0);
        uint8_t both[64];
        memcpy(both, hash, 32);
        memcpy(both + 32, digest, 32);
        crypto_generichash(hash, 32, both, 64, NULL, 0);
        CHECK(memcmp(hash, h->via.bin.ptr, 32) == 0);
        /* raw is the event as replay without proof sends it */
        CHECK(it_equal(it_unpack_keep(raw->via.bin.ptr, raw->via.bin.size),
                       it_at(it_get(plain, "events"), i)));
        CHECK_INT(it_int(ev, "seq"), i + 1);
    }
    /* a page after the start goes on from the hash before it */
    const msgpack_object *later = it_call(&d, "{op: replay, proof: true, after: 11}");
    const msgpack_object *last = bin(it_at(it_get(later, "events"), 0), "hash", 32);
    CHECK(last && memcmp(last->via.bin.ptr, hash, 32) == 0);
    const msgpack_object *head = bin(it_call(&d, "{op: stats}"), "chain_head", 32);
    CHECK(head && memcmp(head->via.bin.ptr, hash, 32) == 0);

    char out[1024], hex[65];
    CHECK_INT(it_run_tool(&d, "--verify", out, sizeof out), 0);
    sodium_bin2hex(hex, sizeof hex, hash, 32);
    CHECK(strstr(out, "12 events") != NULL);
    CHECK(strstr(out, hex) != NULL);
    it_teardown(&d);
}

/* Flips one byte of MARK wherever data.mdb holds it. The file is sparse (as
 * large as the map): only its data extents are read. */
static int damage(const it_daemon *d)
{
    char path[IT_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/data.mdb", d->data);
    int fd = open(path, O_RDWR);
    struct stat sb;
    int found = 0;
    if (fd < 0 || fstat(fd, &sb) != 0)
        return 0;
    enum { CHUNK = 1 << 20 };
    size_t mark = strlen(MARK);
    char *data = malloc(CHUNK + mark);
    off_t at = 0;
    while (data && (at = lseek(fd, at, SEEK_DATA)) >= 0 && at < sb.st_size) {
        ssize_t n = pread(fd, data, CHUNK + mark, at);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i + (ssize_t)mark <= n && i < CHUNK; i++) {
            if (memcmp(data + i, MARK, mark) == 0) {
                char flipped = (char)(data[i + 3] ^ 0x01);
                CHECK(pwrite(fd, &flipped, 1, at + i + 3) == 1);
                found++;
            }
        }
        at += CHUNK;
    }
    free(data);
    close(fd);
    return found;
}

static void test_damage_named(void)
{
    it_daemon d;
    if (!start_with_events(&d))
        return;
    CHECK_INT(it_stop(&d), 0);
    CHECK(damage(&d) > 0);
    char out[1024];
    CHECK_INT(it_run_tool(&d, "--verify", out, sizeof out), 1);
    CHECK(strstr(out, "seq 5") != NULL);
    if (!it_restart(&d)) {
        it_cleanup(&d);
        CHECK(!"dealflowd restarted");
        return;
    }
    const msgpack_object *r = it_call(&d, "{op: replay}");
    CHECK_ERR(r, "corrupt");
    CHECK(strstr(it_str(r, "message") ? it_str(r, "message") : "", "seq 5") != NULL);
    CHECK_ERR(it_call(&d, "{op: history, deal: c1}"), "corrupt");
    /* the events before it are still served */
    CHECK(it_ok(it_call(&d, "{op: replay, limit: 4}")));
    it_teardown(&d);
}

/* A data.mdb emptied, then removed: never started afresh. */
static void test_emptied_refused(void)
{
    it_daemon d;
    char path[IT_PATH_MAX + 16];
    if (!start_with_events(&d))
        return;
    CHECK_INT(it_stop(&d), 0);
    snprintf(path, sizeof path, "%s/data.mdb", d.data);
    CHECK(truncate(path, 0) == 0);
    CHECK(it_spawn(&d));
    CHECK_INT(it_wait_exit(&d, 30000), 1);
    CHECK(it_log_contains(&d, "refusing"));
    CHECK(unlink(path) == 0);
    CHECK(it_spawn(&d));
    CHECK_INT(it_wait_exit(&d, 30000), 1);
    struct stat sb;
    CHECK(stat(path, &sb) != 0); /* nothing was created in its place */
    it_cleanup(&d);
    CHECK_INT(it_done(), 0);
}

/* A second daemon is kept out even when the lock file is deleted. */
static void test_lock_kept(void)
{
    it_daemon d, other;
    if (!start_with_events(&d))
        return;
    char path[IT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/dealflowd.lock", d.data);
    CHECK(unlink(path) == 0);
    if (it_init(&other, NULL)) {
        snprintf(other.data, sizeof other.data, "%s", d.data);
        CHECK(it_spawn(&other));
        CHECK_INT(it_wait_exit(&other, 30000), 1);
        CHECK(it_log_contains(&other, "in use"));
        other.data[0] = '\0';
        it_cleanup(&other);
    }
    it_teardown(&d);
}

static const df_test tests[] = {
    {"proof", test_proof},
    {"damage_named", test_damage_named},
    {"emptied_refused", test_emptied_refused},
    {"lock_kept", test_lock_kept},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return df_test_main(argc, argv, tests, NULL);
}
