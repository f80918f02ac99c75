/*
 * spec/support/asan_unset_preload.c -- for `make test-asan`
 * (mk/reliability.mk).  Preloaded after the ASan runtime.  It wraps
 * execve() so that LD_PRELOAD is passed on only to shells and Lua
 * interpreters (which may load the instrumented module again) and dropped
 * for every other program the specs start: curl, python3, docker-registry,
 * skopeo, nginx run uninstrumented (curl hangs with the ASan runtime
 * preloaded).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*execve_fn)(const char *, char *const[], char *const[]);

/* May this program keep the preload?  Shells, env, and Lua interpreters
 * (lua5.x, luajit, a script named lua-*). */
static int keeps_preload(const char *path)
{
    static const char *keep[] = { "sh", "dash", "bash", "env", "busted", NULL };
    const char *base = strrchr(path, '/');
    int i;
    base = base ? base + 1 : path;
    if (strncmp(base, "lua", 3) == 0)
        return 1;
    for (i = 0; keep[i]; i++)
        if (strcmp(base, keep[i]) == 0)
            return 1;
    return 0;
}

int execve(const char *path, char *const argv[], char *const envp[])
{
    execve_fn real = (execve_fn)dlsym(RTLD_NEXT, "execve");
    size_t n = 0, i, j = 0;
    char **env;
    int rc;
    if (!real)
        return -1;
    if (!path || keeps_preload(path) || !envp)
        return real(path, argv, envp);
    while (envp[n])
        n++;
    env = malloc((n + 1) * sizeof *env);
    if (!env)
        return real(path, argv, envp);
    for (i = 0; i < n; i++)
        if (strncmp(envp[i], "LD_PRELOAD=", 11) != 0)
            env[j++] = envp[i];
    env[j] = NULL;
    rc = real(path, argv, env);
    free(env);
    return rc;
}
