/*
 * kernel/mime/address.c — RFC 5322 address lists (section 3.4, and the
 * obsolete forms of section 4.4) as they really arrive: display names,
 * source routes, groups, comments, and every common way of getting them
 * wrong.
 *
 * Two passes: the value becomes tokens (words, quoted strings, comments,
 * domain literals, specials), then the tokens become list elements.  The
 * result feeds IMAP's ENVELOPE and DMARC's From domain; it is a best
 * reading, never a validation (that is the SMTP module's address parser's
 * job).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kernel/mime/mime-private.h"

enum address_tok_kind {
	TOK_WORD, /* atom (or junk taken as one) */
	TOK_QUOTED, /* quoted string, unquoted */
	TOK_COMMENT, /* comment text, without the outer parentheses */
	TOK_LITERAL, /* [domain literal] as written */
	TOK_SPECIAL, /* one of < > @ , ; : . */
};

struct address_tok {
	enum address_tok_kind kind;
	char special;
	bool space_before; /* white space or a comment came before it */
	char *text;
};

struct address_toks {
	struct address_tok *v;
	size_t n, cap;
	bool space; /* white space seen since the last token */
};

static void
address_push(struct address_toks *t, enum address_tok_kind kind, char special,
	     char *text)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->v = ts_xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->n].kind = kind;
	t->v[t->n].special = special;
	t->v[t->n].text = text;
	t->v[t->n].space_before = t->space;
	t->space = false;
	t->n++;
}

static bool
address_is_special(char c)
{
	return strchr("()<>[]:;@\\,.\"", c) != NULL;
}

static void
address_tokenize(const char *s, size_t len, struct address_toks *t)
{
	size_t i = 0;

	while (i < len) {
		char c = s[i];
		if (ts__mime_is_wsp(c) || c == '\r' || c == '\n' || c == '\0') {
			t->space = true;
			i++;
		} else if (c == '"') {
			struct ts_mime_buf b = { 0 };
			i++;
			while (i < len && s[i] != '"') {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				if (s[i] != '\r' && s[i] != '\n')
					ts_mime_buf_add(&b, s + i, 1);
				i++;
			}
			i++; /* the closing quote, if any */
			ts_mime_buf_add(&b, "", 0);
			address_push(t, TOK_QUOTED, 0, b.data);
		} else if (c == '(') {
			struct ts_mime_buf b = { 0 };
			int depth = 1;
			i++;
			while (i < len) {
				if (s[i] == '\\' && i + 1 < len) {
					ts_mime_buf_add(&b, s + i + 1, 1);
					i += 2;
					continue;
				}
				if (s[i] == '(')
					depth++;
				else if (s[i] == ')' && --depth == 0)
					break;
				if (s[i] != '\r' && s[i] != '\n')
					ts_mime_buf_add(&b, s + i, 1);
				i++;
			}
			i++;
			ts_mime_buf_add(&b, "", 0);
			address_push(t, TOK_COMMENT, 0, b.data);
			t->space = true;
		} else if (c == '[') {
			size_t start = i;
			while (i < len && s[i] != ']')
				i++;
			if (i < len)
				i++;
			address_push(t, TOK_LITERAL, 0,
				     ts_xstrndup(s + start, i - start));
		} else if (strchr("<>@,;:.", c) != NULL) {
			address_push(t, TOK_SPECIAL, c, NULL);
			i++;
		} else {
			size_t start = i;
			i++; /* a stray ")", "]" or "\" becomes a word */
			while (i < len && !address_is_special(s[i]) &&
			       !ts__mime_is_wsp(s[i]) && s[i] != '\r' &&
			       s[i] != '\n' && s[i] != '\0')
				i++;
			address_push(t, TOK_WORD, 0,
				     ts_xstrndup(s + start, i - start));
		}
	}
}

static bool
address_tok_is(const struct address_tok *t, char special)
{
	return t->kind == TOK_SPECIAL && t->special == special;
}

/*
 * Join tokens [a, b) as a phrase: words, quoted strings and specials,
 * with one space where the input had white space (or a comment) between
 * them.  Comments are skipped.
 * Returns NULL when there is no word.
 */
static char *
address_phrase(const struct address_toks *t, size_t a, size_t b)
{
	struct ts_mime_buf out = { 0 };
	bool any = false;

	for (size_t k = a; k < b; k++) {
		const struct address_tok *tok = &t->v[k];
		if (tok->kind == TOK_COMMENT)
			continue;
		const char *text = tok->text;
		char sp[2] = { tok->special, '\0' };
		if (tok->kind == TOK_SPECIAL)
			text = sp;
		if (any && tok->space_before)
			ts_mime_buf_add(&out, " ", 1);
		ts_mime_buf_add(&out, text, strlen(text));
		any = true;
	}
	if (!any)
		return NULL;
	return out.data;
}

/* Concatenate tokens [a, b) without spaces (local part, domain). */
static char *
address_concat(const struct address_toks *t, size_t a, size_t b)
{
	struct ts_mime_buf out = { 0 };

	for (size_t k = a; k < b; k++) {
		const struct address_tok *tok = &t->v[k];
		if (tok->kind == TOK_COMMENT)
			continue;
		if (tok->kind == TOK_SPECIAL) {
			ts_mime_buf_add(&out, &tok->special, 1);
			continue;
		}
		ts_mime_buf_add(&out, tok->text, strlen(tok->text));
	}
	ts_mime_buf_add(&out, "", 0);
	return out.data;
}

/* The last comment in [a, b), copied, or NULL. */
static char *
address_last_comment(const struct address_toks *t, size_t a, size_t b)
{
	for (size_t k = b; k > a; k--)
		if (t->v[k - 1].kind == TOK_COMMENT &&
		    t->v[k - 1].text[0] != '\0')
			return ts_xstrdup(t->v[k - 1].text);
	return NULL;
}

/*
 * An addr-spec in tokens [a, b): local part before the last "@", domain
 * after it.  Sets invalid when there is no "@" or the local part holds
 * words not joined by dots.
 */
static void
address_addr_spec(const struct address_toks *t, size_t a, size_t b,
		  struct ts_mime_address *addr)
{
	size_t at = b;
	for (size_t k = a; k < b; k++)
		if (address_tok_is(&t->v[k], '@'))
			at = k;
	if (at == b) {
		/* No domain: keep the words as the local part. */
		addr->mailbox = address_phrase(t, a, b);
		if (addr->mailbox == NULL)
			addr->mailbox = ts_xstrdup("");
		addr->domain = ts_xstrdup("");
		addr->invalid = true;
		return;
	}
	addr->mailbox = address_concat(t, a, at);
	addr->domain = address_concat(t, at + 1, b);
	if (addr->mailbox[0] == '\0' || addr->domain[0] == '\0')
		addr->invalid = true;
	/* Two words in a row in the local part: not an addr-spec. */
	for (size_t k = a; k + 1 < at; k++)
		if (t->v[k].kind != TOK_SPECIAL &&
		    t->v[k].kind != TOK_COMMENT &&
		    t->v[k + 1].kind != TOK_SPECIAL &&
		    t->v[k + 1].kind != TOK_COMMENT)
			addr->invalid = true;
}

/* One mailbox in tokens [a, b) (no top-level "," in it). */
static struct ts_mime_address *
address_mailbox(const struct address_toks *t, size_t a, size_t b)
{
	struct ts_mime_address *addr = ts_xcalloc(1, sizeof(*addr));
	size_t lt = b;

	addr->kind = TS_MIME_ADDRESS_MAILBOX;
	for (size_t k = a; k < b; k++)
		if (address_tok_is(&t->v[k], '<')) {
			lt = k;
			break;
		}
	if (lt == b) {
		address_addr_spec(t, a, b, addr);
		addr->name = address_last_comment(t, a, b);
		return addr;
	}
	addr->name = address_phrase(t, a, lt);
	size_t gt = b;
	for (size_t k = lt + 1; k < b; k++)
		if (address_tok_is(&t->v[k], '>')) {
			gt = k;
			break;
		}
	if (gt == b)
		addr->invalid = true;
	size_t start = lt + 1;
	/* Obsolete route: "@a,@b:" before the addr-spec. */
	if (start < gt && address_tok_is(&t->v[start], '@')) {
		size_t colon = gt;
		for (size_t k = start; k < gt; k++)
			if (address_tok_is(&t->v[k], ':')) {
				colon = k;
				break;
			}
		if (colon < gt) {
			addr->route = address_concat(t, start, colon);
			start = colon + 1;
		}
	}
	if (start == gt) {
		/* "<>": the null path. */
		addr->mailbox = ts_xstrdup("");
		addr->domain = ts_xstrdup("");
	} else {
		address_addr_spec(t, start, gt, addr);
	}
	if (addr->name == NULL && gt < b)
		addr->name = address_last_comment(t, gt + 1, b);
	return addr;
}

struct ts_mime_address *
ts_mime_address_parse(const char *s, size_t len)
{
	struct address_toks t = { 0 };
	struct ts_mime_address *head = NULL, **tail = &head;
	size_t count = 0, k = 0;
	bool in_group = false;

	address_tokenize(s, len, &t);
	while (k < t.n && count < TS_MIME_MAX_ADDRESSES) {
		if (address_tok_is(&t.v[k], ',')) {
			k++;
			continue;
		}
		if (address_tok_is(&t.v[k], ';')) {
			if (in_group) {
				struct ts_mime_address *end =
					ts_xcalloc(1, sizeof(*end));
				end->kind = TS_MIME_ADDRESS_GROUP_END;
				*tail = end;
				tail = &end->next;
				count++;
				in_group = false;
			}
			k++;
			continue;
		}
		/* The element's extent, "<…>" may hold a route's commas. */
		size_t e = k, colon = t.n;
		int depth = 0;
		bool addr_seen = false;
		for (; e < t.n; e++) {
			const struct address_tok *tok = &t.v[e];
			if (address_tok_is(tok, '<')) {
				depth++;
				addr_seen = true;
			} else if (address_tok_is(tok, '>') && depth > 0) {
				depth--;
			} else if (address_tok_is(tok, '@')) {
				addr_seen = true;
			} else if (depth == 0 && address_tok_is(tok, ',')) {
				break;
			} else if (depth == 0 && address_tok_is(tok, ';')) {
				/* Ends a group, or (Outlook) separates. */
				break;
			} else if (depth == 0 && address_tok_is(tok, ':') &&
				   !addr_seen && !in_group && colon == t.n) {
				colon = e;
				break;
			}
		}
		if (colon < t.n) {
			struct ts_mime_address *g = ts_xcalloc(1, sizeof(*g));
			g->kind = TS_MIME_ADDRESS_GROUP_START;
			g->mailbox = address_phrase(&t, k, colon);
			if (g->mailbox == NULL)
				g->mailbox = ts_xstrdup("");
			*tail = g;
			tail = &g->next;
			count++;
			in_group = true;
			k = colon + 1;
			continue;
		}
		/* Skip elements that are only comments. */
		bool words = false;
		for (size_t j = k; j < e; j++)
			if (t.v[j].kind != TOK_COMMENT)
				words = true;
		if (words) {
			struct ts_mime_address *addr =
				address_mailbox(&t, k, e);
			*tail = addr;
			tail = &addr->next;
			count++;
		}
		k = e;
	}
	if (in_group) {
		/* A group without its ";": close it so the list balances. */
		struct ts_mime_address *end = ts_xcalloc(1, sizeof(*end));
		end->kind = TS_MIME_ADDRESS_GROUP_END;
		*tail = end;
	}
	for (size_t j = 0; j < t.n; j++)
		free(t.v[j].text);
	free(t.v);
	return head;
}

void
ts_mime_address_free(struct ts_mime_address **list)
{
	struct ts_mime_address *a = *list;
	while (a != NULL) {
		struct ts_mime_address *next = a->next;
		free(a->name);
		free(a->route);
		free(a->mailbox);
		free(a->domain);
		free(a);
		a = next;
	}
	*list = NULL;
}
