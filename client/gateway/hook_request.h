/* hook_request.h: POST /v1/hooks/NAME up to the append: the sender's signature checked, its
 * payload mapped through the hook, and the events packed as POST /v1/events packs them. */
#ifndef DF_GW_HOOK_REQUEST_H
#define DF_GW_HOOK_REQUEST_H

#include <stddef.h>

#include "dealflow.h"
#include "mapping.h"
#include "reads.h"

/* The events of one request to hook h: 0 with *events holding *n of them (none, and nothing to
 * free, when the mapping skipped every item), or -1 with *out the refusal: 401 when the
 * signature or credentials do not hold (a stale HubSpot timestamp too), 400 when the payload
 * does not fit the mapping or the events it gives are not valid. */
int gw_hook_events(const gw_hook *h, const gw_hook_request *r, df_bytes *events, size_t *n,
                   gw_answer *out);

#endif
