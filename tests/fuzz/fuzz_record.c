/* fuzz_record.c: what the store keeps, read back from damaged bytes (LMDB
 * has no checksums): a deal record, a log record and its event, a
 * pipeline, a stored deal.moved and an aggregate row's packed sums. Each
 * decoder must refuse, never crash, and a deal record or sums it accepts
 * must encode back to bytes that decode to the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "move.h"
#include "record.h"
#include "store.h"

#include "fuzz.h"

static df_deal deal, again; /* large */
static df_pipeline pipeline;
static df_event event;
static uint8_t encoded[DF_DEAL_RECORD_MAX], reencoded[DF_DEAL_RECORD_MAX];
static msgpack_zone zone;

static void deal_record(const uint8_t *data, size_t size)
{
    df_deal_init(&deal, "d-1", 3);
    if (df_deal_decode(data, size, &deal) != 0)
        return;
    /* flags and counters wider than the fields they fill may be dropped
     * once; what is left must survive a second trip unchanged */
    size_t len = df_deal_encode(&deal, encoded);
    REQUIRE(len <= DF_DEAL_RECORD_MAX);
    df_deal_init(&again, "d-1", 3);
    REQUIRE(df_deal_decode(encoded, len, &again) == 0);
    REQUIRE(df_deal_encode(&again, reencoded) == len);
    REQUIRE(memcmp(encoded, reencoded, len) == 0);
}

static void log_event(const char *buf, size_t size)
{
    msgpack_object obj;
    df_error err;
    msgpack_zone_clear(&zone);
    if (df_msgpack_unpack(buf, size, &zone, &obj, &err) != 0)
        return;
    if (df_recorded_decode(&obj, &event, &err) != 0)
        REQUIRE(err.code == DF_EBAD_REQUEST);
}

/* A log record, read with a short check and with a whole digest: one that
 * passes gives the event's bytes at its end, and a digest that is theirs
 * unless the record says it was redacted. */
static void log_record(const uint8_t *data, size_t size)
{
    static const uint64_t short_checks_from[] = {1, UINT64_MAX};
    for (size_t i = 0; i < 2; i++) {
        MDB_val record = {size, (void *)data}, bytes_now;
        df_log_proof proof;
        uint8_t digest[DF_CHAIN_BYTES];
        if (df_store_record_read(short_checks_from[i], 5, &record, &bytes_now, &proof) != 0)
            continue;
        const uint8_t *bytes = bytes_now.mv_data;
        REQUIRE(bytes > data && bytes + bytes_now.mv_size == data + size);
        df_chain_digest(bytes, bytes_now.mv_size, digest);
        REQUIRE(proof.redacted || memcmp(digest, proof.digest, DF_CHAIN_BYTES) == 0);
    }
}

/* A stored move it accepts packs to a stored form that reads back the same. */
static void stored_move(const char *buf, size_t size)
{
    static df_move move, again_move;
    msgpack_sbuffer sb, sb_again;
    msgpack_packer pk;
    msgpack_zone_clear(&zone);
    if (df_move_unpack_stored(buf, size, 7, &zone, &move) != 0)
        return;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    df_move_pack(&pk, &move);
    msgpack_sbuffer_clear(&sb);
    df_move_pack_stored(&pk, &move);
    msgpack_zone_clear(&zone);
    REQUIRE(df_move_unpack_stored(sb.data, sb.size, 7, &zone, &again_move) == 0);
    msgpack_sbuffer_init(&sb_again);
    msgpack_packer_init(&pk, &sb_again, msgpack_sbuffer_write);
    df_move_pack_stored(&pk, &again_move);
    REQUIRE(sb.size == sb_again.size && memcmp(sb.data, sb_again.data, sb.size) == 0);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&sb_again);
}

/* Packed sums it accepts pack again to at most as many bytes, which read
 * back the same (a float field of 0 is left out when packed again). */
static void packed_sums(const uint8_t *data, size_t size)
{
    df_sums sums, again_sums;
    uint8_t packed[DF_SUMS_PACKED_MAX];
    size_t n = df_sums_unpack(data, size, &sums);
    if (n == 0)
        return;
    REQUIRE(n <= size);
    size_t len = df_sums_pack(&sums, packed);
    REQUIRE(len <= n && len <= DF_SUMS_PACKED_MAX);
    REQUIRE(df_sums_unpack(packed, len, &again_sums) == len);
    REQUIRE(sums.count == again_sums.count && sums.amount_int == again_sums.amount_int &&
            sums.weighted_int == again_sums.weighted_int &&
            sums.since_sum == again_sums.since_sum && sums.cycle_sum == again_sums.cycle_sum &&
            sums.ms_sum == again_sums.ms_sum && sums.float_count == again_sums.float_count);
    REQUIRE(memcmp(&sums.amount_float, &again_sums.amount_float, sizeof(double)) == 0 ||
            sums.amount_float == 0);
    REQUIRE(memcmp(&sums.weighted_float, &again_sums.weighted_float, sizeof(double)) == 0 ||
            sums.weighted_float == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    static bool ready;
    if (!ready) {
        msgpack_zone_init(&zone, 4096);
        ready = true;
    }
    deal_record(data, size);
    log_record(data, size);
    log_event(buf, size);

    df_name_set(&pipeline.name, "default", 7);
    if (df_pipeline_unpack(buf, size, &pipeline) == 0)
        REQUIRE(pipeline.nstages >= 0 && pipeline.nstages <= DF_MAX_STAGES);

    stored_move(buf, size);
    packed_sums(data, size);
    return 0;
}
