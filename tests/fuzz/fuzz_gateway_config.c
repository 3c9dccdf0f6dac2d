/* fuzz_gateway_config.c: the gateway's config file (JSON, with tokens, webhooks, hooks' mappings
 * and limits): whatever the bytes, it is refused with a reason, or read with at least one token
 * and limits inside their bounds, and freed. */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_config c;
    char err[512] = "";
    if (gw_config_parse(&c, (const char *)data, size, "fuzz.json", err, sizeof err) < 0) {
        REQUIRE(err[0] != '\0');
        return 0;
    }
    REQUIRE(c.ntokens >= 1);
    REQUIRE(c.body_bytes >= 1 && c.threads >= 1 && c.connections >= 1);
    gw_config_free(&c);
    return 0;
}
