/*
 * kernel/queue/dsn.c — delivery status notifications (RFC 3464).
 *
 * A DSN is a multipart/report message: a human-readable part, a
 * message/delivery-status part with one block per recipient (Final- and
 * Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code), and
 * the original message's header (text/rfc822-headers) or, when the sender
 * asked RET=FULL and it is not too large, the whole message
 * (message/rfc822).  In-Reply-To and References name the original
 * Message-ID so mail clients thread the report with what it reports on.
 * This file only writes the message to a file; delivery.c delivers it.
 * Blocking: runs on a pool thread.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "kernel/queue/queue-private.h"

/* Whole messages above this are quoted by their header only. */
#define TS_DSN_FULL_MAX (1024 * 1024)
/* The header quoted is cut here (a runaway header is not a header). */
#define TS_DSN_HEADER_MAX (256 * 1024)

/* RFC 5322 date of unix milliseconds ms, in UTC. */
static void
ts_dsn_date(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Whether s is all ASCII. */
static bool
ts_dsn_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/*
 * Read the original message (prefix, then file) into a buffer: all of
 * it when `full`, else up to the end of its header.  Sets *whole_r when
 * what was read is the complete message.
 */
static char *
ts_dsn_original(sqlite3 *db, const char *data_dir, int64_t msg_id, bool full,
		size_t *len_r, bool *whole_r)
{
	int fd;
	char *prefix;
	size_t plen;
	*len_r = 0;
	*whole_r = false;
	if (ts__queue_db_open_message(db, data_dir, msg_id, &fd, &prefix,
				      &plen) != 0)
		return NULL;
	size_t cap = full ? TS_DSN_FULL_MAX : TS_DSN_HEADER_MAX;
	char *buf = ts_xmalloc(cap + 1);
	size_t n = plen < cap ? plen : cap;
	memcpy(buf, prefix, n);
	free(prefix);
	ssize_t got = 0;
	while (n < cap && (got = read(fd, buf + n, cap - n)) > 0)
		n += (size_t)got;
	char probe;
	bool more = n == cap && read(fd, &probe, 1) == 1;
	close(fd);
	buf[n] = '\0';
	if (!full || more) {
		/* The header: up to the first empty line. */
		char *end = strstr(buf, "\r\n\r\n");
		n = end != NULL ? (size_t)(end - buf) + 2 : n;
		buf[n] = '\0';
	} else {
		*whole_r = true;
	}
	*len_r = n;
	return buf;
}

/* The value of header field `name` in a header block, unfolded, or NULL. */
static char *
ts_dsn_header_value(const char *hdr, const char *name)
{
	size_t nlen = strlen(name);
	for (const char *p = hdr; p != NULL && *p != '\0';) {
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			const char *end = v;
			/* Through continuation lines (starting with WSP). */
			while ((end = strstr(end, "\r\n")) != NULL &&
			       (end[2] == ' ' || end[2] == '\t'))
				end += 2;
			size_t len = end != NULL ? (size_t)(end - v) : strlen(v);
			char *out = ts_xmalloc(len + 1);
			size_t o = 0;
			for (size_t i = 0; i < len; i++)
				if (v[i] != '\r' && v[i] != '\n')
					out[o++] = v[i];
			out[o] = '\0';
			char *s = out;
			while (*s == ' ' || *s == '\t')
				s++;
			memmove(out, s, strlen(s) + 1);
			return out;
		}
		p = strstr(p, "\r\n");
		if (p != NULL)
			p += 2;
	}
	return NULL;
}

/* Append formatted text to the growing buffer. */
static void TS_PRINTF(3, 4)
ts_dsn_printf(char **buf, size_t *len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = ts_xvasprintf(fmt, ap);
	va_end(ap);
	size_t n = strlen(s);
	*buf = ts_xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, s, n + 1);
	*len += n;
	free(s);
}

static void
ts_dsn_append(char **buf, size_t *len, const char *data, size_t n)
{
	*buf = ts_xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/* The status text of an outcome: its enhanced code, or one from its code. */
static const char *
ts_dsn_status(const struct ts__dsn_rcpt *r)
{
	const char *e = r->outcome->enhanced;
	if (e != NULL && (e[0] == '2' || e[0] == '4' || e[0] == '5') &&
	    e[1] == '.')
		return e;
	return r->failed ? "5.0.0" : "4.0.0";
}

int
ts__dsn_write(const char *data_dir, const char *hostname, sqlite3 *db,
	      const struct ts__qload *load, const struct ts__dsn_rcpt *rcpts,
	      size_t count, int64_t retry_until_ms, const char *account,
	      char **path_r)
{
	*path_r = NULL;
	bool failed = count > 0 && rcpts[0].failed;
	size_t olen;
	bool whole;
	char *orig = ts_dsn_original(db, data_dir, load->msg_id,
				     load->ret == TS_DSN_RET_FULL, &olen,
				     &whole);
	char *orig_id = orig != NULL ? ts_dsn_header_value(orig, "Message-ID")
				     : NULL;
	char *orig_subject =
		orig != NULL ? ts_dsn_header_value(orig, "Subject") : NULL;

	unsigned char rnd[12];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0x5a, sizeof(rnd));
	char tag[2 * sizeof(rnd) + 1];
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(tag + 2 * i, 3, "%02x", rnd[i]);
	char now[64], arrival[64];
	int64_t now_ms = ts__queue_now_ms();
	ts_dsn_date(now_ms, now, sizeof(now));
	ts_dsn_date(load->created_ms, arrival, sizeof(arrival));
	bool utf8 = !ts_dsn_ascii(load->sender);
	for (size_t i = 0; i < count; i++)
		utf8 |= !ts_dsn_ascii(rcpts[i].rcpt->address);

	char *m = NULL;
	size_t n = 0;
	ts_dsn_printf(&m, &n,
		      "From: Mail Delivery Subsystem <postmaster@%s>\r\n"
		      "To: <%s>\r\n"
		      "Subject: %s\r\n"
		      "Date: %s\r\n"
		      "Message-ID: <dsn-%s@%s>\r\n",
		      hostname, load->sender,
		      failed ? "Delivery Status Notification (Failure)"
			     : "Delivery Status Notification (Delay)",
		      now, tag, hostname);
	if (orig_id != NULL)
		ts_dsn_printf(&m, &n, "In-Reply-To: %s\r\nReferences: %s\r\n",
			      orig_id, orig_id);
	ts_dsn_printf(&m, &n,
		      "Auto-Submitted: auto-replied\r\n"
		      "MIME-Version: 1.0\r\n"
		      "Content-Type: multipart/report; "
		      "report-type=delivery-status;\r\n"
		      "\tboundary=\"dsn-%s\"\r\n"
		      "\r\n"
		      "This is a delivery status notification (RFC 3464).\r\n"
		      "\r\n"
		      "--dsn-%s\r\n"
		      "Content-Type: text/plain; charset=utf-8\r\n"
		      "Content-Transfer-Encoding: 8bit\r\n"
		      "\r\n",
		      tag, tag);
	if (failed)
		ts_dsn_printf(&m, &n,
			      "Your message could not be delivered to the "
			      "following recipients:\r\n\r\n");
	else {
		char until[64];
		ts_dsn_date(retry_until_ms, until, sizeof(until));
		ts_dsn_printf(&m, &n,
			      "Your message has not been delivered yet to the "
			      "following recipients; %s will keep trying "
			      "until %s.\r\n\r\n",
			      hostname, until);
	}
	for (size_t i = 0; i < count; i++)
		ts_dsn_printf(&m, &n, "  <%s>: %d %s %s\r\n",
			      rcpts[i].rcpt->address, rcpts[i].outcome->code,
			      ts_dsn_status(&rcpts[i]),
			      rcpts[i].outcome->text);
	if (orig_subject != NULL)
		ts_dsn_printf(&m, &n, "\r\nSubject of your message: %s\r\n",
			      orig_subject);

	/*
	 * RFC 6533: a report with UTF-8 addresses is message/global-
	 * delivery-status, which may carry them as utf-8 address types.
	 */
	ts_dsn_printf(&m, &n,
		      "\r\n--dsn-%s\r\n"
		      "Content-Type: message/%sdelivery-status\r\n"
		      "\r\n"
		      "Reporting-MTA: dns; %s\r\n",
		      tag, utf8 ? "global-" : "", hostname);
	if (load->envid != NULL)
		ts_dsn_printf(&m, &n, "Original-Envelope-Id: %s\r\n",
			      load->envid);
	ts_dsn_printf(&m, &n, "Arrival-Date: %s\r\n", arrival);
	const char *addr_type = utf8 ? "utf-8" : "rfc822";
	for (size_t i = 0; i < count; i++) {
		const struct ts__dsn_rcpt *r = &rcpts[i];
		ts_dsn_printf(&m, &n, "\r\n");
		if (r->rcpt->orcpt != NULL)
			ts_dsn_printf(&m, &n, "Original-Recipient: %s;%s\r\n",
				      r->rcpt->orcpt_type != NULL
					      ? r->rcpt->orcpt_type
					      : "rfc822",
				      r->rcpt->orcpt);
		ts_dsn_printf(&m, &n,
			      "Final-Recipient: %s;%s\r\n"
			      "Action: %s\r\n"
			      "Status: %s\r\n",
			      addr_type, r->rcpt->address,
			      r->failed ? "failed" : "delayed",
			      ts_dsn_status(r));
		if (r->outcome->remote != NULL) {
			/* "mx.example.org [192.0.2.1]": the name is the MTA */
			char *host = ts_xstrdup(r->outcome->remote);
			char *sp = strchr(host, ' ');
			if (sp != NULL)
				*sp = '\0';
			ts_dsn_printf(&m, &n,
				      "Remote-MTA: dns; %s\r\n"
				      "Diagnostic-Code: smtp; %d %s %s\r\n",
				      host, r->outcome->code, ts_dsn_status(r),
				      r->outcome->text);
			free(host);
		}
		ts_dsn_printf(&m, &n, "Last-Attempt-Date: %s\r\n", now);
		if (!r->failed && retry_until_ms > 0) {
			char until[64];
			ts_dsn_date(retry_until_ms, until, sizeof(until));
			ts_dsn_printf(&m, &n, "Will-Retry-Until: %s\r\n", until);
		}
	}
	if (orig != NULL) {
		ts_dsn_printf(&m, &n,
			      "\r\n--dsn-%s\r\n"
			      "Content-Type: %s\r\n"
			      "\r\n",
			      tag,
			      whole ? (utf8 ? "message/global"
					    : "message/rfc822")
				    : (utf8 ? "message/global-headers"
					    : "text/rfc822-headers"));
		ts_dsn_append(&m, &n, orig, olen);
	}
	ts_dsn_printf(&m, &n, "\r\n--dsn-%s--\r\n", tag);

	/*
	 * The receiving account is in the name (hex), so that a DSN written
	 * before a crash is still delivered at the next start.
	 */
	char *hex = ts_xmalloc(2 * strlen(account) + 1);
	for (size_t i = 0; account[i] != '\0'; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)account[i]);
	hex[2 * strlen(account)] = '\0';
	char *path = ts_xasprintf("%s/queue/dsn-%s-%s.eml", data_dir, tag,
				  hex);
	free(hex);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = fd >= 0 && write(fd, m, n) == (ssize_t)n ? 0 : TS_E_IO;
	if (fd >= 0 && close(fd) != 0)
		rc = TS_E_IO;
	if (rc != 0) {
		(void)unlink(path);
		free(path);
	} else {
		*path_r = path;
	}
	free(m);
	free(orig);
	free(orig_id);
	free(orig_subject);
	return rc;
}

char *
ts__dsn_file_account(const char *name)
{
	/* dsn-TAG-HEX.eml */
	size_t len = strlen(name);
	if (strncmp(name, "dsn-", 4) != 0 || len < 9 ||
	    strcmp(name + len - 4, ".eml") != 0)
		return NULL;
	const char *hex = strchr(name + 4, '-');
	if (hex == NULL)
		return NULL;
	hex++;
	size_t hlen = (size_t)(name + len - 4 - hex);
	if (hlen == 0 || hlen % 2 != 0)
		return NULL;
	char *out = ts_xmalloc(hlen / 2 + 1);
	for (size_t i = 0; i < hlen / 2; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1 || v == 0) {
			free(out);
			return NULL;
		}
		out[i] = (char)v;
	}
	out[hlen / 2] = '\0';
	return out;
}
