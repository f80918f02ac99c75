/*
 * fsops.c -- `mkdir -p` without a shell.  See fsops.h.
 */
#include "fsops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

/* mkdir(p), where an existing directory counts as made. */
static int mkdir_one(const char *p)
{
    struct stat st;
    if (mkdir(p, 0777) == 0)
        return 0;
    if (errno == EEXIST && stat(p, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        errno = ENOTDIR;
    }
    return -1;
}

int rg_mkdir_p(const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path), i;
    char *p;
    int rc = 0, e = 0;
    if (n == 0) {
        snprintf(err, errlen, "empty path");
        return -1;
    }
    if (!(p = malloc(n + 1))) {
        snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
        return -1;
    }
    memcpy(p, path, n + 1);
    /* each parent in turn (a run of slashes is one separator), then path */
    for (i = 1; i <= n; i++) {
        if (i < n && (p[i] != '/' || p[i - 1] == '/'))
            continue;
        p[i] = '\0';
        rc = mkdir_one(p);
        if (rc != 0) {
            e = errno;
            break;
        }
        if (i < n)
            p[i] = '/';
    }
    if (rc != 0)
        snprintf(err, errlen, "%s: %s", p, strerror(e));
    free(p);
    return rc;
}
