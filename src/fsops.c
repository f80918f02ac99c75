/*
 * fsops.c -- `mkdir -p` and private files without a shell.  See fsops.h.
 * Nothing here changes the process's umask (other threads may be creating
 * files: nginx's thread pool).
 */
#include "fsops.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

/* mkdir(p, mode), where an existing directory counts as made. */
static int mkdir_one(const char *p, mode_t mode)
{
    struct stat st;
    if (mkdir(p, mode) == 0)
        return 0;
    if (errno == EEXIST && stat(p, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        errno = ENOTDIR;
    }
    return -1;
}

/* Each parent of path in turn (a run of slashes is one separator), then
 * path, with mode (less the umask). */
static int mkdir_all(const char *path, mode_t mode, char *err, size_t errlen)
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
    for (i = 1; i <= n; i++) {
        if (i < n && (p[i] != '/' || p[i - 1] == '/'))
            continue;
        p[i] = '\0';
        rc = mkdir_one(p, mode);
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

int rg_mkdir_p(const char *path, char *err, size_t errlen)
{
    return mkdir_all(path, 0777, err, errlen);
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
        *slash = '\0';
        if (mkdir_all(dir, 0700, err, errlen) != 0) {
            free(tmp);
            free(dir);
            return -1;
        }
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
