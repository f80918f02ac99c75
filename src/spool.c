/*
 * spool.c -- temporary directories under TMPDIR: make one, remove one
 * whole (nftw, depth first, without following links).  See spool.h.
 */
#define _XOPEN_SOURCE 700
#include "spool.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rg_spool_make(const char *prefix, char *out, size_t outlen,
                  char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    int n;
    if (!tmp || !*tmp)
        tmp = "/tmp";
    n = snprintf(out, outlen, "%s/%sXXXXXX", tmp, prefix ? prefix : "");
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "TMPDIR is too long");
        return -1;
    }
    if (!mkdtemp(out)) {
        snprintf(err, errlen, "%s: %s", out, strerror(errno));
        return -1;
    }
    return 0;
}

/* nftw's callback: one entry, children before their directory. */
static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        return rmdir(path);
    return unlink(path);
}

int rg_spool_remove(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(dir, &st) != 0 && errno == ENOENT)
        return 0;
    if (nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}
