/*
 * spool.h -- temporary directories under TMPDIR for archives on their way
 * in or out (a tar unpacked, an image staged before it is packed).
 *
 * Owns: making one (mkdtemp, mode 0700) and removing one whole.  Removal
 * never follows a symbolic link (it unlinks the link) and stays on the
 * tree it was given.  No Lua.
 */
#ifndef RG_SPOOL_H
#define RG_SPOOL_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/* A new directory $TMPDIR/<prefix>XXXXXX (TMPDIR unset: /tmp) in out.
 * 0, or -1 with the reason in err. */
int rg_spool_make(const char *prefix, char *out, size_t outlen,
                  char *err, size_t errlen);

/* Remove dir and everything under it.  A missing dir is success.  0, or
 * -1 with the reason in err. */
int rg_spool_remove(const char *dir, char *err, size_t errlen);

#pragma GCC visibility pop

#endif
