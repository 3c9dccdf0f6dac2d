/* codec.h: the wire format shared by the daemon and the client, in one
 * include: raw msgpack bytes (reader.h), values of unpacked maps and reply
 * packing (fields.h), events (event.h) and failing with a message (errors.h).
 * No I/O. */
#ifndef DF_CODEC_H
#define DF_CODEC_H

#include "errors.h"
#include "event.h"
#include "fields.h"
#include "reader.h"

#endif
