/* dealflow.h: the public C interface of dealflow, an event store for sales pipelines.
 *
 * Everything public is prefixed df_. Functions that can fail return 0 or a
 * positive count on success and a negative df_error_code on failure. */
#ifndef DEALFLOW_H
#define DEALFLOW_H

#ifdef __cplusplus
extern "C" {
#endif

#define DF_VERSION "0.1.0"

/* Error codes. Each has a wire name (df_error_name) that the api sends as
 * `error` in a failed reply; see proto/PROTOCOL.md. */
typedef enum df_error_code {
    DF_OK = 0,
    DF_EBAD_REQUEST = -1,      /* bad_request */
    DF_EUNKNOWN_OP = -2,       /* unknown_op */
    DF_ENOT_FOUND = -3,        /* not_found */
    DF_ECONFLICT = -4,         /* conflict */
    DF_EUNKNOWN_STAGE = -5,    /* unknown_stage */
    DF_EUNKNOWN_PIPELINE = -6, /* unknown_pipeline */
    DF_ETOO_LARGE = -7,        /* too_large */
    DF_EFORBIDDEN = -8,        /* forbidden */
    DF_EUNAVAILABLE = -9,      /* unavailable */
    DF_EINTERNAL = -10,        /* internal */
} df_error_code;

/* Returns the wire name of an error code ("bad_request", ...), "internal" for
 * a code it does not know. */
const char *df_error_name(int code);

/* Returns the error code for a wire name, DF_EINTERNAL for a name it does not know. */
int df_error_from_name(const char *name, unsigned long len);

#ifdef __cplusplus
}
#endif

#endif
