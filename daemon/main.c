/* main.c: dealflowd's command line, start-up and shutdown. Start-up errors
 * (an address in use, a data directory that cannot be used) are logged and
 * end the process with status 1; after SIGTERM or SIGINT it exits 0. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon.h"
#include "descriptors.h"
#include "loop.h"
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
        {"compact", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *opt = (df_options){DF_DEFAULT_INGEST,    DF_DEFAULT_API,         DF_DEFAULT_NOTIFY,
                        DF_DEFAULT_DATA,      DF_DEFAULT_MAX_MESSAGE, DF_DEFAULT_MAP_MIB,
                        DF_DEFAULT_MAX_FUTURE};
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
        case 'c':
            *compact = true;
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
    return 0;
}

/* Messages ZeroMQ may queue per peer. What a queue holds is the daemon's
 * memory, so the inbound queues stay short (a producer past it waits); the
 * PUB queue is longer because a subscriber past it misses notifications
 * (and repairs the gap with `replay`). */
#define QUEUE_MESSAGES        1000
#define QUEUE_BYTES           (64u << 20)
#define NOTIFY_QUEUE_MESSAGES 10000

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
    signal(SIGPIPE, SIG_IGN);
    df_descriptors_raise();
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
    if (!d->zmq || !(d->ingest = open_socket(d, ZMQ_PULL, "ingest", d->opt.ingest)) ||
        !(d->api = open_socket(d, ZMQ_ROUTER, "api", d->opt.api)) ||
        !(d->notify = open_socket(d, ZMQ_PUB, "notify", d->opt.notify)))
        goto out;
    if (df_writer_start(&d->writer, d->store, writer_done, d, &err) != 0) {
        df_log("%s", err.message);
        goto out;
    }
    df_writer_set_max_future(d->writer, d->opt.max_future);
    df_writer_counters c = df_writer_counters_get(d->writer);
    df_log("dealflowd %s: data %s, last seq %llu; ingest %s, api %s, notify %s", DF_VERSION,
           d->opt.data, (unsigned long long)c.committed_seq, d->opt.ingest, d->opt.api,
           d->opt.notify);
    if (df_loop_run(d) != 0) {
        df_log("cannot start the event loop");
        goto out;
    }
    status = 0;
    df_log("stopped: everything received is committed and answered (last seq %llu)",
           (unsigned long long)df_writer_counters_get(d->writer).committed_seq);
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
