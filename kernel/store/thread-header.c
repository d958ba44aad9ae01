/*
 * kernel/store/thread-header.c — what threading needs from a message's
 * header: its Message-ID, its References and In-Reply-To ids, its Date and
 * its base subject (RFC 2047 words decoded with tessera/mime.h,
 * reply/forward markers removed).
 *
 * The input is whatever arrived over SMTP or sits in an imported mailbox,
 * so every function here takes a length, tolerates NULs and 8-bit bytes,
 * never fails on garbage (it just finds less) and stays linear in the
 * size of its input.  This file does not touch the database: placing a
 * message in a thread is thread.c's job.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tessera/mime.h>

#include "kernel/store/store-private.h"

/*
 * Bounds that keep a hostile header from costing more than it should: the
 * ids kept from References (the first, which names the thread's root, and
 * the nearest ones) and from In-Reply-To, and the length of one id.
 */
#define THREAD_MAX_REFERENCES 256
#define THREAD_MAX_IN_REPLY_TO 16
#define THREAD_MAX_ID_LEN 998

/* --- a small growable byte buffer --- */

struct thread_buf {
	char *p;
	size_t len, cap;
};

static void
thread_buf_add(struct thread_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = ts_xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
thread_buf_addc(struct thread_buf *b, char c)
{
	thread_buf_add(b, &c, 1);
}

/* A buffer's string, never NULL; the buffer gives it up. */
static char *
thread_buf_take(struct thread_buf *b)
{
	char *p = b->p ? b->p : ts_xstrdup("");
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

/* --- a growable id list --- */

struct thread_ids {
	char **v; /* NULL-terminated once non-empty */
	size_t n, cap;
};

static void
thread_ids_push(struct thread_ids *ids, char *id)
{
	if (ids->n + 2 > ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 8;
		ids->v = ts_xrealloc(ids->v, ids->cap * sizeof(*ids->v));
	}
	ids->v[ids->n++] = id;
	ids->v[ids->n] = NULL;
}

static bool
thread_ids_contain(const struct thread_ids *ids, const char *id)
{
	for (size_t i = 0; i < ids->n; i++)
		if (strcmp(ids->v[i], id) == 0)
			return true;
	return false;
}

/* --- message ids --- */

static bool
thread_is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Skip a comment starting at s[*i] == '(' (nested, with backslash
 * escapes, RFC 5322 section 3.2.2); an unclosed one runs to the end.
 */
static void
thread_skip_comment(const char *s, size_t len, size_t *i)
{
	int depth = 0;
	for (; *i < len; (*i)++) {
		char c = s[*i];
		if (c == '\\' && *i + 1 < len)
			(*i)++;
		else if (c == '(')
			depth++;
		else if (c == ')' && --depth == 0) {
			(*i)++;
			return;
		}
	}
}

/* Same for a quoted string starting at s[*i] == '"'. */
static void
thread_skip_quoted(const char *s, size_t len, size_t *i)
{
	for ((*i)++; *i < len; (*i)++) {
		if (s[*i] == '\\' && *i + 1 < len)
			(*i)++;
		else if (s[*i] == '"') {
			(*i)++;
			return;
		}
	}
}

/*
 * An id from s[from..to), whitespace removed (a folded id has some after
 * unfolding), or NULL when it is empty or absurdly long.
 */
static char *
thread_id_dup(const char *s, size_t from, size_t to)
{
	struct thread_buf b = { 0 };
	for (size_t i = from; i < to; i++)
		if (!thread_is_wsp(s[i]))
			thread_buf_addc(&b, s[i]);
	if (b.len == 0 || b.len > THREAD_MAX_ID_LEN) {
		free(b.p);
		return NULL;
	}
	return thread_buf_take(&b);
}

/*
 * Every <…> id of a header value, in order, comments and quoted strings
 * skipped.  With `bare`, when the value has no bracketed id at all, the
 * tokens that look like ids (contain '@') count too — some mailers drop
 * the brackets.  At most `max` ids are appended to ids; when there are
 * more, the first and the last max-1 are kept (the first names the root
 * of the thread, the last the nearest ancestors).
 */
static void
thread_parse_ids(const char *s, size_t len, bool bare, size_t max,
		 struct thread_ids *ids)
{
	struct thread_ids found = { 0 };
	size_t i = 0;
	while (i < len) {
		char c = s[i];
		if (c == '(') {
			thread_skip_comment(s, len, &i);
		} else if (c == '"') {
			thread_skip_quoted(s, len, &i);
		} else if (c == '<') {
			size_t start = ++i;
			while (i < len && s[i] != '>' && s[i] != '<')
				i++;
			char *id = thread_id_dup(s, start, i);
			if (id != NULL)
				thread_ids_push(&found, id);
			if (i < len && s[i] == '>')
				i++;
		} else {
			i++;
		}
	}
	if (found.n == 0 && bare) {
		i = 0;
		while (i < len) {
			if (s[i] == '(') {
				thread_skip_comment(s, len, &i);
				continue;
			}
			if (thread_is_wsp(s[i]) || s[i] == ',') {
				i++;
				continue;
			}
			size_t start = i;
			while (i < len && !thread_is_wsp(s[i]) && s[i] != ',' &&
			       s[i] != '(')
				i++;
			if (memchr(s + start, '@', i - start) != NULL) {
				char *id = thread_id_dup(s, start, i);
				if (id != NULL)
					thread_ids_push(&found, id);
			}
		}
	}
	for (size_t k = 0; k < found.n; k++) {
		if (found.n > max && k > 0 && k < found.n - (max - 1)) {
			free(found.v[k]);
			continue;
		}
		thread_ids_push(ids, found.v[k]);
	}
	free(found.v);
}

/*
 * The Message-ID: the first <…> id, else (brackets missing) the first
 * token that is not a comment.  "" if none.
 */
static char *
thread_parse_message_id(const char *s, size_t len)
{
	struct thread_ids ids = { 0 };
	thread_parse_ids(s, len, false, 1, &ids);
	if (ids.n > 0) {
		char *id = ids.v[0];
		free(ids.v);
		return id;
	}
	size_t i = 0;
	while (i < len) {
		if (s[i] == '(') {
			thread_skip_comment(s, len, &i);
		} else if (thread_is_wsp(s[i])) {
			i++;
		} else {
			size_t start = i;
			while (i < len && !thread_is_wsp(s[i]) && s[i] != '(')
				i++;
			char *id = thread_id_dup(s, start, i);
			return id != NULL ? id : ts_xstrdup("");
		}
	}
	return ts_xstrdup("");
}

/* --- Date: --- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t
thread_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* A date's tokenizer: skips whitespace and comments (CFWS). */
static void
thread_date_skip(const char *s, size_t len, size_t *i)
{
	while (*i < len) {
		if (s[*i] == '(')
			thread_skip_comment(s, len, i);
		else if (thread_is_wsp(s[*i]))
			(*i)++;
		else
			return;
	}
}

/* Up to `max` digits; returns how many were read. */
static int
thread_date_number(const char *s, size_t len, size_t *i, int max, int *v)
{
	int n = 0;
	*v = 0;
	while (*i < len && n < max && s[*i] >= '0' && s[*i] <= '9') {
		*v = *v * 10 + (s[*i] - '0');
		(*i)++;
		n++;
	}
	return n;
}

/* Letters at s[*i] (at most cap-1 kept, lower-cased) into word. */
static void
thread_date_word(const char *s, size_t len, size_t *i, char *word, size_t cap)
{
	size_t n = 0;
	while (*i < len && isalpha((unsigned char)s[*i])) {
		if (n + 1 < cap)
			word[n++] = (char)tolower((unsigned char)s[*i]);
		(*i)++;
	}
	word[n] = '\0';
}

/*
 * The offset in minutes east of UTC of an obsolete zone name (RFC 5322
 * section 4.3).  Military letters and unknown names mean "no information",
 * which RFC 5322 says to treat as +0000.
 */
static int
thread_date_zone_name(const char *word)
{
	static const struct {
		const char *name;
		int minutes;
	} zones[] = {
		{ "ut", 0 },	 { "gmt", 0 },	  { "utc", 0 },
		{ "z", 0 },	 { "est", -300 }, { "edt", -240 },
		{ "cst", -360 }, { "cdt", -300 }, { "mst", -420 },
		{ "mdt", -360 }, { "pst", -480 }, { "pdt", -420 },
	};
	for (size_t k = 0; k < sizeof(zones) / sizeof(zones[0]); k++)
		if (strcmp(word, zones[k].name) == 0)
			return zones[k].minutes;
	return 0;
}

/*
 * RFC 5322 date-time to unix seconds: [day-of-week ","] day month year
 * hour ":" minute [":" second] zone, with the obsolete forms (comments
 * anywhere, 2- and 3-digit years, zone names, no zone = UTC).  0 when it
 * does not parse.
 */
static int64_t
thread_parse_date(const char *s, size_t len)
{
	static const char months[12][4] = { "jan", "feb", "mar", "apr",
					    "may", "jun", "jul", "aug",
					    "sep", "oct", "nov", "dec" };
	char word[16];
	size_t i = 0;
	int day, month = -1, year, hour, minute, second = 0, n;

	thread_date_skip(s, len, &i);
	if (i < len && isalpha((unsigned char)s[i])) {
		/* The day of the week: any word, then an optional comma. */
		thread_date_word(s, len, &i, word, sizeof(word));
		thread_date_skip(s, len, &i);
		if (i < len && s[i] == ',')
			i++;
		thread_date_skip(s, len, &i);
	}
	if (thread_date_number(s, len, &i, 2, &day) == 0 || day < 1 || day > 31)
		return 0;
	thread_date_skip(s, len, &i);
	if (i < len && s[i] == '-') /* "1-Jan-2024" seen in the wild */
		i++;
	thread_date_word(s, len, &i, word, sizeof(word));
	for (int k = 0; k < 12; k++)
		if (strncmp(word, months[k], 3) == 0 && strlen(word) >= 3)
			month = k + 1;
	if (month < 0)
		return 0;
	thread_date_skip(s, len, &i);
	if (i < len && s[i] == '-')
		i++;
	n = thread_date_number(s, len, &i, 4, &year);
	if (n < 2)
		return 0;
	if (n == 2)
		year += year < 50 ? 2000 : 1900;
	else if (n == 3)
		year += 1900;
	if (year < 1900)
		return 0;
	thread_date_skip(s, len, &i);
	if (thread_date_number(s, len, &i, 2, &hour) == 0 || hour > 23)
		return 0;
	thread_date_skip(s, len, &i);
	if (i >= len || s[i] != ':')
		return 0;
	i++;
	thread_date_skip(s, len, &i);
	if (thread_date_number(s, len, &i, 2, &minute) == 0 || minute > 59)
		return 0;
	thread_date_skip(s, len, &i);
	if (i < len && s[i] == ':') {
		i++;
		thread_date_skip(s, len, &i);
		if (thread_date_number(s, len, &i, 2, &second) == 0 ||
		    second > 60)
			return 0;
	}
	thread_date_skip(s, len, &i);

	int offset = 0; /* minutes east of UTC */
	if (i < len && (s[i] == '+' || s[i] == '-')) {
		int sign = s[i] == '-' ? -1 : 1, zone;
		i++;
		if (thread_date_number(s, len, &i, 4, &zone) != 4 ||
		    zone % 100 > 59)
			return 0;
		offset = sign * (zone / 100 * 60 + zone % 100);
	} else if (i < len && isalpha((unsigned char)s[i])) {
		thread_date_word(s, len, &i, word, sizeof(word));
		offset = thread_date_zone_name(word);
	}
	return thread_days_from_civil(year, month, day) * 86400 +
	       (int64_t)hour * 3600 + minute * 60 + second -
	       (int64_t)offset * 60;
}

/* --- the header block --- */

enum thread_field {
	THREAD_F_MESSAGE_ID,
	THREAD_F_IN_REPLY_TO,
	THREAD_F_REFERENCES,
	THREAD_F_SUBJECT,
	THREAD_F_DATE,
	THREAD_F_COUNT,
	THREAD_F_OTHER = THREAD_F_COUNT,
};

static enum thread_field
thread_field_of(const char *name, size_t len)
{
	static const char *const names[THREAD_F_COUNT] = {
		"message-id", "in-reply-to", "references", "subject", "date",
	};
	for (int k = 0; k < THREAD_F_COUNT; k++)
		if (strlen(names[k]) == len &&
		    strncasecmp(name, names[k], len) == 0)
			return (enum thread_field)k;
	return THREAD_F_OTHER;
}

/*
 * The end of the line starting at `i`: the index of its '\n' (or len),
 * with *next set to the start of the following line.
 */
static size_t
thread_line_end(const char *data, size_t len, size_t i, size_t *next)
{
	const char *nl = memchr(data + i, '\n', len - i);
	size_t end = nl != NULL ? (size_t)(nl - data) : len;
	*next = nl != NULL ? end + 1 : len;
	return end;
}

/*
 * Parse the header block: fields up to the first empty line (or the end of
 * the data), unfolded, names case-insensitive; the first occurrence of
 * each field counts.  Only the five fields threading uses are copied, so
 * the cost stays linear however large the header is.  Always returns 0:
 * garbage yields empty values.
 */
int
ts__thread_headers_parse(const char *data, size_t len,
			 struct ts__thread_headers *h)
{
	struct thread_buf values[THREAD_F_COUNT] = { 0 };
	bool seen[THREAD_F_COUNT] = { false };
	enum thread_field current = THREAD_F_OTHER;
	size_t i = 0;

	memset(h, 0, sizeof(*h));
	if (data == NULL)
		len = 0;
	while (i < len) {
		size_t next, end = thread_line_end(data, len, i, &next);
		size_t content_end = end;
		if (content_end > i && data[content_end - 1] == '\r')
			content_end--;
		if (content_end == i)
			break; /* the empty line ending the header */
		if (data[i] == ' ' || data[i] == '\t') {
			/* A continuation: unfolding drops the line break. */
			if (current != THREAD_F_OTHER)
				thread_buf_add(&values[current], data + i,
					       content_end - i);
		} else {
			const char *colon =
				memchr(data + i, ':', content_end - i);
			current = THREAD_F_OTHER;
			if (colon != NULL) {
				size_t name_end = (size_t)(colon - data);
				/* Obsolete syntax allows WSP before ':'. */
				while (name_end > i &&
				       (data[name_end - 1] == ' ' ||
					data[name_end - 1] == '\t'))
					name_end--;
				enum thread_field f =
					thread_field_of(data + i, name_end - i);
				if (f != THREAD_F_OTHER && !seen[f]) {
					seen[f] = true;
					current = f;
					size_t v = (size_t)(colon - data) + 1;
					thread_buf_add(&values[f], data + v,
						       content_end - v);
				}
			}
		}
		i = next;
	}
	/* NULs would cut the C strings short: they become spaces. */
	for (int k = 0; k < THREAD_F_COUNT; k++)
		for (size_t j = 0; j < values[k].len; j++)
			if (values[k].p[j] == '\0')
				values[k].p[j] = ' ';

	const struct thread_buf *v;
	v = &values[THREAD_F_MESSAGE_ID];
	h->message_id = thread_parse_message_id(v->p, v->len);

	/*
	 * References in order, then the In-Reply-To ids not already there,
	 * so the direct parent comes last (RFC 5256 section 2.2 reads
	 * In-Reply-To only without References; taking both also covers a
	 * References header some client truncated).
	 */
	struct thread_ids refs = { 0 }, reply_to = { 0 };
	v = &values[THREAD_F_REFERENCES];
	thread_parse_ids(v->p, v->len, true, THREAD_MAX_REFERENCES, &refs);
	v = &values[THREAD_F_IN_REPLY_TO];
	thread_parse_ids(v->p, v->len, true, THREAD_MAX_IN_REPLY_TO, &reply_to);
	for (size_t k = 0; k < reply_to.n; k++) {
		if (thread_ids_contain(&refs, reply_to.v[k]))
			free(reply_to.v[k]);
		else
			thread_ids_push(&refs, reply_to.v[k]);
	}
	free(reply_to.v);
	h->references = refs.v;
	h->reference_count = refs.n;

	v = &values[THREAD_F_SUBJECT];
	h->subject_base = ts__subject_base(v->p != NULL ? v->p : "");
	v = &values[THREAD_F_DATE];
	h->sent = thread_parse_date(v->p, v->len);

	for (int k = 0; k < THREAD_F_COUNT; k++)
		free(values[k].p);
	return 0;
}

void
ts__thread_headers_free(struct ts__thread_headers *h)
{
	free(h->message_id);
	ts__strv_free(&h->references);
	free(h->subject_base);
	memset(h, 0, sizeof(*h));
}

/* --- the base subject --- */

static bool
thread_prefix_word(const char *s, size_t len, size_t *i)
{
	static const char *const words[] = { "re",   "fwd", "fw", "aw",
					     "antw", "sv",  "vs", "wg" };
	for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
		size_t n = strlen(words[k]);
		if (*i + n <= len && strncasecmp(s + *i, words[k], n) == 0) {
			/* The word must be whole: a counter, ':' or space. */
			size_t j = *i + n;
			if (j < len && isalpha((unsigned char)s[j]))
				continue;
			*i = j;
			return true;
		}
	}
	return false;
}

/*
 * A reply or forward marker at s[*i]: a prefix word, an optional "[n]" or
 * "(n)" counter, optional spaces and ':'.  Advances *i past it (and the
 * spaces after) when there is one.
 */
static bool
thread_strip_marker(const char *s, size_t len, size_t *i)
{
	size_t j = *i;
	if (!thread_prefix_word(s, len, &j))
		return false;
	if (j < len && (s[j] == '[' || s[j] == '(')) {
		char close = s[j] == '[' ? ']' : ')';
		size_t k = j + 1;
		while (k < len && isdigit((unsigned char)s[k]))
			k++;
		if (k == j + 1 || k >= len || s[k] != close)
			return false;
		j = k + 1;
	}
	while (j < len && s[j] == ' ')
		j++;
	if (j >= len || s[j] != ':')
		return false;
	j++;
	while (j < len && s[j] == ' ')
		j++;
	*i = j;
	return true;
}

/*
 * A leading "[blob]" (a list tag; no '[' or ']' inside), skipped only when
 * something follows it (RFC 5256 section 2.1: a subject that is all blob
 * keeps it).
 */
static bool
thread_strip_blob(const char *s, size_t len, size_t *i)
{
	if (*i >= len || s[*i] != '[')
		return false;
	size_t j = *i + 1;
	while (j < len && s[j] != '[' && s[j] != ']')
		j++;
	if (j >= len || s[j] != ']')
		return false;
	j++;
	while (j < len && s[j] == ' ')
		j++;
	if (j >= len)
		return false;
	*i = j;
	return true;
}

char *
ts__subject_base(const char *subject)
{
	struct thread_buf out = { 0 };
	if (subject == NULL)
		subject = "";
	/* RFC 2047 words decoded by the MIME library (kernel/mime/). */
	size_t dec_len;
	char *dec = ts_mime_decode_words(subject, strlen(subject), &dec_len);

	/* Control characters become spaces; runs of spaces collapse. */
	for (size_t i = 0; i < dec_len; i++) {
		unsigned char c = (unsigned char)dec[i];
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' && (out.len == 0 || out.p[out.len - 1] == ' '))
			continue;
		thread_buf_addc(&out, (char)c);
	}
	free(dec);

	/*
	 * Strip markers by moving the bounds [start, end) rather than the
	 * bytes, so "Re: Re: Re: …" costs linear time.
	 */
	const char *s = out.p != NULL ? out.p : "";
	size_t start = 0, end = out.len;
	for (;;) {
		bool changed = false;
		while (end > start && s[end - 1] == ' ')
			end--;
		if (end - start >= 5 &&
		    strncasecmp(s + end - 5, "(fwd)", 5) == 0) {
			end -= 5;
			changed = true;
			continue;
		}
		while (thread_strip_marker(s, end, &start) ||
		       thread_strip_blob(s, end, &start))
			changed = true;
		/* RFC 5256 "[fwd: subject]" wrappers. */
		if (end - start > 6 &&
		    strncasecmp(s + start, "[fwd:", 5) == 0 &&
		    s[end - 1] == ']') {
			start += 5;
			end--;
			while (start < end && s[start] == ' ')
				start++;
			changed = true;
		}
		if (!changed)
			break;
	}
	char *base = ts_xstrndup(s + start, end - start);
	for (char *p = base; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	free(out.p);
	return base;
}
