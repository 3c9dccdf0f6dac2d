/* errors.c: the wire names of dealflow's error codes, both ways. */
#include <string.h>

#include "dealflow.h"

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
