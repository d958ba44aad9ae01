/*
 * kernel/store/message.c — messages of an account's database: add (file
 * written and fsynced, row inserted, thread assigned, counts updated),
 * flag and keyword changes, move, copy, expunge and listing.
 *
 * Each function runs inside the caller's write transaction and keeps the
 * mailbox's counts, size, keyword set and highest_modseq, the account's
 * modseq and the tombstones right in that same transaction.  Every change
 * takes its own modseq, so modseqs strictly increase per account.  The
 * directory fsyncs happen once per transaction (ts__store_sync_dirs) and
 * expunged files go only after the commit (ts__store_after_commit).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kernel/store/core.h"

/* How much of a message's head threading looks at. */
#define MESSAGE_HEAD_MAX (64 * 1024)
#define MESSAGE_FLAGS_ALL 0x7fu

/* --- keyword lists -------------------------------------------------------- */

/* An IMAP flag-keyword: atom characters, not starting with '\'. */
static bool
message_keyword_ok(const char *w, size_t len)
{
	if (len == 0 || w[0] == '\\')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)w[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

bool
ts__store_keywords_has(const char *list, const char *word, size_t len)
{
	for (const char *p = list; p != NULL && *p != '\0';) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == len && n > 0 && strncasecmp(p, word, n) == 0)
			return true;
		p += n;
	}
	return false;
}

/* Append the words of `src` to `*out` that pass `keep`. */
static void
message_keywords_append(char **out, size_t *len, const char *src,
			const char *exclude)
{
	for (const char *p = src; p != NULL && *p != '\0';) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n > 0 && message_keyword_ok(p, n) &&
		    !ts__store_keywords_has(*out, p, n) &&
		    (exclude == NULL ||
		     !ts__store_keywords_has(exclude, p, n))) {
			*out = ts_xrealloc(*out, *len + n + 2);
			if (*len > 0)
				(*out)[(*len)++] = ' ';
			memcpy(*out + *len, p, n);
			*len += n;
			(*out)[*len] = '\0';
		}
		p += n;
	}
}

char *
ts__store_keywords_normalise(const char *keywords)
{
	char *out = ts_xstrdup("");
	size_t len = 0;
	message_keywords_append(&out, &len, keywords, NULL);
	return out;
}

char *
ts__store_keywords_union(const char *a, const char *b)
{
	char *out = ts_xstrdup("");
	size_t len = 0;
	message_keywords_append(&out, &len, a, NULL);
	message_keywords_append(&out, &len, b, NULL);
	return out;
}

char *
ts__store_keywords_minus(const char *a, const char *b)
{
	char *out = ts_xstrdup("");
	size_t len = 0;
	message_keywords_append(&out, &len, a, b);
	return out;
}

/* --- files ---------------------------------------------------------------- */

/* Write all of buf to fd; 0 or -errno. */
static int
message_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copy src into a new file at dst and fsync it; 0 or -errno. */
static int
message_copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		int err = -errno;
		close(in);
		return err;
	}
	char buf[65536];
	int ret = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		if ((ret = message_write_all(out, buf, (size_t)n)) != 0)
			break;
	}
	if (ret == 0 && fsync(out) != 0)
		ret = -errno;
	close(in);
	if (close(out) != 0 && ret == 0)
		ret = -errno;
	return ret;
}

/* fsync an existing file; 0 or -errno. */
static int
message_fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int ret = fsync(fd) != 0 ? -errno : 0;
	close(fd);
	return ret;
}

/*
 * Make sure a message's directory exists and is on the list of
 * directories to fsync (with msg/ itself when the directory is new).
 */
static int
message_prepare_dir(sqlite3 *db, const char *path, char **error_r)
{
	char *dir = ts_xstrdup(path);
	*strrchr(dir, '/') = '\0';
	int ret = 0;
	if (mkdir(dir, 0700) == 0) {
		char *parent = ts_xstrdup(dir);
		*strrchr(parent, '/') = '\0';
		ret = ts__store_dirty_dir(db, parent, error_r);
		free(parent);
	} else if (errno != EEXIST) {
		*error_r = ts_xasprintf("cannot create %s: %s", dir,
					strerror(errno));
		ret = TS_E_IO;
	}
	if (ret == 0)
		ret = ts__store_dirty_dir(db, dir, error_r);
	free(dir);
	return ret;
}

/*
 * Put a message's content at `path`, durably (apart from the directory
 * entry): write data, or hardlink link_from (copying when it cannot be
 * linked).  A file already at `path` belongs to a transaction that
 * never committed: it is unlinked first, never written through, since it
 * may be a hardlink of someone's spool file.
 */
static int
message_put_file(sqlite3 *db, const char *path, const char *link_from,
		 bool link_synced, bool defer_sync, const void *data,
		 size_t len, char **error_r)
{
	int err = 0;
	if (link_from != NULL) {
		int linked = link(link_from, path);
		if (linked != 0 && errno == EEXIST) {
			/* Left by a transaction that never committed. */
			(void)unlink(path);
			linked = link(link_from, path);
		}
		if (linked == 0) {
			if (defer_sync)
				/* "" asks ts__store_sync_dirs for a syncfs. */
				err = ts__store_dirty_dir(db, "", error_r) == 0
					      ? 0
					      : -EIO;
			else if (!link_synced)
				err = message_fsync_path(path);
		} else {
			(void)unlink(path);
			err = message_copy_file(link_from, path);
		}
	} else {
		(void)unlink(path); /* see above */
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			      0600);
		if (fd < 0) {
			err = -errno;
		} else {
			err = message_write_all(fd, data, len);
			if (err == 0 && fsync(fd) != 0)
				err = -errno;
			if (close(fd) != 0 && err == 0)
				err = -errno;
		}
	}
	if (err != 0) {
		*error_r = ts_xasprintf("cannot write %s: %s", path,
					strerror(-err));
		(void)unlink(path);
		return TS_E_IO;
	}
	return 0;
}

/* Read the head of a file for threading (caller frees). */
static char *
message_read_head(const char *path, size_t *len_r)
{
	*len_r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = ts_xmalloc(MESSAGE_HEAD_MAX);
	size_t len = 0;
	while (len < MESSAGE_HEAD_MAX) {
		ssize_t n = read(fd, buf + len, MESSAGE_HEAD_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*len_r = len;
	return buf;
}

/* --- add ------------------------------------------------------------------ */

/* Record TS_CHANGE_ADDED / FLAGS / EXPUNGED for a message. */
static int
message_record(sqlite3 *db, enum ts_store_change_kind kind, uint64_t modseq,
	       const char *mailbox, uint32_t uid, uint32_t flags,
	       const char *keywords, char **error_r)
{
	struct ts_store_change c = {
		.kind = kind,
		.modseq = modseq,
		.mailbox = mailbox,
		.uid = uid,
		.flags = flags,
		.keywords = keywords,
	};
	return ts__store_record(db, &c, error_r);
}

/* Fill in the thread columns of a new message; *muted_r from them. */
static int
message_thread(sqlite3 *db, int64_t id, int64_t received,
	       const struct ts__thread_headers *h, bool *muted_r,
	       char **error_r)
{
	struct ts__thread_result r = { 0 };
	*muted_r = false;
	if (ts__thread_assign(db, id, received, h, &r) != 0) {
		free(r.parent_ids);
		return ts__store_sql_error(db, "thread", error_r);
	}
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"UPDATE messages SET thread_id = ?, thread_parent_ids = ?,"
		" thread_missing_link = ?, thread_muted = ?,"
		" thread_collapsed = ? WHERE id = ?",
		error_r);
	int ret = TS_E_IO;
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, r.thread_id != 0 ? r.thread_id : id);
		sqlite3_bind_text(st, 2,
				  r.parent_ids != NULL ? r.parent_ids : "", -1,
				  SQLITE_STATIC);
		sqlite3_bind_int(st, 3, r.missing_link);
		sqlite3_bind_int(st, 4, r.muted);
		sqlite3_bind_int(st, 5, r.collapsed);
		sqlite3_bind_int64(st, 6, id);
		ret = sqlite3_step(st) == SQLITE_DONE
			      ? 0
			      : ts__store_sql_error(db, "thread", error_r);
		ts__store_finalize(st);
	}
	*muted_r = r.muted;
	free(r.parent_ids);
	return ret;
}

/* Insert the row of a new message (thread columns come later). */
static int
message_insert(sqlite3 *db, int64_t id, int64_t mailbox_id, uint32_t uid,
	       uint64_t modseq, uint32_t flags, const char *keywords,
	       int64_t received, uint64_t size,
	       const struct ts__store_new_message *msg,
	       const struct ts__thread_headers *h, char **error_r)
{
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"INSERT INTO messages (id, mailbox_id, uid, modseq, createseq,"
		" flags, keywords, received, size, prefix, message_id,"
		" subject_base, sent, from_reject)"
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, mailbox_id);
	sqlite3_bind_int64(st, 3, uid);
	sqlite3_bind_int64(st, 4, (int64_t)modseq);
	sqlite3_bind_int64(st, 5, (int64_t)modseq);
	sqlite3_bind_int64(st, 6, flags);
	sqlite3_bind_text(st, 7, keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, received);
	sqlite3_bind_int64(st, 9, (int64_t)size);
	sqlite3_bind_blob(st, 10, msg->prefix != NULL ? msg->prefix : "",
			  (int)msg->prefix_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, h->message_id != NULL ? h->message_id : "",
			  -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12,
			  h->subject_base != NULL ? h->subject_base : "", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 13, h->sent);
	sqlite3_bind_int(st, 14, msg->from_reject);
	int rc = sqlite3_step(st);
	ts__store_finalize(st);
	if (rc != SQLITE_DONE)
		return ts__store_sql_error(db, "insert message", error_r);
	return 0;
}

int
ts__store_add_message(sqlite3 *db, const char *data_dir, const char *account,
		      const struct ts__store_new_message *msg, uint32_t *uid_r,
		      int64_t *id_r, char **error_r)
{
	uint64_t modseq;
	int64_t mailbox_id, id;
	int ret = ts__store_mailbox_id(db, msg->mailbox, &mailbox_id);
	if (ret == TS_E_NOTFOUND)
		ret = ts__store_mailbox_create(db, msg->mailbox, NULL,
					       &mailbox_id, error_r);
	if (ret != 0)
		return ret;
	/* A write before the file: it is written under the write lock,
	 * which is what makes the crash sweep of another process safe.
	 * After the mailbox creation, so modseqs follow change order. */
	if (ts__store_next_modseq(db, &modseq) != 0)
		return ts__store_sql_error(db, "modseq", error_r);
	if (ts__store_next_message_id(db, &id, error_r) != 0)
		return TS_E_IO;

	char *path = ts__store_message_path(data_dir, account, id);
	char *keywords = ts__store_keywords_normalise(msg->keywords);
	uint32_t flags = msg->flags & MESSAGE_FLAGS_ALL;
	int64_t received =
		msg->received != 0 ? msg->received : (int64_t)time(NULL);
	struct ts__thread_headers h = { 0 };
	char *head = NULL;
	bool file_written = false;
	size_t head_len = 0;
	uint32_t uid = 0;
	struct stat sb;

	if ((ret = message_prepare_dir(db, path, error_r)) != 0 ||
	    (ret = message_put_file(db, path, msg->link_from, msg->link_synced,
				    msg->defer_sync, msg->data, msg->len,
				    error_r)) != 0)
		goto out;
	file_written = true;
	if (stat(path, &sb) != 0) {
		*error_r = ts_xasprintf("stat %s: %s", path, strerror(errno));
		ret = TS_E_IO;
		goto out;
	}
	if (msg->link_from != NULL)
		head = message_read_head(path, &head_len);
	if (ts__thread_headers_parse(
		    head != NULL ? head : msg->data,
		    head != NULL ? head_len
				 : (msg->link_from != NULL ? 0 : msg->len),
		    &h) != 0) {
		/* An unparsable header still gets delivered, unthreaded. */
		ts__thread_headers_free(&h);
		memset(&h, 0, sizeof(h));
	}
	uint64_t size = msg->prefix_len + (uint64_t)sb.st_size;
	bool muted = false;
	if ((ret = ts__store_next_uid(db, mailbox_id, &uid, error_r)) != 0 ||
	    (ret = message_insert(db, id, mailbox_id, uid, modseq, flags,
				  keywords, received, size, msg, &h,
				  error_r)) != 0 ||
	    (ret = message_thread(db, id, received, &h, &muted, error_r)) != 0)
		goto out;
	if (muted && (flags & TS_FLAG_SEEN) == 0) {
		/* A new message in a muted thread arrives already seen. */
		flags |= TS_FLAG_SEEN;
		sqlite3_stmt *st = ts__store_prepare(
			db, "UPDATE messages SET flags = ? WHERE id = ?",
			error_r);
		ret = TS_E_IO;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, flags);
			sqlite3_bind_int64(st, 2, id);
			if (sqlite3_step(st) == SQLITE_DONE)
				ret = 0;
			ts__store_finalize(st);
		}
		if (ret != 0)
			goto out;
	}
	char *mailbox = ts__store_mailbox_name(db, mailbox_id);
	if ((ret = ts__store_counts_adjust(db, mailbox_id, flags, size, 1,
					   error_r)) == 0 &&
	    (ret = ts__store_mailbox_touch(db, mailbox_id, modseq, error_r)) ==
		    0 &&
	    (ret = ts__store_mailbox_add_keywords(db, mailbox_id, keywords,
						  modseq, error_r)) == 0)
		ret = message_record(db, TS_CHANGE_ADDED, modseq, mailbox, uid,
				     flags, keywords, error_r);
	free(mailbox);
out:
	if (ret != 0 && ret != TS_E_IO && ret != TS_E_INVAL &&
	    ret != TS_E_EXIST)
		ret = TS_E_IO;
	if (ret != 0 && file_written)
		(void)unlink(path);
	if (ret == 0) {
		*uid_r = uid;
		*id_r = id;
	}
	ts__thread_headers_free(&h);
	free(head);
	free(keywords);
	free(path);
	return ret;
}

/* --- per-message operations ----------------------------------------------- */

/* The parts of a message row the operations below need. */
struct message_row {
	int64_t id;
	uint32_t flags;
	char *keywords;
	uint64_t size;
};

/* Look up (mailbox, uid); TS_E_NOTFOUND when it is not there. */
static int
message_get(sqlite3 *db, int64_t mailbox_id, uint32_t uid,
	    struct message_row *row)
{
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"SELECT id, flags, keywords, size FROM messages"
		" WHERE mailbox_id = ? AND uid = ?",
		NULL);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	int ret = TS_E_NOTFOUND;
	if (rc == SQLITE_ROW) {
		row->id = sqlite3_column_int64(st, 0);
		row->flags = (uint32_t)sqlite3_column_int64(st, 1);
		row->keywords =
			ts_xstrdup((const char *)sqlite3_column_text(st, 2));
		row->size = (uint64_t)sqlite3_column_int64(st, 3);
		ret = 0;
	} else if (rc != SQLITE_DONE) {
		ret = TS_E_IO;
	}
	ts__store_finalize(st);
	return ret;
}

/* Names of both mailboxes, or TS_E_NOTFOUND. */
static int
message_names(sqlite3 *db, int64_t a, int64_t b, char **a_r, char **b_r,
	      char **error_r)
{
	*a_r = ts__store_mailbox_name(db, a);
	*b_r = b != 0 ? ts__store_mailbox_name(db, b) : NULL;
	if (*a_r == NULL || (b != 0 && *b_r == NULL)) {
		free(*a_r);
		free(*b_r);
		*a_r = *b_r = NULL;
		*error_r = ts_xstrdup("no such mailbox");
		return TS_E_NOTFOUND;
	}
	return 0;
}

/* Write a tombstone for (mailbox, uid) at modseq. */
static int
message_tombstone(sqlite3 *db, int64_t mailbox_id, uint32_t uid,
		  uint64_t modseq, char **error_r)
{
	sqlite3_stmt *st = ts__store_prepare(
		db, "INSERT OR REPLACE INTO expunged VALUES (?, ?, ?)",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (int64_t)modseq);
	int rc = sqlite3_step(st);
	ts__store_finalize(st);
	return rc == SQLITE_DONE
		       ? 0
		       : ts__store_sql_error(db, "tombstone", error_r);
}

int
ts__store_set_flags(sqlite3 *db, int64_t mailbox_id, const uint32_t *uids,
		    size_t count, const struct ts_flag_change *change,
		    char **error_r)
{
	char *name, *unused;
	int ret = message_names(db, mailbox_id, 0, &name, &unused, error_r);
	if (ret != 0)
		return ret;
	char *add = ts__store_keywords_normalise(change->add_keywords);
	char *remove = ts__store_keywords_normalise(change->remove_keywords);
	for (size_t i = 0; i < count && ret == 0; i++) {
		struct message_row row;
		int rc = message_get(db, mailbox_id, uids[i], &row);
		if (rc == TS_E_NOTFOUND)
			continue;
		if (rc != 0) {
			ret = ts__store_sql_error(db, "flags", error_r);
			break;
		}
		uint32_t flags = ((row.flags | change->add) & ~change->remove) &
				 MESSAGE_FLAGS_ALL;
		char *kw1 = ts__store_keywords_union(row.keywords, add);
		char *kw = ts__store_keywords_minus(kw1, remove);
		free(kw1);
		uint64_t modseq;
		if (flags == row.flags && strcmp(kw, row.keywords) == 0) {
			/* Nothing changes: no modseq, no notification. */
		} else if (ts__store_next_modseq(db, &modseq) != 0) {
			ret = ts__store_sql_error(db, "modseq", error_r);
		} else {
			sqlite3_stmt *st = ts__store_prepare(
				db,
				"UPDATE messages SET flags = ?, keywords = ?,"
				" modseq = ? WHERE id = ?",
				error_r);
			ret = TS_E_IO;
			if (st != NULL) {
				sqlite3_bind_int64(st, 1, flags);
				sqlite3_bind_text(st, 2, kw, -1, SQLITE_STATIC);
				sqlite3_bind_int64(st, 3, (int64_t)modseq);
				sqlite3_bind_int64(st, 4, row.id);
				ret = sqlite3_step(st) == SQLITE_DONE
					      ? 0
					      : ts__store_sql_error(db, "flags",
								    error_r);
				ts__store_finalize(st);
			}
			if (ret == 0)
				ret = ts__store_counts_adjust(
					db, mailbox_id, row.flags, row.size, -1,
					error_r);
			if (ret == 0)
				ret = ts__store_counts_adjust(db, mailbox_id,
							      flags, row.size,
							      1, error_r);
			if (ret == 0)
				ret = ts__store_mailbox_touch(db, mailbox_id,
							      modseq, error_r);
			if (ret == 0)
				ret = ts__store_mailbox_add_keywords(
					db, mailbox_id, kw, modseq, error_r);
			if (ret == 0)
				ret = message_record(db, TS_CHANGE_FLAGS,
						     modseq, name, uids[i],
						     flags, kw, error_r);
		}
		free(kw);
		free(row.keywords);
	}
	free(add);
	free(remove);
	free(name);
	return ret;
}

int
ts__store_move(sqlite3 *db, int64_t from_id, const uint32_t *uids, size_t count,
	       int64_t to_id, uint32_t *new_uids, char **error_r)
{
	char *from, *to;
	int ret = message_names(db, from_id, to_id, &from, &to, error_r);
	if (ret != 0)
		return ret;
	for (size_t i = 0; new_uids != NULL && i < count; i++)
		new_uids[i] = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		struct message_row row;
		int rc = message_get(db, from_id, uids[i], &row);
		if (rc == TS_E_NOTFOUND)
			continue;
		if (rc != 0) {
			ret = ts__store_sql_error(db, "move", error_r);
			break;
		}
		uint32_t uid;
		uint64_t modseq;
		if ((ret = ts__store_next_uid(db, to_id, &uid, error_r)) != 0 ||
		    (ret = ts__store_next_modseq(db, &modseq)) != 0) {
			free(row.keywords);
			ret = ts__store_sql_error(db, "move", error_r);
			break;
		}
		/* Same id and file: only the row's place changes. */
		sqlite3_stmt *st = ts__store_prepare(
			db,
			"UPDATE messages SET mailbox_id = ?, uid = ?,"
			" modseq = ?, createseq = ? WHERE id = ?",
			error_r);
		ret = TS_E_IO;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, to_id);
			sqlite3_bind_int64(st, 2, uid);
			sqlite3_bind_int64(st, 3, (int64_t)modseq);
			sqlite3_bind_int64(st, 4, (int64_t)modseq);
			sqlite3_bind_int64(st, 5, row.id);
			ret = sqlite3_step(st) == SQLITE_DONE
				      ? 0
				      : ts__store_sql_error(db, "move",
							    error_r);
			ts__store_finalize(st);
		}
		if (ret == 0)
			ret = message_tombstone(db, from_id, uids[i], modseq,
						error_r);
		if (ret == 0)
			ret = ts__store_counts_adjust(db, from_id, row.flags,
						      row.size, -1, error_r);
		if (ret == 0)
			ret = ts__store_counts_adjust(db, to_id, row.flags,
						      row.size, 1, error_r);
		if (ret == 0)
			ret = ts__store_mailbox_touch(db, from_id, modseq,
						      error_r);
		if (ret == 0)
			ret = ts__store_mailbox_touch(db, to_id, modseq,
						      error_r);
		if (ret == 0)
			ret = ts__store_mailbox_add_keywords(
				db, to_id, row.keywords, modseq, error_r);
		if (ret == 0)
			ret = message_record(db, TS_CHANGE_EXPUNGED, modseq,
					     from, uids[i], 0, NULL, error_r);
		if (ret == 0)
			ret = message_record(db, TS_CHANGE_ADDED, modseq, to,
					     uid, row.flags, row.keywords,
					     error_r);
		if (ret == 0 && new_uids != NULL)
			new_uids[i] = uid;
		free(row.keywords);
	}
	free(from);
	free(to);
	return ret;
}

int
ts__store_copy(sqlite3 *db, const char *data_dir, const char *account,
	       int64_t from_id, const uint32_t *uids, size_t count,
	       int64_t to_id, uint32_t *new_uids, char **error_r)
{
	char *from, *to;
	int ret = message_names(db, from_id, to_id, &from, &to, error_r);
	if (ret != 0)
		return ret;
	for (size_t i = 0; new_uids != NULL && i < count; i++)
		new_uids[i] = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		struct message_row row;
		int rc = message_get(db, from_id, uids[i], &row);
		if (rc == TS_E_NOTFOUND)
			continue;
		if (rc != 0) {
			ret = ts__store_sql_error(db, "copy", error_r);
			break;
		}
		uint32_t uid;
		uint64_t modseq;
		int64_t id;
		if ((ret = ts__store_next_modseq(db, &modseq)) != 0 ||
		    (ret = ts__store_next_message_id(db, &id, error_r)) != 0 ||
		    (ret = ts__store_next_uid(db, to_id, &uid, error_r)) != 0) {
			free(row.keywords);
			ret = ts__store_sql_error(db, "copy", error_r);
			break;
		}
		char *src = ts__store_message_path(data_dir, account, row.id);
		char *dst = ts__store_message_path(data_dir, account, id);
		/* The source file is durable already: a link needs only the
		 * directory fsync, a copy fsyncs itself. */
		ret = message_prepare_dir(db, dst, error_r);
		if (ret == 0)
			ret = message_put_file(db, dst, src, true, false, NULL,
					       0, error_r);
		bool written = ret == 0;
		sqlite3_stmt *st =
			ret != 0 ? NULL
				 : ts__store_prepare(
					   db,
					   "INSERT INTO messages (id, "
					   "mailbox_id,"
					   " uid, modseq, createseq, flags,"
					   " keywords, received, size, prefix,"
					   " message_id, subject_base, sent,"
					   " thread_id, thread_parent_ids,"
					   " thread_missing_link, thread_muted,"
					   " thread_collapsed, from_reject,"
					   " junk_trained)"
					   " SELECT ?, ?, ?, ?, ?, flags,"
					   " keywords, received, size, prefix,"
					   " message_id, subject_base, sent,"
					   " thread_id, thread_parent_ids,"
					   " thread_missing_link, thread_muted,"
					   " thread_collapsed, from_reject,"
					   " junk_trained FROM messages"
					   " WHERE id = ?",
					   error_r);
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, id);
			sqlite3_bind_int64(st, 2, to_id);
			sqlite3_bind_int64(st, 3, uid);
			sqlite3_bind_int64(st, 4, (int64_t)modseq);
			sqlite3_bind_int64(st, 5, (int64_t)modseq);
			sqlite3_bind_int64(st, 6, row.id);
			ret = sqlite3_step(st) == SQLITE_DONE
				      ? 0
				      : ts__store_sql_error(db, "copy",
							    error_r);
			ts__store_finalize(st);
		} else if (ret == 0) {
			ret = TS_E_IO;
		}
		if (ret == 0)
			ret = ts__store_counts_adjust(db, to_id, row.flags,
						      row.size, 1, error_r);
		if (ret == 0)
			ret = ts__store_mailbox_touch(db, to_id, modseq,
						      error_r);
		if (ret == 0)
			ret = ts__store_mailbox_add_keywords(
				db, to_id, row.keywords, modseq, error_r);
		if (ret == 0)
			ret = message_record(db, TS_CHANGE_ADDED, modseq, to,
					     uid, row.flags, row.keywords,
					     error_r);
		if (ret == 0 && new_uids != NULL)
			new_uids[i] = uid;
		if (ret != 0 && written)
			(void)unlink(dst);
		free(src);
		free(dst);
		free(row.keywords);
	}
	free(from);
	free(to);
	return ret;
}

int
ts__store_expunge(sqlite3 *db, int64_t mailbox_id, const uint32_t *uids,
		  size_t count, char **error_r)
{
	char *name, *unused;
	int ret = message_names(db, mailbox_id, 0, &name, &unused, error_r);
	if (ret != 0)
		return ret;
	for (size_t i = 0; i < count && ret == 0; i++) {
		struct message_row row;
		int rc = message_get(db, mailbox_id, uids[i], &row);
		if (rc == TS_E_NOTFOUND)
			continue;
		free(row.keywords);
		uint64_t modseq;
		if (rc != 0 || ts__store_next_modseq(db, &modseq) != 0) {
			ret = ts__store_sql_error(db, "expunge", error_r);
			break;
		}
		sqlite3_stmt *st = ts__store_prepare(
			db, "DELETE FROM messages WHERE id = ?", error_r);
		ret = TS_E_IO;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, row.id);
			ret = sqlite3_step(st) == SQLITE_DONE
				      ? 0
				      : ts__store_sql_error(db, "expunge",
							    error_r);
			ts__store_finalize(st);
		}
		if (ret == 0)
			ret = message_tombstone(db, mailbox_id, uids[i], modseq,
						error_r);
		if (ret == 0)
			ret = ts__store_counts_adjust(db, mailbox_id, row.flags,
						      row.size, -1, error_r);
		if (ret == 0)
			ret = ts__store_mailbox_touch(db, mailbox_id, modseq,
						      error_r);
		if (ret == 0)
			ret = ts__store_unlink_later(db, row.id, error_r);
		if (ret == 0)
			ret = message_record(db, TS_CHANGE_EXPUNGED, modseq,
					     name, uids[i], 0, NULL, error_r);
	}
	free(name);
	return ret;
}

/* --- listing -------------------------------------------------------------- */

int
ts__store_message_list(sqlite3 *db, int64_t mailbox_id, uint32_t uid_first,
		       uint32_t uid_last, struct ts_message_info **messages_r,
		       size_t *count_r)
{
	*messages_r = NULL;
	*count_r = 0;
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"SELECT id, uid, modseq, createseq, flags, keywords, received,"
		" size, message_id, subject_base, thread_id,"
		" thread_parent_ids, thread_missing_link, thread_muted,"
		" thread_collapsed, from_reject FROM messages"
		" WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid",
		NULL);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid_first);
	sqlite3_bind_int64(st, 3, uid_last);
	struct ts_message_info *v = NULL;
	size_t n = 0, alloc = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == alloc) {
			alloc = alloc != 0 ? alloc * 2 : 64;
			v = ts_xrealloc(v, alloc * sizeof(*v));
		}
		v[n++] = (struct ts_message_info){
			.id = sqlite3_column_int64(st, 0),
			.uid = (uint32_t)sqlite3_column_int64(st, 1),
			.modseq = (uint64_t)sqlite3_column_int64(st, 2),
			.createseq = (uint64_t)sqlite3_column_int64(st, 3),
			.flags = (uint32_t)sqlite3_column_int64(st, 4),
			.keywords = ts__store_column_dup(st, 5, ""),
			.received = sqlite3_column_int64(st, 6),
			.size = (uint64_t)sqlite3_column_int64(st, 7),
			.message_id = ts__store_column_dup(st, 8, ""),
			.subject_base = ts__store_column_dup(st, 9, ""),
			.thread_id = sqlite3_column_int64(st, 10),
			.thread_parent_ids = ts__store_column_dup(st, 11, ""),
			.thread_missing_link = sqlite3_column_int(st, 12) != 0,
			.thread_muted = sqlite3_column_int(st, 13) != 0,
			.thread_collapsed = sqlite3_column_int(st, 14) != 0,
			.from_reject = sqlite3_column_int(st, 15) != 0,
		};
	}
	ts__store_finalize(st);
	if (rc != SQLITE_DONE) {
		ts__store_message_list_free(v, n);
		return TS_E_IO;
	}
	*messages_r = v;
	*count_r = n;
	return 0;
}

void
ts__store_message_list_free(struct ts_message_info *messages, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free((char *)messages[i].keywords);
		free((char *)messages[i].message_id);
		free((char *)messages[i].subject_base);
		free((char *)messages[i].thread_parent_ids);
	}
	free(messages);
}
