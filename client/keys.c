/* keys.c: the CURVE keys of a client: the server's public key and the client's own key
 * pair, read from the options or the environment and checked before any socket uses them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "keyfile.h"
#include "keys.h"

/* The server's public key: Z85 itself, else a file holding it. */
static int load_server_key(const char *value, const char *from, uint8_t key[DF__KEY_BYTES],
                           df_error *err)
{
    if (df_key_z85_decode(value, strlen(value), key))
        return 0;
    if (access(value, F_OK) != 0 && errno == ENOENT)
        return df_fail(err, DF_EBAD_REQUEST,
                       "the server key (%s) is neither a Z85 public key of 40 characters nor a "
                       "file that exists",
                       from);
    char what[64], why[512];
    snprintf(what, sizeof what, "the server key file (%s)", from);
    if (!df_key_file_public(what, value, key, why, sizeof why))
        return df_fail(err, DF_EBAD_REQUEST, "%s", why);
    return 0;
}

/* The client's key pair from its secret key file. */
static int load_key_pair(const char *path, const char *from, df__curve_keys *keys, df_error *err)
{
    char what[64], why[512];
    snprintf(what, sizeof what, "the key file (%s)", from);
    if (!df_key_file_secret(what, path, keys->secret_key, keys->public_key, why, sizeof why))
        return df_fail(err, DF_EBAD_REQUEST, "%s", why);
    return 0;
}

/* The option when given, else the environment; NULL when it is empty. */
static const char *pick(const char *given, const char *env_name, const char **from)
{
    const char *value = given;
    *from = "option";
    if (value == NULL) {
        value = getenv(env_name);
        *from = env_name;
    }
    return value != NULL && value[0] != '\0' ? value : NULL;
}

int df__curve_keys_load(const char *server_key, const char *key_file, df__curve_keys *keys,
                        bool *use, df_error *err)
{
    const char *server_from, *key_from;
    const char *server = pick(server_key, "DEALFLOW_SERVER_KEY", &server_from);
    const char *key = pick(key_file, "DEALFLOW_KEY_FILE", &key_from);
    *use = false;
    if (server == NULL && key == NULL)
        return 0;
    if (server == NULL)
        return df_fail(err, DF_EBAD_REQUEST,
                       "a key file (%s) is given but no server key: set DEALFLOW_SERVER_KEY or "
                       "the server_key option too",
                       key_from);
    if (key == NULL)
        return df_fail(err, DF_EBAD_REQUEST,
                       "a server key (%s) is given but no key file: set DEALFLOW_KEY_FILE or the "
                       "key_file option too (dealflow keygen makes one)",
                       server_from);
    int rc = load_server_key(server, server_from, keys->server, err);
    if (rc == 0)
        rc = load_key_pair(key, key_from, keys, err);
    if (rc != 0) {
        df__curve_keys_wipe(keys);
        return rc;
    }
    *use = true;
    return 0;
}

void df__curve_keys_wipe(df__curve_keys *keys)
{
    explicit_bzero(keys, sizeof *keys);
}
