/*
 * kernel/store/store-private.h — the store's synchronous core, shared by
 * its files and by the CLI commands (import, export, verifydata, mailbox,
 * account).
 *
 * Everything declared here blocks (SQLite, fsync): call it from a
 * work-pool function or from a CLI command, never from the loop.  The
 * asynchronous public API (tessera/store.h) is built on it.
 *
 * On-disk layout, under [core] data_dir:
 *   accounts/<account>/index.db       SQLite (WAL, synchronous=FULL)
 *   accounts/<account>/msg/<hex>/<id> one file per message, where <hex> is
 *                                     id / 4096 in lower-case hex, so no
 *                                     directory holds more than 4096
 *   tmp/                              staging for deliveries
 * A message's content is its `prefix` column followed by its file, and
 * messages.size == length(prefix) + file size.
 *
 * Account names are [a-z0-9._-]+ without a leading dot (checked in the
 * configuration), so they are safe as directory names.  Mailbox names
 * never reach the file system.
 */
#ifndef TESSERA_STORE_PRIVATE_H
#define TESSERA_STORE_PRIVATE_H

#include <sqlite3.h>

#include "kernel/kernel.h"
#include <tessera/store.h>

/* The schema, applied by ts__store_db_open to a new database. */
#define TS__STORE_SCHEMA_VERSION 1
#define TS__STORE_SCHEMA                                                      \
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"      \
	"CREATE TABLE credentials ("                                          \
	" mechanism TEXT PRIMARY KEY," /* SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 */ \
	" salt BLOB, iterations INTEGER,"                                     \
	" stored_key BLOB, server_key BLOB,"                                  \
	" inner_state BLOB, outer_state BLOB);" /* CRAM-MD5 */                \
	"CREATE TABLE mailboxes ("                                            \
	" id INTEGER PRIMARY KEY,"                                            \
	" name TEXT NOT NULL UNIQUE,"                                         \
	" special_use TEXT,"                                                  \
	" uidvalidity INTEGER NOT NULL,"                                      \
	" uidnext INTEGER NOT NULL DEFAULT 1,"                                \
	" highest_modseq INTEGER NOT NULL DEFAULT 0,"                         \
	" subscribed INTEGER NOT NULL DEFAULT 1,"                             \
	" total INTEGER NOT NULL DEFAULT 0,"                                  \
	" unseen INTEGER NOT NULL DEFAULT 0,"                                 \
	" unread INTEGER NOT NULL DEFAULT 0,"                                 \
	" deleted INTEGER NOT NULL DEFAULT 0,"                                \
	" size INTEGER NOT NULL DEFAULT 0,"                                   \
	" keywords TEXT NOT NULL DEFAULT '');"                                \
	"CREATE TABLE messages ("                                             \
	" id INTEGER PRIMARY KEY,"                                            \
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"              \
	" uid INTEGER NOT NULL,"                                              \
	" modseq INTEGER NOT NULL,"                                           \
	" createseq INTEGER NOT NULL,"                                        \
	" flags INTEGER NOT NULL DEFAULT 0,"                                  \
	" keywords TEXT NOT NULL DEFAULT '',"                                 \
	" received INTEGER NOT NULL,"                                         \
	" size INTEGER NOT NULL,"                                             \
	" prefix BLOB NOT NULL DEFAULT X'',"                                  \
	" message_id TEXT NOT NULL DEFAULT '',"                               \
	" subject_base TEXT NOT NULL DEFAULT '',"                             \
	" sent INTEGER NOT NULL DEFAULT 0," /* Date: header, unix seconds */  \
	" thread_id INTEGER NOT NULL DEFAULT 0,"                              \
	" thread_parent_ids TEXT NOT NULL DEFAULT '',"                        \
	" thread_missing_link INTEGER NOT NULL DEFAULT 0,"                    \
	" thread_muted INTEGER NOT NULL DEFAULT 0,"                           \
	" thread_collapsed INTEGER NOT NULL DEFAULT 0,"                       \
	" from_reject INTEGER NOT NULL DEFAULT 0,"                            \
	" junk_trained INTEGER NOT NULL DEFAULT 0,"                           \
	" UNIQUE (mailbox_id, uid));"                                         \
	"CREATE INDEX messages_message_id ON messages (message_id);"          \
	"CREATE INDEX messages_subject ON messages (subject_base, received);" \
	"CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);"      \
	"CREATE INDEX messages_thread ON messages (thread_id);"               \
	/* thread.c: references of messages whose parent is still missing */ \
	"CREATE TABLE thread_pending ("                                       \
	" message INTEGER NOT NULL"                                           \
	" REFERENCES messages(id) ON DELETE CASCADE,"                         \
	" distance INTEGER NOT NULL," /* 0: the direct parent */              \
	" ref TEXT NOT NULL,"                                                 \
	" PRIMARY KEY (message, distance)) WITHOUT ROWID;"                    \
	"CREATE INDEX thread_pending_ref ON thread_pending (ref);"            \
	"CREATE TABLE expunged ("                                             \
	" mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL,"                 \
	" modseq INTEGER NOT NULL, PRIMARY KEY (mailbox_id, uid));"
/*
 * meta keys: "schema_version"; "modseq" (the account's last modseq; every
 * change takes the next one); "uidvalidity" (the last one handed out);
 * "last_message_id" (message ids are never reused, so thread ids and
 * ids held by clients stay unambiguous after an expunge).
 * Special-use mailboxes created with every new account: Inbox, Sent
 * (\Sent), Drafts (\Drafts), Trash (\Trash), Junk (\Junk), Archive
 * (\Archive), Rejects (no special use; where refused mail is kept).
 */

/* Paths (caller frees). */
char *ts__store_account_dir(const char *data_dir, const char *account);
char *ts__store_message_path(const char *data_dir, const char *account,
			     int64_t message_id);

/* Prepared statements a store's write connection keeps (stmt-cache.c). */
#define TS__STMT_CACHE_MAX 64
struct ts__stmt_entry {
	sqlite3_stmt *st;
	bool in_use;
};
struct ts__stmt_cache {
	sqlite3 *db;
	struct ts__stmt_entry entries[TS__STMT_CACHE_MAX];
	size_t count;
};
/* The running job (this thread) uses cache for db, until _leave. */
void ts__store_cache_enter(struct ts__stmt_cache *cache, sqlite3 *db);
void ts__store_cache_leave(void);
/* The connection was closed (its statements with it). */
void ts__store_cache_forget(struct ts__stmt_cache *cache);
/*
 * Give a statement back to the running job's cache, or finalize it;
 * every statement of store code ends here (NULL is fine).
 */
void ts__store_finalize(sqlite3_stmt *st);

/*
 * Open an account's database, creating directories, schema and the
 * default mailboxes on first use, with busy_timeout set so a CLI and the
 * server can share it.  Sweeps message files left by a crash before their
 * commit.  Returns 0, or TS_E_IO with *error_r (caller frees).
 */
int ts__store_db_open(const char *data_dir, const char *account,
		      sqlite3 **db_r, char **error_r);
/* Finalizes every statement of the connection (cached ones too). */
void ts__store_db_close(sqlite3 **db);

/* The next modseq of the account (inside a write transaction). */
int ts__store_next_modseq(sqlite3 *db, uint64_t *modseq_r);

/* Mailbox id by name (exact, "Inbox" case-insensitive); TS_E_NOTFOUND. */
int ts__store_mailbox_id(sqlite3 *db, const char *name, int64_t *id_r);
/*
 * Create a mailbox (and its missing parents) inside the caller's
 * transaction.  TS_E_EXIST if it exists, TS_E_INVAL for a bad name
 * (*error_r says why).
 */
int ts__store_mailbox_create(sqlite3 *db, const char *name,
			     const char *special_use, int64_t *id_r,
			     char **error_r);
/*
 * A mailbox name is valid: non-empty segments separated by '/', no control
 * characters, no leading or trailing '/', no "." or ".." segment, at most
 * 255 bytes, valid UTF-8.  Returns NULL or why not (static text).
 */
const char *ts__store_mailbox_name_problem(const char *name);

/* A message to add (import, delivery). */
struct ts__store_new_message {
	const char *mailbox;  /* created if missing */
	const char *prefix;   /* may be NULL */
	size_t prefix_len;
	uint32_t flags;
	const char *keywords; /* space separated, or NULL */
	int64_t received;     /* unix seconds */
	bool from_reject;
	/*
	 * The content: exactly one of `link_from` (a file to hardlink, or
	 * copy if it cannot be linked; it is not changed) or `data`/`len`.
	 */
	const char *link_from;
	const void *data;
	size_t len;
	/*
	 * The caller already fsynced link_from's content: a successful
	 * hardlink then needs only the directory fsync (a copy is always
	 * fsynced).  Delivery fsyncs spool files in parallel beforehand.
	 */
	bool link_synced;
	/*
	 * Group durability: do not fsync this hardlinked file now; instead
	 * ts__store_sync_dirs makes the whole file system durable with one
	 * syncfs() before the commit, covering every message of the
	 * transaction (and their directories) at once.  This is what lets
	 * many deliveries share one flush (group commit for the files, as
	 * the WAL commit is for the index).
	 */
	bool defer_sync;
};

/*
 * Add one message inside the caller's write transaction: writes its file
 * (fsynced; the directory is fsynced by ts__store_sync_dirs before the
 * caller commits), inserts the row with the next UID and modseq, assigns
 * its thread (thread.c), updates the mailbox counts, size and keyword set.
 * Fills *uid_r and *id_r.  On error the caller rolls back; the file it may
 * have written is removed.
 */
int ts__store_add_message(sqlite3 *db, const char *data_dir,
			  const char *account,
			  const struct ts__store_new_message *msg,
			  uint32_t *uid_r, int64_t *id_r, char **error_r);
/* fsync every message directory written since the last call. */
int ts__store_sync_dirs(sqlite3 *db, char **error_r);

/*
 * Remove the files of messages expunged by the transaction that just
 * committed (call after every successful COMMIT; after a ROLLBACK there
 * is nothing to do).
 */
void ts__store_after_commit(sqlite3 *db, const char *data_dir,
			    const char *account);

/*
 * Recompute every mailbox's total/unseen/unread/deleted/size and keyword
 * set from its messages and compare with the stored values (debug and
 * verifydata).  Returns 0 when all agree, TS_E_INVAL with *problems_r
 * (caller frees; one line per problem, "mailbox Inbox: unseen 3, counted
 * 2") otherwise, TS_E_IO on an SQL error.
 */
int ts__store_check_counts(sqlite3 *db, char **problems_r);

/* --- changes for notifications (db.c) --- */

/*
 * Start recording TS_CHANGE_* records on this connection (store.c does,
 * the CLI does not).  ts__store_take_changes returns and clears the
 * records of the current transaction, in order, with strings owned by
 * the array; free it with ts__store_changes_free.
 */
int ts__store_track_changes(sqlite3 *db);
int ts__store_take_changes(sqlite3 *db, struct ts_store_change **changes_r,
			   size_t *count_r);
void ts__store_changes_free(struct ts_store_change *changes, size_t count);

/* --- mailbox and message operations (mailbox.c, message.c) --- */
/*
 * All run inside the caller's write transaction and keep counts, sizes,
 * keyword sets, highest_modseq and tombstones right; they record
 * changes when tracked.  Mailbox names: "Inbox" is case-insensitive.
 * Errors: TS_E_NOTFOUND (no such mailbox), TS_E_EXIST, TS_E_INVAL (with
 * a user-facing *error_r), TS_E_IO.  UIDs that do not exist are skipped.
 */
int ts__store_mailbox_rename(sqlite3 *db, const char *from, const char *to,
			     char **error_r);
/* Refused for Inbox and for a mailbox with children. */
int ts__store_mailbox_delete(sqlite3 *db, const char *name, char **error_r);
/* Every mailbox, by name; free with ts__store_mailbox_list_free. */
int ts__store_mailbox_list(sqlite3 *db, struct ts_mailbox_info **boxes_r,
			   size_t *count_r);
void ts__store_mailbox_list_free(struct ts_mailbox_info *boxes, size_t count);
/* Messages of a mailbox in a UID range; free with ..._list_free. */
int ts__store_message_list(sqlite3 *db, int64_t mailbox_id,
			   uint32_t uid_first, uint32_t uid_last,
			   struct ts_message_info **messages_r,
			   size_t *count_r);
void ts__store_message_list_free(struct ts_message_info *messages,
				 size_t count);
int ts__store_set_flags(sqlite3 *db, int64_t mailbox_id,
			const uint32_t *uids, size_t count,
			const struct ts_flag_change *change, char **error_r);
/*
 * Move: same message id and file, new UID, tombstone in the source.
 * new_uids (may be NULL) gets, per uids[i], its UID in the destination,
 * 0 for a UID that was not there.
 */
int ts__store_move(sqlite3 *db, int64_t from_id, const uint32_t *uids,
		   size_t count, int64_t to_id, uint32_t *new_uids,
		   char **error_r);
/* Copy: a new message id whose file is a hardlink (or copy); new_uids as
 * for ts__store_move. */
int ts__store_copy(sqlite3 *db, const char *data_dir, const char *account,
		   int64_t from_id, const uint32_t *uids, size_t count,
		   int64_t to_id, uint32_t *new_uids, char **error_r);
/* Expunge: rows go, tombstones stay, files go after the commit. */
int ts__store_expunge(sqlite3 *db, int64_t mailbox_id, const uint32_t *uids,
		      size_t count, char **error_r);

/* --- the open stores and their job queues (store.c) --- */

/*
 * Work run by an account's job, on a pool thread, inside the job's write
 * transaction (and inside its own savepoint: a failure undoes only this
 * work).  Returns 0 or a TS_E_* code with *error_r (caller frees).
 */
typedef int (*ts__store_job_fn)(sqlite3 *db, const char *data_dir,
				const char *account, void *arg,
				char **error_r);
/*
 * The store of a configured account (created without I/O on first use;
 * its database opens in its first job).  Returns 0 with a new reference,
 * TS_E_NOTFOUND for an account ts_account_name does not list, or
 * TS_E_INVAL when [core] data_dir is missing.
 */
int ts__store_get(struct ts_ctx *ctx, const char *account,
		  struct ts_store **store_r);
/*
 * Queue work for the account's next job.  `done` runs on the loop after
 * the job's commit (status TS_E_IO if the commit failed), after the
 * subscribers were told of the job's changes.
 */
void ts__store_queue(struct ts_store *store, ts__store_job_fn run,
		     ts_store_done_fn done, void *arg);
/* Number of write transactions the store committed (tests, bench). */
uint64_t ts__store_commit_count(const struct ts_store *store);
/*
 * Close every store and free the registry (kernel teardown, after the
 * work pool has drained: no job may be running).
 */
void ts__stores_free(struct ts_kernel *k);

/* --- threading (thread.c) --- */

/* What threading needs from a message's header. */
struct ts__thread_headers {
	char *message_id;   /* without <>, "" if none */
	char **references;  /* In-Reply-To/References ids, oldest first */
	size_t reference_count;
	char *subject_base; /* normalised subject (ts__subject_base) */
	int64_t sent;       /* Date: header, unix seconds, 0 if none */
};

/* Parse the header block of a message (up to the first empty line). */
int ts__thread_headers_parse(const char *data, size_t len,
			     struct ts__thread_headers *h);
void ts__thread_headers_free(struct ts__thread_headers *h);
/*
 * Base subject for threading (RFC 5256 base subject, simplified): RFC 2047
 * words decoded, "Re:", "Fwd:", "Fw:", "[list]" prefixes and "(fwd)"
 * suffixes removed repeatedly, whitespace collapsed, lower-cased.
 * Caller frees.
 */
char *ts__subject_base(const char *subject);

struct ts__thread_result {
	int64_t thread_id;       /* the root's message id (own id if root) */
	char *parent_ids;        /* space separated, root first ("" if root) */
	bool missing_link;       /* a referenced message was not found */
	bool muted, collapsed;   /* inherited from the parent */
};

/*
 * Find the new message's place (inside the caller's transaction; the new
 * message's row exists with id `id`, received time `received`): by
 * References/In-Reply-To (the nearest known ancestor, requiring the same
 * subject base), else by subject base among messages received in the last
 * 4 weeks (the most recent thread).  Caller frees r->parent_ids.
 * Replies that arrived before this message and wait for it (thread_pending)
 * move under it: their thread columns (and their subtrees') are updated
 * here, without a modseq change.  Returns 0 or TS_E_IO.
 */
int ts__thread_assign(sqlite3 *db, int64_t id, int64_t received,
		      const struct ts__thread_headers *h,
		      struct ts__thread_result *r);

/* --- credentials (credentials.c) --- */

/*
 * Replace the account's credentials with ones derived from `password`
 * (NUL-terminated): SCRAM-SHA-256 and SCRAM-SHA-1 (RFC 5802: fresh
 * 16-byte salt, iterations, StoredKey, ServerKey) and CRAM-MD5 (HMAC-MD5
 * inner and outer states), in one transaction.  The password itself is
 * never stored.  Returns 0, TS_E_INVAL (empty or not UTF-8) or TS_E_IO,
 * with *error_r (caller frees).
 */
int ts__credentials_set(sqlite3 *db, const char *password, char **error_r);
/* Whether the account has a password set: 0 with *set_r, or TS_E_IO. */
int ts__credentials_exist(sqlite3 *db, bool *set_r);

#endif
