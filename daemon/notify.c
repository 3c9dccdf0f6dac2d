/* notify.c: deal.moved notifications. Each carries the seq of the one
 * before it (`prev`), so that a subscriber that misses one (PUB drops at its
 * high-water mark) sees the gap and fills it from `replay`. */
#include "notify.h"

#include <errno.h>
#include <stdio.h>
#include <zmq.h>

static void pack_name(msgpack_packer *pk, bool has, const df_name *n)
{
    if (has)
        df_pack_str(pk, n->s, n->len);
    else
        msgpack_pack_nil(pk);
}

static void publish(df_daemon *d, const df_move *m, msgpack_sbuffer *sb)
{
    char topic[16 + 2 * DF_MAX_NAME];
    msgpack_packer pk;
    int topic_len = snprintf(topic, sizeof(topic), "deal.moved.%.*s.%.*s", (int)m->pipeline.len,
                             m->pipeline.s, (int)m->to.len, m->to.s);
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 10);
    df_pack_cstr(&pk, "seq");
    msgpack_pack_uint64(&pk, m->seq);
    df_pack_cstr(&pk, "deal");
    df_pack_str(&pk, m->deal.s, m->deal.len);
    df_pack_cstr(&pk, "pipeline");
    df_pack_str(&pk, m->pipeline.s, m->pipeline.len);
    df_pack_cstr(&pk, "from");
    pack_name(&pk, m->has_from, &m->from);
    df_pack_cstr(&pk, "to");
    df_pack_str(&pk, m->to.s, m->to.len);
    df_pack_cstr(&pk, "at");
    msgpack_pack_int64(&pk, m->at);
    df_pack_cstr(&pk, "amount");
    df_pack_num(&pk, m->amount);
    df_pack_cstr(&pk, "owner");
    pack_name(&pk, m->has_owner, &m->owner);
    df_pack_cstr(&pk, "status");
    df_pack_cstr(&pk, df_outcome_name(m->status));
    df_pack_cstr(&pk, "prev");
    msgpack_pack_uint64(&pk, m->prev);
    if (zmq_send(d->notify, topic, (size_t)topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(d->notify, sb->data, sb->size, ZMQ_DONTWAIT) < 0) {
        df_log("notify: publishing seq %llu failed: %s", (unsigned long long)m->seq,
               zmq_strerror(errno));
        return;
    }
    d->notifications++;
    d->last_moved = m->seq;
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
