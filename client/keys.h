/* keys.h: the CURVE keys of a client: the server's public key and the client's own key
 * pair, read from the options or the environment and checked before any socket uses them. */
#ifndef DF_CLIENT_KEYS_H
#define DF_CLIENT_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "dealflow.h"

#define DF__KEY_BYTES 32 /* a CURVE key, as ZeroMQ takes it */

/* What every socket of a client sets when the client speaks CURVE. */
typedef struct df__curve_keys {
    uint8_t server[DF__KEY_BYTES];
    uint8_t public_key[DF__KEY_BYTES];
    uint8_t secret_key[DF__KEY_BYTES];
} df__curve_keys;

/* Reads the server key (Z85, or a file holding it) and the key file (a secret
 * key, readable by its owner only), the files as keyfile.h says, each
 * the option when not NULL, else the environment (DEALFLOW_SERVER_KEY,
 * DEALFLOW_KEY_FILE); an empty one is none. Returns 0 with *use false when
 * neither is given, 0 with *use true and *keys filled when both are, or
 * DF_EBAD_REQUEST naming what is wrong. */
int df__curve_keys_load(const char *server_key, const char *key_file, df__curve_keys *keys,
                        bool *use, df_error *err);

/* Overwrites the secret key so that it does not outlive the client in memory. */
void df__curve_keys_wipe(df__curve_keys *keys);

#endif
