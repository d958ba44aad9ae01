/*
 * kernel/store/import.c — `tessera import mbox|maildir ACCOUNT MAILBOX
 * PATH`: bring messages from other mail systems into a mailbox, keeping
 * their flags, keywords and received times.
 *
 * The whole import is one write transaction: every message is added with
 * ts__store_add_message, the message directories are fsynced, then one
 * COMMIT.  An import that fails half-way (a broken or oversized message)
 * removes the files it wrote and rolls back; one that is killed leaves
 * uncommitted files that the next ts__store_db_open sweeps away.  Either
 * way nothing is half-imported.
 *
 * Canonical forms (export.c writes exactly these, so an import of an
 * export, or an export of an import of input in this form, is byte-exact):
 *  - Messages are stored with CRLF line ends: every LF not preceded by CR
 *    becomes CRLF (export turns CRLF back into LF).
 *  - mbox (mboxrd): a message starts with a "From " line at the start of
 *    the file or after an empty line, and ends with one empty line that is
 *    not part of it.  Lines matching ^>+From  lose one '>'.  The date of
 *    the From line (asctime form, taken as UTC) is the received time.
 *    Status (R: \Seen; O ignored), X-Status (A: \Answered, F: \Flagged,
 *    T: \Draft, D: \Deleted) and X-Keywords (separated by spaces and/or
 *    commas; $Junk and $NotJunk set those flags) header fields are
 *    removed from the stored message; export writes them back at the end
 *    of the header block as "Status: RO" or "Status: O", then
 *    "X-Status: AFTD" (the letters that apply, in that order; omitted
 *    when none), then "X-Keywords: k1 k2" (space separated; omitted when
 *    none).
 *  - maildir: the files of cur/ and new/, in file name order; flags from
 *    the ":2," info (S \Seen, R \Answered, F \Flagged, T \Deleted,
 *    D \Draft, P ignored, a-z keywords numbered by dovecot-keywords);
 *    the file's mtime is the received time.  The content is stored as is
 *    (apart from the CRLF rule).
 */
#include "config.h"

/* strptime() and timegm(). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kernel/store/commands.h"
#include "kernel/store/store-cli.h"
#include "kernel/store/store-private.h"

#define IMPORT_USAGE "import mbox|maildir ACCOUNT MAILBOX PATH [-c FILE]"
/* The largest message accepted, as stored (after the CRLF rule). */
#define IMPORT_MAX_SIZE ((size_t)100 * 1024 * 1024)
/* Progress on a terminal every this many messages. */
#define IMPORT_PROGRESS_EVERY 50

/* A growable byte buffer. */
struct import_buf {
	char *data;
	size_t len, alloc;
};

static void
import_buf_add(struct import_buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->alloc) {
		size_t want = b->alloc != 0 ? b->alloc : 4096;
		while (want < b->len + len + 1)
			want *= 2;
		b->data = ts_xrealloc(b->data, want);
		b->alloc = want;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

/*
 * Append one line (without its LF) and, when it had one, its line end:
 * CRLF, whether the input had LF or CRLF.
 */
static void
import_buf_line(struct import_buf *b, const char *line, size_t len, bool had_lf)
{
	import_buf_add(b, line, len);
	if (!had_lf)
		return;
	if (len > 0 && line[len - 1] == '\r')
		import_buf_add(b, "\n", 1);
	else
		import_buf_add(b, "\r\n", 2);
}

/* Add a keyword to a space-separated list unless it is there already. */
static void
import_keyword_add(struct import_buf *list, const char *word, size_t len)
{
	for (const char *p = list->data; p != NULL && *p != '\0';) {
		const char *end = strchr(p, ' ');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n == len && strncasecmp(p, word, len) == 0)
			return;
		p = end != NULL ? end + 1 : p + n;
	}
	if (list->len > 0)
		import_buf_add(list, " ", 1);
	import_buf_add(list, word, len);
}

/* One import in progress. */
struct import {
	sqlite3 *db;
	const char *data_dir;
	const char *account;
	const char *mailbox;
	const char *path;
	int64_t *ids; /* files written, removed again on failure */
	size_t count, alloc;
	size_t total;
	bool progress;
	char *error; /* the first failure, "where: what" */
};

/*
 * A keyword from the input: $Junk and $NotJunk become flags, others must
 * be valid IMAP keywords (a warning names the ones dropped).
 */
static void
import_keyword(struct import *im, const char *where, const char *word,
	       size_t len, uint32_t *flags, struct import_buf *keywords)
{
	char *w = ts_xstrndup(word, len);
	if (strcasecmp(w, "$Junk") == 0)
		*flags |= TS_FLAG_JUNK;
	else if (strcasecmp(w, "$NotJunk") == 0)
		*flags |= TS_FLAG_NOTJUNK;
	else if (ts__store_cli_keyword_ok(w))
		import_keyword_add(keywords, w, len);
	else
		fprintf(stderr,
			"tessera: warning: %s: %s: keyword '%s' is not "
			"a valid IMAP keyword, dropped\n",
			im->path, where, w);
	free(w);
}

/*
 * Add one message (CRLF form in `msg`) to the transaction.  `where` names
 * it in errors ("message 3 (line 120)").  Returns 0 or -1 with im->error.
 */
static int
import_add(struct import *im, const char *where, const struct import_buf *msg,
	   uint32_t flags, const char *keywords, int64_t received)
{
	if (msg->len > IMPORT_MAX_SIZE) {
		im->error = ts_xasprintf("%s: %s is %zu bytes, larger than "
					 "the limit of 100 MiB",
					 im->path, where, msg->len);
		return -1;
	}
	struct ts__store_new_message nm = {
		.mailbox = im->mailbox,
		.flags = flags,
		.keywords =
			keywords != NULL && *keywords != '\0' ? keywords : NULL,
		.received = received,
		.data = msg->data != NULL ? msg->data : "",
		.len = msg->len,
	};
	uint32_t uid;
	int64_t id;
	char *error = NULL;
	if (ts__store_add_message(im->db, im->data_dir, im->account, &nm, &uid,
				  &id, &error) != 0) {
		im->error = ts_xasprintf("%s: %s: %s", im->path, where,
					 error != NULL ? error : "failed");
		free(error);
		return -1;
	}
	if (im->count == im->alloc) {
		im->alloc = im->alloc != 0 ? im->alloc * 2 : 256;
		im->ids = ts_xrealloc(im->ids, im->alloc * sizeof(*im->ids));
	}
	im->ids[im->count++] = id;
	if (im->progress &&
	    (im->count % IMPORT_PROGRESS_EVERY == 0 || im->count == im->total))
		fprintf(stderr, "imported %zu/%zu messages\r", im->count,
			im->total);
	return 0;
}

/* --- mbox ----------------------------------------------------------------- */

/* Where one message of an mbox file lies. */
struct mbox_span {
	size_t from_line; /* offset of its From line */
	size_t start, end; /* its content */
	size_t line; /* line number of its From line */
};

static bool
mbox_is_from(const char *p, size_t len)
{
	return len >= 5 && memcmp(p, "From ", 5) == 0;
}

/* An empty line: nothing, or a lone CR, before the LF. */
static bool
mbox_empty_line(const char *p, size_t len)
{
	return len == 0 || (len == 1 && p[0] == '\r');
}

/*
 * Split an mbox into messages: each starts at a From line found at the
 * start of the file or after an empty line; the empty line before the
 * next From line (or the one at the end of the file) separates them.
 */
static int
mbox_split(const char *data, size_t size, struct mbox_span **spans_r,
	   size_t *count_r, char **error_r)
{
	struct mbox_span *spans = NULL;
	size_t count = 0, alloc = 0, line = 0;
	size_t pos = 0, prev_start = 0;
	bool prev_empty = true;

	while (pos < size) {
		const char *lf = memchr(data + pos, '\n', size - pos);
		size_t len =
			lf != NULL ? (size_t)(lf - (data + pos)) : size - pos;
		size_t next = lf != NULL ? pos + len + 1 : size;
		line++;
		if (prev_empty && mbox_is_from(data + pos, len)) {
			if (count > 0)
				spans[count - 1].end = prev_start;
			if (count == alloc) {
				alloc = alloc != 0 ? alloc * 2 : 64;
				spans = ts_xrealloc(spans,
						    alloc * sizeof(*spans));
			}
			spans[count++] = (struct mbox_span){
				.from_line = pos,
				.start = next,
				.end = size,
				.line = line,
			};
		} else if (count == 0) {
			free(spans);
			*error_r = ts_xstrdup("not an mbox file: it does not "
					      "start with a \"From \" line");
			return TS_E_INVAL;
		}
		prev_empty = mbox_empty_line(data + pos, len);
		prev_start = pos;
		pos = next;
	}
	/* The last message's separating empty line, if the file has one. */
	if (count > 0) {
		struct mbox_span *s = &spans[count - 1];
		if (s->end - s->start >= 2 && data[s->end - 1] == '\n' &&
		    data[s->end - 2] == '\n')
			s->end--;
		else if (s->end - s->start >= 3 &&
			 memcmp(data + s->end - 3, "\n\r\n", 3) == 0)
			s->end -= 2;
	}
	*spans_r = spans;
	*count_r = count;
	return 0;
}

/* The received time of a From line ("From sender asctime"), or now. */
static int64_t
mbox_from_time(const char *line, size_t len)
{
	char buf[256];
	struct tm tm;
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, line, len);
	buf[len] = '\0';
	const char *p = buf + 5;
	while (*p == ' ')
		p++;
	/* The envelope sender, unless the line has none. */
	memset(&tm, 0, sizeof(tm));
	if (strptime(p, "%a %b %e %H:%M:%S %Y", &tm) == NULL) {
		while (*p != '\0' && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
		memset(&tm, 0, sizeof(tm));
		if (strptime(p, "%a %b %e %H:%M:%S %Y", &tm) == NULL)
			return (int64_t)time(NULL);
	}
	time_t t = timegm(&tm);
	return t == (time_t)-1 ? (int64_t)time(NULL) : (int64_t)t;
}

/* Which of our three header fields a header line starts, if any. */
enum mbox_field { MBOX_OTHER, MBOX_STATUS, MBOX_XSTATUS, MBOX_XKEYWORDS };

static enum mbox_field
mbox_field(const char *p, size_t len, size_t *value_r)
{
	static const struct {
		const char *name;
		enum mbox_field field;
	} fields[] = {
		{ "Status:", MBOX_STATUS },
		{ "X-Status:", MBOX_XSTATUS },
		{ "X-Keywords:", MBOX_XKEYWORDS },
	};
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(fields[i].name);
		if (len >= n && strncasecmp(p, fields[i].name, n) == 0) {
			*value_r = n;
			return fields[i].field;
		}
	}
	return MBOX_OTHER;
}

/*
 * Turn one mbox message into its stored form: un-quote ^>+From  lines,
 * take out Status, X-Status and X-Keywords (with their continuation
 * lines) and read flags and keywords from them, apply the CRLF rule.
 */
static void
mbox_message(struct import *im, const char *where, const char *data, size_t len,
	     struct import_buf *out, uint32_t *flags_r,
	     struct import_buf *keywords)
{
	struct import_buf values[4] = { { 0 } };
	enum mbox_field current = MBOX_OTHER;
	bool in_header = true;
	size_t pos = 0;

	while (pos < len) {
		const char *p = data + pos;
		const char *lf = memchr(p, '\n', len - pos);
		size_t n = lf != NULL ? (size_t)(lf - p) : len - pos;
		pos += n + (lf != NULL ? 1 : 0);

		size_t q = 0;
		while (q < n && p[q] == '>')
			q++;
		if (q > 0 && mbox_is_from(p + q, n - q)) {
			p++;
			n--;
		}
		if (in_header) {
			size_t value;
			enum mbox_field f;
			if (mbox_empty_line(p, n)) {
				in_header = false;
			} else if ((p[0] == ' ' || p[0] == '\t') &&
				   current != MBOX_OTHER) {
				import_buf_add(&values[current], " ", 1);
				import_buf_add(&values[current], p, n);
				continue;
			} else if ((f = mbox_field(p, n, &value)) !=
				   MBOX_OTHER) {
				current = f;
				import_buf_add(&values[f], " ", 1);
				import_buf_add(&values[f], p + value,
					       n - value);
				continue;
			} else if (p[0] != ' ' && p[0] != '\t') {
				current = MBOX_OTHER;
			}
		}
		import_buf_line(out, p, n, lf != NULL);
	}

	uint32_t flags = 0;
	for (const char *s = values[MBOX_STATUS].data; s != NULL && *s; s++)
		if (*s == 'R')
			flags |= TS_FLAG_SEEN;
	for (const char *s = values[MBOX_XSTATUS].data; s != NULL && *s; s++) {
		if (*s == 'A')
			flags |= TS_FLAG_ANSWERED;
		else if (*s == 'F')
			flags |= TS_FLAG_FLAGGED;
		else if (*s == 'T')
			flags |= TS_FLAG_DRAFT;
		else if (*s == 'D')
			flags |= TS_FLAG_DELETED;
	}
	const char *s = values[MBOX_XKEYWORDS].data;
	while (s != NULL && *s != '\0') {
		s += strspn(s, " \t,\r");
		size_t n = strcspn(s, " \t,\r");
		if (n > 0)
			import_keyword(im, where, s, n, &flags, keywords);
		s += n;
	}
	*flags_r = flags;
	for (size_t i = 0; i < 4; i++)
		free(values[i].data);
}

static int
import_mbox(struct import *im)
{
	int fd = open(im->path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		im->error = ts_xasprintf("cannot open %s: %s", im->path,
					 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		im->error = ts_xasprintf("%s: not a file (an mbox is one "
					 "file)",
					 im->path);
		return -1;
	}
	size_t size = (size_t)sb.st_size;
	const char *data = "";
	if (size > 0) {
		data = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (data == MAP_FAILED) {
			im->error = ts_xasprintf("cannot read %s: %s", im->path,
						 strerror(errno));
			close(fd);
			return -1;
		}
	}
	close(fd);

	struct mbox_span *spans = NULL;
	size_t count = 0;
	char *error = NULL;
	int rc = 0;
	if (mbox_split(data, size, &spans, &count, &error) != 0) {
		im->error = ts_xasprintf("%s: %s", im->path, error);
		free(error);
		rc = -1;
	}
	im->total = count;
	struct import_buf msg = { 0 }, keywords = { 0 };
	for (size_t i = 0; rc == 0 && i < count; i++) {
		const struct mbox_span *s = &spans[i];
		char *where =
			ts_xasprintf("message %zu (line %zu)", i + 1, s->line);
		/* Refuse early what cannot shrink below the limit. */
		if (s->end - s->start > 2 * IMPORT_MAX_SIZE + 1024) {
			im->error = ts_xasprintf("%s: %s is %zu bytes, larger "
						 "than the limit of 100 MiB",
						 im->path, where,
						 s->end - s->start);
			rc = -1;
		} else {
			uint32_t flags = 0;
			msg.len = keywords.len = 0;
			if (keywords.data != NULL)
				keywords.data[0] = '\0';
			mbox_message(im, where, data + s->start,
				     s->end - s->start, &msg, &flags,
				     &keywords);
			int64_t received = mbox_from_time(
				data + s->from_line, s->start - s->from_line);
			rc = import_add(im, where, &msg, flags, keywords.data,
					received);
		}
		free(where);
		if (msg.alloc > 4 * 1024 * 1024) {
			/* Do not keep a huge buffer for small messages. */
			free(msg.data);
			msg = (struct import_buf){ 0 };
		}
	}
	free(msg.data);
	free(keywords.data);
	free(spans);
	if (size > 0)
		munmap((void *)data, size);
	return rc;
}

/* --- maildir -------------------------------------------------------------- */

struct maildir_file {
	char *sub; /* "cur" or "new" */
	char *name;
};

static int
maildir_file_cmp(const void *a, const void *b)
{
	const struct maildir_file *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c != 0 ? c : strcmp(x->sub, y->sub);
}

/* Collect the regular files of PATH/cur and PATH/new. */
static int
maildir_list(struct import *im, struct maildir_file **files_r, size_t *count_r)
{
	static const char *const subs[] = { "cur", "new" };
	struct maildir_file *files = NULL;
	size_t count = 0, alloc = 0;
	int found = 0;
	for (size_t i = 0; i < 2; i++) {
		char *dir = ts_xasprintf("%s/%s", im->path, subs[i]);
		DIR *d = opendir(dir);
		if (d == NULL) {
			int err = errno;
			free(dir);
			if (err == ENOENT)
				continue;
			im->error =
				ts_xasprintf("cannot read %s/%s: %s", im->path,
					     subs[i], strerror(err));
			goto fail;
		}
		found++;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char *path = ts_xasprintf("%s/%s", dir, de->d_name);
			struct stat sb;
			bool regular =
				stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
			free(path);
			if (!regular)
				continue;
			if (count == alloc) {
				alloc = alloc != 0 ? alloc * 2 : 256;
				files = ts_xrealloc(files,
						    alloc * sizeof(*files));
			}
			files[count].sub = ts_xstrdup(subs[i]);
			files[count++].name = ts_xstrdup(de->d_name);
		}
		closedir(d);
		free(dir);
	}
	if (found == 0) {
		im->error = ts_xasprintf("%s: not a maildir (no cur/ or new/ "
					 "directory)",
					 im->path);
		goto fail;
	}
	if (count > 0)
		qsort(files, count, sizeof(*files), maildir_file_cmp);
	*files_r = files;
	*count_r = count;
	return 0;
fail:
	for (size_t i = 0; i < count; i++) {
		free(files[i].sub);
		free(files[i].name);
	}
	free(files);
	return -1;
}

/* Keyword names of the letters a-z from PATH/dovecot-keywords. */
static void
maildir_keywords(struct import *im, char *names[26])
{
	char *path = ts_xasprintf("%s/dovecot-keywords", im->path);
	FILE *f = fopen(path, "r");
	free(path);
	if (f == NULL)
		return;
	char line[1024];
	while (fgets(line, sizeof(line), f) != NULL) {
		char *end;
		long n = strtol(line, &end, 10);
		if (end == line || *end != ' ' || n < 0 || n >= 26)
			continue;
		end++;
		end[strcspn(end, "\r\n")] = '\0';
		if (*end == '\0')
			continue;
		free(names[n]);
		names[n] = ts_xstrdup(end);
	}
	fclose(f);
}

/*
 * Flags and keywords from the ":2,<letters>" info at the end of a maildir
 * file name (none for a file without one, as in new/).
 */
static void
maildir_info(struct import *im, const char *where, const char *name,
	     char *const names[26], uint32_t *flags,
	     struct import_buf *keywords)
{
	const char *info = strrchr(name, ':');
	if (info == NULL || strncmp(info, ":2,", 3) != 0)
		return;
	for (const char *c = info + 3; *c != '\0'; c++) {
		static const char letters[] = "SRFTD";
		static const uint32_t system_flags[] = {
			TS_FLAG_SEEN,	 TS_FLAG_ANSWERED, TS_FLAG_FLAGGED,
			TS_FLAG_DELETED, TS_FLAG_DRAFT,
		};
		const char *system = strchr(letters, *c);
		if (system != NULL)
			*flags |= system_flags[system - letters];
		else if (*c < 'a' || *c > 'z')
			continue; /* P (passed) and unknown letters */
		else if (names[*c - 'a'] != NULL)
			import_keyword(im, where, names[*c - 'a'],
				       strlen(names[*c - 'a']), flags,
				       keywords);
		else
			fprintf(stderr,
				"tessera: warning: %s: %s: keyword letter "
				"'%c' is not in dovecot-keywords, dropped\n",
				im->path, where, *c);
	}
}

/* Read a whole file into `out` with the CRLF rule applied. */
static int
maildir_read(struct import *im, const char *where, const char *path,
	     struct import_buf *out, int64_t *mtime_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		im->error = ts_xasprintf("cannot read %s: %s", path,
					 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if ((uint64_t)sb.st_size > IMPORT_MAX_SIZE) {
		close(fd);
		im->error =
			ts_xasprintf("%s: %s is %lld bytes, larger than "
				     "the limit of 100 MiB",
				     im->path, where, (long long)sb.st_size);
		return -1;
	}
	size_t size = (size_t)sb.st_size;
	char *raw = ts_xmalloc(size + 1);
	size_t got = 0;
	while (got < size) {
		ssize_t n = read(fd, raw + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != size) {
		free(raw);
		im->error = ts_xasprintf("cannot read %s: short read", path);
		return -1;
	}
	out->len = 0;
	for (size_t pos = 0; pos < size;) {
		const char *lf = memchr(raw + pos, '\n', size - pos);
		size_t n = lf != NULL ? (size_t)(lf - (raw + pos)) : size - pos;
		import_buf_line(out, raw + pos, n, lf != NULL);
		pos += n + (lf != NULL ? 1 : 0);
	}
	free(raw);
	*mtime_r = (int64_t)sb.st_mtime;
	return 0;
}

static int
import_maildir(struct import *im)
{
	struct maildir_file *files = NULL;
	size_t count = 0;
	if (maildir_list(im, &files, &count) != 0)
		return -1;
	char *names[26] = { NULL };
	maildir_keywords(im, names);
	im->total = count;

	struct import_buf msg = { 0 }, keywords = { 0 };
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < count; i++) {
		char *where =
			ts_xasprintf("%s/%s", files[i].sub, files[i].name);
		char *path = ts_xasprintf("%s/%s", im->path, where);
		uint32_t flags = 0;
		keywords.len = 0;
		if (keywords.data != NULL)
			keywords.data[0] = '\0';
		maildir_info(im, where, files[i].name, names, &flags,
			     &keywords);
		int64_t received = 0;
		rc = maildir_read(im, where, path, &msg, &received);
		if (rc == 0)
			rc = import_add(im, where, &msg, flags, keywords.data,
					received);
		free(path);
		free(where);
		if (msg.alloc > 4 * 1024 * 1024) {
			free(msg.data);
			msg = (struct import_buf){ 0 };
		}
	}
	free(msg.data);
	free(keywords.data);
	for (size_t i = 0; i < 26; i++)
		free(names[i]);
	for (size_t i = 0; i < count; i++) {
		free(files[i].sub);
		free(files[i].name);
	}
	free(files);
	return rc;
}

/* --- the command ---------------------------------------------------------- */

/*
 * Undo a failed import: remove the files written so far while the write
 * lock is still held (so no other writer can have taken those message
 * ids yet), then roll back.
 */
static void
import_abandon(struct import *im)
{
	for (size_t i = 0; i < im->count; i++) {
		char *path = ts__store_message_path(im->data_dir, im->account,
						    im->ids[i]);
		(void)unlink(path);
		free(path);
	}
	sqlite3_exec(im->db, "ROLLBACK", NULL, NULL, NULL);
}

static int
import_run(struct import *im, bool mbox)
{
	char *error = NULL;
	if (ts__store_cli_exec(im->db, "BEGIN IMMEDIATE", &error) != 0) {
		ts__store_cli_fail("%s: %s", im->account, error);
		free(error);
		return 1;
	}
	int rc = mbox ? import_mbox(im) : import_maildir(im);
	if (im->progress && im->count > 0)
		fprintf(stderr, "\n");
	if (rc == 0 && ts__store_sync_dirs(im->db, &error) != 0)
		rc = -1;
	if (rc == 0 && ts__store_cli_exec(im->db, "COMMIT", &error) != 0)
		rc = -1;
	if (rc != 0) {
		import_abandon(im);
		if (im->error == NULL)
			im->error =
				ts_xasprintf("%s: %s", im->path,
					     error != NULL ? error : "failed");
		free(error);
		ts__store_cli_fail("%s; nothing was imported", im->error);
		return 1;
	}
	ts__store_after_commit(im->db, im->data_dir, im->account);
	printf("imported %zu message%s from %s into %s/%s\n", im->count,
	       im->count == 1 ? "" : "s", im->path, im->account, im->mailbox);
	return 0;
}

int
ts__cmd_import(int argc, char **argv)
{
	struct ts__store_cli_opts o;
	int rc = ts__store_cli_parse(argc, argv, IMPORT_USAGE, false, &o);
	if (rc >= 0)
		return rc;
	if (o.word_count != 4)
		return ts__store_cli_usage(IMPORT_USAGE,
					   "import takes a format, an account, "
					   "a mailbox and a path");
	bool mbox = strcmp(o.words[0], "mbox") == 0;
	if (!mbox && strcmp(o.words[0], "maildir") != 0)
		return ts__store_cli_usage(IMPORT_USAGE,
					   "unknown format '%s' (mbox or "
					   "maildir)",
					   o.words[0]);
	const char *problem = ts__store_mailbox_name_problem(o.words[2]);
	if (problem != NULL)
		return ts__store_cli_fail("bad mailbox name '%s': %s",
					  o.words[2], problem);

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
	if (rc == 0) {
		struct import im = {
			.db = db,
			.data_dir = c.data_dir,
			.account = o.words[1],
			.mailbox = o.words[2],
			.path = o.words[3],
			.progress = isatty(STDERR_FILENO) == 1,
		};
		rc = import_run(&im, mbox);
		free(im.ids);
		free(im.error);
	}
	ts__store_db_close(&db);
	ts__store_cli_end(&c);
	return rc;
}
