/*
 * kernel/store/mailbox.c — mailboxes of an account's database: name
 * validation, lookup, create (with parents), rename (children along;
 * Inbox's messages move out), delete, listing, and the per-mailbox
 * counters (counts, size, keyword set, uidnext, highest_modseq) that
 * message.c keeps right.
 *
 * Names never reach the file system; validation is about keeping IMAP
 * and the hierarchy sane.  Everything here runs inside the caller's
 * transaction and blocks.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/store/core.h"

#define MAILBOX_NAME_MAX 255

/* --- names ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t
mailbox_utf8_len(const unsigned char *s)
{
	uint32_t cp;
	size_t n;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

const char *
ts__store_mailbox_name_problem(const char *name)
{
	if (name == NULL || *name == '\0')
		return "empty mailbox name";
	if (strlen(name) > MAILBOX_NAME_MAX)
		return "mailbox name too long";
	if (name[0] == '/')
		return "mailbox name starts with '/'";
	if (name[strlen(name) - 1] == '/')
		return "mailbox name ends with '/'";
	const unsigned char *s = (const unsigned char *)name;
	while (*s != '\0') {
		if (*s < 0x20 || *s == 0x7f)
			return "control character in mailbox name";
		if (*s == '*' || *s == '%')
			return "wildcard in mailbox name";
		size_t n = mailbox_utf8_len(s);
		if (n == 0)
			return "mailbox name is not valid UTF-8";
		/* C1 controls U+0080..U+009F. */
		if (n == 2 && s[0] == 0xc2 && s[1] < 0xa0)
			return "control character in mailbox name";
		s += n;
	}
	for (const char *seg = name;;) {
		const char *end = strchr(seg, '/');
		size_t len = end != NULL ? (size_t)(end - seg) : strlen(seg);
		if (len == 0)
			return "empty segment in mailbox name";
		if ((len == 1 && seg[0] == '.') ||
		    (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return "'.' or '..' segment in mailbox name";
		if (end == NULL)
			break;
		seg = end + 1;
	}
	return NULL;
}

/* A copy of name with a leading "inbox" segment spelled "Inbox". */
static char *
mailbox_normalise(const char *name)
{
	char *n = ts_xstrdup(name);
	if (strncasecmp(n, "inbox", 5) == 0 && (n[5] == '\0' || n[5] == '/'))
		memcpy(n, "Inbox", 5);
	return n;
}

/* --- lookups and counters ------------------------------------------------- */

/* Exact lookup of a normalised name. */
static int
mailbox_find(sqlite3 *db, const char *name, int64_t *id_r)
{
	sqlite3_stmt *st = ts__store_prepare(
		db, "SELECT id FROM mailboxes WHERE name = ?", NULL);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int ret = TS_E_NOTFOUND;
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(st, 0);
		ret = 0;
	} else if (rc != SQLITE_DONE) {
		ret = TS_E_IO;
	}
	ts__store_finalize(st);
	return ret;
}

int
ts__store_mailbox_id(sqlite3 *db, const char *name, int64_t *id_r)
{
	if (name == NULL)
		return TS_E_NOTFOUND;
	char *n = mailbox_normalise(name);
	int ret = mailbox_find(db, n, id_r);
	free(n);
	return ret;
}

char *
ts__store_mailbox_name(sqlite3 *db, int64_t mailbox_id)
{
	sqlite3_stmt *st = ts__store_prepare(
		db, "SELECT name FROM mailboxes WHERE id = ?", NULL);
	if (st == NULL)
		return NULL;
	sqlite3_bind_int64(st, 1, mailbox_id);
	char *name = NULL;
	if (sqlite3_step(st) == SQLITE_ROW)
		name = ts_xstrdup((const char *)sqlite3_column_text(st, 0));
	ts__store_finalize(st);
	return name;
}

/* Run a one-row update with two int64 parameters. */
static int
mailbox_update2(sqlite3 *db, const char *sql, int64_t a, int64_t b,
		char **error_r)
{
	sqlite3_stmt *st = ts__store_prepare(db, sql, error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	int rc = sqlite3_step(st);
	ts__store_finalize(st);
	if (rc != SQLITE_DONE)
		return ts__store_sql_error(db, sql, error_r);
	return 0;
}

int
ts__store_counts_adjust(sqlite3 *db, int64_t mailbox_id, uint32_t flags,
			uint64_t size, int sign, char **error_r)
{
	bool seen = (flags & TS_FLAG_SEEN) != 0;
	bool deleted = (flags & TS_FLAG_DELETED) != 0;
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"UPDATE mailboxes SET total = total + ?2,"
		" unseen = unseen + ?3, unread = unread + ?4,"
		" deleted = deleted + ?5, size = size + ?6 WHERE id = ?1",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int(st, 2, sign);
	sqlite3_bind_int(st, 3, seen ? 0 : sign);
	sqlite3_bind_int(st, 4, seen || deleted ? 0 : sign);
	sqlite3_bind_int(st, 5, deleted ? sign : 0);
	sqlite3_bind_int64(st, 6, sign * (int64_t)size);
	int rc = sqlite3_step(st);
	ts__store_finalize(st);
	if (rc != SQLITE_DONE)
		return ts__store_sql_error(db, "counts", error_r);
	return 0;
}

int
ts__store_mailbox_touch(sqlite3 *db, int64_t mailbox_id, uint64_t modseq,
			char **error_r)
{
	return mailbox_update2(db,
			       "UPDATE mailboxes SET highest_modseq ="
			       " max(highest_modseq, ?2) WHERE id = ?1",
			       mailbox_id, (int64_t)modseq, error_r);
}

int
ts__store_next_uid(sqlite3 *db, int64_t mailbox_id, uint32_t *uid_r,
		   char **error_r)
{
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"UPDATE mailboxes SET uidnext = uidnext + 1 WHERE id = ?"
		" RETURNING uidnext - 1",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	int ret = 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		int64_t uid = sqlite3_column_int64(st, 0);
		if (uid <= 0 || uid >= (int64_t)UINT32_MAX) {
			if (error_r != NULL && *error_r == NULL)
				*error_r = ts_xstrdup("mailbox is out of UIDs");
			ret = TS_E_INVAL;
		}
		*uid_r = (uint32_t)uid;
	} else {
		ret = ts__store_sql_error(db, "next uid", error_r);
	}
	ts__store_finalize(st);
	return ret;
}

int
ts__store_mailbox_add_keywords(sqlite3 *db, int64_t mailbox_id,
			       const char *keywords, uint64_t modseq,
			       char **error_r)
{
	if (keywords == NULL || *keywords == '\0')
		return 0;
	sqlite3_stmt *st = ts__store_prepare(
		db, "SELECT name, keywords FROM mailboxes WHERE id = ?",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		ts__store_finalize(st);
		return ts__store_sql_error(db, "mailbox keywords", error_r);
	}
	char *name = ts_xstrdup((const char *)sqlite3_column_text(st, 0));
	const char *old = (const char *)sqlite3_column_text(st, 1);
	char *merged = ts__store_keywords_union(old, keywords);
	bool changed = strcmp(merged, old) != 0;
	ts__store_finalize(st);
	int ret = 0;
	if (changed) {
		st = ts__store_prepare(
			db, "UPDATE mailboxes SET keywords = ? WHERE id = ?",
			error_r);
		if (st == NULL) {
			ret = TS_E_IO;
		} else {
			sqlite3_bind_text(st, 1, merged, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, mailbox_id);
			if (sqlite3_step(st) != SQLITE_DONE)
				ret = ts__store_sql_error(db, "keywords",
							  error_r);
			ts__store_finalize(st);
		}
		struct ts_store_change c = {
			.kind = TS_CHANGE_MAILBOX_KEYWORDS,
			.modseq = modseq,
			.mailbox = name,
			.keywords = merged,
		};
		if (ret == 0)
			ret = ts__store_record(db, &c, error_r);
	}
	free(name);
	free(merged);
	return ret;
}

/* --- create --------------------------------------------------------------- */

static bool
mailbox_special_use_ok(const char *s)
{
	static const char *const known[] = { "\\All",	 "\\Archive",
					     "\\Drafts", "\\Flagged",
					     "\\Junk",	 "\\Sent",
					     "\\Trash" };
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcasecmp(s, known[i]) == 0)
			return true;
	return false;
}

/* Insert one mailbox whose parent exists; records the change. */
static int
mailbox_insert(sqlite3 *db, const char *name, const char *special_use,
	       int64_t *id_r, char **error_r)
{
	uint32_t uidvalidity;
	uint64_t modseq;
	if (ts__store_next_uidvalidity(db, &uidvalidity, error_r) != 0 ||
	    ts__store_next_modseq(db, &modseq) != 0)
		return ts__store_sql_error(db, "create mailbox", error_r);
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"INSERT INTO mailboxes (name, special_use, uidvalidity,"
		" highest_modseq) VALUES (?, ?, ?, ?)",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, special_use, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, uidvalidity);
	sqlite3_bind_int64(st, 4, (int64_t)modseq);
	int rc = sqlite3_step(st);
	ts__store_finalize(st);
	if (rc != SQLITE_DONE)
		return ts__store_sql_error(db, "create mailbox", error_r);
	*id_r = sqlite3_last_insert_rowid(db);
	struct ts_store_change c = {
		.kind = TS_CHANGE_MAILBOX_CREATED,
		.modseq = modseq,
		.mailbox = name,
		.special_use = special_use,
	};
	return ts__store_record(db, &c, error_r);
}

/* Create every missing ancestor of a normalised, valid name. */
static int
mailbox_create_parents(sqlite3 *db, const char *name, char **error_r)
{
	char *p = ts_xstrdup(name);
	int ret = 0;
	for (char *s = strchr(p, '/'); s != NULL; s = strchr(s + 1, '/')) {
		*s = '\0';
		int64_t id;
		int rc = mailbox_find(db, p, &id);
		if (rc == TS_E_NOTFOUND)
			rc = mailbox_insert(db, p, NULL, &id, error_r);
		*s = '/';
		if (rc != 0) {
			ret = rc;
			break;
		}
	}
	free(p);
	return ret;
}

int
ts__store_mailbox_create(sqlite3 *db, const char *name, const char *special_use,
			 int64_t *id_r, char **error_r)
{
	const char *problem = ts__store_mailbox_name_problem(name);
	if (problem != NULL) {
		*error_r = ts_xstrdup(problem);
		return TS_E_INVAL;
	}
	if (special_use != NULL && !mailbox_special_use_ok(special_use)) {
		*error_r = ts_xasprintf("unknown special use %s", special_use);
		return TS_E_INVAL;
	}
	char *n = mailbox_normalise(name);
	int64_t id;
	int ret = mailbox_find(db, n, &id);
	if (ret == 0) {
		*error_r = ts_xstrdup("mailbox exists");
		ret = TS_E_EXIST;
	} else if (ret == TS_E_NOTFOUND) {
		ret = mailbox_create_parents(db, n, error_r);
		if (ret == 0)
			ret = mailbox_insert(db, n, special_use, id_r, error_r);
	} else {
		ret = ts__store_sql_error(db, "create mailbox", error_r);
	}
	free(n);
	return ret;
}

/* --- rename and delete ---------------------------------------------------- */

/* Whether a mailbox has children (names starting with "name/"). */
static int
mailbox_has_children(sqlite3 *db, const char *name, bool *yes_r)
{
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"SELECT 1 FROM mailboxes WHERE substr(name, 1, length(?1) + 1)"
		" = ?1 || '/' LIMIT 1",
		NULL);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	ts__store_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return TS_E_IO;
	*yes_r = rc == SQLITE_ROW;
	return 0;
}

/* RFC 3501 6.3.5: renaming INBOX moves its messages to a new mailbox
 * and leaves INBOX empty; its children stay. */
static int
mailbox_rename_inbox(sqlite3 *db, int64_t inbox, const char *to, char **error_r)
{
	int64_t to_id;
	int ret = ts__store_mailbox_create(db, to, NULL, &to_id, error_r);
	if (ret != 0)
		return ret;
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid",
		error_r);
	if (st == NULL)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, inbox);
	uint32_t *uids = NULL;
	size_t n = 0, alloc = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == alloc) {
			alloc = alloc != 0 ? alloc * 2 : 64;
			uids = ts_xrealloc(uids, alloc * sizeof(*uids));
		}
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	ts__store_finalize(st);
	ret = n > 0 ? ts__store_move(db, inbox, uids, n, to_id, NULL, error_r)
		    : 0;
	free(uids);
	return ret;
}

int
ts__store_mailbox_rename(sqlite3 *db, const char *from, const char *to,
			 char **error_r)
{
	const char *problem = ts__store_mailbox_name_problem(to);
	if (problem != NULL) {
		*error_r = ts_xstrdup(problem);
		return TS_E_INVAL;
	}
	char *f = mailbox_normalise(from != NULL ? from : "");
	char *t = mailbox_normalise(to);
	size_t flen = strlen(f);
	int64_t from_id, to_id;
	int ret = mailbox_find(db, f, &from_id);
	if (ret == TS_E_NOTFOUND) {
		*error_r = ts_xstrdup("no such mailbox");
		goto out;
	}
	if (ret != 0 || (ret = mailbox_find(db, t, &to_id)) == 0) {
		if (ret == 0) {
			*error_r = ts_xstrdup("mailbox exists");
			ret = TS_E_EXIST;
		}
		goto out;
	}
	if (ret != TS_E_NOTFOUND)
		goto out;
	if (strcmp(f, "Inbox") == 0) {
		ret = mailbox_rename_inbox(db, from_id, t, error_r);
		goto out;
	}
	if (strncmp(t, f, flen) == 0 && t[flen] == '/') {
		*error_r = ts_xstrdup("cannot move a mailbox into itself");
		ret = TS_E_INVAL;
		goto out;
	}
	if ((ret = mailbox_create_parents(db, t, error_r)) != 0)
		goto out;

	/* The mailbox and its children, each renamed with its own modseq. */
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"SELECT id, name FROM mailboxes WHERE name = ?1 OR"
		" substr(name, 1, length(?1) + 1) = ?1 || '/' ORDER BY name",
		error_r);
	if (st == NULL) {
		ret = TS_E_IO;
		goto out;
	}
	sqlite3_bind_text(st, 1, f, -1, SQLITE_STATIC);
	struct {
		int64_t id;
		char *name;
	} *boxes = NULL;
	size_t n = 0, alloc = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == alloc) {
			alloc = alloc != 0 ? alloc * 2 : 8;
			boxes = ts_xrealloc(boxes, alloc * sizeof(*boxes));
		}
		boxes[n].id = sqlite3_column_int64(st, 0);
		boxes[n++].name =
			ts_xstrdup((const char *)sqlite3_column_text(st, 1));
	}
	ts__store_finalize(st);
	for (size_t i = 0; i < n && ret == 0; i++) {
		char *new_name = ts_xasprintf("%s%s", t, boxes[i].name + flen);
		if (ts__store_mailbox_name_problem(new_name) != NULL) {
			*error_r = ts_xasprintf("new name of %s is too long",
						boxes[i].name);
			ret = TS_E_INVAL;
		}
		uint64_t modseq = 0;
		if (ret == 0 && ts__store_next_modseq(db, &modseq) != 0)
			ret = ts__store_sql_error(db, "rename", error_r);
		st = ret == 0 ? ts__store_prepare(
					db,
					"UPDATE mailboxes SET name = ?,"
					" highest_modseq = ? WHERE id = ?",
					error_r)
			      : NULL;
		if (st != NULL) {
			sqlite3_bind_text(st, 1, new_name, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)modseq);
			sqlite3_bind_int64(st, 3, boxes[i].id);
			int rc = sqlite3_step(st);
			if (rc == SQLITE_CONSTRAINT) {
				*error_r = ts_xstrdup("mailbox exists");
				ret = TS_E_EXIST;
			} else if (rc != SQLITE_DONE) {
				ret = ts__store_sql_error(db, "rename",
							  error_r);
			}
			ts__store_finalize(st);
		} else if (ret == 0) {
			ret = TS_E_IO;
		}
		struct ts_store_change c = {
			.kind = TS_CHANGE_MAILBOX_RENAMED,
			.modseq = modseq,
			.mailbox = new_name,
			.old_name = boxes[i].name,
		};
		if (ret == 0)
			ret = ts__store_record(db, &c, error_r);
		free(new_name);
	}
	for (size_t i = 0; i < n; i++)
		free(boxes[i].name);
	free(boxes);
out:
	free(f);
	free(t);
	return ret;
}

int
ts__store_mailbox_delete(sqlite3 *db, const char *name, char **error_r)
{
	char *n = mailbox_normalise(name != NULL ? name : "");
	int64_t id;
	bool children = false;
	int ret = mailbox_find(db, n, &id);
	if (ret == TS_E_NOTFOUND) {
		*error_r = ts_xstrdup("no such mailbox");
		goto out;
	}
	if (ret != 0)
		goto out;
	if (strcmp(n, "Inbox") == 0) {
		*error_r = ts_xstrdup("cannot delete Inbox");
		ret = TS_E_INVAL;
		goto out;
	}
	if ((ret = mailbox_has_children(db, n, &children)) != 0)
		goto out;
	if (children) {
		*error_r = ts_xstrdup("mailbox has children");
		ret = TS_E_INVAL;
		goto out;
	}
	/* Its message files go after the commit; its tombstones now. */
	sqlite3_stmt *st = ts__store_prepare(
		db, "SELECT id FROM messages WHERE mailbox_id = ?", error_r);
	if (st == NULL) {
		ret = TS_E_IO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW)
		ret = ts__store_unlink_later(db, sqlite3_column_int64(st, 0),
					     error_r);
	ts__store_finalize(st);
	static const char *const deletes[] = {
		"DELETE FROM messages WHERE mailbox_id = ?",
		"DELETE FROM expunged WHERE mailbox_id = ?",
		"DELETE FROM mailboxes WHERE id = ?",
	};
	for (size_t i = 0; i < 3 && ret == 0; i++) {
		st = ts__store_prepare(db, deletes[i], error_r);
		if (st == NULL) {
			ret = TS_E_IO;
			break;
		}
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) != SQLITE_DONE)
			ret = ts__store_sql_error(db, deletes[i], error_r);
		ts__store_finalize(st);
	}
	uint64_t modseq = 0;
	if (ret == 0 && ts__store_next_modseq(db, &modseq) != 0)
		ret = TS_E_IO;
	if (ret == 0) {
		struct ts_store_change c = {
			.kind = TS_CHANGE_MAILBOX_DELETED,
			.modseq = modseq,
			.mailbox = n,
		};
		ret = ts__store_record(db, &c, error_r);
	}
out:
	free(n);
	return ret;
}

/* --- listing -------------------------------------------------------------- */

int
ts__store_mailbox_list(sqlite3 *db, struct ts_mailbox_info **boxes_r,
		       size_t *count_r)
{
	*boxes_r = NULL;
	*count_r = 0;
	sqlite3_stmt *st = ts__store_prepare(
		db,
		"SELECT id, name, special_use, uidvalidity, uidnext,"
		" highest_modseq, total, unseen, unread, deleted, size,"
		" subscribed, keywords FROM mailboxes"
		" ORDER BY name != 'Inbox', name",
		NULL);
	if (st == NULL)
		return TS_E_IO;
	struct ts_mailbox_info *v = NULL;
	size_t n = 0, alloc = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == alloc) {
			alloc = alloc != 0 ? alloc * 2 : 16;
			v = ts_xrealloc(v, alloc * sizeof(*v));
		}
		v[n++] = (struct ts_mailbox_info){
			.id = sqlite3_column_int64(st, 0),
			.name = ts__store_column_dup(st, 1, NULL),
			.special_use = ts__store_column_dup(st, 2, NULL),
			.uidvalidity = (uint32_t)sqlite3_column_int64(st, 3),
			.uidnext = (uint32_t)sqlite3_column_int64(st, 4),
			.highest_modseq = (uint64_t)sqlite3_column_int64(st, 5),
			.total = (uint32_t)sqlite3_column_int64(st, 6),
			.unseen = (uint32_t)sqlite3_column_int64(st, 7),
			.unread = (uint32_t)sqlite3_column_int64(st, 8),
			.deleted = (uint32_t)sqlite3_column_int64(st, 9),
			.size = (uint64_t)sqlite3_column_int64(st, 10),
			.subscribed = sqlite3_column_int(st, 11) != 0,
			.keywords = ts__store_column_dup(st, 12, NULL),
		};
	}
	ts__store_finalize(st);
	if (rc != SQLITE_DONE) {
		ts__store_mailbox_list_free(v, n);
		return TS_E_IO;
	}
	*boxes_r = v;
	*count_r = n;
	return 0;
}

void
ts__store_mailbox_list_free(struct ts_mailbox_info *boxes, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free((char *)boxes[i].name);
		free((char *)boxes[i].special_use);
		free((char *)boxes[i].keywords);
	}
	free(boxes);
}
