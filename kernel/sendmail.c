/*
 * kernel/sendmail.c — `tessera sendmail` (also run when the binary is
 * invoked through a link named "sendmail"): the traditional local mail
 * submission interface for cron and scripts.  It reads a message on
 * stdin and submits it over SMTP to the server named in the `[sendmail]`
 * section (normally this tessera's own submission listener), with
 * STARTTLS or implicit TLS and SASL authentication through the kernel's
 * SASL client (the most secure mechanism offered: SCRAM first).
 *
 * This is a CLI: it blocks on its socket, which is fine here and nowhere
 * else.  It does not queue anything itself: when the server cannot be
 * reached it exits with EX_TEMPFAIL and the caller (cron) reports it.
 * Exit codes follow <sysexits.h>, which sendmail callers expect.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "kernel/boot.h"
#include "kernel/commands.h"
#include "kernel/kernel.h"

/* Largest message read from stdin. */
#define SM_MAX_MESSAGE (64u * 1024 * 1024)
/* Socket timeout for each read and write. */
#define SM_TIMEOUT_S 60

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

struct sm_settings {
	char *host;
	unsigned port;
	enum { SM_TLS_STARTTLS, SM_TLS_IMPLICIT, SM_TLS_NONE } tls;
	bool verify;
	char *ca_file;
	char *account;
	char *password;
	char *mechanism; /* NULL: auto */
	char *sender;
	char *hostname; /* [core] hostname, for EHLO */
};

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
	const struct ts_cfg_sect *core = ts_cfg_find(b.cfg, "core", NULL);
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
	const char *hn = core ? ts_cfg_str(core, "hostname") : NULL;
	set->hostname = sm_nonempty(hn);
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
	if (rc == 0 && set->hostname == NULL) {
		char buf[256];
		if (gethostname(buf, sizeof(buf)) != 0)
			strcpy(buf, "localhost");
		buf[sizeof(buf) - 1] = '\0';
		set->hostname = ts_xstrdup(buf);
	}
	ts__boot_free(&b);
	return rc;
}

/* --- the message --------------------------------------------------------- */

struct sm_buf {
	char *data;
	size_t len, cap;
};

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

struct sm_list {
	char **items;
	size_t count;
};

static void
sm_list_add(struct sm_list *l, const char *s, size_t len)
{
	l->items = ts_xrealloc(l->items, (l->count + 1) * sizeof(*l->items));
	l->items[l->count++] = ts_xstrndup(s, len);
}

static void
sm_list_free(struct sm_list *l)
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
			sm_list_add(out, lt + 1, (size_t)(gt - lt - 1));
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
		sm_list_add(out, a, n);
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
					sm_list_add(rcpts, got.items[k],
						    strlen(got.items[k]));
			sm_list_free(&got);
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

/* --- the connection ------------------------------------------------------ */

struct sm_conn {
	int fd;
	gnutls_session_t tls; /* NULL in clear */
	gnutls_certificate_credentials_t cred;
	char in[8192];
	size_t in_len;
	bool tls_on;
};

static int
sm_connect(const struct sm_settings *set, struct sm_conn *c)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char port[16];
	snprintf(port, sizeof(port), "%u", set->port);
	int rc = getaddrinfo(set->host, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "tessera sendmail: cannot resolve %s: %s\n",
			set->host, gai_strerror(rc));
		return EX_TEMPFAIL;
	}
	c->fd = -1;
	for (struct addrinfo *ai = res; ai != NULL && c->fd < 0;
	     ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0)
			continue;
		struct timeval tv = { .tv_sec = SM_TIMEOUT_S };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			c->fd = fd;
		else
			close(fd);
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		fprintf(stderr,
			"tessera sendmail: cannot connect to %s port "
			"%u: %s\n",
			set->host, set->port, strerror(errno));
		return EX_TEMPFAIL;
	}
	return 0;
}

static int
sm_tls_start(const struct sm_settings *set, struct sm_conn *c)
{
	int ret;
	if (gnutls_certificate_allocate_credentials(&c->cred) < 0 ||
	    gnutls_init(&c->tls, GNUTLS_CLIENT) < 0)
		return EX_SOFTWARE;
	if (set->verify) {
		ret = set->ca_file != NULL
			      ? gnutls_certificate_set_x509_trust_file(
					c->cred, set->ca_file,
					GNUTLS_X509_FMT_PEM)
			      : gnutls_certificate_set_x509_system_trust(
					c->cred);
		if (ret < 0) {
			fprintf(stderr,
				"tessera sendmail: cannot load CAs%s%s: %s\n",
				set->ca_file ? " from " : "",
				set->ca_file ? set->ca_file : "",
				gnutls_strerror(ret));
			return EX_CONFIG;
		}
		gnutls_session_set_verify_cert(c->tls, set->host, 0);
	}
	gnutls_set_default_priority(c->tls);
	gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->cred);
	/* SNI only for names (RFC 6066 3). */
	unsigned char ab[16];
	if (inet_pton(AF_INET, set->host, ab) != 1 &&
	    inet_pton(AF_INET6, set->host, ab) != 1)
		gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, set->host,
				       strlen(set->host));
	gnutls_transport_set_int(c->tls, c->fd);
	gnutls_handshake_set_timeout(c->tls, SM_TIMEOUT_S * 1000);
	do {
		ret = gnutls_handshake(c->tls);
	} while (ret < 0 && gnutls_error_is_fatal(ret) == 0);
	if (ret < 0) {
		fprintf(stderr, "tessera sendmail: TLS with %s failed: %s\n",
			set->host, gnutls_strerror(ret));
		return EX_TEMPFAIL;
	}
	c->tls_on = true;
	c->in_len = 0; /* nothing read in clear survives STARTTLS */
	return 0;
}

static void
sm_conn_close(struct sm_conn *c)
{
	if (c->tls != NULL) {
		if (c->tls_on)
			gnutls_bye(c->tls, GNUTLS_SHUT_WR);
		gnutls_deinit(c->tls);
	}
	if (c->cred != NULL)
		gnutls_certificate_free_credentials(c->cred);
	if (c->fd >= 0)
		close(c->fd);
}

static int
sm_write(struct sm_conn *c, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = c->tls_on ? gnutls_record_send(c->tls, data, len)
				      : write(c->fd, data, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED ||
		    (n < 0 && !c->tls_on && errno == EINTR))
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One line without CRLF into line (size bytes); -1 on EOF/error. */
static int
sm_read_line(struct sm_conn *c, char *line, size_t size)
{
	for (;;) {
		char *nl = memchr(c->in, '\n', c->in_len);
		if (nl != NULL) {
			size_t n = (size_t)(nl - c->in);
			size_t keep = n > 0 && c->in[n - 1] == '\r' ? n - 1 : n;
			if (keep >= size)
				keep = size - 1;
			memcpy(line, c->in, keep);
			line[keep] = '\0';
			memmove(c->in, nl + 1, c->in_len - n - 1);
			c->in_len -= n + 1;
			return 0;
		}
		if (c->in_len == sizeof(c->in))
			return -1; /* an endless line */
		ssize_t got;
		do {
			got = c->tls_on ? gnutls_record_recv(
						  c->tls, c->in + c->in_len,
						  sizeof(c->in) - c->in_len)
					: read(c->fd, c->in + c->in_len,
					       sizeof(c->in) - c->in_len);
		} while ((c->tls_on && (got == GNUTLS_E_AGAIN ||
					got == GNUTLS_E_INTERRUPTED)) ||
			 (!c->tls_on && got < 0 && errno == EINTR));
		if (got <= 0)
			return -1;
		c->in_len += (size_t)got;
	}
}

/*
 * A whole reply: its code (or -1 when the connection failed), its last
 * line's text in text (for messages), and for EHLO the keyword lines
 * into caps (may be NULL).
 */
static int
sm_reply(struct sm_conn *c, char *text, size_t size, struct sm_list *caps)
{
	char line[1024];
	int code = -1;
	for (int lines = 0; lines < 200; lines++) {
		if (sm_read_line(c, line, sizeof(line)) != 0)
			return -1;
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' ||
		    (line[3] != '\0' && line[3] != ' ' && line[3] != '-'))
			return -1;
		int this = atoi(line);
		if (code >= 0 && this != code)
			return -1;
		code = this;
		snprintf(text, size, "%s", line);
		if (caps != NULL && lines > 0)
			sm_list_add(caps, line + 4, strlen(line + 4));
		if (line[3] != '-')
			return code;
	}
	return -1;
}

/* Send a command line and read its reply; the reply code or -1. */
static int
sm_command(struct sm_conn *c, const char *cmd, char *text, size_t size,
	   struct sm_list *caps)
{
	if (sm_write(c, cmd, strlen(cmd)) != 0 || sm_write(c, "\r\n", 2) != 0)
		return -1;
	return sm_reply(c, text, size, caps);
}

/* --- the conversation ---------------------------------------------------- */

/* The text of the EHLO AUTH keyword, or "". */
static const char *
sm_auth_offered(const struct sm_list *caps)
{
	for (size_t i = 0; i < caps->count; i++)
		if (strncasecmp(caps->items[i], "AUTH ", 5) == 0)
			return caps->items[i] + 5;
	return "";
}

static bool
sm_has_cap(const struct sm_list *caps, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < caps->count; i++)
		if (strncasecmp(caps->items[i], name, n) == 0 &&
		    (caps->items[i][n] == '\0' || caps->items[i][n] == ' '))
			return true;
	return false;
}

/* Report a failed step and map the reply code to an exit status. */
static int
sm_fail(const char *what, int code, const char *text, int permanent_exit)
{
	if (code < 0) {
		fprintf(stderr,
			"tessera sendmail: connection lost during "
			"%s\n",
			what);
		return EX_TEMPFAIL;
	}
	fprintf(stderr, "tessera sendmail: %s refused: %s\n", what, text);
	return code / 100 == 4 ? EX_TEMPFAIL : permanent_exit;
}

static int
sm_authenticate(const struct sm_settings *set, struct sm_conn *c,
		const struct sm_list *caps)
{
	char text[1024];
	uint8_t cb[128];
	size_t cb_len = sizeof(cb);
	const char *cb_type = NULL;
	gnutls_datum_t d;
	if (c->tls_on && gnutls_session_channel_binding(
				 c->tls, GNUTLS_CB_TLS_EXPORTER, &d) == 0) {
		cb_type = "tls-exporter";
		cb_len = d.size < sizeof(cb) ? d.size : sizeof(cb);
		memcpy(cb, d.data, cb_len);
		gnutls_free(d.data);
	} else if (c->tls_on &&
		   gnutls_session_channel_binding(c->tls, GNUTLS_CB_TLS_UNIQUE,
						  &d) == 0) {
		cb_type = "tls-unique";
		cb_len = d.size < sizeof(cb) ? d.size : sizeof(cb);
		memcpy(cb, d.data, cb_len);
		gnutls_free(d.data);
	}
	const char *offered = sm_auth_offered(caps);
	const char *mech = set->mechanism;
	if (mech == NULL)
		mech = ts_sasl_client_choose(offered, c->tls_on,
					     cb_type != NULL, false);
	if (mech == NULL) {
		fprintf(stderr,
			"tessera sendmail: %s offers no usable "
			"authentication mechanism (offered: \"%s\")\n",
			set->host, offered);
		return EX_UNAVAILABLE;
	}
	char *plus = ts_xasprintf("%s-PLUS", mech);
	bool offered_plus = strstr(mech, "-PLUS") == NULL &&
			    strncmp(mech, "SCRAM", 5) == 0 &&
			    strcasestr(offered, plus) != NULL;
	free(plus);
	const char *error;
	struct ts_sasl_client_opts o = {
		.mechanism = mech,
		.username = set->account,
		.password = set->password,
		.tls_active = c->tls_on,
		.allow_plaintext = false,
		.cb_type = offered_plus ? NULL : cb_type,
		.cb_data = cb,
		.cb_len = cb_len,
	};
	struct ts_sasl_client *sc = ts_sasl_client_new(&o, &error);
	if (sc == NULL) {
		fprintf(stderr,
			"tessera sendmail: cannot authenticate with "
			"%s: %s\n",
			mech, error);
		return EX_CONFIG;
	}
	uint8_t *resp;
	size_t len;
	int rc = EX_PROTOCOL;
	ts_sasl_client_step(sc, NULL, 0, &resp, &len);
	char *cmd;
	if (resp == NULL) {
		cmd = ts_xasprintf("AUTH %s", mech);
	} else {
		char *b64 =
			len > 0 ? ts_base64_encode(resp, len) : ts_xstrdup("=");
		cmd = ts_xasprintf("AUTH %s %s", mech, b64);
		gnutls_memset(b64, 0, strlen(b64));
		free(b64);
		gnutls_memset(resp, 0, len);
		free(resp);
	}
	int code = sm_command(c, cmd, text, sizeof(text), NULL);
	gnutls_memset(cmd, 0, strlen(cmd));
	free(cmd);
	for (int rounds = 0; code == 334 && rounds < 10; rounds++) {
		uint8_t *ch;
		size_t chlen;
		if (ts_base64_decode(text + 4, &ch, &chlen) != 0 ||
		    ts_sasl_client_step(sc, ch, chlen, &resp, &len) != 0) {
			free(ch);
			fprintf(stderr,
				"tessera sendmail: authentication "
				"with %s failed: %s\n",
				set->host,
				ts_sasl_client_error(sc)
					? ts_sasl_client_error(sc)
					: "bad challenge");
			sm_command(c, "*", text, sizeof(text), NULL);
			ts_sasl_client_free(&sc);
			return EX_PROTOCOL;
		}
		free(ch);
		char *b64 = ts_base64_encode(resp, len);
		gnutls_memset(resp, 0, len);
		free(resp);
		code = sm_command(c, b64, text, sizeof(text), NULL);
		gnutls_memset(b64, 0, strlen(b64));
		free(b64);
	}
	if (code == 235 && ts_sasl_client_complete(sc)) {
		rc = 0;
	} else if (code == 235) {
		fprintf(stderr,
			"tessera sendmail: %s accepted us without "
			"proving it knows the password\n",
			set->host);
		rc = EX_PROTOCOL;
	} else if (code == 535 || code / 100 == 5) {
		fprintf(stderr,
			"tessera sendmail: authentication as %s "
			"refused: %s\n",
			set->account, text);
		rc = EX_NOPERM;
	} else {
		rc = sm_fail("authentication", code, text, EX_PROTOCOL);
	}
	ts_sasl_client_free(&sc);
	return rc;
}

/* Send the message with dot-stuffing and the final ".". */
static int
sm_send_data(struct sm_conn *c, const struct sm_buf *msg)
{
	const char *p = msg->data, *end = msg->data + msg->len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl != NULL ? nl + 1 : end;
		if (*p == '.' && sm_write(c, ".", 1) != 0)
			return -1;
		if (sm_write(c, p, (size_t)(stop - p)) != 0)
			return -1;
		p = stop;
	}
	if (msg->len > 0 && msg->data[msg->len - 1] != '\n' &&
	    sm_write(c, "\r\n", 2) != 0)
		return -1;
	return sm_write(c, ".\r\n", 3);
}

static int
sm_submit(const struct sm_settings *set, const char *sender,
	  const struct sm_list *rcpts, const struct sm_buf *msg)
{
	struct sm_conn c = { .fd = -1 };
	struct sm_list caps = { 0 };
	char text[1024];
	int rc = sm_connect(set, &c);
	if (rc != 0)
		return rc;
	if (set->tls == SM_TLS_IMPLICIT && (rc = sm_tls_start(set, &c)) != 0)
		goto out;
	int code = sm_reply(&c, text, sizeof(text), NULL);
	if (code != 220) {
		rc = sm_fail("the greeting", code, text, EX_UNAVAILABLE);
		goto out;
	}
	char *ehlo = ts_xasprintf("EHLO %s", set->hostname);
	code = sm_command(&c, ehlo, text, sizeof(text), &caps);
	if (code != 250) {
		rc = sm_fail("EHLO", code, text, EX_PROTOCOL);
		free(ehlo);
		goto out;
	}
	if (set->tls == SM_TLS_STARTTLS) {
		if (!sm_has_cap(&caps, "STARTTLS")) {
			fprintf(stderr,
				"tessera sendmail: %s does not offer "
				"STARTTLS ([sendmail] tls = "
				"starttls)\n",
				set->host);
			rc = EX_UNAVAILABLE;
			free(ehlo);
			goto out;
		}
		code = sm_command(&c, "STARTTLS", text, sizeof(text), NULL);
		if (code != 220) {
			rc = sm_fail("STARTTLS", code, text, EX_UNAVAILABLE);
			free(ehlo);
			goto out;
		}
		if ((rc = sm_tls_start(set, &c)) != 0) {
			free(ehlo);
			goto out;
		}
		sm_list_free(&caps);
		code = sm_command(&c, ehlo, text, sizeof(text), &caps);
		if (code != 250) {
			rc = sm_fail("EHLO", code, text, EX_PROTOCOL);
			free(ehlo);
			goto out;
		}
	}
	free(ehlo);
	if (set->account != NULL && (rc = sm_authenticate(set, &c, &caps)) != 0)
		goto out;
	char *cmd = ts_xasprintf("MAIL FROM:<%s>", sender);
	code = sm_command(&c, cmd, text, sizeof(text), NULL);
	free(cmd);
	if (code != 250) {
		rc = sm_fail("the sender", code, text, EX_NOPERM);
		goto out;
	}
	size_t accepted = 0;
	int rcpt_rc = 0;
	for (size_t i = 0; i < rcpts->count; i++) {
		cmd = ts_xasprintf("RCPT TO:<%s>", rcpts->items[i]);
		code = sm_command(&c, cmd, text, sizeof(text), NULL);
		free(cmd);
		if (code / 100 == 2) {
			accepted++;
			continue;
		}
		fprintf(stderr, "tessera sendmail: recipient %s refused: %s\n",
			rcpts->items[i], code < 0 ? "connection lost" : text);
		rcpt_rc = code / 100 == 5 ? EX_NOUSER : EX_TEMPFAIL;
		if (code < 0) {
			rc = EX_TEMPFAIL;
			goto out;
		}
	}
	if (accepted == 0) {
		rc = rcpt_rc;
		sm_command(&c, "QUIT", text, sizeof(text), NULL);
		goto out;
	}
	code = sm_command(&c, "DATA", text, sizeof(text), NULL);
	if (code != 354) {
		rc = sm_fail("DATA", code, text, EX_UNAVAILABLE);
		goto out;
	}
	if (sm_send_data(&c, msg) != 0) {
		rc = EX_TEMPFAIL;
		fprintf(stderr, "tessera sendmail: connection lost while "
				"sending the message\n");
		goto out;
	}
	code = sm_reply(&c, text, sizeof(text), NULL);
	if (code / 100 != 2) {
		rc = sm_fail("the message", code, text, EX_UNAVAILABLE);
		goto out;
	}
	sm_command(&c, "QUIT", text, sizeof(text), NULL);
	/* Some recipients were refused: the others got it, but say so. */
	rc = rcpt_rc;
out:
	sm_list_free(&caps);
	sm_conn_close(&c);
	return rc;
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
		sm_list_free(&rcpts);
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
		rc = sm_submit(&set, envelope, &rcpts, &msg);
	free(envelope);
	free(from_addr);
	free(msg.data);
	sm_list_free(&rcpts);
	sm_settings_clear(&set);
	return rc;
}
