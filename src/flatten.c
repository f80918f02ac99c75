/*
 * flatten.c -- layers merged with their whiteouts applied (see
 * flatten.h).  Each layer is read through layer.h's reader (decompressed
 * as it streams) by libarchive, top layer first; the surviving members go
 * to layer.h's tar writer.  What was seen, removed or made opaque is kept
 * in a small set of paths (open addressing, FNV-1a).
 */
#define _XOPEN_SOURCE 700
#include "flatten.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK (128 * 1024)

typedef struct pset {
    char **v;
    size_t cap, n;
} pset;

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;
    for (i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static int pset_has(const pset *p, const char *s, size_t len)
{
    size_t i;
    if (!p->cap)
        return 0;
    for (i = hash(s, len) & (p->cap - 1); p->v[i]; i = (i + 1) & (p->cap - 1))
        if (strlen(p->v[i]) == len && !memcmp(p->v[i], s, len))
            return 1;
    return 0;
}

static int pset_add(pset *p, const char *s)
{
    size_t i, len = strlen(s);
    if (pset_has(p, s, len))
        return 0;
    if ((p->n + 1) * 2 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256, j;
        char **nv = calloc(cap, sizeof *nv);
        if (!nv)
            return -1;
        for (j = 0; j < p->cap; j++) {
            if (!p->v[j])
                continue;
            for (i = hash(p->v[j], strlen(p->v[j])) & (cap - 1); nv[i]; i = (i + 1) & (cap - 1))
                ;
            nv[i] = p->v[j];
        }
        free(p->v);
        p->v = nv;
        p->cap = cap;
    }
    for (i = hash(s, len) & (p->cap - 1); p->v[i]; i = (i + 1) & (p->cap - 1))
        ;
    if (!(p->v[i] = strdup(s)))
        return -1;
    p->n++;
    return 0;
}

static void pset_free(pset *p)
{
    size_t i;
    for (i = 0; i < p->cap; i++)
        free(p->v[i]);
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* A member's path made canonical in out: no leading "./", no trailing
 * '/', no empty or "." components.  -1: absolute, "..", or too long. */
static int canon(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    const char *s = in;
    if (!in || in[0] == '/')
        return -1;
    while (*s) {
        const char *t = strchr(s, '/');
        size_t len = t ? (size_t)(t - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.')
            return -1;
        if (len > 0 && !(len == 1 && s[0] == '.')) {
            if (n + len + 2 > cap)
                return -1;
            if (n)
                out[n++] = '/';
            memcpy(out + n, s, len);
            n += len;
        }
        if (!t)
            break;
        s = t + 1;
    }
    out[n] = '\0';
    return 0;
}

/* Is path (or a directory above it) removed, or below an opaque
 * directory?  (The sets hold what the layers above did.) */
static int hidden(const pset *gone, const pset *opaque, const char *path)
{
    size_t len = strlen(path), i;
    if (pset_has(gone, path, len))
        return 1;
    for (i = len; i > 0; i--) {
        if (path[i - 1] != '/')
            continue;
        if (pset_has(gone, path, i - 1) || pset_has(opaque, path, i - 1))
            return 1;
    }
    return pset_has(opaque, "", 0);
}

static int la_err(struct archive *a, rg_err *e, const char *layer)
{
    if (e->type)
        return -1;
    return rg_err_set(e, NULL, "invalid_argument", 0, "%s: %s", layer,
                      archive_error_string(a) ? archive_error_string(a) : "not a tar");
}

/* One layer: its surviving members copied to w; its whiteouts added to
 * gone_next / opaque_next (for the layers below). */
static int one_layer(struct archive *w, const char *path, rg_comp comp, pset *seen,
                     const pset *gone, const pset *opaque, pset *gone_next, pset *opaque_next,
                     rg_layer *out, char *buf, rg_err *e)
{
    struct archive *a = archive_read_new();
    struct archive_entry *en;
    int st, rc = -1;
    if (!a || archive_read_support_format_tar(a) != ARCHIVE_OK) {
        rg_err_set(e, NULL, "source", 0, "flatten: libarchive could not start");
        goto done;
    }
    if (rg_layer_read_open(a, path, comp, e) != 0)
        goto done;
    while ((st = archive_read_next_header(a, &en)) == ARCHIVE_OK || st == ARCHIVE_WARN) {
        char name[4096], link[4096];
        const char *base, *hl = archive_entry_hardlink(en);
        if (canon(archive_entry_pathname(en), name, sizeof name) != 0 ||
            (hl && canon(hl, link, sizeof link) != 0)) {
            rg_err_set(e, NULL, "invalid_argument", 0, "%s: the member %s has an absolute path or '..'",
                       path, archive_entry_pathname(en) ? archive_entry_pathname(en) : "?");
            goto done;
        }
        if (!name[0])
            continue;                            /* "./": the root */
        base = strrchr(name, '/');
        base = base ? base + 1 : name;
        if (!strncmp(base, ".wh.", 4)) {
            char target[4096];
            size_t dirlen = (size_t)(base - name);
            int r;
            if (!strcmp(base, ".wh..wh..opq")) {
                memcpy(target, name, dirlen ? dirlen - 1 : 0);
                target[dirlen ? dirlen - 1 : 0] = '\0';
                r = pset_add(opaque_next, target);
            } else {
                /* name and target are the same size and ".wh." is
                 * dropped: the bounded copy cannot cut */
                snprintf(target, sizeof target, "%.*s%s", (int)dirlen, name, base + 4);
                r = pset_add(gone_next, target);
            }
            if (r != 0) {
                rg_err_set(e, NULL, "source", 0, "flatten: out of memory");
                goto done;
            }
            continue;
        }
        if (pset_has(seen, name, strlen(name)) || hidden(gone, opaque, name))
            continue;
        if (pset_add(seen, name) != 0) {
            rg_err_set(e, NULL, "source", 0, "flatten: out of memory");
            goto done;
        }
        if (archive_entry_filetype(en) == AE_IFDIR) {
            char d[4097];
            snprintf(d, sizeof d, "%s/", name);
            archive_entry_set_pathname(en, d);
        } else {
            archive_entry_set_pathname(en, name);
        }
        if (hl)
            archive_entry_set_hardlink(en, link);
        if (archive_write_header(w, en) != ARCHIVE_OK) {
            la_err(w, e, path);
            goto done;
        }
        for (;;) {
            la_ssize_t n = archive_read_data(a, buf, BLOCK);
            if (n < 0) {
                la_err(a, e, path);
                goto done;
            }
            if (n == 0)
                break;
            if (archive_write_data(w, buf, (size_t)n) != n) {
                la_err(w, e, path);
                goto done;
            }
        }
        if (archive_write_finish_entry(w) != ARCHIVE_OK) {
            la_err(w, e, path);
            goto done;
        }
        rg_layer_count(out);
    }
    if (st != ARCHIVE_EOF) {
        la_err(a, e, path);
        goto done;
    }
    rc = 0;
done:
    if (a)
        archive_read_free(a);
    return rc;
}

/* Merge the sets of one layer's whiteouts into those of the layers above. */
static int merge(pset *into, pset *from)
{
    size_t i;
    for (i = 0; i < from->cap; i++)
        if (from->v[i] && pset_add(into, from->v[i]) != 0)
            return -1;
    pset_free(from);
    return 0;
}

int rg_flatten(const char *const *paths, const rg_comp *comps, int n,
               const char *out, rg_comp comp, int level, rg_layer_info *info,
               rg_err *e)
{
    pset seen = {0}, gone = {0}, opaque = {0}, gone_next = {0}, opaque_next = {0};
    struct archive *w = NULL;
    rg_layer *l = rg_layer_new(out, comp, level, e);
    char *buf = malloc(BLOCK);
    int i, rc = -1;
    if (!l || !buf) {
        if (l && !buf)
            rg_err_set(e, NULL, "source", 0, "flatten: out of memory");
        goto done;
    }
    if (!(w = rg_layer_tar_writer(l, e)))
        goto done;
    for (i = n - 1; i >= 0; i--) {
        if (one_layer(w, paths[i], comps[i], &seen, &gone, &opaque, &gone_next, &opaque_next,
                      l, buf, e) != 0)
            goto done;
        if (merge(&gone, &gone_next) != 0 || merge(&opaque, &opaque_next) != 0) {
            rg_err_set(e, NULL, "source", 0, "flatten: out of memory");
            goto done;
        }
    }
    if (archive_write_close(w) != ARCHIVE_OK) {
        la_err(w, e, out);
        goto done;
    }
    archive_write_free(w);
    w = NULL;
    rc = rg_layer_finish(l, info, e);
    l = NULL;
done:
    if (w)
        archive_write_free(w);
    rg_layer_abort(l);
    free(buf);
    pset_free(&seen);
    pset_free(&gone);
    pset_free(&opaque);
    pset_free(&gone_next);
    pset_free(&opaque_next);
    return rc;
}
