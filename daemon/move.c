/* move.c: deal.moved notifications: the published map and the compact form
 * the store keeps, so that `moves` gives back the very bytes published. */
#include "move.h"

#include <assert.h>
#include <string.h>

/* A map key of fewer than 32 bytes, packed as msgpack_pack_str packs it
 * (a fixstr), in one write rather than a length, a header and the bytes. */
static void pack_key(msgpack_packer *pk, const char *key, size_t len)
{
    char packed[32];
    assert(len < sizeof(packed));
    packed[0] = (char)(0xa0 | len);
    memcpy(packed + 1, key, len);
    pk->callback(pk->data, packed, len + 1);
}

#define PACK_KEY(pk, literal) pack_key((pk), (literal), sizeof(literal) - 1)

static void pack_opt_name(msgpack_packer *pk, bool has, const df_name *n)
{
    if (has)
        df_pack_str(pk, n->s, n->len);
    else
        msgpack_pack_nil(pk);
}

void df_move_pack(msgpack_packer *pk, const df_move *m)
{
    msgpack_pack_map(pk, 10);
    PACK_KEY(pk, "seq");
    msgpack_pack_uint64(pk, m->seq);
    PACK_KEY(pk, "deal");
    df_pack_str(pk, m->deal.s, m->deal.len);
    PACK_KEY(pk, "pipeline");
    df_pack_str(pk, m->pipeline.s, m->pipeline.len);
    PACK_KEY(pk, "from");
    pack_opt_name(pk, m->has_from, &m->from);
    PACK_KEY(pk, "to");
    df_pack_str(pk, m->to.s, m->to.len);
    PACK_KEY(pk, "at");
    msgpack_pack_int64(pk, m->at);
    PACK_KEY(pk, "amount");
    df_pack_num(pk, m->amount);
    PACK_KEY(pk, "owner");
    pack_opt_name(pk, m->has_owner, &m->owner);
    PACK_KEY(pk, "status");
    df_pack_cstr(pk, df_outcome_name(m->status));
    PACK_KEY(pk, "prev");
    msgpack_pack_uint64(pk, m->prev);
}

void df_move_pack_stored(msgpack_packer *pk, const df_move *m)
{
    msgpack_pack_array(pk, 9);
    msgpack_pack_uint64(pk, m->prev);
    msgpack_pack_int64(pk, m->at);
    df_pack_str(pk, m->deal.s, m->deal.len);
    df_pack_str(pk, m->pipeline.s, m->pipeline.len);
    pack_opt_name(pk, m->has_from, &m->from);
    df_pack_str(pk, m->to.s, m->to.len);
    df_pack_num(pk, m->amount);
    pack_opt_name(pk, m->has_owner, &m->owner);
    msgpack_pack_uint8(pk, (uint8_t)m->status);
}

/* A str (or, when nil_ok, nil) into a name; false for anything else. */
static bool read_name(const msgpack_object *o, bool nil_ok, bool *has, df_name *out)
{
    if (o->type == MSGPACK_OBJECT_NIL && nil_ok) {
        *has = false;
        out->len = 0;
        return true;
    }
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > DF_MAX_NAME)
        return false;
    *has = true;
    df_name_set(out, o->via.str.ptr, o->via.str.size);
    return true;
}

int df_move_unpack_stored(const char *buf, size_t len, uint64_t seq, msgpack_zone *zone, df_move *m)
{
    msgpack_object obj;
    bool has;
    memset(m, 0, sizeof(*m));
    m->seq = seq;
    if (df_msgpack_unpack(buf, len, zone, &obj, NULL) != 0 || obj.type != MSGPACK_OBJECT_ARRAY ||
        obj.via.array.size != 9)
        return DF_EINTERNAL;
    const msgpack_object *f = obj.via.array.ptr;
    if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        (f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
         f[1].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
        !read_name(&f[2], false, &has, &m->deal) || !read_name(&f[3], false, &has, &m->pipeline) ||
        !read_name(&f[4], true, &m->has_from, &m->from) || !read_name(&f[5], false, &has, &m->to) ||
        !read_name(&f[7], true, &m->has_owner, &m->owner) ||
        f[8].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[8].via.u64 > DF_LOST)
        return DF_EINTERNAL;
    m->prev = f[0].via.u64;
    m->at = f[1].via.i64;
    m->status = (int)f[8].via.u64;
    if (f[6].type == MSGPACK_OBJECT_POSITIVE_INTEGER && f[6].via.u64 <= INT64_MAX)
        m->amount = (df_num){.kind = DF_NUM_INT, .i = (int64_t)f[6].via.u64};
    else if (f[6].type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        m->amount = (df_num){.kind = DF_NUM_INT, .i = f[6].via.i64};
    else if (f[6].type == MSGPACK_OBJECT_FLOAT64 || f[6].type == MSGPACK_OBJECT_FLOAT32)
        m->amount = (df_num){.kind = DF_NUM_FLOAT, .f = f[6].via.f64};
    else if (f[6].type != MSGPACK_OBJECT_NIL)
        return DF_EINTERNAL;
    return 0;
}
