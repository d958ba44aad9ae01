/*
 * kernel/txn.c — the mail transaction object of tessera/txn.h.
 *
 * A plain container: the envelope a protocol module sets, the header
 * lines to add, the authentication results checks attach, one data slot
 * per module, and the Authentication-Results header composed from the
 * results.  It does no I/O and knows nothing of SMTP's wire syntax;
 * deciding what a result means is the business of policy modules.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/kernel.h"

struct ts_txn_slot {
	const struct ts_ctx *ctx;
	void *data;
	void (*destroy)(void *data);
};

struct ts_txn {
	char *id;
	struct ts_conn *conn;
	char *helo;
	char *account;
	bool has_mail;
	struct ts_txn_mail mail;
	struct ts_txn_rcpt *rcpts;
	size_t rcpt_count;
	char *message_path;
	uint64_t message_size;
	char **headers;
	size_t header_count;
	struct ts_auth_result *results;
	size_t result_count;
	struct ts_txn_slot *slots;
	size_t slot_count;
};

/* Duplicate s, NULL staying NULL. */
static char *
ts_txn_dup(const char *s)
{
	return s != NULL ? ts_xstrdup(s) : NULL;
}

struct ts_txn *
ts_txn_new(struct ts_conn *conn, const char *id)
{
	struct ts_txn *txn = ts_xcalloc(1, sizeof(*txn));
	txn->conn = conn;
	txn->id = ts_xstrdup(id != NULL ? id : "");
	return txn;
}

static void
ts_txn_mail_clear(struct ts_txn_mail *m)
{
	free((char *)m->address);
	free((char *)m->localpart);
	free((char *)m->domain);
	free((char *)m->envid);
	memset(m, 0, sizeof(*m));
}

static void
ts_txn_rcpt_clear(struct ts_txn_rcpt *r)
{
	free((char *)r->address);
	free((char *)r->localpart);
	free((char *)r->domain);
	free((char *)r->orcpt_type);
	free((char *)r->orcpt);
	free((char *)r->account);
	free((char *)r->mailbox);
	memset(r, 0, sizeof(*r));
}

static void
ts_txn_result_clear(struct ts_auth_result *r)
{
	free((char *)r->method);
	free((char *)r->result);
	free((char *)r->reason);
	free((char *)r->comment);
	for (size_t i = 0; i < r->prop_count; i++) {
		free((char *)r->props[i].name);
		free((char *)r->props[i].value);
	}
	memset(r, 0, sizeof(*r));
}

void
ts_txn_free(struct ts_txn **txnp)
{
	struct ts_txn *txn = *txnp;
	if (txn == NULL)
		return;
	*txnp = NULL;
	/* Module data first: a destructor may still look at the envelope. */
	for (size_t i = 0; i < txn->slot_count; i++)
		if (txn->slots[i].destroy != NULL)
			txn->slots[i].destroy(txn->slots[i].data);
	free(txn->slots);
	ts_txn_mail_clear(&txn->mail);
	for (size_t i = 0; i < txn->rcpt_count; i++)
		ts_txn_rcpt_clear(&txn->rcpts[i]);
	free(txn->rcpts);
	for (size_t i = 0; i < txn->header_count; i++)
		free(txn->headers[i]);
	free(txn->headers);
	for (size_t i = 0; i < txn->result_count; i++)
		ts_txn_result_clear(&txn->results[i]);
	free(txn->results);
	free(txn->message_path);
	free(txn->helo);
	free(txn->account);
	free(txn->id);
	free(txn);
}

/* --- setters ---------------------------------------------------------- */

void
ts_txn_set_helo(struct ts_txn *txn, const char *helo)
{
	free(txn->helo);
	txn->helo = ts_txn_dup(helo);
}

void
ts_txn_set_account(struct ts_txn *txn, const char *account)
{
	free(txn->account);
	txn->account = ts_txn_dup(account);
}

void
ts_txn_set_mail(struct ts_txn *txn, const struct ts_txn_mail *mail)
{
	ts_txn_mail_clear(&txn->mail);
	txn->mail = *mail;
	txn->mail.address = ts_xstrdup(mail->address ? mail->address : "");
	txn->mail.localpart =
		ts_xstrdup(mail->localpart ? mail->localpart : "");
	txn->mail.domain = ts_xstrdup(mail->domain ? mail->domain : "");
	txn->mail.envid = ts_txn_dup(mail->envid);
	txn->has_mail = true;
}

size_t
ts_txn_add_rcpt(struct ts_txn *txn, const struct ts_txn_rcpt *rcpt)
{
	txn->rcpts = ts_xrealloc(txn->rcpts,
				 (txn->rcpt_count + 1) * sizeof(*txn->rcpts));
	struct ts_txn_rcpt *r = &txn->rcpts[txn->rcpt_count];
	*r = *rcpt;
	r->address = ts_xstrdup(rcpt->address ? rcpt->address : "");
	r->localpart = ts_xstrdup(rcpt->localpart ? rcpt->localpart : "");
	r->domain = ts_xstrdup(rcpt->domain ? rcpt->domain : "");
	r->orcpt_type = ts_txn_dup(rcpt->orcpt_type);
	r->orcpt = ts_txn_dup(rcpt->orcpt);
	r->account = ts_txn_dup(rcpt->account);
	r->mailbox = ts_txn_dup(rcpt->mailbox);
	return txn->rcpt_count++;
}

void
ts_txn_drop_last_rcpt(struct ts_txn *txn)
{
	if (txn->rcpt_count == 0)
		return;
	ts_txn_rcpt_clear(&txn->rcpts[--txn->rcpt_count]);
}

void
ts_txn_set_rcpt_mailbox(struct ts_txn *txn, size_t i, const char *mailbox)
{
	if (i >= txn->rcpt_count)
		return;
	free((char *)txn->rcpts[i].mailbox);
	txn->rcpts[i].mailbox = ts_txn_dup(mailbox);
}

void
ts_txn_set_message(struct ts_txn *txn, const char *path, uint64_t size)
{
	free(txn->message_path);
	txn->message_path = ts_txn_dup(path);
	txn->message_size = size;
}

void
ts_txn_add_header(struct ts_txn *txn, const char *line)
{
	txn->headers = ts_xrealloc(txn->headers, (txn->header_count + 1) *
							 sizeof(*txn->headers));
	txn->headers[txn->header_count++] = ts_xstrdup(line);
}

/* --- accessors -------------------------------------------------------- */

struct ts_txn *
ts_hook_call_txn(const struct ts_hook_call *call)
{
	switch (ts_hook_call_point(call)) {
	case TS_HOOK_SMTP_MAIL:
	case TS_HOOK_SMTP_RCPT:
	case TS_HOOK_SMTP_DATA:
	case TS_HOOK_DELIVER_LOCAL:
	case TS_HOOK_DELIVERED:
	case TS_HOOK_SUBMIT_MESSAGE:
		return ts_hook_call_subject(call);
	default:
		return NULL;
	}
}

const char *
ts_txn_id(const struct ts_txn *txn)
{
	return txn->id;
}

struct ts_conn *
ts_txn_conn(const struct ts_txn *txn)
{
	return txn->conn;
}

const char *
ts_txn_helo(const struct ts_txn *txn)
{
	return txn->helo;
}

const char *
ts_txn_account(const struct ts_txn *txn)
{
	return txn->account;
}

const struct ts_txn_mail *
ts_txn_mail(const struct ts_txn *txn)
{
	return txn->has_mail ? &txn->mail : NULL;
}

size_t
ts_txn_rcpt_count(const struct ts_txn *txn)
{
	return txn->rcpt_count;
}

const struct ts_txn_rcpt *
ts_txn_rcpt(const struct ts_txn *txn, size_t i)
{
	return i < txn->rcpt_count ? &txn->rcpts[i] : NULL;
}

const char *
ts_txn_message_path(const struct ts_txn *txn)
{
	return txn->message_path;
}

uint64_t
ts_txn_message_size(const struct ts_txn *txn)
{
	return txn->message_size;
}

size_t
ts_txn_header_count(const struct ts_txn *txn)
{
	return txn->header_count;
}

const char *
ts_txn_header(const struct ts_txn *txn, size_t i)
{
	return i < txn->header_count ? txn->headers[i] : NULL;
}

/* --- module data -------------------------------------------------------- */

void
ts_txn_set_data(struct ts_txn *txn, const struct ts_ctx *ctx, void *data,
		void (*destroy)(void *data))
{
	for (size_t i = 0; i < txn->slot_count; i++) {
		struct ts_txn_slot *slot = &txn->slots[i];
		if (slot->ctx != ctx)
			continue;
		if (slot->destroy != NULL && slot->data != data)
			slot->destroy(slot->data);
		slot->data = data;
		slot->destroy = destroy;
		return;
	}
	txn->slots = ts_xrealloc(txn->slots,
				 (txn->slot_count + 1) * sizeof(*txn->slots));
	txn->slots[txn->slot_count++] = (struct ts_txn_slot){
		.ctx = ctx, .data = data, .destroy = destroy
	};
}

void *
ts_txn_data(const struct ts_txn *txn, const struct ts_ctx *ctx)
{
	for (size_t i = 0; i < txn->slot_count; i++)
		if (txn->slots[i].ctx == ctx)
			return txn->slots[i].data;
	return NULL;
}

/* --- authentication results ------------------------------------------- */

int
ts_txn_add_auth_result(struct ts_txn *txn, const struct ts_auth_result *r)
{
	if (!ts__auth_result_valid(r))
		return TS_E_INVAL;
	txn->results = ts_xrealloc(txn->results, (txn->result_count + 1) *
							 sizeof(*txn->results));
	struct ts_auth_result *c = &txn->results[txn->result_count++];
	memset(c, 0, sizeof(*c));
	c->method = ts_xstrdup(r->method);
	c->result = ts_xstrdup(r->result);
	c->reason = ts_txn_dup(r->reason);
	c->comment = ts_txn_dup(r->comment);
	for (size_t i = 0; i < r->prop_count; i++) {
		c->props[i].name = ts_xstrdup(r->props[i].name);
		c->props[i].value = ts_xstrdup(r->props[i].value);
	}
	c->prop_count = r->prop_count;
	return 0;
}

size_t
ts_txn_auth_result_count(const struct ts_txn *txn)
{
	return txn->result_count;
}

const struct ts_auth_result *
ts_txn_auth_result(const struct ts_txn *txn, size_t i)
{
	return i < txn->result_count ? &txn->results[i] : NULL;
}
