/*
 * kernel/sendmail.h — what the two halves of `tessera sendmail` share:
 * sendmail.c (the command line, the [sendmail] settings, reading and
 * scanning the message) and sendmail-smtp.c (the blocking SMTP
 * submission client that hands the message to the server).
 */
#ifndef TS_SENDMAIL_H
#define TS_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>

/* The [sendmail] section and what the command line added to it. */
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

/* A growing, NUL-terminated byte buffer (the message). */
struct sm_buf {
	char *data;
	size_t len, cap;
};

/* A list of malloc'd strings (recipients, EHLO capabilities). */
struct sm_list {
	char **items;
	size_t count;
};

/* Append a copy of s[0..len) to l. */
void ts__sendmail_list_add(struct sm_list *l, const char *s, size_t len);
/* Free l's strings and empty it. */
void ts__sendmail_list_free(struct sm_list *l);

/*
 * Submit msg from sender to rcpts over SMTP as set says (TLS, AUTH);
 * blocks.  Returns 0 or a <sysexits.h> code, with the reason printed on
 * stderr; a refused recipient while others were accepted is reported
 * and returns EX_NOUSER or EX_TEMPFAIL.
 */
int ts__sendmail_submit(const struct sm_settings *set, const char *sender,
			const struct sm_list *rcpts, const struct sm_buf *msg);

#endif
