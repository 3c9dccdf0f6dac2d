/* keyfile.h: CURVE key files, read by one rule wherever a key file is read (the daemon's
 * --curve-key, the client's key file and server key file, dealflow keygen --public): the key
 * is the first line that is neither blank nor a # comment, 40 characters of Z85 alone on its
 * line (blanks around it and a # comment after it allowed); lines after it are ignored but
 * for a `# public KEY` line, which names the public key of the secret key above it. A secret
 * key file must be a regular file that group and others cannot access. */
#ifndef DF_KEYFILE_H
#define DF_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DF_KEY_BYTES    32    /* a CURVE key */
#define DF_KEY_Z85_LEN  40    /* the same in Z85 */
#define DF_KEY_FILE_MAX 16384 /* a key file is a few short lines; more is not a key file */

/* Decodes text[0..len) when it is exactly a Z85 key of 40 characters, each of Z85's alphabet,
 * no group of five above 2^32 - 1 (which would not encode back the same). */
bool df_key_z85_decode(const char *text, size_t len, uint8_t key[DF_KEY_BYTES]);

/* Encodes key as 40 characters of Z85 and a NUL. */
void df_key_z85_encode(const uint8_t key[DF_KEY_BYTES], char z85[DF_KEY_Z85_LEN + 1]);

typedef enum df_key_text_status {
    DF_KEY_TEXT_OK,
    DF_KEY_TEXT_NONE,     /* only blank and # lines: no key */
    DF_KEY_TEXT_MALFORMED /* the first other line is not a key alone */
} df_key_text_status;

/* What a key file's text holds. */
typedef struct df_key_text {
    uint8_t key[DF_KEY_BYTES];
    bool has_public; /* a `# public KEY` line was found */
    uint8_t listed_public[DF_KEY_BYTES];
    unsigned line; /* the key's line, or the malformed line (from 1) */
} df_key_text;

/* Finds the key in a key file's text[0..len) (no I/O; any bytes). */
df_key_text_status df_key_text_parse(const char *text, size_t len, df_key_text *out);

/* Reads the key file at path into buf (cap bytes, NUL-terminated, *len without the NUL): a
 * regular file under cap bytes; with secret, one that group and others cannot access and that
 * belongs to the reading user (root may read anyone's). what names the file in why, e.g. "the
 * key file (DEALFLOW_KEY_FILE)". Returns false with why set. */
bool df_key_file_read(const char *what, const char *path, bool secret, char *buf, size_t cap,
                      size_t *len, char *why, size_t why_len);

/* Reads a secret key file: its secret key and the public key derived from it, refusing one
 * whose `# public` line names another public key. The file's text is wiped before returning.
 * Returns false with why set (and the keys wiped). */
bool df_key_file_secret(const char *what, const char *path, uint8_t secret[DF_KEY_BYTES],
                        uint8_t public_key[DF_KEY_BYTES], char *why, size_t why_len);

/* Reads a public key file (no mode asked), refusing a secret key file: one whose `# public`
 * line names another key than its first. Returns false with why set. */
bool df_key_file_public(const char *what, const char *path, uint8_t public_key[DF_KEY_BYTES],
                        char *why, size_t why_len);

#endif
