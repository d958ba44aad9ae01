/*
 * kernel/sendmail.c — `tessera sendmail` (also run when the binary is
 * invoked through a link named "sendmail"): the traditional local mail
 * submission interface for cron and scripts.  It reads a message on
 * stdin and submits it over SMTP to the server named in the `[sendmail]`
 * section (normally this tessera's own submission listener), with
 * STARTTLS or implicit TLS and SASL authentication through the kernel's
 * SASL client (the most secure mechanism offered: SCRAM first).
 *
 * This file is the command line, the settings and the message; the
 * SMTP dialogue is in sendmail-smtp.c.  This is a CLI: it blocks on its
 * socket, which is fine here and nowhere
 * else.  It does not queue anything itself: when the server cannot be
 * reached it exits with EX_TEMPFAIL and the caller (cron) reports it.
 * Exit codes follow <sysexits.h>, which sendmail callers expect.
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "kernel/boot.h"
#include "kernel/commands.h"
#include "kernel/kernel.h"
#include "kernel/sendmail.h"

/* Largest message read from stdin. */
#define SM_MAX_MESSAGE (64u * 1024 * 1024)

const struct ts_cfg_key ts__sendmail_keys[] = {
	{ .name = "host",
	  .type = TS_CFG_STRING,
	  .default_value = "127.0.0.1",
	  .doc = "the submission server tessera sendmail connects to" },
	{ .name = "port",
	  .type = TS_CFG_INT,
	  .default_value = "587",
	  .min = 1,
	  .max = 65535,
	  .doc = "its port" },
	{ .name = "tls",
	  .type = TS_CFG_ENUM,
	  .default_value = "starttls",
	  .choices = "starttls|tls|none",
	  .doc = "starttls (required), tls (implicit, port 465) or none "
		 "(loopback only: PLAIN/LOGIN then refused)" },
	{ .name = "tls_verify",
	  .type = TS_CFG_BOOL,
	  .default_value = "yes",
	  .doc = "check the server's certificate against host" },
	{ .name = "tls_ca_file",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "PEM CA bundle for tls_verify (empty: the system's)" },
	{ .name = "account",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "the account (user name) to authenticate as" },
	{ .name = "password_file",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "file whose first line is the account's password" },
	{ .name = "mechanism",
	  .type = TS_CFG_ENUM,
	  .default_value = "auto",
	  .choices = "auto|SCRAM-SHA-256-PLUS|SCRAM-SHA-256|SCRAM-SHA-1-PLUS|"
		     "SCRAM-SHA-1|CRAM-MD5|PLAIN|LOGIN",
	  .doc = "SASL mechanism (auto: the most secure offered)" },
	{ .name = "sender",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "envelope sender when -f is not given (empty: the From: "
		 "address, else USER@[core] hostname)" },
	{ .name = NULL },
};

/* --- settings ------------------------------------------------------------ */

static void
sm_settings_clear(struct sm_settings *set)
{
	free(set->host);
	free(set->ca_file);
	free(set->account);
	if (set->password != NULL) {
		gnutls_memset(set->password, 0, strlen(set->password));
		free(set->password);
	}
	free(set->mechanism);
	free(set->sender);
	free(set->hostname);
}

static char *
sm_nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? ts_xstrdup(s) : NULL;
}

/* Load [sendmail] from the configuration; an exit code or 0. */
static int
sm_settings_load(const char *path, struct sm_settings *set)
{
	struct ts__boot b;
	memset(set, 0, sizeof(*set));
	if (ts__boot_load(path, &b) != 0) {
		ts__boot_print_errors(b.cfg);
		ts__boot_free(&b);
		return EX_CONFIG;
	}
	const struct ts_cfg_sect *s = ts_cfg_find(b.cfg, "sendmail", NULL);
	set->host = ts_xstrdup(s ? ts_cfg_str(s, "host") : "127.0.0.1");
	set->port = s ? (unsigned)ts_cfg_int(s, "port") : 587;
	const char *tls = s ? ts_cfg_str(s, "tls") : "starttls";
	set->tls = strcmp(tls, "tls") == 0    ? SM_TLS_IMPLICIT
		   : strcmp(tls, "none") == 0 ? SM_TLS_NONE
					      : SM_TLS_STARTTLS;
	set->verify = s ? ts_cfg_bool(s, "tls_verify") : true;
	set->ca_file = s ? sm_nonempty(ts_cfg_str(s, "tls_ca_file")) : NULL;
	set->account = s ? sm_nonempty(ts_cfg_str(s, "account")) : NULL;
	const char *mech = s ? ts_cfg_str(s, "mechanism") : "auto";
	set->mechanism = strcmp(mech, "auto") != 0 ? ts_xstrdup(mech) : NULL;
	set->sender = s ? sm_nonempty(ts_cfg_str(s, "sender")) : NULL;
	set->hostname = ts_cfg_hostname(b.cfg);
	const char *pf = s ? ts_cfg_str(s, "password_file") : "";
	int rc = 0;
	if (pf[0] != '\0') {
		FILE *f = fopen(pf, "r");
		char buf[1024];
		if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
			fprintf(stderr,
				"tessera sendmail: cannot read the password "
				"from %s ([sendmail] password_file): %s\n",
				pf, f == NULL ? strerror(errno) : "empty");
			rc = EX_CONFIG;
		} else {
			buf[strcspn(buf, "\r\n")] = '\0';
			set->password = ts_xstrdup(buf);
			gnutls_memset(buf, 0, sizeof(buf));
		}
		if (f != NULL)
			fclose(f);
	}
	ts__boot_free(&b);
	return rc;
}

/* --- the message --------------------------------------------------------- */

static void
sm_buf_add(struct sm_buf *b, const char *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->data = ts_xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

/*
 * Read stdin into *msg with CRLF line ends.  Unless ignore_dots, a line
 * of a lone "." ends the message.  0, or EX_DATAERR (too large, NUL).
 */
static int
sm_read_message(FILE *in, bool ignore_dots, struct sm_buf *msg)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	while ((n = getline(&line, &cap, in)) > 0) {
		size_t len = (size_t)n;
		if (memchr(line, '\0', len) != NULL) {
			fprintf(stderr, "tessera sendmail: the message "
					"contains a NUL byte\n");
			rc = EX_DATAERR;
			break;
		}
		bool nl = line[len - 1] == '\n';
		if (nl)
			len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (!ignore_dots && nl && len == 1 && line[0] == '.')
			break;
		sm_buf_add(msg, line, len);
		sm_buf_add(msg, "\r\n", 2);
		if (msg->len > SM_MAX_MESSAGE) {
			fprintf(stderr, "tessera sendmail: the message is "
					"larger than 64 MiB\n");
			rc = EX_DATAERR;
			break;
		}
	}
	free(line);
	if (msg->data == NULL)
		sm_buf_add(msg, "", 0);
	return rc;
}

/* Where the header ends: the offset of the body (after the blank line). */
static size_t
sm_header_end(const struct sm_buf *msg)
{
	if (msg->len >= 2 && memcmp(msg->data, "\r\n", 2) == 0)
		return 0;
	const char *p = strstr(msg->data, "\r\n\r\n");
	return p != NULL ? (size_t)(p - msg->data) + 2 : msg->len;
}

/* Whether the header line at `line` is field `name` ("To"). */
static bool
sm_is_field(const char *line, const char *name)
{
	size_t n = strlen(name);
	return strncasecmp(line, name, n) == 0 &&
	       (line[n] == ':' || line[n] == ' ' || line[n] == '\t') &&
	       strchr(line + n, ':') != NULL &&
	       strspn(line + n, " \t") ==
		       (size_t)(strchr(line + n, ':') - (line + n));
}

void
ts__sendmail_list_add(struct sm_list *l, const char *s, size_t len)
{
	l->items = ts_xrealloc(l->items, (l->count + 1) * sizeof(*l->items));
	l->items[l->count++] = ts_xstrndup(s, len);
}

void
ts__sendmail_list_free(struct sm_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

/*
 * One mailbox of an address list: the part in <…> if any, else the
 * text without comments and spaces.  Empty results are skipped.
 */
static void
sm_mailbox(const char *s, size_t len, struct sm_list *out)
{
	const char *lt = memchr(s, '<', len);
	if (lt != NULL) {
		const char *gt = memchr(lt, '>', len - (size_t)(lt - s));
		if (gt != NULL && gt > lt + 1)
			ts__sendmail_list_add(out, lt + 1, (size_t)(gt - lt - 1));
		return;
	}
	char *a = ts_xmalloc(len + 1);
	size_t n = 0;
	int depth = 0;
	bool quoted = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (quoted) {
			a[n++] = c;
			if (c == '"')
				quoted = false;
		} else if (c == '"') {
			quoted = true;
			a[n++] = c;
		} else if (c == '(') {
			depth++;
		} else if (c == ')' && depth > 0) {
			depth--;
		} else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' &&
			   c != '\n') {
			a[n++] = c;
		}
	}
	if (n > 0)
		ts__sendmail_list_add(out, a, n);
	free(a);
}

/*
 * The addresses of an address-list header value (RFC 5322 3.4): split
 * at commas outside quotes, comments and <…>; group names ("team:" …
 * ";") dropped.
 */
static void
sm_address_list(const char *v, struct sm_list *out)
{
	const char *start = v;
	int depth = 0;
	bool quoted = false, angle = false;
	for (const char *p = v;; p++) {
		char c = *p;
		if (c == '\0' || (!quoted && depth == 0 && !angle &&
				  (c == ',' || c == ';' || c == ':'))) {
			if (c == ':') {
				start = p + 1; /* a group's display name */
				continue;
			}
			sm_mailbox(start, (size_t)(p - start), out);
			if (c == '\0')
				return;
			start = p + 1;
			continue;
		}
		if (quoted) {
			if (c == '\\' && p[1] != '\0')
				p++;
			else if (c == '"')
				quoted = false;
		} else if (c == '"') {
			quoted = true;
		} else if (c == '(') {
			depth++;
		} else if (c == ')' && depth > 0) {
			depth--;
		} else if (c == '<') {
			angle = true;
		} else if (c == '>') {
			angle = false;
		}
	}
}

/*
 * Walk the header: with -t collect To/Cc/Bcc addresses into rcpts and
 * remove Bcc; note whether there is a From: and its first address.
 * The header is rewritten in place in *msg.
 */
static void
sm_scan_header(struct sm_buf *msg, bool take_rcpts, struct sm_list *rcpts,
	       bool *has_from_r, char **from_addr_r)
{
	size_t end = sm_header_end(msg);
	struct sm_buf out = { 0 };
	size_t i = 0;
	*has_from_r = false;
	*from_addr_r = NULL;
	while (i < end) {
		/* One field: a line and its continuation lines. */
		size_t j = i;
		do {
			const char *nl = strstr(msg->data + j, "\r\n");
			j = nl != NULL ? (size_t)(nl - msg->data) + 2 : end;
		} while (j < end &&
			 (msg->data[j] == ' ' || msg->data[j] == '\t'));
		char *field = ts_xstrndup(msg->data + i, j - i);
		bool bcc = sm_is_field(field, "Bcc");
		bool from = sm_is_field(field, "From");
		if (from)
			*has_from_r = true;
		if ((take_rcpts && (sm_is_field(field, "To") ||
				    sm_is_field(field, "Cc") || bcc)) ||
		    (from && *from_addr_r == NULL)) {
			struct sm_list got = { 0 };
			sm_address_list(strchr(field, ':') + 1, &got);
			if (from && got.count > 0)
				*from_addr_r = ts_xstrdup(got.items[0]);
			else if (!from)
				for (size_t k = 0; k < got.count; k++)
					ts__sendmail_list_add(rcpts, got.items[k],
						    strlen(got.items[k]));
			ts__sendmail_list_free(&got);
		}
		if (!bcc)
			sm_buf_add(&out, field, j - i);
		free(field);
		i = j;
	}
	sm_buf_add(&out, msg->data + end, msg->len - end);
	free(msg->data);
	*msg = out;
}

/* --- the command line ---------------------------------------------------- */

static int
sm_usage(const char *why, const char *what)
{
	fprintf(stderr, "tessera sendmail: %s%s\n", why, what);
	fprintf(stderr, "usage: sendmail [-t] [-i|-oi] [-f SENDER] "
			"[-F FULLNAME] [-C FILE] [RECIPIENT…] < message\n");
	return EX_USAGE;
}

/* Whether an address is plausible for the envelope (no spaces, <>, CR). */
static bool
sm_address_ok(const char *a)
{
	return a[strcspn(a, " \t\r\n<>")] == '\0';
}

int
ts__cmd_sendmail(int argc, char **argv)
{
	const char *config = getenv("TESSERA_CONFIG");
	if (config == NULL || config[0] == '\0')
		config = TS_DEFAULT_CONFIG;
	bool take_rcpts = false, ignore_dots = false;
	const char *sender = NULL, *fullname = NULL;
	struct sm_list rcpts = { 0 };
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "-t") == 0) {
			take_rcpts = true;
		} else if (strcmp(a, "-i") == 0 || strcmp(a, "-oi") == 0) {
			ignore_dots = true;
		} else if (strncmp(a, "-f", 2) == 0 ||
			   strncmp(a, "-r", 2) == 0 ||
			   strncmp(a, "-F", 2) == 0 ||
			   strncmp(a, "-C", 2) == 0) {
			const char *v = a[2] != '\0' ? a + 2 : NULL;
			if (v == NULL && i + 1 < argc)
				v = argv[++i];
			if (v == NULL)
				return sm_usage("option needs a value: ", a);
			if (a[1] == 'F')
				fullname = v;
			else if (a[1] == 'C')
				config = v;
			else
				sender = v;
		} else if (strcmp(a, "-bm") == 0 || strncmp(a, "-o", 2) == 0 ||
			   strcmp(a, "-v") == 0 || strncmp(a, "-B", 2) == 0 ||
			   strncmp(a, "-N", 2) == 0 ||
			   strncmp(a, "-R", 2) == 0 ||
			   strncmp(a, "-V", 2) == 0) {
			/* Accepted for compatibility; nothing to do. */
			if ((strcmp(a, "-B") == 0 || strcmp(a, "-N") == 0 ||
			     strcmp(a, "-R") == 0 || strcmp(a, "-V") == 0) &&
			    i + 1 < argc)
				i++;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			printf("usage: sendmail [-t] [-i|-oi] [-f SENDER] "
			       "[-F FULLNAME] [-C FILE] [RECIPIENT…] < "
			       "message\n");
			return 0;
		} else {
			return sm_usage("unsupported option ", a);
		}
	}
	for (; i < argc; i++) {
		/* "a@x, b@y" in one argument is common in scripts. */
		sm_address_list(argv[i], &rcpts);
	}

	struct sm_settings set;
	int rc = sm_settings_load(config, &set);
	if (rc != 0) {
		sm_settings_clear(&set);
		ts__sendmail_list_free(&rcpts);
		return rc;
	}
	struct sm_buf msg = { 0 };
	rc = sm_read_message(stdin, ignore_dots, &msg);
	bool has_from = false;
	char *from_addr = NULL;
	char *envelope = NULL;
	if (rc == 0) {
		sm_scan_header(&msg, take_rcpts, &rcpts, &has_from, &from_addr);
		if (rcpts.count == 0) {
			fprintf(stderr, "tessera sendmail: no recipients "
					"(give addresses, or -t with To:, Cc: "
					"or Bcc: headers)\n");
			rc = EX_USAGE;
		}
	}
	if (rc == 0) {
		if (sender != NULL)
			envelope = ts_xstrdup(sender);
		else if (set.sender != NULL)
			envelope = ts_xstrdup(set.sender);
		else if (from_addr != NULL)
			envelope = ts_xstrdup(from_addr);
		else {
			struct passwd *pw = getpwuid(getuid());
			envelope =
				ts_xasprintf("%s@%s", pw ? pw->pw_name : "root",
					     set.hostname);
		}
		for (size_t k = 0; k < rcpts.count && rc == 0; k++)
			if (!sm_address_ok(rcpts.items[k]) ||
			    strchr(rcpts.items[k], '@') == NULL) {
				fprintf(stderr,
					"tessera sendmail: bad recipient "
					"address \"%s\"\n",
					rcpts.items[k]);
				rc = EX_DATAERR;
			}
		if (rc == 0 && !sm_address_ok(envelope)) {
			fprintf(stderr,
				"tessera sendmail: bad sender address "
				"\"%s\"\n",
				envelope);
			rc = EX_DATAERR;
		}
	}
	if (rc == 0 && !has_from) {
		/* The submission server wants a From: (RFC 5322 3.6); the
		 * full name goes in a quoted string, without what would
		 * break it. */
		char *name = fullname != NULL ? ts_xstrdup(fullname) : NULL;
		size_t w = 0;
		for (size_t r = 0; name != NULL && name[r] != '\0'; r++)
			if (name[r] != '"' && name[r] != '\\' &&
			    name[r] != '\r' && name[r] != '\n')
				name[w++] = name[r];
		if (name != NULL)
			name[w] = '\0';
		char *from = name != NULL && name[0] != '\0'
				     ? ts_xasprintf("From: \"%s\" <%s>\r\n",
						    name, envelope)
				     : ts_xasprintf("From: %s\r\n", envelope);
		free(name);
		struct sm_buf out = { 0 };
		sm_buf_add(&out, from, strlen(from));
		sm_buf_add(&out, msg.data, msg.len);
		free(from);
		free(msg.data);
		msg = out;
	}
	if (rc == 0)
		rc = ts__sendmail_submit(&set, envelope, &rcpts, &msg);
	free(envelope);
	free(from_addr);
	free(msg.data);
	ts__sendmail_list_free(&rcpts);
	sm_settings_clear(&set);
	return rc;
}
