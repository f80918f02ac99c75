/*
 * ops.h -- the registry's small operations: manifests (get, head, put,
 * delete, delete by tag), tags and the catalog (paged through Link), ping,
 * and blob length, presence and deletion.
 *
 * Owns: validation of the caller's names, references and digests (an
 * invalid value fails with invalid_argument before any request), the URL
 * and scope of each operation, digest checks of manifests, and the paging
 * loop.  No Lua: results are C values, JSON lists are read with jansson;
 * manifests are handed back as bytes (the binding decodes them).
 */
#ifndef RG_OPS_H
#define RG_OPS_H

#include <stdint.h>

#include "client.h"
#include "digest.h"
#include "err.h"

#pragma GCC visibility push(hidden)

typedef struct rg_manifest {
    char *body;              /* GET: the bytes (malloc'd), else NULL */
    size_t len;
    char digest[RG_DIGEST_MAX + 1];   /* "" when unknown */
    int64_t size;            /* -1 unknown */
    char *media_type;        /* lowercased, no parameters; NULL when absent */
} rg_manifest;

void rg_manifest_free(rg_manifest *m);

/* Validation; 0, or -1 with invalid_argument in e. */
int rg_check_name(const char *name, const rg_ctx *cx, rg_err *e);
int rg_check_digest(const char *d, rg_alg *alg, const rg_ctx *cx, rg_err *e);
int rg_check_reference(const char *ref, int *is_digest, const rg_ctx *cx, rg_err *e);

/* The "Accept: ..." line of every manifest type this client knows, and
 * the media type of a Content-Type value (malloc'd, no parameters). */
const char *rg_manifest_accept(void);
char *rg_media_type_of(const char *content_type);

/* GET a manifest; accept is an "Accept: ..." line, or NULL for every
 * manifest type this client knows.  The bytes are checked against a
 * digest reference, or against Docker-Content-Digest. */
int rg_get_manifest(rg_client *c, const char *name, const char *ref,
                    const char *accept, rg_manifest *m, rg_err *e);
/* HEAD a manifest (digest, size, media type); a registry that refuses
 * HEAD or names no digest is asked with GET (m->body is then freed). */
int rg_head_manifest(rg_client *c, const char *name, const char *ref,
                     rg_manifest *m, rg_err *e);
/* PUT a manifest's bytes under ref with media type mt; the digest of the
 * bytes (and of what the registry confirmed) into digest. */
int rg_put_manifest(rg_client *c, const char *name, const char *ref,
                    const char *body, size_t len, const char *mt,
                    char digest[RG_DIGEST_MAX + 1], rg_err *e);
/* The same with the digest algorithm for a tag (RG_ALG_NONE: sha256; a
 * digest reference names its own), and *oci_subject (may be NULL) set to
 * whether the answer carried OCI-Subject. */
int rg_put_manifest_x(rg_client *c, const char *name, const char *ref,
                      const char *body, size_t len, const char *mt,
                      rg_alg want, char digest[RG_DIGEST_MAX + 1],
                      int *oci_subject, rg_err *e);
int rg_delete_manifest(rg_client *c, const char *name, const char *digest,
                       rg_err *e);
/* Resolve a tag (HEAD) and delete the manifest it names. */
int rg_delete_image(rg_client *c, const char *name, const char *ref,
                    rg_err *e);

/* A list of strings (malloc'd). */
typedef struct rg_strlist {
    char **v;
    size_t n, cap;
} rg_strlist;
void rg_strlist_free(rg_strlist *l);

/* Tags of name (name != NULL) or the catalog, following Link pages; with
 * n >= 0 at most n, pages followed only while the registry sent fewer (a
 * registry that picks its own page size), and an n over 1000 that the
 * registry refuses with 400 (ECR) asked as pages of 1000; last: start
 * after it (NULL: none). */
int rg_list(rg_client *c, const char *name, int64_t n, const char *last,
            rg_strlist *out, rg_err *e);

int rg_ping(rg_client *c, rg_err *e);
int rg_blob_length(rg_client *c, const char *name, const char *digest,
                   int64_t *len, rg_err *e);
int rg_delete_blob(rg_client *c, const char *name, const char *digest,
                   rg_err *e);
/* 1 when the repository has the blob with `size` bytes (any size when
 * size < 0), else 0.  Never fails: a failed HEAD is a 0. */
int rg_blob_present(rg_client *c, const char *name, const char *digest,
                    int64_t size);

#pragma GCC visibility pop

#endif
