/*
 * kernel/store/core.h — helpers shared by the store's synchronous core
 * (db.c, mailbox.c, message.c) and nothing else.
 *
 * Per-connection bookkeeping lives in TEMP tables created by
 * ts__store_db_open, so a ROLLBACK (or ROLLBACK TO a savepoint) undoes it
 * together with the change it belongs to:
 *   temp.dirty_dirs (path)       directories to fsync before COMMIT
 *   temp.unlinks (id)            message files to remove after COMMIT
 *   temp.changes (...)           notifications, only once
 *                                ts__store_track_changes was called
 */
#ifndef TESSERA_STORE_CORE_H
#define TESSERA_STORE_CORE_H

#include "kernel/store/store-private.h"

/* Run SQL without results; on failure *error_r (may be NULL) says why. */
int ts__store_exec(sqlite3 *db, const char *sql, char **error_r);
/*
 * Prepare or fill *error_r; returns NULL on failure.  Inside a store job
 * the statement may come from the job's cache (stmt-cache.c): release it
 * with ts__store_finalize, never sqlite3_finalize.
 */
sqlite3_stmt *ts__store_prepare(sqlite3 *db, const char *sql, char **error_r);

/* "what: sqlite's message" as a TS_E_IO error text. */
int ts__store_sql_error(sqlite3 *db, const char *what, char **error_r);
/*
 * A copy of a text column (caller frees); when it is NULL, a copy of
 * if_null, or NULL when if_null is NULL too.
 */
char *ts__store_column_dup(sqlite3_stmt *st, int col, const char *if_null);

/* Remember a directory to fsync before the commit. */
int ts__store_dirty_dir(sqlite3 *db, const char *path, char **error_r);
/* Remember a message file to remove once the transaction commits. */
int ts__store_unlink_later(sqlite3 *db, int64_t message_id, char **error_r);
/* Record a change for subscribers (no-op unless changes are tracked). */
int ts__store_record(sqlite3 *db, const struct ts_store_change *change,
		     char **error_r);

/* Adjust a mailbox's counts by one message with `flags` and `size`;
 * sign is +1 (added) or -1 (removed). */
int ts__store_counts_adjust(sqlite3 *db, int64_t mailbox_id, uint32_t flags,
			    uint64_t size, int sign, char **error_r);
/* Raise a mailbox's highest_modseq to `modseq`. */
int ts__store_mailbox_touch(sqlite3 *db, int64_t mailbox_id, uint64_t modseq,
			    char **error_r);
/* Add keywords not yet in the mailbox's set (and record the change). */
int ts__store_mailbox_add_keywords(sqlite3 *db, int64_t mailbox_id,
				   const char *keywords, uint64_t modseq,
				   char **error_r);
/* A mailbox's name (caller frees) or NULL. */
char *ts__store_mailbox_name(sqlite3 *db, int64_t mailbox_id);
/* Take the next UID of a mailbox (uidnext++). */
int ts__store_next_uid(sqlite3 *db, int64_t mailbox_id, uint32_t *uid_r,
		       char **error_r);
/* The next UIDVALIDITY: the time, or one more than the last if larger. */
int ts__store_next_uidvalidity(sqlite3 *db, uint32_t *uidvalidity_r,
			       char **error_r);
/* The next message id of the account (meta "last_message_id"). */
int ts__store_next_message_id(sqlite3 *db, int64_t *id_r, char **error_r);

/*
 * Normalise a keyword list: split on spaces, drop duplicates (ASCII
 * case-insensitive, first spelling kept) and words with control
 * characters or IMAP specials.  Returns a new space-separated string.
 */
char *ts__store_keywords_normalise(const char *keywords);
/* Keyword set arithmetic on normalised lists (results are new strings). */
char *ts__store_keywords_union(const char *a, const char *b);
char *ts__store_keywords_minus(const char *a, const char *b);
bool ts__store_keywords_has(const char *list, const char *word, size_t len);

/* Create a directory and its parents (mode 0700); 0 or -errno. */
int ts__store_mkdir_p(const char *path);

#endif
