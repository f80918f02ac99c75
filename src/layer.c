/*
 * layer.c -- image layers made in one pass (see layer.h for the rules).
 *
 * A layer (rg_layer) is a sink of tar bytes: each block is hashed for the
 * diff_id, compressed (gzip.h's rg_gz, zstd.h's rg_zstd), and the
 * compressed bytes hashed for the blob's digest as they go to the file.
 * A directory is packed by libarchive's pax writer into that sink.  A tar
 * file is read block by block (decompressed when it is gzip or zstd): the
 * blocks go to the layer (or, kept as they are, to the file) and, the
 * same blocks, to libarchive's tar reader, which checks each member's
 * path; the file is read once.
 */
#define _XOPEN_SOURCE 700
#include "layer.h"
#include "gzip.h"
#include "zstd.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK (128 * 1024)
#define PATH_CAP 4096

static int src_err(rg_err *e, const char *what, const char *path)
{
    return rg_err_set(e, NULL, "source", 0, "%s %s: %s", what, path, strerror(errno));
}

/* The caller's path is missing, a loop of links, unreadable: its error. */
static int arg_err(rg_err *e, const char *what, const char *path)
{
    return rg_err_set(e, NULL, "invalid_argument", 0, "%s %s: %s", what, path, strerror(errno));
}

/* ---- a compressor or decompressor: gzip or zstd ------------------- */

typedef struct codec {
    rg_gz *gz;
    rg_zstd *zs;
} codec;

static int codec_open(codec *c, rg_comp comp, int compress, int level, rg_err *e)
{
    memset(c, 0, sizeof *c);
    if (comp == RG_COMP_GZIP)
        c->gz = rg_gz_new(compress, level ? level : (compress ? 1 : 0), e);
    else if (comp == RG_COMP_ZSTD)
        c->zs = rg_zstd_new(compress, level ? level : 3, e);
    else
        return rg_err_set(e, NULL, "invalid_argument", 0, "layer: no such compression");
    return (c->gz || c->zs) ? 0 : -1;
}

static int codec_step(codec *c, const unsigned char **in, size_t *in_len,
                      unsigned char *out, size_t *out_len, int finish, int *end, rg_err *e)
{
    if (c->gz)
        return rg_gz_step(c->gz, in, in_len, out, out_len, finish, end, e);
    return rg_zstd_step(c->zs, in, in_len, out, out_len, finish, end, e);
}

static void codec_close(codec *c)
{
    rg_gz_free(c->gz);
    rg_zstd_free(c->zs);
    memset(c, 0, sizeof *c);
}

/* ---- the layer: a sink of tar bytes ------------------------------- */

struct rg_layer {
    FILE *f;
    char *path;
    codec c;
    rg_hasher dh, bh;            /* diff_id (tar), digest (blob) */
    int64_t tar, size, members;
    rg_err *cb_err;              /* libarchive's write callback reports here */
    unsigned char out[BLOCK];
};

rg_layer *rg_layer_new(const char *path, rg_comp comp, int level, rg_err *e)
{
    rg_layer *l = calloc(1, sizeof *l);
    if (!l) {
        rg_err_set(e, NULL, "source", 0, "layer: out of memory");
        return NULL;
    }
    if (comp != RG_COMP_GZIP && comp != RG_COMP_ZSTD) {
        rg_err_set(e, NULL, "invalid_argument", 0, "layer: a new layer is gzip or zstd");
        free(l);
        return NULL;
    }
    if (codec_open(&l->c, comp, 1, level, e) != 0) {
        free(l);
        return NULL;
    }
    if (rg_hasher_init(&l->dh, RG_ALG_SHA256) != 0 || rg_hasher_init(&l->bh, RG_ALG_SHA256) != 0 ||
        !(l->path = strdup(path))) {
        rg_err_set(e, NULL, "source", 0, "layer: out of memory");
        goto fail;
    }
    if (!(l->f = fopen(path, "wb"))) {
        src_err(e, "cannot create", path);
        goto fail;
    }
    return l;
fail:
    codec_close(&l->c);
    rg_hasher_free(&l->dh);
    rg_hasher_free(&l->bh);
    free(l->path);
    free(l);
    return NULL;
}

static int emit(rg_layer *l, size_t n, rg_err *e)
{
    if (n == 0)
        return 0;
    if (fwrite(l->out, 1, n, l->f) != n)
        return src_err(e, "cannot write", l->path);
    if (rg_hasher_update(&l->bh, l->out, n) != 0)
        return rg_err_set(e, NULL, "source", 0, "layer: hashing failed");
    l->size += (int64_t)n;
    return 0;
}

int rg_layer_write(rg_layer *l, const void *data, size_t n, rg_err *e)
{
    const unsigned char *in = data;
    size_t left = n, got;
    int end;
    if (rg_hasher_update(&l->dh, data, n) != 0)
        return rg_err_set(e, NULL, "source", 0, "layer: hashing failed");
    l->tar += (int64_t)n;
    do {
        got = BLOCK;
        if (codec_step(&l->c, &in, &left, l->out, &got, 0, &end, e) != 0 || emit(l, got, e) != 0)
            return -1;
    } while (left > 0 || got == BLOCK);
    return 0;
}

void rg_layer_count(rg_layer *l)
{
    l->members++;
}

static void layer_free(rg_layer *l, int remove_file)
{
    if (l->f)
        fclose(l->f);
    if (remove_file)
        remove(l->path);
    codec_close(&l->c);
    rg_hasher_free(&l->dh);
    rg_hasher_free(&l->bh);
    free(l->path);
    free(l);
}

int rg_layer_finish(rg_layer *l, rg_layer_info *info, rg_err *e)
{
    const unsigned char *in = NULL;
    size_t left = 0, got;
    int end = 0, rc;
    while (!end) {
        got = BLOCK;
        if (codec_step(&l->c, &in, &left, l->out, &got, 1, &end, e) != 0 || emit(l, got, e) != 0)
            goto fail;
    }
    rc = fclose(l->f);
    l->f = NULL;
    if (rc != 0) {
        src_err(e, "cannot write", l->path);
        goto fail;
    }
    if (rg_hasher_final(&l->dh, info->diff_id) != 0 || rg_hasher_final(&l->bh, info->digest) != 0) {
        rg_err_set(e, NULL, "source", 0, "layer: hashing failed");
        goto fail;
    }
    info->size = l->size;
    info->tar_size = l->tar;
    info->members = l->members;
    layer_free(l, 0);
    return 0;
fail:
    layer_free(l, 1);
    return -1;
}

void rg_layer_abort(rg_layer *l)
{
    if (l)
        layer_free(l, 1);
}

/* ---- packing a directory ------------------------------------------ */

typedef struct ent {
    char *rel;
    struct stat st;
} ent;

typedef struct walk {
    ent *v;
    size_t n, cap;
} walk;

static int bad_path(rg_err *e, const char *path, const char *why)
{
    return rg_err_set(e, NULL, "invalid_argument", 0, "%s: %s", path, why);
}

static int walk_dir(walk *w, const char *root, const char *rel, int depth, rg_err *e)
{
    char abs[PATH_CAP];
    DIR *d;
    struct dirent *de;
    int rc = 0;
    if (depth > 256)
        return bad_path(e, root, "directories nested too deep");
    if (snprintf(abs, sizeof abs, "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof abs)
        return bad_path(e, rel, "path too long");
    if (!(d = opendir(abs)))
        return src_err(e, "cannot read the directory", abs);
    while ((de = readdir(d))) {
        char crel[PATH_CAP], cabs[PATH_CAP];
        struct stat st;
        ent *x;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (snprintf(crel, sizeof crel, "%s%s%s", rel, *rel ? "/" : "", de->d_name) >= (int)sizeof crel ||
            snprintf(cabs, sizeof cabs, "%s/%s", root, crel) >= (int)sizeof cabs) {
            rc = bad_path(e, crel, "path too long");
            break;
        }
        if (lstat(cabs, &st) != 0) {
            rc = src_err(e, "cannot stat", cabs);
            break;
        }
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
            rc = bad_path(e, cabs, S_ISFIFO(st.st_mode) ? "a FIFO cannot go into a layer" :
                          S_ISSOCK(st.st_mode) ? "a socket cannot go into a layer" :
                          "a device cannot go into a layer");
            break;
        }
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 64;
            ent *nv = realloc(w->v, cap * sizeof *nv);
            if (!nv) {
                rc = rg_err_set(e, NULL, "source", 0, "layer: out of memory");
                break;
            }
            w->v = nv;
            w->cap = cap;
        }
        x = &w->v[w->n];
        if (!(x->rel = strdup(crel))) {
            rc = rg_err_set(e, NULL, "source", 0, "layer: out of memory");
            break;
        }
        x->st = st;
        w->n++;
        if (S_ISDIR(st.st_mode) && (rc = walk_dir(w, root, crel, depth + 1, e)) != 0)
            break;
    }
    closedir(d);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const ent *)a)->rel, ((const ent *)b)->rel);
}

static la_ssize_t la_write(struct archive *a, void *ud, const void *buf, size_t n)
{
    rg_layer *l = ud;
    (void)a;
    if (rg_layer_write(l, buf, n, l->cb_err) != 0)
        return -1;
    return (la_ssize_t)n;
}

/* libarchive's failure, unless the sink already set e. */
static int la_fail(struct archive *a, rg_err *e, const char *what)
{
    if (e->type)
        return -1;
    return rg_err_set(e, NULL, "source", 0, "%s: %s", what,
                      archive_error_string(a) ? archive_error_string(a) : "libarchive failed");
}

static int pack_file(struct archive *a, const char *abs, int64_t size, rg_err *e)
{
    char *buf;
    int fd = open(abs, O_RDONLY | O_NOFOLLOW);
    int64_t total = 0;
    int rc = 0;
    if (fd < 0)
        return src_err(e, "cannot read", abs);
    if (!(buf = malloc(BLOCK))) {
        close(fd);
        return rg_err_set(e, NULL, "source", 0, "layer: out of memory");
    }
    for (;;) {
        ssize_t n = read(fd, buf, BLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = src_err(e, "cannot read", abs);
            break;
        }
        if (n == 0)
            break;
        total += n;
        if (total > size) {
            rc = bad_path(e, abs, "the file grew while it was packed");
            break;
        }
        if (archive_write_data(a, buf, (size_t)n) != n) {
            rc = la_fail(a, e, abs);
            break;
        }
    }
    if (rc == 0 && total != size)
        rc = bad_path(e, abs, "the file shrank while it was packed");
    free(buf);
    close(fd);
    return rc;
}

struct archive *rg_layer_tar_writer(rg_layer *l, rg_err *e)
{
    struct archive *a = archive_write_new();
    if (!a) {
        rg_err_set(e, NULL, "source", 0, "layer: out of memory");
        return NULL;
    }
    l->cb_err = e;
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open(a, l, NULL, la_write, NULL) != ARCHIVE_OK) {
        la_fail(a, e, "layer: libarchive could not start");
        archive_write_free(a);
        return NULL;
    }
    return a;
}

int rg_layer_pack_dir(rg_layer *l, const char *dir, int64_t uid, int64_t gid,
                      int64_t mtime, rg_err *e)
{
    walk w = {0};
    struct archive *a = NULL;
    struct archive_entry *en = NULL;
    struct stat st;
    int rc = -1;
    size_t i, j;

    if (stat(dir, &st) != 0)
        return arg_err(e, "cannot pack", dir);
    if (!S_ISDIR(st.st_mode))
        return bad_path(e, dir, "not a directory");
    if (walk_dir(&w, dir, "", 0, e) != 0)
        goto done;
    qsort(w.v, w.n, sizeof *w.v, by_path);
    if (!(en = archive_entry_new())) {
        rg_err_set(e, NULL, "source", 0, "layer: out of memory");
        goto done;
    }
    if (!(a = rg_layer_tar_writer(l, e)))
        goto done;
    for (i = 0; i < w.n; i++) {
        ent *x = &w.v[i];
        char abs[PATH_CAP], name[PATH_CAP];
        const char *first = NULL;
        mode_t m = x->st.st_mode;
        snprintf(abs, sizeof abs, "%s/%s", dir, x->rel);
        snprintf(name, sizeof name, "%s%s", x->rel, S_ISDIR(m) ? "/" : "");
        archive_entry_clear(en);
        archive_entry_set_pathname(en, name);
        archive_entry_set_uid(en, uid);
        archive_entry_set_gid(en, gid);
        archive_entry_set_perm(en, m & 07777);
        archive_entry_set_mtime(en, (time_t)mtime, 0);
        if (S_ISREG(m) && x->st.st_nlink > 1) {
            for (j = 0; j < i; j++)
                if (S_ISREG(w.v[j].st.st_mode) && w.v[j].st.st_ino == x->st.st_ino &&
                    w.v[j].st.st_dev == x->st.st_dev) {
                    first = w.v[j].rel;
                    break;
                }
        }
        if (first) {
            archive_entry_set_filetype(en, AE_IFREG);
            archive_entry_set_hardlink(en, first);
            archive_entry_set_size(en, 0);
        } else if (S_ISREG(m)) {
            archive_entry_set_filetype(en, AE_IFREG);
            archive_entry_set_size(en, x->st.st_size);
        } else if (S_ISDIR(m)) {
            archive_entry_set_filetype(en, AE_IFDIR);
        } else {
            char target[PATH_CAP];
            ssize_t n = readlink(abs, target, sizeof target - 1);
            if (n < 0) {
                src_err(e, "cannot read the link", abs);
                goto done;
            }
            target[n] = '\0';
            archive_entry_set_filetype(en, AE_IFLNK);
            archive_entry_set_symlink(en, target);
        }
        if (archive_write_header(a, en) != ARCHIVE_OK) {
            la_fail(a, e, abs);
            goto done;
        }
        if (S_ISREG(m) && !first && pack_file(a, abs, x->st.st_size, e) != 0)
            goto done;
        if (archive_write_finish_entry(a) != ARCHIVE_OK) {
            la_fail(a, e, abs);
            goto done;
        }
        rg_layer_count(l);
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        la_fail(a, e, "layer: closing the tar");
        goto done;
    }
    rc = 0;
done:
    if (a)
        archive_write_free(a);
    if (en)
        archive_entry_free(en);
    for (i = 0; i < w.n; i++)
        free(w.v[i].rel);
    free(w.v);
    return rc;
}

/* ---- reading a tar file (compressed or not) ----------------------- */

typedef struct reader {
    int fd;
    char *path;
    rg_comp comp;
    codec c;
    int started, raw_eof, ended, owned;
    const unsigned char *rp;
    size_t rlen;
    /* where the bytes also go */
    FILE *raw_out;               /* KEEP: the file's bytes as they are */
    rg_hasher rh, th;            /* KEEP: the raw bytes; the tar bytes */
    rg_layer *tar_out;           /* compressing: the tar bytes */
    int64_t raw_total, tar_total;
    rg_err *e;
    unsigned char raw[BLOCK], out[BLOCK];
} reader;

static const char *comp_name(rg_comp c)
{
    return c == RG_COMP_GZIP ? "gzip" : c == RG_COMP_ZSTD ? "zstd" : "tar";
}

static int tee_raw(reader *r, const unsigned char *p, size_t n)
{
    r->raw_total += (int64_t)n;
    if (!r->raw_out)
        return 0;
    if (fwrite(p, 1, n, r->raw_out) != n)
        return src_err(r->e, "cannot write the layer from", r->path);
    if (rg_hasher_update(&r->rh, p, n) != 0)
        return rg_err_set(r->e, NULL, "source", 0, "layer: hashing failed");
    return 0;
}

static int tee_tar(reader *r, const unsigned char *p, size_t n)
{
    r->tar_total += (int64_t)n;
    if (r->tar_out)
        return rg_layer_write(r->tar_out, p, n, r->e);
    if (r->raw_out && rg_hasher_update(&r->th, p, n) != 0)
        return rg_err_set(r->e, NULL, "source", 0, "layer: hashing failed");
    return 0;
}

static ssize_t read_raw(reader *r)
{
    ssize_t n;
    do {
        n = read(r->fd, r->raw, BLOCK);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        src_err(r->e, "cannot read", r->path);
        return -1;
    }
    if (!r->started) {
        static const unsigned char gz[] = { 0x1f, 0x8b }, zs[] = { 0x28, 0xb5, 0x2f, 0xfd };
        r->started = 1;
        if ((r->comp == RG_COMP_GZIP && (n < 2 || memcmp(r->raw, gz, 2))) ||
            (r->comp == RG_COMP_ZSTD && (n < 4 || memcmp(r->raw, zs, 4)))) {
            rg_err_set(r->e, NULL, "invalid_argument", 0, "%s is not %s-compressed", r->path,
                       comp_name(r->comp));
            return -1;
        }
    }
    if (n > 0 && tee_raw(r, r->raw, (size_t)n) != 0)
        return -1;
    return n;
}

/* The next block of tar bytes: its length (0 at the end), or -1. */
static ssize_t next_tar(reader *r, const void **buf)
{
    if (r->comp == RG_COMP_TAR) {
        ssize_t n = read_raw(r);
        if (n > 0 && tee_tar(r, r->raw, (size_t)n) != 0)
            return -1;
        *buf = r->raw;
        return n;
    }
    for (;;) {
        size_t got = BLOCK, before;
        int end = 0;
        if (r->rlen == 0 && !r->raw_eof) {
            ssize_t n = read_raw(r);
            if (n < 0)
                return -1;
            if (n == 0)
                r->raw_eof = 1;
            r->rp = r->raw;
            r->rlen = (size_t)n;
        }
        before = r->rlen;
        if (codec_step(&r->c, &r->rp, &r->rlen, r->out, &got, 0, &end, r->e) != 0) {
            /* name the file in the codec's message */
            char *m = r->e->message ? strdup(r->e->message) : NULL;
            rg_err_set(r->e, NULL, "invalid_argument", 0, "%s: %s", r->path, m ? m : "corrupt");
            free(m);
            return -1;
        }
        if (got > 0 || r->rlen != before)
            r->ended = end;
        if (got > 0) {
            if (tee_tar(r, r->out, got) != 0)
                return -1;
            *buf = r->out;
            return (ssize_t)got;
        }
        if (r->raw_eof && r->rlen == 0) {
            if (!r->ended) {
                rg_err_set(r->e, NULL, "invalid_argument", 0, "%s: the %s stream is truncated",
                           r->path, comp_name(r->comp));
                return -1;
            }
            return 0;
        }
        if (r->rlen == before && r->rlen > 0) {
            rg_err_set(r->e, NULL, "invalid_argument", 0, "%s: corrupt %s data", r->path,
                       comp_name(r->comp));
            return -1;
        }
    }
}

static la_ssize_t la_read(struct archive *a, void *ud, const void **buf)
{
    reader *r = ud;
    ssize_t n = next_tar(r, buf);
    if (n < 0)
        archive_set_error(a, EINVAL, "%s", r->e->message ? r->e->message : "read failed");
    return (la_ssize_t)n;
}

static void reader_free(reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    codec_close(&r->c);
    rg_hasher_free(&r->rh);
    rg_hasher_free(&r->th);
    free(r->path);
    free(r);
}

static int la_close(struct archive *a, void *ud)
{
    reader *r = ud;
    (void)a;
    if (r->owned)
        reader_free(r);
    return ARCHIVE_OK;
}

static reader *reader_new(const char *src, rg_comp comp, rg_err *e)
{
    reader *r = calloc(1, sizeof *r);
    if (!r) {
        rg_err_set(e, NULL, "source", 0, "layer: out of memory");
        return NULL;
    }
    r->fd = -1;
    r->comp = comp;
    r->e = e;
    if (!(r->path = strdup(src))) {
        rg_err_set(e, NULL, "source", 0, "layer: out of memory");
        reader_free(r);
        return NULL;
    }
    if (comp != RG_COMP_TAR && codec_open(&r->c, comp, 0, 0, e) != 0) {
        reader_free(r);
        return NULL;
    }
    if ((r->fd = open(src, O_RDONLY)) < 0) {
        arg_err(e, "cannot read", src);
        reader_free(r);
        return NULL;
    }
    return r;
}

int rg_layer_read_open(struct archive *a, const char *src, rg_comp in_comp, rg_err *e)
{
    reader *r = reader_new(src, in_comp, e);
    if (!r)
        return -1;
    r->owned = 1;
    if (archive_read_open(a, r, NULL, la_read, la_close) != ARCHIVE_OK)
        return la_fail(a, e, src);
    return 0;
}

/* Is a member's path unsafe: absolute, or with a ".." component? */
static int unsafe(const char *p)
{
    const char *s = p;
    if (!p || p[0] == '/')
        return 1;
    while (*s) {
        const char *t = strchr(s, '/');
        size_t len = t ? (size_t)(t - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.')
            return 1;
        if (!t)
            break;
        s = t + 1;
    }
    return 0;
}

int rg_layer_from_file(const char *src, rg_comp in_comp, const char *path,
                       rg_comp out_comp, int level, int check,
                       rg_layer_info *info, rg_err *e)
{
    reader *r;
    struct archive *a = NULL;
    struct archive_entry *en;
    int rc = -1, st;
    int64_t members = 0;
    const void *dummy;

    if (out_comp == RG_COMP_KEEP && in_comp == RG_COMP_TAR)
        return rg_err_set(e, NULL, "invalid_argument", 0, "%s: an uncompressed tar needs compressing", src);
    if (!(r = reader_new(src, in_comp, e)))
        return -1;
    if (out_comp == RG_COMP_KEEP) {
        if (rg_hasher_init(&r->rh, RG_ALG_SHA256) != 0 || rg_hasher_init(&r->th, RG_ALG_SHA256) != 0) {
            rg_err_set(e, NULL, "source", 0, "layer: out of memory");
            goto done;
        }
        if (!(r->raw_out = fopen(path, "wb"))) {
            src_err(e, "cannot create", path);
            goto done;
        }
    } else if (!(r->tar_out = rg_layer_new(path, out_comp, level, e))) {
        goto done;
    }
    if (!(a = archive_read_new()) || archive_read_support_format_tar(a) != ARCHIVE_OK) {
        rg_err_set(e, NULL, "source", 0, "layer: libarchive could not start");
        goto done;
    }
    if (archive_read_open(a, r, NULL, la_read, la_close) != ARCHIVE_OK) {
        if (!e->type)
            rg_err_set(e, NULL, "invalid_argument", 0, "%s is not a tar: %s", src,
                       archive_error_string(a) ? archive_error_string(a) : "?");
        goto done;
    }
    while ((st = archive_read_next_header(a, &en)) == ARCHIVE_OK || st == ARCHIVE_WARN) {
        const char *name = archive_entry_pathname(en), *hl = archive_entry_hardlink(en);
        if (check && (unsafe(name) || (hl && unsafe(hl)))) {
            rg_err_set(e, NULL, "invalid_argument", 0, "%s: the member %s%s%s has an absolute path or '..'",
                       src, name ? name : "?", hl ? " -> " : "", hl ? hl : "");
            goto done;
        }
        members++;
        if (archive_read_data_skip(a) != ARCHIVE_OK) {
            if (!e->type)
                rg_err_set(e, NULL, "invalid_argument", 0, "%s: %s", src,
                           archive_error_string(a) ? archive_error_string(a) : "a truncated tar");
            goto done;
        }
    }
    if (st != ARCHIVE_EOF) {
        if (!e->type)
            rg_err_set(e, NULL, "invalid_argument", 0, "%s is not a whole tar: %s", src,
                       archive_error_string(a) ? archive_error_string(a) : "?");
        goto done;
    }
    for (;;) {                   /* the rest after the end-of-archive blocks */
        ssize_t n = next_tar(r, &dummy);
        if (n < 0)
            goto done;
        if (n == 0)
            break;
    }
    if (out_comp == RG_COMP_KEEP) {
        FILE *f = r->raw_out;
        r->raw_out = NULL;
        if (fclose(f) != 0) {
            src_err(e, "cannot write", path);
            goto done;
        }
        if (rg_hasher_final(&r->th, info->diff_id) != 0 || rg_hasher_final(&r->rh, info->digest) != 0) {
            rg_err_set(e, NULL, "source", 0, "layer: hashing failed");
            goto done;
        }
        info->size = r->raw_total;
        info->tar_size = r->tar_total;
    } else {
        rg_layer *l = r->tar_out;
        r->tar_out = NULL;
        if (rg_layer_finish(l, info, e) != 0)
            goto done;
    }
    info->members = members;
    rc = 0;
done:
    if (a)
        archive_read_free(a);
    if (r->raw_out) {
        fclose(r->raw_out);
        remove(path);
    } else if (rc != 0 && out_comp == RG_COMP_KEEP) {
        remove(path);
    }
    rg_layer_abort(r->tar_out);
    reader_free(r);
    return rc;
}
