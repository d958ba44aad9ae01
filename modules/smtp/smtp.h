/*
 * modules/smtp/smtp.h — what the files of the smtp module share.
 *
 * The module's settings (smtp.c), the per-connection session and its
 * transaction (session.c), the spool file a message is written to while
 * it arrives (data.c), local delivery (deliver.c) and AUTH (auth.c).
 * Nothing here is visible outside the module.
 */
#ifndef SMTP_SMTP_H
#define SMTP_SMTP_H

#include <tessera/tessera.h>

#include "address.h"
#include "command.h"

/* Which listener flavour a session serves (the protocol service name). */
enum smtp_mode {
	SMTP_MODE_SMTP, /* port 25: inbound from anyone */
	SMTP_MODE_SUBMISSION, /* port 587: AUTH required, after STARTTLS */
	SMTP_MODE_SUBMISSIONS, /* port 465: implicit TLS, AUTH required */
};

/* The module's settings, rebuilt on reload. */
struct smtp_settings {
	char *hostname;
	char *spool_dir;
	uint64_t max_size;
	unsigned max_recipients;
	unsigned max_errors;
	bool allow_plaintext_auth;
	bool accept_8bit; /* 8-bit data without BODY=8BITMIME */
	char *accept_all; /* every recipient goes to this account, or NULL */
	bool test_localparts; /* temperror…, permerror…, timeout… */
	bool pedantic; /* no lenience for authenticated submission */
	unsigned max_messages_per_day; /* per account; 0: unlimited */
	unsigned max_new_recipients_per_day; /* per account; 0: unlimited */
};

enum smtp_state {
	SMTP_S_CMD, /* reading commands */
	SMTP_S_DATA, /* reading DATA lines up to "." */
	SMTP_S_BDAT, /* reading a BDAT chunk (counted bytes) */
	SMTP_S_AUTH, /* reading SASL responses */
	SMTP_S_BUSY, /* waiting for a hook, the spool or the store */
};

/* What went wrong while a message was read; answered at its end. */
#define SMTP_DATA_NUL 0x01u /* a NUL byte */
#define SMTP_DATA_8BIT 0x02u /* 8-bit data without 8BITMIME */
#define SMTP_DATA_LONG 0x04u /* a line over the listener's max_line */
#define SMTP_DATA_OVERSIZE 0x08u /* more than max_message_size */
#define SMTP_DATA_BARE_LF 0x10u /* BDAT: LF without CR */
#define SMTP_DATA_IO 0x20u /* the spool file could not be written */

struct smtp_spool;
struct smtp_delivery;

struct smtp_session {
	struct ts_conn *conn;
	struct ts_ctx *ctx;
	enum smtp_mode mode;
	enum smtp_state state;
	bool seen_command; /* the first line has been checked */
	char *helo; /* EHLO/HELO name, NULL before */
	bool esmtp; /* EHLO rather than HELO */
	char *account; /* authenticated account, or NULL */
	unsigned errors; /* bad commands so far */
	uint64_t serial; /* transactions started, for ids */

	/*
	 * The transaction, from MAIL on (NULL before): its envelope,
	 * recipients, added headers and the checks' results live in the
	 * kernel's ts_txn, which hooks read.
	 */
	struct ts_txn *txn;
	struct smtp_path from;
	char *from_text; /* formatted reverse path */
	enum smtp_body body;
	bool smtputf8;
	bool requiretls;
	char *mail_mailbox; /* a MAIL/DATA hook's mailbox verdict */
	bool rcpt_pending; /* the txn's last recipient is being checked */

	/* the message being read */
	struct smtp_spool *spool;
	uint64_t data_bytes;
	unsigned data_flags; /* SMTP_DATA_* */
	bool data_prev_bare_lf; /* the previous DATA line ended in a bare LF */
	bool bdat_last; /* the chunk being read is the last */
	bool bdat_discard; /* chunk read only to be dropped */
	bool bdat_prev_cr; /* last byte of the previous piece was CR */
	uint64_t bdat_chunk; /* size of the chunk being read */

	/*
	 * The header block of a submitted message, noted while it is read
	 * (only for an authenticated submission): Date, Message-ID and From
	 * are checked at its end without reading the spool file back.
	 */
	bool hdr_track; /* tracking this message */
	bool hdr_done; /* the empty line ending the block was seen */
	bool hdr_date, hdr_msgid; /* Date:, Message-ID: present */
	bool hdr_in_from; /* the field being read is From: */
	unsigned hdr_from_count; /* From: fields seen */
	bool hdr_from_long; /* the From: value exceeded SMTP_FROM_MAX */
	char *hdr_from; /* the From: value, unfolded */
	size_t hdr_from_len;
	char *hdr_line; /* BDAT: the start of a line split across pieces */
	size_t hdr_line_len;

	/* asynchronous work in flight */
	struct ts_hook_run *run;
	bool hook_waiting;
	void (*hook_cb)(struct smtp_session *s,
			const struct ts_hook_result *res);
	struct ts_hook_run *side_run; /* the `delivered` hook */
	struct ts_txn *side_txn; /* the transaction side_run reports on */
	struct ts_timer *timer;
	char *delayed_reply;
	bool delayed_close;
	struct smtp_delivery *delivery;
	size_t deliver_index; /* deliver_local hook: recipient in turn */
	uint64_t deliver_delay; /* delays the data hooks asked for */

	/* AUTH */
	struct ts_sasl *sasl;
	bool sasl_final; /* waiting for the empty answer to the last 334 */
	char *sasl_mech;
	char *sasl_account; /* authenticated, until the auth hook agrees */
	enum ts_sasl_status sasl_status;
};

/* smtp.c */
struct smtp_settings *smtp_settings(const struct ts_ctx *ctx);

/* session.c */
void smtp_reply(struct smtp_session *s, const char *fmt, ...) TS_PRINTF(2, 3);
void smtp_finish(struct smtp_session *s, uint64_t delay_ms, char *reply,
		 bool close_after);
void smtp_run_hook(struct smtp_session *s, enum ts_hook_point point,
		   const char *arg,
		   void (*cb)(struct smtp_session *s,
			      const struct ts_hook_result *res));
char *smtp_refusal(const struct ts_hook_result *res);
void smtp_keep_headers(struct smtp_session *s,
		       const struct ts_hook_result *res);
size_t smtp_rcpt_count(const struct smtp_session *s);
void smtp_transaction_reset(struct smtp_session *s);
extern const struct ts_protocol smtp_protocol_smtp;
extern const struct ts_protocol smtp_protocol_submission;
extern const struct ts_protocol smtp_protocol_submissions;

/* data.c */
/* The longest From: value kept for the submission check. */
#define SMTP_FROM_MAX 4096
void smtp_header_reset(struct smtp_session *s);
void smtp_data_begin(struct smtp_session *s);
void smtp_data_line(struct smtp_session *s, const char *line, size_t len);
void smtp_data_line_too_long(struct smtp_session *s);
void smtp_bdat_begin(struct smtp_session *s, uint64_t size, bool last);
void smtp_bdat_bytes(struct smtp_session *s, const char *data, size_t len,
		     bool last);
const char *smtp_spool_path(const struct smtp_spool *sp);
void smtp_spool_discard(struct smtp_spool **sp);

/* deliver.c */
void smtp_deliver_start(struct smtp_session *s);
void smtp_delivery_detach(struct smtp_session *s);

/* auth.c */
bool smtp_auth_offered(const struct smtp_session *s);
const char *smtp_auth_mechanisms(const struct smtp_session *s);
void smtp_auth_command(struct smtp_session *s, const struct smtp_command *cmd);
void smtp_auth_line(struct smtp_session *s, const char *line, size_t len);
void smtp_auth_reset(struct smtp_session *s);

/* --- outgoing limits per account (limits.c) --- */

/* Add the smtp_mail and smtp_rcpt hooks that enforce the limits. */
int smtp_limits_init(struct ts_ctx *ctx);
/* Record an accepted message's remote recipients in its account's
 * sending history (no-op without an account or remote recipients). */
void smtp_limits_record(struct ts_ctx *ctx, const struct ts_txn *txn);

#endif
