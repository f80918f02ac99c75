/*
 * header.h -- values of single response headers the client acts on:
 * Retry-After (seconds or an HTTP date), OCI-Chunk-Min-Length, and the
 * total of a 416's "Content-Range: bytes *\/SIZE".
 *
 * Owns: parsing only; no Lua, no allocation, no I/O.  Strict about numbers
 * (digits only, no sign, no overflow); lenient about surrounding blanks.
 * Each parser is fuzzed (fuzz/fuzz_header.c).
 */
#ifndef RG_HEADER_H
#define RG_HEADER_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/*
 * Retry-After: delay-seconds or an HTTP date (RFC 9110), relative to now
 * (epoch seconds).  Sets *secs (>= 0; a date in the past gives 0).
 * Returns 0, or -1 when the value is neither.
 */
int rg_retry_after_parse(const char *v, double now, double *secs);

/* OCI-Chunk-Min-Length: a byte count.  0, or -1 when not a number. */
int rg_chunk_min_parse(const char *v, int64_t *out);

/*
 * The total size of a Content-Range, "bytes S-E/T" or "bytes *\/T".
 * Returns 0 with *total, or -1 when there is no number after '/'.
 */
int rg_content_range_total(const char *v, int64_t *total);

#pragma GCC visibility pop

#endif
