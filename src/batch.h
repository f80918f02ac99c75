/*
 * batch.h -- several blobs moved at once on the client's multi handle, in
 * the caller's thread: downloads to files (fetch), uploads from files
 * (upload), and registry-to-registry copies (copy: the download's pull
 * buffer is the upload's body, no file and no copy in between; the last
 * byte is sent only after the source's digest verified).  The same loop
 * also checks many manifests at once (head: a HEAD per reference, what a
 * sync asks of both sides before it copies anything).
 *
 * Owns: the items and their transfers, the .part files of downloads
 * (renamed into place only when verified, removed otherwise), the one
 * driver loop shared by the three kinds, and what a failure leads to (the
 * policy of the single-blob calls): a broken download resumes with Range
 * from the bytes already written or buffered and hashed (request.h's
 * download policy, as the blob reader); a blob that does not verify is
 * fetched again from nothing; a failed upload is checked (blob HEAD,
 * upload status) and finished from the registry's offset or in a new
 * session (upload.h); a copy resumes its source into the same destination
 * upload, and starts again (new session) when the destination failed.
 * Waits between attempts (backoff, Retry-After) are scheduled, not slept:
 * the other items keep moving.  No Lua: progress is reported
 * through a C callback, called from the loop (never from a libcurl
 * callback); it may stop the batch.
 */
#ifndef RG_BATCH_H
#define RG_BATCH_H

#include <stdio.h>
#include <stdint.h>

#include "request.h"
#include "upload.h"

#pragma GCC visibility push(hidden)

typedef enum rg_batch_kind {
    RG_B_FETCH = 1, RG_B_UPLOAD, RG_B_COPY, RG_B_HEAD
} rg_batch_kind;

typedef enum rg_item_state {
    RG_I_PENDING = 0, RG_I_RUNNING, RG_I_WAITING, RG_I_OK, RG_I_FAILED
} rg_item_state;

/* What a waiting item does when its time comes. */
typedef enum rg_item_next {
    RG_N_NONE = 0,
    RG_N_RESUME,             /* the download goes on from the bytes kept */
    RG_N_RESTART             /* the item starts again from nothing */
} rg_item_next;

typedef struct rg_bitem {
    /* what to move (filled by the caller, then rg_batch_check) */
    char name[RG_NAME_MAX + 1];     /* fetch, copy: the source repository */
    char digest[RG_DIGEST_MAX + 1];
    int64_t size;            /* expected bytes, -1 unknown (copy: required) */
    char ref[RG_DIGEST_MAX + 1];    /* head: the tag or digest to look up */
    rg_client *hc;           /* head: the item's client (NULL: the batch's src);
                                at most RG_BATCH_CLIENTS of them in one batch */
    char *path;              /* fetch: destination; upload: source (malloc'd) */
    int fd;                  /* fetch: the caller's open file instead (-1) */
    rg_upload *upload;       /* upload, copy: the open session to finish */
    /* the outcome */
    rg_item_state state;
    int64_t got;             /* bytes moved */
    rg_err err;              /* when failed */
    /* head: what the registry said (malloc'd strings, NULL when absent) */
    char found[RG_DIGEST_MAX + 1];  /* the manifest's digest */
    char *media_type;
    char *rl_limit, *rl_remaining, *rl_source;   /* RateLimit-*, Docker-RateLimit-Source */
    /* private */
    int auth_retried;        /* a 401 was answered with a new token */
    int attempts;            /* resumes and restarts after failures */
    rg_item_next next;       /* RG_I_WAITING: what comes at `wake` */
    double wake;
    int64_t pos_base;        /* blob offset of the download's current answer */
    int check_range;         /* a resumed answer's range is still to check */
    int started;             /* fetch into the caller's file: fd_start is set */
    int own_fd;
    int64_t fd_start;        /* the caller's file: where writing began */
    FILE *fp;                /* upload: the source file */
    char *tmp;               /* fetch: path.part */
    rg_req r;                /* the transfer (copy: the download) */
    rg_req put;              /* copy: the upload */
    rg_hasher h;
    rg_hashq *q;             /* fetch: hashing on a worker thread */
} rg_bitem;

/* Progress: done and total (-1 unknown) bytes of one item, phase
 * "download", "upload", "copy" or "done".  Non-zero stops the batch. */
typedef int (*rg_progress_fn)(void *ud, const rg_bitem *it, int64_t done,
                              int64_t total, const char *phase);

#define RG_BATCH_CLIENTS 8

typedef struct rg_batch {
    rg_batch_kind kind;
    rg_client *src;          /* the client (copy: the source) */
    rg_client *dst;          /* copy: the destination */
    int n;
    rg_bitem *items;
    int jobs;                /* at once, 1..64 */
    int64_t hash_lag;        /* fetch into a file: bytes its hashing may
                                trail the writes (0: RG_HASHQ_LAG) */
    rg_progress_fn progress; /* optional */
    void *ud;
} rg_batch;

/* n zero-filled items (fd -1, size -1), 4 jobs.  0 / -1 (out of memory). */
int rg_batch_init(rg_batch *b, rg_batch_kind kind, rg_client *src,
                  rg_client *dst, int n);
/* Validate item i as filled by the caller (name, digest, the upload's
 * owner; an upload's size from its file when not given; for head items,
 * the reference, and no more than RG_BATCH_CLIENTS clients in all).  0, or
 * -1 with e set. */
int rg_batch_check(rg_batch *b, int i, rg_err *e);
/* Move everything.  0, or -1 when the progress callback stopped it (every
 * unfinished item is then failed and its transfer ended). */
int rg_batch_run(rg_batch *b);
/* Index of the first failed item, or -1. */
int rg_batch_first_failure(const rg_batch *b);
void rg_batch_free(rg_batch *b);

#pragma GCC visibility pop

#endif
