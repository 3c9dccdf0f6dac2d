/* main.c: dealflowd's command line, start-up and shutdown. Start-up errors
 * (an address in use, a data directory that cannot be used) are logged and
 * end the process with status 1; a bad option or key file is status 2;
 * after SIGTERM or SIGINT it exits 0. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon.h"
#include "descriptors.h"
#include "loop.h"
#include "readiness.h"
#include "read_state.h"
#include "reply.h"
#include "verify.h"
#include "version.h"

enum { EXIT_STARTUP = 1, EXIT_USAGE = 2 };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dealflowd [options]\n"
            "\n"
            "The dealflow event store: records deal events and answers for them.\n"
            "\n"
            "  --ingest EP        PULL endpoint for fire-and-forget events (default %s)\n"
            "  --api EP           ROUTER endpoint for requests (default %s)\n"
            "  --notify EP        PUB endpoint for notifications (default %s)\n"
            "  --data DIR         data directory, created if missing (default %s)\n"
            "  --max-message N    largest frame accepted, in bytes (default %u)\n"
            "  --map-size MIB     address space reserved for the store (default %u)\n"
            "  --max-future MS    refuse an event whose `at` is further ahead of its\n"
            "                     arrival (default %lld, one day)\n"
            "  --curve-key FILE   the server's CURVE secret key (Z85, first line); every\n"
            "                     socket then admits only the keys of --clients\n"
            "  --clients FILE     the clients: `ROLE PUBLIC_KEY NAME` a line, roles\n"
            "                     producer, reader, admin (SIGHUP reloads it)\n"
            "  --insecure         allow a non-loopback endpoint without --curve-key\n"
            "  --verify           check the store in --data against its digests and exit\n"
            "  --compact          rewrite the stopped store in --data without its freed pages "
            "and exit\n"
            "  --version          print the version and exit\n"
            "  --help             print this help and exit\n",
            DF_DEFAULT_INGEST, DF_DEFAULT_API, DF_DEFAULT_NOTIFY, DF_DEFAULT_DATA,
            DF_DEFAULT_MAX_MESSAGE, DF_DEFAULT_MAP_MIB, (long long)DF_DEFAULT_MAX_FUTURE);
}

static bool parse_size(const char *s, size_t min, size_t max, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = (size_t)v;
    return true;
}

static bool parse_ms(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return false;
    *out = v;
    return true;
}

/* Returns 0, or EXIT_USAGE after saying what is wrong. */
static int parse_options(int argc, char **argv, df_options *opt, bool *verify, bool *compact)
{
    static const struct option longs[] = {
        {"ingest", required_argument, NULL, 'i'},
        {"api", required_argument, NULL, 'a'},
        {"notify", required_argument, NULL, 'n'},
        {"data", required_argument, NULL, 'd'},
        {"max-message", required_argument, NULL, 'm'},
        {"map-size", required_argument, NULL, 's'},
        {"max-future", required_argument, NULL, 'f'},
        {"version", no_argument, NULL, 'V'},
        {"verify", no_argument, NULL, 'v'},
        {"curve-key", required_argument, NULL, 'k'},
        {"clients", required_argument, NULL, 'c'},
        {"insecure", no_argument, NULL, 'I'},
        {"compact", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *opt = (df_options){DF_DEFAULT_INGEST,
                        DF_DEFAULT_API,
                        DF_DEFAULT_NOTIFY,
                        DF_DEFAULT_DATA,
                        DF_DEFAULT_MAX_MESSAGE,
                        DF_DEFAULT_MAP_MIB,
                        DF_DEFAULT_MAX_FUTURE,
                        NULL,
                        NULL,
                        false};
    int c;
    opterr = 0; /* its messages would not start with our name */
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'i':
            opt->ingest = optarg;
            break;
        case 'a':
            opt->api = optarg;
            break;
        case 'n':
            opt->notify = optarg;
            break;
        case 'd':
            opt->data = optarg;
            break;
        case 'm':
            if (!parse_size(optarg, 1024, 256u << 20, &opt->max_message)) {
                fprintf(stderr, "dealflowd: --max-message takes 1024..268435456 bytes\n");
                return EXIT_USAGE;
            }
            break;
        case 's':
            if (!parse_size(optarg, 16, 1u << 24, &opt->map_mib)) {
                fprintf(stderr, "dealflowd: --map-size takes 16..16777216 MiB\n");
                return EXIT_USAGE;
            }
            break;
        case 'f':
            if (!parse_ms(optarg, &opt->max_future)) {
                fprintf(stderr, "dealflowd: --max-future takes 0..9223372036854775807 ms\n");
                return EXIT_USAGE;
            }
            break;
        case 'v':
            *verify = true;
            break;
        case 'C':
            *compact = true;
            break;
        case 'k':
            opt->curve_key = optarg;
            break;
        case 'c':
            opt->clients = optarg;
            break;
        case 'I':
            opt->insecure = true;
            break;
        case 'V':
            printf("dealflowd %s\n", DF_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            fprintf(stderr, "dealflowd: unknown option or missing value: %s\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dealflowd: unexpected argument `%s`\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!opt->curve_key != !opt->clients) {
        fprintf(stderr, "dealflowd: --curve-key and --clients go together: the key makes the "
                        "sockets CURVE servers, the clients file says who may connect\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* Endpoints only this machine can reach. */
static bool loopback(const char *endpoint)
{
    static const char *const local[] = {"tcp://127.", "tcp://[::1]:", "tcp://localhost:", "ipc://",
                                        "inproc://"};
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        if (strncmp(endpoint, local[i], strlen(local[i])) == 0)
            return true;
    return false;
}

/* Without keys, anyone who reaches an endpoint may record and read: an
 * endpoint open to the network must be asked for. Returns 0 or EXIT_USAGE. */
static int check_open_binds(const df_options *opt)
{
    const char *endpoints[] = {opt->ingest, opt->api, opt->notify};
    bool open = false;
    if (opt->curve_key)
        return 0;
    for (size_t i = 0; i < 3; i++) {
        if (loopback(endpoints[i]))
            continue;
        open = true;
        if (!opt->insecure) {
            fprintf(stderr,
                    "dealflowd: %s is not a loopback endpoint and there are no keys: anyone "
                    "who reaches it could record and read; give --curve-key and --clients, "
                    "or --insecure to accept that\n",
                    endpoints[i]);
            return EXIT_USAGE;
        }
    }
    if (open)
        df_log("warning: --insecure: endpoints open to the network accept anyone, without keys");
    return 0;
}

/* Messages ZeroMQ may queue per peer. What a queue holds is the daemon's
 * memory, so the inbound queues stay short (a producer past it waits); the
 * PUB queue is longer because a subscriber past it misses notifications
 * (and repairs the gap with `replay`). */
#define QUEUE_MESSAGES        1000
#define QUEUE_BYTES           (64u << 20)
#define NOTIFY_QUEUE_MESSAGES 10000

/* Draft in libzmq 4.3: a library built without drafts refuses it, and its
 * CURVE handshakes always ask the ZAP handler, which checks the domain. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

/* Sets one option of a socket being opened; a failure is logged. */
static bool set_option(void *s, const char *role, int option, const char *name, const void *value,
                       size_t len)
{
    if (zmq_setsockopt(s, option, value, len) == 0)
        return true;
    df_log("cannot set %s on the %s socket: %s", name, role, zmq_strerror(errno));
    return false;
}

static void *open_socket(df_daemon *d, int type, const char *role, const char *endpoint)
{
    void *s = zmq_socket(d->zmq, type);
    /* frames up to 16 x --max-message are read and refused with too_large;
     * past that ZeroMQ drops the peer without reading them */
    int64_t hard_limit = (int64_t)d->opt.max_message * 16;
    int linger = type == ZMQ_PULL ? 0 : 2000, one = 1;
    /* inbound, about QUEUE_BYTES per peer, whatever --max-message is. The
     * api's reply queue is as long, so that the replies to what one peer may
     * have queued fit (a full one drops what follows); the bytes of large
     * replies waiting in all of them are bounded by the api (api.c) */
    int hwm = (int)(QUEUE_BYTES / d->opt.max_message);
    if (hwm > QUEUE_MESSAGES)
        hwm = QUEUE_MESSAGES;
    if (hwm < 16)
        hwm = 16;
    if (type == ZMQ_PUB)
        hwm = NOTIFY_QUEUE_MESSAGES;
    if (!s) {
        df_log("cannot create the %s socket: %s", role, zmq_strerror(errno));
        return NULL;
    }
    if (!set_option(s, role, ZMQ_LINGER, "ZMQ_LINGER", &linger, sizeof(linger)) ||
        !set_option(s, role, ZMQ_SNDHWM, "ZMQ_SNDHWM", &hwm, sizeof(hwm)) ||
        !set_option(s, role, ZMQ_RCVHWM, "ZMQ_RCVHWM", &hwm, sizeof(hwm)) ||
        (type != ZMQ_PUB &&
         !set_option(s, role, ZMQ_MAXMSGSIZE, "ZMQ_MAXMSGSIZE", &hard_limit, sizeof(hard_limit))) ||
        (type == ZMQ_ROUTER &&
         !set_option(s, role, ZMQ_ROUTER_MANDATORY, "ZMQ_ROUTER_MANDATORY", &one, sizeof(one)))) {
        zmq_close(s);
        return NULL;
    }
    if (d->auth) {
        int server = 1;
        if (!set_option(s, role, ZMQ_CURVE_SERVER, "ZMQ_CURVE_SERVER", &server, sizeof(server)) ||
            !set_option(s, role, ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", d->secret_key, 40) ||
            !set_option(s, role, ZMQ_ZAP_DOMAIN, "ZMQ_ZAP_DOMAIN", role, strlen(role))) {
            zmq_close(s);
            return NULL;
        }
    }
    if (d->auth)
        (void)zmq_setsockopt(s, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof(one));
    if (zmq_bind(s, endpoint) != 0) {
        df_log("cannot listen for %s on %s: %s", role, endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

static void writer_done(void *ctx)
{
    uv_async_send(&((df_daemon *)ctx)->writer_done);
}

static void close_sockets(df_daemon *d)
{
    if (d->ingest)
        zmq_close(d->ingest);
    if (d->api)
        zmq_close(d->api);
    if (d->notify)
        zmq_close(d->notify);
    df_auth_close(d->auth);
    if (d->zmq)
        zmq_ctx_term(d->zmq);
}

/* `--compact`: the store is opened as the daemon opens it, so that one
 * running holds the lock and the compaction is refused. */
static int compact_store(const char *dir, size_t map_mib)
{
    df_store *st;
    df_error err;
    if (df_store_open(&st, dir, map_mib, &err) != 0) {
        fprintf(stderr, "dealflowd: %s\n", err.message);
        return EXIT_STARTUP;
    }
    uint64_t before = df_store_disk_bytes(st);
    int rc = df_store_compact(st, dir, &err);
    df_store_close(st);
    if (rc != 0) {
        fprintf(stderr, "dealflowd: %s\n", err.message);
        return EXIT_STARTUP;
    }
    printf("compacted the store in %s (%llu bytes on disk before)\n", dir,
           (unsigned long long)before);
    return 0;
}

/* The events of the log after the flushed derived state: what start-up
 * folds back into memory (all of them after a rebuild). */
static uint64_t events_to_fold(df_store *st)
{
    MDB_txn *txn;
    uint64_t derived = 0, last = 0;
    if (df_store_read_begin(st, &txn) != 0)
        return 0;
    last = df_store_log_last(st, txn);
    if (df_store_meta_get(st, txn, "derived_seq", &derived) != 0)
        derived = last;
    df_store_read_end(st, txn);
    return last > derived ? last - derived : 0;
}

static uint64_t ms_since(uint64_t start_ns)
{
    return (uv_hrtime() - start_ns) / 1000000;
}

int main(int argc, char **argv)
{
    static df_daemon daemon;
    df_daemon *d = &daemon;
    df_error err;
    int status = EXIT_STARTUP;
    bool verify = false, compact = false;
    int rc = parse_options(argc, argv, &d->opt, &verify, &compact);
    if (rc)
        return rc;
    if (verify)
        return df_verify(d->opt.data);
    if (compact)
        return compact_store(d->opt.data, d->opt.map_mib);
    if ((rc = check_open_binds(&d->opt)) != 0)
        return rc;
    char why[512];
    if (d->opt.curve_key &&
        !df_auth_read_secret(d->opt.curve_key, d->secret_key, why, sizeof(why))) {
        fprintf(stderr, "dealflowd: %s\n", why);
        return EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    df_descriptors_raise(&d->descriptors);
    d->started_ms = df_now_ms();
    d->loop = uv_default_loop();
    if (df_store_open(&d->store, d->opt.data, d->opt.map_mib, &err) != 0) {
        df_log("%s", err.message);
        return EXIT_STARTUP;
    }
    d->zmq = zmq_ctx_new();
    d->filling = df_batch_new();
    d->read_state = df_read_state_new();
    if (!d->filling || !d->read_state) {
        df_log("out of memory");
        goto out;
    }
    if (d->zmq && d->opt.curve_key &&
        !(d->auth = df_auth_open(d->zmq, d->opt.clients, why, sizeof(why)))) {
        fprintf(stderr, "dealflowd: %s\n", why);
        status = EXIT_USAGE;
        goto out;
    }
    bool opened = d->zmq && (d->ingest = open_socket(d, ZMQ_PULL, DF_ZAP_INGEST, d->opt.ingest)) &&
                  (d->api = open_socket(d, ZMQ_ROUTER, DF_ZAP_API, d->opt.api)) &&
                  (d->notify = open_socket(d, ZMQ_PUB, DF_ZAP_NOTIFY, d->opt.notify));
    /* the sockets hold their copies of the secret key; this one is not needed again */
    explicit_bzero(d->secret_key, sizeof(d->secret_key));
    if (!opened)
        goto out;
    uint64_t to_fold = events_to_fold(d->store), fold_start = uv_hrtime();
    df_readiness_status("folding %llu events of the log back into memory",
                        (unsigned long long)to_fold);
    if (df_writer_start(&d->writer, d->store, writer_done, d, &err) != 0) {
        df_log("%s", err.message);
        goto out;
    }
    df_log("folded %llu events of the log back into memory in %llu ms", (unsigned long long)to_fold,
           (unsigned long long)ms_since(fold_start));
    df_writer_set_max_future(d->writer, d->opt.max_future);
    df_writer_counters c = df_writer_counters_get(d->writer);
    df_log("dealflowd %s: data %s, last seq %llu; ingest %s, api %s, notify %s", DF_VERSION,
           d->opt.data, (unsigned long long)c.committed_seq, d->opt.ingest, d->opt.api,
           d->opt.notify);
    if ((d->watchdog_usec = df_readiness_watchdog_usec()) != 0 && d->watchdog_usec < 2000000)
        df_log("warning: WatchdogSec= is under 2 s, but the watchdog is told once a second");
    /* the loop's first turn answers what ZeroMQ queued meanwhile */
    df_readiness_ready("serving");
    if (df_loop_run(d) != 0) {
        df_log("cannot start the event loop");
        goto out;
    }
    status = 0;
    df_rejections_log(&d->rejections, df_now_ms(), true);
    int64_t drained_ms = df_now_ms();
    uint64_t last_seq = df_writer_counters_get(d->writer).committed_seq;
    /* the writer flushes the derived state it holds before it ends */
    df_writer_stop(d->writer);
    d->writer = NULL;
    df_log("stopped: everything received is committed and answered (last seq %llu); draining "
           "took %lld ms, the last flush %lld ms",
           (unsigned long long)last_seq, (long long)(drained_ms - d->drain_started_ms),
           (long long)(df_now_ms() - drained_ms));
out:
    df_writer_stop(d->writer);
    close_sockets(d);
    df_batch_free(d->filling);
    df_batch_free(d->spare);
    df_read_state_free(d->read_state);
    df_store_close(d->store);
    uv_loop_close(d->loop);
    return status;
}
