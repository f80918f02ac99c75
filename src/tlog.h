/*
 * tlog.h -- Rekor transparency-log proofs, checked offline with a log key:
 * the SignedEntryTimestamp (an ECDSA signature over the canonical JSON of
 * {body, integratedTime, logID, logIndex}), the RFC 6962 / RFC 9162
 * Merkle audit path from the leaf hash of an entry's body to a root hash,
 * and the signed checkpoint (a signed note: origin, tree size, root hash,
 * then "\u2014 NAME base64(key hash[4] + signature)").
 *
 * Owns: these three checks, each 0 or -1 with e set (invalid_argument;
 * the message is the reason).  No Lua, no I/O.
 */
#ifndef RG_TLOG_H
#define RG_TLOG_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "trustroot.h"

#pragma GCC visibility push(hidden)

#define RG_MERKLE_PATH_MAX 64

/* The SET over the canonical JSON of the entry (body as base64 text). */
int rg_tlog_set_check(const rg_logkey *log, const char *body_b64, int64_t integrated_time,
                      int64_t log_index, const void *set, size_t setl, rg_err *e);

/* The audit path hashes (n of 32 bytes each) from SHA-256(0x00 || body)
 * at index in a tree of size to root. */
int rg_merkle_check(const void *body, size_t bl, uint64_t index, uint64_t size,
                    const unsigned char (*hashes)[32], size_t n, const unsigned char root[32],
                    rg_err *e);

/* The checkpoint note signed by log, naming size and root. */
int rg_checkpoint_check(const rg_logkey *log, const char *note, size_t nl, uint64_t size,
                        const unsigned char root[32], rg_err *e);

#pragma GCC visibility pop

#endif
