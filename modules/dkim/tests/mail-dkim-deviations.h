/*
 * modules/dkim/tests/mail-dkim-deviations.h — rows of mail-dkim/expected.tsv
 * where our verdict differs from Mail::DKIM on purpose (included by
 * test-dkim-vectors.c): its default mode still accepts rsa-sha1, which
 * RFC 8301 3.1 forbids; we answer dkim=policy ("invalid" there).
 */
	{ "good_rfc4871_3.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
	{ "good_rfc4871_4.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
	{ "good_1878523.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
	{ "good_83176.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
	{ "good_qp_1.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
	{ "good_qp_2.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
	{ "good_qp_3.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
	{ "bad_1878954.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
	{ "goodkey_1.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
	{ "goodkey_2.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
	{ "goodkey_3.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
	{ "goodkey_4.txt", "default", "invalid",
	  "rsa-sha1: dkim=policy (RFC 8301 3.1)" },
