/*
 * kernel/store/verify.c — `tessera verifydata`: check every invariant of
 * every configured account's store and report each broken one, naming the
 * message (id, mailbox, uid) it concerns.
 *
 * Per account (those without a store yet are skipped):
 *  - the schema version;
 *  - ts__store_check_counts: each mailbox's total/unseen/unread/deleted,
 *    size and keyword set against its messages, uidnext above every uid,
 *    highest_modseq and the account's modseq at least every message's;
 *  - per message: its file exists and size == length(prefix) + file size,
 *    only known flag bits, 0 < uid < uidnext of its mailbox, 0 <
 *    createseq <= modseq <= the account's modseq, id <= last_message_id;
 *  - threads: thread_id is set; thread_parent_ids are message ids (not
 *    its own), root first, so the list is empty exactly when thread_id is
 *    the message's own id, else its first id is thread_id; a root that
 *    still exists is its own root.  Ancestors that no longer exist are not
 *    problems: expunging a thread's root or a parent is normal.
 *  - tombstones: their mailbox exists, uid < uidnext, no live message has
 *    that uid, modseq <= the account's modseq;
 *  - files in msg/ without a row ("orphan file").  Files with an id above
 *    last_message_id belong to a write that has not committed (or never
 *    will: the next open of the store removes them); they are counted in
 *    a note, not reported as problems, so verifydata stays right beside a
 *    serving tessera and after a crash.
 *
 * Only read transactions are used, and what a concurrent writer may have
 * changed since the snapshot (an expunged file, a new message) is checked
 * again before it is reported.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "kernel/store/commands.h"
#include "kernel/store/store-cli.h"
#include "kernel/store/store-private.h"

#define VERIFY_USAGE "verifydata [-c FILE]"

struct verify_box {
	int64_t id;
	char *name;
	int64_t uidnext;
};

/* What the message pass keeps for the later passes. */
struct verify_msg {
	int64_t id;
	int64_t thread_id;
	int64_t mailbox_id;
	int64_t uid;
};

struct verify {
	const char *data_dir;
	const char *account;
	sqlite3 *db;
	size_t problems;
	size_t messages;
	int64_t modseq, last_id;
	struct verify_box *boxes;
	size_t box_count;
	struct verify_msg *msgs;
	size_t msg_count, msg_alloc;
	/* Messages whose file was missing in the snapshot: checked again. */
	int64_t *missing;
	size_t missing_count;
	/* Files without a row, id <= last_message_id: checked again. */
	int64_t *orphans;
	size_t orphan_count;
	size_t uncommitted;
};

static void verify_problem(struct verify *v, const char *fmt, ...)
	TS_PRINTF(2, 3);

static void
verify_problem(struct verify *v, const char *fmt, ...)
{
	va_list ap;
	printf("account %s: ", v->account);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	v->problems++;
}

static const struct verify_box *
verify_box(const struct verify *v, int64_t id)
{
	size_t lo = 0, hi = v->box_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->boxes[mid].id == id)
			return &v->boxes[mid];
		if (v->boxes[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The kept row of message `id` (rows are in id order), or NULL. */
static const struct verify_msg *
verify_msg(const struct verify *v, int64_t id)
{
	size_t lo = 0, hi = v->msg_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->msgs[mid].id == id)
			return &v->msgs[mid];
		if (v->msgs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void
verify_push(int64_t **array, size_t *count, int64_t value)
{
	/* Capacity doubles whenever the count reaches a power of two. */
	if ((*count & (*count - 1)) == 0)
		*array = ts_xrealloc(*array, (*count != 0 ? *count * 2 : 1) *
						     sizeof(**array));
	(*array)[(*count)++] = value;
}

/* A meta value as an integer; -1 when missing. */
static int64_t
verify_meta(struct verify *v, const char *key)
{
	sqlite3_stmt *st = NULL;
	int64_t value = -1;
	if (sqlite3_prepare_v2(v->db, "SELECT value FROM meta WHERE key = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		value = sqlite3_column_int64(st, 0);
	ts__store_finalize(st);
	return value;
}

static int
verify_load_boxes(struct verify *v)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(v->db,
			       "SELECT id, name, uidnext, highest_modseq"
			       " FROM mailboxes ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		v->boxes = ts_xrealloc(v->boxes,
				       (v->box_count + 1) * sizeof(*v->boxes));
		struct verify_box *b = &v->boxes[v->box_count++];
		b->id = sqlite3_column_int64(st, 0);
		b->name = ts_xstrdup((const char *)sqlite3_column_text(st, 1));
		b->uidnext = sqlite3_column_int64(st, 2);
		const char *problem = ts__store_mailbox_name_problem(b->name);
		if (problem != NULL)
			verify_problem(v, "mailbox %s: bad name: %s", b->name,
				       problem);
		if (sqlite3_column_int64(st, 3) > v->modseq)
			verify_problem(v,
				       "mailbox %s: highest_modseq %lld above "
				       "the account's modseq %lld",
				       b->name,
				       (long long)sqlite3_column_int64(st, 3),
				       (long long)v->modseq);
	}
	ts__store_finalize(st);
	return step == SQLITE_DONE ? 0 : -1;
}

/* Thread fields of one message; `where` is its "message … (…)" text. */
static void
verify_thread_fields(struct verify *v, const char *where, int64_t id,
		     int64_t thread_id, const char *parents)
{
	if (thread_id <= 0) {
		verify_problem(v, "%s: no thread id", where);
		return;
	}
	if (thread_id > v->last_id)
		verify_problem(v, "%s: thread id %lld was never a message",
			       where, (long long)thread_id);
	size_t n = 0;
	int64_t first = 0;
	for (const char *p = parents; *p != '\0';) {
		char *end;
		long long pid = strtoll(p, &end, 10);
		if (end == p || pid <= 0 || (*end != ' ' && *end != '\0')) {
			verify_problem(v,
				       "%s: thread_parent_ids '%s' is not "
				       "a list of message ids",
				       where, parents);
			return;
		}
		if (pid == id)
			verify_problem(v,
				       "%s: its own ancestor in "
				       "thread_parent_ids",
				       where);
		if (n++ == 0)
			first = pid;
		p = end + strspn(end, " ");
	}
	if (n == 0 && thread_id != id)
		verify_problem(v, "%s: thread id %lld, but no parents", where,
			       (long long)thread_id);
	else if (n > 0 && thread_id == id)
		verify_problem(v, "%s: a thread root with parents '%s'", where,
			       parents);
	else if (n > 0 && first != thread_id)
		verify_problem(v,
			       "%s: thread id %lld is not the first of its "
			       "parents '%s'",
			       where, (long long)thread_id, parents);
}

static int
verify_messages(struct verify *v)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(v->db,
			       "SELECT id, mailbox_id, uid, modseq, createseq,"
			       " flags, size, length(prefix), thread_id,"
			       " thread_parent_ids FROM messages ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		int64_t box_id = sqlite3_column_int64(st, 1);
		int64_t uid = sqlite3_column_int64(st, 2);
		int64_t modseq = sqlite3_column_int64(st, 3);
		int64_t createseq = sqlite3_column_int64(st, 4);
		int64_t flags = sqlite3_column_int64(st, 5);
		int64_t size = sqlite3_column_int64(st, 6);
		int64_t prefix = sqlite3_column_int64(st, 7);
		int64_t thread_id = sqlite3_column_int64(st, 8);
		const char *parents = (const char *)sqlite3_column_text(st, 9);
		const struct verify_box *box = verify_box(v, box_id);
		char *where = ts_xasprintf(
			"message %lld (mailbox %s, uid %lld)", (long long)id,
			box != NULL ? box->name : "(none)", (long long)uid);
		v->messages++;

		if (v->msg_count == v->msg_alloc) {
			v->msg_alloc =
				v->msg_alloc != 0 ? v->msg_alloc * 2 : 256;
			v->msgs = ts_xrealloc(v->msgs,
					      v->msg_alloc * sizeof(*v->msgs));
		}
		v->msgs[v->msg_count++] = (struct verify_msg){
			.id = id,
			.thread_id = thread_id,
			.mailbox_id = box_id,
			.uid = uid,
		};

		if (box == NULL)
			verify_problem(v, "%s: its mailbox %lld does not exist",
				       where, (long long)box_id);
		else if (uid <= 0 || uid >= box->uidnext)
			verify_problem(v, "%s: uid not below uidnext %lld",
				       where, (long long)box->uidnext);
		if (id > v->last_id)
			verify_problem(v, "%s: id above last_message_id %lld",
				       where, (long long)v->last_id);
		if (modseq > v->modseq)
			verify_problem(v,
				       "%s: modseq %lld above the account's "
				       "modseq %lld",
				       where, (long long)modseq,
				       (long long)v->modseq);
		if (createseq <= 0 || createseq > modseq)
			verify_problem(v,
				       "%s: createseq %lld not in 1..modseq "
				       "%lld",
				       where, (long long)createseq,
				       (long long)modseq);
		if ((flags & ~(int64_t)TS__STORE_FLAG_KNOWN) != 0)
			verify_problem(v, "%s: unknown flag bits 0x%llx", where,
				       (unsigned long long)flags);

		char *path =
			ts__store_message_path(v->data_dir, v->account, id);
		struct stat sb;
		if (stat(path, &sb) != 0)
			verify_push(&v->missing, &v->missing_count, id);
		else if (!S_ISREG(sb.st_mode))
			verify_problem(v, "%s: %s is not a file", where, path);
		else if (size != prefix + (int64_t)sb.st_size)
			verify_problem(v,
				       "%s: size %lld, but prefix %lld + file "
				       "%lld bytes",
				       where, (long long)size,
				       (long long)prefix,
				       (long long)sb.st_size);
		free(path);

		verify_thread_fields(v, where, id, thread_id,
				     parents != NULL ? parents : "");
		free(where);
	}
	ts__store_finalize(st);
	if (step != SQLITE_DONE)
		return -1;

	/* A root that still exists is its own root. */
	for (size_t i = 0; i < v->msg_count; i++) {
		const struct verify_msg *m = &v->msgs[i];
		if (m->thread_id == m->id || m->thread_id <= 0)
			continue;
		const struct verify_msg *root = verify_msg(v, m->thread_id);
		if (root != NULL && root->thread_id != root->id) {
			const struct verify_box *box =
				verify_box(v, m->mailbox_id);
			verify_problem(v,
				       "message %lld (mailbox %s, uid %lld): "
				       "its thread root %lld is itself in "
				       "thread %lld",
				       (long long)m->id,
				       box != NULL ? box->name : "(none)",
				       (long long)m->uid, (long long)root->id,
				       (long long)root->thread_id);
		}
	}
	return 0;
}

static int
verify_tombstones(struct verify *v)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(
		    v->db,
		    "SELECT e.mailbox_id, e.uid, e.modseq, EXISTS (SELECT 1"
		    " FROM messages m WHERE m.mailbox_id = e.mailbox_id"
		    " AND m.uid = e.uid) FROM expunged e"
		    " ORDER BY e.mailbox_id, e.uid",
		    -1, &st, NULL) != SQLITE_OK)
		return -1;
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t box_id = sqlite3_column_int64(st, 0);
		int64_t uid = sqlite3_column_int64(st, 1);
		int64_t modseq = sqlite3_column_int64(st, 2);
		const struct verify_box *box = verify_box(v, box_id);
		if (box == NULL) {
			verify_problem(v,
				       "tombstone (mailbox %lld, uid %lld): "
				       "its mailbox does not exist",
				       (long long)box_id, (long long)uid);
			continue;
		}
		if (uid <= 0 || uid >= box->uidnext)
			verify_problem(v,
				       "tombstone (mailbox %s, uid %lld): uid "
				       "not below uidnext %lld",
				       box->name, (long long)uid,
				       (long long)box->uidnext);
		if (modseq > v->modseq)
			verify_problem(v,
				       "tombstone (mailbox %s, uid %lld): "
				       "modseq %lld above the account's "
				       "modseq %lld",
				       box->name, (long long)uid,
				       (long long)modseq, (long long)v->modseq);
		if (sqlite3_column_int(st, 3) != 0)
			verify_problem(v,
				       "tombstone (mailbox %s, uid %lld): the "
				       "message with that uid exists",
				       box->name, (long long)uid);
	}
	ts__store_finalize(st);
	return step == SQLITE_DONE ? 0 : -1;
}

/* Files under msg/ that no row owns. */
static void
verify_files(struct verify *v)
{
	char *dir = ts__store_account_dir(v->data_dir, v->account);
	char *msg_dir = ts_xasprintf("%s/msg", dir);
	free(dir);
	DIR *d = opendir(msg_dir);
	if (d == NULL) {
		if (errno != ENOENT || v->msg_count > 0)
			verify_problem(v, "cannot read %s: %s", msg_dir,
				       strerror(errno));
		free(msg_dir);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		char *end;
		errno = 0;
		unsigned long long hex = strtoull(de->d_name, &end, 16);
		char *sub = ts_xasprintf("%s/%s", msg_dir, de->d_name);
		DIR *sd = *end == '\0' && errno == 0 ? opendir(sub) : NULL;
		if (sd == NULL) {
			verify_problem(v, "unexpected entry %s in msg/", sub);
			free(sub);
			continue;
		}
		struct dirent *fe;
		while ((fe = readdir(sd)) != NULL) {
			if (strcmp(fe->d_name, ".") == 0 ||
			    strcmp(fe->d_name, "..") == 0)
				continue;
			errno = 0;
			long long id = strtoll(fe->d_name, &end, 10);
			if (*end != '\0' || errno != 0 || id <= 0 ||
			    fe->d_name[0] == '0' || fe->d_name[0] == '+' ||
			    (unsigned long long)id / 4096 != hex) {
				verify_problem(v, "unexpected file %s/%s", sub,
					       fe->d_name);
				continue;
			}
			if (verify_msg(v, id) != NULL)
				continue;
			if (id > v->last_id)
				v->uncommitted++;
			else
				verify_push(&v->orphans, &v->orphan_count, id);
		}
		closedir(sd);
		free(sub);
	}
	closedir(d);
	free(msg_dir);
}

/*
 * Re-check, in a new snapshot, what a concurrent writer may have caused:
 * a missing file whose message has been expunged meanwhile is fine, and
 * so is an "orphan" whose row has appeared.
 */
static void
verify_recheck(struct verify *v)
{
	if (v->missing_count == 0 && v->orphan_count == 0)
		return;
	sqlite3_stmt *st = NULL;
	if (sqlite3_exec(v->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(v->db,
			       "SELECT m.uid, b.name FROM messages m"
			       " LEFT JOIN mailboxes b ON b.id = m.mailbox_id"
			       " WHERE m.id = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		verify_problem(v, "sqlite: %s", sqlite3_errmsg(v->db));
		sqlite3_exec(v->db, "ROLLBACK", NULL, NULL, NULL);
		return;
	}
	for (size_t i = 0; i < v->missing_count; i++) {
		int64_t id = v->missing[i];
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) != SQLITE_ROW)
			continue; /* expunged meanwhile */
		char *path =
			ts__store_message_path(v->data_dir, v->account, id);
		struct stat sb;
		if (stat(path, &sb) != 0) {
			const char *box =
				(const char *)sqlite3_column_text(st, 1);
			verify_problem(
				v,
				"message %lld (mailbox %s, uid %lld): "
				"file %s is missing",
				(long long)id, box != NULL ? box : "(none)",
				(long long)sqlite3_column_int64(st, 0), path);
		}
		free(path);
	}
	for (size_t i = 0; i < v->orphan_count; i++) {
		int64_t id = v->orphans[i];
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			continue;
		char *path =
			ts__store_message_path(v->data_dir, v->account, id);
		struct stat sb;
		if (stat(path, &sb) == 0)
			verify_problem(v,
				       "message %lld: orphan file %s (no "
				       "message has this id)",
				       (long long)id, path);
		free(path);
	}
	ts__store_finalize(st);
	sqlite3_exec(v->db, "COMMIT", NULL, NULL, NULL);
}

/* Check one account; returns -1 when its database cannot be read. */
static int
verify_account(struct verify *v)
{
	char *dir = ts__store_account_dir(v->data_dir, v->account);
	char *path = ts_xasprintf("%s/index.db", dir);
	free(dir);
	int rc = 0;
	if (sqlite3_open_v2(path, &v->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		verify_problem(v, "cannot open %s: %s", path,
			       v->db != NULL ? sqlite3_errmsg(v->db)
					     : "out of memory");
		free(path);
		sqlite3_close_v2(v->db);
		v->db = NULL;
		return -1;
	}
	sqlite3_busy_timeout(v->db, 10000);
	/* One snapshot for every check (a read transaction). */
	if (sqlite3_exec(v->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		verify_problem(v, "%s: %s", path, sqlite3_errmsg(v->db));
		rc = -1;
		goto out;
	}
	int64_t version = verify_meta(v, "schema_version");
	if (version != TS__STORE_SCHEMA_VERSION) {
		verify_problem(v, "schema version %lld, expected %d",
			       (long long)version, TS__STORE_SCHEMA_VERSION);
		rc = -1;
		sqlite3_exec(v->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	v->modseq = verify_meta(v, "modseq");
	v->last_id = verify_meta(v, "last_message_id");
	if (v->modseq < 0 || v->last_id < 0)
		verify_problem(v, "meta lacks modseq or last_message_id");

	char *problems = NULL;
	int check = ts__store_check_counts(v->db, &problems);
	if (check == TS_E_INVAL) {
		for (char *line = problems; line != NULL && *line != '\0';) {
			char *nl = strchr(line, '\n');
			if (nl != NULL)
				*nl = '\0';
			if (*line != '\0')
				verify_problem(v, "%s", line);
			line = nl != NULL ? nl + 1 : line + strlen(line);
		}
	} else if (check != 0) {
		verify_problem(v, "counts not checked: %s",
			       problems != NULL ? problems : "sql error");
	}
	free(problems);

	if (verify_load_boxes(v) != 0 || verify_messages(v) != 0 ||
	    verify_tombstones(v) != 0) {
		verify_problem(v, "sqlite: %s", sqlite3_errmsg(v->db));
		rc = -1;
	}
	/* The file walk happens inside the snapshot: see verify_files. */
	if (rc == 0)
		verify_files(v);
	sqlite3_exec(v->db, "COMMIT", NULL, NULL, NULL);
	if (rc == 0)
		verify_recheck(v);
	if (v->uncommitted > 0)
		printf("account %s: note: %zu message file%s of a write that "
		       "has not committed (removed when the store is next "
		       "opened)\n",
		       v->account, v->uncommitted,
		       v->uncommitted == 1 ? "" : "s");
out:
	free(path);
	sqlite3_close_v2(v->db);
	v->db = NULL;
	return rc;
}

static void
verify_reset(struct verify *v)
{
	for (size_t i = 0; i < v->box_count; i++)
		free(v->boxes[i].name);
	free(v->boxes);
	free(v->msgs);
	free(v->missing);
	free(v->orphans);
	v->boxes = NULL;
	v->box_count = 0;
	v->msgs = NULL;
	v->msg_count = v->msg_alloc = 0;
	v->missing = v->orphans = NULL;
	v->missing_count = v->orphan_count = 0;
	v->uncommitted = 0;
}

int
ts__cmd_verifydata(int argc, char **argv)
{
	struct ts__store_cli_opts o;
	int rc = ts__store_cli_parse(argc, argv, VERIFY_USAGE, false, &o);
	if (rc >= 0)
		return rc;
	if (o.word_count > 0)
		return ts__store_cli_usage(
			VERIFY_USAGE, "unexpected argument '%s'", o.words[0]);
	struct ts__store_cli c;
	if (ts__store_cli_boot(&c, o.config) != 0) {
		ts__store_cli_end(&c);
		return 1;
	}
	size_t accounts = 0, messages = 0, problems = 0;
	const char *name;
	for (size_t i = 0; (name = ts_account_name(&c.k.kctx, i)) != NULL;
	     i++) {
		char *dir = ts__store_account_dir(c.data_dir, name);
		char *path = ts_xasprintf("%s/index.db", dir);
		struct stat sb;
		bool has_store = stat(path, &sb) == 0;
		free(dir);
		free(path);
		if (!has_store)
			continue;
		struct verify v = {
			.data_dir = c.data_dir,
			.account = name,
		};
		verify_account(&v);
		accounts++;
		messages += v.messages;
		problems += v.problems;
		verify_reset(&v);
	}
	ts__store_cli_end(&c);
	if (problems == 0) {
		printf("verifydata: %zu account%s, %zu message%s, no "
		       "problems\n",
		       accounts, accounts == 1 ? "" : "s", messages,
		       messages == 1 ? "" : "s");
		return 0;
	}
	printf("verifydata: %zu account%s, %zu message%s, %zu problem%s\n",
	       accounts, accounts == 1 ? "" : "s", messages,
	       messages == 1 ? "" : "s", problems, problems == 1 ? "" : "s");
	return 1;
}
