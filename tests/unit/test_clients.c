/* test_clients.c: unit tests of the clients file's parsing: roles, keys and names, comments
 * and blank lines, the set sorted by key, and each malformed line named by its number. */
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "check.h"
#include "clients.h"

static char pub[3][41], sec[3][41];

static bool parse(const char *text, df_client_set *set, char *why, size_t why_len)
{
    return df_clients_parse(text, strlen(text), "clients", set, why, why_len);
}

/* parse(text) fails, and why holds want. */
static bool refuses(const char *text, const char *want)
{
    df_client_set set = {NULL, 0};
    char why[256] = "";
    if (parse(text, &set, why, sizeof why)) {
        df_clients_free(&set);
        fprintf(stderr, "  accepted: %s", text);
        return false;
    }
    if (!strstr(why, want)) {
        fprintf(stderr, "  why `%s` lacks `%s`\n", why, want);
        return false;
    }
    return true;
}

static void test_accepted(void)
{
    char text[1024], why[256];
    snprintf(text, sizeof text,
             "# who may connect\n"
             "\n"
             "producer %s prod-1\n"
             "  admin\t%s boss  # the admin\r\n"
             "reader %s dash",
             pub[0], pub[1], pub[2]);
    df_client_set set;
    CHECK(parse(text, &set, why, sizeof why));
    CHECK_INT(set.count, 3);
    for (size_t i = 1; i < set.count; i++)
        CHECK(memcmp(set.items[i - 1].key, set.items[i].key, 32) < 0);
    const char *names[] = {"prod-1", "boss", "dash"};
    const unsigned roles[] = {DF_ROLE_PRODUCER, DF_ROLE_ADMIN, DF_ROLE_READER};
    for (int i = 0; i < 3; i++) {
        uint8_t key[32];
        CHECK(zmq_z85_decode(key, pub[i]) != NULL);
        const df_client_entry *c = df_clients_find(&set, key);
        CHECK(c != NULL);
        if (c) {
            CHECK_STR(c->name, names[i]);
            CHECK_INT(c->roles, roles[i]);
        }
        key[0] ^= 1;
        CHECK(df_clients_find(&set, key) == NULL);
    }
    df_clients_free(&set);
    CHECK(parse("", &set, why, sizeof why));
    CHECK_INT(set.count, 0);
    CHECK(parse("# nobody\n\n", &set, why, sizeof why));
    CHECK_INT(set.count, 0);
    uint8_t key[32] = {0};
    CHECK(df_clients_find(&set, key) == NULL);
    df_clients_free(&set);
}

static void test_refused(void)
{
    char text[1024];
    CHECK(refuses("# fine\nwriter abc x\n", "clients:2: the role"));
    CHECK(refuses("reader not-a-key someone\n", "clients:1: the public key"));
    snprintf(text, sizeof text, "reader %s\n", pub[0]);
    CHECK(refuses(text, "clients:1: expected ROLE PUBLIC_KEY NAME"));
    snprintf(text, sizeof text, "reader %s dash extra\n", pub[0]);
    CHECK(refuses(text, "clients:1: expected ROLE PUBLIC_KEY NAME"));
    snprintf(text, sizeof text, "reader %s %065d\n", pub[0], 0);
    CHECK(refuses(text, "clients:1: the name must be 1..64 printable characters"));
    snprintf(text, sizeof text, "reader %s da\x7fsh\n", pub[0]);
    CHECK(refuses(text, "the name"));
    snprintf(text, sizeof text, "reader %s dash\nadmin %s dash\n", pub[0], pub[1]);
    CHECK(refuses(text, "clients:2: the key or the name `dash` is listed twice"));
    snprintf(text, sizeof text, "reader %s dash\nadmin %s boss\n", pub[0], pub[0]);
    CHECK(refuses(text, "clients:2: the key or the name `boss` is listed twice"));
    /* a key whose group overflows would not encode back the same */
    snprintf(text, sizeof text, "reader #####%s dash\n", pub[0] + 5);
    CHECK(refuses(text, "the public key"));
    char line[600];
    memset(line, '#', sizeof line);
    line[DF_CLIENTS_LINE_MAX + 1] = '\0';
    CHECK(refuses(line, "clients:1: the line is too long"));
    line[DF_CLIENTS_LINE_MAX] = '\0';
    df_client_set set;
    char why[256];
    CHECK(parse(line, &set, why, sizeof why));
    df_clients_free(&set);
    snprintf(text, sizeof text, "reader %s dash\n", pub[0]);
    text[strlen(text) - 2] = '\0';
    df_client_set untouched = {NULL, 7};
    CHECK(!df_clients_parse(text, strlen(text) + 2, "clients", &untouched, why, sizeof why));
    CHECK(strstr(why, "clients:1: the line holds a NUL byte") != NULL);
    CHECK_INT(untouched.count, 7);
}

static const df_test tests[] = {
    {"accepted", test_accepted},
    {"refused", test_refused},
    {NULL, NULL},
};

static bool setup(void)
{
    for (int i = 0; i < 3; i++)
        if (zmq_curve_keypair(pub[i], sec[i]) != 0)
            return false;
    return true;
}

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = setup};
    return df_test_main(argc, argv, tests, &fixture);
}
