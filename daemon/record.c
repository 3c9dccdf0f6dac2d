/* record.c: the stored form of a deal's folded state, of a pipeline and of
 * an aggregate row's sums.
 * LMDB has no checksums, so every read is bounds-checked: a damaged record
 * is an error, never a crash. */
#include "record.h"

#include <stddef.h>
#include <string.h>

/* 3 adds, after the stage times, the deal's source, last open stage and loss
 * reason; a record of format 2 reads as a deal without them. 4 writes the
 * integers of format 3 as varints (times, counts and seqs are far below
 * 2^64: a deal takes about half the bytes). */
#define RECORD_FORMAT           4
#define RECORD_FORMAT_FIXED     3
#define RECORD_FORMAT_NO_SOURCE 2

enum {
    HAS_STAGE = 1 << 0,
    HAS_ACTIVITY = 1 << 1,
    HAS_OWNER = 1 << 2,
    HAS_NAME = 1 << 3,
    HAS_PRODUCT = 1 << 4,
    HAS_CLOSE_DATE = 1 << 5,
};

/* the second flags byte of format 3 */
enum {
    HAS_SOURCE = 1 << 0,
    HAS_LAST_OPEN = 1 << 1,
    HAS_REASON = 1 << 2,
};

typedef struct writer {
    uint8_t *p;
} writer;

typedef struct reader {
    const uint8_t *p;
    const uint8_t *end;
    int bad;
    bool fixed; /* a record of format 2 or 3: integers take 8 bytes */
} reader;

static void put_u8(writer *w, uint8_t v)
{
    *w->p++ = v;
}

static void put_u64(writer *w, uint64_t v)
{
    memcpy(w->p, &v, 8);
    w->p += 8;
}

/* Varints, 7 bits a byte from the lowest: a deal's integers and an
 * aggregate row's sums. */
static size_t put_varint(uint8_t *out, unsigned __int128 v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* A varint of at most max_bits bits at in[*at]; false when it runs past len
 * or is longer. */
static bool get_varint(const uint8_t *in, size_t len, size_t *at, unsigned max_bits,
                       unsigned __int128 *v)
{
    unsigned __int128 r = 0;
    for (unsigned shift = 0; shift < max_bits; shift += 7) {
        if (*at >= len)
            return false;
        uint8_t b = in[(*at)++];
        r |= (unsigned __int128)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* A deal's integer as a varint of its zigzag form plus one, so that small
 * values of either sign take a byte or two, and INT64_MIN (a position never
 * set) takes one. */
static void put_num(writer *w, uint64_t v)
{
    uint64_t z = ((v << 1) ^ (uint64_t) - (int64_t)(v >> 63)) + 1;
    w->p += put_varint(w->p, z);
}

static void put_bytes(writer *w, const char *s, uint8_t len)
{
    put_u8(w, len);
    memcpy(w->p, s, len);
    w->p += len;
}

static uint8_t get_u8(reader *r)
{
    if (r->p + 1 > r->end) {
        r->bad = 1;
        return 0;
    }
    return *r->p++;
}

static uint64_t get_u64(reader *r)
{
    uint64_t v = 0;
    if (r->p + 8 > r->end) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p, 8);
    r->p += 8;
    return v;
}

static uint64_t get_num(reader *r)
{
    if (r->fixed)
        return get_u64(r);
    size_t at = 0;
    unsigned __int128 u;
    if (!get_varint(r->p, (size_t)(r->end - r->p), &at, 64, &u) || u >> 64) {
        r->bad = 1;
        return 0;
    }
    r->p += at;
    uint64_t z = (uint64_t)u - 1;
    return (z >> 1) ^ (uint64_t) - (int64_t)(z & 1);
}

static uint8_t get_bytes(reader *r, char *out, size_t cap)
{
    uint8_t len = get_u8(r);
    if (r->bad || len > cap || r->p + len > r->end) {
        r->bad = 1;
        return 0;
    }
    memcpy(out, r->p, len);
    r->p += len;
    return len;
}

size_t df_deal_encode(const df_deal *d, uint8_t *out)
{
    writer w = {out};
    uint8_t flags = (d->has_stage ? HAS_STAGE : 0) | (d->has_activity ? HAS_ACTIVITY : 0) |
                    (d->has_owner ? HAS_OWNER : 0) | (d->has_name ? HAS_NAME : 0) |
                    (d->has_product ? HAS_PRODUCT : 0) | (d->has_close_date ? HAS_CLOSE_DATE : 0);
    put_u8(&w, RECORD_FORMAT);
    put_u8(&w, flags);
    put_bytes(&w, d->pipeline.s, d->pipeline.len);
    put_bytes(&w, d->stage.s, d->stage.len);
    put_num(&w, (uint64_t)d->stage_since);
    put_u8(&w, (uint8_t)d->stage_outcome);
    put_u8(&w, (uint8_t)d->stage_probability);
    put_num(&w, (uint64_t)d->last_activity);
    put_num(&w, (uint64_t)d->created);
    put_u8(&w, (uint8_t)d->amount.kind);
    if (d->amount.kind == DF_NUM_FLOAT) {
        uint64_t bits;
        memcpy(&bits, &d->amount.f, 8);
        put_u64(&w, bits);
    } else if (d->amount.kind == DF_NUM_INT) {
        put_num(&w, (uint64_t)d->amount.i);
    }
    put_bytes(&w, d->owner.s, d->owner.len);
    put_bytes(&w, d->name.s, d->name.len);
    put_bytes(&w, d->product.s, d->product.len);
    put_num(&w, (uint64_t)d->close_date);
    put_num(&w, d->activities);
    put_num(&w, d->version);
    put_num(&w, d->regressions);
    put_num(&w, d->reopened);
    put_num(&w, d->pushes);
    put_num(&w, (uint64_t)d->last_at);
    put_num(&w, d->last_seq);
    const df_pos *positions[] = {&d->amount_pos, &d->owner_pos, &d->name_pos, &d->product_pos,
                                 &d->close_date_pos};
    for (size_t i = 0; i < 5; i++) {
        put_num(&w, (uint64_t)positions[i]->at);
        put_num(&w, positions[i]->seq);
    }
    put_u8(&w, (uint8_t)d->nstage_times);
    for (int i = 0; i < d->nstage_times; i++) {
        put_bytes(&w, d->stage_times[i].stage.s, d->stage_times[i].stage.len);
        put_num(&w, (uint64_t)d->stage_times[i].ms);
    }
    put_u8(&w, (uint8_t)((d->has_source ? HAS_SOURCE : 0) | (d->has_last_open ? HAS_LAST_OPEN : 0) |
                         (d->has_reason ? HAS_REASON : 0)));
    put_bytes(&w, d->source.s, d->source.len);
    put_num(&w, (uint64_t)d->source_pos.at);
    put_num(&w, d->source_pos.seq);
    put_bytes(&w, d->last_open.s, d->last_open.len);
    put_bytes(&w, d->reason.s, d->reason.len);
    return (size_t)(w.p - out);
}

int df_deal_decode(const uint8_t *in, size_t len, df_deal *d)
{
    reader r = {in, in + len, 0, false};
    df_name id = d->deal;
    memset(d, 0, offsetof(df_deal, stage_times));
    d->deal = id;
    uint8_t format = get_u8(&r);
    if (format != RECORD_FORMAT && format != RECORD_FORMAT_FIXED &&
        format != RECORD_FORMAT_NO_SOURCE)
        return DF_EINTERNAL;
    r.fixed = format != RECORD_FORMAT;
    d->source_pos.at = INT64_MIN; /* no source yet: any event's is taken */
    uint8_t flags = get_u8(&r);
    d->has_stage = flags & HAS_STAGE;
    d->has_activity = flags & HAS_ACTIVITY;
    d->has_owner = flags & HAS_OWNER;
    d->has_name = flags & HAS_NAME;
    d->has_product = flags & HAS_PRODUCT;
    d->has_close_date = flags & HAS_CLOSE_DATE;
    d->pipeline.len = get_bytes(&r, d->pipeline.s, sizeof(d->pipeline.s));
    d->stage.len = get_bytes(&r, d->stage.s, sizeof(d->stage.s));
    d->stage_since = (int64_t)get_num(&r);
    d->stage_outcome = get_u8(&r);
    d->stage_probability = get_u8(&r);
    d->last_activity = (int64_t)get_num(&r);
    d->created = (int64_t)get_num(&r);
    d->amount.kind = (df_num_kind)get_u8(&r);
    if (d->amount.kind == DF_NUM_FLOAT) {
        uint64_t bits = get_u64(&r);
        memcpy(&d->amount.f, &bits, 8);
    } else if (d->amount.kind == DF_NUM_INT) {
        d->amount.i = (int64_t)get_num(&r);
    } else if (d->amount.kind != DF_NUM_NONE) {
        return DF_EINTERNAL;
    }
    d->owner.len = get_bytes(&r, d->owner.s, sizeof(d->owner.s));
    d->name.len = get_bytes(&r, d->name.s, sizeof(d->name.s));
    d->product.len = get_bytes(&r, d->product.s, sizeof(d->product.s));
    d->close_date = (int64_t)get_num(&r);
    d->activities = get_num(&r);
    d->version = get_num(&r);
    d->regressions = (uint32_t)get_num(&r);
    d->reopened = (uint32_t)get_num(&r);
    d->pushes = (uint32_t)get_num(&r);
    d->last_at = (int64_t)get_num(&r);
    d->last_seq = get_num(&r);
    df_pos *positions[] = {&d->amount_pos, &d->owner_pos, &d->name_pos, &d->product_pos,
                           &d->close_date_pos};
    for (size_t i = 0; i < 5; i++) {
        positions[i]->at = (int64_t)get_num(&r);
        positions[i]->seq = get_num(&r);
    }
    d->nstage_times = get_u8(&r);
    if (d->nstage_times > DF_MAX_STAGES)
        return DF_EINTERNAL;
    for (int i = 0; i < d->nstage_times; i++) {
        d->stage_times[i].stage.len =
            get_bytes(&r, d->stage_times[i].stage.s, sizeof(d->stage_times[i].stage.s));
        d->stage_times[i].ms = (int64_t)get_num(&r);
    }
    if (format != RECORD_FORMAT_NO_SOURCE) {
        uint8_t more = get_u8(&r);
        d->has_source = more & HAS_SOURCE;
        d->has_last_open = more & HAS_LAST_OPEN;
        d->has_reason = more & HAS_REASON;
        d->source.len = get_bytes(&r, d->source.s, sizeof(d->source.s));
        d->source_pos.at = (int64_t)get_num(&r);
        d->source_pos.seq = get_num(&r);
        d->last_open.len = get_bytes(&r, d->last_open.s, sizeof(d->last_open.s));
        d->reason.len = get_bytes(&r, d->reason.s, DF_MAX_REASON);
    }
    if (r.bad || r.p != r.end || d->stage_outcome > DF_LOST || d->stage_probability > 100)
        return DF_EINTERNAL;
    return 0;
}

void df_pipeline_pack(msgpack_packer *pk, const df_pipeline *p)
{
    msgpack_pack_array(pk, (size_t)p->nstages);
    for (int i = 0; i < p->nstages; i++) {
        const df_stage_def *s = &p->stages[i];
        msgpack_pack_array(pk, 4);
        df_pack_str(pk, s->name.s, s->name.len);
        msgpack_pack_int(pk, s->probability);
        msgpack_pack_int(pk, s->rot_days);
        msgpack_pack_int(pk, s->outcome);
    }
}

int df_pipeline_unpack(const char *buf, size_t len, df_pipeline *p)
{
    msgpack_zone zone;
    msgpack_object obj;
    int rc = DF_EINTERNAL;
    msgpack_zone_init(&zone, 2048);
    if (df_msgpack_unpack(buf, len, &zone, &obj, NULL) != 0 || obj.type != MSGPACK_OBJECT_ARRAY ||
        obj.via.array.size > DF_MAX_STAGES)
        goto out;
    p->nstages = 0;
    for (uint32_t i = 0; i < obj.via.array.size; i++) {
        const msgpack_object *st = &obj.via.array.ptr[i];
        if (st->type != MSGPACK_OBJECT_ARRAY || st->via.array.size != 4)
            goto out;
        const msgpack_object *f = st->via.array.ptr;
        if (f[0].type != MSGPACK_OBJECT_STR || f[0].via.str.size > DF_MAX_NAME ||
            (f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) ||
            (f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
             f[2].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
            f[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[1].via.u64 > 100 ||
            f[3].via.u64 > DF_LOST)
            goto out;
        df_stage_def *s = &p->stages[p->nstages++];
        df_name_set(&s->name, f[0].via.str.ptr, f[0].via.str.size);
        s->probability = (int)f[1].via.u64;
        s->rot_days = f[2].type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? -1 : (int)f[2].via.u64;
        s->outcome = (int)f[3].via.u64;
    }
    rc = 0;
out:
    msgpack_zone_destroy(&zone);
    return rc;
}

/* ---- aggregate sums ---- */

enum {
    SUM_COUNT = 1 << 0,
    SUM_AMOUNT_INT = 1 << 1,
    SUM_WEIGHTED_INT = 1 << 2,
    SUM_SINCE = 1 << 3,
    SUM_CYCLE = 1 << 4,
    SUM_MS = 1 << 5,
    SUM_FLOAT_COUNT = 1 << 6,
    SUM_AMOUNT_FLOAT = 1 << 7,
    SUM_WEIGHTED_FLOAT = 1 << 8,
    SUM_ALL = (1 << 9) - 1,
};

static size_t put_wide(uint8_t *out, df_wide v)
{
    unsigned __int128 u = (unsigned __int128)v;
    return put_varint(out, (u << 1) ^ (v < 0 ? ~(unsigned __int128)0 : 0));
}

static size_t put_double(uint8_t *out, double v)
{
    memcpy(out, &v, sizeof v);
    return sizeof v;
}

size_t df_sums_pack(const df_sums *s, uint8_t *out)
{
    unsigned bits = (s->count ? SUM_COUNT : 0) | (s->amount_int ? SUM_AMOUNT_INT : 0) |
                    (s->weighted_int ? SUM_WEIGHTED_INT : 0) | (s->since_sum ? SUM_SINCE : 0) |
                    (s->cycle_sum ? SUM_CYCLE : 0) | (s->ms_sum ? SUM_MS : 0) |
                    (s->float_count ? SUM_FLOAT_COUNT : 0) |
                    (s->amount_float != 0 ? SUM_AMOUNT_FLOAT : 0) |
                    (s->weighted_float != 0 ? SUM_WEIGHTED_FLOAT : 0);
    size_t n = put_varint(out, bits);
    if (bits & SUM_COUNT)
        n += put_wide(out + n, s->count);
    if (bits & SUM_AMOUNT_INT)
        n += put_wide(out + n, s->amount_int);
    if (bits & SUM_WEIGHTED_INT)
        n += put_wide(out + n, s->weighted_int);
    if (bits & SUM_SINCE)
        n += put_wide(out + n, s->since_sum);
    if (bits & SUM_CYCLE)
        n += put_wide(out + n, s->cycle_sum);
    if (bits & SUM_MS)
        n += put_wide(out + n, s->ms_sum);
    if (bits & SUM_FLOAT_COUNT)
        n += put_wide(out + n, s->float_count);
    if (bits & SUM_AMOUNT_FLOAT)
        n += put_double(out + n, s->amount_float);
    if (bits & SUM_WEIGHTED_FLOAT)
        n += put_double(out + n, s->weighted_float);
    return n;
}

static bool get_wide(const uint8_t *in, size_t len, size_t *at, df_wide *v)
{
    unsigned __int128 u;
    if (!get_varint(in, len, at, 133, &u))
        return false;
    *v = (df_wide)((u >> 1) ^ (0 - (u & 1)));
    return true;
}

static bool get_int64(const uint8_t *in, size_t len, size_t *at, int64_t *v)
{
    df_wide w;
    if (!get_wide(in, len, at, &w) || w < INT64_MIN || w > INT64_MAX)
        return false;
    *v = (int64_t)w;
    return true;
}

static bool get_double(const uint8_t *in, size_t len, size_t *at, double *v)
{
    if (len - *at < sizeof *v)
        return false;
    memcpy(v, in + *at, sizeof *v);
    *at += sizeof *v;
    return true;
}

size_t df_sums_unpack(const uint8_t *in, size_t len, df_sums *s)
{
    unsigned __int128 bits;
    size_t at = 0;
    memset(s, 0, sizeof *s);
    if (!get_varint(in, len, &at, 14, &bits) || bits > SUM_ALL)
        return 0;
    bool ok = (!(bits & SUM_COUNT) || get_int64(in, len, &at, &s->count)) &&
              (!(bits & SUM_AMOUNT_INT) || get_wide(in, len, &at, &s->amount_int)) &&
              (!(bits & SUM_WEIGHTED_INT) || get_wide(in, len, &at, &s->weighted_int)) &&
              (!(bits & SUM_SINCE) || get_wide(in, len, &at, &s->since_sum)) &&
              (!(bits & SUM_CYCLE) || get_wide(in, len, &at, &s->cycle_sum)) &&
              (!(bits & SUM_MS) || get_wide(in, len, &at, &s->ms_sum)) &&
              (!(bits & SUM_FLOAT_COUNT) || get_int64(in, len, &at, &s->float_count)) &&
              (!(bits & SUM_AMOUNT_FLOAT) || get_double(in, len, &at, &s->amount_float)) &&
              (!(bits & SUM_WEIGHTED_FLOAT) || get_double(in, len, &at, &s->weighted_float));
    return ok ? at : 0;
}
