/*
 * modules/imap/parse-lex.c — the IMAP grammar's small pieces (RFC 3501
 * section 9): atoms, numbers, quoted strings, literals ({n}, {n+}, {n-},
 * literal8), astrings, mailbox names and LIST patterns, sequence sets,
 * dates and flag lists.  Pure; see parse-lex.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tessera/common.h>

#include "parse-lex.h"

bool
imap_pc_fail(struct imap_pcur *c, const char *error)
{
	if (c->error == NULL)
		c->error = error;
	return false;
}

bool
imap_pc_generic(const struct imap_pcur *c)
{
	return c->error == NULL || strcmp(c->error, "expected a space") == 0 ||
	       strcmp(c->error, "expected a string or atom") == 0;
}

/* Replace a generic complaint (or none) with a specific one. */
bool
imap_pc_override(struct imap_pcur *c, const char *error)
{
	if (imap_pc_generic(c) || strcmp(c->error, "expected a number") == 0 ||
	    strcmp(c->error, "expected an atom") == 0)
		c->error = error;
	return false;
}

bool
imap_pc_eof(const struct imap_pcur *c)
{
	return c->p >= c->end;
}

bool
imap_pc_peek(const struct imap_pcur *c, char ch)
{
	return c->p < c->end && *c->p == ch;
}

bool
imap_pc_sp(struct imap_pcur *c)
{
	if (!imap_pc_peek(c, ' '))
		return imap_pc_fail(c, "expected a space");
	c->p++;
	return true;
}

bool
imap_pc_char(struct imap_pcur *c, char ch, const char *error)
{
	if (!imap_pc_peek(c, ch))
		return imap_pc_fail(c, error);
	c->p++;
	return true;
}

/* ATOM-CHAR: any CHAR except atom-specials (RFC 3501 section 9). */
bool
imap_atom_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && strchr("(){%*\"\\]", ch) == NULL;
}

/* ASTRING-CHAR: ATOM-CHAR or "]". */
bool
imap_astring_char(unsigned char ch)
{
	return imap_atom_char(ch) || ch == ']';
}

/* Read a run of chars passing `ok`; NULL (and an error) if empty. */
char *
imap_pc_run(struct imap_pcur *c, bool (*ok)(unsigned char), const char *error)
{
	const char *s = c->p;
	while (c->p < c->end && ok((unsigned char)*c->p))
		c->p++;
	if (c->p == s) {
		imap_pc_fail(c, error);
		return NULL;
	}
	return ts_xstrndup(s, (size_t)(c->p - s));
}

char *
imap_pc_atom(struct imap_pcur *c)
{
	return imap_pc_run(c, imap_atom_char, "expected an atom");
}

/* Compare the next atom case-insensitively without consuming on mismatch. */
bool
imap_pc_word(struct imap_pcur *c, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(c->end - c->p) < n || strncasecmp(c->p, word, n) != 0)
		return false;
	if (c->p + n < c->end && imap_atom_char((unsigned char)c->p[n]) &&
	    c->p[n] != '.' && c->p[n] != '[')
		return false;
	c->p += n;
	return true;
}

bool
imap_pc_number64(struct imap_pcur *c, uint64_t *n_r, uint64_t max)
{
	const char *s = c->p;
	uint64_t n = 0;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		unsigned d = (unsigned)(*c->p - '0');
		if (n > (max - d) / 10)
			return imap_pc_fail(c, "number too large");
		n = n * 10 + d;
		c->p++;
	}
	if (c->p == s)
		return imap_pc_fail(c, "expected a number");
	*n_r = n;
	return true;
}

bool
imap_pc_number(struct imap_pcur *c, uint32_t *n_r)
{
	uint64_t n;
	if (!imap_pc_number64(c, &n, UINT32_MAX))
		return false;
	*n_r = (uint32_t)n;
	return true;
}

/* nz-number */
bool
imap_pc_nz_number(struct imap_pcur *c, uint32_t *n_r)
{
	if (!imap_pc_number(c, n_r))
		return false;
	if (*n_r == 0)
		return imap_pc_fail(c, "zero is not a valid number here");
	return true;
}

/* quoted = DQUOTE *QUOTED-CHAR DQUOTE */
char *
imap_pc_quoted(struct imap_pcur *c)
{
	c->p++; /* the opening quote */
	char *out = ts_xmalloc((size_t)(c->end - c->p) + 1);
	size_t n = 0;
	while (c->p < c->end && *c->p != '"') {
		char ch = *c->p++;
		if (ch == '\\') {
			if (c->p >= c->end || (*c->p != '\\' && *c->p != '"')) {
				free(out);
				imap_pc_fail(c, "bad escape in quoted string");
				return NULL;
			}
			ch = *c->p++;
		} else if (ch == '\r' || ch == '\n' || ch == '\0') {
			free(out);
			imap_pc_fail(c, "bad character in quoted string");
			return NULL;
		}
		out[n++] = ch;
	}
	if (c->p >= c->end) {
		free(out);
		imap_pc_fail(c, "unterminated quoted string");
		return NULL;
	}
	c->p++;
	out[n] = '\0';
	return out;
}

/*
 * literal = "{" number ["+" / "-"] "}" CRLF *CHAR8, and literal8 with a
 * leading "~" when binary_ok.  The bytes are returned in place.
 */
bool
imap_pc_literal_raw(struct imap_pcur *c, const char **data_r, size_t *len_r,
		    uint64_t max, bool *binary_r, uint64_t spooled)
{
	if (binary_r != NULL)
		*binary_r = false;
	if (imap_pc_peek(c, '~') && binary_r != NULL) {
		*binary_r = true;
		c->p++;
	}
	if (!imap_pc_char(c, '{', "expected a literal"))
		return false;
	uint64_t n;
	if (!imap_pc_number64(c, &n, UINT64_MAX / 2))
		return imap_pc_fail(c, "bad literal size");
	if (imap_pc_peek(c, '+') || imap_pc_peek(c, '-'))
		c->p++;
	if (!imap_pc_char(c, '}', "bad literal size"))
		return false;
	if (c->end - c->p < 2 || c->p[0] != '\r' || c->p[1] != '\n')
		return imap_pc_fail(c, "literal must be followed by CRLF");
	c->p += 2;
	if (n > max)
		return imap_pc_fail(c, "literal too large");
	if (spooled != 0 && n == spooled) {
		/* the bytes went to a file as they arrived */
		*data_r = NULL;
		*len_r = (size_t)n;
		return true;
	}
	if ((uint64_t)(c->end - c->p) < n)
		return imap_pc_fail(c, "literal shorter than announced");
	*data_r = c->p;
	*len_r = (size_t)n;
	c->p += n;
	return true;
}

/* A literal as a NUL-terminated string; NULs inside are refused. */
char *
imap_pc_literal(struct imap_pcur *c)
{
	const char *data;
	size_t len;
	if (!imap_pc_literal_raw(c, &data, &len, c->lim->max_literal, NULL, 0))
		return NULL;
	if (memchr(data, '\0', len) != NULL) {
		imap_pc_fail(c, "NUL byte in literal");
		return NULL;
	}
	return ts_xstrndup(data, len);
}

/* string = quoted / literal */
char *
imap_pc_string(struct imap_pcur *c)
{
	if (imap_pc_peek(c, '"'))
		return imap_pc_quoted(c);
	if (imap_pc_peek(c, '{'))
		return imap_pc_literal(c);
	imap_pc_fail(c, "expected a string");
	return NULL;
}

/* astring = 1*ASTRING-CHAR / string */
char *
imap_pc_astring(struct imap_pcur *c)
{
	if (imap_pc_peek(c, '"') || imap_pc_peek(c, '{'))
		return imap_pc_string(c);
	return imap_pc_run(c, imap_astring_char, "expected a string or atom");
}

/* nstring = string / NIL; *is_nil_r tells which. */
char *
imap_pc_nstring(struct imap_pcur *c, bool *is_nil_r)
{
	*is_nil_r = false;
	if (imap_pc_word(c, "NIL")) {
		*is_nil_r = true;
		return NULL;
	}
	return imap_pc_string(c);
}

/*
 * mailbox = "INBOX" / astring; INBOX in any case (also as the first
 * level of a hierarchy) becomes the store's "Inbox".
 */
char *
imap_pc_mailbox(struct imap_pcur *c)
{
	char *m = imap_pc_astring(c);
	if (m == NULL) {
		imap_pc_override(c, "expected a mailbox name");
		return NULL;
	}
	if (strncasecmp(m, "INBOX", 5) == 0 && (m[5] == '\0' || m[5] == '/'))
		memcpy(m, "Inbox", 5);
	return m;
}

/* list-mailbox: 1*list-char / string (list-char adds % * ]) */
static bool
imap_list_char(unsigned char ch)
{
	return imap_atom_char(ch) || ch == '%' || ch == '*' || ch == ']';
}

char *
imap_pc_list_mailbox(struct imap_pcur *c)
{
	if (imap_pc_peek(c, '"') || imap_pc_peek(c, '{'))
		return imap_pc_string(c);
	return imap_pc_run(c, imap_list_char, "expected a mailbox pattern");
}

void
imap_words_add(struct imap_command *cmd, char *w)
{
	cmd->words = ts_xrealloc(cmd->words,
				 (cmd->word_count + 1) * sizeof(*cmd->words));
	cmd->words[cmd->word_count++] = w;
}

bool
imap_pc_end(struct imap_pcur *c)
{
	if (!imap_pc_eof(c))
		return imap_pc_fail(c,
				    "unexpected characters at end of command");
	return true;
}

bool
imap_pc_enter(struct imap_pcur *c)
{
	if (++c->depth > c->lim->max_depth)
		return imap_pc_fail(c, "nesting too deep");
	return true;
}

/* --- sequence sets ------------------------------------------------------- */

static bool
imap_pc_seq_number(struct imap_pcur *c, uint32_t *n_r)
{
	if (imap_pc_peek(c, '*')) {
		c->p++;
		*n_r = IMAP_STAR;
		return true;
	}
	return imap_pc_nz_number(c, n_r);
}

bool
imap_pc_seqset(struct imap_pcur *c, struct imap_seqset *set)
{
	if (imap_pc_peek(c, '$')) {
		c->p++;
		set->saved = true;
		return true;
	}
	for (;;) {
		uint32_t lo, hi;
		if (!imap_pc_seq_number(c, &lo)) {
			c->error = "bad sequence set";
			return false;
		}
		hi = lo;
		if (imap_pc_peek(c, ':')) {
			c->p++;
			if (!imap_pc_seq_number(c, &hi)) {
				c->error = "bad sequence set";
				return false;
			}
		}
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (set->count >= 100000)
			return imap_pc_fail(c, "sequence set too long");
		set->ranges = ts_xrealloc(
			set->ranges, (set->count + 1) * sizeof(*set->ranges));
		set->ranges[set->count++] = (struct imap_range){ lo, hi };
		if (!imap_pc_peek(c, ','))
			return true;
		c->p++;
	}
}

int
imap_seqset_parse(const char *s, struct imap_seqset *set)
{
	static const struct imap_parse_limits lim = {
		.max_literal = 4096,
		.append_limit = 4096,
		.max_depth = 8,
	};
	struct imap_pcur c = { .p = s, .end = s + strlen(s), .lim = &lim };
	memset(set, 0, sizeof(*set));
	if (!imap_pc_seqset(&c, set) || !imap_pc_eof(&c)) {
		imap_seqset_clear(set);
		return -1;
	}
	return 0;
}

void
imap_seqset_clear(struct imap_seqset *set)
{
	free(set->ranges);
	memset(set, 0, sizeof(*set));
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t max)
{
	for (size_t i = 0; i < set->count; i++) {
		uint32_t lo = set->ranges[i].lo == IMAP_STAR
				      ? max
				      : set->ranges[i].lo;
		uint32_t hi = set->ranges[i].hi == IMAP_STAR
				      ? max
				      : set->ranges[i].hi;
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (n >= lo && n <= hi)
			return true;
	}
	return false;
}

/* --- dates --------------------------------------------------------------- */

static const char imap_months[12][4] = { "Jan", "Feb", "Mar", "Apr",
					 "May", "Jun", "Jul", "Aug",
					 "Sep", "Oct", "Nov", "Dec" };

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int
parse_digits(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* "d-Mon-yyyy" or "dd-Mon-yyyy" at s; its length in *used_r. */
static int64_t
parse_day_prefix(const char *s, size_t len, size_t *used_r)
{
	size_t dl = len > 1 && s[1] == '-' ? 1 : 2;
	if (len < dl + 9 || s[dl] != '-' || s[dl + 4] != '-')
		return -1;
	int d = s[0] == ' ' && dl == 2 ? parse_digits(s + 1, 1)
				       : parse_digits(s, dl);
	int y = parse_digits(s + dl + 5, 4);
	int m = -1;
	for (int i = 0; i < 12; i++)
		if (strncasecmp(s + dl + 1, imap_months[i], 3) == 0)
			m = i + 1;
	if (d < 1 || d > 31 || y < 1900 || m < 0)
		return -1;
	*used_r = dl + 9;
	return days_from_civil(y, (unsigned)m, (unsigned)d);
}

int64_t
imap_parse_day(const char *s, size_t len)
{
	size_t used;
	int64_t d = parse_day_prefix(s, len, &used);
	return d >= 0 && used == len ? d : -1;
}

int64_t
imap_parse_date_time(const char *s, size_t len)
{
	/* "dd-Mon-yyyy hh:mm:ss +zzzz", day possibly space-padded */
	size_t used;
	if (len != 26)
		return -1;
	int64_t day = parse_day_prefix(s, len, &used);
	if (day < 0 || used != 11 || s[11] != ' ' || s[14] != ':' ||
	    s[17] != ':' || s[20] != ' ' || (s[21] != '+' && s[21] != '-'))
		return -1;
	int hh = parse_digits(s + 12, 2), mm = parse_digits(s + 15, 2);
	int ss = parse_digits(s + 18, 2), zh = parse_digits(s + 22, 2);
	int zm = parse_digits(s + 24, 2);
	if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 ||
	    zh < 0 || zm < 0 || zm > 59)
		return -1;
	int64_t t = day * 86400 + hh * 3600 + mm * 60 + ss;
	int64_t zone = (int64_t)zh * 3600 + zm * 60;
	return s[21] == '+' ? t - zone : t + zone;
}

/* --- flags --------------------------------------------------------------- */

static bool
imap_pc_flag(struct imap_pcur *c, struct imap_flags *f, bool allow_star)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} sys[] = {
		{ "\\Seen", IMAP_FLAG_SEEN },
		{ "\\Answered", IMAP_FLAG_ANSWERED },
		{ "\\Flagged", IMAP_FLAG_FLAGGED },
		{ "\\Deleted", IMAP_FLAG_DELETED },
		{ "\\Draft", IMAP_FLAG_DRAFT },
	};
	if (imap_pc_peek(c, '\\')) {
		c->p++;
		if (allow_star && imap_pc_peek(c, '*')) {
			c->p++;
			return true;
		}
		char *a = imap_pc_atom(c);
		if (a == NULL) {
			c->error = "bad flag";
			return false;
		}
		bool ok = false;
		for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
			if (strcasecmp(a, sys[i].name + 1) == 0) {
				f->flags |= sys[i].bit;
				ok = true;
			}
		}
		if (strcasecmp(a, "Recent") == 0) {
			f->recent = true;
			ok = true;
		}
		free(a);
		return ok ? true : imap_pc_fail(c, "unknown system flag");
	}
	char *a = imap_pc_atom(c);
	if (a == NULL) {
		c->error = "bad flag";
		return false;
	}
	if (strcasecmp(a, "$Junk") == 0)
		f->flags |= IMAP_FLAG_JUNK;
	else if (strcasecmp(a, "$NotJunk") == 0)
		f->flags |= IMAP_FLAG_NOTJUNK;
	else {
		size_t len = strlen(f->keywords);
		f->keywords = ts_xrealloc(f->keywords, len + strlen(a) + 2);
		if (len > 0)
			f->keywords[len++] = ' ';
		strcpy(f->keywords + len, a);
	}
	free(a);
	return true;
}

/* flag-list = "(" [flag *(SP flag)] ")", or a single flag when bare_ok. */
bool
imap_pc_flag_list(struct imap_pcur *c, struct imap_flags *f, bool bare_ok)
{
	if (f->keywords == NULL)
		f->keywords = ts_xstrdup("");
	if (!imap_pc_peek(c, '(')) {
		if (!bare_ok)
			return imap_pc_fail(c, "expected a flag list");
		for (;;) {
			if (!imap_pc_flag(c, f, false))
				return false;
			if (!imap_pc_peek(c, ' '))
				return true;
			c->p++;
		}
	}
	c->p++;
	if (imap_pc_peek(c, ')')) {
		c->p++;
		return true;
	}
	for (;;) {
		if (!imap_pc_flag(c, f, false))
			return false;
		if (imap_pc_peek(c, ')')) {
			c->p++;
			return true;
		}
		if (!imap_pc_sp(c))
			return imap_pc_fail(c, "bad flag list");
	}
}
