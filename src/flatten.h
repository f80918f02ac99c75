/*
 * flatten.h -- an image's layers merged into one, as `crane flatten`:
 * the file system the layers make, applying OCI whiteouts (`.wh.NAME`
 * removes NAME of the layers below, `.wh..wh..opq` hides everything
 * below in its directory), written as one new layer (layer.h).
 *
 * Owns: which member of which layer survives.  The layers are read from
 * the top down; a path met again lower down is left out (the upper one
 * wins), as is anything whited out above it; whiteout files themselves are
 * never written.  Members come out in that order (the top layer's first).
 * A member with an absolute path or `..`, or a corrupt layer, is an error
 * naming the layer.  No Lua.
 */
#ifndef RG_FLATTEN_H
#define RG_FLATTEN_H

#include "layer.h"

#pragma GCC visibility push(hidden)

/* Merge the n layer blobs paths[] (bottom first; comps[i]: TAR, GZIP or
 * ZSTD) into a new layer at out compressed with comp (level as for
 * rg_layer_new); info filled.  0, or -1 with e set (out removed). */
int rg_flatten(const char *const *paths, const rg_comp *comps, int n,
               const char *out, rg_comp comp, int level, rg_layer_info *info,
               rg_err *e);

#pragma GCC visibility pop

#endif
