/* notify.c: the PUB socket. deal.moved notifications carry the seq of the
 * one before (`prev`), so that a subscriber that misses one (PUB drops at
 * its high-water mark) sees the gap and fills it with `moves`; deal.stale
 * notifications come once per stale spell. */
#include "notify.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

static void publish(df_daemon *d, const df_move *m, msgpack_sbuffer *sb)
{
    static const char prefix[] = "deal.moved.";
    char topic[sizeof(prefix) + 2 * DF_MAX_NAME];
    msgpack_packer pk;
    /* built by hand: a format for every move was a third of publishing it */
    size_t topic_len = sizeof(prefix) - 1;
    size_t pipeline_len = m->pipeline.len < DF_MAX_NAME ? m->pipeline.len : DF_MAX_NAME;
    size_t to_len = m->to.len < DF_MAX_NAME ? m->to.len : DF_MAX_NAME;
    memcpy(topic, prefix, topic_len);
    memcpy(topic + topic_len, m->pipeline.s, pipeline_len);
    topic_len += pipeline_len;
    topic[topic_len++] = '.';
    memcpy(topic + topic_len, m->to.s, to_len);
    topic_len += to_len;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    df_move_pack(&pk, m);
    if (zmq_send(d->notify, topic, topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(d->notify, sb->data, sb->size, ZMQ_DONTWAIT) < 0) {
        df_log("notify: publishing seq %llu failed: %s", (unsigned long long)m->seq,
               zmq_strerror(errno));
        return;
    }
    d->notifications++;
}

void df_notify_moves(df_daemon *d, const df_batch *b)
{
    msgpack_sbuffer sb;
    if (b->nmoves == 0)
        return;
    msgpack_sbuffer_init(&sb);
    for (size_t i = 0; i < b->nmoves; i++)
        publish(d, &b->moves[i], &sb);
    msgpack_sbuffer_destroy(&sb);
}

void df_notify_stale(df_daemon *d, const df_stale *items, size_t count)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char topic[16 + 2 * DF_MAX_NAME];
    if (count == 0)
        return; /* the loop asks on every turn */
    msgpack_sbuffer_init(&sb);
    for (size_t i = 0; i < count; i++) {
        const df_stale *n = &items[i];
        int topic_len = snprintf(topic, sizeof(topic), "deal.stale.%.*s.%.*s", (int)n->pipeline.len,
                                 n->pipeline.s, (int)n->stage.len, n->stage.s);
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 5);
        df_pack_cstr(&pk, "deal");
        df_pack_str(&pk, n->deal.s, n->deal.len);
        df_pack_cstr(&pk, "pipeline");
        df_pack_str(&pk, n->pipeline.s, n->pipeline.len);
        df_pack_cstr(&pk, "stage");
        df_pack_str(&pk, n->stage.s, n->stage.len);
        df_pack_cstr(&pk, "since");
        msgpack_pack_int64(&pk, n->since);
        df_pack_cstr(&pk, "idle_days");
        msgpack_pack_int64(&pk, n->idle_days);
        if (zmq_send(d->notify, topic, topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(d->notify, sb.data, sb.size, ZMQ_DONTWAIT) < 0) {
            df_log("notify: publishing deal.stale of `%.*s` failed: %s", (int)n->deal.len,
                   n->deal.s, zmq_strerror(errno));
            continue;
        }
        d->stale_notifications++;
    }
    msgpack_sbuffer_destroy(&sb);
}
