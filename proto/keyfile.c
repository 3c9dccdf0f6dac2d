/* keyfile.c: CURVE key files, read by one rule wherever a key file is read: the text's parsing
 * (pure, any bytes), then the file's reading with its checks, and the secret and public key
 * files on top of both. */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

static const char z85_alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   ".-:+=^!/*?&<>()[]{}@%$#";

static int z85_value(char c)
{
    const char *at = c != '\0' ? strchr(z85_alphabet, c) : NULL;
    return at ? (int)(at - z85_alphabet) : -1;
}

bool df_key_z85_decode(const char *text, size_t len, uint8_t key[DF_KEY_BYTES])
{
    if (len != DF_KEY_Z85_LEN)
        return false;
    uint8_t out[DF_KEY_BYTES];
    for (size_t group = 0; group < DF_KEY_Z85_LEN / 5; group++) {
        uint64_t value = 0;
        for (size_t i = 0; i < 5; i++) {
            int digit = z85_value(text[group * 5 + i]);
            if (digit < 0)
                return false;
            value = value * 85 + (uint64_t)digit;
        }
        if (value > UINT32_MAX)
            return false;
        for (size_t i = 0; i < 4; i++)
            out[group * 4 + i] = (uint8_t)(value >> (24 - 8 * i));
    }
    memcpy(key, out, sizeof out);
    explicit_bzero(out, sizeof out);
    return true;
}

void df_key_z85_encode(const uint8_t key[DF_KEY_BYTES], char z85[DF_KEY_Z85_LEN + 1])
{
    for (size_t group = 0; group < DF_KEY_BYTES / 4; group++) {
        uint32_t value = 0;
        for (size_t i = 0; i < 4; i++)
            value = value << 8 | key[group * 4 + i];
        for (size_t i = 5; i-- > 0;) {
            z85[group * 5 + i] = z85_alphabet[value % 85];
            value /= 85;
        }
    }
    z85[DF_KEY_Z85_LEN] = '\0';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Narrows [*p, *p + *n) to its text without the blanks around it. */
static void trim(const char **p, size_t *n)
{
    while (*n > 0 && is_blank(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && is_blank((*p)[*n - 1]))
        (*n)--;
}

/* Whether a trimmed line is a key alone, or a key and a # comment after blanks. */
static bool key_line(const char *p, size_t n, uint8_t key[DF_KEY_BYTES])
{
    if (n < DF_KEY_Z85_LEN)
        return false;
    if (n > DF_KEY_Z85_LEN) {
        const char *rest = p + DF_KEY_Z85_LEN;
        size_t rest_len = n - DF_KEY_Z85_LEN;
        if (!is_blank(rest[0]))
            return false;
        trim(&rest, &rest_len);
        if (rest[0] != '#')
            return false;
    }
    return df_key_z85_decode(p, DF_KEY_Z85_LEN, key);
}

/* Whether a trimmed line is `# public KEY`. */
static bool public_line(const char *p, size_t n, uint8_t key[DF_KEY_BYTES])
{
    static const char word[] = "public";
    if (n == 0 || p[0] != '#')
        return false;
    p++, n--;
    trim(&p, &n);
    if (n <= sizeof word || memcmp(p, word, sizeof word - 1) != 0 || !is_blank(p[sizeof word - 1]))
        return false;
    p += sizeof word, n -= sizeof word;
    trim(&p, &n);
    return df_key_z85_decode(p, n, key);
}

df_key_text_status df_key_text_parse(const char *text, size_t len, df_key_text *out)
{
    memset(out, 0, sizeof *out);
    bool found = false;
    const char *p = text, *end = text + len;
    for (unsigned line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *s = p;
        trim(&s, &n);
        if (!found && key_line(s, n, out->key)) {
            found = true;
            out->line = line;
        } else if (!found && n > 0 && s[0] != '#') {
            out->line = line;
            return DF_KEY_TEXT_MALFORMED;
        } else if (!out->has_public && public_line(s, n, out->listed_public)) {
            out->has_public = true;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    return found ? DF_KEY_TEXT_OK : DF_KEY_TEXT_NONE;
}

bool df_key_file_read(const char *what, const char *path, bool secret, char *buf, size_t cap,
                      size_t *len, char *why, size_t why_len)
{
    /* O_NONBLOCK: a FIFO named as a key file must not hang the open */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, why_len, "cannot read %s %s: %s", what, path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(why, why_len, "%s %s is not a regular file", what, path);
        return false;
    }
    if (secret && (st.st_mode & 077) != 0) {
        close(fd);
        snprintf(why, why_len,
                 "permissions %04o for %s %s are too open: a secret key must be accessible by "
                 "its owner only (chmod 600)",
                 (unsigned)(st.st_mode & 07777), what, path);
        return false;
    }
    if (secret && st.st_uid != geteuid() && geteuid() != 0) {
        close(fd);
        snprintf(why, why_len,
                 "%s %s belongs to another user (uid %u): a secret key must be yours (chown it)",
                 what, path, (unsigned)st.st_uid);
        return false;
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int code = errno;
            close(fd);
            explicit_bzero(buf, got);
            snprintf(why, why_len, "cannot read %s %s: %s", what, path, strerror(code));
            return false;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == cap - 1) {
            close(fd);
            explicit_bzero(buf, got);
            snprintf(why, why_len, "%s %s is too large to be a key file", what, path);
            return false;
        }
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return true;
}

/* The key of a key file's text, or false with why naming what is wrong. */
static bool parse_file(const char *what, const char *path, const char *kind, const char *buf,
                       size_t len, df_key_text *text, char *why, size_t why_len)
{
    switch (df_key_text_parse(buf, len, text)) {
    case DF_KEY_TEXT_OK:
        return true;
    case DF_KEY_TEXT_NONE:
        snprintf(why, why_len,
                 "%s %s holds no key: it must start with a Z85 %s key of 40 characters (blank "
                 "and # lines before it are skipped)",
                 what, path, kind);
        return false;
    case DF_KEY_TEXT_MALFORMED:
        break;
    }
    snprintf(why, why_len,
             "%s %s does not start with a Z85 %s key of 40 characters: its line %u is neither "
             "a key alone, blank nor a # comment",
             what, path, kind, text->line);
    return false;
}

bool df_key_file_secret(const char *what, const char *path, uint8_t secret[DF_KEY_BYTES],
                        uint8_t public_key[DF_KEY_BYTES], char *why, size_t why_len)
{
    char buf[DF_KEY_FILE_MAX];
    size_t len;
    if (!df_key_file_read(what, path, true, buf, sizeof buf, &len, why, why_len))
        return false;
    df_key_text text;
    bool ok = parse_file(what, path, "secret", buf, len, &text, why, why_len);
    explicit_bzero(buf, sizeof buf);
    char secret_z85[DF_KEY_Z85_LEN + 1], public_z85[DF_KEY_Z85_LEN + 1];
    if (ok) {
        df_key_z85_encode(text.key, secret_z85);
        ok = zmq_curve_public(public_z85, secret_z85) == 0 &&
             df_key_z85_decode(public_z85, DF_KEY_Z85_LEN, public_key);
        if (!ok)
            snprintf(why, why_len, "%s %s: cannot derive its public key: %s", what, path,
                     zmq_strerror(errno));
    }
    if (ok && text.has_public && memcmp(text.listed_public, public_key, DF_KEY_BYTES) != 0) {
        ok = false;
        snprintf(why, why_len, "%s %s: its `# public` line is not the public key of its secret key",
                 what, path);
    }
    if (ok)
        memcpy(secret, text.key, DF_KEY_BYTES);
    else
        explicit_bzero(public_key, DF_KEY_BYTES);
    explicit_bzero(&text, sizeof text);
    explicit_bzero(secret_z85, sizeof secret_z85);
    return ok;
}

bool df_key_file_public(const char *what, const char *path, uint8_t public_key[DF_KEY_BYTES],
                        char *why, size_t why_len)
{
    char buf[DF_KEY_FILE_MAX];
    size_t len;
    if (!df_key_file_read(what, path, false, buf, sizeof buf, &len, why, why_len))
        return false;
    df_key_text text;
    bool ok = parse_file(what, path, "public", buf, len, &text, why, why_len);
    explicit_bzero(buf, sizeof buf);
    if (ok && text.has_public && memcmp(text.listed_public, text.key, DF_KEY_BYTES) != 0) {
        ok = false;
        snprintf(why, why_len,
                 "%s %s holds a secret key: give the server's public key "
                 "(dealflow keygen --public prints it)",
                 what, path);
    }
    if (ok)
        memcpy(public_key, text.key, DF_KEY_BYTES);
    explicit_bzero(&text, sizeof text);
    return ok;
}
