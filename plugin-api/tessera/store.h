/*
 * tessera/store.h — addresses, accounts, credentials and the message store.
 *
 * Domains, accounts and addresses come from the configuration ([domain
 * NAME] and [account NAME] sections, usually in domains.d/); looking one up
 * is synchronous and cheap.  Everything that touches disk — credentials,
 * mailboxes, messages, delivery — runs on the work pool and reports back
 * on the loop thread through a callback; no function here blocks.
 *
 * Each account has one SQLite database (WAL) and one file per message.  A
 * delivery is reported successful only when the message file and its
 * directory are fsynced and the index transaction committed; deliveries
 * that arrive together share one commit (group commit).  Nothing outside
 * the kernel's store touches SQLite: IMAP, webmail, the junk filter and
 * SMTP use only this header.
 */
#ifndef TESSERA_STORE_H
#define TESSERA_STORE_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- addresses and accounts (configuration; synchronous) ------------ */

enum ts_address_kind {
	TS_ADDRESS_EXACT,      /* a configured address */
	TS_ADDRESS_SUBADDRESS, /* local+detail of a configured address */
	TS_ADDRESS_CATCHALL,   /* only the domain's catchall matched */
	TS_ADDRESS_POSTMASTER, /* postmaster@ a local domain or the host */
};

struct ts_address_match {
	const char *account;   /* the account's name */
	const char *mailbox;   /* destination mailbox, "Inbox" by default */
	const char *canonical; /* the configured address that matched */
	enum ts_address_kind kind;
};

/*
 * Which account receives mail for `address` (localpart@domain, domain
 * case-insensitive and IDNA-normalised, localpart per the domain's case
 * rule, the domain's separator stripping a subaddress).  Exact addresses
 * win over subaddresses, which win over the catchall; postmaster@ every
 * local domain and postmaster@[core] hostname reach the postmaster
 * account.  Strings in *match_r live as long as the configuration (until
 * the next reload).  Returns 0, TS_E_NOTFOUND, or TS_E_INVAL for an
 * address that does not parse.
 */
int ts_address_lookup(const struct ts_ctx *ctx, const char *address,
		      struct ts_address_match *match_r);

/* Whether mail for `domain` is delivered here (case-insensitive). */
bool ts_domain_is_local(const struct ts_ctx *ctx, const char *domain);

/* Configured accounts, in configuration order; NULL past the end. */
const char *ts_account_name(const struct ts_ctx *ctx, size_t index);

/* --- credentials (derived secrets only; work pool) --------------------- */

/* Called with 0 (good), TS_E_INVAL (wrong), TS_E_NOTFOUND (no account or
 * no password set) or TS_E_IO. */
typedef void (*ts_store_result_fn)(int status, void *arg);

/*
 * Check a PLAIN/LOGIN password against the account's SCRAM-SHA-256
 * secret (PBKDF2 on the work pool, constant-time comparison).
 */
int ts_store_verify_password(struct ts_ctx *ctx, const char *account,
			     const char *password, ts_store_result_fn fn,
			     void *arg);

/* A SCRAM secret (RFC 5802): what a SCRAM server needs, never more. */
struct ts_scram_secret {
	uint8_t salt[64];
	size_t salt_len;
	unsigned iterations;
	uint8_t stored_key[64];
	uint8_t server_key[64];
	size_t key_len; /* 32 for SHA-256, 20 for SHA-1 */
};

/* A CRAM-MD5 secret: HMAC-MD5 state after the inner and outer pads. */
struct ts_cram_md5_secret {
	uint32_t inner[4];
	uint32_t outer[4];
};

typedef void (*ts_scram_fn)(int status, const struct ts_scram_secret *secret,
			    void *arg);
typedef void (*ts_cram_md5_fn)(int status,
			       const struct ts_cram_md5_secret *secret,
			       void *arg);

/* mechanism: "SCRAM-SHA-256" or "SCRAM-SHA-1". */
int ts_store_scram_secret(struct ts_ctx *ctx, const char *account,
			  const char *mechanism, ts_scram_fn fn, void *arg);
int ts_store_cram_md5_secret(struct ts_ctx *ctx, const char *account,
			     ts_cram_md5_fn fn, void *arg);

/* --- mailboxes and messages (work pool) -------------------------------- */

/* System flags of a message. */
#define TS_FLAG_SEEN 0x01u
#define TS_FLAG_ANSWERED 0x02u
#define TS_FLAG_FLAGGED 0x04u
#define TS_FLAG_DELETED 0x08u
#define TS_FLAG_DRAFT 0x10u
#define TS_FLAG_JUNK 0x20u
#define TS_FLAG_NOTJUNK 0x40u

struct ts_mailbox_info {
	int64_t id;
	const char *name;        /* "Inbox", "Lists/tessera" */
	const char *special_use; /* "\\Sent", "\\Junk", … or NULL */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highest_modseq;
	uint32_t total;
	uint32_t unseen;  /* without \Seen */
	uint32_t unread;  /* without \Seen and without \Deleted */
	uint32_t deleted; /* with \Deleted */
	uint64_t size;    /* sum of message sizes */
	bool subscribed;
	const char *keywords; /* keywords used in it, space separated */
};

struct ts_message_info {
	int64_t id; /* account-wide message id */
	uint32_t uid;
	uint64_t modseq, createseq;
	uint32_t flags; /* TS_FLAG_* */
	const char *keywords; /* space separated */
	int64_t received;     /* unix seconds */
	uint64_t size;        /* prefix + file */
	const char *message_id;
	const char *subject_base;
	int64_t thread_id;
	const char *thread_parent_ids; /* space separated ids, root first */
	bool thread_missing_link, thread_muted, thread_collapsed;
	bool from_reject;
};

/* An account's store, shared by every session of that account. */
struct ts_store;

typedef void (*ts_store_open_fn)(struct ts_store *store, int status,
				 void *arg);

/*
 * Open (creating on first use) an account's store.  The callback gets a
 * new reference (release with ts_store_unref) or NULL with TS_E_NOTFOUND
 * for an unknown account or TS_E_IO.
 */
int ts_store_open(struct ts_ctx *ctx, const char *account,
		  ts_store_open_fn fn, void *arg);
void ts_store_unref(struct ts_store **store);
const char *ts_store_account(const struct ts_store *store);

typedef void (*ts_mailbox_list_fn)(int status,
				   const struct ts_mailbox_info *boxes,
				   size_t count, void *arg);
typedef void (*ts_message_list_fn)(int status,
				   const struct ts_message_info *messages,
				   size_t count, void *arg);
/* error: a text for the user ("mailbox exists") or NULL. */
typedef void (*ts_store_done_fn)(int status, const char *error, void *arg);

int ts_store_mailboxes(struct ts_store *store, ts_mailbox_list_fn fn,
		       void *arg);
/* special_use may be NULL.  Parents are created as needed. */
int ts_store_mailbox_create(struct ts_store *store, const char *name,
			    const char *special_use, ts_store_done_fn fn,
			    void *arg);
/* Children move along; renaming Inbox moves its messages (RFC 3501). */
int ts_store_mailbox_rename(struct ts_store *store, const char *from,
			    const char *to, ts_store_done_fn fn, void *arg);
int ts_store_mailbox_delete(struct ts_store *store, const char *name,
			    ts_store_done_fn fn, void *arg);

/* Messages of a mailbox with uid_first <= UID <= uid_last, UID order. */
int ts_store_messages(struct ts_store *store, const char *mailbox,
		      uint32_t uid_first, uint32_t uid_last,
		      ts_message_list_fn fn, void *arg);

struct ts_flag_change {
	uint32_t add, remove;        /* TS_FLAG_* */
	const char *add_keywords;    /* space separated, or NULL */
	const char *remove_keywords; /* space separated, or NULL */
};

int ts_store_set_flags(struct ts_store *store, const char *mailbox,
		       const uint32_t *uids, size_t count,
		       const struct ts_flag_change *change,
		       ts_store_done_fn fn, void *arg);
int ts_store_move(struct ts_store *store, const char *from,
		  const uint32_t *uids, size_t count, const char *to,
		  ts_store_done_fn fn, void *arg);
int ts_store_copy(struct ts_store *store, const char *from,
		  const uint32_t *uids, size_t count, const char *to,
		  ts_store_done_fn fn, void *arg);
/* Remove for good (files too); tombstones keep uid+modseq for QRESYNC. */
int ts_store_expunge(struct ts_store *store, const char *mailbox,
		     const uint32_t *uids, size_t count,
		     ts_store_done_fn fn, void *arg);

/*
 * Copy (move = false) or move (move = true) messages like ts_store_copy /
 * ts_store_move, reporting where each went (IMAP UIDPLUS COPYUID).  The
 * callback gets, on success, the destination's UIDVALIDITY and `count`
 * pairs src_uids[i] -> dst_uids[i] in request order, only for the UIDs
 * that existed (a missing source UID is skipped, as with ts_store_copy).
 * error: a text for the user or NULL.  Arrays live until it returns.
 */
typedef void (*ts_store_uids_fn)(int status, const char *error,
				 uint32_t uidvalidity, const uint32_t *src_uids,
				 const uint32_t *dst_uids, size_t count,
				 void *arg);
int ts_store_copy_uids(struct ts_store *store, const char *from,
		       const uint32_t *uids, size_t count, const char *to,
		       bool move, ts_store_uids_fn fn, void *arg);

/*
 * ts_store_set_flags with a condition (CONDSTORE UNCHANGEDSINCE, RFC 7162
 * section 3.1.3): a message whose modseq is above unchanged_since is left
 * alone and reported in `modified` (UID order of the request); the
 * others change in the same transaction.  unchanged_since 0: no
 * condition.  UIDs that do not exist are neither changed nor reported.
 */
typedef void (*ts_store_flags_fn)(int status, const char *error,
				  const uint32_t *modified, size_t count,
				  void *arg);
int ts_store_set_flags_since(struct ts_store *store, const char *mailbox,
			     const uint32_t *uids, size_t count,
			     const struct ts_flag_change *change,
			     uint64_t unchanged_since, ts_store_flags_fn fn,
			     void *arg);

/*
 * The UIDs of a mailbox expunged (or moved away) with a modseq above
 * since_modseq and not present again, ascending, from the tombstones
 * (QRESYNC VANISHED (EARLIER)).  status 0, TS_E_NOTFOUND for an unknown
 * mailbox, TS_E_IO.
 */
typedef void (*ts_store_uid_list_fn)(int status, const uint32_t *uids,
				     size_t count, void *arg);
int ts_store_vanished(struct ts_store *store, const char *mailbox,
		      uint64_t since_modseq, ts_store_uid_list_fn fn,
		      void *arg);

/*
 * Set or clear a mailbox's subscription (IMAP SUBSCRIBE; shown in
 * ts_mailbox_info.subscribed).  New mailboxes start subscribed.  fn may be
 * NULL.  TS_E_NOTFOUND (error "no such mailbox") for an unknown mailbox.
 */
int ts_store_mailbox_subscribe(struct ts_store *store, const char *name,
			       bool subscribe, ts_store_done_fn fn, void *arg);

/*
 * Open a message's content for reading: its prefix (kept in the index)
 * followed by the file.  Runs synchronously: call it from a work-pool
 * function, never from the loop.  Returns 0 and fills *fd_r (caller
 * closes) and a malloc'd *prefix_r (caller frees), or TS_E_NOTFOUND.
 */
int ts_store_message_read(struct ts_store *store, int64_t message_id,
			  int *fd_r, char **prefix_r, size_t *prefix_len_r);

/* --- delivery ----------------------------------------------------------- */

struct ts_delivery_target {
	const char *account;
	const char *mailbox; /* created if missing */
	uint32_t flags;
	const char *keywords; /* space separated, or NULL */
	bool from_reject;
	int64_t received; /* unix seconds; 0 = now */
};

/*
 * Deliver the message in `spool_path` (a complete RFC 5322 message; the
 * file is not modified or removed) with `prefix` (header lines we add,
 * CRLF-terminated, may be NULL) in front, to every target.  The callback
 * runs once: status 0 means every target has it durably (file and
 * directory fsynced, index committed), and uids[i] is target i's UID;
 * otherwise nothing was delivered anywhere.
 */
typedef void (*ts_deliver_fn)(int status, const uint32_t *uids,
			      size_t count, void *arg);
int ts_store_deliver(struct ts_ctx *ctx, const char *spool_path,
		     const char *prefix,
		     const struct ts_delivery_target *targets, size_t count,
		     ts_deliver_fn fn, void *arg);

/* --- change notifications ----------------------------------------------- */

enum ts_store_change_kind {
	TS_CHANGE_ADDED,            /* mailbox, uid, flags, keywords */
	TS_CHANGE_FLAGS,            /* mailbox, uid, flags, keywords */
	TS_CHANGE_EXPUNGED,         /* mailbox, uid */
	TS_CHANGE_MAILBOX_CREATED,  /* mailbox */
	TS_CHANGE_MAILBOX_RENAMED,  /* old_name -> mailbox */
	TS_CHANGE_MAILBOX_DELETED,  /* mailbox */
	TS_CHANGE_SPECIAL_USE,      /* mailbox, special_use */
	TS_CHANGE_MAILBOX_KEYWORDS, /* mailbox, keywords (the new set) */
};

struct ts_store_change {
	enum ts_store_change_kind kind;
	uint64_t modseq;
	const char *mailbox;
	const char *old_name;
	const char *special_use;
	uint32_t uid;
	uint32_t flags;
	const char *keywords;
};

/*
 * Called on the loop, in commit order, with the changes of one committed
 * transaction (made by any session or delivery in this process).
 */
typedef void (*ts_store_change_fn)(const struct ts_store_change *changes,
				   size_t count, void *arg);

struct ts_store_sub;
struct ts_store_sub *ts_store_subscribe(struct ts_store *store,
					ts_store_change_fn fn, void *arg);
void ts_store_unsubscribe(struct ts_store_sub **sub);

/* --- outgoing limits: an account's sending history ---------------------- */

/*
 * What an account sent (kept in its store; see kernel/store/outgoing.c):
 * messages recorded in the 24 hours before `now`, recipient addresses
 * first recorded in those 24 hours, and how many of the addresses asked
 * about were never recorded (first-time recipients), the first of them
 * in particular.  Addresses compare case-insensitively.
 */
struct ts_store_outgoing {
	uint64_t messages;
	uint64_t new_recipients;
	size_t unknown;
	bool first_unknown;
};

typedef void (*ts_store_outgoing_fn)(int status, const char *error,
				     const struct ts_store_outgoing *out,
				     void *arg);

/*
 * Ask about account's history at `now` (Unix seconds) and whether the
 * `count` addresses (copied; duplicates count once) were ever recorded.
 * fn runs on the loop after the store's job.  Returns 0, TS_E_NOTFOUND
 * for an unknown account, TS_E_INVAL.
 */
int ts_store_outgoing_query(struct ts_ctx *ctx, const char *account,
			    const char *const *addresses, size_t count,
			    int64_t now, ts_store_outgoing_fn fn, void *arg);

/*
 * Record one message sent at `now` to `count` addresses (the new ones
 * become known, with `now` as their first time); history older than 24
 * hours is pruned.  fn (may be NULL) runs after the commit.  Returns as
 * ts_store_outgoing_query.
 */
int ts_store_outgoing_record(struct ts_ctx *ctx, const char *account,
			     const char *const *addresses, size_t count,
			     int64_t now, ts_store_done_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
