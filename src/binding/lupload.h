/*
 * lupload.h -- the Upload userdata, shared with the batch binding (items
 * name the uploads they finish).
 */
#ifndef RG_LUPLOAD_H
#define RG_LUPLOAD_H

#include "lbind.h"
#include "../upload.h"

#pragma GCC visibility push(hidden)

typedef struct lupload {
    rg_upload u;
} lupload;

/* The upload at index ui: an Upload, or a location string (replaced by a
 * new Upload of the client at index 1).  Raises on wrong types. */
lupload *lb_upload_arg(lua_State *L, int ui);

#pragma GCC visibility pop

#endif
