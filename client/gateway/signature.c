/* signature.c: HMAC-SHA256 checks of webhooks (generic and HubSpot v3), HTTP basic credentials,
 * and signing, on libsodium. Every comparison of a secret-derived value is in constant time. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "signature.h"

#define MAC_BYTES crypto_auth_hmacsha256_BYTES
/* More than any user:password worth sending; longer headers are refused unread. */
#define BASIC_MAX 1024

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* libsodium asks for sodium_init before any other call; it may be called again and again. Only
 * its random source can fail, which nothing here uses, so a failure changes nothing. */
static void sodium_ready(void)
{
    if (sodium_init() < 0)
        return;
}

static void hmac_begin(crypto_auth_hmacsha256_state *st, const char *secret)
{
    sodium_ready();
    crypto_auth_hmacsha256_init(st, (const unsigned char *)secret, strlen(secret));
}

static void hmac_add(crypto_auth_hmacsha256_state *st, const void *data, size_t len)
{
    if (len)
        crypto_auth_hmacsha256_update(st, data, len);
}

static void body_mac(const char *secret, const void *body, size_t len, unsigned char mac[MAC_BYTES])
{
    crypto_auth_hmacsha256_state st;
    hmac_begin(&st, secret);
    hmac_add(&st, body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

void gw_signature_sign(const char *secret, const void *body, size_t len, char out[GW_SIGNATURE_MAX])
{
    unsigned char mac[MAC_BYTES];
    body_mac(secret, body, len, mac);
    memcpy(out, "sha256=", 7);
    sodium_bin2hex(out + 7, GW_SIGNATURE_MAX - 7, mac, sizeof mac);
}

int gw_signature_check_generic(const char *secret, const void *body, size_t len, const char *header,
                               char *err, size_t cap)
{
    if (!header)
        return fail(err, cap, "no X-Signature header");
    if (strncasecmp(header, "sha256=", 7) != 0)
        return fail(err, cap, "X-Signature is not sha256=HEX");
    const char *hex = header + 7, *end = NULL;
    size_t hex_len = strlen(hex), got = 0;
    unsigned char claimed[MAC_BYTES];
    if (hex_len != 2 * MAC_BYTES ||
        sodium_hex2bin(claimed, sizeof claimed, hex, hex_len, NULL, &got, &end) != 0 ||
        got != MAC_BYTES || end != hex + hex_len)
        return fail(err, cap, "X-Signature is not sha256= and 64 hex digits");
    unsigned char mac[MAC_BYTES];
    body_mac(secret, body, len, mac);
    if (sodium_memcmp(mac, claimed, MAC_BYTES) != 0)
        return fail(err, cap, "X-Signature does not match the body");
    return 0;
}

/* The characters HubSpot decodes in the URI before it signs it; the rest stay encoded. */
static int hubspot_decoded(const char *pct)
{
    static const struct {
        char code[3];
        char c;
    } decoded[] = {{"3A", ':'},  {"2F", '/'}, {"3F", '?'}, {"40", '@'}, {"21", '!'}, {"24", '$'},
                   {"27", '\''}, {"28", '('}, {"29", ')'}, {"2A", '*'}, {"2C", ','}, {"3B", ';'}};
    for (size_t i = 0; i < sizeof decoded / sizeof decoded[0]; i++)
        if (strncasecmp(pct, decoded[i].code, 2) == 0)
            return (unsigned char)decoded[i].c;
    return -1;
}

static void hmac_add_uri(crypto_auth_hmacsha256_state *st, const char *uri)
{
    const char *run = uri, *p = uri;
    while (*p) {
        int c = p[0] == '%' && p[1] && p[2] ? hubspot_decoded(p + 1) : -1;
        if (c < 0) {
            p++;
            continue;
        }
        hmac_add(st, run, (size_t)(p - run));
        char one = (char)c;
        hmac_add(st, &one, 1);
        p += 3;
        run = p;
    }
    hmac_add(st, run, (size_t)(p - run));
}

static bool parse_ms(const char *text, int64_t *ms)
{
    if (!*text || strlen(text) > 19)
        return false;
    for (const char *p = text; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE)
        return false;
    *ms = v;
    return true;
}

int gw_signature_check_hubspot_v3(const char *secret, const char *method, const char *uri,
                                  const void *body, size_t len, const char *signature,
                                  const char *timestamp, int64_t now_ms, char *err, size_t cap)
{
    if (!signature)
        return fail(err, cap, "no X-HubSpot-Signature-v3 header");
    if (!timestamp)
        return fail(err, cap, "no X-HubSpot-Request-Timestamp header");
    int64_t at;
    if (!parse_ms(timestamp, &at))
        return fail(err, cap, "X-HubSpot-Request-Timestamp is not a time in ms");
    uint64_t off = at > now_ms ? (uint64_t)at - (uint64_t)now_ms : (uint64_t)now_ms - (uint64_t)at;
    if (off > GW_HUBSPOT_WINDOW_MS)
        return fail(err, cap, "X-HubSpot-Request-Timestamp is %s minutes from now",
                    off > 99 * 60000ULL ? "more than 99" : "over 5");
    unsigned char claimed[MAC_BYTES];
    size_t sig_len = strlen(signature), got = 0;
    const char *end = NULL;
    if (sodium_base642bin(claimed, sizeof claimed, signature, sig_len, NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != MAC_BYTES || end != signature + sig_len)
        return fail(err, cap, "X-HubSpot-Signature-v3 is not the base64 of 32 bytes");
    crypto_auth_hmacsha256_state st;
    hmac_begin(&st, secret);
    hmac_add(&st, method ? method : "", method ? strlen(method) : 0);
    hmac_add_uri(&st, uri ? uri : "");
    hmac_add(&st, body, len);
    hmac_add(&st, timestamp, strlen(timestamp));
    unsigned char mac[MAC_BYTES];
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
    if (sodium_memcmp(mac, claimed, MAC_BYTES) != 0)
        return fail(err, cap, "X-HubSpot-Signature-v3 does not match the request");
    return 0;
}

int gw_signature_check_basic(const char *user, const char *password, const char *authorization,
                             char *err, size_t cap)
{
    if (!authorization)
        return fail(err, cap, "no Authorization header");
    if (strncasecmp(authorization, "Basic ", 6) != 0)
        return fail(err, cap, "Authorization is not Basic");
    const char *b64 = authorization + 6;
    while (*b64 == ' ')
        b64++;
    size_t b64_len = strlen(b64), got = 0;
    const char *end = NULL;
    unsigned char given[BASIC_MAX];
    if (b64_len > BASIC_MAX ||
        sodium_base642bin(given, sizeof given, b64, b64_len, NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != b64 + b64_len)
        return fail(err, cap, "Authorization is not Basic and base64");
    /* Digests of both sides, so that the compare takes as long whatever the lengths. */
    sodium_ready();
    unsigned char want_digest[32], given_digest[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof want_digest);
    crypto_generichash_update(&st, (const unsigned char *)user, strlen(user));
    crypto_generichash_update(&st, (const unsigned char *)":", 1);
    crypto_generichash_update(&st, (const unsigned char *)password, strlen(password));
    crypto_generichash_final(&st, want_digest, sizeof want_digest);
    crypto_generichash(given_digest, sizeof given_digest, given, got, NULL, 0);
    sodium_memzero(given, sizeof given);
    if (sodium_memcmp(want_digest, given_digest, sizeof want_digest) != 0)
        return fail(err, cap, "Authorization does not give the hook's user and password");
    return 0;
}
