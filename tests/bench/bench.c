/* bench.c: measures a running dealflowd: ingest and append rates, lookup latency, disk, memory. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <zmq.h>
#ifdef GATEWAY_PATH
#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#endif

#include "codec.h"
#include "harness_process.h"
#include "harness_wire.h"
#include "workload.h"

#ifndef DEALFLOWD_PATH
#define DEALFLOWD_PATH NULL
#endif
#ifndef POSTGRES_JOB_PATH
#define POSTGRES_JOB_PATH "tests/bench/postgres_job.py"
#endif

#define START_MS 1700000000000LL
#define MIB      (1024.0 * 1024.0)

/* How long anything may take before the bench gives up. */
#define START_DEADLINE_MS 10000
#define REPLY_DEADLINE_MS 30000
#define STALL_DEADLINE_MS 60000 /* no progress of last_seq, or no send accepted */
#define STOP_DEADLINE_MS  120000
#define PING_INTERVAL_NS  2000000L

/* Targets the figures are compared with. */
#define TARGET_PULL_RATE     400000.0
#define TARGET_APPEND_RATE   200000.0
#define TARGET_LOOKUP_P99_MS 1.0
#define TARGET_MIXED_P99_MS  20.0
/* Disk: at most 250 B/event right after an import of up to 100 000
 * events, 200 on larger workloads (the 1M pull, the 13M memory phase). */
#define TARGET_DISK_SMALL        250.0
#define TARGET_DISK_LARGE        200.0
#define TARGET_DISK_SMALL_EVENTS 100000
#define TARGET_RSS_ANON_MIB      256.0
#define TARGET_FIGURES_P99_MS    1.0 /* board, metrics, forecast, calibration; not a series */
#define TARGET_REBUILD_RATE      1000000.0
#define TARGET_RATIO             15.0 /* times the PostgreSQL job's events/s */

typedef struct options {
    const char *daemon_path;
    const char *gateway_path;
    int connections;         /* HTTP connections of the gateway phase */
    uint64_t gateway_single; /* events the gateway phase sends one per request */
    uint64_t events;
    uint64_t deals;
    uint64_t memory_deals;
    uint64_t lookups;
    int inflight;
    int repeat;
    uint64_t seed;
    bool keep;
    bool curve; /* CURVE keys on every socket, the daemon started with --curve-key and --clients */
    const char *dump_workload; /* write the workload's events to this file and exit */
    const char *postgres_job;  /* the compare phase's PostgreSQL job */
    double postgres_rate;      /* when > 0, the PostgreSQL figure, the job not run */
    const char *phase;
    char **daemon_args; /* given after "--", passed on to dealflowd */
    int ndaemon_args;
} options;

static options opt = {
    .events = 1000000,
    .deals = 100000,
    .memory_deals = 1000000,
    .lookups = 20000,
    .inflight = 4,
    .connections = 4,
    .gateway_single = 20000,
    .repeat = 1,
    .seed = 1,
    .phase = "all",
};

/* A dealflowd the bench started, with its own temp dir and ports. */
typedef struct server {
    pid_t pid;
    bool exited;
    int status;
    char dir[256];
    char data[300];
    char log[300];
    char ingest[64], api[64], notify[64];
} server;

/* The key pairs of --curve, Z85: the daemon's and the bench's (an admin, so
 * that every request of every phase is allowed). */
typedef struct curve_keys {
    char server_public[41], server_secret[41];
    char client_public[41], client_secret[41];
} curve_keys;

static curve_keys curve;
static void *ctx;
static server *running;                                       /* the daemon fail() must stop */
static pthread_mutex_t reap_lock = PTHREAD_MUTEX_INITIALIZER; /* two threads may check it */
static atomic_flag failing = ATOMIC_FLAG_INIT;
static pid_t running_gateway; /* the dealflow-gateway fail() must stop */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap_ns(long ns)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ns};
    nanosleep(&ts, NULL);
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    return p;
}

static void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    return p;
}

static void print_log_tail(const server *d)
{
    FILE *f = fopen(d->log, "r");
    if (!f)
        return;
    static char lines[20][512];
    int count = 0;
    while (fgets(lines[count % 20], sizeof lines[0], f))
        count++;
    fclose(f);
    fprintf(stderr, "last lines of %s:\n", d->log);
    for (int i = count > 20 ? count - 20 : 0; i < count; i++)
        fprintf(stderr, "  %s", lines[i % 20]);
}

/* Stops the running daemon, reports why, and exits 1. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    if (atomic_flag_test_and_set(&failing)) {
        for (;;)
            pause(); /* another thread is already reporting a failure */
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: FAILED: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (running_gateway > 0) {
        kill(running_gateway, SIGKILL);
        waitpid(running_gateway, NULL, 0);
    }
    server *d = running;
    if (d) {
        pthread_mutex_lock(&reap_lock);
        if (!d->exited) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
        }
        pthread_mutex_unlock(&reap_lock);
        print_log_tail(d);
        if (!opt.keep)
            it_remove_tree(d->dir);
        else
            fprintf(stderr, "kept %s\n", d->dir);
    }
    fflush(NULL);
    _exit(1); /* another thread may still be using its sockets */
}

/* Fails when the daemon has exited. */
static void check_alive(server *d)
{
    pthread_mutex_lock(&reap_lock);
    bool died = false;
    int status = 0;
    if (!d->exited && waitpid(d->pid, &status, WNOHANG) == d->pid) {
        d->exited = true;
        d->status = status;
        died = true;
    }
    pthread_mutex_unlock(&reap_lock);
    if (died) {
        char why[128];
        it_describe_status(status, why, sizeof why);
        fail("dealflowd died: %s", why);
    }
}

/* ---- ZeroMQ helpers ---- */

static void *open_socket(int type, const char *endpoint)
{
    void *s = zmq_socket(ctx, type);
    if (!s)
        fail("zmq_socket: %s", zmq_strerror(errno));
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (opt.curve && (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, curve.server_public, 40) != 0 ||
                      zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, curve.client_public, 40) != 0 ||
                      zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, curve.client_secret, 40) != 0))
        fail("CURVE keys: %s", zmq_strerror(errno));
    if (type == ZMQ_PUSH) {
        int hwm = 10000;
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    }
    if (zmq_connect(s, endpoint) != 0)
        fail("connect %s: %s", endpoint, zmq_strerror(errno));
    return s;
}

/* Finds three free loopback ports for the daemon to bind. */
static void pick_endpoints(server *d)
{
    char endpoints[3][IT_ENDPOINT_MAX];
    if (!it_pick_ports(endpoints))
        fail("cannot find a free port: %s", zmq_strerror(errno));
    snprintf(d->ingest, sizeof d->ingest, "%s", endpoints[0]);
    snprintf(d->api, sizeof d->api, "%s", endpoints[1]);
    snprintf(d->notify, sizeof d->notify, "%s", endpoints[2]);
}

/* Sends one request frame and returns the last frame of the reply in *reply (malloc'd).
 * Fails the bench when no reply comes in time. */
static size_t api_call_within(server *d, void *sock, const void *req, size_t len, char **reply,
                              int deadline_ms)
{
    if (zmq_send(sock, req, len, 0) < 0)
        fail("api send: %s", zmq_strerror(errno));
    int64_t deadline = now_ns() + deadline_ms * 1000000LL;
    for (;;) {
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        int ready = zmq_poll(&item, 1, 100);
        if (ready < 0 && errno != EINTR)
            fail("zmq_poll: %s", zmq_strerror(errno));
        if (ready > 0)
            break;
        check_alive(d);
        if (now_ns() > deadline)
            fail("no reply from dealflowd within %d ms", deadline_ms);
    }
    zmq_msg_t part;
    zmq_msg_init(&part);
    size_t size = 0;
    *reply = NULL;
    for (;;) {
        if (zmq_msg_recv(&part, sock, 0) < 0)
            fail("api recv: %s", zmq_strerror(errno));
        size = zmq_msg_size(&part);
        *reply = xrealloc(*reply, size);
        memcpy(*reply, zmq_msg_data(&part), size);
        if (!zmq_msg_more(&part))
            break;
    }
    zmq_msg_close(&part);
    return size;
}

static size_t api_call_raw(server *d, void *sock, const void *req, size_t len, char **reply)
{
    return api_call_within(d, sock, req, len, reply, REPLY_DEADLINE_MS);
}

/* A decoded reply; its strings point into buf. */
typedef struct reply {
    char *buf;
    size_t len;
    msgpack_zone zone;
    msgpack_object obj;
} reply;

static void reply_decode(reply *r)
{
    df_error err;
    msgpack_zone_init(&r->zone, 2048);
    if (df_msgpack_check(r->buf, r->len, &err) != 0 ||
        df_msgpack_unpack(r->buf, r->len, &r->zone, &r->obj, &err) != 0 ||
        r->obj.type != MSGPACK_OBJECT_MAP)
        fail("dealflowd sent a reply that is not a msgpack map: %s", err.message);
}

static void reply_free(reply *r)
{
    msgpack_zone_destroy(&r->zone);
    free(r->buf);
}

/* Returns whether the reply says ok; fills code with its error when not. */
static bool reply_ok(const reply *r, char *code, size_t size)
{
    bool ok = false, bad = false;
    if (df_get_bool(&r->obj, "ok", &ok, &bad) && ok)
        return true;
    df_str error = {"(none)", 6};
    df_get_str(&r->obj, "error", &error, &bad);
    snprintf(code, size, "%.*s", (int)error.len, error.ptr);
    return false;
}

static uint64_t reply_uint(const reply *r, const char *key)
{
    uint64_t value = 0;
    bool bad = false;
    if (!df_get_uint(&r->obj, key, &value, &bad))
        return 0;
    return value;
}

/* Sends {op: OP} and returns the decoded reply, failing unless it is ok. */
static void api_simple(server *d, void *sock, const char *op, reply *r)
{
    msgpack_sbuffer sb;
    if (!it_encode(&sb, "{op: %s}", op))
        fail("cannot encode {op: %s}", op);
    r->len = api_call_raw(d, sock, sb.data, sb.size, &r->buf);
    msgpack_sbuffer_destroy(&sb);
    reply_decode(r);
    char code[64];
    if (!reply_ok(r, code, sizeof code))
        fail("%s failed: %s", op, code);
}

static uint64_t ping_last_seq(server *d, void *sock)
{
    reply r;
    api_simple(d, sock, "ping", &r);
    uint64_t last_seq = reply_uint(&r, "last_seq");
    reply_free(&r);
    return last_seq;
}

/* ---- /proc and disk ---- */

typedef struct memory_use {
    double rss_anon_mib;
    double hwm_mib;
} memory_use;

static memory_use read_memory(pid_t pid)
{
    memory_use m = {0, 0};
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return m;
    while (fgets(line, sizeof line, f)) {
        unsigned long kib;
        if (sscanf(line, "RssAnon: %lu kB", &kib) == 1)
            m.rss_anon_mib = kib / 1024.0;
        else if (sscanf(line, "VmHWM: %lu kB", &kib) == 1)
            m.hwm_mib = kib / 1024.0;
    }
    fclose(f);
    return m;
}

typedef struct disk_use {
    double allocated; /* bytes of data.mdb actually on disk */
    double size;      /* its apparent size */
} disk_use;

static disk_use read_disk(const server *d)
{
    char path[400];
    snprintf(path, sizeof path, "%s/data.mdb", d->data);
    struct stat st;
    disk_use u = {0, 0};
    if (stat(path, &st) == 0) {
        u.allocated = (double)st.st_blocks * 512.0;
        u.size = (double)st.st_size;
    }
    return u;
}

/* Where data.mdb's pages go: each named database's branch, leaf and overflow
 * pages, and the pages LMDB keeps for itself (the table of names, the freelist
 * and the pages on it, the two meta pages). */
#define MAX_TABLES 24

typedef struct table_use {
    char name[24];
    uint64_t entries;
    uint64_t branch, leaf, overflow;
} table_use;

typedef struct table_report {
    table_use table[MAX_TABLES];
    int count;
    unsigned page_size;
    uint64_t file_pages; /* pages up to the last one in use */
    uint64_t free_pages; /* pages on the freelist, to be reused */
    uint64_t lmdb_pages; /* the table of names, the freelist's own pages, the meta pages */
    bool read;
} table_report;

static uint64_t table_pages(const table_use *t)
{
    return t->branch + t->leaf + t->overflow;
}

static void add_stat(table_use *t, const MDB_stat *st)
{
    t->entries = st->ms_entries;
    t->branch = st->ms_branch_pages;
    t->leaf = st->ms_leaf_pages;
    t->overflow = st->ms_overflow_pages;
}

/* Reads the page use of the stopped daemon's store read-only, as `mdb_stat -a -f` would. */
static table_report read_tables(const char *dir)
{
    table_report r;
    memset(&r, 0, sizeof r);
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    if (mdb_env_create(&env) != 0)
        return r;
    if (mdb_env_set_maxdbs(env, MAX_TABLES) != 0 || mdb_env_open(env, dir, MDB_RDONLY, 0) != 0 ||
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
        goto out;
    MDB_stat st;
    MDB_envinfo info;
    mdb_env_stat(env, &st);
    mdb_env_info(env, &info);
    r.page_size = st.ms_psize;
    r.file_pages = (uint64_t)info.me_last_pgno + 1;
    r.lmdb_pages = 2 + st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    if (mdb_stat(txn, 0, &st) == 0) /* the freelist's own B-tree */
        r.lmdb_pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    MDB_val key, val;
    if (mdb_cursor_open(txn, 0, &cur) == 0) {
        while (mdb_cursor_get(cur, &key, &val, MDB_NEXT) == 0)
            if (val.mv_size >= sizeof(size_t))
                r.free_pages += *(const size_t *)val.mv_data; /* an IDL: its count, then pages */
        mdb_cursor_close(cur);
    }
    MDB_dbi main_dbi;
    if (mdb_dbi_open(txn, NULL, 0, &main_dbi) != 0 || mdb_cursor_open(txn, main_dbi, &cur) != 0)
        goto out;
    while (r.count < MAX_TABLES && mdb_cursor_get(cur, &key, &val, MDB_NEXT) == 0) {
        table_use *t = &r.table[r.count];
        if (key.mv_size >= sizeof t->name)
            continue;
        memcpy(t->name, key.mv_data, key.mv_size);
        t->name[key.mv_size] = 0;
        MDB_dbi dbi;
        if (mdb_dbi_open(txn, t->name, 0, &dbi) != 0 || mdb_stat(txn, dbi, &st) != 0)
            continue; /* a key of the main table that names no table */
        add_stat(t, &st);
        r.count++;
    }
    mdb_cursor_close(cur);
    r.read = true;
out:
    if (txn)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return r;
}

static void print_tables(const table_report *r, uint64_t events)
{
    if (!r->read) {
        printf("    (the store's tables could not be read)\n");
        return;
    }
    double per_page = (double)r->page_size / (double)events;
    printf("    data.mdb by table after stop, bytes of pages per event (%" PRIu64
           " events, %u-byte pages):\n",
           events, r->page_size);
    printf("      %-12s %10s %8s %10s %10s %10s %9s\n", "table", "entries", "per ev", "branch",
           "leaf", "overflow", "B/event");
    uint64_t tables = 0;
    for (int i = 0; i < r->count; i++) {
        const table_use *t = &r->table[i];
        tables += table_pages(t);
        printf("      %-12s %10" PRIu64 " %8.2f %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %9.1f\n",
               t->name, t->entries, (double)t->entries / (double)events, t->branch, t->leaf,
               t->overflow, (double)table_pages(t) * per_page);
    }
    /* the trees LMDB gives a key's set of values once it outgrows a page
     * (ids, deal_events) are counted in no table's stat */
    uint64_t accounted = tables + r->free_pages + r->lmdb_pages;
    printf("      %-12s %50s %9.1f\n", "sets' trees", "",
           (double)(r->file_pages > accounted ? r->file_pages - accounted : 0) * per_page);
    printf("      %-12s %50s %9.1f\n", "free pages", "", (double)r->free_pages * per_page);
    printf("      %-12s %50s %9.1f\n", "lmdb's own", "", (double)r->lmdb_pages * per_page);
    printf("      %-12s %50s %9.1f (tables %.1f)\n", "file in use", "",
           (double)r->file_pages * per_page, (double)tables * per_page);
}

/* ---- the daemon's life ---- */

/* Writes text to a new file at path with mode, or exits. */
static void write_text_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* The flags dealflowd gets after its endpoints: with --curve, the key file
 * (0600) and the clients file written in the daemon's dir first, then those
 * given after "--". */
static const char *const *daemon_flags(const server *d, int *count)
{
    static const char *flags[IT_MAX_ARGS];
    static char key_path[sizeof d->dir + 16], clients_path[sizeof d->dir + 16];
    int n = 0;
    if (opt.curve) {
        char text[160];
        snprintf(key_path, sizeof key_path, "%s/server.key", d->dir);
        snprintf(text, sizeof text, "%s\n", curve.server_secret);
        write_text_file(key_path, text, 0600);
        snprintf(clients_path, sizeof clients_path, "%s/clients", d->dir);
        snprintf(text, sizeof text, "admin %s bench\n", curve.client_public);
        write_text_file(clients_path, text, 0644);
        flags[n++] = "--curve-key";
        flags[n++] = key_path;
        flags[n++] = "--clients";
        flags[n++] = clients_path;
    }
    for (int i = 0; i < opt.ndaemon_args && n < IT_MAX_ARGS; i++)
        flags[n++] = opt.daemon_args[i];
    *count = n;
    return flags;
}

/* Starts dealflowd on d's data dir and fresh ports, its output added to d's log
 * (truncated first when fresh), and waits until it answers ping: the start-up
 * (a fold of the log included) may take deadline_ms. */
static void daemon_launch(server *d, bool fresh, int deadline_ms)
{
    pick_endpoints(d);
    d->exited = false;
    d->status = 0;
    const char *const endpoints[3] = {d->ingest, d->api, d->notify};
    int nflags;
    const char *const *flags = daemon_flags(d, &nflags);
    pid_t pid = it_exec_daemon(opt.daemon_path, d->data, endpoints, flags, nflags, d->log, fresh);
    if (pid < 0) {
        fprintf(stderr, "bench: fork: %s\n", strerror(errno));
        exit(1);
    }
    d->pid = pid;
    running = d;

    void *api = open_socket(ZMQ_DEALER, d->api);
    int64_t deadline = now_ns() + deadline_ms * 1000000LL;
    msgpack_sbuffer sb;
    it_encode(&sb, "{op: ping}");
    bool answered = false;
    while (!answered) {
        check_alive(d);
        if (now_ns() > deadline)
            fail("dealflowd did not answer ping within %d ms", deadline_ms);
        zmq_send(api, sb.data, sb.size, ZMQ_DONTWAIT);
        zmq_pollitem_t item = {.socket = api, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 100) > 0)
            answered = true;
    }
    msgpack_sbuffer_destroy(&sb);
    zmq_close(api); /* pings still queued in it are dropped: linger is 0 */
}

static void daemon_start(server *d)
{
    memset(d, 0, sizeof *d);
    const char *tmp = getenv("TMPDIR");
    snprintf(d->dir, sizeof d->dir, "%s/dealflow-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->dir)) {
        fprintf(stderr, "bench: mkdtemp %s: %s\n", d->dir, strerror(errno));
        exit(1);
    }
    snprintf(d->data, sizeof d->data, "%s/data", d->dir);
    snprintf(d->log, sizeof d->log, "%s/dealflowd.log", d->dir);
    daemon_launch(d, true, START_DEADLINE_MS);
}

/* SIGTERM, wait for the drain; returns the time it took in ms. */
static double daemon_stop(server *d)
{
    int64_t t0 = now_ns();
    if (!d->exited) {
        kill(d->pid, SIGTERM);
        int64_t deadline = t0 + STOP_DEADLINE_MS * 1000000LL;
        while (!d->exited) {
            int status;
            pid_t got = waitpid(d->pid, &status, WNOHANG);
            if (got == d->pid) {
                d->exited = true;
                d->status = status;
            } else if (now_ns() > deadline) {
                fail("dealflowd did not exit within %d ms of SIGTERM", STOP_DEADLINE_MS);
            } else {
                nap_ns(1000000);
            }
        }
    }
    double took = (now_ns() - t0) / 1e6;
    if (!WIFEXITED(d->status) || WEXITSTATUS(d->status) != 0) {
        char why[128];
        it_describe_status(d->status, why, sizeof why);
        fail("dealflowd %s after SIGTERM", why);
    }
    return took;
}

static void daemon_cleanup(server *d)
{
    running = NULL;
    if (opt.keep)
        printf("    kept %s\n", d->dir);
    else
        it_remove_tree(d->dir);
}

/* ---- pre-generated streams ---- */

/* Frames to send, all in one buffer: frame i is data[off[i] .. off[i+1]). */
typedef struct frames {
    char *data;
    size_t len, cap;
    size_t *off;
    size_t count, off_cap;
    uint64_t events; /* events in all frames, duplicates included */
} frames;

static void frames_add_bytes(frames *f, const void *bytes, size_t len)
{
    if (f->len + len > f->cap) {
        f->cap = (f->len + len) * 2;
        f->data = xrealloc(f->data, f->cap);
    }
    memcpy(f->data + f->len, bytes, len);
    f->len += len;
}

static void frames_begin(frames *f)
{
    if (f->count + 2 > f->off_cap) {
        f->off_cap = f->off_cap ? f->off_cap * 2 : 1024;
        f->off = xrealloc(f->off, f->off_cap * sizeof *f->off);
    }
    f->off[f->count] = f->len;
}

static void frames_end(frames *f)
{
    f->count++;
    f->off[f->count] = f->len;
}

static void frames_free(frames *f)
{
    free(f->data);
    free(f->off);
    memset(f, 0, sizeof *f);
}

static void pack_array_header(frames *f, size_t n)
{
    unsigned char h[5];
    if (n < 16) {
        h[0] = (unsigned char)(0x90 | n);
        frames_add_bytes(f, h, 1);
    } else if (n < 65536) {
        h[0] = 0xdc;
        h[1] = (unsigned char)(n >> 8);
        h[2] = (unsigned char)n;
        frames_add_bytes(f, h, 3);
    } else {
        h[0] = 0xdd;
        h[1] = (unsigned char)(n >> 24);
        h[2] = (unsigned char)(n >> 16);
        h[3] = (unsigned char)(n >> 8);
        h[4] = (unsigned char)n;
        frames_add_bytes(f, h, 5);
    }
}

/* A workload's first events, one per entry. */
typedef struct stream {
    frames events;
    wl_counts counts;
} stream;

static void stream_generate(stream *s, uint64_t seed, uint64_t deals, uint64_t max_events)
{
    memset(s, 0, sizeof *s);
    wl_workload *w = wl_new(seed, deals, START_MS);
    if (!w)
        fail("out of memory");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    while (s->events.count < max_events && wl_next(w, &sb)) {
        frames_begin(&s->events);
        frames_add_bytes(&s->events, sb.data, sb.size);
        frames_end(&s->events);
        msgpack_sbuffer_clear(&sb);
    }
    s->events.events = s->events.count;
    s->counts = wl_counts_get(w);
    msgpack_sbuffer_destroy(&sb);
    wl_free(w);
}

/* Groups events [first, first+n) of a stream into frames of `per` events, each an ingest
 * array or, when as_append, an append request. */
static void build_frames(const stream *s, size_t first, size_t n, size_t per, bool as_append,
                         frames *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = first; i < first + n; i += per) {
        size_t count = first + n - i < per ? first + n - i : per;
        frames_begin(out);
        if (as_append) {
            static const unsigned char head[] = {0x82, 0xa2, 'o',  'p', 0xa6, 'a', 'p', 'p', 'e',
                                                 'n',  'd',  0xa6, 'e', 'v',  'e', 'n', 't', 's'};
            frames_add_bytes(out, head, sizeof head);
        }
        if (as_append || per > 1)
            pack_array_header(out, count);
        const frames *ev = &s->events;
        frames_add_bytes(out, ev->data + ev->off[i], ev->off[i + count] - ev->off[i]);
        frames_end(out);
        out->events += count;
    }
}

/* ---- measuring ---- */

/* Sends every frame over PUSH, blocking at the high-water mark like a real producer. */
static void push_all(server *d, void *push, const frames *f, size_t first, size_t last)
{
    int timeout = 100;
    zmq_setsockopt(push, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    int64_t last_progress = now_ns();
    for (size_t i = first; i < last;) {
        if (zmq_send(push, f->data + f->off[i], f->off[i + 1] - f->off[i], 0) >= 0) {
            i++;
            if ((i & 1023) == 0)
                last_progress = now_ns();
            continue;
        }
        if (errno != EAGAIN && errno != EINTR)
            fail("push: %s", zmq_strerror(errno));
        check_alive(d);
        if (now_ns() - last_progress > STALL_DEADLINE_MS * 1000000LL)
            fail("dealflowd accepted no ingest frame for %d ms", STALL_DEADLINE_MS);
    }
}

typedef struct wait_result {
    double rss_anon_peak_mib;
    uint64_t pings;
} wait_result;

/* Polls ping until last_seq reaches target, failing when it stops moving. */
static wait_result wait_for_seq(server *d, void *api, uint64_t target)
{
    wait_result res = {0, 0};
    uint64_t seen = 0;
    int64_t last_progress = now_ns();
    for (;;) {
        uint64_t last_seq = ping_last_seq(d, api);
        res.pings++;
        if ((res.pings & 15) == 1) {
            memory_use m = read_memory(d->pid);
            if (m.rss_anon_mib > res.rss_anon_peak_mib)
                res.rss_anon_peak_mib = m.rss_anon_mib;
        }
        if (last_seq >= target)
            break;
        if (last_seq != seen) {
            seen = last_seq;
            last_progress = now_ns();
        } else if (now_ns() - last_progress > STALL_DEADLINE_MS * 1000000LL) {
            fail("last_seq stuck at %" PRIu64 " of %" PRIu64 " for %d ms", last_seq, target,
                 STALL_DEADLINE_MS);
        }
        check_alive(d);
        nap_ns(PING_INTERVAL_NS);
    }
    return res;
}

typedef struct daemon_stats {
    uint64_t events, duplicates, rejected, deals, commits;
} daemon_stats;

static daemon_stats read_stats(server *d, void *api)
{
    reply r;
    api_simple(d, api, "stats", &r);
    daemon_stats s = {
        .events = reply_uint(&r, "events"),
        .duplicates = reply_uint(&r, "duplicates"),
        .rejected = reply_uint(&r, "rejected"),
        .deals = reply_uint(&r, "deals"),
        .commits = reply_uint(&r, "commits"),
    };
    reply_free(&r);
    return s;
}

/* Warns when the daemon's counters disagree with what was sent. */
static void check_stats(const daemon_stats *s, uint64_t distinct, uint64_t duplicates)
{
    if (s->events != distinct || s->duplicates != duplicates || s->rejected != 0)
        printf("    WARNING: dealflowd counted %" PRIu64 " events, %" PRIu64 " duplicates, %" PRIu64
               " rejected; the bench sent %" PRIu64 " distinct events and %" PRIu64 " duplicates\n",
               s->events, s->duplicates, s->rejected, distinct, duplicates);
}

/* What one run of a phase measured. */
typedef struct figures {
    double rate;      /* recorded events per second */
    double send_rate; /* events handed to the socket per second */
    double disk_alloc_per_event, disk_size_per_event, disk_after_stop_per_event;
    double rss_anon_mib, rss_anon_peak_mib, hwm_mib;
    double events_per_commit;
    double stop_ms;
    double p50_ms, p99_ms, max_ms, idle_p50_ms, idle_p99_ms;
    uint64_t lookups, not_found;
    uint64_t appends;
    uint64_t deals;
    double board_first_ms, board_p50_ms, board_p99_ms, metrics_p50_ms, metrics_p99_ms;
    /* forecast, calibration and metrics with `by`: p50 and p99 of each request of
     * outlook_requests, in its order */
    double outlook_p50_ms[5], outlook_p99_ms[5];
    double ready_ms, fold_ms, fold_rate; /* rebuild: start until ping, the fold the daemon logged */
    uint64_t events;     /* distinct events recorded, the divisor of the disk figures */
    table_report tables; /* data.mdb's pages by table after the daemon stopped */
} figures;

static void finish_disk_and_stop(server *d, void *api, uint64_t distinct, figures *fig)
{
    memory_use m = read_memory(d->pid);
    fig->rss_anon_mib = m.rss_anon_mib;
    fig->hwm_mib = m.hwm_mib;
    disk_use disk = read_disk(d);
    fig->disk_alloc_per_event = disk.allocated / (double)distinct;
    fig->disk_size_per_event = disk.size / (double)distinct;
    zmq_close(api);
    fig->stop_ms = daemon_stop(d);
    disk = read_disk(d);
    fig->disk_after_stop_per_event = disk.allocated / (double)distinct;
    fig->tables = read_tables(d->data);
    fig->events = distinct;
}

static figures run_pull(const stream *s, size_t per_frame)
{
    figures fig = {0};
    frames batched = {0};
    const frames *f = &s->events;
    if (per_frame > 1) {
        build_frames(s, 0, s->events.count, per_frame, false, &batched);
        f = &batched;
    }
    server d;
    daemon_start(&d);
    void *push = open_socket(ZMQ_PUSH, d.ingest);
    void *api = open_socket(ZMQ_DEALER, d.api);
    int64_t t0 = now_ns();
    push_all(&d, push, f, 0, f->count);
    int64_t t_sent = now_ns();
    wait_result w = wait_for_seq(&d, api, s->counts.distinct);
    int64_t t_done = now_ns();
    fig.rate = s->counts.distinct / ((t_done - t0) / 1e9);
    fig.send_rate = s->counts.sent / ((t_sent - t0) / 1e9);
    fig.rss_anon_peak_mib = w.rss_anon_peak_mib;
    daemon_stats st = read_stats(&d, api);
    check_stats(&st, s->counts.distinct, s->counts.duplicates);
    fig.events_per_commit = st.commits ? (double)st.events / (double)st.commits : 0;
    fig.deals = st.deals;
    zmq_close(push);
    finish_disk_and_stop(&d, api, s->counts.distinct, &fig);
    daemon_cleanup(&d);
    if (per_frame > 1)
        frames_free(&batched);
    return fig;
}

static figures run_append(const stream *s, int inflight)
{
    figures fig = {0};
    frames requests;
    build_frames(s, 0, s->events.count, 1000, true, &requests);
    server d;
    daemon_start(&d);
    void *api = open_socket(ZMQ_DEALER, d.api);
    uint64_t results = 0, errors = 0, dups = 0;
    size_t sent = 0, answered = 0;
    char first_error[128] = "";
    int64_t t0 = now_ns();
    while (answered < requests.count) {
        while (sent < requests.count && sent - answered < (size_t)inflight) {
            if (zmq_send(api, requests.data + requests.off[sent],
                         requests.off[sent + 1] - requests.off[sent], 0) < 0)
                fail("append send: %s", zmq_strerror(errno));
            sent++;
        }
        int64_t deadline = now_ns() + REPLY_DEADLINE_MS * 1000000LL;
        zmq_pollitem_t item = {.socket = api, .events = ZMQ_POLLIN};
        while (zmq_poll(&item, 1, 100) <= 0) {
            check_alive(&d);
            if (now_ns() > deadline)
                fail("no append reply within %d ms", REPLY_DEADLINE_MS);
        }
        reply r = {0};
        zmq_msg_t part;
        zmq_msg_init(&part);
        do {
            if (zmq_msg_recv(&part, api, 0) < 0)
                fail("append recv: %s", zmq_strerror(errno));
        } while (zmq_msg_more(&part));
        r.len = zmq_msg_size(&part);
        r.buf = xmalloc(r.len);
        memcpy(r.buf, zmq_msg_data(&part), r.len);
        zmq_msg_close(&part);
        reply_decode(&r);
        char code[64];
        if (!reply_ok(&r, code, sizeof code))
            fail("append failed: %s", code);
        const msgpack_object *list = df_map_get(&r.obj, "results");
        if (!list || list->type != MSGPACK_OBJECT_ARRAY)
            fail("append reply without results");
        for (uint32_t i = 0; i < list->via.array.size; i++) {
            const msgpack_object *item_result = &list->via.array.ptr[i];
            bool dup = false, bad = false;
            df_str error;
            if (df_get_str(item_result, "error", &error, &bad)) {
                if (errors++ == 0)
                    snprintf(first_error, sizeof first_error, "%.*s", (int)error.len, error.ptr);
            } else if (df_get_bool(item_result, "dup", &dup, &bad) && dup) {
                dups++;
            }
        }
        results += list->via.array.size;
        reply_free(&r);
        answered++;
    }
    int64_t t_done = now_ns();
    if (results != s->counts.sent)
        fail("append returned %" PRIu64 " results for %" PRIu64 " events", results, s->counts.sent);
    if (errors || dups != s->counts.duplicates)
        printf("    WARNING: %" PRIu64 " events refused (first: %s), %" PRIu64
               " acknowledged as duplicates of %" PRIu64 " sent twice\n",
               errors, first_error, dups, s->counts.duplicates);
    fig.rate = s->counts.distinct / ((t_done - t0) / 1e9);
    daemon_stats st = read_stats(&d, api);
    check_stats(&st, s->counts.distinct, s->counts.duplicates);
    fig.events_per_commit = st.commits ? (double)st.events / (double)st.commits : 0;
    finish_disk_and_stop(&d, api, s->counts.distinct, &fig);
    daemon_cleanup(&d);
    frames_free(&requests);
    return fig;
}

/* The ingest that runs at full speed while lookups are measured. */
typedef struct background_ingest {
    server *d;
    const frames *f;
    size_t first, last;
    uint64_t target_seq;
    atomic_bool done;
    double rate;
} background_ingest;

static void *background_ingest_run(void *arg)
{
    background_ingest *bg = arg;
    void *push = open_socket(ZMQ_PUSH, bg->d->ingest);
    void *api = open_socket(ZMQ_DEALER, bg->d->api);
    int64_t t0 = now_ns();
    push_all(bg->d, push, bg->f, bg->first, bg->last);
    wait_for_seq(bg->d, api, bg->target_seq);
    bg->rate = (double)(bg->last - bg->first) / ((now_ns() - t0) / 1e9);
    atomic_store(&bg->done, true);
    zmq_close(push);
    zmq_close(api);
    return NULL;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)ceil(p * (double)n);
    return sorted[rank ? rank - 1 : 0];
}

/* Looks up random deals among the first `known` until `limit` lookups or until *stop; returns
 * how many, with their latencies in ms. */
static size_t lookups(server *d, void *api, uint64_t known, size_t limit, atomic_bool *stop,
                      double *latency_ms, uint64_t *not_found, uint64_t *rng)
{
    size_t n = 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    while (n < limit && !(stop && atomic_load(stop))) {
        uint64_t z = (*rng += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        char deal[32];
        int len = wl_deal_id((z ^ (z >> 31)) % known, deal, sizeof deal);
        msgpack_sbuffer_clear(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 2);
        df_pack_cstr(&pk, "op");
        df_pack_cstr(&pk, "deal");
        df_pack_cstr(&pk, "deal");
        df_pack_str(&pk, deal, (size_t)len);
        reply r;
        int64_t t0 = now_ns();
        r.len = api_call_raw(d, api, sb.data, sb.size, &r.buf);
        latency_ms[n++] = (now_ns() - t0) / 1e6;
        reply_decode(&r);
        char code[64];
        if (!reply_ok(&r, code, sizeof code)) {
            if (strcmp(code, "not_found") != 0)
                fail("deal %s failed: %s", deal, code);
            ++*not_found;
        }
        reply_free(&r);
    }
    msgpack_sbuffer_destroy(&sb);
    return n;
}

static figures run_lookup(const stream *s)
{
    figures fig = {0};
    /* a fifth of the stream first, so that the deals looked up exist */
    size_t preload = s->events.count / 5;
    stream head;
    stream_generate(&head, opt.seed, opt.deals, preload);
    uint64_t known = head.counts.deals_started;
    frames_free(&head.events);

    server d;
    daemon_start(&d);
    void *push = open_socket(ZMQ_PUSH, d.ingest);
    void *api = open_socket(ZMQ_DEALER, d.api);
    push_all(&d, push, &s->events, 0, preload);
    wait_for_seq(&d, api, head.counts.distinct);
    zmq_close(push);

    background_ingest bg = {.d = &d,
                            .f = &s->events,
                            .first = preload,
                            .last = s->events.count,
                            .target_seq = s->counts.distinct};
    atomic_init(&bg.done, false);
    pthread_t thread;
    if (pthread_create(&thread, NULL, background_ingest_run, &bg) != 0)
        fail("pthread_create failed");
    double *latency = xmalloc(opt.lookups * sizeof *latency);
    uint64_t rng = opt.seed ^ 0x5eed;
    fig.lookups = lookups(&d, api, known, opt.lookups, &bg.done, latency, &fig.not_found, &rng);
    pthread_join(thread, NULL);
    qsort(latency, fig.lookups, sizeof *latency, compare_double);
    fig.p50_ms = percentile(latency, fig.lookups, 0.50);
    fig.p99_ms = percentile(latency, fig.lookups, 0.99);
    fig.max_ms = fig.lookups ? latency[fig.lookups - 1] : 0;
    fig.rate = bg.rate;

    uint64_t idle_not_found = 0;
    size_t idle = lookups(&d, api, known, 2000, NULL, latency, &idle_not_found, &rng);
    qsort(latency, idle, sizeof *latency, compare_double);
    fig.idle_p50_ms = percentile(latency, idle, 0.50);
    fig.idle_p99_ms = percentile(latency, idle, 0.99);
    free(latency);
    if (fig.lookups < opt.lookups)
        printf("    note: the ingest ended after %" PRIu64 " of %" PRIu64
               " lookups; only those are counted (use more --events)\n",
               fig.lookups, opt.lookups);
    zmq_close(api);
    daemon_stop(&d);
    daemon_cleanup(&d);
    return fig;
}

/* The ingest that floods the daemon while single appends are timed: it
 * pushes every frame, then waits until everything pushed and every append
 * acknowledged so far is committed. */
typedef struct flood {
    server *d;
    const frames *f;
    uint64_t distinct;
    atomic_uint_fast64_t acked; /* appends acknowledged by the timing thread */
    atomic_bool done;
    double rate;
} flood;

static void *flood_run(void *arg)
{
    flood *fl = arg;
    void *push = open_socket(ZMQ_PUSH, fl->d->ingest);
    void *api = open_socket(ZMQ_DEALER, fl->d->api);
    int64_t t0 = now_ns();
    push_all(fl->d, push, fl->f, 0, fl->f->count);
    uint64_t seen = 0;
    int64_t last_progress = now_ns();
    for (;;) {
        /* read acked first: an append acknowledged later only raises last_seq further */
        uint64_t target = fl->distinct + atomic_load(&fl->acked);
        uint64_t last_seq = ping_last_seq(fl->d, api);
        if (last_seq >= target)
            break;
        if (last_seq != seen) {
            seen = last_seq;
            last_progress = now_ns();
        } else if (now_ns() - last_progress > STALL_DEADLINE_MS * 1000000LL) {
            fail("last_seq stuck at %" PRIu64 " of %" PRIu64 " for %d ms", last_seq, target,
                 STALL_DEADLINE_MS);
        }
        check_alive(fl->d);
        nap_ns(PING_INTERVAL_NS);
    }
    fl->rate = fl->distinct / ((now_ns() - t0) / 1e9);
    atomic_store(&fl->done, true);
    zmq_close(push);
    zmq_close(api);
    return NULL;
}

/* Sends one append of one new event (ids the workload never uses) and waits for its reply;
 * fails unless the event was recorded. */
static void append_one(server *d, void *api, uint64_t n, msgpack_sbuffer *sb)
{
    char id[32], deal[32];
    snprintf(id, sizeof id, "mixed-%" PRIu64, n);
    snprintf(deal, sizeof deal, "mixed-%" PRIu64, n % 100);
    msgpack_sbuffer_clear(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    df_pack_cstr(&pk, "op");
    df_pack_cstr(&pk, "append");
    df_pack_cstr(&pk, "events");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 6);
    df_pack_cstr(&pk, "id");
    df_pack_cstr(&pk, id);
    df_pack_cstr(&pk, "type");
    df_pack_cstr(&pk, "activity");
    df_pack_cstr(&pk, "deal");
    df_pack_cstr(&pk, deal);
    df_pack_cstr(&pk, "at");
    msgpack_pack_int64(&pk, START_MS + (int64_t)n);
    df_pack_cstr(&pk, "kind");
    df_pack_cstr(&pk, "call");
    df_pack_cstr(&pk, "actor");
    df_pack_cstr(&pk, "anna");
    reply r;
    r.len = api_call_raw(d, api, sb->data, sb->size, &r.buf);
    reply_decode(&r);
    char code[64];
    if (!reply_ok(&r, code, sizeof code))
        fail("append failed: %s", code);
    const msgpack_object *list = df_map_get(&r.obj, "results");
    uint64_t seq = 0;
    bool bad = false;
    if (!list || list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size != 1 ||
        !df_get_uint(&list->via.array.ptr[0], "seq", &seq, &bad) || seq == 0)
        fail("append of %s was not recorded", id);
    reply_free(&r);
}

/* Times single-event appends, one at a time, while another thread pushes the whole stream at
 * full speed; appends answered after the flood was committed are not counted. */
static figures run_mixed(const stream *s)
{
    figures fig = {0};
    server d;
    daemon_start(&d);
    void *api = open_socket(ZMQ_DEALER, d.api);
    flood fl = {.d = &d, .f = &s->events, .distinct = s->counts.distinct};
    atomic_init(&fl.acked, 0);
    atomic_init(&fl.done, false);
    pthread_t thread;
    if (pthread_create(&thread, NULL, flood_run, &fl) != 0)
        fail("pthread_create failed");
    size_t cap = 4096, n = 0;
    double *latency = xmalloc(cap * sizeof *latency);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    while (!atomic_load(&fl.done)) {
        int64_t t0 = now_ns();
        append_one(&d, api, atomic_load(&fl.acked), &sb);
        double ms = (now_ns() - t0) / 1e6;
        atomic_fetch_add(&fl.acked, 1);
        if (atomic_load(&fl.done))
            break; /* the flood may have ended while this one waited */
        if (n == cap)
            latency = xrealloc(latency, (cap *= 2) * sizeof *latency);
        latency[n++] = ms;
    }
    pthread_join(thread, NULL);
    msgpack_sbuffer_destroy(&sb);
    qsort(latency, n, sizeof *latency, compare_double);
    fig.appends = n;
    fig.p50_ms = percentile(latency, n, 0.50);
    fig.p99_ms = percentile(latency, n, 0.99);
    fig.max_ms = n ? latency[n - 1] : 0;
    fig.rate = fl.rate;
    free(latency);
    daemon_stats st = read_stats(&d, api);
    check_stats(&st, s->counts.distinct + atomic_load(&fl.acked), s->counts.duplicates);
    fig.events_per_commit = st.commits ? (double)st.events / (double)st.commits : 0;
    zmq_close(api);
    daemon_stop(&d);
    daemon_cleanup(&d);
    return fig;
}

/* Times `board` and `metrics` (every pipeline, one owner, a window) on the
 * store the memory phase built: the first board (which waits for the flush)
 * on its own, then 100 of each. */
static void time_figures(server *d, void *api, figures *fig)
{
    static const char *const requests[] = {
        "board",
        "metrics",
        "metrics owner",
        "metrics window",
    };
    double board[100], metrics[300];
    size_t nboard = 0, nmetrics = 0;
    for (int round = 0; round < 101; round++) {
        for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
            if (round == 0 && i > 0)
                break;
            msgpack_sbuffer sb;
            msgpack_packer pk;
            msgpack_sbuffer_init(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            bool owner = i == 2, window = i == 3;
            msgpack_pack_map(&pk, 2 + owner + 2 * window);
            df_pack_cstr(&pk, "op");
            df_pack_cstr(&pk, i == 0 ? "board" : "metrics");
            df_pack_cstr(&pk, "now");
            msgpack_pack_int64(&pk, START_MS + 400LL * 86400000);
            if (owner) {
                df_pack_cstr(&pk, "owner");
                df_pack_cstr(&pk, "greta");
            }
            if (window) {
                df_pack_cstr(&pk, "from");
                msgpack_pack_int64(&pk, START_MS + 30LL * 86400000 + 12345);
                df_pack_cstr(&pk, "to");
                msgpack_pack_int64(&pk, START_MS + 200LL * 86400000 + 678);
            }
            reply r;
            int64_t t0 = now_ns();
            r.len = api_call_raw(d, api, sb.data, sb.size, &r.buf);
            double ms = (now_ns() - t0) / 1e6;
            msgpack_sbuffer_destroy(&sb);
            reply_decode(&r);
            char code[64];
            if (!reply_ok(&r, code, sizeof code))
                fail("%s failed: %s", requests[i], code);
            reply_free(&r);
            if (round == 0)
                fig->board_first_ms = ms;
            else if (i == 0)
                board[nboard++] = ms;
            else
                metrics[nmetrics++] = ms;
        }
    }
    qsort(board, nboard, sizeof board[0], compare_double);
    qsort(metrics, nmetrics, sizeof metrics[0], compare_double);
    fig->board_p50_ms = percentile(board, nboard, 0.50);
    fig->board_p99_ms = percentile(board, nboard, 0.99);
    fig->metrics_p50_ms = percentile(metrics, nmetrics, 0.50);
    fig->metrics_p99_ms = percentile(metrics, nmetrics, 0.99);
}

/* The requests time_outlook times: forecast and calibration without and
 * with `by` or a window, and metrics with `by` (a series). */
typedef struct outlook_request {
    const char *name, *op, *by;
    bool window;
} outlook_request;

static const outlook_request outlook_requests[] = {
    {"forecast", "forecast", NULL, false},
    {"forecast by week, window", "forecast", "week", true},
    {"calibration", "calibration", NULL, false},
    {"calibration, window", "calibration", NULL, true},
    {"metrics by month, window", "metrics", "month", true},
};
#define NOUTLOOK (sizeof outlook_requests / sizeof outlook_requests[0])

/* Times 100 of each of outlook_requests on the store the memory phase built. */
static void time_outlook(server *d, void *api, figures *fig)
{
    for (size_t i = 0; i < NOUTLOOK; i++) {
        const outlook_request *q = &outlook_requests[i];
        double ms[100];
        for (int round = 0; round < 100; round++) {
            msgpack_sbuffer sb;
            msgpack_packer pk;
            msgpack_sbuffer_init(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 2 + (q->by != NULL) + 2 * q->window);
            df_pack_cstr(&pk, "op");
            df_pack_cstr(&pk, q->op);
            df_pack_cstr(&pk, "now");
            msgpack_pack_int64(&pk, START_MS + 400LL * 86400000);
            if (q->by) {
                df_pack_cstr(&pk, "by");
                df_pack_cstr(&pk, q->by);
            }
            if (q->window) {
                df_pack_cstr(&pk, "from");
                msgpack_pack_int64(&pk, START_MS + 30LL * 86400000 + 12345);
                df_pack_cstr(&pk, "to");
                msgpack_pack_int64(&pk, START_MS + 200LL * 86400000 + 678);
            }
            reply r;
            int64_t t0 = now_ns();
            r.len = api_call_raw(d, api, sb.data, sb.size, &r.buf);
            ms[round] = (now_ns() - t0) / 1e6;
            msgpack_sbuffer_destroy(&sb);
            reply_decode(&r);
            char code[64];
            if (!reply_ok(&r, code, sizeof code))
                fail("%s failed: %s", q->name, code);
            reply_free(&r);
        }
        qsort(ms, 100, sizeof ms[0], compare_double);
        fig->outlook_p50_ms[i] = percentile(ms, 100, 0.50);
        fig->outlook_p99_ms[i] = percentile(ms, 100, 0.99);
    }
}

/* Streams a whole workload of memory_deals deals in arrays of 100, generating as it goes. */
static figures run_memory(void)
{
    figures fig = {0};
    server d;
    daemon_start(&d);
    void *push = open_socket(ZMQ_PUSH, d.ingest);
    void *api = open_socket(ZMQ_DEALER, d.api);
    int timeout = 100;
    zmq_setsockopt(push, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    wl_workload *w = wl_new(opt.seed, opt.memory_deals, START_MS);
    if (!w)
        fail("out of memory");
    msgpack_sbuffer events, frame;
    msgpack_sbuffer_init(&events);
    msgpack_sbuffer_init(&frame);
    int64_t t0 = now_ns();
    double peak = 0;
    bool more = true;
    uint64_t frames_sent = 0;
    while (more) {
        size_t count = 0;
        msgpack_sbuffer_clear(&events);
        while (count < 100 && (more = wl_next(w, &events)))
            count++;
        if (count == 0)
            break;
        msgpack_sbuffer_clear(&frame);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &frame, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, count);
        msgpack_sbuffer_write(&frame, events.data, events.size);
        int64_t last_progress = now_ns();
        while (zmq_send(push, frame.data, frame.size, 0) < 0) {
            if (errno != EAGAIN && errno != EINTR)
                fail("push: %s", zmq_strerror(errno));
            check_alive(&d);
            if (now_ns() - last_progress > STALL_DEADLINE_MS * 1000000LL)
                fail("dealflowd accepted no ingest frame for %d ms", STALL_DEADLINE_MS);
        }
        if ((++frames_sent & 1023) == 0) {
            memory_use m = read_memory(d.pid);
            if (m.rss_anon_mib > peak)
                peak = m.rss_anon_mib;
        }
    }
    wl_counts c = wl_counts_get(w);
    wl_free(w);
    msgpack_sbuffer_destroy(&events);
    msgpack_sbuffer_destroy(&frame);
    wait_result wr = wait_for_seq(&d, api, c.distinct);
    int64_t t_done = now_ns();
    fig.rate = c.distinct / ((t_done - t0) / 1e9);
    fig.rss_anon_peak_mib = peak > wr.rss_anon_peak_mib ? peak : wr.rss_anon_peak_mib;
    daemon_stats st = read_stats(&d, api);
    check_stats(&st, c.distinct, c.duplicates);
    fig.deals = st.deals;
    fig.events_per_commit = st.commits ? (double)st.events / (double)st.commits : 0;
    time_figures(&d, api, &fig);
    time_outlook(&d, api, &fig);
    zmq_close(push);
    printf("    %" PRIu64 " events (%" PRIu64 " distinct) over %" PRIu64 " deals\n", c.sent,
           c.distinct, c.deals_started);
    finish_disk_and_stop(&d, api, c.distinct, &fig);
    daemon_cleanup(&d);
    return fig;
}

/* ---- rebuild: the derived state folded again from the log ---- */

/* Runs `dealflowd --compact --data DIR` (and the flags given after "--") on the
 * stopped daemon's store, its output added to the daemon's log. */
static void compact_store(server *d)
{
    const char *argv[IT_MAX_ARGS + 8];
    int n = 0;
    argv[n++] = opt.daemon_path;
    argv[n++] = "--compact";
    argv[n++] = "--data";
    argv[n++] = d->data;
    for (int i = 0; i < opt.ndaemon_args && n < IT_MAX_ARGS; i++)
        argv[n++] = opt.daemon_args[i];
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(opt.daemon_path, (char *const *)argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char why[128];
        it_describe_status(status, why, sizeof why);
        print_log_tail(d);
        fail("dealflowd --compact %s", why);
    }
}

/* The fold time the daemon logged last ("folded N events ... in M ms"), or -1. */
static double logged_fold_ms(const server *d, uint64_t *events)
{
    FILE *f = fopen(d->log, "r");
    if (!f)
        return -1;
    char line[512];
    double ms = -1;
    while (fgets(line, sizeof line, f)) {
        const char *at = strstr(line, "folded ");
        unsigned long long n, took;
        if (at && sscanf(at, "folded %llu events of the log back into memory in %llu ms", &n,
                         &took) == 2) {
            *events = n;
            ms = (double)took;
        }
    }
    fclose(f);
    return ms;
}

/* Times one `board`: the first after a start waits for the derived state's flush, which
 * after a rebuild holds every deal (hence the longer deadline). */
static double time_board(server *d, void *api)
{
    msgpack_sbuffer sb;
    it_encode(&sb, "{op: board}");
    reply r;
    int64_t t0 = now_ns();
    r.len = api_call_within(d, api, sb.data, sb.size, &r.buf, STOP_DEADLINE_MS);
    double ms = (now_ns() - t0) / 1e6;
    msgpack_sbuffer_destroy(&sb);
    reply_decode(&r);
    char code[64];
    if (!reply_ok(&r, code, sizeof code))
        fail("board failed: %s", code);
    reply_free(&r);
    return ms;
}

/* Ingests the stream (arrays of 100), stops the daemon, drops the derived
 * state with --compact and starts the daemon again: the time until it answers
 * ping is the fold of the whole log; then the first board, which waits for
 * the flush of what the fold made. */
static figures run_rebuild(const stream *s)
{
    figures fig = {0};
    frames batched;
    build_frames(s, 0, s->events.count, 100, false, &batched);
    server d;
    daemon_start(&d);
    void *push = open_socket(ZMQ_PUSH, d.ingest);
    void *api = open_socket(ZMQ_DEALER, d.api);
    push_all(&d, push, &batched, 0, batched.count);
    wait_for_seq(&d, api, s->counts.distinct);
    zmq_close(push);
    zmq_close(api);
    daemon_stop(&d);
    compact_store(&d);
    int64_t t0 = now_ns();
    daemon_launch(&d, false, STOP_DEADLINE_MS);
    fig.ready_ms = (now_ns() - t0) / 1e6;
    fig.rate = s->counts.distinct / (fig.ready_ms / 1e3);
    uint64_t folded = 0;
    fig.fold_ms = logged_fold_ms(&d, &folded);
    if (folded != s->counts.distinct)
        printf("    WARNING: dealflowd folded %" PRIu64 " events at start, not the %" PRIu64
               " of the log\n",
               folded, s->counts.distinct);
    fig.fold_rate = fig.fold_ms > 0 ? folded / (fig.fold_ms / 1e3) : 0;
    api = open_socket(ZMQ_DEALER, d.api);
    fig.board_first_ms = time_board(&d, api);
    fig.board_p50_ms = time_board(&d, api);
    /* what the rebuild's largest transaction and its tables left behind */
    memory_use m = read_memory(d.pid);
    fig.rss_anon_mib = m.rss_anon_mib;
    fig.hwm_mib = m.hwm_mib;
    daemon_stats st = read_stats(&d, api);
    if (st.events != s->counts.distinct)
        printf("    WARNING: after the rebuild dealflowd counts %" PRIu64 " events, not %" PRIu64
               "\n",
               st.events, s->counts.distinct);
    fig.deals = st.deals;
    finish_disk_and_stop(&d, api, s->counts.distinct, &fig);
    daemon_cleanup(&d);
    frames_free(&batched);
    return fig;
}

/* ---- the gateway: POST /v1/events over HTTP ---- */

#ifdef GATEWAY_PATH
/* A dealflow-gateway the bench started in front of daemon d. */
typedef struct gateway {
    pid_t pid;
    char url[96];
    char config[320], log[320];
} gateway;

#define GATEWAY_TOKEN "bench-gateway-token"

static void gateway_start(gateway *g, const server *d)
{
    memset(g, 0, sizeof *g);
    char ports[3][IT_ENDPOINT_MAX];
    if (!it_pick_ports(ports))
        fail("cannot find a free port: %s", strerror(errno));
    char listen_on[64];
    snprintf(listen_on, sizeof listen_on, "127.0.0.1:%s", it_port(ports[0]));
    snprintf(g->url, sizeof g->url, "http://%s/v1/events", listen_on);
    snprintf(g->config, sizeof g->config, "%s/gateway.json", d->dir);
    snprintf(g->log, sizeof g->log, "%s/gateway.log", d->dir);
    char text[512];
    /* one HTTP thread per connection, each with its own client of the daemon */
    snprintf(text, sizeof text,
             "{\"tokens\": [{\"token\": \"%s\", \"role\": \"admin\", \"name\": \"bench\"}],"
             " \"limits\": {\"body_bytes\": %d, \"threads\": %d}}\n",
             GATEWAY_TOKEN, 16 << 20, opt.connections);
    write_text_file(g->config, text, 0600);
    char key_path[sizeof d->dir + 16], server_public[41 + 1];
    if (opt.curve) {
        snprintf(key_path, sizeof key_path, "%s/bench.key", d->dir);
        snprintf(text, sizeof text, "%s\n", curve.client_secret);
        write_text_file(key_path, text, 0600);
        snprintf(server_public, sizeof server_public, "%s", curve.server_public);
    }
    g->pid = fork();
    if (g->pid < 0)
        fail("fork: %s", strerror(errno));
    if (g->pid == 0) {
        if (!freopen(g->log, "a", stderr))
            _exit(127);
        if (opt.curve)
            execl(opt.gateway_path, opt.gateway_path, "--config", g->config, "--listen", listen_on,
                  "--api", d->api, "--ingest", d->ingest, "--notify", d->notify, "--server-key",
                  server_public, "--key-file", key_path, (char *)NULL);
        else
            execl(opt.gateway_path, opt.gateway_path, "--config", g->config, "--listen", listen_on,
                  "--api", d->api, "--ingest", d->ingest, "--notify", d->notify, (char *)NULL);
        _exit(127);
    }
    char health[128];
    snprintf(health, sizeof health, "http://%s/healthz", listen_on);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, health);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
    int64_t deadline = now_ns() + START_DEADLINE_MS * 1000000LL;
    long status = 0;
    while (status != 200) {
        int st;
        if (waitpid(g->pid, &st, WNOHANG) == g->pid) {
            g->pid = 0;
            fail("dealflow-gateway exited at its start (its log: %s)", g->log);
        }
        if (now_ns() > deadline)
            fail("dealflow-gateway did not answer /healthz within %d ms", START_DEADLINE_MS);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200)
            nap_ns(20000000L);
    }
    curl_easy_cleanup(c);
}

static void gateway_stop(gateway *g)
{
    if (g->pid <= 0)
        return;
    kill(g->pid, SIGTERM);
    int status = 0;
    if (waitpid(g->pid, &status, 0) != g->pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("dealflow-gateway did not exit 0 after SIGTERM (its log: %s)", g->log);
    g->pid = 0;
}

/* Request bodies in JSON: body i is text[off[i] .. off[i+1]). */
typedef struct bodies {
    frames f;
    uint64_t events;
} bodies;

/* Events [0, n) of the stream as JSON bodies of `per` events: an array, or one object. */
static void build_bodies(const stream *s, size_t n, size_t per, bodies *out)
{
    memset(out, 0, sizeof *out);
    const frames *ev = &s->events;
    for (size_t i = 0; i < n; i += per) {
        size_t count = n - i < per ? n - i : per;
        frames_begin(&out->f);
        if (per > 1)
            frames_add_bytes(&out->f, "[", 1);
        for (size_t k = i; k < i + count; k++) {
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            if (msgpack_unpack_next(&u, ev->data + ev->off[k], ev->off[k + 1] - ev->off[k], NULL) !=
                MSGPACK_UNPACK_SUCCESS)
                fail("the workload's event %zu does not unpack", k);
            json_t *j = json_from_msgpack(&u.data);
            char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
            if (!text)
                fail("out of memory");
            if (k > i)
                frames_add_bytes(&out->f, ",", 1);
            frames_add_bytes(&out->f, text, strlen(text));
            free(text);
            json_decref(j);
            msgpack_unpacked_destroy(&u);
        }
        if (per > 1)
            frames_add_bytes(&out->f, "]", 1);
        frames_end(&out->f);
        out->events += count;
    }
}

/* One connection's share: the bodies it POSTs and what came back. */
typedef struct poster {
    const gateway *g;
    const bodies *b;
    atomic_size_t *next; /* the next body to send, shared by all connections */
    uint64_t results, errors, dups, requests;
    char first_error[160];
    char *answer;
    size_t answer_len, answer_cap;
} poster;

static size_t poster_take(char *data, size_t size, size_t n, void *arg)
{
    poster *p = arg;
    size_t len = size * n;
    if (p->answer_len + len + 1 > p->answer_cap) {
        p->answer_cap = (p->answer_len + len + 1) * 2;
        p->answer = xrealloc(p->answer, p->answer_cap);
    }
    memcpy(p->answer + p->answer_len, data, len);
    p->answer_len += len;
    p->answer[p->answer_len] = '\0';
    return len;
}

static void *poster_run(void *arg)
{
    poster *p = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Authorization: Bearer " GATEWAY_TOKEN);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    if (!c || !headers)
        fail("cannot start libcurl");
    curl_easy_setopt(c, CURLOPT_URL, p->g->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, poster_take);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)REPLY_DEADLINE_MS);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    const frames *f = &p->b->f;
    for (size_t i; (i = atomic_fetch_add(p->next, 1)) < f->count;) {
        p->answer_len = 0;
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->data + f->off[i]);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(f->off[i + 1] - f->off[i]));
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status != 200)
            fail("POST /v1/events: %s, HTTP %ld: %.200s", curl_easy_strerror(rc), status,
                 p->answer ? p->answer : "");
        json_t *j = json_loadb(p->answer, p->answer_len, 0, NULL);
        json_t *list = json_object_get(j, "results");
        if (!json_is_array(list))
            fail("POST /v1/events answered without results: %.200s", p->answer);
        size_t k;
        json_t *r;
        json_array_foreach(list, k, r)
        {
            const char *error = json_string_value(json_object_get(r, "error"));
            if (error && p->errors++ == 0)
                snprintf(p->first_error, sizeof p->first_error, "%s", error);
            else if (json_is_true(json_object_get(r, "dup")))
                p->dups++;
        }
        p->results += json_array_size(list);
        p->requests++;
        json_decref(j);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    free(p->answer);
    return NULL;
}

/* POSTs the first n events of the stream through a gateway, `per` events a request, over
 * opt.connections keep-alive connections; events acknowledged per second. */
static figures run_gateway(const stream *s, size_t n, size_t per)
{
    figures fig = {0};
    bodies b;
    build_bodies(s, n, per, &b);
    uint64_t duplicates = 0, distinct = 0;
    server d;
    daemon_start(&d);
    gateway g;
    gateway_start(&g, &d);
    running_gateway = g.pid;
    int conns = opt.connections;
    poster posters[64];
    pthread_t threads[64];
    atomic_size_t next = 0;
    int64_t t0 = now_ns();
    for (int i = 0; i < conns; i++) {
        posters[i] = (poster){.g = &g, .b = &b, .next = &next};
        if (pthread_create(&threads[i], NULL, poster_run, &posters[i]) != 0)
            fail("pthread_create: %s", strerror(errno));
    }
    uint64_t results = 0, errors = 0, requests = 0;
    const char *first_error = "";
    for (int i = 0; i < conns; i++) {
        pthread_join(threads[i], NULL);
        results += posters[i].results;
        errors += posters[i].errors;
        duplicates += posters[i].dups;
        requests += posters[i].requests;
        if (posters[i].errors && !first_error[0])
            first_error = posters[i].first_error;
    }
    int64_t t_done = now_ns();
    if (results != b.events)
        fail("the gateway answered %" PRIu64 " results for %" PRIu64 " events", results, b.events);
    distinct = results - duplicates - errors;
    if (errors)
        printf("    WARNING: %" PRIu64 " events refused (first: %s)\n", errors, first_error);
    fig.rate = distinct / ((t_done - t0) / 1e9);
    fig.appends = requests;
    void *api = open_socket(ZMQ_DEALER, d.api);
    daemon_stats st = read_stats(&d, api);
    check_stats(&st, distinct, duplicates);
    fig.events_per_commit = st.commits ? (double)st.events / (double)st.commits : 0;
    gateway_stop(&g);
    running_gateway = 0;
    zmq_close(api);
    fig.stop_ms = daemon_stop(&d);
    daemon_cleanup(&d);
    frames_free(&b.f);
    return fig;
}
#endif

/* ---- reporting ---- */

static double median_of(const figures *runs, int n, size_t offset)
{
    double values[64];
    for (int i = 0; i < n; i++)
        values[i] = *(const double *)((const char *)&runs[i] + offset);
    qsort(values, (size_t)n, sizeof values[0], compare_double);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

#define MEDIAN(runs, n, field) median_of(runs, n, offsetof(figures, field))

static void verdict(bool met, char *buf, size_t size)
{
    snprintf(buf, size, "%s", met ? "met" : "MISSED");
}

typedef struct summary_line {
    char figure[64];
    char measured[64];
    char target[32];
    char verdict[8];
} summary_line;

static summary_line summary[64];
static int nsummary;

static void add_summary(const char *figure, const char *measured, const char *target,
                        int met) /* met: 1, 0, or -1 for no target */
{
    if (nsummary == sizeof summary / sizeof summary[0])
        return;
    summary_line *l = &summary[nsummary++];
    snprintf(l->figure, sizeof l->figure, "%s", figure);
    snprintf(l->measured, sizeof l->measured, "%s", measured);
    snprintf(l->target, sizeof l->target, "%s", target);
    if (met < 0)
        l->verdict[0] = 0;
    else
        verdict(met, l->verdict, sizeof l->verdict);
}

static const char *thousands(double value, char *buf, size_t size)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", value);
    size_t len = strlen(digits), j = 0;
    for (size_t i = 0; i < len && j + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[j++] = ' ';
        buf[j++] = digits[i];
    }
    buf[j] = 0;
    return buf;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench [--daemon PATH]\n"
            "             [--phase pull|append|lookup|mixed|memory|gateway|rebuild|compare|all]\n"
            "             [--events N] [--deals N] [--memory-deals N] [--lookups N]\n"
            "             [--inflight K] [--repeat R] [--seed S] [--keep] [--curve]\n"
            "             [--gateway PATH] [--connections C] [--gateway-single N]\n"
            "             [--dump-workload FILE] [--postgres-job PATH] [--postgres-rate N]\n"
            "             [-- DEALFLOWD-FLAGS]\n");
}

static uint64_t parse_count(const char *flag, const char *value)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(value ? value : "", &end, 10);
    if (!value || errno || *end || n == 0) {
        fprintf(stderr, "bench: %s needs a positive number\n", flag);
        usage(stderr);
        exit(2);
    }
    return n;
}

static void parse_options(int argc, char **argv)
{
    opt.daemon_path = DEALFLOWD_PATH;
    opt.postgres_job = POSTGRES_JOB_PATH;
#ifdef GATEWAY_PATH
    opt.gateway_path = GATEWAY_PATH;
#endif
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            opt.daemon_args = argv + i + 1;
            opt.ndaemon_args = argc - i - 1;
            break;
        } else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--keep") == 0) {
            opt.keep = true;
            continue;
        } else if (strcmp(a, "--curve") == 0) {
            opt.curve = true;
            continue;
        } else if (!v) {
            fprintf(stderr, "bench: %s needs a value\n", a);
            usage(stderr);
            exit(2);
        } else if (strcmp(a, "--daemon") == 0) {
            opt.daemon_path = v;
        } else if (strcmp(a, "--phase") == 0) {
            opt.phase = v;
        } else if (strcmp(a, "--dump-workload") == 0) {
            opt.dump_workload = v;
        } else if (strcmp(a, "--postgres-job") == 0) {
            opt.postgres_job = v;
        } else if (strcmp(a, "--postgres-rate") == 0) {
            opt.postgres_rate = (double)parse_count(a, v);
        } else if (strcmp(a, "--events") == 0) {
            opt.events = parse_count(a, v);
        } else if (strcmp(a, "--deals") == 0) {
            opt.deals = parse_count(a, v);
        } else if (strcmp(a, "--memory-deals") == 0) {
            opt.memory_deals = parse_count(a, v);
        } else if (strcmp(a, "--lookups") == 0) {
            opt.lookups = parse_count(a, v);
        } else if (strcmp(a, "--inflight") == 0) {
            opt.inflight = (int)parse_count(a, v);
        } else if (strcmp(a, "--repeat") == 0) {
            opt.repeat = (int)parse_count(a, v);
        } else if (strcmp(a, "--seed") == 0) {
            opt.seed = parse_count(a, v);
        } else if (strcmp(a, "--gateway") == 0) {
            opt.gateway_path = v;
        } else if (strcmp(a, "--connections") == 0) {
            opt.connections = (int)parse_count(a, v);
        } else if (strcmp(a, "--gateway-single") == 0) {
            opt.gateway_single = parse_count(a, v);
        } else {
            fprintf(stderr, "bench: unknown flag %s\n", a);
            usage(stderr);
            exit(2);
        }
        i++;
    }
    if (opt.repeat > 64)
        opt.repeat = 64;
    if (opt.connections > 64)
        opt.connections = 64; /* the gateway's limits.threads allows 64 */
    const char *phases[] = {"pull",    "append",  "lookup",  "mixed", "memory",
                            "gateway", "rebuild", "compare", "all"};
    bool known = false;
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++)
        known |= strcmp(opt.phase, phases[i]) == 0;
    if (!known) {
        fprintf(stderr, "bench: unknown phase %s\n", opt.phase);
        usage(stderr);
        exit(2);
    }
    if (!opt.daemon_path) {
        fprintf(stderr, "bench: no dealflowd was built with this bench: give --daemon PATH\n");
        exit(2);
    }
    if (access(opt.daemon_path, X_OK) != 0) {
        fprintf(stderr, "bench: %s: %s\n", opt.daemon_path, strerror(errno));
        exit(2);
    }
#ifdef GATEWAY_PATH
    if (strcmp(opt.phase, "gateway") == 0 && access(opt.gateway_path, X_OK) != 0) {
        fprintf(stderr, "bench: %s: %s\n", opt.gateway_path, strerror(errno));
        exit(2);
    }
#else
    if (strcmp(opt.phase, "gateway") == 0) {
        fprintf(stderr, "bench: the gateway phase needs dealflow-gateway in the same build\n");
        exit(2);
    }
#endif
    if (opt.curve && (zmq_curve_keypair(curve.server_public, curve.server_secret) != 0 ||
                      zmq_curve_keypair(curve.client_public, curve.client_secret) != 0)) {
        fprintf(stderr, "bench: --curve: %s (is libzmq built with CURVE?)\n", zmq_strerror(errno));
        exit(2);
    }
}

/* `all` is every phase but compare, which needs PostgreSQL. */
static bool phase_on(const char *name)
{
    return (strcmp(opt.phase, "all") == 0 && strcmp(name, "compare") != 0) ||
           strcmp(opt.phase, name) == 0;
}

/* One summary line per table of the store: the median over the runs of its
 * pages' bytes per event. */
static void summarize_tables(const figures *runs)
{
    const table_report *first = &runs[0].tables;
    for (int i = 0; i < first->count; i++) {
        double per_event[64];
        int n = 0;
        for (int r = 0; r < opt.repeat; r++) {
            const table_report *t = &runs[r].tables;
            for (int j = 0; j < t->count; j++)
                if (strcmp(t->table[j].name, first->table[i].name) == 0)
                    per_event[n++] =
                        (double)table_pages(&t->table[j]) * t->page_size / (double)runs[r].events;
        }
        qsort(per_event, (size_t)n, sizeof per_event[0], compare_double);
        if (n == 0 || per_event[n / 2] < 0.5)
            continue;
        char figure[64], buf[64];
        snprintf(figure, sizeof figure, "  of which table %s", first->table[i].name);
        snprintf(buf, sizeof buf, "%.1f B/ev", per_event[n / 2]);
        add_summary(figure, buf, "", -1);
    }
}

static double report_pull(const stream *s, size_t per_frame)
{
    figures runs[64] = {{0}};
    printf("PULL ingest, %zu event%s per frame, until ping.last_seq = %" PRIu64 "\n", per_frame,
           per_frame > 1 ? "s" : "", s->counts.distinct);
    for (int r = 0; r < opt.repeat; r++) {
        runs[r] = run_pull(s, per_frame);
        figures *f = &runs[r];
        printf("  run %d: %.0f ev/s durable (sent at %.0f ev/s), %.0f events/commit, %" PRIu64
               " deals; data.mdb %.1f B/event allocated, %.1f B/event size, %.1f B/event after "
               "stop; RssAnon %.1f MiB (peak %.1f), VmHWM %.1f MiB; stop %.0f ms\n",
               r + 1, f->rate, f->send_rate, f->events_per_commit, f->deals,
               f->disk_alloc_per_event, f->disk_size_per_event, f->disk_after_stop_per_event,
               f->rss_anon_mib, f->rss_anon_peak_mib, f->hwm_mib, f->stop_ms);
        if (per_frame == 1)
            print_tables(&f->tables, s->counts.distinct);
    }
    char buf[64], num[32];
    double rate = MEDIAN(runs, opt.repeat, rate);
    snprintf(buf, sizeof buf, "%s ev/s", thousands(rate, num, sizeof num));
    if (per_frame == 1) {
        add_summary("PULL ingest, durable, 1 event/frame", buf, ">= 400 000 ev/s",
                    rate >= TARGET_PULL_RATE);
        double alloc = MEDIAN(runs, opt.repeat, disk_alloc_per_event);
        double size = MEDIAN(runs, opt.repeat, disk_size_per_event);
        double after = MEDIAN(runs, opt.repeat, disk_after_stop_per_event);
        snprintf(buf, sizeof buf, "%.0f B/ev (size %.0f, after stop %.0f)", alloc, size, after);
        double worst = alloc > after ? alloc : after;
        bool small = s->counts.distinct <= TARGET_DISK_SMALL_EVENTS;
        double target = small ? TARGET_DISK_SMALL : TARGET_DISK_LARGE;
        add_summary("disk per event, data.mdb allocated", buf,
                    small ? "<= 250 B/ev" : "<= 200 B/ev", worst <= target);
        summarize_tables(runs);
    } else {
        add_summary("PULL ingest, durable, 100 events/frame", buf, "", -1);
    }
    return rate;
}

static double report_append(const stream *s, int inflight)
{
    figures runs[64] = {{0}};
    printf("append over DEALER, batches of 1000, %d in flight\n", inflight);
    for (int r = 0; r < opt.repeat; r++) {
        runs[r] = run_append(s, inflight);
        printf("  run %d: %.0f ev/s acknowledged, %.0f events/commit; data.mdb %.1f B/event\n",
               r + 1, runs[r].rate, runs[r].events_per_commit, runs[r].disk_alloc_per_event);
    }
    char buf[64], num[32], name[64];
    double rate = MEDIAN(runs, opt.repeat, rate);
    snprintf(buf, sizeof buf, "%s ev/s", thousands(rate, num, sizeof num));
    snprintf(name, sizeof name, "append, batches of 1000, %d in flight", inflight);
    if (inflight == 1)
        add_summary(name, buf, ">= 200 000 ev/s", rate >= TARGET_APPEND_RATE);
    else
        add_summary(name, buf, "", -1);
    return rate;
}

static void report_lookup(const stream *s)
{
    figures runs[64] = {{0}};
    printf("deal lookups during a full-speed PULL ingest (%" PRIu64 " lookups at most)\n",
           opt.lookups);
    for (int r = 0; r < opt.repeat; r++) {
        runs[r] = run_lookup(s);
        figures *f = &runs[r];
        printf("  run %d: %" PRIu64 " lookups (%" PRIu64 " not found): p50 %.3f ms, p99 %.3f ms, "
               "max %.3f ms; ingest meanwhile %.0f ev/s; idle p50 %.3f ms, p99 %.3f ms\n",
               r + 1, f->lookups, f->not_found, f->p50_ms, f->p99_ms, f->max_ms, f->rate,
               f->idle_p50_ms, f->idle_p99_ms);
    }
    char buf[64];
    double p99 = MEDIAN(runs, opt.repeat, p99_ms);
    snprintf(buf, sizeof buf, "%.3f / %.3f / %.3f ms", MEDIAN(runs, opt.repeat, p50_ms), p99,
             MEDIAN(runs, opt.repeat, max_ms));
    add_summary("deal lookup p50/p99/max during ingest", buf, "p99 < 1 ms",
                p99 < TARGET_LOOKUP_P99_MS);
}

static void report_mixed(const stream *s)
{
    figures runs[64] = {{0}};
    printf("single-event appends, one at a time, during a full-speed PULL ingest of %" PRIu64
           " events\n",
           s->counts.sent);
    for (int r = 0; r < opt.repeat; r++) {
        runs[r] = run_mixed(s);
        figures *f = &runs[r];
        printf("  run %d: %" PRIu64 " appends: p50 %.2f ms, p99 %.2f ms, max %.2f ms; ingest "
               "meanwhile %.0f ev/s, %.0f events/commit\n",
               r + 1, f->appends, f->p50_ms, f->p99_ms, f->max_ms, f->rate, f->events_per_commit);
    }
    char buf[64], num[32];
    double p99 = MEDIAN(runs, opt.repeat, p99_ms);
    snprintf(buf, sizeof buf, "%.2f / %.2f / %.2f ms", MEDIAN(runs, opt.repeat, p50_ms), p99,
             MEDIAN(runs, opt.repeat, max_ms));
    add_summary("append p50/p99/max during PULL ingest", buf, "p99 <= 20 ms",
                p99 <= TARGET_MIXED_P99_MS);
    snprintf(buf, sizeof buf, "%s ev/s",
             thousands(MEDIAN(runs, opt.repeat, rate), num, sizeof num));
    add_summary("PULL ingest during those appends", buf, "", -1);
}

#ifdef GATEWAY_PATH
static void report_gateway(const stream *s)
{
    figures runs[64] = {{0}};
    char buf[64], num[32], name[64];
    size_t single = s->events.count < opt.gateway_single ? s->events.count : opt.gateway_single;
    printf("the same events through dealflow-gateway: POST /v1/events over %d keep-alive "
           "connections, each answered after the daemon's append\n",
           opt.connections);
    printf("  the daemon's own append, batches of 1000, %d in flight:\n", opt.connections);
    for (int r = 0; r < opt.repeat; r++) {
        runs[r] = run_append(s, opt.connections);
        printf("  run %d: %.0f ev/s acknowledged, %.0f events/commit\n", r + 1, runs[r].rate,
               runs[r].events_per_commit);
    }
    snprintf(buf, sizeof buf, "%s ev/s",
             thousands(MEDIAN(runs, opt.repeat, rate), num, sizeof num));
    snprintf(name, sizeof name, "append, batches of 1000, %d in flight", opt.connections);
    add_summary(name, buf, "", -1);
    static const size_t per[2] = {1000, 1};
    for (int m = 0; m < 2; m++) {
        size_t n = per[m] == 1 ? single : s->events.count;
        printf("  gateway, %zu event%s per request, %zu events:\n", per[m], per[m] > 1 ? "s" : "",
               n);
        for (int r = 0; r < opt.repeat; r++) {
            runs[r] = run_gateway(s, n, per[m]);
            printf("  run %d: %.0f ev/s acknowledged, %" PRIu64 " requests, %.0f events/commit\n",
                   r + 1, runs[r].rate, runs[r].appends, runs[r].events_per_commit);
        }
        snprintf(buf, sizeof buf, "%s ev/s",
                 thousands(MEDIAN(runs, opt.repeat, rate), num, sizeof num));
        snprintf(name, sizeof name, "gateway, %zu event%s/request, %d conns", per[m],
                 per[m] > 1 ? "s" : "", opt.connections);
        add_summary(name, buf, "", -1);
    }
}
#endif

/* Runs the PostgreSQL job on the stream's events, its output shown as it comes;
 * returns its median events/s. */
static double run_postgres_job(const stream *s)
{
    const char *tmp = getenv("TMPDIR");
    char path[300];
    snprintf(path, sizeof path, "%s/dealflow-bench-workload-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f || fwrite(s->events.data, 1, s->events.len, f) != s->events.len || fclose(f) != 0)
        fail("%s: %s", path, strerror(errno));
    char repeat[16];
    snprintf(repeat, sizeof repeat, "%d", opt.repeat);
    int out[2];
    if (pipe(out) != 0)
        fail("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(opt.postgres_job, opt.postgres_job, "--workload", path, "--repeat", repeat,
              (char *)NULL);
        fprintf(stderr, "bench: %s: %s\n", opt.postgres_job, strerror(errno));
        _exit(127);
    }
    close(out[1]);
    FILE *lines = fdopen(out[0], "r");
    char line[512];
    double rate = 0;
    while (lines && fgets(line, sizeof line, lines)) {
        fputs(line, stdout);
        fflush(stdout);
        sscanf(line, "postgres median %lf events/s", &rate);
    }
    if (lines)
        fclose(lines);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    unlink(path);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || rate <= 0) {
        char why[128];
        it_describe_status(status, why, sizeof why);
        fprintf(stderr, "bench: the PostgreSQL job %s %s without a figure\n", opt.postgres_job,
                why);
        exit(1);
    }
    return rate;
}

/* The PostgreSQL job and dealflow's PULL ingest (one event a frame) and acked
 * appends (batches of 1 000, one in flight) on the same events, one after the
 * other, and dealflow's figures as multiples of PostgreSQL's. */
static void report_compare(const stream *s)
{
    double postgres = opt.postgres_rate;
    if (postgres > 0)
        printf("PostgreSQL job: not run, --postgres-rate %.0f events/s given\n", postgres);
    else
        postgres = run_postgres_job(s);
    double pull = report_pull(s, 1);
    double append = report_append(s, 1);
    char buf[64], num[32];
    snprintf(buf, sizeof buf, "%s ev/s%s", thousands(postgres, num, sizeof num),
             opt.postgres_rate > 0 ? " (given)" : "");
    add_summary("PostgreSQL job, batches of 1000", buf, "", -1);
    snprintf(buf, sizeof buf, "%.1fx", pull / postgres);
    add_summary("PULL ingest, 1 event/frame, / PostgreSQL", buf, ">= 15x",
                pull / postgres >= TARGET_RATIO);
    snprintf(buf, sizeof buf, "%.1fx", append / postgres);
    add_summary("append, batches of 1000, / PostgreSQL", buf, ">= 15x",
                append / postgres >= TARGET_RATIO);
}

static void report_rebuild(const stream *s)
{
    figures runs[64] = {{0}};
    printf("rebuild: %" PRIu64 " events ingested (arrays of 100), daemon stopped, derived state "
           "dropped (dealflowd --compact), daemon started again\n",
           s->counts.distinct);
    for (int r = 0; r < opt.repeat; r++) {
        runs[r] = run_rebuild(s);
        figures *f = &runs[r];
        printf("  run %d: start until ping answered %.0f ms, %.0f ev/s; the fold as logged %.0f "
               "ms, %.0f ev/s; first board (waits for the flush) %.1f ms, the next %.2f ms; "
               "%" PRIu64 " deals; then RssAnon %.1f MiB, VmHWM %.1f MiB; data.mdb %.1f "
               "B/event after stop\n",
               r + 1, f->ready_ms, f->rate, f->fold_ms, f->fold_rate, f->board_first_ms,
               f->board_p50_ms, f->deals, f->rss_anon_mib, f->hwm_mib,
               f->disk_after_stop_per_event);
        print_tables(&f->tables, f->events);
    }
    char buf[64], num[32];
    double rate = MEDIAN(runs, opt.repeat, rate);
    snprintf(buf, sizeof buf, "%s ev/s", thousands(rate, num, sizeof num));
    add_summary("rebuild from the log, until it answers", buf, ">= 1 000 000 ev/s",
                rate >= TARGET_REBUILD_RATE);
    snprintf(buf, sizeof buf, "%s ev/s",
             thousands(MEDIAN(runs, opt.repeat, fold_rate), num, sizeof num));
    add_summary("  the fold alone, as dealflowd logs it", buf, "", -1);
    snprintf(buf, sizeof buf, "%.1f ms", MEDIAN(runs, opt.repeat, board_first_ms));
    add_summary("  then the first board (the flush)", buf, "", -1);
    snprintf(buf, sizeof buf, "%.1f MiB", MEDIAN(runs, opt.repeat, rss_anon_mib));
    add_summary("  then RssAnon", buf, "", -1);
    snprintf(buf, sizeof buf, "%.0f B/ev", MEDIAN(runs, opt.repeat, disk_after_stop_per_event));
    add_summary("disk per event after the rebuild", buf, "", -1);
}

static void report_memory(void)
{
    figures runs[64] = {{0}};
    printf("memory outside the map after a workload of %" PRIu64 " deals (arrays of 100)\n",
           opt.memory_deals);
    for (int r = 0; r < opt.repeat; r++) {
        runs[r] = run_memory();
        figures *f = &runs[r];
        printf("  run %d: RssAnon %.1f MiB at the end (peak %.1f), VmHWM %.1f MiB; %.0f ev/s, "
               "%" PRIu64 " deals, %.0f events/commit, data.mdb %.1f B/event; stop %.0f ms\n",
               r + 1, f->rss_anon_mib, f->rss_anon_peak_mib, f->hwm_mib, f->rate, f->deals,
               f->events_per_commit, f->disk_alloc_per_event, f->stop_ms);
        printf("         board: first %.1f ms (waits for the flush), then p50 %.2f ms, p99 %.2f "
               "ms; metrics p50 %.2f ms, p99 %.2f ms\n",
               f->board_first_ms, f->board_p50_ms, f->board_p99_ms, f->metrics_p50_ms,
               f->metrics_p99_ms);
        for (size_t i = 0; i < NOUTLOOK; i++)
            printf("         %s: p50 %.2f ms, p99 %.2f ms\n", outlook_requests[i].name,
                   f->outlook_p50_ms[i], f->outlook_p99_ms[i]);
        print_tables(&f->tables, f->events);
    }
    char buf[64], name[64];
    double end = MEDIAN(runs, opt.repeat, rss_anon_mib);
    double peak = MEDIAN(runs, opt.repeat, rss_anon_peak_mib);
    snprintf(buf, sizeof buf, "%.1f MiB (peak %.1f)", end, peak);
    snprintf(name, sizeof name, "RssAnon, %" PRIu64 " deals", opt.memory_deals);
    add_summary(name, buf, "<= 256 MiB", (end > peak ? end : peak) <= TARGET_RSS_ANON_MIB);
    double alloc = MEDIAN(runs, opt.repeat, disk_alloc_per_event);
    double after = MEDIAN(runs, opt.repeat, disk_after_stop_per_event);
    snprintf(buf, sizeof buf, "%.0f B/ev (after stop %.0f)", alloc, after);
    snprintf(name, sizeof name, "disk per event, %" PRIu64 " deals", opt.memory_deals);
    add_summary(name, buf, "<= 200 B/ev", (alloc > after ? alloc : after) <= TARGET_DISK_LARGE);
    summarize_tables(runs);
    snprintf(buf, sizeof buf, "p50 %.2f / p99 %.2f ms", MEDIAN(runs, opt.repeat, board_p50_ms),
             MEDIAN(runs, opt.repeat, board_p99_ms));
    snprintf(name, sizeof name, "board, %" PRIu64 " deals", opt.memory_deals);
    add_summary(name, buf, "p99 <= 1 ms",
                MEDIAN(runs, opt.repeat, board_p99_ms) <= TARGET_FIGURES_P99_MS);
    snprintf(buf, sizeof buf, "p50 %.2f / p99 %.2f ms", MEDIAN(runs, opt.repeat, metrics_p50_ms),
             MEDIAN(runs, opt.repeat, metrics_p99_ms));
    snprintf(name, sizeof name, "metrics, %" PRIu64 " deals", opt.memory_deals);
    add_summary(name, buf, "p99 <= 1 ms",
                MEDIAN(runs, opt.repeat, metrics_p99_ms) <= TARGET_FIGURES_P99_MS);
    for (size_t i = 0; i < NOUTLOOK; i++) {
        double p50[64], p99[64];
        for (int r = 0; r < opt.repeat; r++) {
            p50[r] = runs[r].outlook_p50_ms[i];
            p99[r] = runs[r].outlook_p99_ms[i];
        }
        qsort(p50, (size_t)opt.repeat, sizeof p50[0], compare_double);
        qsort(p99, (size_t)opt.repeat, sizeof p99[0], compare_double);
        snprintf(buf, sizeof buf, "p50 %.2f / p99 %.2f ms", p50[opt.repeat / 2],
                 p99[opt.repeat / 2]);
        snprintf(name, sizeof name, "%s, %" PRIu64 " deals", outlook_requests[i].name,
                 opt.memory_deals);
        bool series = strcmp(outlook_requests[i].op, "metrics") == 0 && outlook_requests[i].by;
        if (series)
            add_summary(name, buf, "milliseconds", -1);
        else
            add_summary(name, buf, "p99 <= 1 ms", p99[opt.repeat / 2] <= TARGET_FIGURES_P99_MS);
    }
}

/* Writes the events the pull phase sends (--events, --deals, --seed), one msgpack map
 * after the other, so that another store can be loaded with the same bytes. */
static int dump_workload(const char *path)
{
    stream s;
    stream_generate(&s, opt.seed, opt.deals, opt.events);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s.events.data, 1, s.events.len, f) != s.events.len || fclose(f) != 0) {
        fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("wrote %" PRIu64 " events (%" PRIu64 " distinct, %" PRIu64 " duplicates), %.1f "
           "bytes each, to %s\n",
           s.counts.sent, s.counts.distinct, s.counts.duplicates,
           (double)s.counts.bytes / (double)s.counts.sent, path);
    frames_free(&s.events);
    return 0;
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    if (opt.dump_workload)
        return dump_workload(opt.dump_workload);
    signal(SIGPIPE, SIG_IGN);
    ctx = zmq_ctx_new();
    if (!ctx) {
        fprintf(stderr, "bench: zmq_ctx_new failed\n");
        return 1;
    }
    printf("dealflow benchmark: %s, %" PRIu64 " events over %" PRIu64 " deals, seed %" PRIu64
           ", %d run%s each%s\n",
           opt.daemon_path, opt.events, opt.deals, opt.seed, opt.repeat, opt.repeat > 1 ? "s" : "",
           opt.curve ? ", CURVE on every socket" : "");
    stream s = {0};
    if (phase_on("pull") || phase_on("append") || phase_on("lookup") || phase_on("mixed") ||
        phase_on("gateway") || phase_on("rebuild") || phase_on("compare")) {
        int64_t t0 = now_ns();
        stream_generate(&s, opt.seed, opt.deals, opt.events);
        printf("workload: %" PRIu64 " events (%" PRIu64 " distinct, %" PRIu64
               " duplicates, %" PRIu64 " late), %.1f bytes each, %" PRIu64
               " deals begun; generated in %.2f s\n",
               s.counts.sent, s.counts.distinct, s.counts.duplicates, s.counts.late,
               (double)s.counts.bytes / (double)s.counts.sent, s.counts.deals_started,
               (now_ns() - t0) / 1e9);
    }
    if (phase_on("pull")) {
        report_pull(&s, 1);
        report_pull(&s, 100);
    }
    if (phase_on("append")) {
        report_append(&s, 1);
        report_append(&s, opt.inflight);
    }
    if (phase_on("lookup"))
        report_lookup(&s);
    if (phase_on("mixed"))
        report_mixed(&s);
#ifdef GATEWAY_PATH
    if (phase_on("gateway")) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        report_gateway(&s);
        curl_global_cleanup();
    }
#endif
    if (phase_on("compare"))
        report_compare(&s);
    if (phase_on("rebuild"))
        report_rebuild(&s);
    if (phase_on("memory"))
        report_memory();
    frames_free(&s.events);

    printf("\nsummary (median of %d run%s)\n", opt.repeat, opt.repeat > 1 ? "s" : "");
    printf("  %-42s %-36s %-16s %s\n", "figure", "measured", "target", "");
    bool all_met = true;
    for (int i = 0; i < nsummary; i++) {
        printf("  %-42s %-36s %-16s %s\n", summary[i].figure, summary[i].measured,
               summary[i].target, summary[i].verdict);
        all_met &= strcmp(summary[i].verdict, "MISSED") != 0;
    }
    zmq_ctx_term(ctx);
    printf("%s\n", all_met ? "every target met" : "some targets missed");
    return 0;
}
