/*
 * tests/unit/test-sasl-client.c — client-side SASL (kernel/sasl/client.c):
 * choosing a mechanism, the RFC 5802/7677 example exchanges replayed from
 * the client's side byte for byte, and whole exchanges of our client
 * against our own server (ts_sasl_new on a loop with a real store) for
 * every mechanism, with the right and a wrong password, plus the checks
 * a client makes of the server (nonce, iteration count, signature).
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

#include "kernel/boot.h"
#include "kernel/sasl/sasl-private.h"
#include "kernel/store/accounts.h"
#include "kernel/store/store-private.h"

#define U8(s) ((const uint8_t *)(s))

/* --- choosing ------------------------------------------------------------- */

static void
test_choose(void **state)
{
	(void)state;
	const char *all = "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 "
			  "SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS";
	assert_string_equal(ts_sasl_client_choose(all, true, true, false),
			    "SCRAM-SHA-256-PLUS");
	assert_string_equal(ts_sasl_client_choose(all, true, false, false),
			    "SCRAM-SHA-256");
	assert_string_equal(ts_sasl_client_choose("plain scram-sha-1 login",
						  true, false, false),
			    "SCRAM-SHA-1");
	assert_string_equal(ts_sasl_client_choose("PLAIN LOGIN CRAM-MD5", true,
						  false, false),
			    "CRAM-MD5");
	assert_string_equal(
		ts_sasl_client_choose("LOGIN PLAIN", true, false, false),
		"PLAIN");
	assert_string_equal(ts_sasl_client_choose("LOGIN", true, false, false),
			    "LOGIN");
	/* Password-revealing mechanisms not in the clear. */
	assert_null(ts_sasl_client_choose("PLAIN LOGIN", false, false, false));
	assert_string_equal(
		ts_sasl_client_choose("PLAIN LOGIN", false, false, true),
		"PLAIN");
	/* Prefixes are not matches; empty lists. */
	assert_null(
		ts_sasl_client_choose("SCRAM-SHA-2 PLAINX", true, true, false));
	assert_null(ts_sasl_client_choose("", true, true, false));
	assert_null(ts_sasl_client_choose(NULL, true, true, false));
	/* -PLUS only, without channel binding: nothing. */
	assert_null(ts_sasl_client_choose("SCRAM-SHA-256-PLUS", true, false,
					  false));
}

static void
test_new_refusals(void **state)
{
	(void)state;
	const char *error;
	struct ts_sasl_client_opts o = { .mechanism = "PLAIN",
					 .username = "u",
					 .password = "p" };
	assert_null(ts_sasl_client_new(&o, &error));
	assert_string_equal(error,
			    "PLAIN and LOGIN send the password: not without "
			    "TLS");
	o.mechanism = "SCRAM-SHA-256-PLUS";
	assert_null(ts_sasl_client_new(&o, &error));
	assert_non_null(error);
	o.mechanism = "DIGEST-MD5";
	assert_null(ts_sasl_client_new(&o, &error));
	assert_string_equal(error, "unknown SASL mechanism");
	o.mechanism = "CRAM-MD5";
	o.password = "";
	assert_null(ts_sasl_client_new(&o, &error));
	assert_string_equal(error, "empty user name or password");
	o.password = NULL;
	assert_null(ts_sasl_client_new(&o, &error));
	o.password = "p";
	struct ts_sasl_client *c = ts_sasl_client_new(&o, &error);
	assert_non_null(c);
	assert_string_equal(ts_sasl_client_mechanism(c), "CRAM-MD5");
	ts_sasl_client_free(&c);
	assert_null(c);
	ts_sasl_client_free(&c);
}

/* --- RFC examples ------------------------------------------------------ */

/* Replay an RFC exchange: the client must produce exactly its lines. */
static void
replay(const char *mech, const char *cnonce, const char *client_first,
       const char *server_first, const char *client_final,
       const char *server_final)
{
	const char *error;
	struct ts_sasl_client_opts o = { .mechanism = mech,
					 .username = "user",
					 .password = "pencil" };
	struct ts_sasl_client *c = ts_sasl_client_new(&o, &error);
	assert_non_null(c);
	ts__sasl_client_set_nonce(c, cnonce);
	uint8_t *resp;
	size_t len;
	assert_int_equal(ts_sasl_client_step(c, NULL, 0, &resp, &len), 0);
	assert_int_equal(len, strlen(client_first));
	assert_memory_equal(resp, client_first, len);
	free(resp);
	assert_int_equal(ts_sasl_client_step(c, U8(server_first),
					     strlen(server_first), &resp, &len),
			 0);
	assert_int_equal(len, strlen(client_final));
	assert_memory_equal(resp, client_final, len);
	free(resp);
	assert_false(ts_sasl_client_complete(c));
	assert_int_equal(ts_sasl_client_step(c, U8(server_final),
					     strlen(server_final), &resp, &len),
			 0);
	assert_int_equal(len, 0);
	free(resp);
	assert_true(ts_sasl_client_complete(c));
	assert_null(ts_sasl_client_error(c));
	ts_sasl_client_free(&c);

	/* The same with a forged server signature: refused. */
	c = ts_sasl_client_new(&o, &error);
	ts__sasl_client_set_nonce(c, cnonce);
	assert_int_equal(ts_sasl_client_step(c, NULL, 0, &resp, &len), 0);
	free(resp);
	assert_int_equal(ts_sasl_client_step(c, U8(server_first),
					     strlen(server_first), &resp, &len),
			 0);
	free(resp);
	char *forged = ts_xstrdup(server_final);
	forged[3] = forged[3] == 'A' ? 'B' : 'A';
	assert_int_equal(
		ts_sasl_client_step(c, U8(forged), strlen(forged), &resp, &len),
		TS_E_INVAL);
	assert_null(resp);
	assert_false(ts_sasl_client_complete(c));
	assert_string_equal(ts_sasl_client_error(c),
			    "wrong SCRAM server signature: the server does "
			    "not know the password");
	/* After a failure, nothing more. */
	assert_int_equal(ts_sasl_client_step(c, U8("v="), 2, &resp, &len),
			 TS_E_STATE);
	free(forged);
	ts_sasl_client_free(&c);
}

static void
test_scram_rfc(void **state)
{
	(void)state;
	/* RFC 5802 section 5. */
	replay("SCRAM-SHA-1", "fyko+d2lbbFgONRv9qkxdawL",
	       "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
	       "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
	       "s=QSXCR+Q6sek8bf92,i=4096",
	       "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
	       "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	       "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
	/* RFC 7677 section 3. */
	replay("SCRAM-SHA-256", "rOprNGfwEbeRWgbNEkqO",
	       "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
	       "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	       "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	       "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	       "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	       "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/* What the client refuses in a server-first message. */
static void
test_scram_bad_server_first(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"r=OTHERNONCE,s=QSXCR+Q6sek8bf92,i=4096", /* not ours */
		"r=abc,s=QSXCR+Q6sek8bf92,i=4096", /* not extended */
		"r=abcdef,s=!!!,i=4096", /* bad salt */
		"r=abcdef,s=,i=4096", /* empty salt */
		"r=abcdef,s=QSXCR+Q6sek8bf92,i=0", /* no iterations */
		"r=abcdef,s=QSXCR+Q6sek8bf92,i=-1",
		"r=abcdef,s=QSXCR+Q6sek8bf92,i=4096x",
		"r=abcdef,s=QSXCR+Q6sek8bf92,i=99999999", /* too many */
		"r=abcdef,s=QSXCR+Q6sek8bf92", /* missing */
		"s=QSXCR+Q6sek8bf92,r=abcdef,i=4096", /* order */
		"m=ext,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096",
		"e=unknown-user",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *error;
		struct ts_sasl_client_opts o = { .mechanism = "SCRAM-SHA-256",
						 .username = "user",
						 .password = "pencil" };
		struct ts_sasl_client *c = ts_sasl_client_new(&o, &error);
		ts__sasl_client_set_nonce(c, "abc");
		uint8_t *resp;
		size_t len;
		assert_int_equal(ts_sasl_client_step(c, NULL, 0, &resp, &len),
				 0);
		free(resp);
		int rc = ts_sasl_client_step(c, U8(bad[i]), strlen(bad[i]),
					     &resp, &len);
		if (bad[i][0] == '\0') {
			/* An empty challenge: the initial response again. */
			assert_int_equal(rc, 0);
			assert_memory_equal(resp, "n,,n=user,r=abc", len);
			free(resp);
			rc = ts_sasl_client_step(c, U8(""), 0, &resp, &len);
		}
		if (rc != TS_E_INVAL)
			fail_msg("accepted server-first \"%s\"", bad[i]);
		assert_non_null(ts_sasl_client_error(c));
		ts_sasl_client_free(&c);
	}
}

/* User names with "=" and "," are escaped; authzid goes in the header. */
static void
test_scram_escapes(void **state)
{
	(void)state;
	const char *error;
	struct ts_sasl_client_opts o = { .mechanism = "scram-sha-1",
					 .username = "a,b=c",
					 .password = "x",
					 .authzid = "z=," };
	struct ts_sasl_client *c = ts_sasl_client_new(&o, &error);
	assert_string_equal(ts_sasl_client_mechanism(c), "SCRAM-SHA-1");
	ts__sasl_client_set_nonce(c, "N");
	uint8_t *resp;
	size_t len;
	assert_int_equal(ts_sasl_client_step(c, NULL, 0, &resp, &len), 0);
	const char *want = "n,a=z=3D=2C,n=a=2Cb=3Dc,r=N";
	assert_int_equal(len, strlen(want));
	assert_memory_equal(resp, want, len);
	free(resp);
	ts_sasl_client_free(&c);

	/* Channel binding data without -PLUS: "y". */
	o.authzid = NULL;
	o.cb_type = "tls-exporter";
	o.cb_data = U8("0123");
	o.cb_len = 4;
	c = ts_sasl_client_new(&o, &error);
	ts__sasl_client_set_nonce(c, "N");
	assert_int_equal(ts_sasl_client_step(c, NULL, 0, &resp, &len), 0);
	assert_memory_equal(resp, "y,,n=", 5);
	free(resp);
	ts_sasl_client_free(&c);
	o.mechanism = "SCRAM-SHA-1-PLUS";
	c = ts_sasl_client_new(&o, &error);
	ts__sasl_client_set_nonce(c, "N");
	assert_int_equal(ts_sasl_client_step(c, NULL, 0, &resp, &len), 0);
	assert_memory_equal(resp, "p=tls-exporter,,n=", 18);
	free(resp);
	ts_sasl_client_free(&c);
}

/* --- against our own server --------------------------------------------------
 */

struct env {
	uv_loop_t loop;
	struct ts_kernel k;
	char dir[64];
};

static void
env_setup(struct env *e)
{
	memset(e, 0, sizeof(*e));
	strcpy(e->dir, "/tmp/test-sasl-client-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	sqlite3 *db;
	char *error = NULL;
	assert_int_equal(ts__store_db_open(e->dir, "alice", &db, &error), 0);
	assert_int_equal(ts__credentials_set(db, "pencil", &error), 0);
	ts__store_db_close(&db);

	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->k.loop = &e->loop;
	e->k.kctx.kernel = &e->k;
	e->k.kctx.name = "kernel";
	e->k.log.out = stderr;
	e->k.log.level = TS_LOG_WARN;
	e->k.log.max = TS_LOG_WARN;
	char *text =
		ts_xasprintf("[core]\ndata_dir = %s\n"
			     "[domain example.org]\n"
			     "[account alice]\naddresses = a@example.org\n",
			     e->dir);
	e->k.cfg = ts__cfg_parse_string("t.ini", text);
	free(text);
	for (size_t i = 0; i < e->k.cfg->sect_count; i++) {
		struct ts_cfg_sect *s = e->k.cfg->sects[i];
		const struct ts_cfg_key *t[1] = {
			strcmp(s->type, "core") == 0	 ? ts__core_keys
			: strcmp(s->type, "domain") == 0 ? ts__domain_keys
							 : ts__account_keys
		};
		ts__cfg_bind(e->k.cfg, s, t, 1);
	}
	assert_int_equal(e->k.cfg->error_count, 0);
	assert_int_equal(ts__accounts_check(e->k.cfg), 0);
	ts__accounts_apply(&e->k, e->k.cfg);
}

static void
env_teardown(struct env *e)
{
	assert_int_equal(e->k.pending_work, 0);
	ts__accounts_free(&e->k);
	ts__cfg_free(&e->k.cfg);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	char *cmd = ts_xasprintf("rm -rf '%s'", e->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

struct rec {
	int calls;
	enum ts_sasl_status status;
	uint8_t *challenge;
	size_t len;
};

static void
on_sasl(struct ts_sasl *s, enum ts_sasl_status status, const uint8_t *challenge,
	size_t len, void *arg)
{
	(void)s;
	struct rec *r = arg;
	r->calls++;
	r->status = status;
	free(r->challenge);
	r->challenge = ts_xmalloc(len + 1);
	memcpy(r->challenge, challenge, len);
	r->len = len;
}

/*
 * A whole exchange, framed as SMTP would: the client's initial response
 * (if any) goes with the first step; each CONTINUE's challenge goes to
 * the client, its response back.  Returns the server's final status and
 * whether the client was satisfied (*complete_r).
 */
static enum ts_sasl_status
exchange(struct env *e, const char *mech, const char *user,
	 const char *password, const char *cb_type, const char *cb,
	 bool *complete_r, char **account_r)
{
	const char *error;
	struct ts_sasl_client_opts co = {
		.mechanism = mech,
		.username = user,
		.password = password,
		.tls_active = true,
		.cb_type = cb_type,
		.cb_data = U8(cb),
		.cb_len = cb != NULL ? strlen(cb) : 0,
	};
	struct ts_sasl_client *c = ts_sasl_client_new(&co, &error);
	assert_non_null(c);
	struct ts_sasl_opts so = {
		.mechanism = mech,
		.tls_active = true,
		.cb_type = cb_type,
		.cb_data = U8(cb),
		.cb_len = co.cb_len,
		.hostname = "mx.example.org",
	};
	struct rec r = { 0 };
	struct ts_sasl *s = ts_sasl_new(&e->k.kctx, &so, on_sasl, &r);
	assert_non_null(s);
	uint8_t *resp;
	size_t len;
	assert_int_equal(ts_sasl_client_step(c, NULL, 0, &resp, &len), 0);
	enum ts_sasl_status st;
	bool client_failed = false;
	for (int rounds = 0;; rounds++) {
		assert_true(rounds < 6);
		r.calls = 0;
		assert_int_equal(ts_sasl_step(s, resp, resp != NULL ? len : 0),
				 0);
		free(resp);
		resp = NULL;
		uv_run(&e->loop, UV_RUN_DEFAULT);
		assert_int_equal(r.calls, 1);
		st = r.status;
		if (st == TS_SASL_OK && r.len > 0) {
			/* SMTP: the success data as a last 334. */
			if (ts_sasl_client_step(c, r.challenge, r.len, &resp,
						&len) != 0)
				client_failed = true;
			free(resp);
			resp = NULL;
		}
		if (st != TS_SASL_CONTINUE)
			break;
		if (ts_sasl_client_step(c, r.challenge, r.len, &resp, &len) !=
		    0) {
			client_failed = true;
			ts_sasl_cancel(s);
			break;
		}
	}
	*complete_r = !client_failed && ts_sasl_client_complete(c);
	if (account_r != NULL)
		*account_r = ts_sasl_account(s) != NULL
				     ? ts_xstrdup(ts_sasl_account(s))
				     : NULL;
	free(r.challenge);
	ts_sasl_free(&s);
	ts_sasl_client_free(&c);
	return st;
}

static void
test_against_server(void **state)
{
	(void)state;
	struct env e;
	env_setup(&e);
	static const char *const mechs[] = { "PLAIN", "LOGIN", "CRAM-MD5",
					     "SCRAM-SHA-1", "SCRAM-SHA-256" };
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
		bool complete;
		char *account = NULL;
		enum ts_sasl_status st =
			exchange(&e, mechs[i], "alice", "pencil", NULL, NULL,
				 &complete, &account);
		if (st != TS_SASL_OK)
			fail_msg("%s: right password refused", mechs[i]);
		assert_true(complete);
		assert_string_equal(account, "alice");
		free(account);
		/* By address too. */
		st = exchange(&e, mechs[i], "a@example.org", "pencil", NULL,
			      NULL, &complete, NULL);
		assert_int_equal(st, TS_SASL_OK);
		st = exchange(&e, mechs[i], "alice", "pencil2", NULL, NULL,
			      &complete, &account);
		if (st != TS_SASL_FAIL)
			fail_msg("%s: wrong password not refused", mechs[i]);
		assert_null(account);
	}
	/* -PLUS with the same channel binding on both ends. */
	static const char *const plus[] = { "SCRAM-SHA-1-PLUS",
					    "SCRAM-SHA-256-PLUS" };
	for (size_t i = 0; i < 2; i++) {
		bool complete;
		assert_int_equal(exchange(&e, plus[i], "alice", "pencil",
					  "tls-exporter", "0123456789abcdef",
					  &complete, NULL),
				 TS_SASL_OK);
		assert_true(complete);
		assert_int_equal(exchange(&e, plus[i], "alice", "wrong",
					  "tls-exporter", "0123456789abcdef",
					  &complete, NULL),
				 TS_SASL_FAIL);
	}
	/* Plain SCRAM where the server offers -PLUS and we have binding
	 * data: our "y" is a downgrade signal, refused. */
	bool complete;
	assert_int_equal(exchange(&e, "SCRAM-SHA-256", "alice", "pencil",
				  "tls-exporter", "0123456789abcdef", &complete,
				  NULL),
			 TS_SASL_FAIL);
	env_teardown(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_new_refusals),
		cmocka_unit_test(test_scram_rfc),
		cmocka_unit_test(test_scram_bad_server_first),
		cmocka_unit_test(test_scram_escapes),
		cmocka_unit_test(test_against_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
