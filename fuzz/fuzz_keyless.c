/*
 * fuzz/fuzz_keyless.c -- libFuzzer target for what keyless verification
 * reads from the network (src/keyless.c and its pieces): certificates
 * (DER and PEM), their SAN / OIDC issuer and SCT list, the Rekor bundle
 * annotation and hashedrekord body, SETs, Merkle inclusion proofs, signed
 * checkpoints, and whole Sigstore bundles and legacy signatures.  The
 * first byte picks the path.
 * Cost: libcrypto's decoders (an X.509 certificate, a key) and each
 * signature verification take 0.1 to 0.5 ms under the sanitizers, so
 * they run on a slice of the inputs (one in 16, chosen by a hash of the
 * input: a run is reproducible); the other inputs stop before them:
 * certificates at the PEM layer, bundles and legacy signatures at the log
 * key lookup (a root whose Rekor key is another one), checkpoints at the
 * key hint.  The trusted root is the bundle-keyless vector's (public
 * Sigstore data).
 * A success carries what it promises; a failure sets an error, an
 * untrusted one with its reason; nothing leaks (libFuzzer's leak check).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../src/keyless.h"
#include "../src/sct.h"
#include "../src/sigdoc.h"
#include "../src/tlog.h"
#include "../src/x509chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ROOT[] =
    "{\"mediaType\":\"application/vnd.dev.sigstore.trustedroot+json;version=0.1\",\"tlogs\":[{\"baseUr"
    "l\":\"https://rekor.sigstore.dev\",\"hashAlgorithm\":\"SHA2_256\",\"publicKey\":{\"rawBytes\":\"MFkwEw"
    "YHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwrkBbmLSGtks4L3qX6yYY0zufBnhC8Ur/i"
    "y55GhWP/9A/bY2LhC30M9+RYtw==\",\"keyDetails\":\"PKIX_ECDSA_P256_SHA_256\",\"validFor\":{\"start\":\""
    "2021-01-12T11:53:27.000Z\"}},\"logId\":{\"keyId\":\"wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0="
    "\"}}],\"certificateAuthorities\":[{\"subject\":{\"organization\":\"sigstore.dev\",\"commonName\":\"sig"
    "store\"},\"uri\":\"https://fulcio.sigstore.dev\",\"certChain\":{\"certificates\":[{\"rawBytes\":\"MIIB"
    "+DCCAX6gAwIBAgITNVkDZoCiofPDsy7dfm6geLbuhzAKBggqhkjOPQQDAzAqMRUwEwYDVQQKEwxzaWdzdG9yZS5kZX"
    "YxETAPBgNVBAMTCHNpZ3N0b3JlMB4XDTIxMDMwNzAzMjAyOVoXDTMxMDIyMzAzMjAyOVowKjEVMBMGA1UEChMMc2ln"
    "c3RvcmUuZGV2MREwDwYDVQQDEwhzaWdzdG9yZTB2MBAGByqGSM49AgEGBSuBBAAiA2IABLSyA7Ii5k+pNO8ZEWY0yl"
    "emWDowOkNa3kL+GZE5Z5GWehL9/A9bRNA3RbrsZ5i0JcastaRL7Sp5fp/jD5dxqc/UdTVnlvS16an+2Yfswe/QuLol"
    "RUCrcOE2+2iA5+tzd6NmMGQwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwHQYDVR0OBBYEFMjFHQ"
    "BBmiQpMlEk6w2uSu1KBtPsMB8GA1UdIwQYMBaAFMjFHQBBmiQpMlEk6w2uSu1KBtPsMAoGCCqGSM49BAMDA2gAMGUC"
    "MH8liWJfMui6vXXBhjDgY4MwslmN/TJxVe/83WrFomwmNf056y1X48F9c4m3a3ozXAIxAKjRay5/aj/jsKKGIkmQat"
    "jI8uupHr/+CxFvaJWmpYqNkLDGRU+9orzh5hI2RrcuaQ==\"}]},\"validFor\":{\"start\":\"2021-03-07T03:20:2"
    "9.000Z\",\"end\":\"2022-12-31T23:59:59.999Z\"}},{\"subject\":{\"organization\":\"sigstore.dev\",\"comm"
    "onName\":\"sigstore\"},\"uri\":\"https://fulcio.sigstore.dev\",\"certChain\":{\"certificates\":[{\"raw"
    "Bytes\":\"MIICGjCCAaGgAwIBAgIUALnViVfnU0brJasmRkHrn/UnfaQwCgYIKoZIzj0EAwMwKjEVMBMGA1UEChMMc2"
    "lnc3RvcmUuZGV2MREwDwYDVQQDEwhzaWdzdG9yZTAeFw0yMjA0MTMyMDA2MTVaFw0zMTEwMDUxMzU2NThaMDcxFTAT"
    "BgNVBAoTDHNpZ3N0b3JlLmRldjEeMBwGA1UEAxMVc2lnc3RvcmUtaW50ZXJtZWRpYXRlMHYwEAYHKoZIzj0CAQYFK4"
    "EEACIDYgAE8RVS/ysH+NOvuDZyPIZtilgUF9NlarYpAd9HP1vBBH1U5CV77LSS7s0ZiH4nE7Hv7ptS6LvvR/STk798"
    "LVgMzLlJ4HeIfF3tHSaexLcYpSASr1kS0N/RgBJz/9jWCiXno3sweTAOBgNVHQ8BAf8EBAMCAQYwEwYDVR0lBAwwCg"
    "YIKwYBBQUHAwMwEgYDVR0TAQH/BAgwBgEB/wIBADAdBgNVHQ4EFgQU39Ppz1YkEZb5qNjpKFWixi4YZD8wHwYDVR0j"
    "BBgwFoAUWMAeX5FFpWapesyQoZMi0CrFxfowCgYIKoZIzj0EAwMDZwAwZAIwPCsQK4DYiZYDPIaDi5HFKnfxXx6ASS"
    "VmERfsynYBiX2X6SJRnZU84/9DZdnFvvxmAjBOt6QpBlc4J/0DxvkTCqpclvziL6BCCPnjdlIB3Pu3BxsPmygUY7Ii"
    "2zbdCdliiow=\"},{\"rawBytes\":\"MIIB9zCCAXygAwIBAgIUALZNAPFdxHPwjeDloDwyYChAO/4wCgYIKoZIzj0EAw"
    "MwKjEVMBMGA1UEChMMc2lnc3RvcmUuZGV2MREwDwYDVQQDEwhzaWdzdG9yZTAeFw0yMTEwMDcxMzU2NTlaFw0zMTEw"
    "MDUxMzU2NThaMCoxFTATBgNVBAoTDHNpZ3N0b3JlLmRldjERMA8GA1UEAxMIc2lnc3RvcmUwdjAQBgcqhkjOPQIBBg"
    "UrgQQAIgNiAAT7XeFT4rb3PQGwS4IajtLk3/OlnpgangaBclYpsYBr5i+4ynB07ceb3LP0OIOZdxexX69c5iVuyJRQ"
    "+Hz05yi+UF3uBWAlHpiS5sh0+H2GHE7SXrk1EC5m1Tr19L9gg92jYzBhMA4GA1UdDwEB/wQEAwIBBjAPBgNVHRMBAf"
    "8EBTADAQH/MB0GA1UdDgQWBBRYwB5fkUWlZql6zJChkyLQKsXF+jAfBgNVHSMEGDAWgBRYwB5fkUWlZql6zJChkyLQ"
    "KsXF+jAKBggqhkjOPQQDAwNpADBmAjEAj1nHeXZp+13NWBNa+EDsDP8G1WWg1tCMWP/WHPqpaVo0jhsweNFZgSs0eE"
    "7wYI4qAjEA2WB9ot98sIkoF3vZYdd3/VtWB5b9TNMea7Ix/stJ5TfcLLeABLE4BNJOsQ4vnBHJ\"}]},\"validFor\":"
    "{\"start\":\"2022-04-13T20:06:15.000Z\"}}],\"ctlogs\":[{\"baseUrl\":\"https://ctfe.sigstore.dev/tes"
    "t\",\"hashAlgorithm\":\"SHA2_256\",\"publicKey\":{\"rawBytes\":\"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgA"
    "EbfwR+RJudXscgRBRpKX1XFDy3PyudDxz/SfnRi1fT8ekpfBd2O1uoz7jr3Z8nKzxA69EUQ+eFCFI3zeubPWU7w==\""
    ",\"keyDetails\":\"PKIX_ECDSA_P256_SHA_256\",\"validFor\":{\"start\":\"2021-03-14T00:00:00.000Z\",\"en"
    "d\":\"2022-10-31T23:59:59.999Z\"}},\"logId\":{\"keyId\":\"CGCS8ChS/2hF0dFrJ4ScRWcYrBY9wzjSbea8IgY2"
    "b3I=\"}},{\"baseUrl\":\"https://ctfe.sigstore.dev/2022\",\"hashAlgorithm\":\"SHA2_256\",\"publicKey\""
    ":{\"rawBytes\":\"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEiPSlFi0CmFTfEjCUqF9HuCEcYXNKAaYalIJmBZ8y"
    "yezPjTqhxrKBpMnaocVtLJBI1eM3uXnQzQGAJdJ4gs9Fyw==\",\"keyDetails\":\"PKIX_ECDSA_P256_SHA_256\",\""
    "validFor\":{\"start\":\"2022-10-20T00:00:00.000Z\"}},\"logId\":{\"keyId\":\"3T0wasbHETJjGR4cmWc3AqJK"
    "XrjePK3/h4pygC8p7o4=\"}}]}";

/* The root, and (other != 0) the same root with another Rekor log ID
 * and key (the CT log's), so that no SET or checkpoint matches it. */
static rg_trustroot *root_once(int other)
{
    static rg_trustroot *t[2];
    if (!t[other]) {
        rg_err e;
        char *j = malloc(sizeof ROOT), *k;
        if (!j)
            abort();
        memcpy(j, ROOT, sizeof ROOT);
        if (other) {
            /* the tlog's key id and key become the 2022 CT log's */
            static const char rid[] = "wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0=";
            static const char cid[] = "3T0wasbHETJjGR4cmWc3AqJKXrjePK3/h4pygC8p7o4=";
            static const char rkey[] = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwrkBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==";
            static const char ckey[] = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEiPSlFi0CmFTfEjCUqF9HuCEcYXNKAaYalIJmBZ8yyezPjTqhxrKBpMnaocVtLJBI1eM3uXnQzQGAJdJ4gs9Fyw==";
            if (!(k = strstr(j, rid)))
                abort();
            memcpy(k, cid, sizeof cid - 1);
            if (!(k = strstr(j, rkey)))
                abort();
            memcpy(k, ckey, sizeof ckey - 1);
        }
        rg_err_init(&e);
        if (!(t[other] = rg_trustroot_parse(j, sizeof ROOT - 1, &e)))
            abort();
        free(j);
    }
    return t[other];
}

/* Whether this input is in the slice that runs libcrypto's decoders and
 * verifications (FNV-1a of the input, one in 16). */
static int slice(const uint8_t *d, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < n; i++)
        h = (h ^ d[i]) * 16777619u;
    return (h >> 7) % 16 == 0;
}

static void check_err(int r, rg_err *e)
{
    if (r != 0 && !e->type)
        abort();
    rg_err_free(e);
}

/* the next '\0'-separated part of p[*i..n) */
static const char *part(const char *p, size_t n, size_t *i, size_t *len)
{
    const char *s = p + *i, *z;
    if (*i > n)
        return NULL;
    z = memchr(s, 0, n - *i);
    *len = z ? (size_t)(z - s) : n - *i;
    *i += *len + 1;
    return s;
}

static void certificate(const rg_trustroot *t, const char *p, size_t n, int pem, int deep,
                        int full)
{
    rg_err e;
    X509 *x, *iss = NULL;
    char *san = NULL, *oidc = NULL;
    if (!full) {
        size_t dl = 0;
        unsigned char *der = rg_pem_cert_der(p, n, &dl);
        if (der && dl == 0)
            abort();
        free(der);
        return;
    }
    rg_err_init(&e);
    if (!(x = rg_x509_read(p, n, pem, "a certificate", &e))) {
        check_err(-1, &e);
        return;
    }
    if (rg_x509_identity(x, &san, &oidc, &e) == 0) {
        if (!san || !oidc)
            abort();
        free(san);
        free(oidc);
    } else if (san || oidc) {
        abort();
    }
    rg_err_free(&e);
    if (deep) {
        /* the SCT list and its check, against the root's intermediate */
        X509 *ca = sk_X509_value(t->cas[1].certs, 0);
        check_err(rg_sct_check(t, x, ca, &e), &e);
        if (rg_x509_verify(t, x, NULL, 1740770291, &iss, &e) == 0) {
            if (!iss)
                abort();
            X509_free(iss);
        }
        rg_err_free(&e);
    }
    X509_free(x);
}

static void rekor_bundle(const char *p, size_t n)
{
    rg_rekor_bundle rb;
    rg_hashedrekord h;
    rg_err e;
    rg_err_init(&e);
    if (rg_rekor_bundle_parse(p, n, &rb, &e) != 0) {
        if (rb.set || rb.body || rb.canon)
            abort();
        check_err(-1, &e);
        return;
    }
    if (!rb.set || !rb.body64 || !rb.log_id || !rb.canon)
        abort();
    if (rg_hashedrekord_parse(rb.body, rb.body_len, &h, &e) == 0) {
        if (!h.sig || !h.pub || !h.sha256)
            abort();
        rg_hashedrekord_free(&h);
    } else if (h.sig || !e.type) {
        abort();
    }
    rg_err_free(&e);
    rg_rekor_bundle_free(&rb);
}

/* index(8) size(8) root(32) n(1) hashes(32 n) body */
static void merkle(const uint8_t *p, size_t n)
{
    uint64_t index = 0, size = 0;
    size_t k, i;
    rg_err e;
    if (n < 49)
        return;
    for (i = 0; i < 8; i++) {
        index = index << 8 | p[i];
        size = size << 8 | p[8 + i];
    }
    /* small trees too, so the path's shape is reached */
    if (p[0] & 0x80) {
        index &= 0xffff;
        size &= 0xffff;
    }
    k = p[48] % (RG_MERKLE_PATH_MAX + 1);
    if (49 + 32 * k > n)
        k = (n - 49) / 32;
    rg_err_init(&e);
    check_err(rg_merkle_check(p + 49 + 32 * k, n - 49 - 32 * k, index, size,
                              (const unsigned char(*)[32])(p + 49), k, p + 16, &e), &e);
}

/* index(8) integratedTime(8) n(1) SET(n) body (base64 text) */
static void set_check(const rg_trustroot *t, const uint8_t *p, size_t n)
{
    int64_t index = 0, it = 0;
    size_t i, sl;
    char *body;
    rg_err e;
    if (n < 17)
        return;
    for (i = 0; i < 8; i++) {
        index = (int64_t)((uint64_t)index << 8 | p[i]);
        it = (int64_t)((uint64_t)it << 8 | p[8 + i]);
    }
    sl = p[16];
    if (17 + sl > n)
        return;
    if (!(body = malloc(n - 17 - sl + 1)))
        return;
    memcpy(body, p + 17 + sl, n - 17 - sl);
    body[n - 17 - sl] = 0;
    rg_err_init(&e);
    check_err(rg_tlog_set_check(&t->tlogs[0], body, it, index, p + 17, sl, &e), &e);
    free(body);
}

/* size(8) root(32) note */
static void checkpoint(const rg_trustroot *t, const uint8_t *p, size_t n)
{
    uint64_t size = 0;
    size_t i;
    rg_err e;
    if (n < 40)
        return;
    for (i = 0; i < 8; i++)
        size = size << 8 | p[i];
    rg_err_init(&e);
    check_err(rg_checkpoint_check(&t->tlogs[0], (const char *)p + 40, n - 40, size, p + 8, &e),
              &e);
}

static void result(int r, rg_keyless_result *res, rg_err *e)
{
    if (r == 0 && (!res->identity || !res->issuer || res->reason))
        abort();
    if (r != 0 && (!e->type || (strcmp(e->type, "untrusted") == 0 && !res->reason)))
        abort();
    rg_keyless_result_free(res);
    rg_err_free(e);
}

static const rg_keyless_want WANT = {NULL, ".*", NULL, ".*"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const rg_trustroot *t;
    const char *p = (const char *)data + 1;
    size_t n;
    rg_err e;
    int full;
    if (size < 1)
        return 0;
    full = slice(data, size);
    t = root_once(!full);
    n = size - 1;
    rg_err_init(&e);
    switch (data[0] % 8) {
    case 0:
        certificate(t, p, n, 0, data[0] & 8, full);
        break;
    case 1:
        certificate(t, p, n, 1, 0, full);
        if (full) {
            STACK_OF(X509) *sk = rg_x509_read_all(p, n, "a chain", &e);
            check_err(sk ? 0 : -1, &e);
            sk_X509_pop_free(sk, X509_free);
        }
        break;
    case 2:
        set_check(root_once(0), (const uint8_t *)p, n);
        break;
    case 3:
        rekor_bundle(p, n);
        break;
    case 4:
        merkle((const uint8_t *)p, n);
        break;
    case 5:
        checkpoint(t, (const uint8_t *)p, n);
        break;
    case 6: {
        rg_keyless_result res;
        result(rg_keyless_verify_bundle(t, p, n, &WANT, &res, &e), &res, &e);
        break;
    }
    default: {
        /* certificate \0 chain \0 bundle \0 signature \0 payload */
        rg_keyless_legacy in;
        rg_keyless_result res;
        size_t i = 0;
        memset(&in, 0, sizeof in);
        in.cert = part(p, n, &i, &in.cert_len);
        in.chain = part(p, n, &i, &in.chain_len);
        in.bundle = part(p, n, &i, &in.bundle_len);
        in.sig_b64 = part(p, n, &i, &in.sig_b64_len);
        in.payload = part(p, n, &i, &in.payload_len);
        if (!in.sig_b64 || !in.payload)
            break;
        result(rg_keyless_verify_legacy(t, &in, &WANT, &res, &e), &res, &e);
        break;
    }
    }
    rg_err_free(&e);
    return 0;
}
