/* outbox.h: the pure parts of webhooks out: a notification's JSON body (signed by
 * gw_signature_sign, signature.h), the retry schedule, and the name and text of an endpoint's
 * position file. */
#ifndef GW_OUTBOX_H
#define GW_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "endpoint-", 32 hex digits and ".pos", with the NUL. */
#define GW_STATE_NAME_MAX (9 + 32 + 4 + 1)
/* The text of a position file, at most. */
#define GW_POSITION_TEXT_MAX 32

/* The retry schedule: the first retry waits GW_BACKOFF_FIRST_MS, each
 * further one twice the one before, up to GW_BACKOFF_MAX_MS. */
#define GW_BACKOFF_FIRST_MS 250
#define GW_BACKOFF_MAX_MS   30000

/* The body POSTed for one notification: its msgpack map as compact JSON
 * with `topic` added (replacing one the map had). Returns a malloc'd
 * NUL-terminated string and its length in *len, or NULL when the body is
 * not one msgpack map that df_msgpack_check passes, or memory ran out. */
char *gw_outbox_body(const char *topic, const char *body, size_t body_len, size_t *len);

/* How long to wait before retry number `retry` (1 for the first), in ms:
 * the doubling schedule capped at GW_BACKOFF_MAX_MS, less up to a tenth of
 * it chosen by `random` (any 32-bit value), so that endpoints failing
 * together do not retry in step. */
int64_t gw_outbox_backoff_ms(uint32_t retry, uint32_t random);

/* The file name an endpoint's position is kept under: a hash of its url
 * and topics, so that changing either starts a new position. */
void gw_outbox_state_name(const char *url, const char *topics, char out[GW_STATE_NAME_MAX]);

/* A position file's text: the seq in decimal and a newline. Returns its length. */
size_t gw_outbox_position_format(uint64_t seq, char out[GW_POSITION_TEXT_MAX]);
/* Reads a position file's text back; false unless it is exactly what
 * gw_outbox_position_format writes. */
bool gw_outbox_position_parse(const char *text, size_t len, uint64_t *seq);

#endif
