/* notify.c: deal.moved notifications. Each carries the seq of the one
 * before it (`prev`), so that a subscriber that misses one (PUB drops at its
 * high-water mark) sees the gap and fills it from `replay`. */
#include "notify.h"

#include <errno.h>
#include <stdio.h>
#include <zmq.h>

static void publish(df_daemon *d, const df_move *m, msgpack_sbuffer *sb)
{
    char topic[16 + 2 * DF_MAX_NAME];
    msgpack_packer pk;
    int topic_len = snprintf(topic, sizeof(topic), "deal.moved.%.*s.%.*s", (int)m->pipeline.len,
                             m->pipeline.s, (int)m->to.len, m->to.s);
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    df_move_pack(&pk, m);
    if (zmq_send(d->notify, topic, (size_t)topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
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
