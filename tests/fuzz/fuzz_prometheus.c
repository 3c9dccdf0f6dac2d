/* fuzz_prometheus.c: the gateway's /metrics text of whatever bytes come
 * back as a `stats` reply, with the same bytes as a route and a url label.
 * Rendering must never crash, and what it gives must stay well-formed
 * exposition text: comment lines, or a name, labels whose values are
 * quoted and escaped, and a value, each line ended. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prometheus.h"

#include "fuzz.h"

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* One sample line (without its line feed): name{label="value",...} value. */
static void check_sample(const char *p, const char *end)
{
    REQUIRE(p < end && name_char(*p, true));
    while (p < end && name_char(*p, false))
        p++;
    if (p < end && *p == '{') {
        p++;
        while (p < end && *p != '}') {
            REQUIRE(name_char(*p, true));
            while (p < end && name_char(*p, false))
                p++;
            REQUIRE(p + 1 < end && p[0] == '=' && p[1] == '"');
            p += 2;
            while (p < end && *p != '"') {
                if (*p == '\\') {
                    REQUIRE(p + 1 < end && (p[1] == '\\' || p[1] == '"' || p[1] == 'n'));
                    p++;
                }
                p++;
            }
            REQUIRE(p < end);
            p++;
            if (p < end && *p == ',')
                p++;
        }
        REQUIRE(p < end);
        p++;
    }
    REQUIRE(p < end && *p == ' ');
    p++;
    REQUIRE(p < end);
    char value[64];
    REQUIRE((size_t)(end - p) < sizeof(value));
    memcpy(value, p, (size_t)(end - p));
    value[end - p] = '\0';
    char *stop;
    strtod(value, &stop);
    REQUIRE(*stop == '\0' || strcmp(value, "NaN") == 0 || strcmp(value, "+Inf") == 0 ||
            strcmp(value, "-Inf") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char label[65];
    size_t n = size < sizeof(label) - 1 ? size : sizeof(label) - 1;
    memcpy(label, data, n);
    label[n] = '\0';
    gw_route_count route = {label, 200, 1};
    gw_delivery_state delivery = {.url = label, .delivered = 1, .daemon_seq = 2};
    char *text = NULL;
    size_t len = 0;
    if (gw_prometheus_render(data, size, &route, 1, &delivery, 1, &text, &len) != 0)
        return 0; /* out of memory */
    REQUIRE(text && strlen(text) == len && len > 0 && text[len - 1] == '\n');
    for (const char *line = text; line < text + len;) {
        const char *end = strchr(line, '\n');
        REQUIRE(end);
        if (strncmp(line, "# ", 2) == 0)
            REQUIRE(strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0);
        else
            check_sample(line, end);
        line = end + 1;
    }
    free(text);
    return 0;
}
