/* redact.h: erasure of personal values: what a `redact` request asks for,
 * an event map rewritten without those values (an owner kept as a stable
 * pseudonym, so that figures per owner group the same deals), the store's
 * secret the pseudonyms are keyed with, and the recorded `redaction` event. */
#ifndef DF_REDACT_H
#define DF_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "store.h"

#define DF_REDACT_FIELDS_MAX 64
#define DF_REDACT_SECRET     32
/* "owner-" and 16 hex digits, and a NUL */
#define DF_PSEUDONYM_LEN 23

typedef struct df_redact_request {
    df_str deal;
    df_str fields[DF_REDACT_FIELDS_MAX];
    uint32_t nfields;
    df_str reason;
} df_redact_request;

/* Reads a `redact` request map: `deal`, `fields` (1..DF_REDACT_FIELDS_MAX
 * names: `name`, `owner`, `actor`, `note` or keys of the sender's own) and
 * `reason`. Returns 0, or DF_EBAD_REQUEST with a message naming what is
 * wrong (a field that may not be redacted among them). Strings point into
 * the map. */
int df_redact_read(const msgpack_object *map, df_redact_request *rq, df_error *err);

/* The pseudonym of an owner name: "owner-" and the first 8 bytes, in hex,
 * of BLAKE2b keyed with the store's secret. out holds DF_PSEUDONYM_LEN
 * bytes. */
void df_redact_pseudonym(const uint8_t secret[DF_REDACT_SECRET], const char *name, size_t len,
                         char out[DF_PSEUDONYM_LEN]);

/* Packs into out the map raw[0..len) without the request's fields, an
 * `owner` string replaced by its pseudonym; *changed is false (and out
 * untouched) when nothing of it is to be removed, and for a `redaction`
 * event, which holds no personal values. Returns 0 or MDB_CORRUPTED when
 * raw is not a map. zone is cleared and used for the unpacked map. */
int df_redact_rewrite(const char *raw, size_t len, const df_redact_request *rq,
                      const uint8_t secret[DF_REDACT_SECRET], msgpack_zone *zone,
                      msgpack_sbuffer *out, bool *changed);

/* The same for a stored deal.moved (move.h), whose only personal value is
 * its owner. */
int df_redact_move(const char *raw, size_t len, const df_redact_request *rq,
                   const uint8_t secret[DF_REDACT_SECRET], msgpack_zone *zone, msgpack_sbuffer *out,
                   bool *changed);

/* The store's secret for pseudonyms, made (at random) and kept in meta in
 * txn the first time. Returns 0 or an LMDB error. */
int df_redact_secret(df_store *st, MDB_txn *txn, uint8_t secret[DF_REDACT_SECRET]);

/* Packs the recorded `redaction` event into out: id `redaction/SEQ`, type,
 * deal, fields, reason, how many events it changed, `by` (the sender's key
 * name, when by.len > 0), seq, recv and at. */
int df_redact_record(const df_redact_request *rq, uint32_t changed, df_str by, uint64_t seq,
                     int64_t recv, msgpack_sbuffer *out);

/* What rewriting a deal's events keeps between requests: the writer
 * thread's. */
typedef struct df_redactor {
    msgpack_zone zone;
    msgpack_sbuffer bytes;
    uint64_t *seqs; /* the events of the deal being redacted */
    size_t nseqs, cap;
    int rc; /* ENOMEM when seqs could not hold them all */
} df_redactor;

void df_redactor_init(df_redactor *x);
void df_redactor_destroy(df_redactor *x);

/* Rewrites, without the request's values, each recorded event of the deal
 * that holds any (those the store's index holds, and `pending`, those it
 * does not yet) and the deal.moved each made; *changed counts the events.
 * in_memory says the deal has state in memory. Returns 0, MDB_CORRUPTED for
 * a deal with no event at all, ENOMEM, or an LMDB error. */
int df_redact_events(df_redactor *x, df_store *st, MDB_txn *txn, const df_redact_request *rq,
                     const uint64_t *pending, size_t npending, bool in_memory, uint32_t *changed);

#endif
