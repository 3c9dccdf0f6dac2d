/* fuzz_clients.c: hostile clients files through the daemon's parser: a file is a set of
 * distinct keys and names, each role one of three and each name printable, sorted so that
 * every key is found, or it is refused with a reason naming the file and the line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    df_client_set set = {NULL, 0};
    char why[256] = "";
    if (!df_clients_parse((const char *)data, size, "clients", &set, why, sizeof why)) {
        REQUIRE(strncmp(why, "clients", 7) == 0 && set.items == NULL);
        return 0;
    }
    for (size_t i = 0; i < set.count; i++) {
        const df_client_entry *c = &set.items[i];
        REQUIRE(c->roles == DF_ROLE_PRODUCER || c->roles == DF_ROLE_READER ||
                c->roles == DF_ROLE_ADMIN);
        size_t len = strnlen(c->name, sizeof c->name);
        REQUIRE(len >= 1 && len <= DF_AUTH_NAME_MAX);
        for (size_t j = 0; j < len; j++)
            REQUIRE((unsigned char)c->name[j] > 0x20 && (unsigned char)c->name[j] != 0x7f);
        if (i > 0)
            REQUIRE(memcmp(set.items[i - 1].key, c->key, 32) < 0);
        for (size_t j = 0; j < i; j++)
            REQUIRE(strcmp(set.items[j].name, c->name) != 0);
        REQUIRE(df_clients_find(&set, c->key) == c);
    }
    df_clients_free(&set);
    return 0;
}
