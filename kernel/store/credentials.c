/*
 * kernel/store/credentials.c — an account's login secrets: derived from
 * the password when it is set, checked or handed to a SASL mechanism
 * later, never the password itself.
 *
 * `tessera account passwd` stores, in the account database's
 * `credentials` table, one row per mechanism:
 *   SCRAM-SHA-256, SCRAM-SHA-1  salt, iterations, StoredKey, ServerKey
 *                               (RFC 5802 section 3)
 *   CRAM-MD5                    the HMAC-MD5 inner and outer states
 *                               (RFC 2195 section 4, md5.c)
 * PLAIN and LOGIN are checked against the SCRAM-SHA-256 row by recomputing
 * StoredKey from the offered password.  Everything that reads or writes
 * the database or runs PBKDF2 runs on the work pool; the public functions
 * only queue the job and call back on the loop.
 *
 * SCRAM passwords are normalised with GnuTLS's RFC 8265 OpaqueString
 * profile, the successor of the SASLprep that RFC 5802 names (identical
 * for the passwords people type; they differ only for compatibility
 * characters).  CRAM-MD5 keys are the password's bytes as given, as
 * clients use them.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "kernel/store/accounts.h"
#include "kernel/store/md5.h"
#include "kernel/store/store-private.h"

/*
 * Iteration counts.  SCRAM-SHA-256: 10000, above RFC 7677's minimum of
 * 4096, which makes offline guessing from a stolen database ~2.5 times
 * dearer while a PLAIN check (one PBKDF2 on the pool) stays at a few
 * milliseconds.  SCRAM-SHA-1: 4096, RFC 5802's own recommendation; it
 * exists for old clients, which also run PBKDF2 on every login and can
 * be slow, and its secret is the weaker one anyway.
 */
#define CRED_ITER_SHA256 10000
#define CRED_ITER_SHA1 4096
#define CRED_SALT_LEN 16
/* Longest password accepted, so PBKDF2's cost cannot be inflated. */
#define CRED_MAX_PASSWORD 1024

/* One SCRAM variant. */
struct cred_scram {
	const char *mechanism;
	gnutls_mac_algorithm_t mac;
	gnutls_digest_algorithm_t digest;
	size_t key_len;
	unsigned iterations;
};

static const struct cred_scram cred_scrams[] = {
	{ "SCRAM-SHA-256", GNUTLS_MAC_SHA256, GNUTLS_DIG_SHA256, 32,
	  CRED_ITER_SHA256 },
	{ "SCRAM-SHA-1", GNUTLS_MAC_SHA1, GNUTLS_DIG_SHA1, 20, CRED_ITER_SHA1 },
};

static const struct cred_scram *
cred_scram_find(const char *mechanism)
{
	for (size_t i = 0; i < sizeof(cred_scrams) / sizeof(cred_scrams[0]);
	     i++)
		if (strcmp(cred_scrams[i].mechanism, mechanism) == 0)
			return &cred_scrams[i];
	return NULL;
}

/*
 * The password as SCRAM hashes it (OpaqueString-normalised UTF-8).
 * Returns 0 with *out (gnutls_free after wiping) or TS_E_INVAL.
 */
static int
cred_normalize(const char *password, size_t len, gnutls_datum_t *out)
{
	if (len == 0 || len > CRED_MAX_PASSWORD)
		return TS_E_INVAL;
	if (gnutls_utf8_password_normalize((const unsigned char *)password,
					   (unsigned)len, out, 0) != 0)
		return TS_E_INVAL;
	return 0;
}

static void
cred_datum_wipe(gnutls_datum_t *d)
{
	if (d->data != NULL) {
		gnutls_memset(d->data, 0, d->size);
		gnutls_free(d->data);
	}
	d->data = NULL;
	d->size = 0;
}

/*
 * RFC 5802 section 3: SaltedPassword = Hi(password, salt, i) (PBKDF2),
 * ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey =
 * H(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key").
 * server_key may be NULL (verification needs only StoredKey).
 */
static int
cred_scram_keys(const struct cred_scram *sc, const gnutls_datum_t *password,
		const uint8_t *salt, size_t salt_len, unsigned iterations,
		uint8_t *stored_key, uint8_t *server_key)
{
	uint8_t salted[64], client_key[64];
	gnutls_datum_t salt_d = { (unsigned char *)salt, (unsigned)salt_len };
	int ret = 0;

	if (gnutls_pbkdf2(sc->mac, password, &salt_d, iterations, salted,
			  sc->key_len) != 0 ||
	    gnutls_hmac_fast(sc->mac, salted, sc->key_len, "Client Key", 10,
			     client_key) != 0 ||
	    gnutls_hash_fast(sc->digest, client_key, sc->key_len, stored_key) !=
		    0 ||
	    (server_key != NULL &&
	     gnutls_hmac_fast(sc->mac, salted, sc->key_len, "Server Key", 10,
			      server_key) != 0))
		ret = TS_E_IO;
	gnutls_memset(salted, 0, sizeof(salted));
	gnutls_memset(client_key, 0, sizeof(client_key));
	return ret;
}

/* --- setting (synchronous; CLI and work pool) ----------------------------- */

static int
cred_exec(sqlite3 *db, const char *sql, char **error_r)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	*error_r = ts_xasprintf("%s: %s", sql,
				msg != NULL ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return TS_E_IO;
}

/* INSERT one credentials row; NULL pointers become NULL columns. */
static int
cred_insert(sqlite3 *db, const char *mechanism, const uint8_t *salt,
	    size_t salt_len, unsigned iterations, const uint8_t *stored,
	    const uint8_t *server, size_t key_len, const uint8_t *inner,
	    const uint8_t *outer, char **error_r)
{
	static const char sql[] =
		"INSERT INTO credentials (mechanism, salt, iterations,"
		" stored_key, server_key, inner_state, outer_state)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, mechanism, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = salt != NULL
			     ? sqlite3_bind_blob(st, 2, salt, (int)salt_len,
						 SQLITE_TRANSIENT)
			     : sqlite3_bind_null(st, 2);
	if (rc == SQLITE_OK)
		rc = salt != NULL ? sqlite3_bind_int64(st, 3, iterations)
				  : sqlite3_bind_null(st, 3);
	if (rc == SQLITE_OK)
		rc = stored != NULL
			     ? sqlite3_bind_blob(st, 4, stored, (int)key_len,
						 SQLITE_TRANSIENT)
			     : sqlite3_bind_null(st, 4);
	if (rc == SQLITE_OK)
		rc = server != NULL
			     ? sqlite3_bind_blob(st, 5, server, (int)key_len,
						 SQLITE_TRANSIENT)
			     : sqlite3_bind_null(st, 5);
	if (rc == SQLITE_OK)
		rc = inner != NULL ? sqlite3_bind_blob(st, 6, inner, 16,
						       SQLITE_TRANSIENT)
				   : sqlite3_bind_null(st, 6);
	if (rc == SQLITE_OK)
		rc = outer != NULL ? sqlite3_bind_blob(st, 7, outer, 16,
						       SQLITE_TRANSIENT)
				   : sqlite3_bind_null(st, 7);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	if (rc != SQLITE_OK)
		*error_r = ts_xasprintf("cannot store %s credentials: %s",
					mechanism, sqlite3_errmsg(db));
	ts__store_finalize(st);
	return rc == SQLITE_OK ? 0 : TS_E_IO;
}

int
ts__credentials_set(sqlite3 *db, const char *password, char **error_r)
{
	size_t len = strlen(password);
	gnutls_datum_t norm = { NULL, 0 };
	uint8_t salt[CRED_SALT_LEN], stored[64], server[64];
	uint8_t inner[16], outer[16];
	uint32_t inner_state[4], outer_state[4];
	int ret;

	if (len == 0) {
		*error_r = ts_xstrdup("empty password refused");
		return TS_E_INVAL;
	}
	if (cred_normalize(password, len, &norm) != 0) {
		*error_r = ts_xasprintf("password refused: %s",
					len > CRED_MAX_PASSWORD
						? "longer than 1024 bytes"
						: "not valid UTF-8 text, or "
						  "contains control "
						  "characters");
		return TS_E_INVAL;
	}
	if ((ret = cred_exec(db, "BEGIN IMMEDIATE", error_r)) != 0)
		goto out;
	if ((ret = cred_exec(db, "DELETE FROM credentials", error_r)) != 0)
		goto rollback;
	for (size_t i = 0; i < sizeof(cred_scrams) / sizeof(cred_scrams[0]);
	     i++) {
		const struct cred_scram *sc = &cred_scrams[i];
		if (gnutls_rnd(GNUTLS_RND_NONCE, salt, sizeof(salt)) != 0 ||
		    cred_scram_keys(sc, &norm, salt, sizeof(salt),
				    sc->iterations, stored, server) != 0) {
			*error_r = ts_xstrdup("cannot derive the SCRAM keys");
			ret = TS_E_IO;
			goto rollback;
		}
		ret = cred_insert(db, sc->mechanism, salt, sizeof(salt),
				  sc->iterations, stored, server, sc->key_len,
				  NULL, NULL, error_r);
		if (ret != 0)
			goto rollback;
	}
	ts__cram_md5_states(password, len, inner_state, outer_state);
	ts__md5_state_pack(inner_state, inner);
	ts__md5_state_pack(outer_state, outer);
	ret = cred_insert(db, "CRAM-MD5", NULL, 0, 0, NULL, NULL, 0, inner,
			  outer, error_r);
	if (ret != 0)
		goto rollback;
	ret = cred_exec(db, "COMMIT", error_r);
	if (ret == 0)
		goto out;
rollback:
	(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
	cred_datum_wipe(&norm);
	gnutls_memset(stored, 0, sizeof(stored));
	gnutls_memset(server, 0, sizeof(server));
	gnutls_memset(inner, 0, sizeof(inner));
	gnutls_memset(outer, 0, sizeof(outer));
	gnutls_memset(inner_state, 0, sizeof(inner_state));
	gnutls_memset(outer_state, 0, sizeof(outer_state));
	return ret;
}

int
ts__credentials_exist(sqlite3 *db, bool *set_r)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
		db, "SELECT count(*) FROM credentials WHERE mechanism = ?1", -1,
		&st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, "SCRAM-SHA-256", -1,
				       SQLITE_STATIC);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		*set_r = sqlite3_column_int64(st, 0) > 0;
		ts__store_finalize(st);
		return 0;
	}
	ts__store_finalize(st);
	return TS_E_IO;
}

/* --- reading (work pool) -------------------------------------------------- */

/*
 * Read the SCRAM row of `sc` into *secret.  0, TS_E_NOTFOUND (no row) or
 * TS_E_IO (an error or a malformed row).
 */
static int
cred_read_scram(sqlite3 *db, const struct cred_scram *sc,
		struct ts_scram_secret *secret)
{
	sqlite3_stmt *st = NULL;
	int ret = TS_E_IO;

	memset(secret, 0, sizeof(*secret));
	if (sqlite3_prepare_v2(db,
			       "SELECT salt, iterations, stored_key, server_key"
			       " FROM credentials WHERE mechanism = ?1",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, sc->mechanism, -1, SQLITE_STATIC) !=
		    SQLITE_OK)
		goto out;
	int step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		ret = TS_E_NOTFOUND;
		goto out;
	}
	if (step != SQLITE_ROW)
		goto out;
	int salt_len = sqlite3_column_bytes(st, 0);
	sqlite3_int64 iter = sqlite3_column_int64(st, 1);
	const void *salt = sqlite3_column_blob(st, 0);
	const void *stored = sqlite3_column_blob(st, 2);
	const void *server = sqlite3_column_blob(st, 3);
	if (salt == NULL || salt_len <= 0 ||
	    (size_t)salt_len > sizeof(secret->salt) || iter < 1 ||
	    iter > 10000000 || stored == NULL || server == NULL ||
	    (size_t)sqlite3_column_bytes(st, 2) != sc->key_len ||
	    (size_t)sqlite3_column_bytes(st, 3) != sc->key_len)
		goto out;
	memcpy(secret->salt, salt, (size_t)salt_len);
	secret->salt_len = (size_t)salt_len;
	secret->iterations = (unsigned)iter;
	memcpy(secret->stored_key, stored, sc->key_len);
	memcpy(secret->server_key, server, sc->key_len);
	secret->key_len = sc->key_len;
	ret = 0;
out:
	ts__store_finalize(st);
	return ret;
}

static int
cred_read_cram(sqlite3 *db, struct ts_cram_md5_secret *secret)
{
	sqlite3_stmt *st = NULL;
	int ret = TS_E_IO;

	if (sqlite3_prepare_v2(db,
			       "SELECT inner_state, outer_state FROM "
			       "credentials WHERE mechanism = 'CRAM-MD5'",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	int step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		ret = TS_E_NOTFOUND;
		goto out;
	}
	const void *inner = sqlite3_column_blob(st, 0);
	const void *outer = sqlite3_column_blob(st, 1);
	if (step != SQLITE_ROW || inner == NULL || outer == NULL ||
	    sqlite3_column_bytes(st, 0) != 16 ||
	    sqlite3_column_bytes(st, 1) != 16)
		goto out;
	ts__md5_state_unpack(inner, secret->inner);
	ts__md5_state_unpack(outer, secret->outer);
	ret = 0;
out:
	ts__store_finalize(st);
	return ret;
}

/* --- the asynchronous API ------------------------------------------------- */

enum cred_kind { CRED_VERIFY, CRED_SCRAM, CRED_CRAM };

/* One queued request; owned by the work pool until its done callback. */
struct cred_job {
	enum cred_kind kind;
	char *data_dir;
	char *account;
	bool known; /* a configured account */
	char *password; /* CRED_VERIFY; wiped before free */
	size_t password_len;
	const struct cred_scram *scram;
	int status;
	struct ts_scram_secret scram_secret;
	struct ts_cram_md5_secret cram_secret;
	union {
		ts_store_result_fn result;
		ts_scram_fn scram;
		ts_cram_md5_fn cram;
	} fn;
	void *arg;
};

/*
 * Open the account's database for reading its credentials.  Not through
 * ts__store_db_open, which takes the write lock (to create the schema and
 * sweep files a crash left behind): a login must neither create a store
 * nor queue behind deliveries.  Without SQLITE_OPEN_CREATE a missing
 * store is TS_E_NOTFOUND; the file is already in WAL mode, so the reads
 * never block writers.
 */
static int
cred_open(struct cred_job *job, sqlite3 **db_r)
{
	char *dir = ts__store_account_dir(job->data_dir, job->account);
	char *path = ts_xasprintf("%s/index.db", dir);
	int ret = TS_E_NOTFOUND;

	*db_r = NULL;
	if (access(path, F_OK) == 0) {
		ret = TS_E_IO;
		if (sqlite3_open_v2(path, db_r,
				    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				    NULL) == SQLITE_OK &&
		    sqlite3_busy_timeout(*db_r, 10000) == SQLITE_OK)
			ret = 0;
		else
			ts__store_db_close(db_r);
	} else if (errno != ENOENT) {
		ret = TS_E_IO;
	}
	free(path);
	free(dir);
	return ret;
}

/*
 * PLAIN/LOGIN: recompute StoredKey and compare in constant time.  An
 * unknown account or one without a password still costs one PBKDF2, so
 * the answer's timing does not tell which accounts exist.
 */
static int
cred_verify(struct cred_job *job)
{
	const struct cred_scram *sc = &cred_scrams[0]; /* SCRAM-SHA-256 */
	struct ts_scram_secret secret;
	sqlite3 *db = NULL;
	uint8_t stored[64];
	gnutls_datum_t norm = { NULL, 0 };
	int ret = job->known ? cred_open(job, &db) : TS_E_NOTFOUND;

	if (ret == 0) {
		ret = cred_read_scram(db, sc, &secret);
		ts__store_db_close(&db);
	}
	if (ret != 0) {
		/* A stand-in secret of the same cost. */
		memset(&secret, 0, sizeof(secret));
		secret.salt_len = CRED_SALT_LEN;
		secret.iterations = sc->iterations;
	}
	if (cred_normalize(job->password, job->password_len, &norm) != 0) {
		/* Nothing valid can match; still spend the time. */
		norm.data = gnutls_malloc(1);
		norm.data[0] = 0;
		norm.size = 1;
		if (ret == 0)
			ret = TS_E_INVAL;
	}
	if (cred_scram_keys(sc, &norm, secret.salt, secret.salt_len,
			    secret.iterations, stored, NULL) != 0) {
		if (ret == 0)
			ret = TS_E_IO;
	} else if (ret == 0) {
		ret = gnutls_memcmp(stored, secret.stored_key, sc->key_len) == 0
			      ? 0
			      : TS_E_INVAL;
	}
	cred_datum_wipe(&norm);
	gnutls_memset(stored, 0, sizeof(stored));
	gnutls_memset(&secret, 0, sizeof(secret));
	return ret;
}

static void
cred_work(void *arg)
{
	struct cred_job *job = arg;
	sqlite3 *db = NULL;

	switch (job->kind) {
	case CRED_VERIFY:
		job->status = cred_verify(job);
		return;
	case CRED_SCRAM:
	case CRED_CRAM:
		job->status = job->known ? cred_open(job, &db) : TS_E_NOTFOUND;
		if (job->status != 0)
			return;
		if (job->kind == CRED_SCRAM)
			job->status = cred_read_scram(db, job->scram,
						      &job->scram_secret);
		else
			job->status = cred_read_cram(db, &job->cram_secret);
		ts__store_db_close(&db);
		return;
	}
}

static void
cred_job_free(struct cred_job *job)
{
	if (job->password != NULL) {
		gnutls_memset(job->password, 0, job->password_len);
		free(job->password);
	}
	free(job->data_dir);
	free(job->account);
	gnutls_memset(job, 0, sizeof(*job));
	free(job);
}

/* On the loop: report and forget the job. */
static void
cred_done(void *arg, int status)
{
	struct cred_job *job = arg;
	/* Dropped at shutdown before it ran: say so as an I/O failure. */
	int rc = status != 0 ? TS_E_IO : job->status;

	switch (job->kind) {
	case CRED_VERIFY:
		job->fn.result(rc, job->arg);
		break;
	case CRED_SCRAM:
		job->fn.scram(rc, rc == 0 ? &job->scram_secret : NULL,
			      job->arg);
		break;
	case CRED_CRAM:
		job->fn.cram(rc, rc == 0 ? &job->cram_secret : NULL, job->arg);
		break;
	}
	cred_job_free(job);
}

/* A job for `account`, with what the pool needs copied out of the kernel. */
static struct cred_job *
cred_job_new(struct ts_ctx *ctx, enum cred_kind kind, const char *account,
	     void *arg)
{
	struct ts_kernel *k = ctx->kernel;
	const char *data_dir =
		ts_cfg_str(ts_cfg_find(k->cfg, "core", NULL), "data_dir");
	struct cred_job *job = ts_xcalloc(1, sizeof(*job));

	job->kind = kind;
	job->data_dir = ts_xstrdup(data_dir);
	job->account = ts_xstrdup(account);
	job->known = ts__account_exists(k, account);
	job->arg = arg;
	return job;
}

/* Queue it; on failure the job is freed and the callback never runs. */
static int
cred_submit(struct ts_ctx *ctx, struct cred_job *job)
{
	int rc = ts_work_submit(ctx, cred_work, cred_done, job);

	if (rc != 0)
		cred_job_free(job);
	return rc;
}

int
ts_store_verify_password(struct ts_ctx *ctx, const char *account,
			 const char *password, ts_store_result_fn fn, void *arg)
{
	if (account == NULL || password == NULL || fn == NULL)
		return TS_E_INVAL;
	if (ctx->kernel->cfg == NULL)
		return TS_E_STATE;
	struct cred_job *job = cred_job_new(ctx, CRED_VERIFY, account, arg);
	job->fn.result = fn;
	job->password_len = strlen(password);
	job->password = ts_xstrndup(password, job->password_len);
	return cred_submit(ctx, job);
}

int
ts_store_scram_secret(struct ts_ctx *ctx, const char *account,
		      const char *mechanism, ts_scram_fn fn, void *arg)
{
	const struct cred_scram *sc =
		mechanism != NULL ? cred_scram_find(mechanism) : NULL;

	if (account == NULL || sc == NULL || fn == NULL)
		return TS_E_INVAL;
	if (ctx->kernel->cfg == NULL)
		return TS_E_STATE;
	struct cred_job *job = cred_job_new(ctx, CRED_SCRAM, account, arg);
	job->fn.scram = fn;
	job->scram = sc;
	return cred_submit(ctx, job);
}

int
ts_store_cram_md5_secret(struct ts_ctx *ctx, const char *account,
			 ts_cram_md5_fn fn, void *arg)
{
	if (account == NULL || fn == NULL)
		return TS_E_INVAL;
	if (ctx->kernel->cfg == NULL)
		return TS_E_STATE;
	struct cred_job *job = cred_job_new(ctx, CRED_CRAM, account, arg);
	job->fn.cram = fn;
	return cred_submit(ctx, job);
}
