/*
 * modules/smtp/command.c — parse SMTP command lines and their parameters.
 *
 * One line in, one struct smtp_command or one ready-made error reply
 * out.  Strict mode follows the RFC 5321 grammar to the letter (one
 * space after the verb, `MAIL FROM:<path>` with nothing between the
 * colon and the path, one space between parameters); SMTP_LENIENT, for
 * authenticated submission, accepts the deviations clients are known for.
 * Paths are parsed by address.c; this file knows the ESMTP parameters of
 * SIZE, 8BITMIME, BINARYMIME, SMTPUTF8, REQUIRETLS, DSN and AUTH, the
 * arguments of BDAT and AUTH, and the xtext and base64 encodings they
 * use.  No I/O and no session state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "command.h"

/* At most this many ESMTP parameters on one MAIL or RCPT. */
#define SMTP_MAX_PARAMS 16
/* RFC 3461 4.4 and 4.2: longest ENVID and ORCPT values. */
#define SMTP_MAX_ENVID 100
#define SMTP_MAX_ORCPT 500

static const struct smtp_verb_entry {
	const char *name;
	enum smtp_verb verb;
} smtp_verbs[] = {
	{ "EHLO", SMTP_VERB_EHLO },	    { "HELO", SMTP_VERB_HELO },
	{ "MAIL", SMTP_VERB_MAIL },	    { "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA },	    { "BDAT", SMTP_VERB_BDAT },
	{ "RSET", SMTP_VERB_RSET },	    { "NOOP", SMTP_VERB_NOOP },
	{ "VRFY", SMTP_VERB_VRFY },	    { "EXPN", SMTP_VERB_EXPN },
	{ "HELP", SMTP_VERB_HELP },	    { "QUIT", SMTP_VERB_QUIT },
	{ "STARTTLS", SMTP_VERB_STARTTLS }, { "AUTH", SMTP_VERB_AUTH },
};

#define SMTP_N_VERBS (sizeof(smtp_verbs) / sizeof(smtp_verbs[0]))

const char *
smtp_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < SMTP_N_VERBS; i++)
		if (smtp_verbs[i].verb == verb)
			return smtp_verbs[i].name;
	return "?";
}

static enum smtp_verb
smtp_verb_lookup(const char *s, size_t len)
{
	for (size_t i = 0; i < SMTP_N_VERBS; i++)
		if (strlen(smtp_verbs[i].name) == len &&
		    strncasecmp(smtp_verbs[i].name, s, len) == 0)
			return smtp_verbs[i].verb;
	return SMTP_VERB_UNKNOWN;
}

/* Fill a reply; the text is printf-formatted and truncated to fit. */
static void smtp_reply_set(struct smtp_reply *reply, int code,
			   const char *enhanced, const char *fmt, ...)
	TS_PRINTF(4, 5);

static void
smtp_reply_set(struct smtp_reply *reply, int code, const char *enhanced,
	       const char *fmt, ...)
{
	va_list ap;

	reply->code = code;
	reply->enhanced = enhanced;
	va_start(ap, fmt);
	vsnprintf(reply->text, sizeof(reply->text), fmt, ap);
	va_end(ap);
}

static bool
smtp_is_space(char c, bool lenient)
{
	return c == ' ' || (lenient && c == '\t');
}

static bool
smtp_is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* Parse 1*DIGIT (at most 20) into *value; more than fits gives
 * UINT64_MAX when saturate, else failure. */
static bool
smtp_parse_number(const char *s, size_t len, bool saturate, uint64_t *value)
{
	uint64_t v = 0;
	bool overflow = false;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned digit = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - digit) / 10)
			overflow = true;
		else
			v = v * 10 + digit;
	}
	if (overflow && !saturate)
		return false;
	*value = overflow ? UINT64_MAX : v;
	return true;
}

/* --- xtext and base64 --------------------------------------------- */

static int
smtp_hex_value(char c, bool lower_ok)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (lower_ok && c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
smtp_xtext_decode(const char *in, size_t len, unsigned flags, char **out_r)
{
	char *out = ts_xmalloc(len + 1);
	size_t n = 0;

	if ((flags & SMTP_UTF8) && !smtp_utf8_valid(in, len))
		goto bad;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '+') {
			int hi, lo;
			if (i + 2 >= len)
				goto bad;
			hi = smtp_hex_value(in[i + 1],
					    (flags & SMTP_LENIENT) != 0);
			lo = smtp_hex_value(in[i + 2],
					    (flags & SMTP_LENIENT) != 0);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			out[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (c >= 33 && c <= 126 && c != '=') {
			out[n++] = (char)c;
		} else if (c >= 0x80 && (flags & SMTP_UTF8)) {
			out[n++] = (char)c;
		} else {
			goto bad;
		}
	}
	out[n] = '\0';
	*out_r = out;
	return 0;
bad:
	free(out);
	return TS_E_INVAL;
}

char *
smtp_xtext_encode(const char *s)
{
	size_t len = strlen(s), n = 0;
	char *out = ts_xmalloc(3 * len + 1);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126 || c == '+' || c == '=')
			n += (size_t)snprintf(out + n, 4, "+%02X", c);
		else
			out[n++] = (char)c;
	}
	out[n] = '\0';
	return out;
}

static const char smtp_b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
smtp_b64_value(char c)
{
	const char *p = c != '\0' ? strchr(smtp_b64_alphabet, c) : NULL;
	return p != NULL ? (int)(p - smtp_b64_alphabet) : -1;
}

int
smtp_base64_decode(const char *in, size_t len, unsigned char **out_r,
		   size_t *out_len_r)
{
	if (len % 4 != 0)
		return TS_E_INVAL;

	unsigned char *out = ts_xmalloc(len / 4 * 3 + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		bool last = i + 4 == len;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && last && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			/* a value after padding ("ab=c") is malformed */
			v[k] = pad > 0 ? -1 : smtp_b64_value(in[i + k]);
			if (v[k] < 0) {
				free(out);
				return TS_E_INVAL;
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		out[n++] = (unsigned char)(w >> 16);
		if (pad < 2)
			out[n++] = (unsigned char)(w >> 8);
		if (pad < 1)
			out[n++] = (unsigned char)w;
	}
	out[n] = '\0';
	*out_r = out;
	*out_len_r = n;
	return 0;
}

char *
smtp_base64_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = ts_xmalloc((len + 2) / 3 * 4 + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			w |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			w |= in[i + 2];
		out[n++] = smtp_b64_alphabet[(w >> 18) & 63];
		out[n++] = smtp_b64_alphabet[(w >> 12) & 63];
		out[n++] = i + 1 < len ? smtp_b64_alphabet[(w >> 6) & 63] : '=';
		out[n++] = i + 2 < len ? smtp_b64_alphabet[w & 63] : '=';
	}
	out[n] = '\0';
	return out;
}

/* --- ESMTP parameters ---------------------------------------------- */

/* One `KEY[=VALUE]` of a MAIL or RCPT line (pointers into the line). */
struct smtp_param {
	const char *key;
	size_t key_len;
	const char *value; /* NULL without `=` */
	size_t value_len;
};

/*
 * Split what follows a path into parameters.  Strict: nothing, or one
 * space before each parameter and nothing after the last; lenient: runs
 * of blanks anywhere.  Checks the esmtp-keyword and esmtp-value grammar
 * (RFC 5321 4.1.2; UTF-8 in values only when utf8, RFC 6531 3.3).
 */
static int
smtp_params_split(const char *s, size_t len, bool lenient, bool utf8,
		  const char *syntax, struct smtp_param *params,
		  size_t *count_r, struct smtp_reply *reply)
{
	size_t i = 0, n = 0;

	for (;;) {
		if (lenient) {
			while (i < len && smtp_is_space(s[i], true))
				i++;
			if (i == len)
				break;
		} else {
			if (i == len)
				break;
			if (s[i] != ' ' || i + 1 == len || s[i + 1] == ' ') {
				smtp_reply_set(reply, 501, "5.5.4", "%s",
					       syntax);
				return TS_E_INVAL;
			}
			i++;
		}
		size_t start = i;
		while (i < len && !smtp_is_space(s[i], lenient))
			i++;
		if (n == SMTP_MAX_PARAMS) {
			smtp_reply_set(reply, 501, "5.5.4",
				       "too many parameters");
			return TS_E_INVAL;
		}

		struct smtp_param *p = &params[n++];
		const char *eq = memchr(s + start, '=', i - start);
		p->key = s + start;
		p->key_len = eq != NULL ? (size_t)(eq - p->key) : i - start;
		p->value = eq != NULL ? eq + 1 : NULL;
		p->value_len = eq != NULL ? (size_t)(s + i - p->value) : 0;

		bool ok = p->key_len > 0 && p->key_len <= 32;
		for (size_t k = 0; ok && k < p->key_len; k++)
			ok = smtp_is_alnum((unsigned char)p->key[k]) ||
			     (k > 0 && p->key[k] == '-');
		if (!ok) {
			smtp_reply_set(reply, 501, "5.5.4",
				       "bad parameter syntax");
			return TS_E_INVAL;
		}
		if (p->value == NULL)
			continue;

		bool non_ascii = false;
		ok = p->value_len > 0;
		for (size_t k = 0; ok && k < p->value_len; k++) {
			unsigned char c = (unsigned char)p->value[k];
			if (c >= 0x80)
				non_ascii = true;
			else
				ok = c >= 33 && c <= 126 && c != '=';
		}
		if (ok && non_ascii && !smtp_utf8_valid(p->value, p->value_len))
			ok = false;
		if (!ok) {
			smtp_reply_set(reply, 501, "5.5.4",
				       "bad value for parameter %.*s",
				       (int)p->key_len, p->key);
			return TS_E_INVAL;
		}
		if (non_ascii && !utf8) {
			smtp_reply_set(reply, 501, "5.6.7",
				       "non-ASCII parameter value requires "
				       "SMTPUTF8");
			return TS_E_INVAL;
		}
	}
	*count_r = n;
	return 0;
}

static bool
smtp_param_is(const struct smtp_param *p, const char *name)
{
	return strlen(name) == p->key_len &&
	       strncasecmp(p->key, name, p->key_len) == 0;
}

static bool
smtp_value_is(const struct smtp_param *p, const char *word)
{
	return strlen(word) == p->value_len &&
	       strncasecmp(p->value, word, p->value_len) == 0;
}

/* The parameter names MAIL and RCPT know, each with its extension. */
enum smtp_param_id {
	SMTP_P_SIZE,
	SMTP_P_BODY,
	SMTP_P_SMTPUTF8,
	SMTP_P_REQUIRETLS,
	SMTP_P_RET,
	SMTP_P_ENVID,
	SMTP_P_AUTH,
	SMTP_P_NOTIFY,
	SMTP_P_ORCPT,
};

static const struct smtp_param_def {
	const char *name;
	enum smtp_param_id id;
	enum smtp_verb verb;
	unsigned extension;
	bool takes_value;
} smtp_param_defs[] = {
	{ "SIZE", SMTP_P_SIZE, SMTP_VERB_MAIL, SMTP_EXT_SIZE, true },
	{ "BODY", SMTP_P_BODY, SMTP_VERB_MAIL,
	  SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME, true },
	{ "SMTPUTF8", SMTP_P_SMTPUTF8, SMTP_VERB_MAIL, SMTP_EXT_SMTPUTF8,
	  false },
	{ "REQUIRETLS", SMTP_P_REQUIRETLS, SMTP_VERB_MAIL, SMTP_EXT_REQUIRETLS,
	  false },
	{ "RET", SMTP_P_RET, SMTP_VERB_MAIL, SMTP_EXT_DSN, true },
	{ "ENVID", SMTP_P_ENVID, SMTP_VERB_MAIL, SMTP_EXT_DSN, true },
	{ "AUTH", SMTP_P_AUTH, SMTP_VERB_MAIL, SMTP_EXT_AUTH, true },
	{ "NOTIFY", SMTP_P_NOTIFY, SMTP_VERB_RCPT, SMTP_EXT_DSN, true },
	{ "ORCPT", SMTP_P_ORCPT, SMTP_VERB_RCPT, SMTP_EXT_DSN, true },
};

static const struct smtp_param_def *
smtp_param_find(const struct smtp_param *p, enum smtp_verb verb,
		unsigned extensions)
{
	for (size_t i = 0;
	     i < sizeof(smtp_param_defs) / sizeof(smtp_param_defs[0]); i++) {
		const struct smtp_param_def *d = &smtp_param_defs[i];
		if (d->verb == verb && smtp_param_is(p, d->name))
			return (d->extension & extensions) != 0 ? d : NULL;
	}
	return NULL;
}

/* NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1). */
static bool
smtp_parse_notify(const char *s, size_t len, unsigned *notify_r)
{
	unsigned notify = 0;
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != ',')
			continue;
		const char *w = s + start;
		size_t wlen = i - start;
		unsigned bit = 0;
		if (wlen == 5 && strncasecmp(w, "NEVER", 5) == 0)
			bit = SMTP_NOTIFY_NEVER;
		else if (wlen == 7 && strncasecmp(w, "SUCCESS", 7) == 0)
			bit = SMTP_NOTIFY_SUCCESS;
		else if (wlen == 7 && strncasecmp(w, "FAILURE", 7) == 0)
			bit = SMTP_NOTIFY_FAILURE;
		else if (wlen == 5 && strncasecmp(w, "DELAY", 5) == 0)
			bit = SMTP_NOTIFY_DELAY;
		if (bit == 0 || (notify & bit) != 0)
			return false;
		notify |= bit;
		start = i + 1;
	}
	if ((notify & SMTP_NOTIFY_NEVER) && notify != SMTP_NOTIFY_NEVER)
		return false;
	*notify_r = notify;
	return true;
}

/* ORCPT=addr-type;xtext (RFC 3461 4.2; type utf-8 from RFC 6533). */
static bool
smtp_parse_orcpt(const struct smtp_param *p, unsigned xflags,
		 struct smtp_rcpt_params *rcpt)
{
	const char *semi = memchr(p->value, ';', p->value_len);

	if (semi == NULL || semi == p->value || p->value_len > SMTP_MAX_ORCPT)
		return false;
	size_t type_len = (size_t)(semi - p->value);
	size_t addr_len = p->value_len - type_len - 1;
	if (addr_len == 0)
		return false;
	for (size_t i = 0; i < type_len; i++) {
		unsigned char c = (unsigned char)p->value[i];
		if (!smtp_is_alnum(c) &&
		    strchr("!#$%&'*+-/=?^_`{|}~", c) == NULL)
			return false;
	}

	char *decoded;
	if (type_len == 5 && strncasecmp(p->value, "utf-8", 5) == 0)
		decoded = ts_xstrndup(semi + 1, addr_len);
	else if (smtp_xtext_decode(semi + 1, addr_len, xflags, &decoded) < 0)
		return false;
	rcpt->orcpt_type = ts_xstrndup(p->value, type_len);
	rcpt->orcpt_raw = ts_xstrndup(semi + 1, addr_len);
	rcpt->orcpt = decoded;
	return true;
}

/*
 * Apply one known parameter to cmd.  Returns 0 or TS_E_INVAL with the
 * reply set.  xflags are the flags for xtext decoding.
 */
static int
smtp_param_apply(const struct smtp_param_def *def, const struct smtp_param *p,
		 const struct smtp_parse_opts *opts, unsigned xflags,
		 struct smtp_command *cmd, struct smtp_reply *reply)
{
	struct smtp_mail_params *mail = &cmd->mail;

	if (def->takes_value && p->value == NULL) {
		smtp_reply_set(reply, 501, "5.5.4",
			       "parameter %s needs a value", def->name);
		return TS_E_INVAL;
	}
	if (!def->takes_value && p->value != NULL) {
		smtp_reply_set(reply, 501, "5.5.4",
			       "parameter %s takes no value", def->name);
		return TS_E_INVAL;
	}
	switch (def->id) {
	case SMTP_P_SIZE:
		if (!smtp_parse_number(p->value, p->value_len, true,
				       &mail->size)) {
			smtp_reply_set(reply, 501, "5.5.4",
				       "syntax: SIZE=<number>");
			return TS_E_INVAL;
		}
		mail->has_size = true;
		if (opts->max_size != 0 && mail->size > opts->max_size) {
			/* RFC 1870 6.1: declared size over a fixed limit */
			smtp_reply_set(reply, 552, "5.3.4",
				       "message size exceeds the limit of "
				       "%llu bytes",
				       (unsigned long long)opts->max_size);
			return TS_E_INVAL;
		}
		return 0;
	case SMTP_P_BODY:
		if (smtp_value_is(p, "7BIT") &&
		    (opts->extensions & SMTP_EXT_8BITMIME)) {
			mail->body = SMTP_BODY_7BIT;
		} else if (smtp_value_is(p, "8BITMIME") &&
			   (opts->extensions & SMTP_EXT_8BITMIME)) {
			mail->body = SMTP_BODY_8BITMIME;
		} else if (smtp_value_is(p, "BINARYMIME") &&
			   (opts->extensions & SMTP_EXT_BINARYMIME)) {
			mail->body = SMTP_BODY_BINARYMIME;
		} else if (smtp_value_is(p, "7BIT") ||
			   smtp_value_is(p, "8BITMIME") ||
			   smtp_value_is(p, "BINARYMIME")) {
			smtp_reply_set(reply, 555, "5.5.4",
				       "unsupported parameter BODY=%.*s",
				       (int)p->value_len, p->value);
			return TS_E_INVAL;
		} else {
			smtp_reply_set(reply, 501, "5.5.4",
				       "syntax: BODY=7BIT|8BITMIME|BINARYMIME");
			return TS_E_INVAL;
		}
		return 0;
	case SMTP_P_SMTPUTF8:
		mail->smtputf8 = true;
		return 0;
	case SMTP_P_REQUIRETLS:
		mail->requiretls = true;
		return 0;
	case SMTP_P_RET:
		if (smtp_value_is(p, "FULL")) {
			mail->ret = SMTP_RET_FULL;
		} else if (smtp_value_is(p, "HDRS")) {
			mail->ret = SMTP_RET_HDRS;
		} else {
			smtp_reply_set(reply, 501, "5.5.4",
				       "syntax: RET=FULL|HDRS");
			return TS_E_INVAL;
		}
		return 0;
	case SMTP_P_ENVID:
		if (p->value_len > SMTP_MAX_ENVID ||
		    smtp_xtext_decode(p->value, p->value_len, xflags,
				      &mail->envid) < 0) {
			smtp_reply_set(reply, 501, "5.5.4",
				       "syntax: ENVID=xtext");
			return TS_E_INVAL;
		}
		return 0;
	case SMTP_P_AUTH:
		/* RFC 4954 5: AUTH=<> or the xtext of an addr-spec */
		if (p->value_len == 2 && memcmp(p->value, "<>", 2) == 0) {
			mail->auth = ts_xstrdup("");
			return 0;
		}
		if (smtp_xtext_decode(p->value, p->value_len, xflags,
				      &mail->auth) < 0) {
			smtp_reply_set(reply, 501, "5.5.4",
				       "syntax: AUTH=xtext|<>");
			return TS_E_INVAL;
		}
		return 0;
	case SMTP_P_NOTIFY:
		if (!smtp_parse_notify(p->value, p->value_len,
				       &cmd->rcpt.notify)) {
			smtp_reply_set(reply, 501, "5.5.4",
				       "syntax: NOTIFY=NEVER|"
				       "SUCCESS,FAILURE,DELAY");
			return TS_E_INVAL;
		}
		return 0;
	case SMTP_P_ORCPT:
		if (!smtp_parse_orcpt(p, xflags, &cmd->rcpt)) {
			smtp_reply_set(reply, 501, "5.5.4",
				       "syntax: ORCPT=addr-type;xtext");
			return TS_E_INVAL;
		}
		return 0;
	}
	return 0;
}

/* --- MAIL and RCPT ------------------------------------------------- */

/*
 * `FROM:<path> params` / `TO:<path> params`.  MAIL parses the path with
 * UTF-8 allowed, then refuses it (553 5.6.7) unless its own parameters
 * hold SMTPUTF8 — the parameter comes after the path it governs.
 */
static int
smtp_parse_mail_rcpt(struct smtp_command *cmd, const char *arg, size_t arg_len,
		     const struct smtp_parse_opts *opts,
		     struct smtp_reply *reply)
{
	bool mail = cmd->verb == SMTP_VERB_MAIL;
	bool lenient = (opts->flags & SMTP_LENIENT) != 0;
	const char *prefix = mail ? "FROM:" : "TO:";
	size_t prefix_len = strlen(prefix);
	const char *syntax = mail ? "syntax: MAIL FROM:<address>"
				  : "syntax: RCPT TO:<address>";

	if (arg == NULL || arg_len < prefix_len ||
	    strncasecmp(arg, prefix, prefix_len) != 0) {
		smtp_reply_set(reply, 501, "5.5.4", "%s", syntax);
		return TS_E_INVAL;
	}
	size_t i = prefix_len;
	if (lenient)
		while (i < arg_len && smtp_is_space(arg[i], true))
			i++;
	if (i == arg_len || (!lenient && arg[i] != '<')) {
		smtp_reply_set(reply, 501, "5.5.4", "%s", syntax);
		return TS_E_INVAL;
	}

	unsigned pflags = opts->flags & (SMTP_LENIENT | SMTP_UTF8);
	pflags |= mail ? SMTP_UTF8 | SMTP_NULL_PATH_OK : SMTP_POSTMASTER_OK;
	const char *error;
	size_t consumed;
	int ret = smtp_path_parse_prefix(arg + i, arg_len - i, pflags,
					 &cmd->path, &consumed, &error);
	if (ret == SMTP_E_UTF8) {
		smtp_reply_set(reply, 553, "5.6.7", "%s", error);
		return TS_E_INVAL;
	}
	if (ret < 0) {
		/* RFC 3463: X.1.7 bad sender, X.1.3 bad recipient syntax */
		smtp_reply_set(reply, 553, mail ? "5.1.7" : "5.1.3",
			       "bad %s address: %s",
			       mail ? "sender" : "recipient", error);
		return TS_E_INVAL;
	}
	i += consumed;

	struct smtp_param params[SMTP_MAX_PARAMS];
	size_t n_params;
	bool utf8 = (opts->flags & SMTP_UTF8) != 0;
	if (mail) {
		/* a first look for SMTPUTF8, which allows UTF-8 elsewhere */
		utf8 = false;
		ret = smtp_params_split(arg + i, arg_len - i, lenient, true,
					syntax, params, &n_params, reply);
		for (size_t k = 0; ret == 0 && k < n_params; k++)
			if (smtp_param_is(&params[k], "SMTPUTF8") &&
			    (opts->extensions & SMTP_EXT_SMTPUTF8))
				utf8 = true;
	}
	ret = smtp_params_split(arg + i, arg_len - i, lenient, utf8, syntax,
				params, &n_params, reply);
	if (ret < 0)
		return ret;

	unsigned seen = 0;
	unsigned xflags = (lenient ? SMTP_LENIENT : 0) | (utf8 ? SMTP_UTF8 : 0);
	for (size_t k = 0; k < n_params; k++) {
		const struct smtp_param *p = &params[k];
		const struct smtp_param_def *def =
			smtp_param_find(p, cmd->verb, opts->extensions);
		if (def == NULL) {
			smtp_reply_set(reply, 555, "5.5.4",
				       "unsupported parameter %.*s",
				       (int)p->key_len, p->key);
			return TS_E_INVAL;
		}
		if (seen & (1u << def->id)) {
			smtp_reply_set(reply, 501, "5.5.4",
				       "duplicate parameter %s", def->name);
			return TS_E_INVAL;
		}
		seen |= 1u << def->id;
		ret = smtp_param_apply(def, p, opts, xflags, cmd, reply);
		if (ret < 0)
			return ret;
	}
	if ((cmd->path.flags & SMTP_PATH_NON_ASCII) && !utf8) {
		smtp_reply_set(reply, 553, "5.6.7",
			       "non-ASCII address requires SMTPUTF8");
		return TS_E_INVAL;
	}
	return 0;
}

/* --- the other verbs ----------------------------------------------- */

/* `BDAT size [LAST]` (RFC 3030 2). */
static int
smtp_parse_bdat(struct smtp_command *cmd, const char *arg, size_t len,
		bool lenient, struct smtp_reply *reply)
{
	size_t i = 0;

	while (i < len && arg[i] >= '0' && arg[i] <= '9')
		i++;
	if (!smtp_parse_number(arg, i, false, &cmd->bdat_size))
		goto bad;
	if (i == len)
		return 0;
	if (!smtp_is_space(arg[i], lenient))
		goto bad;
	i++;
	if (lenient)
		while (i < len && smtp_is_space(arg[i], true))
			i++;
	if (len - i == 4 && strncasecmp(arg + i, "LAST", 4) == 0) {
		cmd->bdat_last = true;
		return 0;
	}
bad:
	smtp_reply_set(reply, 501, "5.5.4", "syntax: BDAT size [LAST]");
	return TS_E_INVAL;
}

/* `AUTH mechanism [initial-response]` (RFC 4954 4, RFC 4422 3.1). */
static int
smtp_parse_auth(struct smtp_command *cmd, const char *arg, size_t len,
		bool lenient, struct smtp_reply *reply)
{
	size_t i = 0;

	while (i < len && !smtp_is_space(arg[i], lenient))
		i++;
	if (i == 0 || i > 20)
		goto bad;
	for (size_t k = 0; k < i; k++)
		if (!smtp_is_alnum((unsigned char)arg[k]) && arg[k] != '-' &&
		    arg[k] != '_')
			goto bad;
	cmd->auth_mechanism = ts_xstrndup(arg, i);
	for (char *p = cmd->auth_mechanism; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	if (i == len)
		return 0;

	i++;
	if (lenient)
		while (i < len && smtp_is_space(arg[i], true))
			i++;
	const char *resp = arg + i;
	size_t resp_len = len - i;
	if (resp_len == 0 || memchr(resp, ' ', resp_len) != NULL ||
	    memchr(resp, '\t', resp_len) != NULL)
		goto bad;
	cmd->auth_has_initial = true;
	if (resp_len == 1 && resp[0] == '=') {
		/* RFC 4954 4: "=" is an empty initial response */
		cmd->auth_initial = (unsigned char *)ts_xstrdup("");
		cmd->auth_initial_len = 0;
		return 0;
	}
	if (smtp_base64_decode(resp, resp_len, &cmd->auth_initial,
			       &cmd->auth_initial_len) < 0) {
		smtp_reply_set(reply, 501, "5.5.2",
			       "invalid base64 in initial response");
		return TS_E_INVAL;
	}
	return 0;
bad:
	smtp_reply_set(reply, 501, "5.5.4",
		       "syntax: AUTH mechanism [initial-response]");
	return TS_E_INVAL;
}

static int
smtp_parse_ehlo(struct smtp_command *cmd, const char *arg, size_t len,
		const struct smtp_parse_opts *opts, struct smtp_reply *reply)
{
	const char *name = smtp_verb_name(cmd->verb);
	const char *error;

	if (arg == NULL || len == 0) {
		smtp_reply_set(reply, 501, "5.5.4", "syntax: %s domain", name);
		return TS_E_INVAL;
	}
	/* cmd->arg is the NUL-terminated copy (NULs were refused). */
	if (smtp_ehlo_parse(cmd->arg, opts->flags & SMTP_LENIENT, &cmd->domain,
			    &error) < 0) {
		smtp_reply_set(reply, 501, "5.5.4", "bad %s argument: %s", name,
			       error);
		return TS_E_INVAL;
	}
	return 0;
}

/* Dispatch on the verb once it and its argument are split. */
static int
smtp_parse_verb(struct smtp_command *cmd, const char *arg, size_t arg_len,
		const struct smtp_parse_opts *opts, struct smtp_reply *reply)
{
	bool lenient = (opts->flags & SMTP_LENIENT) != 0;
	const char *name = smtp_verb_name(cmd->verb);

	switch (cmd->verb) {
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
		return smtp_parse_ehlo(cmd, arg, arg_len, opts, reply);
	case SMTP_VERB_MAIL:
	case SMTP_VERB_RCPT:
		return smtp_parse_mail_rcpt(cmd, arg, arg_len, opts, reply);
	case SMTP_VERB_DATA:
	case SMTP_VERB_RSET:
	case SMTP_VERB_QUIT:
	case SMTP_VERB_STARTTLS:
		if (arg != NULL) {
			smtp_reply_set(reply, 501, "5.5.4", "syntax: %s", name);
			return TS_E_INVAL;
		}
		return 0;
	case SMTP_VERB_NOOP:
	case SMTP_VERB_HELP:
		return 0;
	case SMTP_VERB_VRFY:
	case SMTP_VERB_EXPN:
		if (arg == NULL || arg_len == 0) {
			smtp_reply_set(reply, 501, "5.5.4", "syntax: %s string",
				       name);
			return TS_E_INVAL;
		}
		return 0;
	case SMTP_VERB_BDAT:
		if (arg == NULL)
			arg_len = 0;
		return smtp_parse_bdat(cmd, arg != NULL ? arg : "", arg_len,
				       lenient, reply);
	case SMTP_VERB_AUTH:
		if (arg == NULL)
			return smtp_parse_auth(cmd, "", 0, lenient, reply);
		return smtp_parse_auth(cmd, arg, arg_len, lenient, reply);
	case SMTP_VERB_UNKNOWN:
		break;
	}
	smtp_reply_set(reply, 500, "5.5.2", "unknown command");
	return TS_E_INVAL;
}

int
smtp_command_parse(const char *line, size_t len,
		   const struct smtp_parse_opts *opts,
		   struct smtp_command *cmd_r, struct smtp_reply *reply_r)
{
	bool lenient = (opts->flags & SMTP_LENIENT) != 0;

	memset(cmd_r, 0, sizeof(*cmd_r));
	memset(reply_r, 0, sizeof(*reply_r));
	/* RFC 5321 2.3.8: CR and LF only as CRLF, which the reader
	 * stripped; NUL is never valid in a command. */
	for (size_t i = 0; i < len; i++) {
		const char *what = line[i] == '\0'   ? "NUL byte"
				   : line[i] == '\r' ? "bare CR"
				   : line[i] == '\n' ? "bare LF"
						     : NULL;
		if (what != NULL) {
			smtp_reply_set(reply_r, 501, "5.5.2", "%s in command",
				       what);
			return TS_E_INVAL;
		}
	}

	size_t start = 0, end = len;
	if (lenient) {
		while (start < end && smtp_is_space(line[start], true))
			start++;
		while (end > start && smtp_is_space(line[end - 1], true))
			end--;
	}
	size_t v = start;
	while (v < end && !smtp_is_space(line[v], lenient))
		v++;
	if (v == start) {
		smtp_reply_set(reply_r, 500, "5.5.2", "%s",
			       end == 0 ? "empty command" : "unknown command");
		return TS_E_INVAL;
	}
	cmd_r->verb = smtp_verb_lookup(line + start, v - start);

	const char *arg = NULL;
	size_t arg_len = 0;
	if (v < end) {
		/* strict: exactly one SP; lenient: any run of blanks */
		size_t a = v + 1;
		if (lenient)
			while (a < end && smtp_is_space(line[a], true))
				a++;
		arg = line + a;
		arg_len = end - a;
		cmd_r->arg = ts_xstrndup(arg, arg_len);
	}

	int ret = smtp_parse_verb(cmd_r, arg, arg_len, opts, reply_r);
	if (ret < 0) {
		enum smtp_verb verb = cmd_r->verb;
		smtp_command_clear(cmd_r);
		cmd_r->verb = verb;
	}
	return ret;
}

void
smtp_command_clear(struct smtp_command *cmd)
{
	free(cmd->arg);
	free(cmd->domain);
	smtp_path_clear(&cmd->path);
	free(cmd->mail.envid);
	free(cmd->mail.auth);
	free(cmd->rcpt.orcpt_type);
	free(cmd->rcpt.orcpt_raw);
	free(cmd->rcpt.orcpt);
	free(cmd->auth_mechanism);
	free(cmd->auth_initial);
	memset(cmd, 0, sizeof(*cmd));
}

/* --- is this SMTP at all? ------------------------------------------ */

bool
smtp_command_looks_like_smtp(const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;

	size_t v = 0;
	while (v < len && line[v] != ' ')
		v++;
	if (smtp_verb_lookup(line, v) == SMTP_VERB_UNKNOWN)
		return false;
	for (size_t i = v; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 32 && c != '\t') || c == 127)
			return false;
	}
	return true;
}

bool
smtp_command_prefix_possible(const char *buf, size_t len)
{
	for (size_t i = 0; i < SMTP_N_VERBS; i++) {
		const char *name = smtp_verbs[i].name;
		size_t name_len = strlen(name);
		size_t n = len < name_len ? len : name_len;

		if (strncasecmp(buf, name, n) != 0)
			continue;
		if (len <= name_len)
			return true;
		char next = buf[name_len];
		if (next == ' ' || next == '\r' || next == '\n')
			return true;
	}
	return false;
}
