/*
 * modules/dkim/genkey.c — `tessera dkim genkey ed25519|rsa [BITS] FILE`.
 *
 * Generates a signing key with GnuTLS, writes it as a PKCS#8 PEM file
 * (created with mode 0600; an existing file is never overwritten) and
 * prints the TXT record to publish at SELECTOR._domainkey.DOMAIN: for RSA
 * the SubjectPublicKeyInfo, for Ed25519 the raw 32-byte key (RFC 8463).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "module.h"

static int
dkim_usage(void)
{
	fprintf(stderr, "usage: tessera dkim genkey ed25519|rsa [BITS] FILE\n"
			"  BITS: RSA modulus size, 1024-4096 (default 2048)\n");
	return 2;
}

static int
dkim_genkey(int argc, char **argv)
{
	/* argv: genkey ALG [BITS] FILE */
	if (argc < 3 || argc > 4)
		return dkim_usage();
	const char *alg = argv[1];
	const char *file = argv[argc - 1];
	unsigned bits = 2048;
	bool ed;
	if (strcmp(alg, "ed25519") == 0)
		ed = true;
	else if (strcmp(alg, "rsa") == 0)
		ed = false;
	else
		return dkim_usage();
	if (argc == 4) {
		char *end;
		unsigned long b = strtoul(argv[2], &end, 10);
		if (ed || *end != '\0' || b < 1024 || b > 4096) {
			fprintf(stderr,
				"tessera dkim genkey: bad BITS '%s' "
				"(rsa only, 1024-4096)\n",
				argv[2]);
			return 2;
		}
		bits = (unsigned)b;
	}
	gnutls_x509_privkey_t key;
	gnutls_privkey_t pkey = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t pem = { NULL, 0 }, der = { NULL, 0 }, x = { NULL, 0 };
	int rc = 1;
	if (gnutls_x509_privkey_init(&key) < 0)
		return 1;
	int g = gnutls_x509_privkey_generate(
		key, ed ? GNUTLS_PK_EDDSA_ED25519 : GNUTLS_PK_RSA,
		ed ? 256 : bits, 0);
	if (g < 0) {
		fprintf(stderr, "tessera dkim genkey: %s\n",
			gnutls_strerror(g));
		goto out;
	}
	if (gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
					      GNUTLS_PKCS_PLAIN, &pem) < 0 ||
	    gnutls_privkey_init(&pkey) < 0 ||
	    gnutls_privkey_import_x509(pkey, key, 0) < 0 ||
	    gnutls_pubkey_init(&pub) < 0 ||
	    gnutls_pubkey_import_privkey(pub, pkey, 0, 0) < 0) {
		fprintf(stderr, "tessera dkim genkey: cannot export the key\n");
		goto out;
	}
	if (ed) {
		if (gnutls_pubkey_export_ecc_raw2(pub, NULL, &x, NULL, 0) < 0)
			goto out;
	} else if (gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der) < 0) {
		goto out;
	}
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "tessera dkim genkey: %s: %s\n", file,
			strerror(errno));
		goto out;
	}
	size_t off = 0;
	while (off < pem.size) {
		ssize_t n = write(fd, pem.data + off, pem.size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off != pem.size || close(fd) != 0) {
		fprintf(stderr, "tessera dkim genkey: %s: write failed\n",
			file);
		unlink(file);
		goto out;
	}
	char *b64 = ed ? dkim_base64_encode(x.data, x.size)
		       : dkim_base64_encode(der.data, der.size);
	printf("v=DKIM1; k=%s; p=%s\n", ed ? "ed25519" : "rsa", b64);
	free(b64);
	rc = 0;
out:
	gnutls_free(pem.data);
	gnutls_free(der.data);
	gnutls_free(x.data);
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	if (pkey != NULL)
		gnutls_privkey_deinit(pkey);
	gnutls_x509_privkey_deinit(key);
	return rc;
}

int
dkim_cli(struct ts_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	if (argc >= 2 && strcmp(argv[1], "genkey") == 0)
		return dkim_genkey(argc - 1, argv + 1);
	return dkim_usage();
}
