/*
 * buf.c -- growable byte buffer with a hard maximum (see buf.h).
 */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void rg_buf_init(rg_buf *b, size_t max)
{
    b->data = NULL;
    b->off = b->len = b->cap = 0;
    b->max = max;
}

int rg_buf_add(rg_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > b->max || rg_buf_size(b) > b->max - n)
        return -1;
    if (b->cap - b->len < n) {
        /* First try to make room by moving unread bytes to the front. */
        if (b->off > 0) {
            memmove(b->data, b->data + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->cap - b->len < n) {
            size_t want = b->len + n;
            size_t ncap = b->cap ? b->cap : 1024;
            char *nd;
            while (ncap < want)
                ncap = ncap > ((size_t)-1) / 2 ? want : ncap * 2;
            nd = realloc(b->data, ncap);
            if (!nd)
                return -1;
            b->data = nd;
            b->cap = ncap;
        }
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void rg_buf_consume(rg_buf *b, size_t n)
{
    if (n >= rg_buf_size(b)) {
        b->off = b->len = 0;
        return;
    }
    b->off += n;
}

void rg_buf_drop_tail(rg_buf *b, size_t n)
{
    b->len -= n < rg_buf_size(b) ? n : rg_buf_size(b);
}

void rg_buf_reset(rg_buf *b)
{
    b->off = b->len = 0;
}

void rg_buf_free(rg_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
