/* record.h: the stored form of a deal's folded state, of a pipeline and of
 * an aggregate row's sums:
 * compact byte layouts that the store keeps and reads back. No I/O. */
#ifndef DF_RECORD_H
#define DF_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "fold.h"
#include "metrics.h"

/* A stored deal is never larger than this: the fixed fields, the names and
 * texts, the value positions, a time for each stage it visited (a name and
 * a varint of at most 10 bytes), then its source, last open stage and loss
 * reason. */
#define DF_DEAL_RECORD_MAX                                                                         \
    (1024 + 5 * 16 + DF_MAX_STAGES * (DF_MAX_NAME + 11) + 1 + 3 * (DF_MAX_NAME + 1) + 20)

/* Writes d (without its id, which is the key) to out, which holds
 * DF_DEAL_RECORD_MAX bytes; returns the length. */
size_t df_deal_encode(const df_deal *d, uint8_t *out);

/* Reads a record written by df_deal_encode into d, whose id the caller has
 * set. Returns 0, or DF_EINTERNAL when the bytes are not a deal record. */
int df_deal_decode(const uint8_t *in, size_t len, df_deal *d);

/* An aggregate row's sums (metrics.h) as stored: a varint bitmap of the
 * fields that are not 0, then each of them, integers as zigzag varints and
 * floats as their 8 bytes. Most rows take 2 to 20 bytes, against the 112
 * of a df_sums. */
#define DF_SUMS_PACKED_MAX (2 + 7 * 19 + 2 * 8)
size_t df_sums_pack(const df_sums *s, uint8_t *out);
/* Reads packed sums at the start of in; returns the bytes they took, or 0
 * when the bytes are not packed sums (LMDB has no checksums). */
size_t df_sums_unpack(const uint8_t *in, size_t len, df_sums *s);

/* A pipeline's stages as msgpack: [[name, probability, rot_days, outcome], ...]. */
void df_pipeline_pack(msgpack_packer *pk, const df_pipeline *p);

/* Reads df_pipeline_pack's bytes into p, whose name the caller has set.
 * Returns 0 or DF_EINTERNAL. */
int df_pipeline_unpack(const char *buf, size_t len, df_pipeline *p);

#endif
