/* redact.c: erasure of personal values from recorded events (see redact.h
 * and "Redaction" in PROTOCOL.md). */
#include "redact.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "event.h"

static const char SECRET_KEY[] = "redact_secret";
static const char PSEUDONYM_PREFIX[] = "owner-";

/* The contract's keys whose values are figures, identities or the daemon's
 * own: never redacted. Every other key the contract knows is one of these
 * four, or `source`, which was a sender's own key before deals had one and
 * stays redactable; a sender's own keys may be redacted too. */
static bool field_redactable(df_str f)
{
    if (df_str_eq(f, "name") || df_str_eq(f, "owner") || df_str_eq(f, "actor") ||
        df_str_eq(f, "note") || df_str_eq(f, "source"))
        return true;
    /* `by` is set by the daemon for keyed senders; `redacted` is read back
     * by replay's proof */
    return !df_event_key_known(f.ptr, f.len) && !df_str_eq(f, "by") && !df_str_eq(f, "redacted");
}

int df_redact_read(const msgpack_object *map, df_redact_request *rq, df_error *err)
{
    bool bad = false;
    char shown[48];
    memset(rq, 0, sizeof(*rq));
    if (!df_get_str(map, "deal", &rq->deal, &bad) || rq->deal.len == 0 ||
        rq->deal.len > DF_MAX_ID || !df_utf8_valid(rq->deal.ptr, rq->deal.len))
        return df_fail(err, DF_EBAD_REQUEST, "`deal` must be a string of 1..%d bytes of UTF-8",
                       DF_MAX_ID);
    if (!df_get_str(map, "reason", &rq->reason, &bad) || rq->reason.len == 0 ||
        rq->reason.len > DF_MAX_TEXT || !df_utf8_valid(rq->reason.ptr, rq->reason.len))
        return df_fail(err, DF_EBAD_REQUEST, "`reason` must be a string of 1..%d bytes of UTF-8",
                       DF_MAX_TEXT);
    const msgpack_object *fields = df_map_get(map, "fields");
    if (!fields || fields->type != MSGPACK_OBJECT_ARRAY || fields->via.array.size == 0 ||
        fields->via.array.size > DF_REDACT_FIELDS_MAX)
        return df_fail(err, DF_EBAD_REQUEST, "`fields` must be an array of 1..%d field names",
                       DF_REDACT_FIELDS_MAX);
    for (uint32_t i = 0; i < fields->via.array.size; i++) {
        const msgpack_object *o = &fields->via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
            o->via.str.size > DF_MAX_NAME || !df_utf8_valid(o->via.str.ptr, o->via.str.size))
            return df_fail(err, DF_EBAD_REQUEST,
                           "fields[%u] must be a field name of 1..%d bytes of UTF-8", i,
                           DF_MAX_NAME);
        df_str f = {o->via.str.ptr, o->via.str.size};
        if (!field_redactable(f))
            return df_fail(err, DF_EBAD_REQUEST,
                           "`%s` cannot be redacted: only `name`, `owner`, `actor`, `note` and "
                           "keys of the sender's own can",
                           df_printable(f.ptr, f.len, shown, sizeof(shown)));
        rq->fields[rq->nfields++] = f;
    }
    return 0;
}

void df_redact_pseudonym(const uint8_t secret[DF_REDACT_SECRET], const char *name, size_t len,
                         char out[DF_PSEUDONYM_LEN])
{
    uint8_t h[8];
    char hex[2 * sizeof(h) + 1];
    crypto_generichash(h, sizeof(h), (const unsigned char *)name, len, secret, DF_REDACT_SECRET);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    memcpy(out, PSEUDONYM_PREFIX, sizeof(PSEUDONYM_PREFIX) - 1);
    memcpy(out + sizeof(PSEUDONYM_PREFIX) - 1, hex, sizeof(hex));
}

/* An owner already replaced, by an earlier redaction of the same event:
 * kept as it is, so that a pseudonym stays the same however often its deal
 * is redacted. */
static bool is_pseudonym(const msgpack_object *o)
{
    size_t prefix = sizeof(PSEUDONYM_PREFIX) - 1;
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size != DF_PSEUDONYM_LEN - 1 ||
        memcmp(o->via.str.ptr, PSEUDONYM_PREFIX, prefix) != 0)
        return false;
    for (size_t i = prefix; i < o->via.str.size; i++) {
        char c = o->via.str.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static bool key_asked(const df_redact_request *rq, const msgpack_object *key)
{
    if (key->type != MSGPACK_OBJECT_STR)
        return false;
    for (uint32_t i = 0; i < rq->nfields; i++)
        if (rq->fields[i].len == key->via.str.size &&
            memcmp(rq->fields[i].ptr, key->via.str.ptr, key->via.str.size) == 0)
            return true;
    return false;
}

static bool key_is(const msgpack_object *key, const char *lit)
{
    size_t n = strlen(lit);
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == n &&
           memcmp(key->via.str.ptr, lit, n) == 0;
}

/* What becomes of one pair: kept, replaced by the pseudonym, or removed. */
typedef enum pair_fate { KEEP, PSEUDONYM, REMOVE } pair_fate;

static pair_fate fate(const df_redact_request *rq, const msgpack_object_kv *kv)
{
    if (!key_asked(rq, &kv->key))
        return KEEP;
    if (key_is(&kv->key, "owner")) {
        if (kv->val.type == MSGPACK_OBJECT_NIL || is_pseudonym(&kv->val))
            return KEEP;
        return kv->val.type == MSGPACK_OBJECT_STR ? PSEUDONYM : REMOVE;
    }
    return REMOVE;
}

int df_redact_rewrite(const char *raw, size_t len, const df_redact_request *rq,
                      const uint8_t secret[DF_REDACT_SECRET], msgpack_zone *zone,
                      msgpack_sbuffer *out, bool *changed)
{
    msgpack_object map;
    *changed = false;
    msgpack_zone_clear(zone);
    if (df_msgpack_unpack(raw, len, zone, &map, NULL) != 0 || map.type != MSGPACK_OBJECT_MAP)
        return MDB_CORRUPTED;
    const msgpack_object_kv *kv = map.via.map.ptr;
    uint32_t n = map.via.map.size, kept = 0;
    bool touched = false;
    for (uint32_t i = 0; i < n; i++) {
        if (key_is(&kv[i].key, "type") && kv[i].val.type == MSGPACK_OBJECT_STR &&
            kv[i].val.via.str.size == 9 && memcmp(kv[i].val.via.str.ptr, "redaction", 9) == 0)
            return 0;
        pair_fate f = fate(rq, &kv[i]);
        kept += f != REMOVE;
        touched |= f != KEEP;
    }
    if (!touched)
        return 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int failed = msgpack_pack_map(&pk, kept);
    for (uint32_t i = 0; i < n; i++) {
        pair_fate f = fate(rq, &kv[i]);
        if (f == REMOVE)
            continue;
        failed |= msgpack_pack_object(&pk, kv[i].key);
        if (f == PSEUDONYM) {
            char pseudonym[DF_PSEUDONYM_LEN];
            df_redact_pseudonym(secret, kv[i].val.via.str.ptr, kv[i].val.via.str.size, pseudonym);
            failed |= msgpack_pack_str_with_body(&pk, pseudonym, DF_PSEUDONYM_LEN - 1);
        } else {
            failed |= msgpack_pack_object(&pk, kv[i].val);
        }
    }
    if (failed)
        return ENOMEM;
    *changed = true;
    return 0;
}

/* The owner's place in a stored deal.moved (df_move_pack_stored). */
#define MOVE_OWNER 7

int df_redact_move(const char *raw, size_t len, const df_redact_request *rq,
                   const uint8_t secret[DF_REDACT_SECRET], msgpack_zone *zone, msgpack_sbuffer *out,
                   bool *changed)
{
    msgpack_object move;
    msgpack_object_kv owner = {.key = {.type = MSGPACK_OBJECT_STR, .via.str = {5, "owner"}}};
    *changed = false;
    msgpack_zone_clear(zone);
    if (df_msgpack_unpack(raw, len, zone, &move, NULL) != 0 || move.type != MSGPACK_OBJECT_ARRAY ||
        move.via.array.size <= MOVE_OWNER)
        return MDB_CORRUPTED;
    owner.val = move.via.array.ptr[MOVE_OWNER];
    if (fate(rq, &owner) != PSEUDONYM)
        return 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int failed = msgpack_pack_array(&pk, move.via.array.size);
    for (uint32_t i = 0; i < move.via.array.size; i++) {
        if (i == MOVE_OWNER) {
            char pseudonym[DF_PSEUDONYM_LEN];
            df_redact_pseudonym(secret, owner.val.via.str.ptr, owner.val.via.str.size, pseudonym);
            failed |= msgpack_pack_str_with_body(&pk, pseudonym, DF_PSEUDONYM_LEN - 1);
        } else {
            failed |= msgpack_pack_object(&pk, move.via.array.ptr[i]);
        }
    }
    if (failed)
        return ENOMEM;
    *changed = true;
    return 0;
}

int df_redact_secret(df_store *st, MDB_txn *txn, uint8_t secret[DF_REDACT_SECRET])
{
    MDB_val k = {sizeof(SECRET_KEY) - 1, (void *)SECRET_KEY}, v;
    int rc = mdb_get(txn, df_store_dbi(st, DF_DB_META), &k, &v);
    if (rc == 0 && v.mv_size == DF_REDACT_SECRET) {
        memcpy(secret, v.mv_data, DF_REDACT_SECRET);
        return 0;
    }
    if (rc == 0)
        return MDB_CORRUPTED;
    if (rc != MDB_NOTFOUND)
        return rc;
    randombytes_buf(secret, DF_REDACT_SECRET);
    v = (MDB_val){DF_REDACT_SECRET, secret};
    return mdb_put(txn, df_store_dbi(st, DF_DB_META), &k, &v, 0);
}

int df_redact_record(const df_redact_request *rq, uint32_t changed, df_str by, uint64_t seq,
                     int64_t recv, msgpack_sbuffer *out)
{
    char id[40];
    int idlen = snprintf(id, sizeof(id), DF_REDACTION_ID_PREFIX "%llu", (unsigned long long)seq);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int failed = msgpack_pack_map(&pk, by.len > 0 ? 10 : 9);
    df_pack_cstr(&pk, "id");
    df_pack_str(&pk, id, (size_t)idlen);
    df_pack_cstr(&pk, "type");
    df_pack_cstr(&pk, "redaction");
    df_pack_cstr(&pk, "deal");
    df_pack_str(&pk, rq->deal.ptr, rq->deal.len);
    df_pack_cstr(&pk, "fields");
    failed |= msgpack_pack_array(&pk, rq->nfields);
    for (uint32_t i = 0; i < rq->nfields; i++)
        df_pack_str(&pk, rq->fields[i].ptr, rq->fields[i].len);
    df_pack_cstr(&pk, "reason");
    df_pack_str(&pk, rq->reason.ptr, rq->reason.len);
    df_pack_cstr(&pk, "events");
    failed |= msgpack_pack_uint32(&pk, changed);
    if (by.len > 0) {
        df_pack_cstr(&pk, "by");
        df_pack_str(&pk, by.ptr, by.len);
    }
    df_pack_cstr(&pk, "seq");
    failed |= msgpack_pack_uint64(&pk, seq);
    df_pack_cstr(&pk, "recv");
    failed |= msgpack_pack_int64(&pk, recv);
    df_pack_cstr(&pk, "at");
    failed |= msgpack_pack_int64(&pk, recv);
    return failed ? ENOMEM : 0;
}

/* ---- a deal's recorded events rewritten ---- */

static int collect_seq(void *ctx, uint64_t seq)
{
    df_redactor *x = ctx;
    if (!df_grow((void **)&x->seqs, &x->cap, x->nseqs + 1, sizeof(*x->seqs))) {
        x->rc = ENOMEM; /* the scan stops: the redaction must not miss an event */
        return 1;
    }
    x->seqs[x->nseqs++] = seq;
    return 0;
}

void df_redactor_init(df_redactor *x)
{
    memset(x, 0, sizeof(*x));
    msgpack_zone_init(&x->zone, 4096);
    msgpack_sbuffer_init(&x->bytes);
}

void df_redactor_destroy(df_redactor *x)
{
    msgpack_zone_destroy(&x->zone);
    msgpack_sbuffer_destroy(&x->bytes);
    free(x->seqs);
}

int df_redact_events(df_redactor *x, df_store *st, MDB_txn *txn, const df_redact_request *rq,
                     const uint64_t *pending, size_t npending, bool in_memory, uint32_t *changed)
{
    uint8_t secret[DF_REDACT_SECRET];
    int rc = df_redact_secret(st, txn, secret);
    x->nseqs = 0;
    x->rc = 0;
    if (rc == 0)
        rc = df_store_deal_event_scan(st, txn, rq->deal.ptr, rq->deal.len, 0, collect_seq, x);
    if (rc == 0)
        rc = x->rc;
    for (size_t i = 0; rc == 0 && i < npending; i++)
        if (collect_seq(x, pending[i]))
            rc = ENOMEM;
    if (rc == 0 && !in_memory && x->nseqs == 0)
        rc = MDB_CORRUPTED; /* a deal with no event */
    *changed = 0;
    for (size_t i = 0; rc == 0 && i < x->nseqs; i++) {
        uint64_t seq = x->seqs[i];
        MDB_val v;
        bool touched;
        if ((rc = df_store_log_get(st, txn, seq, &v)) != 0)
            break;
        msgpack_sbuffer_clear(&x->bytes);
        if ((rc = df_redact_rewrite(v.mv_data, v.mv_size, rq, secret, &x->zone, &x->bytes,
                                    &touched)) != 0)
            break;
        if (touched) {
            (*changed)++;
            if ((rc = df_store_log_redact(st, txn, seq, x->bytes.data, x->bytes.size)) != 0)
                break;
        }
        /* a move carries the deal's owner also when its event did not */
        rc = df_store_move_get(st, txn, seq, &v);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        msgpack_sbuffer_clear(&x->bytes);
        if (rc == 0 &&
            (rc = df_redact_move(v.mv_data, v.mv_size, rq, secret, &x->zone, &x->bytes,
                                 &touched)) == 0 &&
            touched)
            rc = df_store_move_replace(st, txn, seq, x->bytes.data, x->bytes.size);
    }
    sodium_memzero(secret, sizeof(secret));
    return rc;
}
