/*
 * archive.c -- tar files through libarchive: unpack one safely, write one
 * member by member.  See archive.h for the rules on paths and links.
 *
 * Unpacking is one pass over the tar: each regular member is written to
 * DEST/<path> as it streams (parents made inside DEST), links are noted
 * and made at the end, once every target exists, as hard links (or
 * copies) inside DEST.  No symbolic link is ever created, so a path
 * without `..` cannot leave DEST.
 */
#define _XOPEN_SOURCE 700
#include "archive.h"
#include "fsops.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK 65536

static int bad(rg_err *e, const char *fmt, const char *a, const char *b)
{
    return rg_err_set(e, NULL, "invalid_argument", 0, fmt, a, b ? b : "");
}

static int sys(rg_err *e, const char *what, const char *path)
{
    return rg_err_set(e, NULL, "source", 0, "%s %s: %s", what, path,
                      strerror(errno));
}

/*
 * Normalise rel (a '/'-separated path) onto base (already normal, may be
 * ""), into out: "." and empty components vanish, ".." removes the last
 * component when allow_up (and fails when there is none), and fails when
 * not.  An absolute rel fails.  0 / -1.
 */
static int norm_path(const char *base, const char *rel, int allow_up,
                     char *out, size_t outlen)
{
    size_t n = strlen(base), i = 0;
    if (rel[0] == '/' || n >= outlen)
        return -1;
    memcpy(out, base, n + 1);
    while (rel[i]) {
        size_t j = i, len;
        while (rel[j] && rel[j] != '/')
            j++;
        len = j - i;
        if (len == 0 || (len == 1 && rel[i] == '.')) {
            /* nothing */
        } else if (len == 2 && rel[i] == '.' && rel[i + 1] == '.') {
            if (!allow_up || n == 0)
                return -1;
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
            out[n] = '\0';
        } else {
            if (n + len + 2 > outlen)
                return -1;
            if (n > 0)
                out[n++] = '/';
            memcpy(out + n, rel + i, len);
            n += len;
            out[n] = '\0';
        }
        i = rel[j] ? j + 1 : j;
    }
    return 0;
}

/* dest/rel in out; 0 / -1 (too long). */
static int join(char *out, size_t outlen, const char *dest, const char *rel)
{
    int n = snprintf(out, outlen, "%s/%s", dest, rel);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* Make the parent directories of dest/rel (rel is normal). */
static int make_parents(const char *dest, const char *rel, rg_err *e)
{
    char path[4096], why[512];
    char *slash;
    if (join(path, sizeof path, dest, rel) != 0)
        return bad(e, "archive member %s%s: path too long", rel, NULL);
    slash = strrchr(path, '/');
    *slash = '\0';
    if (rg_mkdir_p(path, why, sizeof why) != 0) {
        rg_err_set(e, NULL, "invalid_argument", 0,
                   "archive member %s: cannot make its directory (%s)", rel, why);
        return -1;
    }
    return 0;
}

/* Stream the current member's data into dest/rel. */
static int write_member(struct archive *a, const char *dest, const char *rel,
                        int64_t size, rg_err *e)
{
    char path[4096];
    const void *buf;
    size_t len;
    la_int64_t off;
    int fd, r;
    if (make_parents(dest, rel, e) != 0)
        return -1;
    join(path, sizeof path, dest, rel);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return sys(e, "cannot create", path);
    while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
        const char *p = buf;
        while (len > 0) {
            ssize_t w = pwrite(fd, p, len, (off_t)off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                sys(e, "cannot write", path);
                close(fd);
                return -1;
            }
            p += w;
            off += w;
            len -= (size_t)w;
        }
    }
    if (r != ARCHIVE_EOF) {
        close(fd);
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "archive member %s: truncated or corrupt tar (%s)",
                          rel, archive_error_string(a) ? archive_error_string(a) : "read error");
    }
    if (ftruncate(fd, (off_t)size) != 0 || close(fd) != 0)
        return sys(e, "cannot write", path);
    return 0;
}

/* A link to make once the whole tar is read: rel -> target (both normal,
 * relative to dest). */
typedef struct pending {
    char *rel, *target;
} pending;

typedef struct links {
    pending *v;
    size_t n, cap;
} links;

static int links_add(links *l, const char *rel, const char *target, rg_err *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        pending *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return rg_err_set(e, NULL, "source", 0, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].rel = strdup(rel);
    l->v[l->n].target = strdup(target);
    if (!l->v[l->n].rel || !l->v[l->n].target) {
        free(l->v[l->n].rel);
        free(l->v[l->n].target);
        return rg_err_set(e, NULL, "source", 0, "out of memory");
    }
    l->n++;
    return 0;
}

static void links_free(links *l)
{
    size_t i;
    for (i = 0; i < l->n; i++) {
        free(l->v[i].rel);
        free(l->v[i].target);
    }
    free(l->v);
}

/* Copy the regular file from to to (a new file). */
static int copy_file(const char *from, const char *to, rg_err *e)
{
    char buf[BLOCK];
    int in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out;
    ssize_t n;
    if (in < 0)
        return sys(e, "cannot open", from);
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return sys(e, "cannot create", to);
    }
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            sys(e, "cannot write", to);
            close(in);
            close(out);
            return -1;
        }
    }
    close(in);
    if (n < 0 || close(out) != 0)
        return sys(e, "cannot copy to", to);
    return 0;
}

/*
 * Make the noted links: each whose target is a regular file of dest by
 * now, until none is left or a round makes none (a missing target, a
 * directory, a cycle).
 */
static int make_links(const char *dest, links *l, int64_t *count, rg_err *e)
{
    size_t left = l->n, i;
    char *done = calloc(l->n ? l->n : 1, 1);
    if (!done)
        return rg_err_set(e, NULL, "source", 0, "out of memory");
    while (left > 0) {
        size_t made = 0;
        for (i = 0; i < l->n; i++) {
            char from[4096], to[4096];
            struct stat st;
            if (done[i])
                continue;
            if (join(from, sizeof from, dest, l->v[i].target) != 0 ||
                join(to, sizeof to, dest, l->v[i].rel) != 0 ||
                lstat(from, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            if (make_parents(dest, l->v[i].rel, e) != 0)
                goto fail;
            unlink(to);
            if (link(from, to) != 0 && copy_file(from, to, e) != 0)
                goto fail;
            done[i] = 1;
            made++;
            left--;
            (*count)++;
        }
        if (made == 0)
            break;
    }
    for (i = 0; i < l->n; i++) {
        if (!done[i]) {
            bad(e, "archive member %s is a link to %s, which is not a file of the archive",
                l->v[i].rel, l->v[i].target);
            goto fail;
        }
    }
    free(done);
    return 0;
fail:
    free(done);
    return -1;
}

/* The member at hand: check its path and type; write it or note it. */
static int take_member(struct archive *a, struct archive_entry *en,
                       const char *dest, int64_t limit, links *l,
                       int64_t *count, rg_err *e)
{
    const char *name = archive_entry_pathname(en), *hl, *sl;
    char rel[2048], dir[2048], target[2048];
    mode_t type = archive_entry_filetype(en);
    if (!name)
        return bad(e, "an archive member has no path%s%s", "", NULL);
    if (norm_path("", name, 0, rel, sizeof rel) != 0)
        return bad(e, "archive member %s: an absolute path or one with `..`%s", name, NULL);
    hl = archive_entry_hardlink(en);
    if (rel[0] == '\0')
        return 0;                          /* "./" itself */
    if (hl) {
        if (norm_path("", hl, 1, target, sizeof target) != 0 || target[0] == '\0')
            return bad(e, "archive member %s: a hard link to %s, outside the archive", name, hl);
        return links_add(l, rel, target, e);
    }
    if (type == AE_IFLNK) {
        char *slash;
        sl = archive_entry_symlink(en);
        memcpy(dir, rel, strlen(rel) + 1);
        slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            dir[0] = '\0';
        if (!sl || norm_path(dir, sl, 1, target, sizeof target) != 0 || target[0] == '\0')
            return bad(e, "archive member %s: a symbolic link to %s, outside the archive",
                       name, sl ? sl : "nothing");
        return links_add(l, rel, target, e);
    }
    if (type == AE_IFDIR) {
        char path[4096], why[512];
        if (join(path, sizeof path, dest, rel) != 0 || rg_mkdir_p(path, why, sizeof why) != 0)
            return bad(e, "archive member %s: cannot make the directory%s", name, NULL);
        return 0;
    }
    if (type != AE_IFREG)
        return bad(e, "archive member %s: not a file, directory or link%s", name, NULL);
    if (limit >= 0 && archive_entry_size_is_set(en) && archive_entry_size(en) > limit) {
        char sz[32];
        snprintf(sz, sizeof sz, "%lld", (long long)archive_entry_size(en));
        return bad(e, "archive member %s claims %s bytes, more than the whole archive", name, sz);
    }
    if (write_member(a, dest, rel, archive_entry_size(en), e) != 0)
        return -1;
    (*count)++;
    return 0;
}

int rg_tar_extract(const char *path, const char *dest, int64_t *members,
                   rg_err *e)
{
    struct archive *a = archive_read_new();
    struct archive_entry *en;
    links l = { NULL, 0, 0 };
    int64_t limit = -1, count = 0;
    int r, rc = -1, from_stdin = strcmp(path, "-") == 0;
    struct stat st;
    if (!a)
        return rg_err_set(e, NULL, "source", 0, "out of memory");
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    archive_read_support_filter_all(a);
    if (!from_stdin) {
        if (stat(path, &st) != 0) {
            sys(e, "cannot read", path);
            goto out;
        }
        if (S_ISREG(st.st_mode))
            limit = (int64_t)st.st_size;
    }
    r = from_stdin ? archive_read_open_fd(a, 0, BLOCK)
                   : archive_read_open_filename(a, path, BLOCK);
    if (r != ARCHIVE_OK) {
        bad(e, "%s is not a readable tar: %s", from_stdin ? "standard input" : path,
            archive_error_string(a));
        goto out;
    }
    while ((r = archive_read_next_header(a, &en)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        /* only a tar without compression can be compared to its size */
        int64_t lim = archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE ? limit : -1;
        if (take_member(a, en, dest, lim, &l, &count, e) != 0)
            goto out;
    }
    if (r != ARCHIVE_EOF) {
        bad(e, "%s: truncated or corrupt tar (%s)", from_stdin ? "standard input" : path,
            archive_error_string(a));
        goto out;
    }
    if (make_links(dest, &l, &count, e) != 0)
        goto out;
    if (members)
        *members = count;
    rc = 0;
out:
    links_free(&l);
    archive_read_free(a);
    return rc;
}

/* ------------------------------------------------------------------ */
/* writing                                                              */
/* ------------------------------------------------------------------ */

struct rg_tar_out {
    struct archive *a;
    char *path, *partial;                  /* NULL for standard output */
};

static int write_failed(rg_tar_out *t, rg_err *e, const char *name)
{
    rg_err_set(e, NULL, "source", 0, "cannot write %s to %s: %s", name,
               t->path ? t->path : "standard output", archive_error_string(t->a));
    return -1;
}

rg_tar_out *rg_tar_create(const char *path, rg_err *e)
{
    rg_tar_out *t = calloc(1, sizeof *t);
    int r;
    if (!t || !(t->a = archive_write_new())) {
        free(t);
        rg_err_set(e, NULL, "source", 0, "out of memory");
        return NULL;
    }
    archive_write_set_format_pax_restricted(t->a);
    if (strcmp(path, "-") == 0) {
        archive_write_set_bytes_in_last_block(t->a, 1);
        r = archive_write_open_fd(t->a, 1);
    } else {
        size_t n = strlen(path);
        t->path = strdup(path);
        t->partial = malloc(n + sizeof ".partial");
        if (!t->path || !t->partial) {
            rg_err_set(e, NULL, "source", 0, "out of memory");
            rg_tar_abort(t);
            return NULL;
        }
        memcpy(t->partial, path, n);
        memcpy(t->partial + n, ".partial", sizeof ".partial");
        r = archive_write_open_filename(t->a, t->partial);
    }
    if (r != ARCHIVE_OK) {
        rg_err_set(e, NULL, "source", 0, "cannot create %s: %s", path,
                   archive_error_string(t->a));
        rg_tar_abort(t);
        return NULL;
    }
    return t;
}

/* A header for a regular member of size bytes. */
static int put_header(rg_tar_out *t, const char *name, int64_t size, rg_err *e)
{
    struct archive_entry *en = archive_entry_new();
    int r;
    if (!en)
        return rg_err_set(e, NULL, "source", 0, "out of memory");
    archive_entry_set_pathname(en, name);
    archive_entry_set_filetype(en, AE_IFREG);
    archive_entry_set_perm(en, 0644);
    archive_entry_set_size(en, size);
    archive_entry_set_mtime(en, 0, 0);
    r = archive_write_header(t->a, en);
    archive_entry_free(en);
    return r == ARCHIVE_OK ? 0 : write_failed(t, e, name);
}

static int put_data(rg_tar_out *t, const char *name, const char *p, size_t n,
                    rg_err *e)
{
    while (n > 0) {
        la_ssize_t w = archive_write_data(t->a, p, n);
        if (w <= 0)
            return write_failed(t, e, name);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int rg_tar_add_file(rg_tar_out *t, const char *name, const char *src,
                    rg_err *e)
{
    char buf[BLOCK];
    struct stat st;
    int64_t left;
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys(e, "cannot open", src);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rg_err_set(e, NULL, "source", 0, "%s is not a regular file", src);
    }
    if (put_header(t, name, (int64_t)st.st_size, e) != 0) {
        close(fd);
        return -1;
    }
    for (left = (int64_t)st.st_size; left > 0;) {
        ssize_t n = read(fd, buf, left < BLOCK ? (size_t)left : BLOCK);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            close(fd);
            return rg_err_set(e, NULL, "source", 0, "%s shrank while being archived", src);
        }
        if (put_data(t, name, buf, (size_t)n, e) != 0) {
            close(fd);
            return -1;
        }
        left -= n;
    }
    close(fd);
    return 0;
}

int rg_tar_add_bytes(rg_tar_out *t, const char *name, const void *data,
                     size_t len, rg_err *e)
{
    if (put_header(t, name, (int64_t)len, e) != 0)
        return -1;
    return put_data(t, name, data, len, e);
}

int rg_tar_finish(rg_tar_out *t, rg_err *e)
{
    int r = archive_write_close(t->a);
    if (r != ARCHIVE_OK) {
        write_failed(t, e, "the end");
        rg_tar_abort(t);
        return -1;
    }
    if (t->partial && rename(t->partial, t->path) != 0) {
        sys(e, "cannot rename to", t->path);
        rg_tar_abort(t);
        return -1;
    }
    archive_write_free(t->a);
    free(t->path);
    free(t->partial);
    free(t);
    return 0;
}

void rg_tar_abort(rg_tar_out *t)
{
    if (!t)
        return;
    if (t->a) {
        archive_write_fail(t->a);          /* no end-of-archive written */
        archive_write_free(t->a);
    }
    if (t->partial)
        unlink(t->partial);
    free(t->path);
    free(t->partial);
    free(t);
}
