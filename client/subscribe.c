/* subscribe.c: notifications over a SUB socket, with deal.moved gaps repaired from the
 * api's `moves` op so that every move is delivered once and in seq order (the zguide's
 * Clone pattern: subscribe first, then fetch what came before). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "codec.h"
#include "internal.h"
#include "request.h"
#include "socket.h"

#define MOVED_PREFIX     "deal.moved."
#define MOVED_PREFIX_LEN (sizeof MOVED_PREFIX - 1)
#define PREFIX_MAX       1024

struct df_subscription {
    df_client *client;
    void *sub;
    char *prefix;
    size_t prefix_len;
    bool tracks_moves; /* the prefix lets deal.moved topics through */
    /* Every deal.moved the prefix matches with seq <= last has been
     * delivered: the position a resume starts from. */
    uint64_t last;

    /* repair: moves fetched after `last` and delivered before a live one */
    bool repairing;
    uint64_t repair_until; /* deliver fetched moves below this seq; UINT64_MAX: catch up */
    df_bytes page;
    const char *page_item;
    size_t page_rest;
    uint32_t page_left;
    bool page_was_last;
    char *repair_topic;
    size_t repair_topic_cap;

    /* the live message given last, or held back while a gap is repaired */
    char *live_topic;
    size_t live_topic_cap;
    df_bytes live_body;
    uint64_t live_seq;
    bool holding;
};

void *df__subscription_socket(df_subscription *s)
{
    return s->sub;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool starts_with(const char *s, size_t len, const char *prefix, size_t prefix_len)
{
    return len >= prefix_len && memcmp(s, prefix, prefix_len) == 0;
}

/* Grows *buf to hold need bytes; false when memory ran out. */
static bool reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    char *grown = realloc(*buf, need);
    if (grown == NULL)
        return false;
    *buf = grown;
    *cap = need;
    return true;
}

/* Asks for the moves after s->last; the repair goes on from the reply. */
static int fetch_moves(df_subscription *s, uint64_t after, uint32_t limit, df_error *err)
{
    df__request r;
    df__request_begin(&r, "moves");
    df__request_uint(&r, "after", after);
    df__request_uint(&r, "limit", limit);
    int rc = df__request_fetch(s->client, &r, &s->page, err);
    if (rc != 0)
        return rc;
    s->page_left = 0;
    if (!df_msgpack_map_array(s->page.data, s->page.len, "moves", &s->page_item, &s->page_rest,
                              &s->page_left))
        return df_fail(err, DF_EINTERNAL, "the daemon's moves reply has no `moves` array");
    s->page_was_last = s->page_left < limit;
    return 0;
}

/* The topic a deal.moved body was published under, in s->repair_topic. */
static bool moved_topic(df_subscription *s, const char *body, size_t len)
{
    const char *pipeline, *to;
    uint32_t pipeline_len, to_len;
    if (!df_msgpack_map_str(body, len, "pipeline", &pipeline, &pipeline_len) ||
        !df_msgpack_map_str(body, len, "to", &to, &to_len))
        return false;
    size_t need = MOVED_PREFIX_LEN + pipeline_len + 1 + to_len + 1;
    if (!reserve(&s->repair_topic, &s->repair_topic_cap, need))
        return false;
    char *p = s->repair_topic;
    memcpy(p, MOVED_PREFIX, MOVED_PREFIX_LEN);
    p += MOVED_PREFIX_LEN;
    memcpy(p, pipeline, pipeline_len);
    p += pipeline_len;
    *p++ = '.';
    memcpy(p, to, to_len);
    p[to_len] = '\0';
    return true;
}

static void deliver_held(df_subscription *s, df_notification *n)
{
    s->holding = false;
    s->last = s->live_seq;
    n->topic = s->live_topic;
    n->body = s->live_body.data;
    n->body_len = s->live_body.len;
    n->seq = s->live_seq;
    n->repaired = false;
}

/* One step of a repair: 1 with a notification in *n, 0 when the repair is
 * over and nothing is left to give, or a negative code (the repair resumes
 * on the next call). */
static int repair_step(df_subscription *s, df_notification *n, df_error *err)
{
    for (;;) {
        while (s->page_left > 0) {
            size_t len = df_msgpack_skip(s->page_item, s->page_rest);
            if (len == 0) {
                s->page_left = 0;
                break;
            }
            const char *body = s->page_item;
            s->page_item += len;
            s->page_rest -= len;
            s->page_left--;
            uint64_t seq;
            if (!df_msgpack_map_uint(body, len, "seq", &seq) || seq <= s->last)
                continue;
            if (seq >= s->repair_until) {
                s->page_left = 0;
                s->page_was_last = true;
                break;
            }
            s->last = seq;
            if (!moved_topic(s, body, len) ||
                !starts_with(s->repair_topic, strlen(s->repair_topic), s->prefix, s->prefix_len))
                continue;
            n->topic = s->repair_topic;
            n->body = body;
            n->body_len = len;
            n->seq = seq;
            n->repaired = true;
            return 1;
        }
        if (s->page_was_last && s->page.data != NULL) {
            s->repairing = false;
            df_bytes_free(&s->page);
            if (s->holding && s->live_seq > s->last) {
                deliver_held(s, n);
                return 1;
            }
            s->holding = false;
            return 0;
        }
        int rc = fetch_moves(s, s->last, DF__PAGE_DEFAULT, err);
        if (rc != 0)
            return rc;
    }
}

static void start_repair(df_subscription *s, uint64_t until)
{
    s->repairing = true;
    s->repair_until = until;
    df_bytes_free(&s->page);
    s->page_left = 0;
    s->page_was_last = false;
}

/* Receives one whole message into live_topic and live_body. False for a
 * message that is not a topic and a msgpack map (dropped). */
static bool receive_live(df_subscription *s)
{
    int frames = 0, more = 1;
    bool fine = true;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, s->sub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return false;
        }
        frames++;
        more = zmq_msg_more(&frame);
        const char *data = zmq_msg_data(&frame);
        size_t size = zmq_msg_size(&frame);
        if (frames == 1) {
            fine = reserve(&s->live_topic, &s->live_topic_cap, size + 1);
            if (fine) {
                memcpy(s->live_topic, data, size);
                s->live_topic[size] = '\0';
            }
        } else if (frames == 2 && fine) {
            fine = df_msgpack_is_map(data, size) && df_msgpack_check(data, size, NULL) == 0;
            df_bytes_free(&s->live_body);
            if (fine)
                s->live_body.data = malloc(size);
            fine = fine && s->live_body.data != NULL;
            if (fine) {
                memcpy(s->live_body.data, data, size);
                s->live_body.len = size;
            }
        }
        zmq_msg_close(&frame);
    }
    return fine && frames == 2;
}

int df_subscription_next(df_subscription *s, int timeout_ms, df_notification *n, df_error *err)
{
    if (s == NULL || n == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "df_subscription_next needs a subscription and n");
    int64_t deadline = timeout_ms < 0 ? -1 : monotonic_ms() + timeout_ms;
    for (;;) {
        if (s->repairing) {
            int rc = repair_step(s, n, err);
            if (rc != 0)
                return rc;
        }
        long wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - monotonic_ms();
            wait = left > 0 ? (long)left : 0;
        }
        zmq_pollitem_t item = {s->sub, 0, ZMQ_POLLIN, 0};
        int ready = zmq_poll(&item, 1, wait);
        if (ready < 0 && errno != EINTR)
            return df_fail(err, DF_EINTERNAL, "waiting for notifications failed: %s",
                           zmq_strerror(errno));
        if (ready <= 0) {
            if (wait == 0)
                return 0;
            continue;
        }
        if (!receive_live(s))
            continue;
        size_t topic_len = strlen(s->live_topic);
        bool moved = starts_with(s->live_topic, topic_len, MOVED_PREFIX, MOVED_PREFIX_LEN);
        if (!moved || !s->tracks_moves) {
            n->topic = s->live_topic;
            n->body = s->live_body.data;
            n->body_len = s->live_body.len;
            n->seq = 0;
            n->repaired = false;
            return 1;
        }
        uint64_t seq, prev;
        if (!df_msgpack_map_uint(s->live_body.data, s->live_body.len, "seq", &seq) ||
            !df_msgpack_map_uint(s->live_body.data, s->live_body.len, "prev", &prev) || prev >= seq)
            continue; /* a deal.moved without its place in the sequence */
        if (seq <= s->last)
            continue; /* delivered already, by a repair */
        s->live_seq = seq;
        s->holding = true;
        if (prev <= s->last) {
            deliver_held(s, n);
            return 1;
        }
        start_repair(s, seq);
    }
}

int df_subscription_run(df_subscription *s, df_notification_fn each, void *ctx, df_error *err)
{
    if (s == NULL || each == NULL)
        return df_fail(err, DF_EBAD_REQUEST,
                       "df_subscription_run needs a subscription and a callback");
    for (;;) {
        df_notification n;
        int rc = df_subscription_next(s, -1, &n, err);
        if (rc < 0)
            return rc;
        if (rc == 1 && (rc = each(ctx, &n)) != 0)
            return rc;
    }
}

uint64_t df_subscription_last_seq(const df_subscription *s)
{
    return s != NULL ? s->last : 0;
}

void df_subscription_close(df_subscription *s)
{
    if (s == NULL)
        return;
    if (s->sub != NULL)
        zmq_close(s->sub);
    df_bytes_free(&s->page);
    df_bytes_free(&s->live_body);
    free(s->repair_topic);
    free(s->live_topic);
    free(s->prefix);
    free(s);
}

/* Whether topics starting with prefix can be deal.moved ones. */
static bool prefix_tracks_moves(const char *prefix, size_t len)
{
    return len <= MOVED_PREFIX_LEN ? memcmp(prefix, MOVED_PREFIX, len) == 0
                                   : memcmp(prefix, MOVED_PREFIX, MOVED_PREFIX_LEN) == 0;
}

static int open_sub(df_subscription *s, df_error *err)
{
    df__socket_spec spec = {
        .type = ZMQ_SUB,
        .role = "notify",
        .endpoint = s->client->notify,
        .linger_ms = 0,
        .max_message = DF__MAX_NOTIFICATION,
        .subscribe = s->prefix,
        .subscribe_len = s->prefix_len,
        .curve = s->client->use_curve ? &s->client->curve : NULL,
    };
    int rc = df__socket_open(s->client->context, &spec, &s->sub, err);
    if (rc != 0)
        return rc;
    /* reading ZMQ_EVENTS makes the socket attach the connection and send
     * its subscription without waiting for the first receive */
    int events;
    size_t size = sizeof events;
    zmq_getsockopt(s->sub, ZMQ_EVENTS, &events, &size);
    return 0;
}

/* catch_up: deliver the moves after from_seq first (0 included: from the
 * first); otherwise from_seq 0 means from now on. */
static int subscribe(df_client *c, const char *prefix, uint64_t from_seq, bool catch_up,
                     df_subscription **out, df_error *err)
{
    if (out == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "df_subscribe needs somewhere to put it");
    *out = NULL;
    if (c == NULL)
        return df_fail(err, DF_EBAD_REQUEST, "df_subscribe needs a client");
    if (prefix == NULL)
        prefix = "";
    size_t prefix_len = strlen(prefix);
    if (prefix_len > PREFIX_MAX)
        return df_fail(err, DF_EBAD_REQUEST, "a topic prefix is at most %d bytes", PREFIX_MAX);
    df_subscription *s = calloc(1, sizeof *s);
    if (s == NULL || (s->prefix = malloc(prefix_len + 1)) == NULL) {
        free(s);
        return df_fail(err, DF_EINTERNAL, "out of memory");
    }
    memcpy(s->prefix, prefix, prefix_len + 1);
    s->prefix_len = prefix_len;
    s->client = c;
    s->tracks_moves = prefix_tracks_moves(prefix, prefix_len);
    s->last = from_seq;
    int rc = open_sub(s, err);
    if (rc == 0 && s->tracks_moves) {
        if (catch_up) {
            start_repair(s, UINT64_MAX); /* caught up on the first df_subscription_next */
        } else {
            /* "from now on" is from the moves' end as it is after the
             * subscription: a move the SUB misses while its subscription
             * travels to the daemon is then a gap, repaired like any other */
            rc = fetch_moves(s, UINT64_MAX, 1, err);
            if (rc == 0 && !df_msgpack_map_uint(s->page.data, s->page.len, "last_seq", &s->last))
                rc = df_fail(err, DF_EINTERNAL, "the daemon's moves reply has no `last_seq`");
            df_bytes_free(&s->page);
            s->page_left = 0;
        }
    }
    if (rc != 0) {
        df_subscription_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int df_subscribe(df_client *c, const char *prefix, uint64_t from_seq, df_subscription **out,
                 df_error *err)
{
    return subscribe(c, prefix, from_seq, from_seq > 0, out, err);
}

int df_subscribe_after(df_client *c, const char *prefix, uint64_t after_seq, df_subscription **out,
                       df_error *err)
{
    return subscribe(c, prefix, after_seq, true, out, err);
}
