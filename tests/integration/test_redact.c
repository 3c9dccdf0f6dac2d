/* test_redact.c: erasure: a `redact` removes personal values from one
 * deal's events, from every reply and, after `--compact`, from every file of
 * the data directory, while figures, the chain and `--verify` stay whole. */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
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
#define NOW    (T0 + 30 * DAY)
#define SECRET "zedsecret"

static const char REDACT[] = "{op: redact, deal: %s, fields: [name, owner, actor, note, x_mail], "
                             "reason: \"erasure request\"}";

/* Whether any str or bin in o holds SECRET. */
static bool holds_secret(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        return memmem(o->via.str.ptr, o->via.str.size, SECRET, strlen(SECRET)) != NULL;
    case MSGPACK_OBJECT_BIN:
        return memmem(o->via.bin.ptr, o->via.bin.size, SECRET, strlen(SECRET)) != NULL;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (holds_secret(&o->via.array.ptr[i]))
                return true;
        return false;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (holds_secret(&o->via.map.ptr[i].key) || holds_secret(&o->via.map.ptr[i].val))
                return true;
        return false;
    default:
        return false;
    }
}

static bool record(it_daemon *d)
{
    if (!it_setup(d, NULL))
        return false;
    CHECK_INT(it_append(d,
                        "{id: e1, type: stage, deal: r1, stage: lead, amount: 100, owner: "
                        "owner" SECRET ", at: %lld}",
                        (long long)T0),
              1);
    CHECK_INT(it_append(d, "{id: e2, type: update, deal: r1, name: name" SECRET ", at: %lld}",
                        (long long)(T0 + DAY)),
              2);
    CHECK_INT(it_append(d,
                        "{id: e3, type: activity, deal: r1, kind: call, actor: actor" SECRET
                        ", note: note" SECRET ", x_mail: mail" SECRET ", at: %lld}",
                        (long long)(T0 + 2 * DAY)),
              3);
    CHECK_INT(it_append(d,
                        "{id: e4, type: stage, deal: r2, stage: lead, amount: 50, owner: "
                        "owner" SECRET ", at: %lld}",
                        (long long)(T0 + 3 * DAY)),
              4);
    CHECK_INT(it_append(d, "{id: e5, type: stage, deal: r2, stage: won, at: %lld}",
                        (long long)(T0 + 4 * DAY)),
              5);
    CHECK_INT(it_append(d,
                        "{id: e6, type: stage, deal: k1, stage: lead, amount: 7, owner: keep, "
                        "at: %lld}",
                        (long long)(T0 + 5 * DAY)),
              6);
    return true;
}

/* The figures that must not change, in a kept copy. */
typedef struct figures {
    const msgpack_object *board, *metrics, *owner_metrics, *keep;
} figures;

static figures read_figures(it_daemon *d, const char *owner)
{
    figures f;
    f.board = it_call(d, "{op: board, now: %lld}", (long long)NOW);
    f.metrics = it_call(d, "{op: metrics, now: %lld}", (long long)NOW);
    f.owner_metrics = it_call(d, "{op: metrics, owner: \"%s\", now: %lld}", owner, (long long)NOW);
    f.keep = it_call(d, "{op: deal, deal: k1, now: %lld}", (long long)NOW);
    return f;
}

static void check_no_secret(it_daemon *d)
{
    const char *const reads[] = {
        "{op: deal, deal: r1}",
        "{op: deal, deal: r2}",
        "{op: history, deal: r1}",
        "{op: history, deal: r2}",
        "{op: replay, limit: 1000}",
        "{op: replay, proof: true}",
        "{op: list, limit: 1000}",
        "{op: rejected}",
        "{op: moves}",
    };
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        const msgpack_object *r = it_call(d, "%s", reads[i]);
        CHECK(it_ok(r));
        if (holds_secret(r))
            it_fail("%s still holds the redacted values", reads[i]);
    }
}

/* Recomputes every digest and hash from `raw` as an outside reader would;
 * returns how many events were marked redacted. */
static int check_chain(it_daemon *d)
{
    const msgpack_object *r = it_call(d, "{op: replay, proof: true, limit: 1000}");
    const msgpack_object *events = it_get(r, "events");
    uint8_t hash[32] = {0}, digest[32];
    int redacted = 0;
    for (uint32_t i = 0; i < (uint32_t)it_len(events); i++) {
        const msgpack_object *ev = it_at(events, i);
        const msgpack_object *raw = it_get(ev, "raw"), *dg = it_get(ev, "digest"),
                             *h = it_get(ev, "hash");
        if (!raw || !dg || !h || dg->via.bin.size != 32 || h->via.bin.size != 32) {
            it_fail("event %u lacks its proof", i);
            return -1;
        }
        crypto_generichash(digest, 32, (const uint8_t *)raw->via.bin.ptr, raw->via.bin.size, NULL,
                           0);
        bool marked = it_get(ev, "redacted") != NULL && it_bool(ev, "redacted") == 1;
        /* a redacted event's bytes changed; its digest and the chain did not */
        CHECK(marked == (memcmp(digest, dg->via.bin.ptr, 32) != 0));
        redacted += marked;
        uint8_t both[64];
        memcpy(both, hash, 32);
        memcpy(both + 32, dg->via.bin.ptr, 32);
        crypto_generichash(hash, 32, both, 64, NULL, 0);
        CHECK(memcmp(hash, h->via.bin.ptr, 32) == 0);
    }
    const msgpack_object *head = it_get(it_call(d, "{op: stats}"), "chain_head");
    CHECK(head && head->via.bin.size == 32 && memcmp(head->via.bin.ptr, hash, 32) == 0);
    return redacted;
}

/* Whether the file holds needle; data.mdb is sparse (as large as the map):
 * only its data extents are read. */
static bool file_holds(const char *path, const char *needle)
{
    int fd = open(path, O_RDONLY);
    struct stat sb;
    bool found = false;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    enum { CHUNK = 1 << 20 };
    size_t mark = strlen(needle);
    char *data = malloc(CHUNK + mark);
    off_t at = 0;
    while (!found && data && (at = lseek(fd, at, SEEK_DATA)) >= 0 && at < sb.st_size) {
        ssize_t n = pread(fd, data, CHUNK + mark, at);
        if (n <= 0)
            break;
        found = memmem(data, (size_t)n, needle, mark) != NULL;
        at += CHUNK;
    }
    free(data);
    close(fd);
    return found;
}

/* How many files of the data directory hold needle. */
static int files_with(const it_daemon *d, const char *needle)
{
    DIR *dir = opendir(d->data);
    struct dirent *e;
    int found = 0;
    while (dir && (e = readdir(dir)) != NULL) {
        char path[IT_PATH_MAX + 300];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", d->data, e->d_name);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && file_holds(path, needle))
            found++;
    }
    if (dir)
        closedir(dir);
    return found;
}

static void test_redact(void)
{
    it_daemon d;
    if (!record(&d))
        return;
    figures before = read_figures(&d, "owner" SECRET);
    /* the values are in the file as recorded (freed pages may keep them
     * after the redaction, until --compact) */
    CHECK(files_with(&d, "name" SECRET) > 0);
    const msgpack_object *r = it_call(&d, REDACT, "r1");
    if (!it_ok(r))
        it_fail("redact: %s: %s", it_err(r), it_str(r, "message"));
    CHECK_INT(it_int(r, "redacted"), 3);
    CHECK_INT(it_int(r, "seq"), 7);
    CHECK(it_ok(it_call(&d, REDACT, "r2")));

    const msgpack_object *deal = it_get(it_call(&d, "{op: deal, deal: r1}"), "deal");
    const char *pseudonym = it_str(deal, "owner");
    CHECK(pseudonym && strncmp(pseudonym, "owner-", 6) == 0 && strlen(pseudonym) == 22);
    CHECK(it_is_nil(deal, "name"));
    CHECK_INT(it_int(deal, "version"), 3); /* the redaction is not folded */
    const char *other = it_str(it_get(it_call(&d, "{op: deal, deal: r2}"), "deal"), "owner");
    CHECK(pseudonym && other && strcmp(pseudonym, other) == 0);

    figures after = read_figures(&d, pseudonym ? pseudonym : "");
    CHECK(it_equal(before.board, after.board));
    CHECK(it_equal(before.metrics, after.metrics));
    CHECK(it_equal(before.owner_metrics, after.owner_metrics));
    CHECK(it_equal(before.keep, after.keep));
    CHECK_INT(it_int(before.owner_metrics, "won"), 1);

    const msgpack_object *history = it_get(it_call(&d, "{op: history, deal: r1}"), "events");
    CHECK_INT(it_len(history), 4);
    const msgpack_object *last = it_at(history, 3);
    CHECK(last && it_str(last, "type") && strcmp(it_str(last, "type"), "redaction") == 0);
    CHECK(last && it_str(last, "reason") && strcmp(it_str(last, "reason"), "erasure request") == 0);
    check_no_secret(&d);
    CHECK_INT(check_chain(&d), 4); /* e1, e2, e3 and e4; e5 held nothing */

    /* what may not be redacted, and what is not there */
    const char *const forbidden[] = {"id",       "type",   "deal", "stage", "at",
                                     "pipeline", "amount", "seq",  "recv",  "by"};
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
        CHECK_ERR(it_call(&d, "{op: redact, deal: r1, fields: [%s], reason: x}", forbidden[i]),
                  "bad_request");
    CHECK_ERR(it_call(&d, "{op: redact, deal: r1, fields: [], reason: x}"), "bad_request");
    CHECK_ERR(it_call(&d, "{op: redact, deal: r1, fields: [note]}"), "bad_request");
    CHECK_ERR(it_call(&d, "{op: redact, deal: nope, fields: [note], reason: x}"), "not_found");
    /* nobody sends a redaction: the daemon records it */
    const msgpack_object *sent =
        it_at(it_get(it_call(&d, "{op: append, events: [{id: z1, type: redaction, deal: r1}]}"),
                     "results"),
              0);
    CHECK(sent && it_str(sent, "error") && strcmp(it_str(sent, "error"), "bad_request") == 0);

    /* a second redaction keeps the pseudonym */
    CHECK(it_ok(it_call(&d, REDACT, "r1")));
    const char *again = it_str(it_get(it_call(&d, "{op: deal, deal: r1}"), "deal"), "owner");
    CHECK(again && pseudonym && strcmp(again, pseudonym) == 0);

    char out[1024];
    CHECK_INT(it_stop(&d), 0);
    CHECK_INT(it_run_tool(&d, "--verify", out, sizeof out), 0);
    CHECK(strstr(out, "4 redacted") != NULL);
    CHECK(it_restart(&d));
    check_no_secret(&d);
    figures restarted = read_figures(&d, pseudonym ? pseudonym : "");
    CHECK(it_equal(before.board, restarted.board));
    CHECK(it_equal(before.owner_metrics, restarted.owner_metrics));
    /* --compact is refused while the daemon holds the store */
    CHECK(it_run_tool(&d, "--compact", out, sizeof out) != 0);
    CHECK_INT(it_stop(&d), 0);
    CHECK_INT(it_run_tool(&d, "--compact", out, sizeof out), 0);
    /* --compact drops the derived state too (an emptied aggregate row may
     * keep the owner's name in its key): the next start writes it again */
    const char *const removed[] = {"name" SECRET, "owner" SECRET, "actor" SECRET, "note" SECRET,
                                   "mail" SECRET};
    for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); i++)
        CHECK_INT(files_with(&d, removed[i]), 0);
    CHECK_INT(it_run_tool(&d, "--verify", out, sizeof out), 0);
    CHECK(it_restart(&d));
    figures rebuilt = read_figures(&d, pseudonym ? pseudonym : "");
    CHECK(it_equal(before.board, rebuilt.board));
    CHECK(it_equal(before.metrics, rebuilt.metrics));
    CHECK(it_equal(before.owner_metrics, rebuilt.owner_metrics));
    check_no_secret(&d);
    CHECK_INT(check_chain(&d), 4);
    it_teardown(&d);
}

/* A redaction the daemon did not flush before it was killed is folded back
 * from the log. */
static void test_crash(void)
{
    it_daemon d;
    if (!record(&d))
        return;
    figures before = read_figures(&d, "owner" SECRET);
    CHECK(it_ok(it_call(&d, REDACT, "r1")));
    CHECK(it_ok(it_call(&d, REDACT, "r2")));
    it_crash(&d);
    CHECK(it_restart(&d));
    const char *pseudonym = it_str(it_get(it_call(&d, "{op: deal, deal: r1}"), "deal"), "owner");
    CHECK(pseudonym && strncmp(pseudonym, "owner-", 6) == 0);
    check_no_secret(&d);
    figures after = read_figures(&d, pseudonym ? pseudonym : "");
    CHECK(it_equal(before.board, after.board));
    CHECK(it_equal(before.metrics, after.metrics));
    CHECK(it_equal(before.owner_metrics, after.owner_metrics));
    CHECK_INT(check_chain(&d), 4);
    it_teardown(&d);
}

static const df_test tests[] = {
    {"redact", test_redact},
    {"crash", test_crash},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return df_test_main(argc, argv, tests, NULL);
}
