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

/* A CTLOG_STORE of t's CT log keys (libcrypto reads them from a file). */
static CTLOG_STORE *store_of(const rg_trustroot *t)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    CTLOG_STORE *st = NULL;
    FILE *f;
    int fd, i, ok = 1;
    if (!dir || !*dir)
        dir = "/tmp";
    if (snprintf(path, sizeof path, "%s/rg-ctlogs-XXXXXX", dir) >= (int)sizeof path)
        return NULL;
    if ((fd = mkstemp(path)) < 0)
        return NULL;
    if (!(f = fdopen(fd, "w"))) {
        close(fd);
        unlink(path);
        return NULL;
    }
    fputs("enabled_logs=", f);
    for (i = 0; i < t->nctlogs; i++)
        fprintf(f, "%sl%d", i ? "," : "", i);
    fputs("\n", f);
    for (i = 0; i < t->nctlogs && ok; i++) {
        int n = 4 * (((int)t->ctlogs[i].der_len + 2) / 3);
        unsigned char *b = malloc((size_t)n + 1);
        if (!b) {
            ok = 0;
            break;
        }
        EVP_EncodeBlock(b, t->ctlogs[i].der, (int)t->ctlogs[i].der_len);
        fprintf(f, "[l%d]\ndescription=l%d\nkey=%s\n", i, i, b);
        free(b);
    }
    if (fclose(f) != 0)
        ok = 0;
    if (ok && (st = CTLOG_STORE_new()) && CTLOG_STORE_load_file(st, path) != 1) {
        CTLOG_STORE_free(st);
        st = NULL;
    }
    unlink(path);
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
    why = "out of memory";
    if (!(st = store_of(t)) || !(cx = CT_POLICY_EVAL_CTX_new()) ||
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
