/*
 * modules/dkim/hooks.c — the dkim module's two hooks.
 *
 * Verification (smtp_data, parallel with the other checks): the spool
 * file is read and hashed on the work pool, the key records are looked up
 * on the loop with the kernel resolver (all at once), the public-key
 * checks run on the pool again, and the results — one per signature, or
 * "none" for an unsigned message — are attached to the transaction for
 * Authentication-Results.
 *
 * Signing (submit_message): on the pool, the header the message will have
 * (the lines smtp put in front of it — Date, Message-ID — then the
 * file's) is read, the From domain picked, and when it has a [dkim DOMAIN]
 * section one signature per key is made; back on the loop they are added
 * with ts_hook_add_header.  Signing problems are logged and the message
 * goes unsigned rather than refused.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "module.h"

#define DKIM_CHUNK (64 * 1024)

/* --- verification --------------------------------------------------------- */

struct dkim_vjob;

struct dkim_lookup {
	struct dkim_vjob *job;
	size_t index;
	struct ts_dns_query *query;
	enum dkim_dns dns;
	char *txt;
	size_t txt_len;
	bool answered;
	enum ts_dns_security security;
};

struct dkim_vjob {
	struct ts_ctx *ctx;
	ts_hook_token token;
	char *path;
	struct dkim_verifier v;
	char io_error[128];
	struct dkim_lookup *lookups;
	size_t pending;
	bool cancelled;
	bool in_work;
};

static void
dkim_vjob_free(struct dkim_vjob *job)
{
	for (size_t i = 0; i < job->v.count && job->lookups != NULL; i++) {
		ts_dns_cancel(&job->lookups[i].query);
		free(job->lookups[i].txt);
	}
	free(job->lookups);
	dkim_verifier_free(&job->v);
	free(job->path);
	free(job);
}

static void
dkim_vjob_cancel(void *arg)
{
	struct dkim_vjob *job = arg;
	job->cancelled = true;
	if (!job->in_work)
		dkim_vjob_free(job);
}

static void
dkim_read_work(void *arg)
{
	struct dkim_vjob *job = arg;
	int fd = open(job->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(job->io_error, sizeof(job->io_error), "open: %s",
			 strerror(errno));
		return;
	}
	char *buf = ts_xmalloc(DKIM_CHUNK);
	for (;;) {
		ssize_t n = read(fd, buf, DKIM_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(job->io_error, sizeof(job->io_error),
				 "read: %s", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		dkim_verifier_feed(&job->v, buf, (size_t)n);
	}
	free(buf);
	close(fd);
	if (job->io_error[0] == '\0')
		dkim_verifier_finish(&job->v);
}

static void
dkim_key_work(void *arg)
{
	struct dkim_vjob *job = arg;
	for (size_t i = 0; i < job->v.count; i++) {
		struct dkim_lookup *l = &job->lookups[i];
		if (l->answered)
			dkim_verifier_key(&job->v, i, l->dns, l->txt,
					  l->txt_len);
	}
}

/* Attach the results and let the pipeline go on. */
static void
dkim_vjob_report(struct dkim_vjob *job)
{
	struct ts_hook_call *call = ts_hook_lookup(job->ctx, job->token);
	struct ts_txn *txn = call != NULL ? ts_hook_call_txn(call) : NULL;
	if (txn != NULL && job->v.count == 0) {
		struct ts_auth_result r = { .method = "dkim",
					    .result = "none" };
		ts_txn_add_auth_result(txn, &r);
	}
	for (size_t i = 0; txn != NULL && i < job->v.count; i++) {
		struct dkim_vsig *s = &job->v.sigs[i];
		struct ts_auth_result r = { .method = "dkim" };
		r.result = dkim_result_name(s->result);
		r.reason = s->reason[0] != '\0' ? s->reason : NULL;
		char comment[128];
		comment[0] = '\0';
		if (s->comment[0] != '\0')
			snprintf(comment, sizeof(comment), "%s", s->comment);
		if (job->lookups != NULL && job->lookups[i].answered &&
		    job->lookups[i].dns != DKIM_DNS_TEMP) {
			size_t n = strlen(comment);
			snprintf(
				comment + n, sizeof(comment) - n, "%sdnssec %s",
				n > 0 ? "; " : "",
				ts_dns_security_name(job->lookups[i].security));
		}
		r.comment = comment[0] != '\0' ? comment : NULL;
		const char *d = s->parsed ? s->sig.d : s->raw_d;
		const char *sel = s->parsed ? s->sig.s : s->raw_s;
		if (d != NULL && d[0] != '\0')
			r.props[r.prop_count++] =
				(struct ts_auth_prop){ "header.d", d };
		if (sel != NULL && sel[0] != '\0')
			r.props[r.prop_count++] =
				(struct ts_auth_prop){ "header.s", sel };
		if (s->b_prefix != NULL && s->b_prefix[0] != '\0')
			r.props[r.prop_count++] =
				(struct ts_auth_prop){ "header.b",
						       s->b_prefix };
		if (ts_txn_add_auth_result(txn, &r) < 0)
			ts_log(job->ctx, TS_LOG_WARN,
			       "dkim: result for d=%s not attached",
			       d != NULL ? d : "?");
		ts_log(job->ctx, TS_LOG_DEBUG, "dkim=%s d=%s s=%s%s%s",
		       r.result, d != NULL ? d : "", sel != NULL ? sel : "",
		       r.reason != NULL ? " reason=" : "",
		       r.reason != NULL ? r.reason : "");
	}
	if (job->v.ignored > 0) {
		/*
		 * One entry says the rest went unchecked (bounded work: a
		 * hundred signatures cost no more than max_signatures).
		 */
		char reason[96];
		snprintf(reason, sizeof(reason),
			 "%zu more signatures not checked (max_signatures)",
			 job->v.ignored);
		struct ts_auth_result r = { .method = "dkim",
					    .result = "permerror",
					    .reason = reason };
		if (txn != NULL)
			(void)ts_txn_add_auth_result(txn, &r);
		ts_log(job->ctx, TS_LOG_INFO,
		       "dkim: %zu signatures past max_signatures ignored",
		       job->v.ignored);
	}
	ts_hook_resume(job->ctx, job->token, TS_HOOK_CONTINUE);
}

static void
dkim_key_done(void *arg, int status)
{
	struct dkim_vjob *job = arg;
	job->in_work = false;
	if (!job->cancelled && status == 0)
		dkim_vjob_report(job);
	else if (!job->cancelled)
		ts_hook_resume(job->ctx, job->token, TS_HOOK_CONTINUE);
	dkim_vjob_free(job);
}

static void
dkim_keys_ready(struct dkim_vjob *job)
{
	job->in_work = true;
	if (ts_work_submit(job->ctx, dkim_key_work, dkim_key_done, job) < 0) {
		job->in_work = false;
		ts_hook_resume(job->ctx, job->token, TS_HOOK_CONTINUE);
		dkim_vjob_free(job);
	}
}

static void
dkim_dns_done(const struct ts_dns_answer *a, void *arg)
{
	struct dkim_lookup *l = arg;
	struct dkim_vjob *job = l->job;
	l->query = NULL;
	l->answered = true;
	l->security = a->security;
	switch (a->status) {
	case TS_DNS_OK: {
		l->dns = DKIM_DNS_OK;
		/*
		 * Several TXT records at the selector: the first that is a
		 * valid key record (RFC 6376 3.6.2.2 lets the verifier
		 * choose; other TXT data sharing the name, e.g. a site
		 * verification string, must not spoil the key).  None
		 * valid: the first, so its error is what gets reported.
		 */
		size_t pick = 0;
		for (size_t i = 0; a->count > 1 && i < a->count; i++) {
			struct dkim_key key;
			char err[64];
			if (dkim_key_parse(a->records[i].u.txt.text,
					   a->records[i].u.txt.len, &key, err,
					   sizeof(err)) == 0) {
				dkim_key_clear(&key);
				pick = i;
				break;
			}
		}
		const struct ts_dns_record *rec = &a->records[pick];
		l->txt = ts_xmalloc(rec->u.txt.len + 1);
		memcpy(l->txt, rec->u.txt.text, rec->u.txt.len);
		l->txt[rec->u.txt.len] = '\0';
		l->txt_len = rec->u.txt.len;
		break;
	}
	case TS_DNS_NXDOMAIN:
	case TS_DNS_NODATA:
		l->dns = DKIM_DNS_NONE;
		break;
	case TS_DNS_TEMPFAIL:
		l->dns = DKIM_DNS_TEMP;
		break;
	case TS_DNS_PERMFAIL:
		l->dns = DKIM_DNS_PERM;
		break;
	}
	if (a->security == TS_DNS_BOGUS)
		l->dns = DKIM_DNS_TEMP;
	if (--job->pending == 0)
		dkim_keys_ready(job);
}

static void
dkim_read_done(void *arg, int status)
{
	struct dkim_vjob *job = arg;
	job->in_work = false;
	if (job->cancelled) {
		dkim_vjob_free(job);
		return;
	}
	if (status != 0 || job->io_error[0] != '\0') {
		ts_log(job->ctx, TS_LOG_WARN, "dkim: %s: %s", job->path,
		       status != 0 ? "shutting down" : job->io_error);
		ts_hook_resume(job->ctx, job->token, TS_HOOK_CONTINUE);
		dkim_vjob_free(job);
		return;
	}
	job->lookups = ts_xcalloc(job->v.count + 1, sizeof(*job->lookups));
	/* Count first: a callback never runs before ts_dns_lookup returns,
	 * but pending must cover every query before any can finish. */
	for (size_t i = 0; i < job->v.count; i++) {
		job->lookups[i].job = job;
		job->lookups[i].index = i;
		if (!job->v.sigs[i].done)
			job->pending++;
	}
	if (job->pending == 0) {
		dkim_vjob_report(job);
		dkim_vjob_free(job);
		return;
	}
	/* Guard against finishing inside the loop below. */
	job->pending++;
	for (size_t i = 0; i < job->v.count; i++) {
		struct dkim_lookup *l = &job->lookups[i];
		if (job->v.sigs[i].done)
			continue;
		l->query = ts_dns_lookup(job->ctx, job->v.sigs[i].query,
					 TS_DNS_TXT, dkim_dns_done, l);
		if (l->query == NULL) {
			l->answered = true;
			l->dns = DKIM_DNS_TEMP;
			job->pending--;
		}
	}
	if (--job->pending == 0)
		dkim_keys_ready(job);
}

int
dkim_verify_hook(struct ts_hook_call *call)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	struct dkim_settings *set = dkim_settings(ctx);
	struct ts_txn *txn = ts_hook_call_txn(call);
	/*
	 * Submitted mail (an authenticated account) is ours to sign, not
	 * to check: smtp writes no Authentication-Results for it.
	 */
	if (!set->verify || txn == NULL || ts_txn_account(txn) != NULL)
		return TS_HOOK_CONTINUE;
	const char *path = ts_txn_message_path(txn);
	if (path == NULL)
		path = ts_hook_call_arg(call);
	if (path == NULL)
		return TS_HOOK_CONTINUE;
	struct dkim_vjob *job = ts_xcalloc(1, sizeof(*job));
	job->ctx = ctx;
	job->path = ts_xstrdup(path);
	dkim_verifier_init(&job->v, set->max_signatures, (uint64_t)time(NULL));
	job->in_work = true;
	if (ts_work_submit(ctx, dkim_read_work, dkim_read_done, job) < 0) {
		dkim_vjob_free(job);
		return TS_HOOK_CONTINUE;
	}
	job->token = ts_hook_suspend(call, dkim_vjob_cancel, job);
	return TS_HOOK_PENDING;
}

/* --- signing -------------------------------------------------------------- */

struct dkim_sjob {
	struct ts_ctx *ctx;
	ts_hook_token token;
	const struct dkim_settings *set;
	char *path;
	char *prefix; /* the header lines smtp added, CRLF-ended */
	size_t prefix_len;
	char **values; /* the signatures made */
	size_t value_count;
	char *domain;
	char error[160];
	bool cancelled;
	bool in_work;
};

static void
dkim_sjob_free(struct dkim_sjob *job)
{
	for (size_t i = 0; i < job->value_count; i++)
		free(job->values[i]);
	free(job->values);
	free(job->domain);
	free(job->prefix);
	free(job->path);
	free(job);
}

static void
dkim_sjob_cancel(void *arg)
{
	struct dkim_sjob *job = arg;
	job->cancelled = true;
	if (!job->in_work)
		dkim_sjob_free(job);
}

/* Offset after the empty line ending the header in buf, or 0. */
static size_t
dkim_find_body(const char *buf, size_t len)
{
	if (len >= 1 && buf[0] == '\n')
		return 1;
	if (len >= 2 && buf[0] == '\r' && buf[1] == '\n')
		return 2;
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static void
dkim_sign_work(void *arg)
{
	struct dkim_sjob *job = arg;
	const struct dkim_settings *set = job->set;
	int fd = open(job->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(job->error, sizeof(job->error), "open: %s",
			 strerror(errno));
		return;
	}
	/* The header: the prefix, then the file's up to its empty line. */
	char *hdr = ts_xmalloc(job->prefix_len + DKIM_CHUNK + 1);
	memcpy(hdr, job->prefix, job->prefix_len);
	size_t hlen = job->prefix_len, body_at = 0;
	bool eof = false;
	while (body_at == 0 && !eof) {
		if (hlen - job->prefix_len > 1024 * 1024) {
			snprintf(job->error, sizeof(job->error),
				 "header too large");
			break;
		}
		hdr = ts_xrealloc(hdr, hlen + DKIM_CHUNK + 1);
		ssize_t n = read(fd, hdr + hlen, DKIM_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(job->error, sizeof(job->error), "read: %s",
				 strerror(errno));
			break;
		}
		if (n == 0)
			eof = true;
		hlen += (size_t)n;
		size_t b = dkim_find_body(hdr + job->prefix_len,
					  hlen - job->prefix_len);
		if (b > 0)
			body_at = job->prefix_len + b;
	}
	if (job->error[0] != '\0') {
		free(hdr);
		close(fd);
		return;
	}
	if (body_at == 0)
		body_at = hlen;
	size_t froms = 0;
	job->domain = dkim_from_domain(hdr, body_at, &froms);
	const struct dkim_domain *dom = NULL;
	for (size_t i = 0; job->domain != NULL && i < set->domain_count; i++)
		if (strcasecmp(set->domains[i].name, job->domain) == 0)
			dom = &set->domains[i];
	if (dom == NULL || dom->key_count == 0 || froms != 1) {
		if (froms > 1)
			snprintf(job->error, sizeof(job->error),
				 "%zu From fields: not signed", froms);
		free(hdr);
		close(fd);
		return;
	}
	struct dkim_sign_params p = {
		.domain = dom->name,
		.keys = dom->keys,
		.key_count = dom->key_count,
		.hcanon = set->hcanon,
		.bcanon = set->bcanon,
		.headers = (const char *const *)set->headers,
		.header_count = set->header_count,
		.oversign = (const char *const *)set->oversign,
		.oversign_count = set->oversign_count,
		.now = (uint64_t)time(NULL),
		.expire = set->expire,
	};
	struct dkim_signer *signer = dkim_signer_new(&p);
	dkim_signer_body(signer, hdr + body_at, hlen - body_at);
	char *buf = ts_xmalloc(DKIM_CHUNK);
	while (!eof) {
		ssize_t n = read(fd, buf, DKIM_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(job->error, sizeof(job->error), "read: %s",
				 strerror(errno));
			break;
		}
		if (n == 0)
			break;
		dkim_signer_body(signer, buf, (size_t)n);
	}
	free(buf);
	close(fd);
	if (job->error[0] == '\0' &&
	    dkim_signer_finish(signer, hdr, body_at, &job->values, job->error,
			       sizeof(job->error)) == 0)
		job->value_count = dom->key_count;
	dkim_signer_free(&signer);
	free(hdr);
}

static void
dkim_sign_done(void *arg, int status)
{
	struct dkim_sjob *job = arg;
	job->in_work = false;
	if (job->cancelled) {
		dkim_sjob_free(job);
		return;
	}
	struct ts_hook_call *call = ts_hook_lookup(job->ctx, job->token);
	if (status != 0)
		snprintf(job->error, sizeof(job->error), "shutting down");
	if (job->error[0] != '\0')
		ts_log(job->ctx, TS_LOG_WARN, "dkim: not signed (%s): %s",
		       job->domain != NULL ? job->domain : "no From domain",
		       job->error);
	for (size_t i = 0; call != NULL && i < job->value_count; i++)
		ts_hook_add_header(call, "DKIM-Signature", job->values[i]);
	if (job->value_count > 0)
		ts_log(job->ctx, TS_LOG_DEBUG, "dkim: signed for %s (%zu)",
		       job->domain, job->value_count);
	ts_hook_resume(job->ctx, job->token, TS_HOOK_CONTINUE);
	dkim_sjob_free(job);
}

int
dkim_sign_hook(struct ts_hook_call *call)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	const struct dkim_settings *set = dkim_settings(ctx);
	struct ts_txn *txn = ts_hook_call_txn(call);
	if (!set->sign || set->domain_count == 0 || txn == NULL)
		return TS_HOOK_CONTINUE;
	const char *path = ts_txn_message_path(txn);
	if (path == NULL)
		path = ts_hook_call_arg(call);
	if (path == NULL)
		return TS_HOOK_CONTINUE;
	struct dkim_sjob *job = ts_xcalloc(1, sizeof(*job));
	job->ctx = ctx;
	job->set = set;
	job->path = ts_xstrdup(path);
	for (size_t i = 0; i < ts_txn_header_count(txn); i++) {
		const char *h = ts_txn_header(txn, i);
		size_t n = strlen(h);
		job->prefix = ts_xrealloc(job->prefix, job->prefix_len + n + 3);
		memcpy(job->prefix + job->prefix_len, h, n);
		memcpy(job->prefix + job->prefix_len + n, "\r\n", 3);
		job->prefix_len += n + 2;
	}
	job->in_work = true;
	if (ts_work_submit(ctx, dkim_sign_work, dkim_sign_done, job) < 0) {
		dkim_sjob_free(job);
		return TS_HOOK_CONTINUE;
	}
	job->token = ts_hook_suspend(call, dkim_sjob_cancel, job);
	return TS_HOOK_PENDING;
}
