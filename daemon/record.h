/* record.h: the stored form of a deal's folded state and of a pipeline:
 * compact byte layouts that the store keeps and reads back. No I/O. */
#ifndef DF_RECORD_H
#define DF_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "fold.h"

/* A stored deal is never larger than this: the fixed fields, the names and
 * texts, the value positions, a time for each stage it visited, then its
 * source, last open stage and loss reason. */
#define DF_DEAL_RECORD_MAX                                                                         \
    (1024 + 5 * 16 + DF_MAX_STAGES * (DF_MAX_NAME + 9) + 1 + 3 * (DF_MAX_NAME + 1) + 16)

/* Writes d (without its id, which is the key) to out, which holds
 * DF_DEAL_RECORD_MAX bytes; returns the length. */
size_t df_deal_encode(const df_deal *d, uint8_t *out);

/* Reads a record written by df_deal_encode into d, whose id the caller has
 * set. Returns 0, or DF_EINTERNAL when the bytes are not a deal record. */
int df_deal_decode(const uint8_t *in, size_t len, df_deal *d);

/* A pipeline's stages as msgpack: [[name, probability, rot_days, outcome], ...]. */
void df_pipeline_pack(msgpack_packer *pk, const df_pipeline *p);

/* Reads df_pipeline_pack's bytes into p, whose name the caller has set.
 * Returns 0 or DF_EINTERNAL. */
int df_pipeline_unpack(const char *buf, size_t len, df_pipeline *p);

#endif
