/* keygen.c: dealflow keygen: makes a CURVE key pair for a client or a daemon, the secret key in a
 * file only its owner can read, and prints the public key an operator lists or hands out. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "cli.h"
#include "keyfile.h"

#define Z85_KEY_LEN      40
#define DEFAULT_KEY_FILE "./dealflow.key"

static const char help[] =
    "usage: dealflow keygen [--out FILE] [--force]\n"
    "       dealflow keygen --public FILE\n"
    "Makes a CURVE key pair: writes the secret key to FILE (default " DEFAULT_KEY_FILE
    ", mode 0600,\n"
    "never over an existing file unless --force) and prints the public key. With --public,\n"
    "prints the public key of an existing secret key file. The public key is what the\n"
    "daemon's clients file lists (or, for the daemon's own key, what clients give as\n"
    "--server-key).\n"
    "  --out FILE      where the secret key goes\n"
    "  --force         replace FILE if it exists\n"
    "  --public FILE   print the public key of this secret key file\n";

static int print_public(cli *g, const char *public_key, const char *file)
{
    if (!g->json) {
        printf("%s\n", public_key);
        return EXIT_OK;
    }
    json_t *o = json_pack("{s:s, s:s}", "public", public_key, "file", file);
    bool ok = o != NULL && json_print_value(stdout, o);
    json_decref(o);
    return ok ? EXIT_OK : EXIT_FAILED;
}

/* Writes all of text to fd; false with errno set when it could not. */
static bool write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        text += n;
        len -= (size_t)n;
    }
    return true;
}

/* Creates path with the key file's text, mode 0600. Without force an existing
 * file stays as it is (EEXIST); with it, the new file replaces it whole, so a
 * failure half way leaves the old key. */
static bool write_key_file(const char *path, const char *text, bool force)
{
    char tmp[4096];
    const char *target = path;
    int fd;
    if (force) {
        if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) {
            errno = ENAMETOOLONG;
            return false;
        }
        fd = mkstemp(tmp);
        target = tmp;
    } else {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return false;
    bool ok = fchmod(fd, 0600) == 0 && write_all(fd, text, strlen(text)) && fsync(fd) == 0;
    int code = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        code = errno;
    }
    if (ok && force && rename(tmp, path) != 0) {
        ok = false;
        code = errno;
    }
    if (!ok) {
        unlink(target);
        errno = code;
    }
    return ok;
}

static int generate(cli *g, const char *path, bool force)
{
    char public_key[Z85_KEY_LEN + 1], secret_key[Z85_KEY_LEN + 1], text[128];
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
        fprintf(stderr, "dealflow keygen: cannot make a key pair: %s\n", zmq_strerror(errno));
        return EXIT_FAILED;
    }
    snprintf(text, sizeof text, "%s\n# public %s\n", secret_key, public_key);
    bool written = write_key_file(path, text, force);
    int code = errno;
    explicit_bzero(secret_key, sizeof secret_key);
    explicit_bzero(text, sizeof text);
    if (!written) {
        if (code == EEXIST) {
            fprintf(stderr, "dealflow keygen: %s exists; not overwritten (--force replaces it)\n",
                    path);
            return EXIT_REFUSED;
        }
        fprintf(stderr, "dealflow keygen: cannot write %s: %s\n", path, strerror(code));
        return EXIT_FAILED;
    }
    return print_public(g, public_key, path);
}

static int show_public(cli *g, const char *path)
{
    uint8_t secret[DF_KEY_BYTES], public_bytes[DF_KEY_BYTES];
    char why[512], public_key[DF_KEY_Z85_LEN + 1];
    bool ok = df_key_file_secret("the key file", path, secret, public_bytes, why, sizeof why);
    explicit_bzero(secret, sizeof secret);
    if (!ok) {
        fprintf(stderr, "dealflow keygen: %s\n", why);
        return EXIT_USAGE;
    }
    df_key_z85_encode(public_bytes, public_key);
    return print_public(g, public_key, path);
}

int cmd_keygen(cli *g, int argc, char **argv)
{
    const char *out = NULL, *force = NULL, *public_of = NULL;
    const cli_opt opts[] = {
        {"--out", true, &out},
        {"--force", false, &force},
        {"--public", true, &public_of},
        {NULL, false, NULL},
    };
    int rc = cli_parse(g, "keygen", help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if (public_of != NULL && (out != NULL || force != NULL))
        return cli_usage("keygen", "--public reads a key file; it takes no --out or --force");
    if (!zmq_has("curve")) {
        fprintf(stderr, "dealflow keygen: this libzmq has no CURVE\n");
        return EXIT_FAILED;
    }
    if (public_of != NULL)
        return show_public(g, public_of);
    return generate(g, out != NULL && out[0] != '\0' ? out : DEFAULT_KEY_FILE, force != NULL);
}
