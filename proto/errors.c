/* errors.c: failing with an error code and a message, and the wire names of
 * dealflow's error codes, both ways. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"

/* Indexed by -code: the order of df_error_code. */
static const char *const error_names[] = {
    "ok",        "bad_request",   "unknown_op",       "not_found",
    "conflict",  "unknown_stage", "unknown_pipeline", "too_large",
    "forbidden", "unavailable",   "internal",         "unreachable",
};

#define ERROR_NAME_COUNT ((int)(sizeof(error_names) / sizeof(error_names[0])))
/* The names the api sends; "unreachable" is the client's own. */
#define WIRE_NAME_COUNT (-DF_EINTERNAL + 1)

const char *df_error_name(int code)
{
    if (code < 0 && -code < ERROR_NAME_COUNT)
        return error_names[-code];
    return "internal";
}

int df_error_from_name(const char *name, unsigned long len)
{
    if (name == NULL)
        return DF_EINTERNAL;
    for (int i = 1; i < WIRE_NAME_COUNT; i++) {
        if (strlen(error_names[i]) == len && memcmp(error_names[i], name, len) == 0)
            return -i;
    }
    return DF_EINTERNAL;
}

int df_fail(df_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof err->message) {
            /* cut short: drop a last UTF-8 character that lost its tail, so
             * the message stays a valid str */
            size_t end = sizeof err->message - 1, lead = end;
            while (lead > 0 && ((uint8_t)err->message[lead - 1] & 0xc0) == 0x80)
                lead--;
            if (lead > 0) {
                uint8_t c = (uint8_t)err->message[lead - 1];
                size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
                if (lead - 1 + need > end)
                    end = lead - 1;
            }
            err->message[end] = '\0';
        }
    }
    return code;
}
