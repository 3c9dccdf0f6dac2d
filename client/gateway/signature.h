/* signature.h: proving that a webhook came from who shares its secret: HMAC-SHA256 checks of the
 * generic `X-Signature: sha256=HEX` and of HubSpot's v3 signature, HTTP basic credentials, and
 * the signing of what the gateway sends. Pure: no I/O, compares in constant time. */
#ifndef GW_SIGNATURE_H
#define GW_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

/* "sha256=" and 64 hex digits, with the NUL. */
#define GW_SIGNATURE_MAX (7 + 64 + 1)

/* HubSpot refuses to be believed about a request further than this from now. */
#define GW_HUBSPOT_WINDOW_MS (5 * 60 * 1000)

/* Writes "sha256=HEX" (lowercase) of the HMAC-SHA256 of body with secret into out. */
void gw_signature_sign(const char *secret, const void *body, size_t len,
                       char out[GW_SIGNATURE_MAX]);

/* Checks header (the value of X-Signature, NULL when absent) against the HMAC-SHA256 of body
 * with secret: "sha256=" and 64 hex digits, either case. 0, or -1 with why. */
int gw_signature_check_generic(const char *secret, const void *body, size_t len, const char *header,
                               char *err, size_t cap);

/* Checks HubSpot's v3 signature: signature is X-HubSpot-Signature-v3 (base64 of the HMAC-SHA256
 * of method, uri, body and timestamp), timestamp X-HubSpot-Request-Timestamp (ms), either NULL
 * when absent. uri is the URL HubSpot called; the characters HubSpot decodes before signing are
 * decoded here too. A timestamp more than GW_HUBSPOT_WINDOW_MS from now_ms is refused. 0, or -1
 * with why. */
int gw_signature_check_hubspot_v3(const char *secret, const char *method, const char *uri,
                                  const void *body, size_t len, const char *signature,
                                  const char *timestamp, int64_t now_ms, char *err, size_t cap);

/* Checks an Authorization header (NULL when absent) for HTTP basic credentials user:password.
 * 0, or -1 with why. */
int gw_signature_check_basic(const char *user, const char *password, const char *authorization,
                             char *err, size_t cap);

#endif
