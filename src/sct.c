/*
 * sct.c -- SCTs of Fulcio certificates (see sct.h).
 */
#include "sct.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/ct.h>
#include <openssl/err.h>
#include <openssl/evp.h>

/* A CTLOG_STORE holding the CT log keys of t whose ids are in ids (the
 * logs the certificate's SCTs name).  libcrypto 3.0 has CTLOG_new and
 * CTLOG_new_from_base64, but no public call that adds a CTLOG to a
 * CTLOG_STORE: a store is filled only by CTLOG_STORE_load_file.  So the
 * store is read from a pipe through /dev/fd/N: nothing is written to disk,
 * and the text (a few hundred bytes: only the named logs) fits the pipe's
 * buffer, so the write never blocks. */
static CTLOG_STORE *store_of(const rg_trustroot *t, STACK_OF(SCT) *scts)
{
    char path[64], *text = NULL;
    size_t len = 0;
    CTLOG_STORE *st = NULL;
    FILE *f = open_memstream(&text, &len);
    int fds[2] = {-1, -1}, i, k, n = 0, ok = f != NULL;
    char named[RG_TRUSTROOT_ITEMS] = {0};
    for (i = 0; ok && i < t->nctlogs; i++) {
        for (k = 0; k < sk_SCT_num(scts); k++) {
            unsigned char *id = NULL;
            if (SCT_get0_log_id(sk_SCT_value(scts, k), &id) == 32 &&
                memcmp(id, t->ctlogs[i].id, 32) == 0)
                named[i] = 1;
        }
        if (named[i])
            fprintf(f, "%sl%d", n++ ? "," : "enabled_logs=", i);
    }
    if (ok && n == 0)
        ok = 0;
    if (ok)
        fputs("\n", f);
    for (i = 0; ok && i < t->nctlogs; i++) {
        unsigned char *b;
        if (!named[i])
            continue;
        if (!(b = malloc(4 * ((t->ctlogs[i].der_len + 2) / 3) + 1))) {
            ok = 0;
            break;
        }
        EVP_EncodeBlock(b, t->ctlogs[i].der, (int)t->ctlogs[i].der_len);
        fprintf(f, "[l%d]\ndescription=l%d\nkey=%s\n", i, i, b);
        free(b);
    }
    if (f && fclose(f) != 0)
        ok = 0;
    if (ok && (len > 32768 || pipe(fds) != 0))
        ok = 0;
    if (ok && write(fds[1], text, len) != (ssize_t)len)
        ok = 0;
    if (fds[1] >= 0)
        close(fds[1]);
    if (ok && snprintf(path, sizeof path, "/dev/fd/%d", fds[0]) < (int)sizeof path &&
        (st = CTLOG_STORE_new()) && CTLOG_STORE_load_file(st, path) != 1) {
        CTLOG_STORE_free(st);
        st = NULL;
    }
    if (fds[0] >= 0)
        close(fds[0]);
    free(text);
    ERR_clear_error();
    return st;
}

/* The CT log key of this log id whose window holds ms. */
static int log_valid_at(const rg_trustroot *t, const unsigned char *id, size_t idl, uint64_t ms)
{
    int i;
    for (i = 0; i < t->nctlogs; i++)
        if (idl == 32 && memcmp(t->ctlogs[i].id, id, 32) == 0 &&
            rg_window_has(&t->ctlogs[i].valid, (int64_t)(ms / 1000)))
            return 1;
    return 0;
}

int rg_sct_check(const rg_trustroot *t, X509 *leaf, X509 *issuer, rg_err *e)
{
    STACK_OF(SCT) *scts = X509_get_ext_d2i(leaf, NID_ct_precert_scts, NULL, NULL);
    CTLOG_STORE *st = NULL;
    CT_POLICY_EVAL_CTX *cx = NULL;
    const char *why = "the certificate carries no SCT";
    int i, r = -1;
    if (!scts || sk_SCT_num(scts) == 0)
        goto done;
    why = "no SCT of the certificate is by a CT log of the trusted root";
    if (!(st = store_of(t, scts)))
        goto done;
    why = "out of memory";
    if (!(cx = CT_POLICY_EVAL_CTX_new()) ||
        !CT_POLICY_EVAL_CTX_set1_cert(cx, leaf) || !CT_POLICY_EVAL_CTX_set1_issuer(cx, issuer))
        goto done;
    CT_POLICY_EVAL_CTX_set_shared_CTLOG_STORE(cx, st);
    why = "no SCT of the certificate verifies with a CT log key of the trusted root";
    for (i = 0; i < sk_SCT_num(scts); i++) {
        SCT *s = sk_SCT_value(scts, i);
        unsigned char *id = NULL;
        size_t idl = SCT_get0_log_id(s, &id);
        uint64_t ms = SCT_get_timestamp(s);
        if (!log_valid_at(t, id, idl, ms)) {
            why = "the SCT's CT log is none of the trusted root's, or its key is not valid (validFor) at the SCT's time";
            continue;
        }
        CT_POLICY_EVAL_CTX_set_time(cx, ms);
        if (SCT_validate(s, cx) == 1 && SCT_get_validation_status(s) == SCT_VALIDATION_STATUS_VALID) {
            r = 0;
            break;
        }
        why = "the certificate's SCT does not verify with its CT log key";
    }
done:
    ERR_clear_error();
    CT_POLICY_EVAL_CTX_free(cx);
    CTLOG_STORE_free(st);
    SCT_LIST_free(scts);
    if (r)
        rg_err_set(e, NULL, "invalid_argument", 0, "%s", why);
    return r;
}
