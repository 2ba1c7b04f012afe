/*
 * OpenSSL's libcrypto timed in-process, for bench/keygen.rs: the same generations as the
 * `openssl genpkey` / `openssl req -x509` / `openssl dhparam` processes, but inside one
 * running process, like keysmith's "in-process" column (a long-running operator pays no
 * process start-up per key). Built by bench/keygen.sh with `cc ... -lcrypto`.
 *
 *   openssl-inprocess key <case>   one untimed warm-up generation (loads the providers and
 *                                  seeds the DRBG), then one timed generation including the
 *                                  PEM encoding; prints "ns <nanoseconds>" and then the PEM
 *                                  (PKCS#8 key, then the certificate for cert-* cases)
 *   openssl-inprocess dh <bits>    one safe prime p = 2q + 1 with p = 23 (mod 24), the search
 *                                  `openssl dhparam <bits>` runs (BN_generate_prime_ex with
 *                                  add 24, rem 23, as OpenSSL's DH generator 2 does); prints
 *                                  "ns <nanoseconds>", "candidates <n>" (candidates past the
 *                                  sieve, each tested) and the PKCS#3 PEM
 *
 * Cases: rsa2048 rsa3072 rsa4096 p256 p384 ed25519 cert-p256 cert-rsa2048. Key material goes
 * to standard output only when it is not a terminal.
 */
/* DH_new and PEM_write_DHparams are deprecated in OpenSSL 3 but are what dhparam writes. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/dh.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define HOST "bench.keysmith.test"

static void fail(const char *what) {
    fprintf(stderr, "openssl-inprocess: %s failed\n", what);
    exit(1);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* A fresh key of the case's algorithm. */
static EVP_PKEY *generate_key(const char *name) {
    if (strstr(name, "rsa") != NULL) {
        unsigned int bits = (unsigned int)atoi(strstr(name, "rsa") + 3);
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    }
    if (strstr(name, "p256") != NULL)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (strstr(name, "p384") != NULL)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (strcmp(name, "ed25519") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    fprintf(stderr, "openssl-inprocess: unknown case %s\n", name);
    exit(2);
}

static void add_extension(X509 *cert, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL || !X509_add_ext(cert, ext, -1))
        fail("adding an extension");
    X509_EXTENSION_free(ext);
}

/* A self-signed certificate for `key` as a CertificateKeyPair makes it by default: random
 * serial, CN and one DNS SAN, 90 days, digitalSignature + keyEncipherment, serverAuth,
 * subject key identifier, SHA-256. */
static X509 *self_signed(EVP_PKEY *key) {
    X509 *cert = X509_new();
    unsigned char serial_bytes[16];
    BIGNUM *serial = NULL;
    if (cert == NULL || !X509_set_version(cert, 2))
        fail("X509_new");
    if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1)
        fail("RAND_bytes");
    serial_bytes[0] &= 0x7f;
    serial = BN_bin2bn(serial_bytes, sizeof serial_bytes, NULL);
    if (serial == NULL || BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) == NULL)
        fail("serial");
    BN_free(serial);
    X509_NAME *name = X509_get_subject_name(cert);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)HOST, -1,
                                    -1, 0) ||
        !X509_set_issuer_name(cert, name))
        fail("names");
    if (X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(cert), 90L * 24 * 3600) == NULL)
        fail("validity");
    if (!X509_set_pubkey(cert, key))
        fail("X509_set_pubkey");
    add_extension(cert, NID_subject_alt_name, "DNS:" HOST);
    add_extension(cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_extension(cert, NID_ext_key_usage, "serverAuth");
    add_extension(cert, NID_subject_key_identifier, "hash");
    if (X509_sign(cert, key, EVP_sha256()) == 0)
        fail("X509_sign");
    return cert;
}

/* One generation of `name` written as PEM into a memory BIO (returned). */
static BIO *generate(const char *name) {
    BIO *out = BIO_new(BIO_s_mem());
    EVP_PKEY *key = generate_key(name);
    if (out == NULL || key == NULL)
        fail("key generation");
    if (!PEM_write_bio_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL))
        fail("PEM_write_bio_PrivateKey");
    if (strncmp(name, "cert-", 5) == 0) {
        X509 *cert = self_signed(key);
        if (!PEM_write_bio_X509(out, cert))
            fail("PEM_write_bio_X509");
        X509_free(cert);
    }
    EVP_PKEY_free(key);
    return out;
}

static void write_out(BIO *bio) {
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len > 0 && fwrite(data, 1, (size_t)len, stdout) != (size_t)len)
        fail("writing the output");
}

static int key_case(const char *name) {
    BIO_free(generate(name)); /* warm-up */
    long long start = now_ns();
    BIO *out = generate(name);
    long long elapsed = now_ns() - start;
    printf("ns %lld\n", elapsed);
    write_out(out);
    BIO_free(out);
    return 0;
}

/* Counts the candidates that passed the sieve (event 0 of BN_GENCB). */
static int count_candidates(int event, int n, BN_GENCB *cb) {
    (void)n;
    if (event == 0)
        ++*(long long *)BN_GENCB_get_arg(cb);
    return 1;
}

static int dh_case(int bits) {
    long long candidates = 0;
    BN_GENCB *cb = BN_GENCB_new();
    BIGNUM *p = BN_new(), *g = BN_new(), *add = BN_new(), *rem = BN_new();
    DH *dh = DH_new();
    if (cb == NULL || p == NULL || g == NULL || add == NULL || rem == NULL || dh == NULL ||
        !BN_set_word(add, 24) || !BN_set_word(rem, 23) || !BN_set_word(g, 2))
        fail("allocation");
    BN_GENCB_set(cb, count_candidates, &candidates);
    long long start = now_ns();
    if (!BN_generate_prime_ex(p, bits, 1, add, rem, cb))
        fail("BN_generate_prime_ex");
    long long elapsed = now_ns() - start;
    if (!DH_set0_pqg(dh, p, NULL, g))
        fail("DH_set0_pqg");
    printf("ns %lld\ncandidates %lld\n", elapsed, candidates);
    if (!PEM_write_DHparams(stdout, dh))
        fail("PEM_write_DHparams");
    DH_free(dh);
    BN_free(add);
    BN_free(rem);
    BN_GENCB_free(cb);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "key") == 0) {
        if (isatty(STDOUT_FILENO)) {
            fprintf(stderr, "openssl-inprocess: refusing to write a private key to a terminal\n");
            return 1;
        }
        return key_case(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "dh") == 0)
        return dh_case(atoi(argv[2]));
    fprintf(stderr, "usage: openssl-inprocess key <case> | dh <bits>\n");
    return 2;
}
