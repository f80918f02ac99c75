/*
 * body.h -- the body callbacks of an exchange (body.c), for http.c's set-up.
 * Internal to the transfer layer.
 */
#ifndef RG_BODY_H
#define RG_BODY_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/* CURLOPT_WRITEFUNCTION and CURLOPT_READFUNCTION; ud is the rg_xfer. */
size_t rg_body_write(char *p, size_t size, size_t n, void *ud);
size_t rg_body_read(char *buf, size_t size, size_t n, void *ud);

#pragma GCC visibility pop

#endif
