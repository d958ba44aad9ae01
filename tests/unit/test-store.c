/*
 * tests/unit/test-store.c — unit tests of the store's core (db.c,
 * mailbox.c, message.c) and of its asynchronous API with group commit,
 * delivery and notifications (store.c, deliver.c).
 *
 * Each test gets a temp data_dir and a hand-built kernel with a libuv
 * loop, a [core] section and two accounts (alice, bob).  The synchronous
 * core is driven directly inside transactions; the asynchronous API
 * through the loop.  After every test, every account database is checked
 * with ts__store_check_counts (counts, sizes, keyword sets, uidnext,
 * modseqs), like a debug assertion on close.
 */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kernel/boot.h"
#include "kernel/store/accounts.h"
#include "kernel/store/store-private.h"

struct world {
	struct ts_kernel k;
	uv_loop_t loop;
	char dir[64];
	char *logbuf;
	size_t logsize;
};

static struct ts_cfg *
world_cfg(const char *data_dir)
{
	char *text = ts_xasprintf("[core]\n"
				  "data_dir = %s\n"
				  "[domain example.org]\n"
				  "[account alice]\n"
				  "addresses = alice@example.org\n"
				  "[account bob]\n"
				  "addresses = bob@example.org\n",
				  data_dir);
	struct ts_cfg *cfg = ts__cfg_parse_string("t.ini", text);
	free(text);
	for (size_t i = 0; i < cfg->sect_count; i++) {
		struct ts_cfg_sect *s = cfg->sects[i];
		const struct ts_cfg_key *tables[1];
		if (strcmp(s->type, "core") == 0)
			tables[0] = ts__core_keys;
		else if (strcmp(s->type, "domain") == 0)
			tables[0] = ts__domain_keys;
		else
			tables[0] = ts__account_keys;
		ts__cfg_bind(cfg, s, tables, 1);
	}
	assert_int_equal(cfg->error_count, 0);
	return cfg;
}

static int
setup(void **state)
{
	struct world *w = ts_xcalloc(1, sizeof(*w));
	strcpy(w->dir, "/tmp/ts-store-XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	uv_loop_init(&w->loop);
	ts__kernel_init(&w->k, &w->loop);
	w->k.log.out = open_memstream(&w->logbuf, &w->logsize);
	w->k.cfg = world_cfg(w->dir);
	assert_int_equal(ts__accounts_check(w->k.cfg), 0);
	assert_int_equal(ts__accounts_apply(&w->k, w->k.cfg), 0);
	*state = w;
	return 0;
}

/* The invariant check on every account database the test made. */
static void
check_account(struct world *w, const char *account)
{
	char *path = ts_xasprintf("%s/accounts/%s/index.db", w->dir, account);
	bool exists = access(path, F_OK) == 0;
	free(path);
	if (!exists)
		return;
	sqlite3 *db;
	char *error = NULL;
	assert_int_equal(ts__store_db_open(w->dir, account, &db, &error), 0);
	char *problems = NULL;
	int rc = ts__store_check_counts(db, &problems);
	if (rc != 0)
		print_error("%s: %s\n", account, problems);
	assert_int_equal(rc, 0);
	ts__store_db_close(&db);
}

static int
teardown(void **state)
{
	struct world *w = *state;
	FILE *log = w->k.log.out;
	uv_run(&w->loop, UV_RUN_DEFAULT);
	ts__stores_free(&w->k);
	check_account(w, "alice");
	check_account(w, "bob");
	ts__kernel_fini(&w->k);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	fclose(log);
	free(w->logbuf);
	/* The directory name comes from mkdtemp: safe in a command. */
	char *cmd = ts_xasprintf("rm -rf '%s'", w->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(w);
	return 0;
}

/* --- helpers -------------------------------------------------------------- */

static sqlite3 *
open_db(struct world *w, const char *account)
{
	sqlite3 *db = NULL;
	char *error = NULL;
	int rc = ts__store_db_open(w->dir, account, &db, &error);
	if (rc != 0)
		print_error("%s\n", error);
	assert_int_equal(rc, 0);
	return db;
}

static void
exec(sqlite3 *db, const char *sql)
{
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static void
commit(struct world *w, sqlite3 *db, const char *account)
{
	char *error = NULL;
	assert_int_equal(ts__store_sync_dirs(db, &error), 0);
	exec(db, "COMMIT");
	ts__store_after_commit(db, w->dir, account);
}

static int64_t
query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static const char *
msg_text(int n)
{
	static char buf[256];
	snprintf(buf, sizeof(buf),
		 "From: a@example.net\r\nSubject: topic %d\r\n"
		 "Message-ID: <m%d@example.net>\r\n\r\nbody %d\r\n",
		 n, n, n);
	return buf;
}

static uint32_t
add(struct world *w, sqlite3 *db, const char *mailbox, int n, uint32_t flags,
    const char *keywords, int64_t *id_r)
{
	const char *text = msg_text(n);
	struct ts__store_new_message m = {
		.mailbox = mailbox,
		.prefix = "X-Prefix: 1\r\n",
		.prefix_len = 13,
		.flags = flags,
		.keywords = keywords,
		.received = 1700000000 + n,
		.data = text,
		.len = strlen(text),
	};
	uint32_t uid = 0;
	int64_t id = 0;
	char *error = NULL;
	int rc = ts__store_add_message(db, w->dir, "alice", &m, &uid, &id,
				       &error);
	if (rc != 0)
		print_error("%s\n", error);
	assert_int_equal(rc, 0);
	if (id_r != NULL)
		*id_r = id;
	return uid;
}

/* Find mailbox `name` in a listing. */
static const struct ts_mailbox_info *
find_box(const struct ts_mailbox_info *boxes, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(boxes[i].name, name) == 0)
			return &boxes[i];
	return NULL;
}

static void
expect_counts(sqlite3 *db, const char *name, uint32_t total, uint32_t unseen,
	      uint32_t unread, uint32_t deleted)
{
	struct ts_mailbox_info *boxes;
	size_t n;
	assert_int_equal(ts__store_mailbox_list(db, &boxes, &n), 0);
	const struct ts_mailbox_info *b = find_box(boxes, n, name);
	assert_non_null(b);
	assert_int_equal(b->total, total);
	assert_int_equal(b->unseen, unseen);
	assert_int_equal(b->unread, unread);
	assert_int_equal(b->deleted, deleted);
	ts__store_mailbox_list_free(boxes, n);
	char *problems = NULL;
	assert_int_equal(ts__store_check_counts(db, &problems), 0);
}

static bool
file_exists(struct world *w, const char *account, int64_t id)
{
	char *path = ts__store_message_path(w->dir, account, id);
	bool yes = access(path, F_OK) == 0;
	free(path);
	return yes;
}

/* --- names ---------------------------------------------------------------- */

static void
test_mailbox_names(void **state)
{
	(void)state;
	static const struct {
		const char *name, *problem;
	} cases[] = {
		{ "Inbox", NULL },
		{ "Lists/tessera", NULL },
		{ "Caf\xc3\xa9/\xe2\x82\xac", NULL },
		{ "", "empty mailbox name" },
		{ "a//b", "empty segment in mailbox name" },
		{ "/a", "mailbox name starts with '/'" },
		{ "a/", "mailbox name ends with '/'" },
		{ "a/../b", "'.' or '..' segment in mailbox name" },
		{ "..", "'.' or '..' segment in mailbox name" },
		{ "a/./b", "'.' or '..' segment in mailbox name" },
		{ "a..b", NULL },
		{ "a\tb", "control character in mailbox name" },
		{ "a\x7f", "control character in mailbox name" },
		{ "a\xc2\x85", "control character in mailbox name" },
		{ "a\xff", "mailbox name is not valid UTF-8" },
		{ "a\xc0\xaf", "mailbox name is not valid UTF-8" },
		{ "a\xed\xa0\x80", "mailbox name is not valid UTF-8" },
		{ "a\xe2\x82", "mailbox name is not valid UTF-8" },
		{ "a*", "wildcard in mailbox name" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = ts__store_mailbox_name_problem(cases[i].name);
		if (cases[i].problem == NULL) {
			if (got != NULL)
				fail_msg("%s: %s", cases[i].name, got);
		} else {
			assert_non_null(got);
			assert_string_equal(got, cases[i].problem);
		}
	}
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_string_equal(ts__store_mailbox_name_problem(longname),
			    "mailbox name too long");
}

/* --- the synchronous core ------------------------------------------------- */

static void
test_new_account(void **state)
{
	struct world *w = *state;
	sqlite3 *db = open_db(w, "alice");
	struct ts_mailbox_info *boxes;
	size_t n;
	assert_int_equal(ts__store_mailbox_list(db, &boxes, &n), 0);
	assert_int_equal(n, 7);
	assert_string_equal(boxes[0].name, "Inbox");
	assert_null(boxes[0].special_use);
	const char *want[][2] = { { "Sent", "\\Sent" },
				  { "Drafts", "\\Drafts" },
				  { "Trash", "\\Trash" },
				  { "Junk", "\\Junk" },
				  { "Archive", "\\Archive" } };
	for (size_t i = 0; i < 5; i++) {
		const struct ts_mailbox_info *b =
			find_box(boxes, n, want[i][0]);
		assert_non_null(b);
		assert_string_equal(b->special_use, want[i][1]);
		assert_int_equal(b->uidnext, 1);
		assert_true(b->uidvalidity > 0);
	}
	assert_non_null(find_box(boxes, n, "Rejects"));
	/* UIDVALIDITYs are distinct. */
	for (size_t i = 1; i < n; i++)
		assert_true(boxes[i].uidvalidity != boxes[0].uidvalidity);
	ts__store_mailbox_list_free(boxes, n);
	int64_t id;
	assert_int_equal(ts__store_mailbox_id(db, "INBOX", &id), 0);
	assert_int_equal(ts__store_mailbox_id(db, "inbox", &id), 0);
	assert_int_equal(ts__store_mailbox_id(db, "sent", &id), TS_E_NOTFOUND);
	assert_int_equal(query_int(db, "SELECT value FROM meta WHERE key ="
				       " 'schema_version'"),
			 TS__STORE_SCHEMA_VERSION);
	ts__store_db_close(&db);
}

static void
test_messages_flags_move_copy_expunge(void **state)
{
	struct world *w = *state;
	sqlite3 *db = open_db(w, "alice");
	exec(db, "BEGIN IMMEDIATE");
	int64_t id1, id2, id3;
	assert_int_equal(add(w, db, "Inbox", 1, 0, NULL, &id1), 1);
	assert_int_equal(add(w, db, "Inbox", 2, TS_FLAG_SEEN, "$Label1", &id2),
			 2);
	assert_int_equal(add(w, db, "Inbox", 3, TS_FLAG_DELETED, NULL, &id3),
			 3);
	commit(w, db, "alice");
	assert_true(id1 < id2 && id2 < id3);
	expect_counts(db, "Inbox", 3, 2, 1, 1);
	/* Size is prefix + file. */
	assert_int_equal(query_int(db, "SELECT size FROM mailboxes"
				       " WHERE name = 'Inbox'"),
			 3 * 13 + strlen(msg_text(1)) * 3);
	char *kw = NULL;
	{
		sqlite3_stmt *st;
		sqlite3_prepare_v2(db,
				   "SELECT keywords FROM mailboxes"
				   " WHERE name = 'Inbox'",
				   -1, &st, NULL);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		kw = ts_xstrdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	assert_string_equal(kw, "$Label1");
	free(kw);

	int64_t inbox, archive, trash;
	assert_int_equal(ts__store_mailbox_id(db, "Inbox", &inbox), 0);
	assert_int_equal(ts__store_mailbox_id(db, "Archive", &archive), 0);
	assert_int_equal(ts__store_mailbox_id(db, "Trash", &trash), 0);
	int64_t modseq0 = query_int(db, "SELECT max(modseq) FROM messages");

	/* Flags: uid 1 seen, uid 2 loses seen and gains keywords, uid 3
	 * undeleted; uid 9 does not exist and is skipped. */
	char *error = NULL;
	exec(db, "BEGIN IMMEDIATE");
	uint32_t u1[] = { 1, 9 };
	struct ts_flag_change seen = { .add = TS_FLAG_SEEN };
	assert_int_equal(ts__store_set_flags(db, inbox, u1, 2, &seen, &error),
			 0);
	uint32_t u2[] = { 2 };
	struct ts_flag_change unseen = { .remove = TS_FLAG_SEEN,
					 .add_keywords = "Work $label1 work",
					 .remove_keywords = "$LABEL1" };
	assert_int_equal(ts__store_set_flags(db, inbox, u2, 1, &unseen, &error),
			 0);
	uint32_t u3[] = { 3 };
	struct ts_flag_change undelete = { .remove = TS_FLAG_DELETED };
	assert_int_equal(
		ts__store_set_flags(db, inbox, u3, 1, &undelete, &error), 0);
	commit(w, db, "alice");
	expect_counts(db, "Inbox", 3, 2, 2, 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM messages WHERE"
				       " keywords = 'Work' AND uid = 2"),
			 1);
	assert_true(query_int(db, "SELECT min(modseq) FROM messages") >
		    modseq0);

	/* Move uid 3 to Archive: same id, new UID, tombstone. */
	exec(db, "BEGIN IMMEDIATE");
	assert_int_equal(
		ts__store_move(db, inbox, u3, 1, archive, NULL, &error), 0);
	commit(w, db, "alice");
	expect_counts(db, "Inbox", 2, 1, 1, 0);
	expect_counts(db, "Archive", 1, 1, 1, 0);
	assert_int_equal(query_int(db, "SELECT uid FROM messages WHERE id = 3"),
			 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM expunged"
				       " WHERE uid = 3 AND mailbox_id ="
				       " (SELECT id FROM mailboxes"
				       " WHERE name = 'Inbox')"),
			 1);
	assert_true(file_exists(w, "alice", id3));

	/* Copy uid 2 to Trash: a new id, the same inode. */
	exec(db, "BEGIN IMMEDIATE");
	assert_int_equal(ts__store_copy(db, w->dir, "alice", inbox, u2, 1,
					trash, NULL, &error),
			 0);
	commit(w, db, "alice");
	expect_counts(db, "Trash", 1, 1, 1, 0);
	int64_t copy_id = query_int(db, "SELECT id FROM messages WHERE"
					" mailbox_id = (SELECT id FROM"
					" mailboxes WHERE name = 'Trash')");
	assert_true(copy_id > id3);
	char *p2 = ts__store_message_path(w->dir, "alice", id2);
	struct stat sb;
	assert_int_equal(stat(p2, &sb), 0);
	assert_int_equal(sb.st_nlink, 2);
	free(p2);

	/* Expunge uid 2: its file goes after the commit, the copy stays. */
	exec(db, "BEGIN IMMEDIATE");
	assert_int_equal(ts__store_expunge(db, inbox, u2, 1, &error), 0);
	assert_true(file_exists(w, "alice", id2));
	commit(w, db, "alice");
	assert_false(file_exists(w, "alice", id2));
	assert_true(file_exists(w, "alice", copy_id));
	expect_counts(db, "Inbox", 1, 0, 0, 0);
	int64_t tomb =
		query_int(db, "SELECT modseq FROM expunged WHERE uid = 2");
	assert_int_equal(tomb, query_int(db, "SELECT value FROM meta"
					     " WHERE key = 'modseq'"));
	/* UIDs keep rising after an expunge; ids are never reused. */
	exec(db, "BEGIN IMMEDIATE");
	int64_t id4;
	assert_int_equal(add(w, db, "Inbox", 4, 0, NULL, &id4), 4);
	commit(w, db, "alice");
	assert_true(id4 > copy_id);
	ts__store_db_close(&db);
}

static void
test_rollback_and_crash_sweep(void **state)
{
	struct world *w = *state;
	sqlite3 *db = open_db(w, "alice");
	exec(db, "BEGIN IMMEDIATE");
	int64_t id1, id2;
	add(w, db, "Inbox", 1, 0, NULL, &id1);
	commit(w, db, "alice");
	/* A transaction that never commits leaves a file behind (as a
	 * crash would), and nothing in the index. */
	exec(db, "BEGIN IMMEDIATE");
	add(w, db, "Inbox", 2, 0, NULL, &id2);
	exec(db, "ROLLBACK");
	expect_counts(db, "Inbox", 1, 1, 1, 0);
	assert_true(file_exists(w, "alice", id2));
	ts__store_db_close(&db);
	/* Reopening sweeps it; the committed one stays. */
	db = open_db(w, "alice");
	assert_false(file_exists(w, "alice", id2));
	assert_true(file_exists(w, "alice", id1));
	/* The id is handed out again, to a fresh file. */
	exec(db, "BEGIN IMMEDIATE");
	int64_t id3;
	assert_int_equal(add(w, db, "Inbox", 3, 0, NULL, &id3), 2);
	commit(w, db, "alice");
	assert_int_equal(id3, id2);
	ts__store_db_close(&db);
}

static void
test_mailbox_create_rename_delete(void **state)
{
	struct world *w = *state;
	sqlite3 *db = open_db(w, "alice");
	char *error = NULL;
	int64_t id;
	exec(db, "BEGIN IMMEDIATE");
	assert_int_equal(
		ts__store_mailbox_create(db, "A/B/C", NULL, &id, &error), 0);
	assert_int_equal(ts__store_mailbox_id(db, "A", &id), 0);
	assert_int_equal(ts__store_mailbox_id(db, "A/B", &id), 0);
	assert_int_equal(ts__store_mailbox_create(db, "A/B", NULL, &id, &error),
			 TS_E_EXIST);
	assert_string_equal(error, "mailbox exists");
	free(error);
	error = NULL;
	assert_int_equal(
		ts__store_mailbox_create(db, "x/../y", NULL, &id, &error),
		TS_E_INVAL);
	assert_string_equal(error, "'.' or '..' segment in mailbox name");
	free(error);
	error = NULL;
	assert_int_equal(
		ts__store_mailbox_create(db, "S", "\\Bogus", &id, &error),
		TS_E_INVAL);
	assert_string_equal(error, "unknown special use \\Bogus");
	free(error);
	error = NULL;
	add(w, db, "A/B", 1, 0, NULL, NULL);
	commit(w, db, "alice");

	exec(db, "BEGIN IMMEDIATE");
	/* Into itself. */
	assert_int_equal(ts__store_mailbox_rename(db, "A", "A/B/D", &error),
			 TS_E_INVAL);
	assert_string_equal(error, "cannot move a mailbox into itself");
	free(error);
	error = NULL;
	assert_int_equal(ts__store_mailbox_rename(db, "A", "Sent", &error),
			 TS_E_EXIST);
	free(error);
	error = NULL;
	assert_int_equal(ts__store_mailbox_rename(db, "Nope", "Q", &error),
			 TS_E_NOTFOUND);
	free(error);
	error = NULL;
	/* Children move along, parents of the target are created. */
	int64_t ab;
	assert_int_equal(ts__store_mailbox_id(db, "A/B", &ab), 0);
	assert_int_equal(ts__store_mailbox_rename(db, "A", "X/Y", &error), 0);
	commit(w, db, "alice");
	assert_int_equal(ts__store_mailbox_id(db, "A", &id), TS_E_NOTFOUND);
	assert_int_equal(ts__store_mailbox_id(db, "A/B", &id), TS_E_NOTFOUND);
	assert_int_equal(ts__store_mailbox_id(db, "X", &id), 0);
	assert_int_equal(ts__store_mailbox_id(db, "X/Y/B/C", &id), 0);
	assert_int_equal(ts__store_mailbox_id(db, "X/Y/B", &id), 0);
	assert_int_equal(id, ab);
	expect_counts(db, "X/Y/B", 1, 1, 1, 0);

	/* Delete: refused with children and for Inbox. */
	exec(db, "BEGIN IMMEDIATE");
	assert_int_equal(ts__store_mailbox_delete(db, "X/Y/B", &error),
			 TS_E_INVAL);
	assert_string_equal(error, "mailbox has children");
	free(error);
	error = NULL;
	assert_int_equal(ts__store_mailbox_delete(db, "inbox", &error),
			 TS_E_INVAL);
	assert_string_equal(error, "cannot delete Inbox");
	free(error);
	error = NULL;
	assert_int_equal(ts__store_mailbox_delete(db, "X/Y/B/C", &error), 0);
	int64_t msg_id = query_int(db, "SELECT id FROM messages");
	commit(w, db, "alice");
	exec(db, "BEGIN IMMEDIATE");
	assert_int_equal(ts__store_mailbox_delete(db, "X/Y/B", &error), 0);
	assert_true(file_exists(w, "alice", msg_id));
	commit(w, db, "alice");
	assert_false(file_exists(w, "alice", msg_id));
	assert_int_equal(query_int(db, "SELECT count(*) FROM messages"), 0);

	/* Renaming Inbox moves its messages and keeps an empty Inbox. */
	exec(db, "BEGIN IMMEDIATE");
	int64_t id1, id2;
	add(w, db, "Inbox", 1, 0, NULL, &id1);
	add(w, db, "Inbox", 2, TS_FLAG_SEEN, NULL, &id2);
	commit(w, db, "alice");
	exec(db, "BEGIN IMMEDIATE");
	assert_int_equal(
		ts__store_mailbox_rename(db, "INBOX", "Old/In", &error), 0);
	commit(w, db, "alice");
	expect_counts(db, "Inbox", 0, 0, 0, 0);
	expect_counts(db, "Old/In", 2, 1, 1, 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM expunged WHERE"
				       " mailbox_id = (SELECT id FROM"
				       " mailboxes WHERE name = 'Inbox')"),
			 2);
	assert_true(file_exists(w, "alice", id1));
	ts__store_db_close(&db);
}

static void
test_check_counts_finds_drift(void **state)
{
	struct world *w = *state;
	sqlite3 *db = open_db(w, "alice");
	exec(db, "BEGIN IMMEDIATE");
	add(w, db, "Inbox", 1, 0, "Kw", NULL);
	commit(w, db, "alice");
	exec(db, "UPDATE mailboxes SET unseen = 5, keywords = ''"
		 " WHERE name = 'Inbox'");
	char *problems = NULL;
	assert_int_equal(ts__store_check_counts(db, &problems), TS_E_INVAL);
	assert_string_equal(problems,
			    "mailbox Inbox: unseen 5, counted 1\n"
			    "message 1: keywords 'Kw' not in mailbox Inbox's"
			    " set\n");
	free(problems);
	exec(db, "UPDATE mailboxes SET unseen = 1, keywords = 'Kw'"
		 " WHERE name = 'Inbox'");
	ts__store_db_close(&db);
}

/* --- the asynchronous API ------------------------------------------------- */

struct seen {
	struct ts_store *store;
	int status;
	int done_calls;
	char error[128];
	uint32_t uids[16];
	size_t uid_count;
	/* notifications */
	int notify_calls;
	size_t change_count;
	enum ts_store_change_kind kinds[64];
	uint64_t modseqs[64];
	uint32_t change_uids[64];
	char mailboxes[64][32];
	char trace[512];
};

static void
on_open(struct ts_store *store, int status, void *arg)
{
	struct seen *s = arg;
	s->store = store;
	s->status = status;
	s->done_calls++;
}

static void
on_done(int status, const char *error, void *arg)
{
	struct seen *s = arg;
	s->status = status;
	snprintf(s->error, sizeof(s->error), "%s", error != NULL ? error : "");
	s->done_calls++;
	size_t len = strlen(s->trace);
	snprintf(s->trace + len, sizeof(s->trace) - len, "done%d ", status);
}

static void
on_deliver(int status, const uint32_t *uids, size_t count, void *arg)
{
	struct seen *s = arg;
	s->status = status;
	s->done_calls++;
	s->uid_count = count;
	for (size_t i = 0; i < count && i < 16; i++)
		s->uids[i] = uids[i];
}

static void
on_change(const struct ts_store_change *changes, size_t count, void *arg)
{
	struct seen *s = arg;
	s->notify_calls++;
	size_t len = strlen(s->trace);
	snprintf(s->trace + len, sizeof(s->trace) - len, "notify%zu ", count);
	for (size_t i = 0; i < count && s->change_count < 64; i++) {
		size_t j = s->change_count++;
		s->kinds[j] = changes[i].kind;
		s->modseqs[j] = changes[i].modseq;
		s->change_uids[j] = changes[i].uid;
		snprintf(s->mailboxes[j], sizeof(s->mailboxes[j]), "%s",
			 changes[i].mailbox);
	}
}

static struct ts_store *
open_store(struct world *w, const char *account)
{
	struct seen s = { 0 };
	assert_int_equal(ts_store_open(&w->k.kctx, account, on_open, &s), 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(s.done_calls, 1);
	assert_int_equal(s.status, 0);
	assert_non_null(s.store);
	assert_string_equal(ts_store_account(s.store), account);
	return s.store;
}

static char *
spool(struct world *w, int n, size_t pad)
{
	char *path = ts_xasprintf("%s/spool-%d", w->dir, n);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(msg_text(n), f);
	for (size_t i = 0; i < pad; i++)
		fputc('x', f);
	fclose(f);
	return path;
}

static void
test_open_unknown_account(void **state)
{
	struct world *w = *state;
	struct seen s = { 0 };
	s.status = 1;
	assert_int_equal(ts_store_open(&w->k.kctx, "nobody", on_open, &s), 0);
	assert_int_equal(s.done_calls, 0); /* never from inside the call */
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(s.done_calls, 1);
	assert_int_equal(s.status, TS_E_NOTFOUND);
	assert_null(s.store);
	struct ts_delivery_target t = { .account = "nobody" };
	assert_int_equal(ts_store_deliver(&w->k.kctx, "/nonexistent", NULL, &t,
					  1, on_deliver, &s),
			 TS_E_NOTFOUND);
	struct ts_delivery_target bad = { .account = "alice",
					  .mailbox = "a//b" };
	assert_int_equal(ts_store_deliver(&w->k.kctx, "/nonexistent", NULL,
					  &bad, 1, on_deliver, &s),
			 TS_E_INVAL);
}

static void
test_async_operations_and_notifications(void **state)
{
	struct world *w = *state;
	struct ts_store *store = open_store(w, "alice");
	struct seen n = { 0 };
	struct ts_store_sub *sub = ts_store_subscribe(store, on_change, &n);
	assert_non_null(sub);

	/* Deliver three messages one after another. */
	for (int i = 1; i <= 3; i++) {
		struct seen d = { 0 };
		char *path = spool(w, i, 0);
		struct ts_delivery_target t = { .account = "alice",
						.keywords = "$Seen-by-test" };
		assert_int_equal(ts_store_deliver(&w->k.kctx, path,
						  "Received: x\r\n", &t, 1,
						  on_deliver, &d),
				 0);
		uv_run(&w->loop, UV_RUN_DEFAULT);
		assert_int_equal(d.status, 0);
		assert_int_equal(d.uid_count, 1);
		assert_int_equal(d.uids[0], (uint32_t)i);
		free(path);
	}
	/* The mailbox's new keyword set comes before the message using it
	 * (IMAP: the FLAGS response before the FETCH). */
	assert_int_equal(n.change_count, 4);
	assert_int_equal(n.kinds[0], TS_CHANGE_MAILBOX_KEYWORDS);
	assert_int_equal(n.kinds[1], TS_CHANGE_ADDED);
	assert_int_equal(n.kinds[2], TS_CHANGE_ADDED);
	assert_int_equal(n.kinds[3], TS_CHANGE_ADDED);
	assert_int_equal(n.change_uids[3], 3);

	/* Flags, move, copy, expunge, mailbox operations: the done
	 * callbacks and notifications in order, one job for all. */
	struct seen d1 = { 0 }, d2 = { 0 }, d3 = { 0 }, d4 = { 0 }, d5 = { 0 },
		    d6 = { 0 };
	uint32_t uid1[] = { 1 }, uid2[] = { 2 }, uid3[] = { 3 };
	struct ts_flag_change seen_flag = { .add = TS_FLAG_SEEN |
						   TS_FLAG_FLAGGED };
	n.change_count = 0;
	n.notify_calls = 0;
	uint64_t commits = ts__store_commit_count(store);
	assert_int_equal(ts_store_set_flags(store, "INBOX", uid1, 1, &seen_flag,
					    on_done, &d1),
			 0);
	assert_int_equal(
		ts_store_move(store, "Inbox", uid2, 1, "Archive", on_done, &d2),
		0);
	assert_int_equal(
		ts_store_copy(store, "Inbox", uid3, 1, "Trash", on_done, &d3),
		0);
	assert_int_equal(
		ts_store_expunge(store, "Inbox", uid3, 1, on_done, &d4), 0);
	assert_int_equal(
		ts_store_mailbox_create(store, "Sent", NULL, on_done, &d5), 0);
	assert_int_equal(
		ts_store_mailbox_rename(store, "Archive", "Old", on_done, &d6),
		0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(d1.status, 0);
	assert_int_equal(d2.status, 0);
	assert_int_equal(d3.status, 0);
	assert_int_equal(d4.status, 0);
	assert_int_equal(d5.status, TS_E_EXIST);
	assert_string_equal(d5.error, "mailbox exists");
	assert_int_equal(d6.status, 0);
	/* The first request ran alone (nothing was running), the other
	 * five waited and shared the next job's commit. */
	assert_int_equal(ts__store_commit_count(store), commits + 2);
	assert_int_equal(n.notify_calls, 2);
	/* A mailbox's new keyword set comes before the message with it;
	 * a move's two halves and a keyword set share the change's
	 * modseq, everything else takes the next one. */
	static const enum ts_store_change_kind want[] = {
		TS_CHANGE_FLAGS,
		TS_CHANGE_MAILBOX_KEYWORDS,
		TS_CHANGE_EXPUNGED,
		TS_CHANGE_ADDED,
		TS_CHANGE_MAILBOX_KEYWORDS,
		TS_CHANGE_ADDED,
		TS_CHANGE_EXPUNGED,
		TS_CHANGE_MAILBOX_RENAMED,
	};
	static const char *const want_box[] = { "Inbox",   "Archive", "Inbox",
						"Archive", "Trash",   "Trash",
						"Inbox",   "Old" };
	static const bool same_modseq[] = { false, false, true,	 true,
					    false, true,  false, false };
	assert_int_equal(n.change_count, 8);
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(n.kinds[i], want[i]);
		assert_string_equal(n.mailboxes[i], want_box[i]);
		if (i > 0 && same_modseq[i])
			assert_int_equal(n.modseqs[i], n.modseqs[i - 1]);
		else if (i > 0)
			assert_true(n.modseqs[i] > n.modseqs[i - 1]);
	}

	/* Reading back: the listing, the counts, the content. */
	struct ts_message_info *msgs = NULL;
	size_t count = 0;
	sqlite3 *db = open_db(w, "alice");
	expect_counts(db, "Inbox", 1, 0, 0, 0);
	expect_counts(db, "Old", 1, 1, 1, 0);
	expect_counts(db, "Trash", 1, 1, 1, 0);
	int64_t inbox;
	assert_int_equal(ts__store_mailbox_id(db, "Inbox", &inbox), 0);
	assert_int_equal(
		ts__store_message_list(db, inbox, 1, UINT32_MAX, &msgs, &count),
		0);
	assert_int_equal(count, 1);
	assert_int_equal(msgs[0].uid, 1);
	assert_int_equal(msgs[0].flags, TS_FLAG_SEEN | TS_FLAG_FLAGGED);
	assert_string_equal(msgs[0].keywords, "$Seen-by-test");
	assert_string_equal(msgs[0].message_id, "m1@example.net");
	assert_int_equal(msgs[0].size,
			 strlen("Received: x\r\n") + strlen(msg_text(1)));
	int fd;
	char *prefix;
	size_t prefix_len;
	assert_int_equal(ts_store_message_read(store, msgs[0].id, &fd, &prefix,
					       &prefix_len),
			 0);
	assert_string_equal(prefix, "Received: x\r\n");
	char buf[256] = { 0 };
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, msg_text(1));
	close(fd);
	free(prefix);
	assert_int_equal(
		ts_store_message_read(store, 999, &fd, &prefix, &prefix_len),
		TS_E_NOTFOUND);
	ts__store_message_list_free(msgs, count);
	ts__store_db_close(&db);

	ts_store_unsubscribe(&sub);
	assert_null(sub);
	ts_store_unref(&store);
	assert_null(store);
}

struct listing {
	int status;
	size_t count;
	uint32_t uids[8];
	char names[16][32];
};

static void
on_messages(int status, const struct ts_message_info *messages, size_t count,
	    void *arg)
{
	struct listing *l = arg;
	l->status = status;
	l->count = count;
	for (size_t i = 0; i < count && i < 8; i++)
		l->uids[i] = messages[i].uid;
}

static void
on_mailboxes(int status, const struct ts_mailbox_info *boxes, size_t count,
	     void *arg)
{
	struct listing *l = arg;
	l->status = status;
	l->count = count;
	for (size_t i = 0; i < count && i < 16; i++)
		snprintf(l->names[i], sizeof(l->names[i]), "%s", boxes[i].name);
}

static void
test_async_listings(void **state)
{
	struct world *w = *state;
	struct ts_store *store = open_store(w, "bob");
	struct seen c = { 0 };
	assert_int_equal(ts_store_mailbox_create(store, "Lists/tessera", NULL,
						 on_done, &c),
			 0);
	struct listing boxes = { 0 }, msgs = { 0 }, missing = { 0 };
	assert_int_equal(ts_store_mailboxes(store, on_mailboxes, &boxes), 0);
	assert_int_equal(
		ts_store_messages(store, "Inbox", 1, 10, on_messages, &msgs),
		0);
	assert_int_equal(
		ts_store_messages(store, "Nope", 1, 10, on_messages, &missing),
		0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(c.status, 0);
	assert_int_equal(boxes.status, 0);
	assert_int_equal(boxes.count, 9);
	assert_string_equal(boxes.names[0], "Inbox");
	assert_string_equal(boxes.names[3], "Junk");
	assert_string_equal(boxes.names[4], "Lists");
	assert_string_equal(boxes.names[5], "Lists/tessera");
	assert_int_equal(msgs.status, 0);
	assert_int_equal(msgs.count, 0);
	assert_int_equal(missing.status, TS_E_NOTFOUND);
	ts_store_unref(&store);
}

/* A job that holds the account's queue until the test lets it go. */
struct gate {
	uv_sem_t sem;
	struct world *w;
	uv_timer_t timer;
	unsigned expect_pending;
	int status, done_calls;
};

static void
gate_done(int status, const char *error, void *arg)
{
	struct gate *g = arg;
	(void)error;
	g->status = status;
	g->done_calls++;
}

static int
gate_run(sqlite3 *db, const char *data_dir, const char *account, void *arg,
	 char **error_r)
{
	struct gate *g = arg;
	(void)db;
	(void)data_dir;
	(void)account;
	(void)error_r;
	uv_sem_wait(&g->sem);
	return 0;
}

/* Open the gate once only the gate job is outstanding: every delivery
 * has fsynced its spool file and is queued behind the gate. */
static void
gate_check(uv_timer_t *t)
{
	struct gate *g = t->data;
	if (g->w->k.pending_work == g->expect_pending) {
		uv_timer_stop(t);
		uv_close((uv_handle_t *)t, NULL);
		uv_sem_post(&g->sem);
	}
}

static void
test_group_commit(void **state)
{
	struct world *w = *state;
	struct ts_store *store = open_store(w, "alice");
	struct seen n = { 0 };
	struct ts_store_sub *sub = ts_store_subscribe(store, on_change, &n);
	struct gate g = { .w = w, .expect_pending = 1 };
	uv_sem_init(&g.sem, 0);
	uint64_t commits = ts__store_commit_count(store);
	ts__store_queue(store, gate_run, gate_done, &g);
	enum { N = 10 };
	struct seen d[N];
	char *paths[N];
	memset(d, 0, sizeof(d));
	for (int i = 0; i < N; i++) {
		paths[i] = spool(w, 100 + i, 4096);
		struct ts_delivery_target t = { .account = "alice",
						.mailbox = "Lists/bulk" };
		assert_int_equal(ts_store_deliver(&w->k.kctx, paths[i], NULL,
						  &t, 1, on_deliver, &d[i]),
				 0);
	}
	uv_timer_init(&w->loop, &g.timer);
	g.timer.data = &g;
	uv_timer_start(&g.timer, gate_check, 1, 1);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	uv_sem_destroy(&g.sem);
	assert_int_equal(g.done_calls, 1);
	assert_int_equal(g.status, 0);
	/* The gate's commit, then ONE commit for all ten deliveries. */
	assert_int_equal(ts__store_commit_count(store), commits + 2);
	uint32_t seen_uids = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(d[i].status, 0);
		assert_int_equal(d[i].done_calls, 1);
		assert_true(d[i].uids[0] >= 1 && d[i].uids[0] <= N);
		seen_uids |= 1u << d[i].uids[0];
		free(paths[i]);
	}
	assert_int_equal(seen_uids, ((1u << (N + 1)) - 1) & ~1u);
	/* One notification: the mailboxes created, then ten additions. */
	assert_int_equal(n.notify_calls, 1);
	assert_int_equal(n.change_count, 2 + N);
	assert_int_equal(n.kinds[0], TS_CHANGE_MAILBOX_CREATED);
	assert_string_equal(n.mailboxes[0], "Lists");
	assert_string_equal(n.mailboxes[1], "Lists/bulk");
	for (int i = 0; i < N; i++) {
		assert_int_equal(n.kinds[2 + i], TS_CHANGE_ADDED);
		assert_int_equal(n.change_uids[2 + i], (uint32_t)i + 1);
		assert_true(n.modseqs[2 + i] > n.modseqs[1 + i]);
	}
	ts_store_unsubscribe(&sub);
	ts_store_unref(&store);
}

static void
test_deliver_many_accounts(void **state)
{
	struct world *w = *state;
	char *path = spool(w, 7, 100);
	struct ts_delivery_target t[] = {
		{ .account = "alice" },
		{ .account = "bob", .flags = TS_FLAG_FLAGGED },
		{ .account = "alice",
		  .mailbox = "Lists/x",
		  .from_reject = true },
	};
	struct seen d = { 0 };
	assert_int_equal(
		ts_store_deliver(&w->k.kctx, path, NULL, t, 3, on_deliver, &d),
		0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.uid_count, 3);
	assert_int_equal(d.uids[0], 1);
	assert_int_equal(d.uids[1], 1);
	assert_int_equal(d.uids[2], 1);
	/* One inode: the spool file and three links. */
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_nlink, 4);
	sqlite3 *db = open_db(w, "bob");
	expect_counts(db, "Inbox", 1, 1, 1, 0);
	assert_int_equal(query_int(db, "SELECT flags FROM messages"),
			 TS_FLAG_FLAGGED);
	ts__store_db_close(&db);
	db = open_db(w, "alice");
	assert_int_equal(query_int(db, "SELECT from_reject FROM messages"
				       " WHERE uid = 1 AND mailbox_id = (SELECT"
				       " id FROM mailboxes WHERE name ="
				       " 'Lists/x')"),
			 1);
	ts__store_db_close(&db);

	/* bob's store cannot open: the delivery fails as a whole, alice
	 * keeps her copy (documented: no cross-database transaction). */
	char *bob_dir = ts_xasprintf("%s/accounts/bob", w->dir);
	char *moved = ts_xasprintf("%s/accounts/bob.away", w->dir);
	ts__stores_free(&w->k); /* forget the open connections */
	assert_int_equal(rename(bob_dir, moved), 0);
	FILE *f = fopen(bob_dir, "w");
	fclose(f);
	struct seen e = { 0 };
	assert_int_equal(
		ts_store_deliver(&w->k.kctx, path, NULL, t, 2, on_deliver, &e),
		0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(e.status, TS_E_IO);
	assert_int_equal(e.uid_count, 0);
	unlink(bob_dir);
	assert_int_equal(rename(moved, bob_dir), 0);
	db = open_db(w, "alice");
	expect_counts(db, "Inbox", 2, 2, 2, 0);
	ts__store_db_close(&db);
	free(bob_dir);
	free(moved);

	/* A missing spool file fails before touching any account. */
	struct seen m = { 0 };
	assert_int_equal(ts_store_deliver(&w->k.kctx, "/nonexistent/spool",
					  NULL, t, 1, on_deliver, &m),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(m.status, TS_E_NOTFOUND);
	free(path);
}

struct self_unsub {
	struct ts_store_sub *sub, *other;
	int calls;
};

static void
on_change_unsub(const struct ts_store_change *changes, size_t count, void *arg)
{
	struct self_unsub *u = arg;
	(void)changes;
	(void)count;
	u->calls++;
	ts_store_unsubscribe(&u->sub);
	ts_store_unsubscribe(&u->other);
}

static void
test_unsubscribe_inside_notification(void **state)
{
	struct world *w = *state;
	struct ts_store *store = open_store(w, "alice");
	struct seen later = { 0 };
	struct self_unsub u = { 0 };
	u.sub = ts_store_subscribe(store, on_change_unsub, &u);
	u.other = ts_store_subscribe(store, on_change, &later);
	struct seen c = { 0 };
	ts_store_mailbox_create(store, "One", NULL, on_done, &c);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	ts_store_mailbox_create(store, "Two", NULL, on_done, &c);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(u.calls, 1);
	/* The second subscriber was removed before its turn came. */
	assert_int_equal(later.notify_calls, 0);
	/* The done callback ran after the notification. */
	assert_int_equal(c.done_calls, 2);
	ts_store_unref(&store);
}

/* --- sync-ops.c: COPYUID, UNCHANGEDSINCE, tombstones, subscriptions --- */

struct sync_seen {
	int status, calls;
	char error[64];
	uint32_t uidvalidity;
	size_t count;
	uint32_t a[16], b[16];
};

static void
on_uids(int status, const char *error, uint32_t uidvalidity,
	const uint32_t *src, const uint32_t *dst, size_t count, void *arg)
{
	struct sync_seen *s = arg;
	s->status = status;
	s->calls++;
	snprintf(s->error, sizeof(s->error), "%s", error != NULL ? error : "");
	s->uidvalidity = uidvalidity;
	s->count = count;
	for (size_t i = 0; i < count && i < 16; i++) {
		s->a[i] = src[i];
		s->b[i] = dst[i];
	}
}

static void
on_flags(int status, const char *error, const uint32_t *modified, size_t count,
	 void *arg)
{
	struct sync_seen *s = arg;
	s->status = status;
	s->calls++;
	snprintf(s->error, sizeof(s->error), "%s", error != NULL ? error : "");
	s->count = count;
	for (size_t i = 0; i < count && i < 16; i++)
		s->a[i] = modified[i];
}

static void
on_uid_list(int status, const uint32_t *uids, size_t count, void *arg)
{
	struct sync_seen *s = arg;
	s->status = status;
	s->calls++;
	s->count = count;
	for (size_t i = 0; i < count && i < 16; i++)
		s->a[i] = uids[i];
}

struct box_seen {
	int status;
	bool subscribed;
	uint32_t uidvalidity;
	uint64_t highest;
	const char *want;
};

static void
on_box(int status, const struct ts_mailbox_info *boxes, size_t count, void *arg)
{
	struct box_seen *b = arg;
	b->status = status;
	for (size_t i = 0; i < count; i++) {
		if (strcmp(boxes[i].name, b->want) != 0)
			continue;
		b->subscribed = boxes[i].subscribed;
		b->uidvalidity = boxes[i].uidvalidity;
		b->highest = boxes[i].highest_modseq;
	}
}

struct msg_seen {
	size_t count;
	uint32_t uids[16];
	uint64_t modseqs[16];
	uint32_t flags[16];
};

static void
on_msgs(int status, const struct ts_message_info *messages, size_t count,
	void *arg)
{
	struct msg_seen *m = arg;
	assert_int_equal(status, 0);
	m->count = count;
	for (size_t i = 0; i < count && i < 16; i++) {
		m->uids[i] = messages[i].uid;
		m->modseqs[i] = messages[i].modseq;
		m->flags[i] = messages[i].flags;
	}
}

static void
test_sync_ops(void **state)
{
	struct world *w = *state;
	struct ts_store *store = open_store(w, "alice");
	for (int i = 1; i <= 4; i++) {
		struct seen d = { 0 };
		char *path = spool(w, i, 0);
		struct ts_delivery_target t = { .account = "alice" };
		assert_int_equal(ts_store_deliver(&w->k.kctx, path, NULL, &t, 1,
						  on_deliver, &d),
				 0);
		uv_run(&w->loop, UV_RUN_DEFAULT);
		assert_int_equal(d.status, 0);
		free(path);
	}

	/* COPYUID: pairs in request order, missing UIDs skipped */
	struct sync_seen c = { 0 };
	uint32_t want[] = { 3, 99, 1 };
	assert_int_equal(ts_store_copy_uids(store, "Inbox", want, 3, "Archive",
					    false, on_uids, &c),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.count, 2);
	assert_int_equal(c.a[0], 3);
	assert_int_equal(c.b[0], 1);
	assert_int_equal(c.a[1], 1);
	assert_int_equal(c.b[1], 2);
	struct box_seen archive = { .want = "Archive" };
	assert_int_equal(ts_store_mailboxes(store, on_box, &archive), 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(c.uidvalidity, archive.uidvalidity);

	/* move: new UIDs in Trash, tombstones in Inbox */
	struct box_seen before = { .want = "Inbox" };
	assert_int_equal(ts_store_mailboxes(store, on_box, &before), 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	struct sync_seen m = { 0 };
	uint32_t two[] = { 2 };
	assert_int_equal(ts_store_copy_uids(store, "Inbox", two, 1, "Trash",
					    true, on_uids, &m),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(m.status, 0);
	assert_int_equal(m.count, 1);
	assert_int_equal(m.b[0], 1);
	struct sync_seen miss = { 0 };
	assert_int_equal(ts_store_copy_uids(store, "Inbox", two, 1, "Nope",
					    false, on_uids, &miss),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(miss.status, TS_E_NOTFOUND);
	assert_string_equal(miss.error, "no such mailbox");

	/* tombstones after a modseq: the moved UID 2, then an expunge */
	struct sync_seen v = { 0 };
	assert_int_equal(ts_store_vanished(store, "Inbox", before.highest,
					   on_uid_list, &v),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(v.status, 0);
	assert_int_equal(v.count, 1);
	assert_int_equal(v.a[0], 2);
	struct seen e = { 0 };
	uint32_t four[] = { 4 };
	assert_int_equal(ts_store_expunge(store, "Inbox", four, 1, on_done, &e),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	memset(&v, 0, sizeof(v));
	assert_int_equal(ts_store_vanished(store, "Inbox", 0, on_uid_list, &v),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(v.count, 2);
	assert_int_equal(v.a[1], 4);
	memset(&v, 0, sizeof(v));
	assert_int_equal(ts_store_vanished(store, "Nope", 0, on_uid_list, &v),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(v.status, TS_E_NOTFOUND);

	/* UNCHANGEDSINCE: 1 and 3 left, 3 changed after `since` */
	struct msg_seen ms = { 0 };
	assert_int_equal(ts_store_messages(store, "Inbox", 1, 10, on_msgs, &ms),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(ms.count, 2);
	uint64_t since =
		ms.modseqs[0] > ms.modseqs[1] ? ms.modseqs[0] : ms.modseqs[1];
	struct seen f3 = { 0 };
	uint32_t three[] = { 3 };
	struct ts_flag_change flag = { .add = TS_FLAG_FLAGGED };
	assert_int_equal(ts_store_set_flags(store, "Inbox", three, 1, &flag,
					    on_done, &f3),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	struct sync_seen cs = { 0 };
	uint32_t both[] = { 1, 3, 77 };
	struct ts_flag_change seen_flag = { .add = TS_FLAG_SEEN };
	assert_int_equal(ts_store_set_flags_since(store, "Inbox", both, 3,
						  &seen_flag, since, on_flags,
						  &cs),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(cs.status, 0);
	assert_int_equal(cs.count, 1);
	assert_int_equal(cs.a[0], 3);
	assert_int_equal(ts_store_messages(store, "Inbox", 1, 10, on_msgs, &ms),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(ms.flags[0], TS_FLAG_SEEN);
	assert_int_equal(ms.flags[1], TS_FLAG_FLAGGED);
	/* 0: unconditional */
	memset(&cs, 0, sizeof(cs));
	assert_int_equal(ts_store_set_flags_since(store, "Inbox", both, 3,
						  &seen_flag, 0, on_flags, &cs),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(cs.count, 0);
	assert_int_equal(ts_store_messages(store, "Inbox", 1, 10, on_msgs, &ms),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(ms.flags[1], TS_FLAG_FLAGGED | TS_FLAG_SEEN);

	/* subscriptions */
	struct seen sub = { 0 };
	assert_int_equal(ts_store_mailbox_subscribe(store, "Archive", false,
						    on_done, &sub),
			 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(sub.status, 0);
	struct box_seen arch = { .want = "Archive", .subscribed = true };
	assert_int_equal(ts_store_mailboxes(store, on_box, &arch), 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_false(arch.subscribed);
	assert_int_equal(
		ts_store_mailbox_subscribe(store, "Archive", true, NULL, NULL),
		0);
	assert_int_equal(
		ts_store_mailbox_subscribe(store, "Nope", true, on_done, &sub),
		0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(sub.status, TS_E_NOTFOUND);
	assert_int_equal(ts_store_mailboxes(store, on_box, &arch), 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_true(arch.subscribed);

	/* bad arguments */
	assert_int_equal(
		ts_store_copy_uids(NULL, "a", two, 1, "b", false, on_uids, &c),
		TS_E_INVAL);
	assert_int_equal(ts_store_vanished(store, NULL, 0, on_uid_list, &v),
			 TS_E_INVAL);
	ts_store_unref(&store);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mailbox_names),
		cmocka_unit_test_setup_teardown(test_new_account, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_messages_flags_move_copy_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_and_crash_sweep,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_mailbox_create_rename_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_counts_finds_drift,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_unknown_account,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_async_operations_and_notifications, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_sync_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_listings, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deliver_many_accounts,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_unsubscribe_inside_notification, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
