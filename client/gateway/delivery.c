/* delivery.c: webhooks out: one worker thread per endpoint, each with its own client of the
 * daemon and its own subscription, POSTing what its topics match with libcurl, in seq order
 * and at least once, retrying with backoff and keeping its position on disk. */
#define _GNU_SOURCE /* O_CLOEXEC, O_DIRECTORY */
#include "delivery.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <msgpack.h>
#include <sodium.h>

#include "outbox.h"
#include "signature.h"

#define LOG_PREFIX "dealflow-gateway: "
/* How long a worker waits for a notification before it looks at the stop flag again. */
#define POLL_MS 200
/* One request of a worker's client: a stop waits for at most this much. */
#define DAEMON_TIMEOUT_MS  2000
#define CONNECT_TIMEOUT_MS 5000
#define REQUEST_TIMEOUT_MS 10000
/* The longest wait before asking a daemon that did not answer again. */
#define DAEMON_RETRY_MAX_MS 5000
/* How often an idle or failing endpoint asks for the daemon's last move: for the lag, and
 * because a move missed while the subscription reconnects is noticed only at the next. */
#define PROBE_EVERY_MS 2000
#define ERROR_MAX      (CURL_ERROR_SIZE + 64)

typedef struct worker {
    struct gw_delivery *owner;
    size_t index;
    char *url, *topics, *secret;
    char *state_path; /* NULL without a state dir */
    bool resume;      /* a position is known: deliver what comes after it */
    bool moves;       /* the topics let deal.moved ones through */
    df_client *client;
    CURL *curl;
    pthread_t thread;
    bool running;
    int64_t probed_ms; /* when the daemon's end was last asked for */
    bool save_failing; /* the last write of the position failed (logged once) */
    uint64_t saved;    /* the position on disk */

    pthread_mutex_t lock; /* guards state, which gw_delivery_states reads */
    gw_delivery_state state;
} worker;

struct gw_delivery {
    atomic_bool stopping;
    pthread_mutex_t wake_lock;
    pthread_cond_t wake; /* signalled by a stop, to end waits between retries */
    size_t n;
    worker *workers;
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(const worker *w)
{
    return atomic_load(&w->owner->stopping);
}

/* Waits ms or until a stop; false when stopping. */
static bool wait_or_stop(worker *w, int64_t ms)
{
    struct gw_delivery *d = w->owner;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&d->wake_lock);
    while (!atomic_load(&d->stopping) &&
           pthread_cond_timedwait(&d->wake, &d->wake_lock, &until) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&d->wake_lock);
    return !atomic_load(&d->stopping);
}

/* A url without its query and credentials, for logs: they may hold secrets. */
static void log_line(const worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(const worker *w, const char *fmt, ...)
{
    const char *url = w->url;
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    size_t host_len = strcspn(host, "/?#");
    const char *at = memchr(host, '@', host_len);
    size_t scheme_len = (size_t)(host - url);
    if (at) {
        host_len -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    size_t path_len = strcspn(host + host_len, "?#");
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, LOG_PREFIX "webhook %.*s%.*s (topics \"%s\"): %s\n", (int)scheme_len, url,
            (int)(host_len + path_len), host, w->topics, text);
}

static void note_daemon_seq(worker *w, uint64_t seq)
{
    pthread_mutex_lock(&w->lock);
    if (seq > w->state.daemon_seq)
        w->state.daemon_seq = seq;
    pthread_mutex_unlock(&w->lock);
}

/* Writes the position: a temp file, synced, renamed over the old one, and
 * the directory synced, so that a crash leaves the old position or the new. */
static bool write_position(const char *path, uint64_t seq, char *err, size_t cap)
{
    char text[GW_POSITION_TEXT_MAX];
    size_t len = gw_outbox_position_format(seq, text);
    size_t path_len = strlen(path);
    char tmp[path_len + 5];
    memcpy(tmp, path, path_len);
    memcpy(tmp + path_len, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int saved_errno = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = false;
        saved_errno = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        saved_errno = errno;
    }
    if (!ok) {
        unlink(tmp);
        snprintf(err, cap, "cannot write %s: %s", path, strerror(saved_errno));
        return false;
    }
    char dir[path_len + 1];
    memcpy(dir, path, path_len + 1);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int dfd = open(slash ? (dir[0] ? dir : "/") : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return true;
}

/* Records the position in the state and, when it moved, on disk. */
static void keep_position(worker *w, uint64_t seq)
{
    pthread_mutex_lock(&w->lock);
    w->state.position = seq;
    if (seq > w->state.daemon_seq)
        w->state.daemon_seq = seq;
    pthread_mutex_unlock(&w->lock);
    if (!w->state_path || seq == w->saved)
        return;
    char err[600];
    if (write_position(w->state_path, seq, err, sizeof err)) {
        w->saved = seq;
        if (w->save_failing)
            log_line(w, "the position is kept on disk again (seq %" PRIu64 ")", seq);
        w->save_failing = false;
    } else if (!w->save_failing) {
        w->save_failing = true;
        log_line(w, "%s; a restart may deliver again from seq %" PRIu64, err, w->saved);
    }
}

/* Asks the daemon for the seq of its last deal.moved, for the lag of an
 * endpoint that is not reading notifications while it fails, and to find
 * moves an idle subscription missed. Returns it, or 0 without an answer. */
static uint64_t probe_daemon_end(worker *w)
{
    uint64_t end = 0;
    w->probed_ms = monotonic_ms();
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "moves", 5);
    msgpack_pack_str_with_body(&pk, "after", 5);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_str_with_body(&pk, "limit", 5);
    msgpack_pack_uint64(&pk, 1);
    df_bytes reply = {0};
    if (df_request(w->client, buf.data, buf.size, &reply, NULL) == 0) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, reply.data, reply.len, NULL) == MSGPACK_UNPACK_SUCCESS &&
            u.data.type == MSGPACK_OBJECT_MAP) {
            for (uint32_t i = 0; i < u.data.via.map.size; i++) {
                const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
                if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 8 &&
                    memcmp(kv->key.via.str.ptr, "last_seq", 8) == 0 &&
                    kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                    end = kv->val.via.u64;
            }
        }
        msgpack_unpacked_destroy(&u);
    }
    df_bytes_free(&reply);
    msgpack_sbuffer_destroy(&buf);
    note_daemon_seq(w, end);
    return end;
}

static size_t discard_answer(char *data, size_t size, size_t count, void *ctx)
{
    (void)data;
    (void)ctx;
    return size * count;
}

static int abort_on_stop(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return stopping(ctx) ? 1 : 0;
}

/* POSTs body once: true on a 2xx, else false with why in err. */
static bool post_once(worker *w, const char *body, size_t len, char *err, size_t cap)
{
    char signature[GW_SIGNATURE_MAX];
    gw_signature_sign(w->secret, body, len, signature);
    char header[sizeof "X-Dealflow-Signature: " + GW_SIGNATURE_MAX];
    snprintf(header, sizeof header, "X-Dealflow-Signature: %s", signature);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *more = headers ? curl_slist_append(headers, header) : NULL;
    /* no "Expect: 100-continue": it costs a round trip or a second's wait */
    more = more ? curl_slist_append(more, "Expect:") : NULL;
    if (!more) {
        curl_slist_free_all(headers);
        snprintf(err, cap, "out of memory");
        return false;
    }
    char curl_error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(w->curl, CURLOPT_ERRORBUFFER, curl_error);
    CURLcode rc = curl_easy_perform(w->curl);
    long status = 0;
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(w->curl, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        snprintf(err, cap, "%s", curl_error[0] ? curl_error : curl_easy_strerror(rc));
        return false;
    }
    if (status < 200 || status > 299) {
        snprintf(err, cap, "answered HTTP %ld", status);
        return false;
    }
    return true;
}

/* Delivers one notification, retrying until the endpoint takes it: true
 * once it did, false when stopping first. */
static bool deliver(worker *w, const char *body, size_t len, uint64_t seq)
{
    uint32_t retries = 0;
    for (;;) {
        if (stopping(w))
            return false;
        char err[ERROR_MAX];
        bool ok = post_once(w, body, len, err, sizeof err);
        if (!ok && stopping(w))
            return false; /* abandoned, not failed */
        pthread_mutex_lock(&w->lock);
        bool was_failing = w->state.failing;
        w->state.failing = !ok;
        if (ok)
            w->state.delivered++;
        else
            w->state.failures++;
        pthread_mutex_unlock(&w->lock);
        if (ok) {
            if (was_failing)
                log_line(w, "delivering again, after %" PRIu32 " retr%s", retries,
                         retries == 1 ? "y" : "ies");
            return true;
        }
        if (!was_failing)
            log_line(w, "failing at seq %" PRIu64 ": %s; retrying with backoff", seq, err);
        retries++;
        int64_t wait = gw_outbox_backoff_ms(retries, randombytes_random());
        if (monotonic_ms() - w->probed_ms >= PROBE_EVERY_MS) {
            int64_t started = monotonic_ms();
            probe_daemon_end(w);
            wait -= monotonic_ms() - started;
        }
        if (wait > 0 && !wait_or_stop(w, wait))
            return false;
        pthread_mutex_lock(&w->lock);
        w->state.retries++;
        pthread_mutex_unlock(&w->lock);
    }
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Opens the subscription: after the known position, else from the daemon's end. */
static int subscribe(worker *w, df_subscription **sub, df_error *e)
{
    if (w->resume)
        return df_subscribe_after(w->client, w->topics, w->state.position, sub, e);
    int rc = df_subscribe(w->client, w->topics, 0, sub, e);
    if (rc != 0)
        return rc;
    uint64_t end = df_subscription_last_seq(*sub);
    w->resume = true;
    keep_position(w, end);
    if (w->state_path)
        log_line(w, "a new endpoint: delivering what comes after seq %" PRIu64, end);
    else
        log_line(w,
                 "no state directory: delivering what comes after seq %" PRIu64
                 ", and a restart starts again from the end then",
                 end);
    return 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    df_subscription *sub = NULL;
    uint32_t setbacks = 0; /* daemon requests failed in a row */
    while (!stopping(w)) {
        df_error e = {0};
        int rc = 0;
        df_notification n;
        if (!sub)
            rc = subscribe(w, &sub, &e);
        if (rc == 0)
            rc = df_subscription_next(sub, POLL_MS, &n, &e);
        if (rc < 0) {
            if (setbacks++ == 0)
                log_line(w, "cannot follow the daemon's notifications (%s); trying again",
                         e.message);
            int64_t wait = gw_outbox_backoff_ms(setbacks, randombytes_random());
            wait_or_stop(w, wait < DAEMON_RETRY_MAX_MS ? wait : DAEMON_RETRY_MAX_MS);
            continue;
        }
        if (setbacks > 0)
            log_line(w, "following the daemon's notifications again");
        setbacks = 0;
        if (rc == 0) {
            /* moves that did not match the topics moved the position on */
            uint64_t last = df_subscription_last_seq(sub);
            keep_position(w, last);
            if (w->moves && monotonic_ms() - w->probed_ms >= PROBE_EVERY_MS &&
                probe_daemon_end(w) > last) {
                /* moves published while the subscription was not connected
                 * (a daemon restart): a new one catches up from `moves` */
                df_subscription_close(sub);
                sub = NULL;
            }
            continue;
        }
        note_daemon_seq(w, n.seq);
        if (!starts_with(n.topic, w->topics))
            continue;
        size_t len;
        char *body = gw_outbox_body(n.topic, n.body, n.body_len, &len);
        if (!body) {
            log_line(w, "cannot make the body of %s seq %" PRIu64 "; passed over", n.topic, n.seq);
            continue;
        }
        bool delivered = deliver(w, body, len, n.seq);
        free(body);
        if (delivered)
            keep_position(w, df_subscription_last_seq(sub));
    }
    df_subscription_close(sub);
    return NULL;
}

static void worker_free(worker *w)
{
    curl_easy_cleanup(w->curl);
    df_client_close(w->client);
    free(w->url);
    free(w->topics);
    if (w->secret)
        sodium_memzero(w->secret, strlen(w->secret));
    free(w->secret);
    free(w->state_path);
    pthread_mutex_destroy(&w->lock);
}

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Reads the position kept for w, if any: 0, or -1 with why. */
static int load_position(worker *w, char *err, size_t cap)
{
    int fd = open(w->state_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return fail(err, cap, "cannot read %s: %s", w->state_path, strerror(errno));
    }
    char text[GW_POSITION_TEXT_MAX];
    ssize_t got = read(fd, text, sizeof text);
    close(fd);
    uint64_t seq;
    if (got < 0 || !gw_outbox_position_parse(text, (size_t)got, &seq))
        return fail(err, cap, "%s is not a position (a seq and a newline)", w->state_path);
    w->resume = true;
    w->state.position = w->state.daemon_seq = w->saved = seq;
    return 0;
}

static bool is_http_url(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

static int worker_init(worker *w, const df_client_options *daemon, const gw_webhook *hook,
                       const char *state_dir, char *err, size_t cap)
{
    pthread_mutex_init(&w->lock, NULL);
    if (!hook->url || !is_http_url(hook->url))
        return fail(err, cap, "webhook %zu: url must be http:// or https://", w->index + 1);
    if (!hook->secret || !hook->secret[0])
        return fail(err, cap, "webhook %zu: a secret is needed to sign deliveries", w->index + 1);
    w->url = strdup(hook->url);
    w->topics = strdup(hook->topics ? hook->topics : "");
    w->secret = strdup(hook->secret);
    if (!w->url || !w->topics || !w->secret)
        return fail(err, cap, "out of memory");
    w->state.url = w->url;
    size_t topics_len = strlen(w->topics);
    w->moves =
        strncmp(w->topics, "deal.moved.",
                topics_len < sizeof "deal.moved." - 1 ? topics_len : sizeof "deal.moved." - 1) == 0;
    if (state_dir) {
        char name[GW_STATE_NAME_MAX];
        gw_outbox_state_name(w->url, w->topics, name);
        size_t need = strlen(state_dir) + 1 + sizeof name;
        if (!(w->state_path = malloc(need)))
            return fail(err, cap, "out of memory");
        snprintf(w->state_path, need, "%s/%s", state_dir, name);
        if (load_position(w, err, cap) != 0)
            return -1;
    }
    df_client_options options = daemon ? *daemon : (df_client_options){0};
    if (options.timeout_ms <= 0 || options.timeout_ms > DAEMON_TIMEOUT_MS)
        options.timeout_ms = DAEMON_TIMEOUT_MS;
    options.attempts = 1; /* the worker retries, and looks at the stop flag between */
    df_error e = {0};
    if (df_client_open(&w->client, &options, &e) != 0)
        return fail(err, cap, "webhook %zu: %s", w->index + 1, e.message);
    if (!(w->curl = curl_easy_init()))
        return fail(err, cap, "cannot start libcurl");
    CURL *c = w->curl;
    curl_easy_setopt(c, CURLOPT_URL, w->url);
#if CURL_AT_LEAST_VERSION(7, 85, 0)
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dealflow-gateway");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)REQUEST_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_answer);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
    return 0;
}

static pthread_once_t libraries_once = PTHREAD_ONCE_INIT;
static bool libraries_ready;

static void init_libraries(void)
{
    libraries_ready = sodium_init() >= 0 && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

/* Makes state_dir when missing; 0, or -1 with why. */
static int prepare_state_dir(const char *state_dir, char *err, size_t cap)
{
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
        return fail(err, cap, "cannot make the state directory %s: %s", state_dir, strerror(errno));
    struct stat st;
    if (stat(state_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(err, cap, "the state directory %s is not a directory", state_dir);
    if (access(state_dir, W_OK | X_OK) != 0)
        return fail(err, cap, "cannot write in the state directory %s: %s", state_dir,
                    strerror(errno));
    return 0;
}

int gw_delivery_start(gw_delivery **out, const df_client_options *daemon, const gw_webhook *hooks,
                      size_t n, const char *state_dir, char *err, size_t cap)
{
    *out = NULL;
    pthread_once(&libraries_once, init_libraries);
    if (!libraries_ready)
        return fail(err, cap, "cannot start libsodium or libcurl");
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (hooks[i].url && hooks[j].url && strcmp(hooks[i].url, hooks[j].url) == 0 &&
                strcmp(hooks[i].topics ? hooks[i].topics : "",
                       hooks[j].topics ? hooks[j].topics : "") == 0)
                return fail(err, cap, "webhooks %zu and %zu have the same url and topics", j + 1,
                            i + 1);
    if (state_dir && prepare_state_dir(state_dir, err, cap) != 0)
        return -1;
    gw_delivery *d = calloc(1, sizeof *d);
    if (!d || (n > 0 && !(d->workers = calloc(n, sizeof *d->workers)))) {
        free(d);
        return fail(err, cap, "out of memory");
    }
    atomic_init(&d->stopping, false);
    pthread_mutex_init(&d->wake_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&d->wake, &attr);
    pthread_condattr_destroy(&attr);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        worker *w = &d->workers[i];
        w->owner = d;
        w->index = i;
        d->n = i + 1;
        rc = worker_init(w, daemon, &hooks[i], state_dir, err, cap);
    }
    /* the workers take none of the process's signals (a SIGPIPE from a
     * closed TLS connection included): they start with all blocked */
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &before);
    for (size_t i = 0; i < d->n && rc == 0; i++) {
        worker *w = &d->workers[i];
        int failed = pthread_create(&w->thread, NULL, worker_main, w);
        if (failed)
            rc = fail(err, cap, "cannot start a delivery thread: %s", strerror(failed));
        else
            w->running = true;
    }
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    if (rc != 0) {
        gw_delivery_stop(d);
        return -1;
    }
    *out = d;
    return 0;
}

size_t gw_delivery_states(gw_delivery *d, gw_delivery_state *out, size_t cap)
{
    if (!d)
        return 0;
    for (size_t i = 0; i < d->n && i < cap; i++) {
        worker *w = &d->workers[i];
        pthread_mutex_lock(&w->lock);
        out[i] = w->state;
        pthread_mutex_unlock(&w->lock);
    }
    return d->n;
}

void gw_delivery_stop(gw_delivery *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->wake_lock);
    atomic_store(&d->stopping, true);
    pthread_cond_broadcast(&d->wake);
    pthread_mutex_unlock(&d->wake_lock);
    for (size_t i = 0; i < d->n; i++) {
        worker *w = &d->workers[i];
        if (w->running)
            pthread_join(w->thread, NULL);
        worker_free(w);
    }
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->wake_lock);
    free(d->workers);
    free(d);
}
