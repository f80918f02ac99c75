/*
 * fsops.c -- `mkdir -p` without a shell.  See fsops.h.
 */
#include "fsops.h"
#include <unistd.h>
#include <fcntl.h>

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

int rg_write_private(const char *path, const char *data, size_t len,
                     char *err, size_t errlen)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 5), *dir = malloc(n + 1), *slash;
    int fd = -1, e = 0;
    size_t off = 0;
    if (!tmp || !dir) {
        e = ENOMEM;
        goto done;
    }
    snprintf(tmp, n + 5, "%s.tmp", path);
    memcpy(dir, path, n + 1);
    if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
        mode_t old = umask(077);
        *slash = '\0';
        if (rg_mkdir_p(dir, err, errlen) != 0) {
            umask(old);
            free(tmp);
            free(dir);
            return -1;
        }
        umask(old);
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
        fchmod(fd, 0600) != 0) {
        e = errno;
        goto done;
    }
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            e = errno;
            goto done;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) {
        fd = -1;
        e = errno;
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        e = errno;
done:
    if (fd >= 0)
        close(fd);
    if (e) {
        if (tmp)
            unlink(tmp);
        snprintf(err, errlen, "%s: %s", path, strerror(e));
    }
    free(tmp);
    free(dir);
    return e ? -1 : 0;
}
