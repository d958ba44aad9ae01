/*
 * kernel/mime/params.c — the structural header fields of one MIME part:
 * Content-Type and Content-Disposition with their parameters (RFC 2045
 * section 5, RFC 2231 continuations, charsets and languages), the other
 * Content-* fields, and a message's envelope fields.
 *
 * The tree builder (parse.c) hands each part's header here once it is
 * complete; nothing here knows about offsets or boundaries.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/mime/mime-private.h"

/* Parameters kept per field; the rest are ignored. */
#define PARAMS_MAX 64
/* Highest RFC 2231 section number taken. */
#define PARAMS_MAX_SECTION 99

/* RFC 2045 tspecials and what else ends a token. */
static bool
params_is_token_char(char c)
{
	if ((unsigned char)c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* Skip white space, line breaks and (nested) comments. */
static void
params_skip_cfws(const char *s, size_t len, size_t *i)
{
	while (*i < len) {
		char c = s[*i];
		if (ts__mime_is_wsp(c) || c == '\r' || c == '\n') {
			(*i)++;
		} else if (c == '(') {
			int depth = 0;
			while (*i < len) {
				if (s[*i] == '\\' && *i + 1 < len) {
					*i += 2;
					continue;
				}
				if (s[*i] == '(')
					depth++;
				else if (s[*i] == ')' && --depth == 0) {
					(*i)++;
					break;
				}
				(*i)++;
			}
		} else {
			break;
		}
	}
}

/* A token at *i (may be empty). */
static char *
params_token(const char *s, size_t len, size_t *i)
{
	size_t start = *i;
	while (*i < len && params_is_token_char(s[*i]))
		(*i)++;
	return ts_xstrndup(s + start, *i - start);
}

/*
 * A parameter value at *i: a quoted string (unquoted, backslashes
 * removed; an unclosed one runs to the end), a token (and comments after
 * it), or else everything up to the next ";" with trailing white space
 * removed (tolerating unquoted specials and spaces).
 */
static char *
params_value(const char *s, size_t len, size_t *i)
{
	struct ts_mime_buf b = { 0 };

	if (*i < len && s[*i] == '"') {
		(*i)++;
		while (*i < len && s[*i] != '"') {
			if (s[*i] == '\\' && *i + 1 < len)
				(*i)++;
			if (s[*i] != '\r' && s[*i] != '\n')
				ts_mime_buf_add(&b, s + *i, 1);
			(*i)++;
		}
		if (*i < len)
			(*i)++;
		ts_mime_buf_add(&b, "", 0);
		return b.data;
	}
	size_t start = *i, after = *i;
	while (after < len && params_is_token_char(s[after]))
		after++;
	size_t token_end = after;
	params_skip_cfws(s, len, &after);
	if (after >= len || s[after] == ';') {
		/* A token, perhaps followed by a comment (RFC 2045 example). */
		*i = after;
		return ts_xstrndup(s + start, token_end - start);
	}
	while (*i < len && s[*i] != ';')
		(*i)++;
	size_t end = *i;
	while (end > start && (ts__mime_is_wsp(s[end - 1]) ||
			       s[end - 1] == '\r' || s[end - 1] == '\n'))
		end--;
	for (size_t k = start; k < end; k++)
		if (s[k] != '\r' && s[k] != '\n')
			ts_mime_buf_add(&b, s + k, 1);
	ts_mime_buf_add(&b, "", 0);
	return b.data;
}

/* A parameter as written, before RFC 2231 sections are joined. */
struct params_raw {
	char *base; /* name without "*N" / "*" */
	int section; /* -1: none */
	bool extended; /* ends in "*" */
	char *value;
	bool used;
};

static int
params_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Append value with RFC 2231 %XX escapes decoded. */
static void
params_percent_decode(struct ts_mime_buf *b, const char *v)
{
	for (size_t k = 0; v[k] != '\0'; k++) {
		int h1, h2;
		if (v[k] == '%' && (h1 = params_hex(v[k + 1])) >= 0 &&
		    (h2 = params_hex(v[k + 2])) >= 0) {
			char c = (char)(h1 << 4 | h2);
			ts_mime_buf_add(b, &c, 1);
			k += 2;
		} else {
			ts_mime_buf_add(b, v + k, 1);
		}
	}
}

/*
 * Build the parameter for raw[first] and every later section of the same
 * name: raw value joined, decoded value, language.
 */
static void
params_join(struct params_raw *raw, size_t n, size_t first,
	    struct ts_mime_param *p)
{
	struct params_raw *r0 = &raw[first];
	struct ts_mime_buf joined = { 0 }, bytes = { 0 };
	bool extended = false;

	if (r0->section < 0) {
		r0->used = true;
		extended = r0->extended;
		ts_mime_buf_add(&joined, r0->value, strlen(r0->value));
		if (extended)
			params_percent_decode(&bytes, r0->value);
	} else {
		/* Sections 0, 1, 2, … in order, up to the first gap. */
		for (int sec = 0; sec <= PARAMS_MAX_SECTION; sec++) {
			struct params_raw *r = NULL;
			for (size_t k = first; k < n; k++)
				if (!raw[k].used && raw[k].section == sec &&
				    strcasecmp(raw[k].base, r0->base) == 0) {
					r = &raw[k];
					break;
				}
			if (r == NULL)
				break;
			r->used = true;
			if (sec == 0)
				extended = r->extended;
			ts_mime_buf_add(&joined, r->value, strlen(r->value));
			if (r->extended)
				params_percent_decode(&bytes, r->value);
			else
				ts_mime_buf_add(&bytes, r->value,
						strlen(r->value));
		}
		/* Leftover sections past a gap are dropped. */
		for (size_t k = first; k < n; k++)
			if (raw[k].section >= 0 &&
			    strcasecmp(raw[k].base, r0->base) == 0)
				raw[k].used = true;
	}
	ts_mime_buf_add(&joined, "", 0);
	p->name =
		extended ? ts_xasprintf("%s*", r0->base) : ts_xstrdup(r0->base);
	p->raw_value = joined.data;
	p->language = NULL;

	if (!extended) {
		/* Not RFC 2231; quoted RFC 2047 words happen in the wild. */
		p->value = ts_mime_decode_words(joined.data, joined.len, NULL);
		ts_mime_buf_free(&bytes);
		return;
	}
	/* charset'language'text; the quotes were kept undecoded in bytes. */
	ts_mime_buf_add(&bytes, "", 0);
	char *q1 = strchr(bytes.data, '\'');
	char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
	struct ts_mime_buf out = { 0 };
	if (q1 == NULL || q2 == NULL) {
		ts__mime_add_valid_utf8(&out, bytes.data, bytes.len, false);
	} else {
		*q1 = '\0';
		*q2 = '\0';
		if (q2 > q1 + 1)
			p->language = ts_xstrdup(q1 + 1);
		const char *text = q2 + 1;
		size_t tlen = bytes.len - (size_t)(text - bytes.data);
		if (bytes.data[0] == '\0' ||
		    !ts_mime_charset_to_utf8(bytes.data, text, tlen, &out))
			ts__mime_add_valid_utf8(&out, text, tlen, false);
	}
	ts_mime_buf_add(&out, "", 0);
	p->value = out.data;
	ts_mime_buf_free(&bytes);
}

/* Split "name*N*" into its parts. */
static void
params_split_name(char *name, struct params_raw *r)
{
	size_t n = strlen(name);
	r->section = -1;
	r->extended = false;
	if (n > 1 && name[n - 1] == '*') {
		r->extended = true;
		name[--n] = '\0';
	}
	char *star = strrchr(name, '*');
	if (star != NULL && star[1] != '\0' && star != name) {
		char *end;
		long sec = strtol(star + 1, &end, 10);
		if (*end == '\0' && isdigit((unsigned char)star[1]) &&
		    sec >= 0 && sec <= PARAMS_MAX_SECTION) {
			r->section = (int)sec;
			*star = '\0';
		}
	}
	r->base = name;
}

void
ts_mime_content_type_parse(const char *s, size_t len, char **type_r,
			   char **subtype_r, struct ts_mime_param **params_r,
			   size_t *nparams_r)
{
	size_t i = 0;
	*type_r = NULL;
	if (subtype_r != NULL)
		*subtype_r = NULL;
	*params_r = NULL;
	*nparams_r = 0;

	params_skip_cfws(s, len, &i);
	char *type = params_token(s, len, &i);
	params_skip_cfws(s, len, &i);
	if (subtype_r != NULL) {
		char *subtype = NULL;
		if (i < len && s[i] == '/') {
			i++;
			params_skip_cfws(s, len, &i);
			subtype = params_token(s, len, &i);
			params_skip_cfws(s, len, &i);
		}
		if (type[0] == '\0' || subtype == NULL || subtype[0] == '\0' ||
		    (i < len && s[i] != ';')) {
			free(type);
			free(subtype);
			type = NULL;
		} else {
			*subtype_r = subtype;
		}
	} else if (type[0] == '\0') {
		free(type);
		type = NULL;
	}
	*type_r = type;
	if (type == NULL)
		return;

	struct params_raw raw[PARAMS_MAX];
	size_t nraw = 0;
	while (i < len && nraw < PARAMS_MAX) {
		/* Find the next ";" (skipping junk before it). */
		while (i < len && s[i] != ';') {
			if (s[i] == '"') {
				size_t skip = i;
				free(params_value(s, len, &skip));
				i = skip;
				continue;
			}
			i++;
		}
		if (i >= len)
			break;
		i++;
		params_skip_cfws(s, len, &i);
		char *name = params_token(s, len, &i);
		params_skip_cfws(s, len, &i);
		if (name[0] == '\0' || i >= len || s[i] != '=') {
			free(name);
			continue;
		}
		i++;
		params_skip_cfws(s, len, &i);
		struct params_raw *r = &raw[nraw++];
		r->value = params_value(s, len, &i);
		r->used = false;
		params_split_name(name, r);
	}

	struct ts_mime_param *params =
		nraw ? ts_xcalloc(nraw, sizeof(*params)) : NULL;
	size_t np = 0;
	for (size_t k = 0; k < nraw; k++)
		if (!raw[k].used)
			params_join(raw, nraw, k, &params[np++]);
	for (size_t k = 0; k < nraw; k++) {
		free(raw[k].base);
		free(raw[k].value);
	}
	*params_r = params;
	*nparams_r = np;
}

void
ts_mime_params_free(struct ts_mime_param *params, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		free(params[k].name);
		free(params[k].raw_value);
		free(params[k].value);
		free(params[k].language);
	}
	free(params);
}

const char *
ts_mime_param_get(const struct ts_mime_param *params, size_t n,
		  const char *name)
{
	size_t nl = strlen(name);
	for (size_t k = 0; k < n; k++) {
		const char *pn = params[k].name;
		/* "filename*" answers for "filename" too. */
		if (strncasecmp(pn, name, nl) == 0 &&
		    (pn[nl] == '\0' || (pn[nl] == '*' && pn[nl + 1] == '\0')))
			return params[k].value;
	}
	return NULL;
}

bool
ts_mime_part_is(const struct ts_mime_part *part, const char *type,
		const char *subtype)
{
	return strcasecmp(part->type, type) == 0 &&
	       (subtype == NULL || strcasecmp(part->subtype, subtype) == 0);
}

/* --- a part's header ------------------------------------------------------ */

/* Content-Language: tags separated by commas (comments and spaces dropped). */
static void
params_languages(struct ts_mime_part *part, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && part->nlanguages < PARAMS_MAX) {
		params_skip_cfws(s, len, &i);
		size_t start = i;
		while (i < len && s[i] != ',' && s[i] != '(' &&
		       !ts__mime_is_wsp(s[i]) && s[i] != '\r' && s[i] != '\n')
			i++;
		if (i > start) {
			part->languages = ts_xrealloc(part->languages,
						      (part->nlanguages + 1) *
							      sizeof(char *));
			part->languages[part->nlanguages++] =
				ts_xstrndup(s + start, i - start);
		}
		params_skip_cfws(s, len, &i);
		if (i < len && s[i] != ',' && i == start)
			i++; /* junk: step over it */
		else if (i < len && s[i] == ',')
			i++;
	}
}

/* The envelope slot for a field name, or NULL. */
static char **
params_envelope_slot(struct ts_mime_envelope *e, const struct ts_mime_field *f)
{
	static const struct {
		const char *name;
		size_t offset;
	} slots[] = {
		{ "date", offsetof(struct ts_mime_envelope, date) },
		{ "subject", offsetof(struct ts_mime_envelope, subject) },
		{ "from", offsetof(struct ts_mime_envelope, from) },
		{ "sender", offsetof(struct ts_mime_envelope, sender) },
		{ "reply-to", offsetof(struct ts_mime_envelope, reply_to) },
		{ "to", offsetof(struct ts_mime_envelope, to) },
		{ "cc", offsetof(struct ts_mime_envelope, cc) },
		{ "bcc", offsetof(struct ts_mime_envelope, bcc) },
		{ "in-reply-to",
		  offsetof(struct ts_mime_envelope, in_reply_to) },
		{ "message-id", offsetof(struct ts_mime_envelope, message_id) },
	};
	for (size_t k = 0; k < sizeof(slots) / sizeof(slots[0]); k++)
		if (ts_mime_field_is(f, slots[k].name))
			return (char **)((char *)e + slots[k].offset);
	return NULL;
}

void
ts__mime_part_parse_header(struct ts_mime_part *part, const char *hdr,
			   size_t len, bool in_digest)
{
	struct ts_mime_header_iter it;
	struct ts_mime_field f;
	bool have_type = false, have_disp = false, have_lang = false;

	if (part->is_message && part->envelope == NULL)
		part->envelope = ts_xcalloc(1, sizeof(*part->envelope));
	ts_mime_header_init(&it, hdr, len);
	while (ts_mime_header_next(&it, &f)) {
		if (part->envelope != NULL) {
			char **slot = params_envelope_slot(part->envelope, &f);
			if (slot != NULL && *slot == NULL)
				*slot = ts_mime_unfold(f.value, f.value_len,
						       NULL);
		}
		if (f.name_len < 8 || strncasecmp(f.name, "content-", 8) != 0)
			continue;
		if (ts_mime_field_is(&f, "content-type") && !have_type) {
			have_type = true;
			char *type, *subtype;
			ts_mime_content_type_parse(f.value, f.value_len, &type,
						   &subtype, &part->params,
						   &part->nparams);
			if (type != NULL) {
				part->type = type;
				part->subtype = subtype;
			}
		} else if (ts_mime_field_is(&f, "content-disposition") &&
			   !have_disp) {
			have_disp = true;
			ts_mime_content_type_parse(f.value, f.value_len,
						   &part->disposition, NULL,
						   &part->disposition_params,
						   &part->ndisposition_params);
		} else if (ts_mime_field_is(&f, "content-language") &&
			   !have_lang) {
			have_lang = true;
			params_languages(part, f.value, f.value_len);
		} else {
			char **slot = NULL;
			if (ts_mime_field_is(&f, "content-transfer-encoding"))
				slot = &part->encoding;
			else if (ts_mime_field_is(&f, "content-id"))
				slot = &part->id;
			else if (ts_mime_field_is(&f, "content-description"))
				slot = &part->description;
			else if (ts_mime_field_is(&f, "content-md5"))
				slot = &part->md5;
			else if (ts_mime_field_is(&f, "content-location"))
				slot = &part->location;
			if (slot != NULL && *slot == NULL)
				*slot = ts_mime_unfold(f.value, f.value_len,
						       NULL);
		}
	}
	if (part->type == NULL) {
		/* RFC 2045 section 5.2, RFC 2046 section 5.1.5. */
		ts_mime_params_free(part->params, part->nparams);
		part->params = NULL;
		part->nparams = 0;
		part->type = ts_xstrdup(in_digest ? "message" : "text");
		part->subtype = ts_xstrdup(in_digest ? "rfc822" : "plain");
		part->content_type_default = true;
	}
}

void
ts__mime_part_free_fields(struct ts_mime_part *part)
{
	free(part->type);
	free(part->subtype);
	ts_mime_params_free(part->params, part->nparams);
	free(part->encoding);
	free(part->id);
	free(part->description);
	free(part->md5);
	free(part->location);
	free(part->disposition);
	ts_mime_params_free(part->disposition_params,
			    part->ndisposition_params);
	for (size_t k = 0; k < part->nlanguages; k++)
		free(part->languages[k]);
	free(part->languages);
	if (part->envelope != NULL) {
		struct ts_mime_envelope *e = part->envelope;
		free(e->date);
		free(e->subject);
		free(e->from);
		free(e->sender);
		free(e->reply_to);
		free(e->to);
		free(e->cc);
		free(e->bcc);
		free(e->in_reply_to);
		free(e->message_id);
		free(e);
	}
}
