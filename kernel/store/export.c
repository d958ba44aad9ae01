/*
 * kernel/store/export.c — `tessera export mbox|maildir ACCOUNT DIR`:
 * write every mailbox of an account out, with flags, keywords and
 * received times, in the canonical forms import.c describes.
 *
 * mbox: one file per mailbox, DIR/<name>.mbox, a '/' in the name making
 * subdirectories ("Lists/tessera" is DIR/Lists/tessera.mbox).  Each
 * message is "From MAILER-DAEMON <asctime of its received time, UTC>",
 * its lines with CRLF turned into LF and ^>*From  lines quoted with one
 * more '>', Status/X-Status/X-Keywords at the end of its header block, and
 * one empty line.
 *
 * maildir: one maildir per mailbox, DIR/<name>/{cur,new,tmp}, children
 * nested inside their parent's directory; each message is
 * cur/<received>.<id>.tessera:2,<flags> with its mtime set to the
 * received time, and keywords are letters numbered by the maildir's
 * dovecot-keywords file.
 *
 * Paths are built one component at a time with openat/mkdirat and
 * O_NOFOLLOW below DIR, and "", "." and ".." components are refused, so
 * no mailbox name can reach outside DIR.  Files are created with O_EXCL:
 * an export never overwrites anything.  The export reads one consistent
 * snapshot (one read transaction) and runs fine beside a serving tessera.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kernel/store/commands.h"
#include "kernel/store/store-cli.h"
#include "kernel/store/store-private.h"

#define EXPORT_USAGE "export mbox|maildir ACCOUNT DIR [-c FILE]"

struct export
{
	sqlite3 *db;
	const char *data_dir;
	const char *account;
	const char *dir;
	int dir_fd;
	bool mbox;
	size_t boxes, messages;
	bool failed; /* something was reported and skipped */
};

/* An output file with a buffer. */
struct export_out {
	int fd;
	char buf[65536];
	size_t len;
	bool error;
	char last; /* the last byte written */
};

static void
export_flush(struct export_out *o)
{
	size_t done = 0;
	while (!o->error && done < o->len) {
		ssize_t n = write(o->fd, o->buf + done, o->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			o->error = true;
		else
			done += (size_t)n;
	}
	o->len = 0;
}

static void
export_write(struct export_out *o, const void *data, size_t len)
{
	const char *p = data;
	if (len == 0)
		return;
	o->last = p[len - 1];
	while (len > 0) {
		if (o->len == sizeof(o->buf))
			export_flush(o);
		size_t n = sizeof(o->buf) - o->len;
		if (n > len)
			n = len;
		memcpy(o->buf + o->len, p, n);
		o->len += n;
		p += n;
		len -= n;
	}
}

static void
export_puts(struct export_out *o, const char *s)
{
	export_write(o, s, strlen(s));
}

/* --- safe paths ----------------------------------------------------------- */

static bool
export_component_ok(const char *c, size_t len)
{
	return len > 0 && !(len == 1 && c[0] == '.') &&
	       !(len == 2 && c[0] == '.' && c[1] == '.') &&
	       memchr(c, '\0', len) == NULL;
}

/* Create (if missing) and open directory `name` below `at`. */
static int
export_subdir(int at, const char *name)
{
	if (mkdirat(at, name, 0700) != 0 && errno != EEXIST)
		return -1;
	return openat(at, name,
		      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/*
 * Walk the parents of mailbox `name` below DIR, creating them; returns
 * an fd of the last parent (caller closes) and the last component in
 * *leaf_r (caller frees), or -1 with *error_r.
 */
static int
export_parent(struct export *ex, const char *name, char **leaf_r,
	      char **error_r)
{
	int fd = dup(ex->dir_fd);
	const char *p = name;
	if (fd < 0) {
		*error_r = ts_xasprintf("dup: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
		if (!export_component_ok(p, len)) {
			*error_r = ts_xstrdup("a part of the name cannot be "
					      "a file name");
			close(fd);
			return -1;
		}
		/* A folder named like a maildir's own subdirectory would
		 * mix its messages with its parent's. */
		if (!ex->mbox && len == 3 &&
		    (strncmp(p, "cur", 3) == 0 || strncmp(p, "new", 3) == 0 ||
		     strncmp(p, "tmp", 3) == 0)) {
			*error_r = ts_xstrdup("cur, new and tmp cannot be "
					      "maildir folder names");
			close(fd);
			return -1;
		}
		if (slash == NULL) {
			*leaf_r = ts_xstrdup(p);
			return fd;
		}
		char *comp = ts_xstrndup(p, len);
		int sub = export_subdir(fd, comp);
		if (sub < 0)
			*error_r = ts_xasprintf("cannot create directory %s: "
						"%s",
						comp, strerror(errno));
		free(comp);
		close(fd);
		if (sub < 0)
			return -1;
		fd = sub;
		p = slash + 1;
	}
}

/* --- reading messages ----------------------------------------------------- */

/*
 * The whole content of a message: prefix then file (caller frees).
 * Returns 0, or -1 when the file cannot be read.
 */
static int
export_content(struct export *ex, int64_t id, const void *prefix,
	       size_t prefix_len, char **data_r, size_t *len_r)
{
	char *path = ts__store_message_path(ex->data_dir, ex->account, id);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		fprintf(stderr,
			"tessera: %s: message %lld: cannot read %s: "
			"%s; skipped\n",
			ex->account, (long long)id, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
		return -1;
	}
	size_t size = (size_t)sb.st_size;
	char *data = ts_xmalloc(prefix_len + size + 1);
	if (prefix_len > 0)
		memcpy(data, prefix, prefix_len);
	size_t got = 0;
	while (got < size) {
		ssize_t n = read(fd, data + prefix_len + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != size) {
		fprintf(stderr,
			"tessera: %s: message %lld: short read of "
			"%s; skipped\n",
			ex->account, (long long)id, path);
		free(path);
		free(data);
		return -1;
	}
	free(path);
	*data_r = data;
	*len_r = prefix_len + size;
	return 0;
}

/* One message row. */
struct export_msg {
	int64_t id;
	uint32_t flags;
	const char *keywords;
	int64_t received;
	char *data;
	size_t len;
};

/* --- mbox ----------------------------------------------------------------- */

static bool
export_needs_quote(const char *p, size_t len)
{
	size_t q = 0;
	while (q < len && p[q] == '>')
		q++;
	return len - q >= 5 && memcmp(p + q, "From ", 5) == 0;
}

/* Status, X-Status and X-Keywords in their canonical form. */
static void
export_status_headers(struct export_out *o, const struct export_msg *m)
{
	export_puts(o,
		    (m->flags & TS_FLAG_SEEN) ? "Status: RO\n" : "Status: O\n");
	char xs[8];
	size_t n = 0;
	if (m->flags & TS_FLAG_ANSWERED)
		xs[n++] = 'A';
	if (m->flags & TS_FLAG_FLAGGED)
		xs[n++] = 'F';
	if (m->flags & TS_FLAG_DRAFT)
		xs[n++] = 'T';
	if (m->flags & TS_FLAG_DELETED)
		xs[n++] = 'D';
	if (n > 0) {
		export_puts(o, "X-Status: ");
		export_write(o, xs, n);
		export_puts(o, "\n");
	}
	bool any = false;
	const char *junk[2] = {
		(m->flags & TS_FLAG_JUNK) ? "$Junk" : NULL,
		(m->flags & TS_FLAG_NOTJUNK) ? "$NotJunk" : NULL,
	};
	for (int i = 0; i < 2; i++) {
		if (junk[i] == NULL)
			continue;
		export_puts(o, any ? " " : "X-Keywords: ");
		export_puts(o, junk[i]);
		any = true;
	}
	if (m->keywords != NULL && *m->keywords != '\0') {
		export_puts(o, any ? " " : "X-Keywords: ");
		export_puts(o, m->keywords);
		any = true;
	}
	if (any)
		export_puts(o, "\n");
}

static void
export_mbox_message(struct export_out *o, const struct export_msg *m)
{
	char date[64];
	struct tm tm;
	time_t t = (time_t)m->received;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		snprintf(date, sizeof(date), "Thu Jan  1 00:00:00 1970");
	export_puts(o, "From MAILER-DAEMON ");
	export_puts(o, date);
	export_puts(o, "\n");

	bool in_header = true;
	for (size_t pos = 0; pos < m->len;) {
		const char *p = m->data + pos;
		const char *lf = memchr(p, '\n', m->len - pos);
		size_t n = lf != NULL ? (size_t)(lf - p) : m->len - pos;
		pos += n + (lf != NULL ? 1 : 0);
		size_t text =
			n > 0 && p[n - 1] == '\r' && lf != NULL ? n - 1 : n;
		if (in_header && text == 0) {
			export_status_headers(o, m);
			in_header = false;
		}
		if (export_needs_quote(p, text))
			export_puts(o, ">");
		export_write(o, p, text);
		if (lf != NULL)
			export_puts(o, "\n");
	}
	if (in_header) {
		/* No body: the fields go after the last header line. */
		if (o->last != '\n' && m->len > 0)
			export_puts(o, "\n");
		export_status_headers(o, m);
	}
	if (o->last != '\n')
		export_puts(o, "\n");
	export_puts(o, "\n");
}

/* --- maildir -------------------------------------------------------------- */

/* Keywords of one maildir, letters a-z in order of first use. */
struct export_keywords {
	char *names[26];
	size_t count;
	bool overflow_warned;
};

/* The letter of a keyword, assigning one on first use; 0 if none left. */
static char
export_keyword_letter(struct export *ex, struct export_keywords *k,
		      const char *word, size_t len, const char *mailbox)
{
	for (size_t i = 0; i < k->count; i++)
		if (strlen(k->names[i]) == len &&
		    strncasecmp(k->names[i], word, len) == 0)
			return (char)('a' + i);
	if (k->count == 26) {
		if (!k->overflow_warned)
			fprintf(stderr,
				"tessera: %s: mailbox %s uses more "
				"than 26 keywords; maildir cannot hold the "
				"rest (%.*s, …)\n",
				ex->account, mailbox, (int)len, word);
		k->overflow_warned = true;
		ex->failed = true;
		return 0;
	}
	k->names[k->count] = ts_xstrndup(word, len);
	return (char)('a' + k->count++);
}

static int
export_letter_cmp(const void *a, const void *b)
{
	return *(const char *)a - *(const char *)b;
}

static int
export_maildir_message(struct export *ex, int box_fd, const char *mailbox,
		       struct export_keywords *k, const struct export_msg *m)
{
	/* Info flags in ASCII order (D F R S T), then keyword letters. */
	char info[40];
	size_t n = 0;
	if (m->flags & TS_FLAG_DRAFT)
		info[n++] = 'D';
	if (m->flags & TS_FLAG_FLAGGED)
		info[n++] = 'F';
	if (m->flags & TS_FLAG_ANSWERED)
		info[n++] = 'R';
	if (m->flags & TS_FLAG_SEEN)
		info[n++] = 'S';
	if (m->flags & TS_FLAG_DELETED)
		info[n++] = 'T';
	size_t letters = n;
	char *words = ts_xasprintf(
		"%s%s%s", (m->flags & TS_FLAG_JUNK) ? "$Junk " : "",
		(m->flags & TS_FLAG_NOTJUNK) ? "$NotJunk " : "",
		m->keywords != NULL ? m->keywords : "");
	for (const char *p = words; *p != '\0' && n < 5 + 26;) {
		size_t len = strcspn(p, " ");
		char c = len > 0 ? export_keyword_letter(ex, k, p, len, mailbox)
				 : 0;
		if (c != 0 && memchr(info + letters, c, n - letters) == NULL)
			info[n++] = c;
		p += len;
		p += strspn(p, " ");
	}
	free(words);
	qsort(info + letters, n - letters, 1, export_letter_cmp);
	info[n] = '\0';

	char *name =
		ts_xasprintf("%lld.%lld.tessera:2,%s", (long long)m->received,
			     (long long)m->id, info);
	int fd = openat(box_fd, name,
			O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			0600);
	if (fd < 0) {
		fprintf(stderr,
			"tessera: %s: cannot create %s/%s/cur/%s: "
			"%s\n",
			ex->account, ex->dir, mailbox, name, strerror(errno));
		free(name);
		return -1;
	}
	struct export_out *o = ts_xcalloc(1, sizeof(*o));
	o->fd = fd;
	for (size_t pos = 0; pos < m->len;) {
		const char *p = m->data + pos;
		const char *lf = memchr(p, '\n', m->len - pos);
		size_t len = lf != NULL ? (size_t)(lf - p) : m->len - pos;
		pos += len + (lf != NULL ? 1 : 0);
		if (lf != NULL && len > 0 && p[len - 1] == '\r')
			len--;
		export_write(o, p, len);
		if (lf != NULL)
			export_puts(o, "\n");
	}
	export_flush(o);
	bool error = o->error;
	free(o);
	struct timespec times[2] = {
		{ .tv_sec = (time_t)m->received },
		{ .tv_sec = (time_t)m->received },
	};
	if (futimens(fd, times) != 0)
		error = true;
	if (close(fd) != 0)
		error = true;
	if (error) {
		fprintf(stderr, "tessera: %s: cannot write %s/%s/cur/%s: %s\n",
			ex->account, ex->dir, mailbox, name, strerror(errno));
		free(name);
		return -1;
	}
	free(name);
	return 0;
}

static int
export_maildir_keywords(struct export *ex, int maildir_fd, const char *mailbox,
			const struct export_keywords *k)
{
	if (k->count == 0)
		return 0;
	int fd = openat(maildir_fd, "dovecot-keywords",
			O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			0600);
	if (fd < 0) {
		fprintf(stderr,
			"tessera: %s: cannot create %s/%s/"
			"dovecot-keywords: %s\n",
			ex->account, ex->dir, mailbox, strerror(errno));
		return -1;
	}
	struct export_out *o = ts_xcalloc(1, sizeof(*o));
	o->fd = fd;
	for (size_t i = 0; i < k->count; i++) {
		char line[32];
		snprintf(line, sizeof(line), "%zu ", i);
		export_puts(o, line);
		export_puts(o, k->names[i]);
		export_puts(o, "\n");
	}
	export_flush(o);
	bool error = o->error;
	free(o);
	if (close(fd) != 0 || error) {
		fprintf(stderr,
			"tessera: %s: cannot write %s/%s/"
			"dovecot-keywords\n",
			ex->account, ex->dir, mailbox);
		return -1;
	}
	return 0;
}

/* --- one mailbox ---------------------------------------------------------- */

static int
export_mailbox(struct export *ex, int64_t box, const char *name)
{
	char *error = NULL, *leaf = NULL;
	int parent = export_parent(ex, name, &leaf, &error);
	if (parent < 0) {
		fprintf(stderr, "tessera: %s: mailbox %s not exported: %s\n",
			ex->account, name, error);
		free(error);
		return -1;
	}

	int out_fd = -1, maildir_fd = -1, cur_fd = -1;
	struct export_out *o = NULL;
	if (ex->mbox) {
		char *file = ts_xasprintf("%s.mbox", leaf);
		out_fd = openat(parent, file,
				O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
					O_CLOEXEC,
				0600);
		if (out_fd < 0)
			fprintf(stderr,
				"tessera: %s: cannot create %s/%s.mbox: "
				"%s\n",
				ex->account, ex->dir, name, strerror(errno));
		free(file);
		o = ts_xcalloc(1, sizeof(*o));
		o->fd = out_fd;
	} else {
		maildir_fd = export_subdir(parent, leaf);
		int tmp = -1, new_fd = -1;
		if (maildir_fd >= 0) {
			cur_fd = export_subdir(maildir_fd, "cur");
			new_fd = export_subdir(maildir_fd, "new");
			tmp = export_subdir(maildir_fd, "tmp");
		}
		if (cur_fd < 0 || new_fd < 0 || tmp < 0)
			fprintf(stderr,
				"tessera: %s: cannot create maildir "
				"%s/%s: %s\n",
				ex->account, ex->dir, name, strerror(errno));
		if (new_fd >= 0)
			close(new_fd);
		if (tmp >= 0)
			close(tmp);
	}
	free(leaf);
	close(parent);
	if ((ex->mbox && out_fd < 0) || (!ex->mbox && cur_fd < 0)) {
		free(o);
		if (maildir_fd >= 0)
			close(maildir_fd);
		return -1;
	}

	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(ex->db,
			       "SELECT id, flags, keywords, received, prefix"
			       " FROM messages WHERE mailbox_id = ?"
			       " ORDER BY uid",
			       -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "tessera: sqlite: %s\n",
			sqlite3_errmsg(ex->db));
		rc = -1;
	}
	struct export_keywords k = { .count = 0 };
	int step = SQLITE_DONE;
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, box);
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			struct export_msg m = {
				.id = sqlite3_column_int64(st, 0),
				.flags = (uint32_t)sqlite3_column_int64(st, 1),
				.keywords = (const char *)sqlite3_column_text(
					st, 2),
				.received = sqlite3_column_int64(st, 3),
			};
			const void *prefix = sqlite3_column_blob(st, 4);
			size_t prefix_len = (size_t)sqlite3_column_bytes(st, 4);
			if (export_content(ex, m.id, prefix, prefix_len,
					   &m.data, &m.len) != 0) {
				ex->failed = true;
				continue;
			}
			if (ex->mbox)
				export_mbox_message(o, &m);
			else if (export_maildir_message(ex, cur_fd, name, &k,
							&m) != 0)
				rc = -1;
			free(m.data);
			ex->messages++;
			if (rc != 0)
				break;
		}
		if (step != SQLITE_ROW && step != SQLITE_DONE) {
			fprintf(stderr, "tessera: sqlite: %s\n",
				sqlite3_errmsg(ex->db));
			rc = -1;
		}
	}
	ts__store_finalize(st);

	if (ex->mbox) {
		export_flush(o);
		if (o->error || fsync(out_fd) != 0) {
			fprintf(stderr,
				"tessera: %s: cannot write %s/%s.mbox: "
				"%s\n",
				ex->account, ex->dir, name, strerror(errno));
			rc = -1;
		}
		close(out_fd);
		free(o);
	} else {
		if (rc == 0 &&
		    export_maildir_keywords(ex, maildir_fd, name, &k) != 0)
			rc = -1;
		for (size_t i = 0; i < k.count; i++)
			free(k.names[i]);
		close(cur_fd);
		close(maildir_fd);
	}
	if (rc == 0)
		ex->boxes++;
	return rc;
}

static int
export_run(struct export *ex)
{
	char *error = NULL;
	if (ts__store_cli_exec(ex->db, "BEGIN", &error) != 0) {
		ts__store_cli_fail("%s: %s", ex->account, error);
		free(error);
		return 1;
	}
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(ex->db,
			       "SELECT id, name FROM mailboxes ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = ts__store_cli_fail("sqlite: %s", sqlite3_errmsg(ex->db));
	}
	int step = SQLITE_DONE;
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *problem = ts__store_mailbox_name_problem(name);
		if (problem != NULL) {
			fprintf(stderr,
				"tessera: %s: mailbox %s not "
				"exported: bad name: %s\n",
				ex->account, name, problem);
			ex->failed = true;
			continue;
		}
		if (export_mailbox(ex, sqlite3_column_int64(st, 0), name) != 0)
			ex->failed = true;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = ts__store_cli_fail("sqlite: %s", sqlite3_errmsg(ex->db));
	ts__store_finalize(st);
	sqlite3_exec(ex->db, "COMMIT", NULL, NULL, NULL);
	if (rc != 0)
		return rc;
	printf("exported %zu message%s in %zu mailbox%s of %s to %s\n",
	       ex->messages, ex->messages == 1 ? "" : "s", ex->boxes,
	       ex->boxes == 1 ? "" : "es", ex->account, ex->dir);
	if (ex->failed) {
		fprintf(stderr, "tessera: export incomplete: see the "
				"messages above\n");
		return 1;
	}
	return 0;
}

int
ts__cmd_export(int argc, char **argv)
{
	struct ts__store_cli_opts o;
	int rc = ts__store_cli_parse(argc, argv, EXPORT_USAGE, false, &o);
	if (rc >= 0)
		return rc;
	if (o.word_count != 3)
		return ts__store_cli_usage(EXPORT_USAGE,
					   "export takes a format, an account "
					   "and a directory");
	bool mbox = strcmp(o.words[0], "mbox") == 0;
	if (!mbox && strcmp(o.words[0], "maildir") != 0)
		return ts__store_cli_usage(EXPORT_USAGE,
					   "unknown format '%s' (mbox or "
					   "maildir)",
					   o.words[0]);

	struct ts__store_cli c;
	rc = ts__store_cli_boot(&c, o.config);
	if (rc == 0 && !ts__store_cli_account_known(&c, o.words[1]))
		rc = 1;
	int dir_fd = -1;
	if (rc == 0) {
		if (mkdir(o.words[2], 0700) != 0 && errno != EEXIST)
			rc = ts__store_cli_fail("cannot create %s: %s",
						o.words[2], strerror(errno));
		else if ((dir_fd = open(o.words[2], O_RDONLY | O_DIRECTORY |
							    O_CLOEXEC)) < 0)
			rc = ts__store_cli_fail("cannot open %s: %s",
						o.words[2], strerror(errno));
	}
	sqlite3 *db = NULL;
	char *error = NULL;
	if (rc == 0 &&
	    ts__store_db_open(c.data_dir, o.words[1], &db, &error) != 0) {
		rc = ts__store_cli_fail("%s: %s", o.words[1], error);
		free(error);
	}
	if (rc == 0) {
		struct export ex = {
			.db = db,
			.data_dir = c.data_dir,
			.account = o.words[1],
			.dir = o.words[2],
			.dir_fd = dir_fd,
			.mbox = mbox,
		};
		rc = export_run(&ex);
	}
	if (dir_fd >= 0)
		close(dir_fd);
	ts__store_db_close(&db);
	ts__store_cli_end(&c);
	return rc;
}
