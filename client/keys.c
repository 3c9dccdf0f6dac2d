/* keys.c: the CURVE keys of a client: the server's public key and the client's own key
 * pair, read from the options or the environment and checked before any socket uses them. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "codec.h"
#include "keys.h"

#define Z85_KEY_LEN  40
#define KEY_FILE_MAX 4096 /* a key file is two short lines; more is not a key file */

static const char z85_alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   ".-:+=^!/*?&<>()[]{}@%$#";

/* Decodes a Z85 key of exactly 40 characters; false for anything else,
 * including groups that overflow 32 bits (which re-encode differently). */
static bool z85_key_decode(const char *text, size_t len, uint8_t key[DF__KEY_BYTES])
{
    if (len != Z85_KEY_LEN)
        return false;
    char z85[Z85_KEY_LEN + 1];
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\0' || strchr(z85_alphabet, text[i]) == NULL)
            return false;
    memcpy(z85, text, len);
    z85[len] = '\0';
    char again[Z85_KEY_LEN + 1];
    return zmq_z85_decode(key, z85) != NULL && zmq_z85_encode(again, key, DF__KEY_BYTES) != NULL &&
           memcmp(again, z85, Z85_KEY_LEN) == 0;
}

/* The first line of text, without its end of line and surrounding blanks. */
static void first_line(const char *text, size_t text_len, const char **line, size_t *len)
{
    const char *end = memchr(text, '\n', text_len);
    size_t n = end ? (size_t)(end - text) : text_len;
    while (n > 0 && (text[0] == ' ' || text[0] == '\t')) {
        text++;
        n--;
    }
    while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    *line = text;
    *len = n;
}

/* The key of a `# public KEY` line of text, if it has one. */
static bool public_comment(const char *text, size_t text_len, uint8_t key[DF__KEY_BYTES])
{
    static const char marker[] = "# public ";
    const size_t marker_len = sizeof marker - 1;
    const char *p = text, *end = text + text_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > marker_len && memcmp(p, marker, marker_len) == 0) {
            const char *line;
            size_t line_len;
            first_line(p + marker_len, n - marker_len, &line, &line_len);
            return z85_key_decode(line, line_len, key);
        }
        p += n + 1;
    }
    return false;
}

/* Reads a small file into buf (NUL-terminated); with owner_only, refuses one
 * that others may read or write, as ssh does with its keys. */
static int read_key_file(const char *what, const char *path, bool owner_only, char *buf, size_t cap,
                         size_t *len, df_error *err)
{
    /* O_NONBLOCK: a FIFO named as a key file must not hang the open */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return df_fail(err, DF_EBAD_REQUEST, "cannot read %s %s: %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return df_fail(err, DF_EBAD_REQUEST, "%s %s is not a regular file", what, path);
    }
    if (owner_only && ((st.st_mode & 077) != 0 || st.st_uid != geteuid())) {
        close(fd);
        return df_fail(err, DF_EBAD_REQUEST,
                       "permissions %04o for %s %s are too open: a secret key must be "
                       "yours and accessible by you only (chmod 600)",
                       (unsigned)(st.st_mode & 07777), what, path);
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int code = errno;
            close(fd);
            return df_fail(err, DF_EBAD_REQUEST, "cannot read %s %s: %s", what, path,
                           strerror(code));
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == cap - 1) {
            close(fd);
            return df_fail(err, DF_EBAD_REQUEST, "%s %s is too large to be a key file", what, path);
        }
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return 0;
}

/* The server's public key: Z85 itself, else a file holding it on its first line. */
static int load_server_key(const char *value, const char *from, uint8_t key[DF__KEY_BYTES],
                           df_error *err)
{
    if (z85_key_decode(value, strlen(value), key))
        return 0;
    char what[64];
    snprintf(what, sizeof what, "the server key file (%s)", from);
    if (access(value, F_OK) != 0 && errno == ENOENT)
        return df_fail(err, DF_EBAD_REQUEST,
                       "the server key (%s) is neither a Z85 public key of 40 characters nor a "
                       "file that exists",
                       from);
    char buf[KEY_FILE_MAX];
    size_t len;
    int rc = read_key_file(what, value, false, buf, sizeof buf, &len, err);
    if (rc != 0)
        return rc;
    const char *line;
    size_t line_len;
    first_line(buf, len, &line, &line_len);
    bool ok = z85_key_decode(line, line_len, key);
    uint8_t listed[DF__KEY_BYTES];
    bool secret = ok && public_comment(buf, len, listed) && memcmp(listed, key, sizeof listed) != 0;
    explicit_bzero(buf, sizeof buf);
    if (!ok)
        return df_fail(err, DF_EBAD_REQUEST,
                       "%s %s does not start with a Z85 public key of 40 characters", what, value);
    if (secret)
        return df_fail(err, DF_EBAD_REQUEST,
                       "%s %s holds a secret key: give the server's public key "
                       "(dealflow keygen --public prints it)",
                       what, value);
    return 0;
}

/* The client's key pair from its secret key file. */
static int load_key_pair(const char *path, const char *from, df__curve_keys *keys, df_error *err)
{
    char what[64];
    snprintf(what, sizeof what, "the key file (%s)", from);
    char buf[KEY_FILE_MAX];
    size_t len;
    int rc = read_key_file(what, path, true, buf, sizeof buf, &len, err);
    if (rc != 0)
        return rc;
    const char *line;
    size_t line_len;
    first_line(buf, len, &line, &line_len);
    bool ok = z85_key_decode(line, line_len, keys->secret_key);
    char secret[Z85_KEY_LEN + 1], public_z85[Z85_KEY_LEN + 1];
    if (ok) {
        zmq_z85_encode(secret, keys->secret_key, DF__KEY_BYTES);
        ok = zmq_curve_public(public_z85, secret) == 0 &&
             zmq_z85_decode(keys->public_key, public_z85) != NULL;
    }
    uint8_t listed[DF__KEY_BYTES];
    bool mismatch = ok && public_comment(buf, len, listed) &&
                    memcmp(listed, keys->public_key, sizeof listed) != 0;
    explicit_bzero(buf, sizeof buf);
    explicit_bzero(secret, sizeof secret);
    if (!ok)
        return df_fail(err, DF_EBAD_REQUEST,
                       "%s %s does not start with a Z85 secret key of 40 characters", what, path);
    if (mismatch)
        return df_fail(err, DF_EBAD_REQUEST,
                       "%s %s: its `# public` line is not the public key of its secret key", what,
                       path);
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
