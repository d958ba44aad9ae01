/*
 * tests/unit/test-credentials.c — MD5 with resumable state, CRAM-MD5
 * secrets, and the credentials store (kernel/store/md5.c,
 * kernel/store/credentials.c).
 *
 * MD5 is checked against RFC 1321's test suite; the CRAM-MD5 states,
 * continued with our MD5, must give what GnuTLS's HMAC-MD5 gives with
 * the password (and RFC 2195's example).  The SCRAM rows written by
 * ts__credentials_set are recomputed here from their salt and iteration
 * count; the asynchronous API runs on a real loop and work pool.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "kernel/boot.h"
#include "kernel/store/accounts.h"
#include "kernel/store/md5.h"
#include "kernel/store/store-private.h"

static void
hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* --- MD5 ----------------------------------------------------------------- */

static void
test_md5_rfc1321(void **state)
{
	static const struct {
		const char *in, *digest;
	} v[] = {
		{ "", "d41d8cd98f00b204e9800998ecf8427e" },
		{ "a", "0cc175b9c0f1b6a831c399e269772661" },
		{ "abc", "900150983cd24fb0d6963f7d28e17f72" },
		{ "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
		{ "abcdefghijklmnopqrstuvwxyz",
		  "c3fcd3d76192e4007dfb496cca67e13b" },
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		  "0123456789",
		  "d174ab98d277d9f5a5611c2c9f419d9f" },
		{ "1234567890123456789012345678901234567890"
		  "1234567890123456789012345678901234567890",
		  "57edf4a22be3c955ac49da2e2107b67a" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t d[16];
		char h[33];
		size_t len = strlen(v[i].in);
		ts__md5(v[i].in, len, d);
		hex(d, 16, h);
		assert_string_equal(h, v[i].digest);

		/* Fed in every split, the digest is the same. */
		for (size_t cut = 0; cut <= len; cut++) {
			struct ts__md5 md;
			ts__md5_init(&md);
			ts__md5_update(&md, v[i].in, cut);
			ts__md5_update(&md, v[i].in + cut, len - cut);
			ts__md5_final(&md, d);
			hex(d, 16, h);
			assert_string_equal(h, v[i].digest);
		}
	}
}

/* Lengths around the padding boundaries agree with GnuTLS's MD5. */
static void
test_md5_lengths(void **state)
{
	uint8_t buf[300];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(buf); len++) {
		uint8_t mine[16], theirs[16];
		ts__md5(buf, len, mine);
		assert_int_equal(
			gnutls_hash_fast(GNUTLS_DIG_MD5, buf, len, theirs), 0);
		assert_memory_equal(mine, theirs, 16);
	}
}

/* --- CRAM-MD5 ------------------------------------------------------------ */

static void
expect_cram(const char *key, size_t key_len, const char *msg)
{
	uint32_t inner[4], outer[4];
	uint8_t mine[16], theirs[16];

	ts__cram_md5_states(key, key_len, inner, outer);
	ts__cram_md5_hmac(inner, outer, msg, strlen(msg), mine);
	assert_int_equal(gnutls_hmac_fast(GNUTLS_MAC_MD5, key, key_len, msg,
					  strlen(msg), theirs),
			 0);
	assert_memory_equal(mine, theirs, 16);

	/* Packed and unpacked, the states are the same. */
	uint8_t packed[16];
	uint32_t back[4];
	ts__md5_state_pack(inner, packed);
	ts__md5_state_unpack(packed, back);
	assert_memory_equal(back, inner, sizeof(back));
	assert_int_equal(packed[0], inner[0] & 0xff); /* little-endian */
}

static void
test_cram_md5(void **state)
{
	/* RFC 2195 section 2's example. */
	uint32_t inner[4], outer[4];
	uint8_t d[16];
	char h[33];
	const char *challenge = "<1896.697170952@postoffice.reston.mci.net>";
	ts__cram_md5_states("tanstaaftanstaaf", 16, inner, outer);
	ts__cram_md5_hmac(inner, outer, challenge, strlen(challenge), d);
	hex(d, 16, h);
	assert_string_equal(h, "b913a602c7eda7a495b4e6e7334d3890");

	char key[200];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (char)('a' + i % 26);
	static const size_t lens[] = { 1, 5, 63, 64, 65, 100, 200 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		expect_cram(key, lens[i], challenge);
		expect_cram(key, lens[i], "");
		expect_cram(key, lens[i],
			    "a challenge that is longer than one MD5 block, "
			    "so the continuation crosses a block boundary");
	}
}

/* --- the credentials table ----------------------------------------------- */

struct store {
	char dir[64];
	sqlite3 *db;
};

static void
store_open(struct store *s, const char *account)
{
	strcpy(s->dir, "/tmp/test-credentials-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	char *error = NULL;
	int rc = ts__store_db_open(s->dir, account, &s->db, &error);
	if (rc != 0)
		fail_msg("db open: %s", error);
}

static void
store_remove(struct store *s)
{
	char *cmd = ts_xasprintf("rm -rf '%s'", s->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

/* Read one credentials row's SCRAM columns. */
static void
read_scram(sqlite3 *db, const char *mech, uint8_t *salt, int *salt_len,
	   int *iter, uint8_t *stored, uint8_t *server, int *key_len)
{
	sqlite3_stmt *st;
	assert_int_equal(
		sqlite3_prepare_v2(db,
				   "SELECT salt, iterations, stored_key,"
				   " server_key, inner_state, outer_state"
				   " FROM credentials WHERE mechanism = ?",
				   -1, &st, NULL),
		SQLITE_OK);
	sqlite3_bind_text(st, 1, mech, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	*salt_len = sqlite3_column_bytes(st, 0);
	memcpy(salt, sqlite3_column_blob(st, 0), (size_t)*salt_len);
	*iter = sqlite3_column_int(st, 1);
	*key_len = sqlite3_column_bytes(st, 2);
	assert_int_equal(sqlite3_column_bytes(st, 3), *key_len);
	memcpy(stored, sqlite3_column_blob(st, 2), (size_t)*key_len);
	memcpy(server, sqlite3_column_blob(st, 3), (size_t)*key_len);
	assert_int_equal(sqlite3_column_type(st, 4), SQLITE_NULL);
	assert_int_equal(sqlite3_column_type(st, 5), SQLITE_NULL);
	sqlite3_finalize(st);
}

/* RFC 5802 section 3, computed here from the stored salt and count. */
static void
expect_scram_row(sqlite3 *db, const char *mech, gnutls_mac_algorithm_t mac,
		 gnutls_digest_algorithm_t dig, size_t want_len, int want_iter,
		 const char *password)
{
	uint8_t salt[64], stored[64], server[64];
	uint8_t salted[64], client_key[64], want_stored[64], want_server[64];
	int salt_len, iter, key_len;

	read_scram(db, mech, salt, &salt_len, &iter, stored, server, &key_len);
	assert_int_equal(salt_len, 16);
	assert_int_equal(iter, want_iter);
	assert_int_equal(key_len, (int)want_len);
	gnutls_datum_t pw = { (unsigned char *)password,
			      (unsigned)strlen(password) };
	gnutls_datum_t sd = { salt, (unsigned)salt_len };
	assert_int_equal(
		gnutls_pbkdf2(mac, &pw, &sd, (unsigned)iter, salted, want_len),
		0);
	assert_int_equal(gnutls_hmac_fast(mac, salted, want_len, "Client Key",
					  10, client_key),
			 0);
	assert_int_equal(
		gnutls_hash_fast(dig, client_key, want_len, want_stored), 0);
	assert_int_equal(gnutls_hmac_fast(mac, salted, want_len, "Server Key",
					  10, want_server),
			 0);
	assert_memory_equal(stored, want_stored, want_len);
	assert_memory_equal(server, want_server, want_len);
}

static int
count_rows(sqlite3 *db)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT count(*) FROM credentials",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Whether `needle` occurs in the file at dir/rel (absent files: no). */
static bool
file_contains(const char *dir, const char *rel, const char *needle)
{
	char *path = ts_xasprintf("%s/%s", dir, rel);
	FILE *fp = fopen(path, "rb");
	free(path);
	if (fp == NULL)
		return false;
	size_t cap = 1 << 16, len = 0, n;
	char *buf = ts_xmalloc(cap);
	while ((n = fread(buf + len, 1, cap - len, fp)) > 0) {
		len += n;
		if (len == cap)
			buf = ts_xrealloc(buf, cap *= 2);
	}
	fclose(fp);
	size_t nlen = strlen(needle);
	bool found = false;
	for (size_t i = 0; !found && i + nlen <= len; i++)
		found = memcmp(buf + i, needle, nlen) == 0;
	free(buf);
	return found;
}

static void
test_credentials_set(void **state)
{
	struct store s;
	store_open(&s, "alice");
	const char *password = "correct horse battery staple";
	char *error = NULL;
	bool set = true;

	assert_int_equal(ts__credentials_exist(s.db, &set), 0);
	assert_false(set);
	assert_int_equal(ts__credentials_set(s.db, password, &error), 0);
	assert_null(error);
	assert_int_equal(ts__credentials_exist(s.db, &set), 0);
	assert_true(set);
	assert_int_equal(count_rows(s.db), 3);
	expect_scram_row(s.db, "SCRAM-SHA-256", GNUTLS_MAC_SHA256,
			 GNUTLS_DIG_SHA256, 32, 10000, password);
	expect_scram_row(s.db, "SCRAM-SHA-1", GNUTLS_MAC_SHA1, GNUTLS_DIG_SHA1,
			 20, 4096, password);

	/* CRAM-MD5: the two states, which give HMAC-MD5(password, ·). */
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(s.db,
					    "SELECT inner_state, outer_state,"
					    " salt, stored_key FROM credentials"
					    " WHERE mechanism = 'CRAM-MD5'",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_bytes(st, 0), 16);
	assert_int_equal(sqlite3_column_bytes(st, 1), 16);
	assert_int_equal(sqlite3_column_type(st, 2), SQLITE_NULL);
	assert_int_equal(sqlite3_column_type(st, 3), SQLITE_NULL);
	uint32_t inner[4], outer[4];
	ts__md5_state_unpack(sqlite3_column_blob(st, 0), inner);
	ts__md5_state_unpack(sqlite3_column_blob(st, 1), outer);
	sqlite3_finalize(st);
	const char *challenge = "<12345.1234567890@mx.example.org>";
	uint8_t mine[16], theirs[16];
	ts__cram_md5_hmac(inner, outer, challenge, strlen(challenge), mine);
	assert_int_equal(gnutls_hmac_fast(GNUTLS_MAC_MD5, password,
					  strlen(password), challenge,
					  strlen(challenge), theirs),
			 0);
	assert_memory_equal(mine, theirs, 16);

	/* Setting again replaces every row with a fresh salt. */
	uint8_t salt1[64], salt2[64], k1[64], k2[64];
	int sl, it, kl;
	read_scram(s.db, "SCRAM-SHA-256", salt1, &sl, &it, k1, k1, &kl);
	assert_int_equal(ts__credentials_set(s.db, "another one", &error), 0);
	assert_int_equal(count_rows(s.db), 3);
	read_scram(s.db, "SCRAM-SHA-256", salt2, &sl, &it, k2, k2, &kl);
	assert_memory_not_equal(salt1, salt2, 16);
	expect_scram_row(s.db, "SCRAM-SHA-256", GNUTLS_MAC_SHA256,
			 GNUTLS_DIG_SHA256, 32, 10000, "another one");

	/* Refused passwords change nothing. */
	assert_int_equal(ts__credentials_set(s.db, "", &error), TS_E_INVAL);
	assert_string_equal(error, "empty password refused");
	free(error);
	error = NULL;
	assert_int_equal(ts__credentials_set(s.db, "bad\xff utf8", &error),
			 TS_E_INVAL);
	assert_string_equal(error, "password refused: not valid UTF-8 text, "
				   "or contains control characters");
	free(error);
	expect_scram_row(s.db, "SCRAM-SHA-256", GNUTLS_MAC_SHA256,
			 GNUTLS_DIG_SHA256, 32, 10000, "another one");

	/* Neither password is anywhere in the files. */
	char *acc = ts_xasprintf("%s/accounts/alice", s.dir);
	static const char *const files[] = { "index.db", "index.db-wal",
					     "index.db-shm" };
	for (size_t i = 0; i < 3; i++) {
		assert_false(file_contains(acc, files[i], password));
		assert_false(file_contains(acc, files[i], "another one"));
	}
	assert_true(file_contains(acc, "index.db-wal", "SCRAM-SHA-256") ||
		    file_contains(acc, "index.db", "SCRAM-SHA-256"));
	free(acc);
	ts__store_db_close(&s.db);
	store_remove(&s);
}

/* --- the asynchronous API on a loop -------------------------------------- */

struct async {
	uv_loop_t loop;
	struct ts_kernel k;
	struct store s;
	int calls;
	int status;
	struct ts_scram_secret scram;
	struct ts_cram_md5_secret cram;
};

static void
async_setup(struct async *a)
{
	memset(a, 0, sizeof(*a));
	store_open(&a->s, "alice");
	char *error = NULL;
	assert_int_equal(
		ts__credentials_set(a->s.db, "s3cret pässword", &error), 0);
	ts__store_db_close(&a->s.db);
	assert_int_equal(uv_loop_init(&a->loop), 0);
	a->k.loop = &a->loop;
	a->k.kctx.kernel = &a->k;
	a->k.kctx.name = "kernel";
	a->k.log.out = stderr;
	a->k.log.level = TS_LOG_WARN;
	a->k.log.max = TS_LOG_WARN;
	char *text = ts_xasprintf("[core]\ndata_dir = %s\n"
				  "[domain example.org]\n"
				  "[account alice]\naddresses = a@example.org\n"
				  "[account bob]\naddresses = b@example.org\n",
				  a->s.dir);
	a->k.cfg = ts__cfg_parse_string("t.ini", text);
	free(text);
	for (size_t i = 0; i < a->k.cfg->sect_count; i++) {
		struct ts_cfg_sect *s = a->k.cfg->sects[i];
		const struct ts_cfg_key *t[1] = {
			strcmp(s->type, "core") == 0	 ? ts__core_keys
			: strcmp(s->type, "domain") == 0 ? ts__domain_keys
							 : ts__account_keys
		};
		ts__cfg_bind(a->k.cfg, s, t, 1);
	}
	assert_int_equal(a->k.cfg->error_count, 0);
	assert_int_equal(ts__accounts_check(a->k.cfg), 0);
	ts__accounts_apply(&a->k, a->k.cfg);
}

static void
async_teardown(struct async *a)
{
	assert_int_equal(a->k.pending_work, 0);
	ts__accounts_free(&a->k);
	ts__cfg_free(&a->k.cfg);
	assert_int_equal(uv_loop_close(&a->loop), 0);
	store_remove(&a->s);
}

static void
on_result(int status, void *arg)
{
	struct async *a = arg;
	a->calls++;
	a->status = status;
}

static void
on_scram(int status, const struct ts_scram_secret *secret, void *arg)
{
	struct async *a = arg;
	a->calls++;
	a->status = status;
	if (status == 0)
		a->scram = *secret;
	else
		assert_null(secret);
}

static void
on_cram(int status, const struct ts_cram_md5_secret *secret, void *arg)
{
	struct async *a = arg;
	a->calls++;
	a->status = status;
	if (status == 0)
		a->cram = *secret;
	else
		assert_null(secret);
}

/* Verify a password: the callback's status after the loop ran. */
static int
verify(struct async *a, const char *account, const char *password)
{
	a->calls = 0;
	assert_int_equal(ts_store_verify_password(&a->k.kctx, account, password,
						  on_result, a),
			 0);
	assert_int_equal(a->calls, 0); /* never synchronously */
	uv_run(&a->loop, UV_RUN_DEFAULT);
	assert_int_equal(a->calls, 1);
	return a->status;
}

static void
test_verify_password(void **state)
{
	struct async a;
	async_setup(&a);
	assert_int_equal(verify(&a, "alice", "s3cret pässword"), 0);
	/* NFC and NFD forms of ä normalise to the same password. */
	assert_int_equal(verify(&a, "alice", "s3cret pa\xcc\x88ssword"), 0);
	assert_int_equal(verify(&a, "alice", "s3cret passwort"), TS_E_INVAL);
	assert_int_equal(verify(&a, "alice", ""), TS_E_INVAL);
	assert_int_equal(verify(&a, "alice", "S3cret pässword"), TS_E_INVAL);
	assert_int_equal(verify(&a, "alice", "bad\xff"), TS_E_INVAL);
	/* bob is configured but has no store; carol is not configured. */
	assert_int_equal(verify(&a, "bob", "s3cret pässword"), TS_E_NOTFOUND);
	assert_int_equal(verify(&a, "carol", "x"), TS_E_NOTFOUND);
	assert_int_equal(verify(&a, "../alice", "s3cret pässword"),
			 TS_E_NOTFOUND);
	char *bob = ts_xasprintf("%s/accounts/bob", a.s.dir);
	assert_int_equal(access(bob, F_OK), -1); /* not created by a lookup */
	free(bob);
	assert_int_equal(ts_store_verify_password(&a.k.kctx, "alice", NULL,
						  on_result, &a),
			 TS_E_INVAL);
	async_teardown(&a);
}

static void
test_secrets(void **state)
{
	struct async a;
	async_setup(&a);

	static const struct {
		const char *mech;
		gnutls_mac_algorithm_t mac;
		gnutls_digest_algorithm_t dig;
		size_t len;
		unsigned iter;
	} m[] = {
		{ "SCRAM-SHA-256", GNUTLS_MAC_SHA256, GNUTLS_DIG_SHA256, 32,
		  10000 },
		{ "SCRAM-SHA-1", GNUTLS_MAC_SHA1, GNUTLS_DIG_SHA1, 20, 4096 },
	};
	for (size_t i = 0; i < 2; i++) {
		a.calls = 0;
		assert_int_equal(ts_store_scram_secret(&a.k.kctx, "alice",
						       m[i].mech, on_scram, &a),
				 0);
		uv_run(&a.loop, UV_RUN_DEFAULT);
		assert_int_equal(a.calls, 1);
		assert_int_equal(a.status, 0);
		assert_int_equal(a.scram.key_len, m[i].len);
		assert_int_equal(a.scram.salt_len, 16);
		assert_int_equal(a.scram.iterations, m[i].iter);
		/* The secret is the password's: recompute StoredKey. */
		uint8_t salted[64], ck[64], sk[64];
		gnutls_datum_t pw = { (unsigned char *)"s3cret pässword",
				      (unsigned)strlen("s3cret pässword") };
		gnutls_datum_t sd = { a.scram.salt, 16 };
		assert_int_equal(gnutls_pbkdf2(m[i].mac, &pw, &sd,
					       a.scram.iterations, salted,
					       m[i].len),
				 0);
		gnutls_hmac_fast(m[i].mac, salted, m[i].len, "Client Key", 10,
				 ck);
		gnutls_hash_fast(m[i].dig, ck, m[i].len, sk);
		assert_memory_equal(sk, a.scram.stored_key, m[i].len);
	}
	assert_int_equal(ts_store_scram_secret(&a.k.kctx, "alice",
					       "SCRAM-SHA-512", on_scram, &a),
			 TS_E_INVAL);
	a.calls = 0;
	assert_int_equal(ts_store_scram_secret(&a.k.kctx, "bob", "SCRAM-SHA-1",
					       on_scram, &a),
			 0);
	uv_run(&a.loop, UV_RUN_DEFAULT);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, TS_E_NOTFOUND);

	a.calls = 0;
	assert_int_equal(
		ts_store_cram_md5_secret(&a.k.kctx, "alice", on_cram, &a), 0);
	uv_run(&a.loop, UV_RUN_DEFAULT);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, 0);
	const char *challenge = "<1.2@host>";
	uint8_t mine[16], theirs[16];
	ts__cram_md5_hmac(a.cram.inner, a.cram.outer, challenge,
			  strlen(challenge), mine);
	gnutls_hmac_fast(GNUTLS_MAC_MD5, "s3cret pässword",
			 strlen("s3cret pässword"), challenge,
			 strlen(challenge), theirs);
	assert_memory_equal(mine, theirs, 16);

	a.calls = 0;
	assert_int_equal(
		ts_store_cram_md5_secret(&a.k.kctx, "carol", on_cram, &a), 0);
	uv_run(&a.loop, UV_RUN_DEFAULT);
	assert_int_equal(a.status, TS_E_NOTFOUND);

	/* A store without a password: not found either. */
	sqlite3 *db;
	char *error = NULL;
	assert_int_equal(ts__store_db_open(a.s.dir, "bob", &db, &error), 0);
	ts__store_db_close(&db);
	a.calls = 0;
	assert_int_equal(
		ts_store_cram_md5_secret(&a.k.kctx, "bob", on_cram, &a), 0);
	uv_run(&a.loop, UV_RUN_DEFAULT);
	assert_int_equal(a.status, TS_E_NOTFOUND);
	assert_int_equal(verify(&a, "bob", "anything"), TS_E_NOTFOUND);
	async_teardown(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_md5_rfc1321),
		cmocka_unit_test(test_md5_lengths),
		cmocka_unit_test(test_cram_md5),
		cmocka_unit_test(test_credentials_set),
		cmocka_unit_test(test_verify_password),
		cmocka_unit_test(test_secrets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
