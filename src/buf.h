/*
 * buf.h -- a growable byte buffer with a hard maximum size.
 *
 * Owns: memory for response headers, small bodies (manifests, error
 * bodies, tag lists) and the pull buffer of a streaming blob reader.  The
 * maximum is fixed at init, so a hostile registry cannot make the process
 * grow without bound: an append that would pass it fails and changes
 * nothing.  Bytes are consumed from the front (off) and the storage is
 * compacted lazily.  No Lua; safe in libcurl callbacks.
 */
#ifndef RG_BUF_H
#define RG_BUF_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

typedef struct rg_buf {
    char *data;
    size_t off;     /* first unread byte */
    size_t len;     /* end of data (data[off..len) is unread) */
    size_t cap;     /* allocated */
    size_t max;     /* hard limit on unread bytes */
} rg_buf;

void rg_buf_init(rg_buf *b, size_t max);
/* Append n bytes.  0, or -1 when the unread size would pass max or on
 * allocation failure (b unchanged). */
int rg_buf_add(rg_buf *b, const void *p, size_t n);
/* Unread bytes. */
static inline size_t rg_buf_size(const rg_buf *b) { return b->len - b->off; }
static inline const char *rg_buf_ptr(const rg_buf *b) { return b->data ? b->data + b->off : ""; }
/* Drop n unread bytes from the front. */
void rg_buf_consume(rg_buf *b, size_t n);
/* Drop the last n unread bytes (at most all of them). */
void rg_buf_drop_tail(rg_buf *b, size_t n);
/* Forget the contents, keep the storage. */
void rg_buf_reset(rg_buf *b);
/* Free the storage; the buffer is reusable (empty) afterwards. */
void rg_buf_free(rg_buf *b);

#pragma GCC visibility pop

#endif
