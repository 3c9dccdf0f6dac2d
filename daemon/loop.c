/* loop.c: ZeroMQ inside libuv. ZMQ_FD is edge-triggered and only says that
 * something changed, so the poll callback merely wakes the loop; a prepare
 * handle looks at ZMQ_EVENTS before the loop blocks and keeps it from
 * blocking (an idle handle) while a socket has messages; a check handle
 * drains the sockets, a bounded number of messages per turn. No edge can be
 * lost that way, also after sends made elsewhere. */
#include "loop.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "api.h"
#include "descriptors.h"
#include "ingest.h"
#include "notify.h"
#include "readiness.h"

static bool readable(void *socket)
{
    int events = 0;
    size_t len = sizeof(events);
    if (zmq_getsockopt(socket, ZMQ_EVENTS, &events, &len) != 0)
        return false;
    return events & ZMQ_POLLIN;
}

/* After a signal, ingest is still read until it is empty (what is queued
 * counts as received), for at most DRAIN_MS if producers keep sending. */
#define DRAIN_MS 5000

static bool ingest_open(const df_daemon *d)
{
    /* while the store is full, ZeroMQ holds producers back */
    return !d->ingest_done && df_ingest_has_room(d) && !df_writer_store_full(d->writer);
}

static bool api_open(const df_daemon *d)
{
    return !d->draining && df_appends_have_room(d);
}

#define HANDLES 10

/* Every libuv handle of the daemon, for starting and closing them together. */
static void list_handles(df_daemon *d, uv_handle_t *out[HANDLES])
{
    uv_handle_t *handles[HANDLES] = {
        (uv_handle_t *)&d->ingest_poll, (uv_handle_t *)&d->api_poll,
        (uv_handle_t *)&d->prepare,     (uv_handle_t *)&d->check,
        (uv_handle_t *)&d->idle,        (uv_handle_t *)&d->writer_done,
        (uv_handle_t *)&d->sigterm,     (uv_handle_t *)&d->sigint,
        (uv_handle_t *)&d->sighup,      (uv_handle_t *)&d->housekeeping,
    };
    memcpy(out, handles, sizeof(handles));
}

static void close_handles(df_daemon *d)
{
    uv_handle_t *handles[HANDLES];
    list_handles(d, handles);
    for (size_t i = 0; i < HANDLES; i++)
        if (!uv_is_closing(handles[i]))
            uv_close(handles[i], NULL);
    if (d->auth && !uv_is_closing((uv_handle_t *)&d->zap_poll))
        uv_close((uv_handle_t *)&d->zap_poll, NULL);
}

static bool appends_recent(const df_daemon *d)
{
    return d->appends->count > 0 || df_now_ms() - d->appends_seen_ms < DF_APPENDS_RECENT_MS;
}

/* The batch the writer takes next, queued behind the one it records if it
 * is busy: appends first, so that an append waits for one ingest commit at
 * most; but after an append batch, a waiting ingest batch, so that a steady
 * stream of appends cannot starve ingest. While appends come, an ingest
 * batch is not queued behind another, where an append arriving next would
 * wait for both. NULL when nothing waits. */
static df_batch **next_for_writer(df_daemon *d)
{
    bool appends = d->appends->count > 0, ingest = d->filling->count > 0;
    if (appends && !(ingest && d->appends_went_last))
        return &d->appends;
    if (ingest && !d->appends_went_last && appends_recent(d) && !df_writer_idle(d->writer))
        return NULL;
    return ingest ? &d->filling : NULL;
}

/* The smallest short ingest batch: below it, the fixed cost of a commit
 * would be most of the writer's time. */
#define SHORT_INGEST_MIN 64
/* Where the estimate starts, before the first ingest batch measured it. */
#define SHORT_INGEST_FIRST 1000

/* Learns from an ingest batch how many events the writer commits in about
 * DF_SHORT_COMMIT_MS, from the batch's events and the writer's time on it
 * (which is what an append queued behind it waits at most). A batch that
 * was not full and was quick says nothing of larger ones; a change is at
 * most twofold, so that one slow commit (the writer may flush before it)
 * does not throw the estimate far. */
static void measure_ingest(df_daemon *d, const df_batch *done)
{
    uint64_t elapsed = done->writer_ns + 1;
    uint64_t target = DF_SHORT_COMMIT_MS * 1000000ull;
    if (done->count < d->short_ingest && elapsed <= target)
        return;
    uint64_t fit = done->count * target / elapsed;
    size_t n = d->short_ingest;
    n = fit > 2 * n ? 2 * n : fit < n / 2 ? n / 2 : (size_t)fit;
    d->short_ingest = n < SHORT_INGEST_MIN  ? SHORT_INGEST_MIN
                      : n > DF_INGEST_LIMIT ? DF_INGEST_LIMIT
                                            : n;
}

/* Ingest batches are short while appends come, so that they do not wait
 * long behind one. */
static void set_ingest_limit(df_daemon *d)
{
    d->ingest_limit = appends_recent(d) ? d->short_ingest : DF_INGEST_LIMIT;
}

/* Whether a batch holds ingest's events (an append's have their request). */
static bool of_ingest(const df_batch *b)
{
    return b->count > 0 && !b->items[0].request;
}

/* Answers and publishes what the writer finished, in order. */
static void finish(df_daemon *d)
{
    df_batch *done[DF_WRITER_HOLDS];
    size_t n = 0;
    while (n < DF_WRITER_HOLDS && (done[n] = df_writer_take(d->writer)) != NULL)
        n++;
    for (size_t i = 0; i < n; i++) {
        df_rejections_note(&d->rejections, done[i]);
        df_rejections_log(&d->rejections, df_now_ms(), false);
        if (done[i]->failure && !done[i]->store_full)
            df_log("%zu events were not recorded: %s", done[i]->count, done[i]->failure_message);
        else if (!done[i]->failure && of_ingest(done[i]))
            measure_ingest(d, done[i]);
        df_api_complete(d, done[i]);
    }
    /* each held batch's events go ahead of what is filling: the later
     * batch's first, so that the earlier one's end up before them */
    for (size_t i = n; i-- > 0;)
        if (done[i]->store_full)
            df_ingest_hold(d, done[i]);
    for (size_t i = 0; i < n; i++) {
        df_notify_moves(d, done[i]);
        df_batch_clear(done[i]);
        /* one batch is kept for reuse, unless a burst made it large */
        if (!d->spare && done[i]->arena_cap <= DF_APPENDS_BYTES_LIMIT)
            d->spare = done[i];
        else
            df_batch_free(done[i]);
    }
}

/* Answers and publishes what the writer finished, then queues the next
 * batch if there is one and the writer can take it. */
static void advance(df_daemon *d)
{
    finish(d);
    df_stale *stale = NULL;
    size_t nstale = df_writer_take_stale(d->writer, &stale);
    df_notify_stale(d, stale, nstale);
    free(stale);
    df_api_answer_waiting(d);
    df_batch **next = df_writer_can_take(d->writer) ? next_for_writer(d) : NULL;
    if (next) {
        df_batch *empty = d->spare ? d->spare : df_batch_new();
        if (empty) {
            d->spare = NULL;
            df_writer_submit(d->writer, *next);
            d->appends_went_last = next == &d->appends;
            *next = empty;
        }
    }
    set_ingest_limit(d);
    if (d->draining && d->ingest_done && d->filling->count == 0 && d->appends->count == 0 &&
        !df_api_waiting(d) && df_writer_idle(d->writer))
        close_handles(d);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    /* only wakes the loop: the check handle reads */
    (void)handle;
    (void)status;
    (void)events;
}

static void on_idle(uv_idle_t *handle)
{
    (void)handle;
}

static void on_prepare(uv_prepare_t *handle)
{
    df_daemon *d = handle->data;
    bool work = (ingest_open(d) && readable(d->ingest)) || (api_open(d) && readable(d->api)) ||
                (d->draining && !d->ingest_done) || (d->auth && readable(df_auth_socket(d->auth)));
    if (work)
        uv_idle_start(&d->idle, on_idle);
    else
        uv_idle_stop(&d->idle);
}

static void on_check(uv_check_t *handle)
{
    df_daemon *d = handle->data;
    /* handshakes first: a connection waits for its answer */
    if (d->auth)
        df_auth_serve(d->auth, DF_TURN_MESSAGES);
    advance(d);
    if (api_open(d))
        df_api_drain(d, DF_TURN_MESSAGES);
    set_ingest_limit(d);
    if (ingest_open(d))
        df_ingest_drain(d, DF_TURN_MESSAGES);
    if (d->draining && !d->ingest_done &&
        ((ingest_open(d) && !readable(d->ingest)) || df_now_ms() > d->drain_deadline)) {
        d->ingest_done = true;
        uv_poll_stop(&d->ingest_poll);
    }
    advance(d);
}

static void on_writer_done(uv_async_t *handle)
{
    advance(handle->data);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    df_daemon *d = handle->data;
    if (d->draining)
        return;
    df_log("%s: committing and answering what was received, then exiting",
           signum == SIGTERM ? "SIGTERM" : "SIGINT");
    /* requests already queued count as received (as far as memory allows);
     * later ones are not read */
    for (int turn = 0; turn < 64 && api_open(d) && df_api_drain(d, DF_TURN_MESSAGES) > 0; turn++)
        ;
    d->draining = true;
    d->drain_started_ms = df_now_ms();
    d->drain_deadline = d->drain_started_ms + DRAIN_MS;
    df_readiness_stopping("stopping: committing and answering what was received");
    uv_poll_stop(&d->api_poll);
    advance(d);
}

/* SIGHUP reloads the clients file; without keys there is nothing to reload. */
static void on_reload(uv_signal_t *handle, int signum)
{
    df_daemon *d = handle->data;
    (void)signum;
    if (d->auth)
        df_auth_reload(d->auth);
    else
        df_log("SIGHUP: no --clients to reload");
}

/* The watchdog is told every second that the loop turns (WatchdogSec= of
 * 2 s or more, then), and the status when writes stop or resume. */
static void tell_service_manager(df_daemon *d)
{
    bool full = df_writer_store_full(d->writer);
    if (d->watchdog_usec)
        df_readiness_alive();
    if (full != d->told_full && !d->draining)
        df_readiness_status(full ? "writes stopped: the disk or the store's map is full; "
                                   "reads are served"
                                 : "serving");
    d->told_full = full;
}

static void on_housekeeping(uv_timer_t *handle)
{
    df_daemon *d = handle->data;
    tell_service_manager(d);
    df_rejections_log(&d->rejections, df_now_ms(), false);
    if (!d->draining)
        df_writer_request_stale_check(d->writer);
    if (++d->ticks % 60 == 0)
        df_store_check_readers(d->store);
    df_descriptors_check(&d->descriptors);
}

static int fd_of(void *socket, uv_os_sock_t *fd)
{
    size_t len = sizeof(*fd);
    return zmq_getsockopt(socket, ZMQ_FD, fd, &len);
}

static int run(df_daemon *d)
{
    uv_os_sock_t ingest_fd, api_fd;
    if (fd_of(d->ingest, &ingest_fd) != 0 || fd_of(d->api, &api_fd) != 0)
        return DF_EINTERNAL;
    uv_handle_t *all[HANDLES];
    list_handles(d, all);
    if (uv_poll_init_socket(d->loop, &d->ingest_poll, ingest_fd) != 0 ||
        uv_poll_init_socket(d->loop, &d->api_poll, api_fd) != 0 ||
        uv_prepare_init(d->loop, &d->prepare) != 0 || uv_check_init(d->loop, &d->check) != 0 ||
        uv_idle_init(d->loop, &d->idle) != 0 ||
        uv_async_init(d->loop, &d->writer_done, on_writer_done) != 0 ||
        uv_signal_init(d->loop, &d->sigterm) != 0 || uv_signal_init(d->loop, &d->sigint) != 0 ||
        uv_signal_init(d->loop, &d->sighup) != 0 || uv_timer_init(d->loop, &d->housekeeping) != 0)
        return DF_EINTERNAL;
    uv_os_sock_t zap_fd;
    if (d->auth && (fd_of(df_auth_socket(d->auth), &zap_fd) != 0 ||
                    uv_poll_init_socket(d->loop, &d->zap_poll, zap_fd) != 0))
        return DF_EINTERNAL;
    for (size_t i = 0; i < HANDLES; i++)
        all[i]->data = d;
    d->zap_poll.data = d;
    uv_poll_start(&d->ingest_poll, UV_READABLE, on_poll);
    uv_poll_start(&d->api_poll, UV_READABLE, on_poll);
    uv_prepare_start(&d->prepare, on_prepare);
    uv_check_start(&d->check, on_check);
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sighup, on_reload, SIGHUP);
    if (d->auth)
        uv_poll_start(&d->zap_poll, UV_READABLE, on_poll);
    uv_timer_start(&d->housekeeping, on_housekeeping, 1000, 1000);
    uv_run(d->loop, UV_RUN_DEFAULT);
    return 0;
}

int df_loop_run(df_daemon *d)
{
    /* the appends batch lives as long as the loop: everything in it is
     * committed and answered before the loop ends */
    if (!d->appends && !(d->appends = df_batch_new()))
        return DF_EINTERNAL;
    d->short_ingest = SHORT_INGEST_FIRST;
    d->ingest_limit = DF_INGEST_LIMIT;
    d->appends_seen_ms = INT64_MIN / 2; /* no append yet */
    int rc = run(d);
    df_batch_free(d->appends);
    d->appends = NULL;
    return rc;
}
