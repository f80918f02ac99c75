/*
 * fsops.h -- file-system operations the Lua layer needs and plain Lua
 * cannot do without starting a process.
 *
 * Owns: `mkdir -p`, and a private file written whole, as system calls.  The Lua layer runs inside nginx's
 * thread pool too, where a child process's exit status is lost (nginx's
 * SIGCHLD handler reaps it first), so nothing here forks.  No Lua.
 */
#ifndef RG_FSOPS_H
#define RG_FSOPS_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/* Create path and its missing parents (mode 0777 less the umask).  An
 * existing directory is success.  0, or -1 with "<path>: <reason>" (the
 * component that failed) in err. */
int rg_mkdir_p(const char *path, char *err, size_t errlen);

/* Write data to path with mode 0600 (a secret: credentials), through
 * path.tmp and a rename; its directory is made (0700) when missing.  0,
 * or -1 with "<path>: <reason>" in err (path.tmp is removed). */
int rg_write_private(const char *path, const char *data, size_t len,
                     char *err, size_t errlen);

#pragma GCC visibility pop

#endif
