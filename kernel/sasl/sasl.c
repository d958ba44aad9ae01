/*
 * kernel/sasl/sasl.c — one server-side SASL exchange (tessera/sasl.h):
 * picks the mechanism, maps the user name to an account, fetches the
 * account's secret from the store and drives the pure mechanism code of
 * mech.c and scram.c.
 *
 * Store lookups run on the work pool and answer later on the loop.  The
 * exchange may be freed meanwhile (the client left), and the store's
 * callback cannot be withdrawn, so each lookup carries a small request
 * that points back at the exchange; cancelling clears that pointer and
 * the callback then only frees the request.
 *
 * Failures are uniform.  An unknown user name still goes through the
 * store (which spends the same work on a stand-in), SCRAM hands out a
 * deterministic made-up salt for it, and a refused authorization identity
 * is only reported after the credentials were checked.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "kernel/kernel.h"
#include "kernel/sasl/sasl-private.h"
#include "kernel/store/accounts.h"

enum sasl_kind { SASL_PLAIN, SASL_LOGIN, SASL_CRAM_MD5, SASL_SCRAM };

struct sasl_mech {
	const char *name;
	enum sasl_kind kind;
	bool plaintext; /* the password itself crosses the wire */
	bool plus; /* needs channel binding */
};

/* Best first: the order ts_sasl_mechanisms advertises. */
static const struct sasl_mech sasl_mechs[] = {
	{ "SCRAM-SHA-256-PLUS", SASL_SCRAM, false, true },
	{ "SCRAM-SHA-256", SASL_SCRAM, false, false },
	{ "SCRAM-SHA-1-PLUS", SASL_SCRAM, false, true },
	{ "SCRAM-SHA-1", SASL_SCRAM, false, false },
	{ "CRAM-MD5", SASL_CRAM_MD5, false, false },
	{ "PLAIN", SASL_PLAIN, true, false },
	{ "LOGIN", SASL_LOGIN, true, false },
};

enum sasl_state {
	SASL_START, /* waiting for the initial response */
	SASL_PLAIN_WAIT, /* PLAIN asked with an empty challenge */
	SASL_LOGIN_USER, /* sent "Username:" */
	SASL_LOGIN_PASSWORD, /* sent "Password:" */
	SASL_CRAM_WAIT, /* sent the CRAM-MD5 challenge */
	SASL_SCRAM_FIRST, /* SCRAM asked with an empty challenge */
	SASL_SCRAM_FINAL, /* sent server-first */
	SASL_BUSY, /* a store lookup is pending */
	SASL_DONE, /* reported a final status, or cancelled */
};

/* One pending store lookup; owned by the store's callback. */
struct sasl_lookup {
	struct ts_sasl *s; /* NULL once the exchange was cancelled */
};

struct ts_sasl {
	struct ts_ctx *ctx;
	const struct sasl_mech *mech;
	ts_sasl_fn fn;
	void *arg;
	enum sasl_state state;
	struct sasl_lookup *lookup;
	char *hostname;
	char *username; /* the authentication identity as given */
	char *account; /* what it names, NULL if nothing */
	bool authzid_ok; /* no authzid, or one naming the same account */
	bool authenticated;
	const char *error; /* static text for logs */
	char *cram_challenge; /* CRAM-MD5 */
	uint8_t cram_digest[16];
	struct ts__scram scram; /* SCRAM */
};

static const char sasl_all_mechs[] =
	"SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 "
	"CRAM-MD5 PLAIN LOGIN";

const char *
ts_sasl_mechanisms(bool tls_active, bool channel_binding, bool allow_plaintext)
{
	bool plus = tls_active && channel_binding;
	bool plaintext = tls_active || allow_plaintext;

	if (plus && plaintext)
		return sasl_all_mechs;
	if (plus)
		return "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS "
		       "SCRAM-SHA-1 CRAM-MD5";
	if (plaintext)
		return "SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN";
	return "SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5";
}

/*
 * The key behind SCRAM's made-up salts for unknown users.  Process-wide
 * rather than in struct ts_kernel: it is fixed after its first use, is no
 * configuration, and only has to stay the same while the process runs.
 */
static uint8_t sasl_fake_key[32];
static uv_once_t sasl_fake_key_once = UV_ONCE_INIT;

static void
sasl_fake_key_init(void)
{
	if (gnutls_rnd(GNUTLS_RND_KEY, sasl_fake_key, sizeof(sasl_fake_key)) !=
	    0)
		abort(); /* a guessable key would reveal unknown users */
}

struct ts_sasl *
ts_sasl_new(struct ts_ctx *ctx, const struct ts_sasl_opts *opts, ts_sasl_fn fn,
	    void *arg)
{
	const struct sasl_mech *mech = NULL;
	bool cb = opts->tls_active && opts->cb_type != NULL &&
		  opts->cb_type[0] != '\0' && opts->cb_data != NULL &&
		  opts->cb_len > 0;

	if (opts->mechanism == NULL || fn == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(sasl_mechs) / sizeof(sasl_mechs[0]); i++)
		if (strcasecmp(opts->mechanism, sasl_mechs[i].name) == 0)
			mech = &sasl_mechs[i];
	if (mech == NULL || (mech->plus && !cb) ||
	    (mech->plaintext && !opts->tls_active && !opts->allow_plaintext))
		return NULL;

	struct ts_sasl *s = ts_xcalloc(1, sizeof(*s));
	s->ctx = ctx;
	s->mech = mech;
	s->fn = fn;
	s->arg = arg;
	s->state = SASL_START;
	s->hostname = ts_xstrdup(opts->hostname != NULL ? opts->hostname
							: "localhost");
	if (mech->kind == SASL_SCRAM &&
	    ts__scram_init(&s->scram, mech->name, cb ? opts->cb_type : NULL,
			   opts->cb_data, opts->cb_len) != 0)
		abort(); /* the table names only SCRAM mechanisms it knows */
	return s;
}

/* --- reporting and lookups ----------------------------------------------- */

/*
 * Hand a step's outcome to the protocol.  The callback may free s, so
 * nothing touches s after it: callers return right away.
 */
static void
sasl_report(struct ts_sasl *s, enum ts_sasl_status status, const char *error,
	    const void *challenge, size_t len)
{
	if (status != TS_SASL_CONTINUE)
		s->state = SASL_DONE;
	if (status == TS_SASL_OK)
		s->authenticated = true;
	else if (status != TS_SASL_CONTINUE)
		s->error = error;
	s->fn(s, status, challenge != NULL ? challenge : "", len, s->arg);
}

/* Ask for the client's next response with a challenge (a string). */
static void
sasl_continue(struct ts_sasl *s, enum sasl_state next, const char *challenge)
{
	s->state = next;
	sasl_report(s, TS_SASL_CONTINUE, NULL, challenge, strlen(challenge));
}

/*
 * The account `name` identifies: an account's name (ASCII letters in any
 * case) or one of its configured addresses (exactly: subaddresses and
 * catchalls are for mail, not for logging in).  Caller frees; NULL when
 * it names none.
 */
static char *
sasl_resolve(const struct ts_sasl *s, const char *name)
{
	struct ts_kernel *k = s->ctx->kernel;

	if (strchr(name, '@') == NULL) {
		char *lower = ts_xstrdup(name);
		for (char *p = lower; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		if (ts__account_name_ok(lower) && ts__account_exists(k, lower))
			return lower;
		free(lower);
		return NULL;
	}
	struct ts_address_match m;
	if (ts_address_lookup(s->ctx, name, &m) == 0 &&
	    m.kind == TS_ADDRESS_EXACT)
		return ts_xstrdup(m.account);
	return NULL;
}

/*
 * Remember the authentication identity and the account it names, and
 * whether the authorization identity (NULL: none) is acceptable: absent,
 * the same text, or naming the same account.  Anything else is refused
 * (no account may act for another), but only after the credentials were
 * checked, so the refusal does not come sooner than a wrong password's.
 */
static void
sasl_identify(struct ts_sasl *s, const char *username, const char *authzid)
{
	free(s->username);
	free(s->account);
	s->username = ts_xstrdup(username);
	s->account = sasl_resolve(s, username);
	s->authzid_ok = true;
	if (authzid != NULL && strcmp(authzid, username) != 0) {
		char *other = sasl_resolve(s, authzid);
		s->authzid_ok = other != NULL && s->account != NULL &&
				strcmp(other, s->account) == 0;
		free(other);
	}
}

/*
 * The name to ask the store about: the account, or for an unknown user
 * the name as given (the store knows no such account and answers
 * TS_E_NOTFOUND after the same work).
 */
static const char *
sasl_store_name(const struct ts_sasl *s)
{
	return s->account != NULL ? s->account : s->username;
}

static struct sasl_lookup *
sasl_lookup_start(struct ts_sasl *s)
{
	struct sasl_lookup *l = ts_xcalloc(1, sizeof(*l));

	l->s = s;
	s->lookup = l;
	s->state = SASL_BUSY;
	return l;
}

/*
 * The store answered (or could not be asked): the exchange, or NULL when
 * it was cancelled meanwhile.  Frees the lookup.
 */
static struct ts_sasl *
sasl_lookup_end(struct sasl_lookup *l)
{
	struct ts_sasl *s = l->s;

	free(l);
	if (s != NULL)
		s->lookup = NULL;
	return s;
}

/* After ts_store_* refused to queue a lookup (its callback never runs). */
static void
sasl_lookup_failed(struct ts_sasl *s, struct sasl_lookup *l)
{
	(void)sasl_lookup_end(l);
	sasl_report(s, TS_SASL_TEMPFAIL, "credential lookup could not start",
		    NULL, 0);
}

/* --- PLAIN and LOGIN: check a password --------------------------------- */

static void
sasl_password_done(int status, void *arg)
{
	struct ts_sasl *s = sasl_lookup_end(arg);

	if (s == NULL)
		return;
	switch (status) {
	case 0:
		if (s->account != NULL && s->authzid_ok)
			sasl_report(s, TS_SASL_OK, NULL, NULL, 0);
		else
			sasl_report(s, TS_SASL_FAIL,
				    "authorization identity refused", NULL, 0);
		return;
	case TS_E_INVAL:
		sasl_report(s, TS_SASL_FAIL, "wrong password", NULL, 0);
		return;
	case TS_E_NOTFOUND:
		sasl_report(s, TS_SASL_FAIL, "no such user, or no password set",
			    NULL, 0);
		return;
	default:
		sasl_report(s, TS_SASL_TEMPFAIL, "credential store error", NULL,
			    0);
		return;
	}
}

/* Check password for the identified user; wipes and frees it. */
static void
sasl_check_password(struct ts_sasl *s, char *password)
{
	struct sasl_lookup *l = sasl_lookup_start(s);
	int rc = ts_store_verify_password(s->ctx, sasl_store_name(s), password,
					  sasl_password_done, l);

	gnutls_memset(password, 0, strlen(password));
	free(password);
	if (rc != 0)
		sasl_lookup_failed(s, l);
}

static void
sasl_plain(struct ts_sasl *s, const uint8_t *data, size_t len)
{
	char *authzid, *authcid, *password;
	const char *error;

	if (ts__plain_parse(data, len, &authzid, &authcid, &password, &error) !=
	    TS_SASL_CONTINUE) {
		sasl_report(s, TS_SASL_ERROR, error, NULL, 0);
		return;
	}
	sasl_identify(s, authcid, authzid);
	free(authzid);
	free(authcid);
	sasl_check_password(s, password);
}

static void
sasl_login(struct ts_sasl *s, const uint8_t *data, size_t len, bool password)
{
	char *text;
	const char *error;

	if (ts__login_parse(data, len, password, &text, &error) !=
	    TS_SASL_CONTINUE) {
		sasl_report(s, TS_SASL_ERROR, error, NULL, 0);
		return;
	}
	if (!password) {
		sasl_identify(s, text, NULL);
		free(text);
		sasl_continue(s, SASL_LOGIN_PASSWORD, "Password:");
		return;
	}
	sasl_check_password(s, text);
}

/* --- CRAM-MD5 ----------------------------------------------------------- */

static void
sasl_cram_done(int status, const struct ts_cram_md5_secret *secret, void *arg)
{
	struct ts_sasl *s = sasl_lookup_end(arg);

	if (s == NULL)
		return;
	if (status == 0) {
		if (ts__cram_md5_check(secret, s->cram_challenge,
				       s->cram_digest) &&
		    s->account != NULL)
			sasl_report(s, TS_SASL_OK, NULL, NULL, 0);
		else
			sasl_report(s, TS_SASL_FAIL, "wrong CRAM-MD5 digest",
				    NULL, 0);
	} else if (status == TS_E_NOTFOUND) {
		sasl_report(s, TS_SASL_FAIL, "no such user, or no password set",
			    NULL, 0);
	} else {
		sasl_report(s, TS_SASL_TEMPFAIL, "credential store error", NULL,
			    0);
	}
}

static void
sasl_cram(struct ts_sasl *s, const uint8_t *data, size_t len)
{
	char *username;
	const char *error;

	if (ts__cram_md5_parse(data, len, &username, s->cram_digest, &error) !=
	    TS_SASL_CONTINUE) {
		sasl_report(s, TS_SASL_ERROR, error, NULL, 0);
		return;
	}
	sasl_identify(s, username, NULL);
	free(username);
	struct sasl_lookup *l = sasl_lookup_start(s);
	if (ts_store_cram_md5_secret(s->ctx, sasl_store_name(s), sasl_cram_done,
				     l) != 0)
		sasl_lookup_failed(s, l);
}

/* --- SCRAM -------------------------------------------------------------- */

static void
sasl_scram_secret_done(int status, const struct ts_scram_secret *secret,
		       void *arg)
{
	struct ts_sasl *s = sasl_lookup_end(arg);
	struct ts_scram_secret fake;

	if (s == NULL)
		return;
	/* No secret: go on with a made-up one and fail at the end. */
	bool unknown = status != 0 || s->account == NULL;
	if (status != 0 && status != TS_E_NOTFOUND) {
		sasl_report(s, TS_SASL_TEMPFAIL, "credential store error", NULL,
			    0);
		return;
	}
	if (unknown) {
		uv_once(&sasl_fake_key_once, sasl_fake_key_init);
		ts__scram_fake_secret(&s->scram, sasl_fake_key, &fake);
		secret = &fake;
	}
	char *nonce = ts__scram_server_nonce();
	const char *first =
		ts__scram_server_first(&s->scram, secret, unknown, nonce);
	free(nonce);
	gnutls_memset(&fake, 0, sizeof(fake));
	if (first == NULL) {
		sasl_report(s, TS_SASL_TEMPFAIL,
			    "stored SCRAM secret does not fit the mechanism",
			    NULL, 0);
		return;
	}
	sasl_continue(s, SASL_SCRAM_FINAL, first);
}

static void
sasl_scram_first(struct ts_sasl *s, const uint8_t *data, size_t len)
{
	const char *error;
	enum ts_sasl_status st =
		ts__scram_client_first(&s->scram, data, len, &error);

	if (st != TS_SASL_CONTINUE) {
		/* The user name, if it parsed, is not ours to report. */
		sasl_report(s, st, error, NULL, 0);
		return;
	}
	sasl_identify(s, s->scram.username, s->scram.authzid);
	struct sasl_lookup *l = sasl_lookup_start(s);
	if (ts_store_scram_secret(s->ctx, sasl_store_name(s),
				  ts__scram_secret_name(&s->scram),
				  sasl_scram_secret_done, l) != 0)
		sasl_lookup_failed(s, l);
}

static void
sasl_scram_final(struct ts_sasl *s, const uint8_t *data, size_t len)
{
	const char *error, *server_final;
	enum ts_sasl_status st = ts__scram_client_final(&s->scram, data, len,
							&server_final, &error);

	if (st == TS_SASL_OK && !s->authzid_ok) {
		sasl_report(s, TS_SASL_FAIL, "authorization identity refused",
			    NULL, 0);
		return;
	}
	if (st == TS_SASL_OK)
		sasl_report(s, st, NULL, server_final, strlen(server_final));
	else
		sasl_report(s, st, error, NULL, 0);
}

/* --- the public steps ----------------------------------------------------- */

int
ts_sasl_step(struct ts_sasl *s, const uint8_t *data, size_t len)
{
	if (s->state == SASL_BUSY || s->state == SASL_DONE)
		return TS_E_STATE;
	if (data == NULL || len == 0) {
		data = (const uint8_t *)"";
		len = 0;
	}
	if (len > TS__SASL_MAX_RESPONSE) {
		sasl_report(s, TS_SASL_ERROR, "response longer than 4096 bytes",
			    NULL, 0);
		return 0;
	}

	switch (s->state) {
	case SASL_START:
		/* Nothing yet: ask with the mechanism's first challenge. */
		if (len == 0 && s->mech->kind == SASL_PLAIN)
			sasl_continue(s, SASL_PLAIN_WAIT, "");
		else if (len == 0 && s->mech->kind == SASL_LOGIN)
			sasl_continue(s, SASL_LOGIN_USER, "Username:");
		else if (len == 0 && s->mech->kind == SASL_SCRAM)
			sasl_continue(s, SASL_SCRAM_FIRST, "");
		else if (s->mech->kind == SASL_CRAM_MD5 && len > 0)
			sasl_report(s, TS_SASL_ERROR,
				    "CRAM-MD5 takes no initial response", NULL,
				    0);
		else if (s->mech->kind == SASL_CRAM_MD5) {
			s->cram_challenge = ts__cram_md5_challenge(
				s->hostname, (int64_t)time(NULL));
			sasl_continue(s, SASL_CRAM_WAIT, s->cram_challenge);
		} else if (s->mech->kind == SASL_PLAIN)
			sasl_plain(s, data, len);
		else if (s->mech->kind == SASL_LOGIN)
			/* Some clients send the user name right away. */
			sasl_login(s, data, len, false);
		else
			sasl_scram_first(s, data, len);
		return 0;
	case SASL_PLAIN_WAIT:
		sasl_plain(s, data, len);
		return 0;
	case SASL_LOGIN_USER:
		sasl_login(s, data, len, false);
		return 0;
	case SASL_LOGIN_PASSWORD:
		sasl_login(s, data, len, true);
		return 0;
	case SASL_CRAM_WAIT:
		sasl_cram(s, data, len);
		return 0;
	case SASL_SCRAM_FIRST:
		sasl_scram_first(s, data, len);
		return 0;
	case SASL_SCRAM_FINAL:
		sasl_scram_final(s, data, len);
		return 0;
	case SASL_BUSY:
	case SASL_DONE:
		break;
	}
	return TS_E_STATE;
}

const char *
ts_sasl_mechanism(const struct ts_sasl *s)
{
	return s->mech->name;
}

const char *
ts_sasl_username(const struct ts_sasl *s)
{
	return s->username;
}

const char *
ts_sasl_account(const struct ts_sasl *s)
{
	return s->authenticated ? s->account : NULL;
}

const char *
ts_sasl_error(const struct ts_sasl *s)
{
	return s->state == SASL_DONE ? s->error : NULL;
}

void
ts_sasl_cancel(struct ts_sasl *s)
{
	if (s->lookup != NULL) {
		s->lookup->s = NULL; /* its callback now only frees it */
		s->lookup = NULL;
	}
	s->state = SASL_DONE;
}

void
ts_sasl_free(struct ts_sasl **sp)
{
	struct ts_sasl *s = sp != NULL ? *sp : NULL;

	if (s == NULL)
		return;
	*sp = NULL;
	ts_sasl_cancel(s);
	if (s->mech->kind == SASL_SCRAM)
		ts__scram_clear(&s->scram);
	free(s->hostname);
	free(s->username);
	free(s->account);
	free(s->cram_challenge);
	gnutls_memset(s, 0, sizeof(*s));
	free(s);
}
