/*
 * kernel/sendmail-smtp.c — the SMTP client of `tessera sendmail`: one
 * blocking connection to the configured submission server, STARTTLS or
 * implicit TLS (GnuTLS, verified against the system or a given CA),
 * EHLO, AUTH through the kernel's SASL client (the strongest mechanism
 * offered, SCRAM-PLUS when the TLS session allows), MAIL/RCPT/DATA.
 * What the exit codes mean is sendmail.c's business; this file maps SMTP
 * replies to <sysexits.h> codes.  A CLI: blocking is fine here only.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
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

#include "kernel/kernel.h"
#include "kernel/sendmail.h"

/* Socket timeout for each read and write. */
#define SM_TIMEOUT_S 60

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
			ts__sendmail_list_add(caps, line + 4, strlen(line + 4));
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

int
ts__sendmail_submit(const struct sm_settings *set, const char *sender,
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
		ts__sendmail_list_free(&caps);
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
	ts__sendmail_list_free(&caps);
	sm_conn_close(&c);
	return rc;
}
