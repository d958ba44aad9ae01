/*
 * modules/dmarc/record.c — parse one DMARC policy record.
 *
 * The tag-value syntax of RFC 9989 "General Record Format" (DKIM-style
 * "tag=value;" lists): v=DMARC1 must come first, with that exact value, or the
 * text is not a DMARC record at all.  Unknown tags are ignored; a known tag
 * with an invalid value is ignored in favour of its default; an invalid p, sp
 * or np makes the record unusable unless rua holds a valid URI, in which case
 * it acts as p=none ("DMARC Policy Discovery").  RFC 7489's pct is kept so the
 * evaluator can read it as DMARCbis says (pct < 100 means testing).  This
 * file neither looks anything up nor decides policy: see eval.c.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dmarc.h"

const char *
dmarc_result_name(enum dmarc_result result)
{
	switch (result) {
	case DMARC_PASS:
		return "pass";
	case DMARC_FAIL:
		return "fail";
	case DMARC_TEMPERROR:
		return "temperror";
	case DMARC_PERMERROR:
		return "permerror";
	default:
		return "none";
	}
}

const char *
dmarc_policy_name(enum dmarc_policy policy)
{
	switch (policy) {
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		return "reject";
	default:
		return "none";
	}
}

static bool
dmarc_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* One "tag=value" element, trimmed; pointers into the record. */
struct dmarc_tag {
	const char *name, *value;
	size_t name_len, value_len;
};

/* Split one element; false when it is not tag=value with an ALPHA name. */
static bool
dmarc_tag_split(const char *s, size_t n, struct dmarc_tag *t)
{
	size_t i = 0, end;

	while (i < n && dmarc_is_wsp(s[i]))
		i++;
	t->name = s + i;
	while (i < n && isalpha((unsigned char)s[i]))
		i++;
	t->name_len = (size_t)(s + i - t->name);
	if (t->name_len == 0)
		return false;
	while (i < n && dmarc_is_wsp(s[i]))
		i++;
	if (i >= n || s[i] != '=')
		return false;
	i++;
	while (i < n && dmarc_is_wsp(s[i]))
		i++;
	end = n;
	while (end > i && dmarc_is_wsp(s[end - 1]))
		end--;
	t->value = s + i;
	t->value_len = end - i;
	return true;
}

static bool
dmarc_tag_is(const struct dmarc_tag *t, const char *name)
{
	return t->name_len == strlen(name) &&
	       strncasecmp(t->name, name, t->name_len) == 0;
}

static bool
dmarc_value_is(const struct dmarc_tag *t, const char *word)
{
	return t->value_len == strlen(word) &&
	       strncasecmp(t->value, word, t->value_len) == 0;
}

/* dmarc-request: "none" / "quarantine" / "reject" (no prefixes). */
static bool
dmarc_parse_request(const struct dmarc_tag *t, enum dmarc_policy *p)
{
	if (dmarc_value_is(t, "none"))
		*p = DMARC_POLICY_NONE;
	else if (dmarc_value_is(t, "quarantine"))
		*p = DMARC_POLICY_QUARANTINE;
	else if (dmarc_value_is(t, "reject"))
		*p = DMARC_POLICY_REJECT;
	else
		return false;
	return true;
}

/* An RFC 3986 URI, loosely: scheme ":" and something without spaces. */
static bool
dmarc_uri_valid(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || !isalpha((unsigned char)s[0]))
		return false;
	while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' ||
			 s[i] == '-' || s[i] == '.'))
		i++;
	if (i >= n || s[i] != ':' || i + 1 >= n)
		return false;
	for (i++; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* dmarc-urilist: true when at least one element is a valid URI. */
static bool
dmarc_urilist_valid(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i, a, b;

		while (j < n && s[j] != ',')
			j++;
		a = i;
		b = j;
		while (a < b && dmarc_is_wsp(s[a]))
			a++;
		while (b > a && dmarc_is_wsp(s[b - 1]))
			b--;
		if (dmarc_uri_valid(s + a, b - a))
			return true;
		i = j + 1;
	}
	return false;
}

static void
dmarc_note(struct dmarc_record *r, const struct dmarc_tag *t)
{
	if (r->note[0] != '\0')
		return;
	snprintf(r->note, sizeof(r->note), "invalid %.*s=%.*s",
		 (int)t->name_len, t->name,
		 (int)(t->value_len > 40 ? 40 : t->value_len), t->value);
}

/* The tags that have been seen, so that only the first counts. */
enum {
	SEEN_P = 1 << 0,
	SEEN_SP = 1 << 1,
	SEEN_NP = 1 << 2,
	SEEN_ADKIM = 1 << 3,
	SEEN_ASPF = 1 << 4,
	SEEN_PSD = 1 << 5,
	SEEN_T = 1 << 6,
	SEEN_PCT = 1 << 7,
	SEEN_RUA = 1 << 8,
};

/* Whether this is the first occurrence of a tag (later ones ignored). */
static bool
dmarc_first(unsigned *seen, unsigned bit)
{
	if (*seen & bit)
		return false;
	*seen |= bit;
	return true;
}

int
dmarc_record_parse(const char *text, size_t len, struct dmarc_record *r)
{
	struct dmarc_tag t;
	bool sp_bad = false, np_bad = false;
	unsigned seen = 0;
	size_t i = 0;

	memset(r, 0, sizeof(*r));
	r->t = -1;
	r->pct = -1;
	if (text == NULL || memchr(text, '\0', len) != NULL)
		return DMARC_NOT_RECORD;
	for (bool first = true; i <= len; first = false) {
		size_t j = i;

		while (j < len && text[j] != ';')
			j++;
		if (first) {
			/* v first, its value exactly DMARC1 */
			if (!dmarc_tag_split(text, j, &t) ||
			    !dmarc_tag_is(&t, "v") || t.value_len != 6 ||
			    memcmp(t.value, "DMARC1", 6) != 0)
				return DMARC_NOT_RECORD;
			i = j + 1;
			continue;
		}
		if (!dmarc_tag_split(text + i, j - i, &t)) {
			/* empty elements (";;", a final ";") are harmless */
			i = j + 1;
			continue;
		}
		i = j + 1;
		/* printable ASCII only (dmarc-value); else the tag goes */
		bool printable = t.value_len > 0;
		for (size_t k = 0; k < t.value_len; k++)
			if ((unsigned char)t.value[k] < 0x20 ||
			    (unsigned char)t.value[k] > 0x7e)
				printable = false;
		if (dmarc_tag_is(&t, "p") && dmarc_first(&seen, SEEN_P)) {
			if (printable && dmarc_parse_request(&t, &r->p))
				r->p_set = true;
			else
				dmarc_note(r, &t);
		} else if (dmarc_tag_is(&t, "sp") &&
			   dmarc_first(&seen, SEEN_SP)) {
			if (printable && dmarc_parse_request(&t, &r->sp))
				r->sp_set = true;
			else {
				sp_bad = true;
				dmarc_note(r, &t);
			}
		} else if (dmarc_tag_is(&t, "np") &&
			   dmarc_first(&seen, SEEN_NP)) {
			if (printable && dmarc_parse_request(&t, &r->np))
				r->np_set = true;
			else {
				np_bad = true;
				dmarc_note(r, &t);
			}
		} else if (dmarc_tag_is(&t, "adkim") &&
			   dmarc_first(&seen, SEEN_ADKIM)) {
			if (dmarc_value_is(&t, "s"))
				r->adkim_strict = true;
			else if (!dmarc_value_is(&t, "r"))
				dmarc_note(r, &t);
		} else if (dmarc_tag_is(&t, "aspf") &&
			   dmarc_first(&seen, SEEN_ASPF)) {
			if (dmarc_value_is(&t, "s"))
				r->aspf_strict = true;
			else if (!dmarc_value_is(&t, "r"))
				dmarc_note(r, &t);
		} else if (dmarc_tag_is(&t, "psd") &&
			   dmarc_first(&seen, SEEN_PSD)) {
			if (dmarc_value_is(&t, "y"))
				r->psd = DMARC_PSD_Y;
			else if (dmarc_value_is(&t, "n"))
				r->psd = DMARC_PSD_N;
			else if (!dmarc_value_is(&t, "u"))
				dmarc_note(r, &t);
		} else if (dmarc_tag_is(&t, "t") &&
			   dmarc_first(&seen, SEEN_T)) {
			if (dmarc_value_is(&t, "y"))
				r->t = 1;
			else if (dmarc_value_is(&t, "n"))
				r->t = 0;
			else
				dmarc_note(r, &t);
		} else if (dmarc_tag_is(&t, "pct") &&
			   dmarc_first(&seen, SEEN_PCT)) {
			int v = 0;
			bool ok = t.value_len > 0 && t.value_len <= 3;

			for (size_t k = 0; ok && k < t.value_len; k++) {
				if (!isdigit((unsigned char)t.value[k]))
					ok = false;
				else
					v = v * 10 + (t.value[k] - '0');
			}
			if (ok && v <= 100)
				r->pct = v;
			else
				dmarc_note(r, &t);
		} else if (dmarc_tag_is(&t, "rua") &&
			   dmarc_first(&seen, SEEN_RUA)) {
			r->rua_valid =
				printable &&
				dmarc_urilist_valid(t.value, t.value_len);
		}
		/* unknown tags (and repeated ones) are ignored */
	}
	if (r->p_set && !sp_bad && !np_bad) {
		r->usable = true;
	} else if (r->rua_valid) {
		/* Policy Discovery: act as if the record said p=none */
		r->usable = true;
		r->p = DMARC_POLICY_NONE;
		r->p_set = true;
		r->sp_set = r->np_set = false;
	}
	return 0;
}
