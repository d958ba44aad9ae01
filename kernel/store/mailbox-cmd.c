/*
 * kernel/store/mailbox-cmd.c — `tessera mailbox list|create|rename|delete
 * ACCOUNT …`: manage an account's mailboxes from the command line.
 *
 * Each subcommand opens the account's database (creating the store on
 * first use), does its work in one write transaction and prints one line.
 * Deleting a mailbox (refused for Inbox and for one with children)
 * removes its messages' files only after the commit.
 * It works beside a serving tessera (SQLite locking); sessions of that
 * server learn about the change when they next look, not at once.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/store/commands.h"
#include "kernel/store/store-cli.h"
#include "kernel/store/store-private.h"

#define MAILBOX_USAGE                                                        \
	"mailbox list ACCOUNT | create ACCOUNT NAME [--special-use \\Sent] " \
	"| rename ACCOUNT FROM TO | delete ACCOUNT NAME [-c FILE]"

/* RFC 6154 special-use attributes a mailbox may carry. */
static const char *const mailbox_special_uses[] = {
	"\\All",  "\\Archive", "\\Drafts", "\\Flagged",
	"\\Junk", "\\Sent",    "\\Trash",  NULL,
};

/* The canonical spelling of a special use (case-insensitive), or NULL. */
static const char *
mailbox_special_use(const char *value)
{
	for (size_t i = 0; mailbox_special_uses[i] != NULL; i++)
		if (strcasecmp(value, mailbox_special_uses[i]) == 0)
			return mailbox_special_uses[i];
	return NULL;
}

static int
mailbox_list(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT name, special_use, total, unseen, size"
			       " FROM mailboxes"
			       " ORDER BY name <> 'Inbox', name",
			       -1, &st, NULL) != SQLITE_OK)
		return ts__store_cli_fail("sqlite: %s", sqlite3_errmsg(db));
	printf("%-30s %-12s %8s %8s %12s\n", "NAME", "SPECIAL-USE", "TOTAL",
	       "UNSEEN", "SIZE");
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *special = (const char *)sqlite3_column_text(st, 1);
		printf("%-30s %-12s %8lld %8lld %12lld\n",
		       (const char *)sqlite3_column_text(st, 0),
		       special != NULL && *special != '\0' ? special : "-",
		       (long long)sqlite3_column_int64(st, 2),
		       (long long)sqlite3_column_int64(st, 3),
		       (long long)sqlite3_column_int64(st, 4));
	}
	ts__store_finalize(st);
	if (step != SQLITE_DONE)
		return ts__store_cli_fail("sqlite: %s", sqlite3_errmsg(db));
	return 0;
}

/* The number of messages in mailbox `name` (0 when it does not exist). */
static int64_t
mailbox_total(sqlite3 *db, const char *name)
{
	int64_t id, total = 0;
	sqlite3_stmt *st = NULL;
	if (ts__store_mailbox_id(db, name, &id) != 0 ||
	    sqlite3_prepare_v2(db,
			       "SELECT count(*) FROM messages"
			       " WHERE mailbox_id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		total = sqlite3_column_int64(st, 0);
	ts__store_finalize(st);
	return total;
}

/*
 * Run one change inside BEGIN IMMEDIATE … COMMIT; the files of deleted
 * messages go after the commit.
 */
static int
mailbox_change(sqlite3 *db, const char *data_dir, const char *account,
	       const struct ts__store_cli_opts *o)
{
	const char *sub = o->words[0];
	const char *name = o->words[2];
	char *error = NULL;
	int64_t id, deleted = 0;
	const char *special = NULL;

	if (strcmp(sub, "create") == 0 && o->special_use != NULL) {
		special = mailbox_special_use(o->special_use);
		if (special == NULL)
			return ts__store_cli_fail(
				"unknown special use '%s' (one of \\All "
				"\\Archive \\Drafts \\Flagged \\Junk "
				"\\Sent \\Trash)",
				o->special_use);
	}
	if (ts__store_cli_exec(db, "BEGIN IMMEDIATE", &error) != 0) {
		ts__store_cli_fail("%s: %s", account, error);
		free(error);
		return 1;
	}
	int rc;
	if (strcmp(sub, "create") == 0) {
		rc = ts__store_mailbox_create(db, name, special, &id, &error);
	} else if (strcmp(sub, "rename") == 0) {
		rc = ts__store_mailbox_rename(db, name, o->words[3], &error);
	} else {
		deleted = mailbox_total(db, name);
		rc = ts__store_mailbox_delete(db, name, &error);
	}
	if (rc == 0)
		rc = ts__store_sync_dirs(db, &error);
	if (rc == 0)
		rc = ts__store_cli_exec(db, "COMMIT", &error);
	if (rc != 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		if (rc == TS_E_EXIST && error == NULL)
			error = ts_xstrdup("mailbox exists");
		ts__store_cli_fail("%s: cannot %s mailbox '%s': %s", account,
				   sub, name,
				   error != NULL ? error : ts_strerror(rc));
		free(error);
		return 1;
	}
	ts__store_after_commit(db, data_dir, account);

	if (strcmp(sub, "create") == 0)
		printf("%s: created mailbox %s%s%s\n", account, name,
		       special != NULL ? " " : "",
		       special != NULL ? special : "");
	else if (strcmp(sub, "rename") == 0)
		printf("%s: renamed mailbox %s to %s\n", account, name,
		       o->words[3]);
	else
		printf("%s: deleted mailbox %s and %lld message%s\n", account,
		       name, (long long)deleted, deleted == 1 ? "" : "s");
	return 0;
}

int
ts__cmd_mailbox(int argc, char **argv)
{
	struct ts__store_cli_opts o;
	int rc = ts__store_cli_parse(argc, argv, MAILBOX_USAGE, true, &o);
	if (rc >= 0)
		return rc;
	if (o.word_count < 1)
		return ts__store_cli_usage(MAILBOX_USAGE, "missing subcommand");
	const char *sub = o.words[0];
	int want;
	if (strcmp(sub, "list") == 0)
		want = 2;
	else if (strcmp(sub, "create") == 0 || strcmp(sub, "delete") == 0)
		want = 3;
	else if (strcmp(sub, "rename") == 0)
		want = 4;
	else
		return ts__store_cli_usage(MAILBOX_USAGE,
					   "unknown subcommand '%s'", sub);
	if (o.word_count != want)
		return ts__store_cli_usage(MAILBOX_USAGE,
					   "mailbox %s takes %d argument%s",
					   sub, want - 1, want == 2 ? "" : "s");
	if (o.special_use != NULL && strcmp(sub, "create") != 0)
		return ts__store_cli_usage(MAILBOX_USAGE,
					   "--special-use is for create only");

	/* Names are checked before anything is opened or created. */
	for (int i = 2; i < want; i++) {
		const char *problem =
			ts__store_mailbox_name_problem(o.words[i]);
		if (problem != NULL)
			return ts__store_cli_fail("bad mailbox name '%s': %s",
						  o.words[i], problem);
	}

	struct ts__store_cli c;
	rc = ts__store_cli_boot(&c, o.config);
	if (rc == 0 && !ts__store_cli_account_known(&c, o.words[1]))
		rc = 1;
	sqlite3 *db = NULL;
	char *error = NULL;
	if (rc == 0 &&
	    ts__store_db_open(c.data_dir, o.words[1], &db, &error) != 0) {
		rc = ts__store_cli_fail("%s: %s", o.words[1], error);
		free(error);
	}
	if (rc == 0)
		rc = want == 2 ? mailbox_list(db)
			       : mailbox_change(db, c.data_dir, o.words[1], &o);
	if (db != NULL)
		ts__store_db_close(&db);
	ts__store_cli_end(&c);
	return rc;
}
