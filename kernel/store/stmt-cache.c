/*
 * kernel/store/stmt-cache.c — prepared statements kept across a store's
 * jobs.
 *
 * Parsing SQL was a fifth of the CPU a delivery cost (bench/smtp-inbound:
 * some twenty prepares per message).  An account's store runs one job at
 * a time on its write connection, so that connection can keep its
 * statements: while the job runs, ts__store_prepare hands out a cached
 * statement with the same SQL text that nobody is using, and
 * ts__store_finalize gives it back (reset, bindings cleared) instead of
 * finalizing it.  The job runner (store.c) says which cache belongs to
 * the running job with ts__store_cache_enter/leave; the pointer is
 * per-thread because jobs of different accounts run on different pool
 * threads at once.  Outside a job (CLI tools, read connections) nothing
 * is cached and the two functions are plain prepare and finalize.
 */
#include "config.h"

#include <string.h>

#include "kernel/store/core.h"

/* The cache of the job running on this thread, or NULL. */
static __thread struct ts__stmt_cache *stmt_cache_current;

void
ts__store_cache_enter(struct ts__stmt_cache *cache, sqlite3 *db)
{
	if (cache->db != db) {
		/* A new connection: the old statements went with the old. */
		cache->count = 0;
		cache->db = db;
	}
	stmt_cache_current = cache;
}

void
ts__store_cache_leave(void)
{
	stmt_cache_current = NULL;
}

void
ts__store_cache_forget(struct ts__stmt_cache *cache)
{
	/* ts__store_db_close finalized the statements with the connection. */
	cache->count = 0;
	cache->db = NULL;
}

sqlite3_stmt *
ts__store_prepare(sqlite3 *db, const char *sql, char **error_r)
{
	struct ts__stmt_cache *c = stmt_cache_current;
	bool cached = c != NULL && c->db == db;
	for (size_t i = 0; cached && i < c->count; i++) {
		if (c->entries[i].in_use ||
		    strcmp(sqlite3_sql(c->entries[i].st), sql) != 0)
			continue;
		c->entries[i].in_use = true;
		return c->entries[i].st;
	}
	sqlite3_stmt *st = NULL;
	unsigned flags = cached ? SQLITE_PREPARE_PERSISTENT : 0;
	if (sqlite3_prepare_v3(db, sql, -1, flags, &st, NULL) != SQLITE_OK) {
		ts__store_sql_error(db, sql, error_r);
		sqlite3_finalize(st);
		return NULL;
	}
	/* A full cache (built SQL, e.g. IN lists) just stops caching. */
	if (cached && c->count < TS__STMT_CACHE_MAX)
		c->entries[c->count++] = (struct ts__stmt_entry){
			.st = st, .in_use = true
		};
	return st;
}

void
ts__store_finalize(sqlite3_stmt *st)
{
	struct ts__stmt_cache *c = stmt_cache_current;
	for (size_t i = 0; st != NULL && c != NULL && i < c->count; i++) {
		if (c->entries[i].st != st)
			continue;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		c->entries[i].in_use = false;
		return;
	}
	sqlite3_finalize(st);
}
