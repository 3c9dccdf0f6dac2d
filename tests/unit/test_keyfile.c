/* test_keyfile.c: unit tests of the CURVE key file rule that the daemon, libdealflow and
 * dealflow keygen share: which texts hold a key and where, Z85 decoding, the `# public`
 * line, and the file checks (regular file, owner only, size, a `# public` line that does not
 * match). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "check.h"
#include "keyfile.h"

static char public_z85[41], secret_z85[41];
static uint8_t public_key[32], secret_key[32];
static char dir[] = "/tmp/df-keyfile-XXXXXX";

static df_key_text_status parse(const char *text, df_key_text *out)
{
    return df_key_text_parse(text, strlen(text), out);
}

/* parse(text) finds the secret key on line. */
static bool finds_secret(const char *text, unsigned line)
{
    df_key_text t;
    return parse(text, &t) == DF_KEY_TEXT_OK && memcmp(t.key, secret_key, 32) == 0 &&
           t.line == line;
}

static void test_z85(void)
{
    uint8_t key[32];
    char again[41];
    CHECK(df_key_z85_decode(secret_z85, 40, key));
    CHECK(memcmp(key, secret_key, 32) == 0);
    df_key_z85_encode(key, again);
    CHECK_STR(again, secret_z85);
    CHECK(!df_key_z85_decode(secret_z85, 39, key));
    char bad[41];
    memcpy(bad, secret_z85, sizeof bad);
    bad[3] = '~'; /* not in the alphabet */
    CHECK(!df_key_z85_decode(bad, 40, key));
    bad[3] = '\0';
    CHECK(!df_key_z85_decode(bad, 40, key));
    /* "#####" is 84 * (85^4 + ... + 1), above 2^32 - 1: it would not encode back */
    memcpy(bad, secret_z85, sizeof bad);
    memcpy(bad + 10, "#####", 5);
    CHECK(!df_key_z85_decode(bad, 40, key));
    memcpy(bad + 10, "%nSc0", 5); /* exactly 2^32 - 1 */
    CHECK(df_key_z85_decode(bad, 40, key));
    CHECK(key[8] == 0xff && key[9] == 0xff && key[10] == 0xff && key[11] == 0xff);
}

/* What dealflow keygen writes, and what the tests and the manual pages show. */
static void test_texts_accepted(void)
{
    char text[256];
    df_key_text t;
    snprintf(text, sizeof text, "%s\n# public %s\n", secret_z85, public_z85);
    CHECK(finds_secret(text, 1));
    CHECK_INT(parse(text, &t), DF_KEY_TEXT_OK);
    CHECK(t.has_public && memcmp(t.listed_public, public_key, 32) == 0);
    snprintf(text, sizeof text, "%s\n# the server's secret key\n", secret_z85);
    CHECK(finds_secret(text, 1));
    CHECK_INT(parse(text, &t), DF_KEY_TEXT_OK);
    CHECK(!t.has_public);
    snprintf(text, sizeof text, "%s\n", secret_z85);
    CHECK(finds_secret(text, 1));
    snprintf(text, sizeof text, "%s", secret_z85); /* no end of line */
    CHECK(finds_secret(text, 1));
    snprintf(text, sizeof text, "%s\r\n", secret_z85);
    CHECK(finds_secret(text, 1));
    snprintf(text, sizeof text, " \t%s \t\r\nanything after it\n", secret_z85);
    CHECK(finds_secret(text, 1));
    /* blank and # lines before the key are skipped, as the daemon always did */
    snprintf(text, sizeof text, "# made for the daemon\n\n  \n\t# again\n%s\n", secret_z85);
    CHECK(finds_secret(text, 5));
    /* a # comment after the key */
    snprintf(text, sizeof text, "%s  # the key\n", secret_z85);
    CHECK(finds_secret(text, 1));
    /* the `# public` line may come first */
    snprintf(text, sizeof text, "# public %s\n%s\n", public_z85, secret_z85);
    CHECK(finds_secret(text, 2));
    CHECK_INT(parse(text, &t), DF_KEY_TEXT_OK);
    CHECK(t.has_public && memcmp(t.listed_public, public_key, 32) == 0);
}

/* Z85's alphabet has #, but no key starts with it (84 * 85^4 > 2^32 - 1): a line that
 * starts with # is always a comment. */
static void test_hash_line_is_comment(void)
{
    uint8_t key[32];
    char z85[41];
    memcpy(z85, secret_z85, sizeof z85);
    z85[0] = '#';
    CHECK(!df_key_z85_decode(z85, 40, key));
    char text[128];
    snprintf(text, sizeof text, "%s\n", z85);
    df_key_text t;
    CHECK_INT(parse(text, &t), DF_KEY_TEXT_NONE);
    snprintf(text, sizeof text, "%s\n%s\n", z85, secret_z85);
    CHECK(finds_secret(text, 2));
}

static void test_texts_refused(void)
{
    char text[256];
    df_key_text t;
    CHECK_INT(parse("", &t), DF_KEY_TEXT_NONE);
    CHECK_INT(parse("\n\n   \n", &t), DF_KEY_TEXT_NONE);
    CHECK_INT(parse("# only a comment\n", &t), DF_KEY_TEXT_NONE);
    snprintf(text, sizeof text, "# public %s\n", public_z85);
    CHECK_INT(parse(text, &t), DF_KEY_TEXT_NONE);
    CHECK_INT(parse("not a key\n", &t), DF_KEY_TEXT_MALFORMED);
    CHECK_INT(t.line, 1);
    snprintf(text, sizeof text, "# comment\n\nnot a key\n%s\n", secret_z85);
    CHECK_INT(parse(text, &t), DF_KEY_TEXT_MALFORMED);
    CHECK_INT(t.line, 3);
    /* the key must be alone on its line (but for a # comment after blanks) */
    snprintf(text, sizeof text, "%s and more\n", secret_z85);
    CHECK_INT(parse(text, &t), DF_KEY_TEXT_MALFORMED);
    snprintf(text, sizeof text, "%s#no blank\n", secret_z85);
    CHECK_INT(parse(text, &t), DF_KEY_TEXT_MALFORMED);
    snprintf(text, sizeof text, "%.39s\n", secret_z85);
    CHECK_INT(parse(text, &t), DF_KEY_TEXT_MALFORMED);
    snprintf(text, sizeof text, "key=%s\n", secret_z85);
    CHECK_INT(parse(text, &t), DF_KEY_TEXT_MALFORMED);
    /* a NUL byte is no blank */
    char nul[64];
    memcpy(nul, secret_z85, 40);
    memcpy(nul + 40, "\0\n", 2);
    CHECK_INT(df_key_text_parse(nul, 42, &t), DF_KEY_TEXT_MALFORMED);
    /* a `# public` line whose key is malformed lists none */
    snprintf(text, sizeof text, "%s\n# public %.30s\n", secret_z85, public_z85);
    CHECK_INT(parse(text, &t), DF_KEY_TEXT_OK);
    CHECK(!t.has_public);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    CHECK_INT(chmod(path, mode), 0);
}

static void test_secret_file(void)
{
    char path[64], text[256], why[512];
    uint8_t secret[32], derived[32];
    snprintf(path, sizeof path, "%s/a.key", dir);
    snprintf(text, sizeof text, "%s\n# public %s\n", secret_z85, public_z85);
    write_file(path, text, 0600);
    CHECK(df_key_file_secret("the key file", path, secret, derived, why, sizeof why));
    CHECK(memcmp(secret, secret_key, 32) == 0 && memcmp(derived, public_key, 32) == 0);

    chmod(path, 0640);
    CHECK(!df_key_file_secret("the key file", path, secret, derived, why, sizeof why));
    CHECK(strstr(why, "too open") && strstr(why, "0640") && strstr(why, "chmod 600") &&
          strstr(why, path));
    chmod(path, 0604);
    CHECK(!df_key_file_secret("the key file", path, secret, derived, why, sizeof why));
    /* a public key file has no mode asked of it */
    uint8_t listed[32];
    snprintf(text, sizeof text, "%s\n", public_z85);
    write_file(path, text, 0644);
    CHECK(df_key_file_public("the server key file", path, listed, why, sizeof why));
    CHECK(memcmp(listed, public_key, 32) == 0);

    /* a `# public` line that is not the secret key's */
    snprintf(text, sizeof text, "%s\n# public %s\n", secret_z85, secret_z85);
    write_file(path, text, 0600);
    CHECK(!df_key_file_secret("the key file", path, secret, derived, why, sizeof why));
    CHECK(strstr(why, "# public") != NULL);
    /* a secret key file is no public key file */
    snprintf(text, sizeof text, "%s\n# public %s\n", secret_z85, public_z85);
    write_file(path, text, 0600);
    CHECK(!df_key_file_public("the server key file", path, listed, why, sizeof why));
    CHECK(strstr(why, "holds a secret key") != NULL);

    write_file(path, "# nothing\n", 0600);
    CHECK(!df_key_file_secret("the key file", path, secret, derived, why, sizeof why));
    CHECK(strstr(why, "holds no key") && strstr(why, "secret key"));
    write_file(path, "# nothing\nnot a key\n", 0600);
    CHECK(!df_key_file_secret("the key file", path, secret, derived, why, sizeof why));
    CHECK(strstr(why, "does not start with a Z85 secret key") && strstr(why, "line 2"));

    /* too large to be a key file */
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "%s\n", secret_z85);
        for (int i = 0; i < DF_KEY_FILE_MAX; i++)
            fputc('#', f);
        fclose(f);
    }
    CHECK(!df_key_file_secret("the key file", path, secret, derived, why, sizeof why));
    CHECK(strstr(why, "too large") != NULL);
    unlink(path);

    CHECK(!df_key_file_secret("the key file", path, secret, derived, why, sizeof why));
    CHECK(strstr(why, "cannot read the key file") && strstr(why, path));
    /* a directory (or a FIFO) is not a key file */
    CHECK(!df_key_file_secret("the key file", dir, secret, derived, why, sizeof why));
    CHECK(strstr(why, "not a regular file") != NULL);
}

static const df_test tests[] = {
    {"z85", test_z85},
    {"texts_accepted", test_texts_accepted},
    {"hash_line_is_comment", test_hash_line_is_comment},
    {"texts_refused", test_texts_refused},
    {"secret_file", test_secret_file},
    {NULL, NULL},
};

static bool setup(void)
{
    if (zmq_curve_keypair(public_z85, secret_z85) != 0 || !mkdtemp(dir))
        return false;
    return zmq_z85_decode(public_key, public_z85) && zmq_z85_decode(secret_key, secret_z85);
}

static void teardown(void)
{
    rmdir(dir);
}

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = setup, .teardown = teardown};
    return df_test_main(argc, argv, tests, &fixture);
}
