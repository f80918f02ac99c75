/*
 * tlog.c -- Rekor SETs, Merkle inclusion proofs and checkpoints (see
 * tlog.h).
 */
#include "tlog.h"
#include "digest.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

static int bad(rg_err *e, const char *why)
{
    return rg_err_set(e, NULL, "invalid_argument", 0, "%s", why);
}

int rg_tlog_set_check(const rg_logkey *log, const char *body_b64, int64_t integrated_time,
                      int64_t log_index, const void *set, size_t setl, rg_err *e)
{
    char hex[65], *canon;
    const char *why = NULL;
    json_t *j;
    int v;
    rg_hex(log->id, 32, hex);
    /* canonical JSON (RFC 8785): sorted keys, no spaces; base64, hex and
     * integers need no escapes */
    j = json_pack("{s:s, s:I, s:s, s:I}", "body", body_b64, "integratedTime",
                  (json_int_t)integrated_time, "logID", hex, "logIndex", (json_int_t)log_index);
    canon = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!canon)
        return bad(e, "the SET cannot be checked: out of memory");
    v = rg_sig_verify(log->key, canon, strlen(canon), set, setl, &why, e);
    free(canon);
    if (v < 0)
        return -1;
    if (v == 0)
        return bad(e, "its SET (signedEntryTimestamp) does not verify with the Rekor log key");
    return 0;
}

static void node(const unsigned char *l, const unsigned char *r, unsigned char *out)
{
    unsigned char buf[65];
    buf[0] = 1;
    memcpy(buf + 1, l, 32);
    memcpy(buf + 33, r, 32);
    EVP_Digest(buf, sizeof buf, out, NULL, EVP_sha256(), NULL);
}

int rg_merkle_check(const void *body, size_t bl, uint64_t index, uint64_t size,
                    const unsigned char (*hashes)[32], size_t n, const unsigned char root[32],
                    rg_err *e)
{
    unsigned char r[32], *lb;
    uint64_t fn = index, sn;
    size_t i;
    if (size == 0 || index >= size)
        return bad(e, "its inclusion proof's index is not inside its tree");
    if (!(lb = malloc(bl + 1)))
        return bad(e, "out of memory");
    lb[0] = 0;
    memcpy(lb + 1, body, bl);
    EVP_Digest(lb, bl + 1, r, NULL, EVP_sha256(), NULL);
    free(lb);
    sn = size - 1;
    /* RFC 9162 section 2.1.3.2 */
    for (i = 0; i < n; i++) {
        if (sn == 0)
            return bad(e, "its inclusion proof has more hashes than its tree needs");
        if ((fn & 1) || fn == sn) {
            node(hashes[i], r, r);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            node(r, hashes[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return bad(e, "its inclusion proof has fewer hashes than its tree needs");
    if (memcmp(r, root, 32) != 0)
        return bad(e, "its inclusion proof does not lead to its root hash");
    return 0;
}

int rg_checkpoint_check(const rg_logkey *log, const char *note, size_t nl, uint64_t size,
                        const unsigned char root[32], rg_err *e)
{
    static const char dash[] = "\xe2\x80\x94 ";
    const char *sep, *line, *end, *sp, *why = NULL;
    char *text, *b64 = NULL, want[128], roothex[64];
    unsigned char *sig = NULL, kh[32];
    size_t bl, sl = 0;
    int v, found = 0, r = -1, rl;
    if (nl > 65536 || memchr(note, 0, nl))
        return bad(e, "its checkpoint is not a signed note");
    /* the signed text ends with the line before the blank line */
    if (!(text = malloc(nl + 1)))
        return bad(e, "out of memory");
    memcpy(text, note, nl);
    text[nl] = 0;
    if (!(sep = strstr(text, "\n\n"))) {
        bad(e, "its checkpoint is not a signed note");
        goto done;
    }
    bl = (size_t)(sep - text) + 1;
    /* origin line, then size and root */
    if (!EVP_EncodeBlock((unsigned char *)roothex, root, 32)) {
        bad(e, "out of memory");
        goto done;
    }
    line = memchr(text, '\n', bl);
    rl = snprintf(want, sizeof want, "\n%" PRIu64 "\n%s\n", size, roothex);
    if (!line || rl < 0 || (size_t)rl >= sizeof want ||
        strncmp(line, want, (size_t)rl) != 0) {
        bad(e, "its checkpoint names another tree size or root hash than its inclusion proof");
        goto done;
    }
    EVP_Digest(log->der, log->der_len, kh, NULL, EVP_sha256(), NULL);
    for (line = sep + 2; *line; line = end + 1) {
        size_t ll;
        if (!(end = strchr(line, '\n'))) {
            bad(e, "its checkpoint's signature lines do not end with a newline");
            goto done;
        }
        if (strncmp(line, dash, sizeof dash - 1) != 0) {
            bad(e, "its checkpoint has a line that is not a signature");
            goto done;
        }
        sp = memchr(line + sizeof dash - 1, ' ', (size_t)(end - (line + sizeof dash - 1)));
        if (!sp) {
            bad(e, "its checkpoint has a malformed signature line");
            goto done;
        }
        ll = (size_t)(end - sp - 1);
        free(b64);
        free(sig);
        sig = NULL;
        if (!(b64 = malloc(ll + 1))) {
            bad(e, "out of memory");
            goto done;
        }
        memcpy(b64, sp + 1, ll);
        b64[ll] = 0;
        if (!(sig = rg_b64_strict(b64, ll, &sl, "its checkpoint signature", e)))
            goto done;
        if (sl <= 4 || memcmp(sig, kh, 4) != 0)
            continue;
        v = rg_sig_verify(log->key, text, bl, sig + 4, sl - 4, &why, e);
        if (v < 0)
            goto done;
        if (v == 1)
            found = 1;
    }
    if (!found) {
        bad(e, "its checkpoint is not signed by the Rekor log key");
        goto done;
    }
    r = 0;
done:
    free(text);
    free(b64);
    free(sig);
    return r;
}
