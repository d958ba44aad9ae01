/*
 * kernel/queue/admin.c — `tessera queue …`: what an admin asks of the
 * running queue through the control socket.
 *
 *   list                       every queued message and recipient
 *   hold ID|all                stop attempting (until release)
 *   release ID|all             attempt again as scheduled
 *   kick ID|all                attempt now
 *   drop ID|all                remove, without a DSN
 *   requiretls ID yes|no|default
 *                              override the message's REQUIRETLS: "no"
 *                              behaves as "TLS-Required: No" (RFC 8689)
 *
 * The index changes on the work pool (a queue job); the in-memory
 * schedule changes on the loop when the job is done.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel/queue/queue-private.h"

enum ts_qadmin_op {
	TS_QADMIN_LIST,
	TS_QADMIN_HOLD,
	TS_QADMIN_RELEASE,
	TS_QADMIN_KICK,
	TS_QADMIN_DROP,
	TS_QADMIN_REQUIRETLS,
};

static const char *const ts_qadmin_names[] = {
	"list", "hold", "release", "kick", "drop", "requiretls",
};

struct ts_qadmin {
	struct ts__queue *q;
	enum ts_qadmin_op op;
	bool all;
	int64_t id;
	int requiretls; /* -1 default, 0 no, 1 yes */
	int64_t now_ms;
	size_t changed;
	char *text; /* list output */
	size_t text_len;
	void (*answer)(char *text, void *arg);
	void *arg;
};

static void TS_PRINTF(2, 3)
ts_qadmin_printf(struct ts_qadmin *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = ts_xvasprintf(fmt, ap);
	va_end(ap);
	size_t n = strlen(s);
	a->text = ts_xrealloc(a->text, a->text_len + n + 1);
	memcpy(a->text + a->text_len, s, n + 1);
	a->text_len += n;
	free(s);
}

/* ISO 8601 UTC of unix milliseconds. */
static void
ts_qadmin_time(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *
ts_qadmin_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t != NULL ? (const char *)t : "";
}

static int
ts_qadmin_list(sqlite3 *db, struct ts_qadmin *a)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    db,
		    "SELECT m.id, m.sender, m.size, m.created_ms, m.hold,"
		    " m.requiretls, m.requiretls_override, m.account,"
		    " r.address, r.status, r.attempts, r.next_ms,"
		    " r.last_code, r.last_enhanced, r.last_text, r.last_remote"
		    " FROM messages m JOIN recipients r ON r.msg_id = m.id"
		    " ORDER BY m.id, r.id",
		    -1, &st, NULL) != SQLITE_OK)
		return TS_E_IO;
	int64_t last = -1;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		char when[32];
		if (id != last) {
			last = id;
			a->changed++;
			ts_qadmin_time(sqlite3_column_int64(st, 3), when,
				       sizeof(when));
			int over = sqlite3_column_int(st, 6);
			ts_qadmin_printf(
				a,
				"%" PRId64 " from=<%s> account=%s size=%lld"
				" queued=%s hold=%s requiretls=%s%s\n",
				id, ts_qadmin_text(st, 1),
				sqlite3_column_type(st, 7) == SQLITE_NULL
					? "-"
					: ts_qadmin_text(st, 7),
				(long long)sqlite3_column_int64(st, 2), when,
				sqlite3_column_int(st, 4) ? "yes" : "no",
				sqlite3_column_int(st, 5) ? "yes" : "no",
				over < 0 ? "" : over ? " (override yes)"
						     : " (override no)");
		}
		static const char *const states[] = { "queued", "delivered",
						      "failed" };
		int status = sqlite3_column_int(st, 9);
		ts_qadmin_time(sqlite3_column_int64(st, 11), when, sizeof(when));
		ts_qadmin_printf(a, "  to=<%s> status=%s attempts=%d",
				 ts_qadmin_text(st, 8),
				 status >= 0 && status <= 2 ? states[status]
							    : "?",
				 sqlite3_column_int(st, 10));
		if (status == TS__QRCPT_QUEUED)
			ts_qadmin_printf(a, " next=%s", when);
		if (sqlite3_column_type(st, 12) != SQLITE_NULL)
			ts_qadmin_printf(a, " last=\"%d %s %s\"%s%s",
					 sqlite3_column_int(st, 12),
					 ts_qadmin_text(st, 13),
					 ts_qadmin_text(st, 14),
					 sqlite3_column_type(st, 15) ==
							 SQLITE_NULL
						 ? ""
						 : " remote=",
					 ts_qadmin_text(st, 15));
		ts_qadmin_printf(a, "\n");
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : TS_E_IO;
}

/* Run `sql` with ?1 = id (ignored when all); counts changed rows. */
static int
ts_qadmin_exec(sqlite3 *db, struct ts_qadmin *a, const char *sql,
	       int64_t value)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return TS_E_IO;
	sqlite3_bind_int64(st, 1, a->id);
	sqlite3_bind_int(st, 2, a->all);
	sqlite3_bind_int64(st, 3, value);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return TS_E_IO;
	a->changed += (size_t)sqlite3_changes(db);
	return 0;
}

static int
ts_qadmin_job(struct ts__qjob_env *env, void *arg)
{
	struct ts_qadmin *a = arg;
	sqlite3 *db = env->db;
	switch (a->op) {
	case TS_QADMIN_LIST:
		return ts_qadmin_list(db, a);
	case TS_QADMIN_HOLD:
	case TS_QADMIN_RELEASE:
		return ts_qadmin_exec(db, a,
				      "UPDATE messages SET hold = ?3"
				      " WHERE id = ?1 OR ?2",
				      a->op == TS_QADMIN_HOLD);
	case TS_QADMIN_KICK:
		return ts_qadmin_exec(db, a,
				      "UPDATE recipients SET next_ms = ?3"
				      " WHERE status = 0 AND (msg_id = ?1 OR ?2)",
				      a->now_ms);
	case TS_QADMIN_REQUIRETLS:
		return ts_qadmin_exec(db, a,
				      "UPDATE messages SET requiretls_override"
				      " = ?3 WHERE id = ?1 OR ?2",
				      a->requiretls);
	case TS_QADMIN_DROP: {
		/* Collect the files first: they go after the commit. */
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db,
				       "SELECT id FROM messages"
				       " WHERE id = ?1 OR ?2",
				       -1, &st, NULL) != SQLITE_OK)
			return TS_E_IO;
		sqlite3_bind_int64(st, 1, a->id);
		sqlite3_bind_int(st, 2, a->all);
		while (sqlite3_step(st) == SQLITE_ROW)
			ts__qjob_unlink_later(
				env, ts__queue_msg_path(env->data_dir,
							sqlite3_column_int64(
								st, 0)));
		sqlite3_finalize(st);
		/* Recipients go too (ON DELETE CASCADE). */
		return ts_qadmin_exec(db, a,
				      "DELETE FROM messages WHERE id = ?1 OR ?2",
				      0);
	}
	}
	return TS_E_INVAL;
}

/* Bring the in-memory schedule in line with what the job changed. */
static void
ts_qadmin_apply(struct ts_qadmin *a)
{
	struct ts__queue *q = a->q;
	/* One message's entries share a hash chain; --all walks them all. */
	struct ts__qentry *e = a->all ? q->sched.all
				      : ts__qsched_find(&q->sched, a->id, NULL);
	while (e != NULL) {
		struct ts__qentry *next = a->all ? e->all_next : e->hash_next;
		if (!a->all && e->msg_id != a->id) {
			e = next;
			continue;
		}
		switch (a->op) {
		case TS_QADMIN_HOLD:
			e->hold = true;
			ts__qsched_update(&q->sched, e);
			break;
		case TS_QADMIN_RELEASE:
			e->hold = false;
			ts__qsched_update(&q->sched, e);
			break;
		case TS_QADMIN_KICK:
			e->next_ms = a->now_ms;
			ts__qsched_update(&q->sched, e);
			break;
		case TS_QADMIN_DROP:
			(void)ts__queue_drop_entry(q, e);
			break;
		default:
			break;
		}
		e = next;
	}
	ts__queue_reschedule(q);
}

static void
ts_qadmin_done(int status, void *arg)
{
	struct ts_qadmin *a = arg;
	char *reply;
	if (status != 0) {
		reply = ts_xasprintf("error queue %s: %s\n",
				     ts_qadmin_names[a->op],
				     ts_strerror(status));
	} else if (a->op == TS_QADMIN_LIST) {
		reply = ts_xasprintf("ok %zu message%s queued\n%s", a->changed,
				     a->changed == 1 ? "" : "s",
				     a->text != NULL ? a->text : "");
	} else if (a->changed == 0) {
		reply = a->all ? ts_xasprintf("ok queue %s: nothing queued\n",
					      ts_qadmin_names[a->op])
			       : ts_xasprintf("error no queued message %" PRId64
					      "\n",
					      a->id);
	} else {
		ts_qadmin_apply(a);
		ts_log(&a->q->kernel->kctx, TS_LOG_INFO,
		       "queue %s id=%s changed=%zu", ts_qadmin_names[a->op],
		       a->all ? "all" : "one", a->changed);
		reply = ts_xasprintf("ok queue %s done\n",
				     ts_qadmin_names[a->op]);
	}
	a->answer(reply, a->arg);
	free(a->text);
	free(a);
}

void
ts__queue_control(struct ts_kernel *k, const char *args,
		  void (*answer)(char *text, void *arg), void *arg)
{
	struct ts__queue *q = k->queue;
	if (q == NULL || q->stopping) {
		answer(ts_xstrdup("error the queue is not running\n"), arg);
		return;
	}
	char verb[16] = "", target[32] = "", value[16] = "", extra[2] = "";
	int n = sscanf(args, "%15s %31s %15s %1s", verb, target, value, extra);
	struct ts_qadmin *a = ts_xcalloc(1, sizeof(*a));
	a->q = q;
	a->answer = answer;
	a->arg = arg;
	a->now_ms = ts__queue_now_ms();
	a->requiretls = -1;
	size_t ops = sizeof(ts_qadmin_names) / sizeof(ts_qadmin_names[0]);
	size_t op = 0;
	while (op < ops && strcmp(verb, ts_qadmin_names[op]) != 0)
		op++;
	const char *problem = NULL;
	a->op = (enum ts_qadmin_op)op;
	if (op == ops)
		problem = "unknown queue command";
	else if (op == TS_QADMIN_LIST && n != 1)
		problem = "list takes no argument";
	else if (op != TS_QADMIN_LIST && n < 2)
		problem = "which message? (an id, or --all)";
	else if (op == TS_QADMIN_REQUIRETLS && n != 3)
		problem = "requiretls takes an id and yes, no or default";
	else if (op != TS_QADMIN_LIST && op != TS_QADMIN_REQUIRETLS && n != 2)
		problem = "too many arguments";
	if (problem == NULL && op != TS_QADMIN_LIST) {
		char *end;
		a->all = strcmp(target, "--all") == 0 ||
			 strcmp(target, "all") == 0;
		a->id = a->all ? -1 : strtoll(target, &end, 10);
		if (!a->all && (*end != '\0' || a->id <= 0))
			problem = "a message id is a positive number";
		if (op == TS_QADMIN_REQUIRETLS) {
			if (strcmp(value, "yes") == 0)
				a->requiretls = 1;
			else if (strcmp(value, "no") == 0)
				a->requiretls = 0;
			else if (strcmp(value, "default") != 0)
				problem = "requiretls takes yes, no or default";
		}
	}
	if (problem != NULL) {
		answer(ts_xasprintf("error %s: '%s'\n", problem, args), arg);
		free(a);
		return;
	}
	ts__qjobs_add(q->jobs, ts_qadmin_job, ts_qadmin_done, a,
		      op == TS_QADMIN_DROP);
}
