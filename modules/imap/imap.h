/*
 * modules/imap/imap.h — what the files of the imap module share.
 *
 * The module's settings (imap.c), the per-connection session and its
 * view of the selected mailbox (session.c, notify.c), and the command
 * handlers: auth.c (LOGIN, AUTHENTICATE), mailbox.c (SELECT … APPEND),
 * fetch.c, store-cmd.c (STORE, COPY, MOVE, EXPUNGE), search.c.  Nothing
 * here is visible outside the module.
 */
#ifndef IMAP_IMAP_H
#define IMAP_IMAP_H

#include <tessera/tessera.h>

#include "parse.h"

/* The module's settings, rebuilt on reload. */
struct imap_settings {
	char *hostname;
	char *spool_dir;
	uint64_t append_limit;
	uint64_t max_command;
	uint64_t max_literal;
	unsigned max_errors;
	unsigned max_connections_per_user;
	bool allow_plaintext_auth;
	uint64_t idle_timeout_ms;
};

/* Per-user connection counts (module lifetime, survives reloads). */
struct imap_user_count {
	char *account;
	unsigned count;
	struct imap_user_count *next;
};

struct imap_recent;

struct imap_module {
	struct imap_settings *set;
	struct imap_user_count *users;
	struct imap_recent *recent; /* \Recent claims (recent.c) */
	int64_t started; /* unix seconds the module started */
};

enum imap_state {
	IMAP_NOT_AUTHENTICATED,
	IMAP_AUTHENTICATED,
	IMAP_SELECTED,
	IMAP_LOGOUT,
};

/* What input is expected now. */
enum imap_input {
	IMAP_IN_COMMAND, /* command lines */
	IMAP_IN_LITERAL, /* literal bytes of the command being read */
	IMAP_IN_SPOOL, /* an APPEND literal going to a spool file */
	IMAP_IN_DISCARD, /* literal bytes to drop (refused command) */
	IMAP_IN_AUTH, /* SASL responses */
	IMAP_IN_IDLE, /* waiting for DONE */
	IMAP_IN_BUSY, /* a command is running; input paused */
};

/* One message of the selected mailbox as this session knows it. */
struct imap_msg {
	uint32_t uid;
	uint32_t flags;
	char *keywords;
	uint64_t modseq;
	int64_t id;
	int64_t received;
	uint64_t size;
	bool expunged; /* gone from the store, EXPUNGE not yet sent */
	bool dirty; /* flags changed, FETCH not yet sent */
	bool recent;
};

struct imap_fetch;
struct imap_search;
struct imap_spool;

/* APPEND literals from this size on go to a file as they arrive. */
#define IMAP_SPOOL_MIN (64 * 1024)

struct imap_session {
	struct ts_conn *conn;
	struct ts_ctx *ctx;
	enum imap_state state;
	enum imap_input input;
	bool implicit_tls;
	bool seen_line;
	unsigned errors;

	/* the command being assembled: lines CRLF-joined, literals inline */
	char *buf;
	size_t len, cap;
	bool buf_append; /* this command is an APPEND (its own size cap) */

	/* the command running */
	struct imap_command cmd;
	bool cmd_active;
	char *cmd_buf; /* APPEND: the buffer its message points into */
	struct imap_spool *spool; /* APPEND: its message literal on disk */

	char *account;
	bool counted; /* counted in imap_module.users */
	struct ts_store *store;
	struct ts_store_sub *sub;

	/* ENABLE */
	bool condstore, qresync, rev2, utf8;

	/* AUTHENTICATE */
	struct ts_sasl *sasl;
	bool sasl_final;
	char *sasl_mech;
	char *sasl_account;
	enum ts_sasl_status sasl_status;
	bool sasl_is_login; /* LOGIN command rather than AUTHENTICATE */
	struct ts_hook_run *run;
	bool hook_waiting;

	/* the selected mailbox */
	char *mailbox;
	bool readonly;
	bool selecting; /* SELECT waiting for the store */
	struct ts_store_change *early; /* changes while selecting */
	size_t early_count;
	uint32_t uidvalidity, uidnext;
	uint64_t highest_modseq;
	char *special_use;
	char *box_keywords;
	bool keywords_dirty; /* send FLAGS / PERMANENTFLAGS again */
	struct imap_msg *msgs;
	size_t recent_count; /* messages \Recent in this session */
	size_t count, alloc;
	size_t exists; /* messages the client was told of */
	uint32_t *saved; /* SEARCHRES "$", UIDs */
	size_t saved_count;
	bool saved_valid;

	/* IDLE */
	char *idle_tag;
	struct ts_timer *idle_timer;

	/* work in flight */
	void (*fill_cb)(struct imap_session *s);
	struct imap_fetch *fetch;
	struct imap_search *search;
	unsigned pending; /* store requests whose callbacks are due */
	bool closed; /* the connection closed: callbacks only clean up */
	bool destroyed; /* the connection freed its slot: free when idle */
};

/* imap.c */
extern const struct ts_protocol imap_protocol;
struct imap_settings *imap_settings(const struct ts_ctx *ctx);
struct imap_module *imap_module(const struct ts_ctx *ctx);

/* recent.c */
/* At SELECT: mark this session's recent messages, claim the rest. */
void imap_recent_select(struct imap_session *s);
/* A message just learnt of: whether this session is the one to see it
 * as recent (it claims it). */
bool imap_recent_claim(struct imap_session *s, uint32_t uid);
/* STATUS RECENT: messages no session has claimed yet (an estimate). */
uint32_t imap_recent_unclaimed(struct imap_module *m, const char *account,
			       const char *mailbox, uint32_t uidvalidity,
			       uint32_t uidnext, uint32_t total);
void imap_recent_free(struct imap_module *m);

/* session.c */
void imap_send(struct imap_session *s, const char *fmt, ...) TS_PRINTF(2, 3);
void imap_write(struct imap_session *s, const char *data, size_t len);
/* Finish the running command: updates, then "TAG <text>". */
void imap_done(struct imap_session *s, const char *fmt, ...) TS_PRINTF(2, 3);
/* Go busy (input paused) while a command waits for the store. */
void imap_busy(struct imap_session *s);
/* A quoted string or a literal for arbitrary text; caller frees. */
char *imap_quote(const char *text);
/*
 * Mailbox name as the client sees it: "INBOX" for "Inbox", modified UTF-7
 * unless IMAP4rev2 is enabled.  Caller frees.
 */
char *imap_mailbox_out(const struct imap_session *s, const char *name);
/* Capability list for the current state (without "CAPABILITY"). */
char *imap_capabilities(const struct imap_session *s);
/* The session is gone (conn closed): drop a late store callback. */
bool imap_gone(struct imap_session *s);
void imap_store_ref(struct imap_session *s);
bool imap_store_unref(struct imap_session *s);
/* Whether the account may open one more connection; counts it. */
bool imap_user_add(struct imap_session *s, const char *account);

/* auth.c */
void imap_cmd_login(struct imap_session *s);
void imap_cmd_authenticate(struct imap_session *s);
void imap_auth_line(struct imap_session *s, const char *line, size_t len);
void imap_auth_reset(struct imap_session *s);
const char *imap_auth_mechanisms(const struct imap_session *s);
bool imap_login_allowed(const struct imap_session *s);

/* mailbox.c */
void imap_cmd_select(struct imap_session *s);
void imap_cmd_create(struct imap_session *s);
void imap_cmd_delete(struct imap_session *s);
void imap_cmd_rename(struct imap_session *s);
void imap_cmd_subscribe(struct imap_session *s);
void imap_cmd_list(struct imap_session *s);
void imap_cmd_status(struct imap_session *s);
void imap_cmd_append(struct imap_session *s);
void imap_unselect(struct imap_session *s);
/* "\\Seen \\Answered kw1" (no parentheses); caller frees. */
char *imap_flags_str(uint32_t flags, const char *keywords);
/* A message's flags as this session sees them, \Recent included. */
char *imap_msg_flags_str(const struct imap_msg *m);

/* notify.c */
void imap_notify_attach(struct imap_session *s);
void imap_notify_detach(struct imap_session *s);
/* Send pending untagged updates; expunges only when allowed. */
void imap_flush_updates(struct imap_session *s, bool allow_expunge);
void imap_apply_changes(struct imap_session *s,
			const struct ts_store_change *changes, size_t count,
			bool silent);
void imap_cmd_idle(struct imap_session *s);
void imap_idle_line(struct imap_session *s, const char *line, size_t len);
void imap_idle_stop(struct imap_session *s);
void imap_msgs_clear(struct imap_session *s);
/*
 * Messages known only from a notification lack id, size and date: read
 * them from the store, then call cb (at once when nothing is missing).
 */
void imap_msgs_fill(struct imap_session *s, void (*cb)(struct imap_session *s));
/* Index (0-based) of uid among the visible messages, or -1. */
long imap_msg_index(const struct imap_session *s, uint32_t uid);

/*
 * Resolve a command's sequence set (cmd->uid: UIDs) against the visible
 * messages: indexes into s->msgs, ascending, without duplicates.  Returns
 * 0, or -1 with *error_r for a bad sequence number.
 */
int imap_resolve_set(struct imap_session *s, const struct imap_seqset *set,
		     bool uid, size_t **idx_r, size_t *count_r,
		     const char **error_r);
/* A UID set "1:3,7" of sorted uids; caller frees. */
char *imap_uid_set(const uint32_t *uids, size_t count);

/* fetch.c */
void imap_cmd_fetch(struct imap_session *s);
void imap_fetch_drained(struct imap_session *s);
void imap_fetch_abort(struct imap_session *s);

/* store-cmd.c */
void imap_cmd_store(struct imap_session *s);
void imap_cmd_copy(struct imap_session *s);
void imap_cmd_expunge(struct imap_session *s);
void imap_cmd_close(struct imap_session *s);

/* spool.c */
/* Read the next `size` literal bytes into a new spool file. */
void imap_spool_begin(struct imap_session *s, uint64_t size);
void imap_spool_data(struct imap_session *s, const char *data, size_t len,
		     bool last);
/* Whether a complete spooled literal waits for its command; its size. */
bool imap_spool_ready(const struct imap_session *s, uint64_t *size_r);
/* Take the spool file's path (caller frees and removes the file);
 * *error_r: errno of a failed write, or 0. */
char *imap_spool_take(struct imap_session *s, int *error_r);
/* Drop the spooled literal (the file is removed on the pool). */
void imap_spool_discard(struct imap_session *s);

/* search.c */
void imap_cmd_search(struct imap_session *s);
void imap_search_abort(struct imap_session *s);

#endif
