/*
 * modules/dmarc/report-hook.c — aggregate reports arriving by mail.
 *
 * dmarc_report_process is the one path every report takes, from a
 * message or from `tessera dmarc import`: unpack (report-unpack.c),
 * parse (report-parse.c), store (report-store.c), one outcome per
 * document.  The deliver_local hook runs it for messages to the
 * configured report_address: the spool file is read and processed on
 * the work pool (the loop never parses), each outcome is logged, and the
 * message is then delivered like any other — a report that cannot be
 * read loses nothing, it is still in the mailbox.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tessera/common.h>
#include <tessera/hook.h>
#include <tessera/log.h>
#include <tessera/txn.h>
#include <tessera/work.h>

#include "dmarc-hook.h"
#include "report.h"

static void
dmarc_batch_add(struct dmarc_report_batch *batch,
		struct dmarc_report_outcome *o)
{
	batch->items = ts_xrealloc(batch->items, (batch->count + 1) *
							 sizeof(*batch->items));
	batch->items[batch->count++] = *o;
}

void
dmarc_report_process(const char *dir, uint64_t max_size, const char *source,
		     const void *data, size_t len,
		     struct dmarc_report_batch *batch)
{
	struct dmarc_report_docs docs = { 0 };
	if (dmarc_report_unpack(data, len, max_size, &docs) != 0) {
		struct dmarc_report_outcome o = {
			.status = DMARC_REPORT_FAILED,
			.error = ts_xstrdup("no aggregate report found (not "
					    "XML, gzip, zip or a message with "
					    "one attached)"),
		};
		dmarc_batch_add(batch, &o);
		return;
	}
	for (size_t i = 0; i < docs.count; i++) {
		struct dmarc_report_doc *doc = &docs.docs[i];
		struct dmarc_report_outcome o = {
			.status = DMARC_REPORT_FAILED,
			.name = doc->name != NULL ? ts_xstrdup(doc->name)
						  : NULL,
		};
		char *error = NULL;
		if (doc->xml == NULL) {
			o.error = ts_xstrdup(doc->error != NULL
						     ? doc->error
						     : "unreadable document");
		} else if (dmarc_report_parse(doc->xml, doc->len, &o.report,
					      &error) != 0) {
			o.error = error;
		} else {
			bool duplicate = false;
			o.report->source =
				doc->name != NULL
					? ts_xasprintf("%s attachment %s",
						       source, doc->name)
					: ts_xstrdup(source);
			if (dmarc_report_store(dir, o.report, &duplicate,
					       &error) != 0)
				o.error = error;
			else
				o.status = duplicate ? DMARC_REPORT_DUPLICATE
						     : DMARC_REPORT_STORED;
		}
		dmarc_batch_add(batch, &o);
	}
	dmarc_report_docs_free(&docs);
}

void
dmarc_report_batch_free(struct dmarc_report_batch *batch)
{
	for (size_t i = 0; i < batch->count; i++) {
		free(batch->items[i].name);
		free(batch->items[i].error);
		dmarc_report_free(&batch->items[i].report);
	}
	free(batch->items);
	batch->items = NULL;
	batch->count = 0;
}

/* --- the deliver_local hook ------------------------------------------------ */

struct dmarc_report_job {
	struct ts_ctx *ctx;
	ts_hook_token token;
	char *path, *dir, *source;
	uint64_t max_size;
	char *read_error; /* the message could not be read */
	struct dmarc_report_batch batch;
	bool cancelled; /* the call went away while on the pool */
};

static void
dmarc_report_job_free(struct dmarc_report_job *job)
{
	dmarc_report_batch_free(&job->batch);
	free(job->path);
	free(job->dir);
	free(job->source);
	free(job->read_error);
	free(job);
}

/* On a pool thread: read the spool file and process it. */
static void
dmarc_report_work(void *arg)
{
	struct dmarc_report_job *job = arg;
	int fd = open(job->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		job->read_error = ts_xasprintf("cannot read %s: %s", job->path,
					       strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if ((uint64_t)st.st_size > job->max_size) {
		job->read_error = ts_xasprintf(
			"message of %lld bytes is larger than report_max_size",
			(long long)st.st_size);
		close(fd);
		return;
	}
	size_t len = (size_t)st.st_size, got = 0;
	char *data = ts_xmalloc(len + 1);
	while (got < len) {
		ssize_t n = read(fd, data + got, len - got);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	data[got] = '\0';
	dmarc_report_process(job->dir, job->max_size, job->source, data, got,
			     &job->batch);
	free(data);
}

static void
dmarc_report_log(struct dmarc_report_job *job)
{
	if (job->read_error != NULL) {
		ts_log(job->ctx, TS_LOG_WARN,
		       "dmarc report not read source=\"%s\": %s", job->source,
		       job->read_error);
		return;
	}
	for (size_t i = 0; i < job->batch.count; i++) {
		const struct dmarc_report_outcome *o = &job->batch.items[i];
		const struct dmarc_report *r = o->report;
		if (o->status == DMARC_REPORT_FAILED) {
			ts_log(job->ctx, TS_LOG_WARN,
			       "dmarc report refused source=\"%s\" "
			       "attachment=\"%s\": %s",
			       job->source, o->name != NULL ? o->name : "-",
			       o->error != NULL ? o->error : "?");
			continue;
		}
		ts_log(job->ctx, TS_LOG_INFO,
		       "dmarc report %s org=\"%s\" id=\"%s\" domain=%s "
		       "records=%zu key=%s",
		       o->status == DMARC_REPORT_DUPLICATE ? "duplicate"
							   : "stored",
		       r->org_name, r->report_id,
		       r->domain != NULL ? r->domain : "-", r->record_count,
		       r->key != NULL ? r->key : "-");
	}
}

static void
dmarc_report_done(void *arg, int status)
{
	struct dmarc_report_job *job = arg;
	(void)status;
	if (!job->cancelled) {
		dmarc_report_log(job);
		/* The message goes on to its mailbox whatever happened. */
		ts_hook_resume(job->ctx, job->token, TS_HOOK_CONTINUE);
	}
	dmarc_report_job_free(job);
}

static void
dmarc_report_cancel(void *arg)
{
	struct dmarc_report_job *job = arg;
	job->cancelled = true; /* freed when the pool work is done */
}

/* Whether "<address>" (the hook's arg) is report_address. */
static bool
dmarc_report_for_us(const char *arg, const char *address)
{
	size_t n = strlen(address);
	if (arg == NULL)
		return false;
	if (arg[0] == '<')
		arg++;
	return strncasecmp(arg, address, n) == 0 &&
	       (arg[n] == '\0' || arg[n] == '>');
}

int
dmarc_report_hook(struct ts_hook_call *call)
{
	struct ts_ctx *ctx = ts_hook_call_ctx(call);
	const struct dmarc_settings *set = ts_ctx_data(ctx);
	struct ts_txn *txn = ts_hook_call_txn(call);
	const char *path = txn != NULL ? ts_txn_message_path(txn) : NULL;

	if (set == NULL || set->report_address == NULL || path == NULL ||
	    !dmarc_report_for_us(ts_hook_call_arg(call), set->report_address))
		return TS_HOOK_CONTINUE;
	struct dmarc_report_job *job = ts_xcalloc(1, sizeof(*job));
	job->ctx = ctx;
	job->path = ts_xstrdup(path);
	job->dir = ts_xstrdup(set->report_dir);
	job->max_size = set->report_max_size;
	job->source = ts_xasprintf("message %s", ts_txn_id(txn));
	/*
	 * The done callback runs on the loop, so not before this function
	 * returns: submitting before suspending is safe, and a refused
	 * submission (shutdown) simply delivers without looking.
	 */
	if (ts_work_submit(ctx, dmarc_report_work, dmarc_report_done, job) !=
	    0) {
		dmarc_report_job_free(job);
		return TS_HOOK_CONTINUE;
	}
	job->token = ts_hook_suspend(call, dmarc_report_cancel, job);
	return TS_HOOK_PENDING;
}
