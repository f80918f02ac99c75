/*
 * referrers.h -- OCI 1.1 referrers: the list of manifests whose `subject`
 * names a manifest, through the registry's referrers API or, where the
 * registry has none, through the fallback tag `<alg>-<hex>` that holds an
 * OCI image index; and the upkeep of that tag when a manifest with a
 * subject is put or deleted.
 *
 * Owns: the choice between the API and the fallback tag (remembered per
 * client in c->referrers_api), the API's Link paging and artifactType
 * filter (applied here when the registry did not say OCI-Filters-Applied),
 * the fallback tag's name, and the read-modify-write of the fallback index
 * (every entry already there is kept, a descriptor is added once, with the
 * referrer's artifactType and annotations).  No Lua: the index goes back as
 * JSON text; manifests are read with jansson.
 */
#ifndef RG_REFERRERS_H
#define RG_REFERRERS_H

#include <stddef.h>

#include "client.h"
#include "digest.h"
#include "err.h"
#include "reference.h"

#pragma GCC visibility push(hidden)

/* The fallback tag of a digest: the algorithm (at most 32 characters), '-',
 * the encoded part (at most 64), characters a tag cannot hold as '-'. */
void rg_referrers_tag(const char *digest, char out[RG_TAG_MAX + 1]);

/*
 * The referrers of `digest` in repository `name` (only those of
 * artifact_type when not NULL), as an OCI image index in JSON (malloc'd,
 * *json / *len); *source is "api" or "tag".  A missing fallback tag, or
 * one that holds no index, is an empty index.  0, or -1 with e set.
 */
int rg_referrers(rg_client *c, const char *name, const char *digest,
                 const char *artifact_type, char **json, size_t *len,
                 const char **source, rg_err *e);

/*
 * rg_put_manifest, and for a manifest with a subject the referrers'
 * upkeep: *how is NULL (no subject), "api" (the registry answered
 * OCI-Subject), "tag" (the fallback index holds the manifest) or "off"
 * (c->referrers_fallback is 0).  alg: as rg_put_manifest_x.
 */
int rg_put_manifest_referrer(rg_client *c, const char *name, const char *ref,
                             const char *body, size_t len, const char *mt,
                             rg_alg alg, char digest[RG_DIGEST_MAX + 1],
                             const char **how, rg_err *e);

/*
 * rg_delete_manifest, and when the manifest had a subject and the registry
 * is not known to have the referrers API, its descriptor removed from the
 * fallback index (*how = "tag"; else NULL).
 */
int rg_delete_manifest_referrer(rg_client *c, const char *name,
                                const char *digest, const char **how,
                                rg_err *e);

#pragma GCC visibility pop

#endif
