/*
 * range.h -- byte ranges: the Range request header for blob reads, the
 * Content-Range of a 206 reply, and the Range header a registry returns
 * for an upload session.
 *
 * Owns: parsing and formatting only; no Lua, no allocation.  Parsers are
 * lenient where registries differ (see field-quirks: `0-N`, `bytes=0-N`,
 * `0-0`) and strict about numbers: no sign, no overflow, end >= start.
 */
#ifndef RG_RANGE_H
#define RG_RANGE_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/* Write "Range: bytes=<offset>-" (NUL-terminated) into out.  Returns the
 * length written, or -1 if out is too small or offset < 0. */
int rg_range_request(char *out, size_t outlen, int64_t offset);

/*
 * Content-Range of a 206: "bytes S-E/T", T a number or '*' (optional
 * whitespace around the value; unit compared case-insensitively).
 * Sets *start, *end (inclusive) and *total (-1 when "*").  Returns 0, or -1
 * when malformed, E < S, or T <= E.
 */
int rg_content_range_parse(const char *s, size_t len, int64_t *start,
                           int64_t *end, int64_t *total);

/*
 * Range reply of an upload (POST/PATCH/status): "S-E" or "bytes=S-E"
 * (optional whitespace).  Sets *start and *end (inclusive as sent).
 * Note "0-0" is ambiguous (0 or 1 byte): the caller decides.
 * Returns 0, or -1 when malformed or E < S.
 */
int rg_upload_range_parse(const char *s, size_t len, int64_t *start,
                          int64_t *end);

#pragma GCC visibility pop

#endif
