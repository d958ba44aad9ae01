/*
 * modules/imap/parse-items.c — FETCH attributes (sections, partial
 * ranges, the ALL/FAST/FULL macros) and SEARCH keys (with OR, NOT and
 * parenthesised lists, nesting bounded), for parse.c.  Pure.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tessera/common.h>

#include "parse-lex.h"

/* --- FETCH attributes ---------------------------------------------------- */

void
imap_section_clear(struct imap_section *s)
{
	free(s->part);
	for (size_t i = 0; i < s->field_count; i++)
		free(s->fields[i]);
	free(s->fields);
	memset(s, 0, sizeof(*s));
}

/* section = "[" [section-spec] "]" (the "[" already read) */
static bool
imap_pc_section(struct imap_pcur *c, struct imap_section *s, bool binary)
{
	while (c->p < c->end && *c->p >= '1' && *c->p <= '9') {
		uint32_t n;
		if (!imap_pc_nz_number(c, &n))
			return false;
		if (s->part_count >= 64)
			return imap_pc_fail(c, "section part too deep");
		s->part = ts_xrealloc(s->part,
				      (s->part_count + 1) * sizeof(*s->part));
		s->part[s->part_count++] = n;
		if (!imap_pc_peek(c, '.'))
			break;
		c->p++;
		if (c->p < c->end && *c->p >= '1' && *c->p <= '9')
			continue;
		break;
	}
	if (imap_pc_peek(c, ']')) {
		if (s->part_count > 0 && c->p[-1] == '.')
			return imap_pc_fail(c, "bad section");
		c->p++;
		return true;
	}
	if (binary)
		return imap_pc_fail(c, "bad section");
	if (imap_pc_word(c, "HEADER.FIELDS.NOT")) {
		s->text = IMAP_SECTION_HEADER_FIELDS_NOT;
	} else if (imap_pc_word(c, "HEADER.FIELDS")) {
		s->text = IMAP_SECTION_HEADER_FIELDS;
	} else if (imap_pc_word(c, "HEADER")) {
		s->text = IMAP_SECTION_HEADER;
	} else if (imap_pc_word(c, "TEXT")) {
		s->text = IMAP_SECTION_TEXT;
	} else if (imap_pc_word(c, "MIME")) {
		if (s->part_count == 0)
			return imap_pc_fail(c, "MIME needs a part number");
		s->text = IMAP_SECTION_MIME;
	} else {
		return imap_pc_fail(c, "bad section");
	}
	if (s->text == IMAP_SECTION_HEADER_FIELDS ||
	    s->text == IMAP_SECTION_HEADER_FIELDS_NOT) {
		if (!imap_pc_sp(c) ||
		    !imap_pc_char(c, '(', "expected a header list")) {
			c->error = "expected a header list";
			return false;
		}
		for (;;) {
			char *f = imap_pc_astring(c);
			if (f == NULL)
				return imap_pc_fail(c, "bad header field name");
			if (s->field_count >= 1000) {
				free(f);
				return imap_pc_fail(c,
						    "too many header fields");
			}
			s->fields = ts_xrealloc(s->fields,
						(s->field_count + 1) *
							sizeof(*s->fields));
			s->fields[s->field_count++] = f;
			if (imap_pc_peek(c, ')')) {
				c->p++;
				break;
			}
			if (!imap_pc_sp(c))
				return false;
		}
	}
	return imap_pc_char(c, ']', "bad section");
}

/* "<" number "." nz-number ">" */
static bool
imap_pc_partial(struct imap_pcur *c, struct imap_fetch_att *a)
{
	if (!imap_pc_peek(c, '<'))
		return true;
	c->p++;
	if (!imap_pc_number(c, &a->partial_offset) ||
	    !imap_pc_char(c, '.', "bad partial range") ||
	    !imap_pc_nz_number(c, &a->partial_count) ||
	    !imap_pc_char(c, '>', "bad partial range")) {
		c->error = "bad partial range";
		return false;
	}
	a->partial = true;
	return true;
}

void
imap_att_add(struct imap_command *cmd, enum imap_fetch_kind kind)
{
	cmd->atts = ts_xrealloc(cmd->atts,
				(cmd->att_count + 1) * sizeof(*cmd->atts));
	memset(&cmd->atts[cmd->att_count], 0, sizeof(*cmd->atts));
	cmd->atts[cmd->att_count++].kind = kind;
}

static bool
imap_pc_fetch_att(struct imap_pcur *c, struct imap_command *cmd)
{
	static const struct {
		const char *name;
		enum imap_fetch_kind kind;
	} simple[] = {
		{ "ENVELOPE", IMAP_FETCH_ENVELOPE },
		{ "FLAGS", IMAP_FETCH_FLAGS },
		{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE },
		{ "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER },
		{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE },
		{ "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT },
		{ "RFC822", IMAP_FETCH_RFC822 },
		{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE },
		{ "UID", IMAP_FETCH_UID },
		{ "MODSEQ", IMAP_FETCH_MODSEQ },
	};
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		size_t n = strlen(simple[i].name);
		if ((size_t)(c->end - c->p) >= n &&
		    strncasecmp(c->p, simple[i].name, n) == 0 &&
		    (c->p + n == c->end || c->p[n] == ' ' || c->p[n] == ')')) {
			c->p += n;
			imap_att_add(cmd, simple[i].kind);
			return true;
		}
	}
	bool binary = false, size = false, peek = false;
	if (imap_pc_word(c, "BODY.PEEK")) {
		peek = true;
	} else if (imap_pc_word(c, "BODY")) {
	} else if (imap_pc_word(c, "BINARY.PEEK")) {
		binary = peek = true;
	} else if (imap_pc_word(c, "BINARY.SIZE")) {
		binary = size = true;
	} else if (imap_pc_word(c, "BINARY")) {
		binary = true;
	} else {
		return imap_pc_fail(c, "unknown fetch attribute");
	}
	if (!imap_pc_peek(c, '[')) {
		if (binary || peek)
			return imap_pc_fail(c, "expected a section");
		imap_att_add(cmd, IMAP_FETCH_BODY_STRUCTURE);
		return true;
	}
	c->p++;
	imap_att_add(cmd, binary ? (size ? IMAP_FETCH_BINARY_SIZE
					 : IMAP_FETCH_BINARY)
				 : IMAP_FETCH_BODY_SECTION);
	struct imap_fetch_att *a = &cmd->atts[cmd->att_count - 1];
	a->peek = peek;
	if (!imap_pc_section(c, &a->section, binary))
		return false;
	return size ? true : imap_pc_partial(c, a);
}

bool
imap_pc_fetch_atts(struct imap_pcur *c, struct imap_command *cmd)
{
	if (imap_pc_word(c, "ALL")) {
		imap_att_add(cmd, IMAP_FETCH_FLAGS);
		imap_att_add(cmd, IMAP_FETCH_INTERNALDATE);
		imap_att_add(cmd, IMAP_FETCH_RFC822_SIZE);
		imap_att_add(cmd, IMAP_FETCH_ENVELOPE);
		return true;
	}
	if (imap_pc_word(c, "FAST")) {
		imap_att_add(cmd, IMAP_FETCH_FLAGS);
		imap_att_add(cmd, IMAP_FETCH_INTERNALDATE);
		imap_att_add(cmd, IMAP_FETCH_RFC822_SIZE);
		return true;
	}
	if (imap_pc_word(c, "FULL")) {
		imap_att_add(cmd, IMAP_FETCH_FLAGS);
		imap_att_add(cmd, IMAP_FETCH_INTERNALDATE);
		imap_att_add(cmd, IMAP_FETCH_RFC822_SIZE);
		imap_att_add(cmd, IMAP_FETCH_ENVELOPE);
		imap_att_add(cmd, IMAP_FETCH_BODY_STRUCTURE);
		return true;
	}
	if (!imap_pc_peek(c, '('))
		return imap_pc_fetch_att(c, cmd);
	c->p++;
	for (;;) {
		if (!imap_pc_fetch_att(c, cmd))
			return false;
		if (imap_pc_peek(c, ')')) {
			c->p++;
			return true;
		}
		if (!imap_pc_sp(c))
			return false;
	}
}

/* --- SEARCH keys --------------------------------------------------------- */

void
imap_search_key_clear(struct imap_search_key *k)
{
	free(k->str);
	free(k->str2);
	imap_seqset_clear(&k->set);
	for (size_t i = 0; i < k->child_count; i++)
		imap_search_key_clear(&k->children[i]);
	free(k->children);
	memset(k, 0, sizeof(*k));
}

struct imap_search_key *
imap_key_child(struct imap_search_key *k)
{
	k->children = ts_xrealloc(k->children,
				  (k->child_count + 1) * sizeof(*k->children));
	struct imap_search_key *ch = &k->children[k->child_count++];
	memset(ch, 0, sizeof(*ch));
	return ch;
}

static bool
imap_pc_search_date(struct imap_pcur *c, struct imap_search_key *k)
{
	if (!imap_pc_sp(c))
		return false;
	char *s = imap_pc_astring(c);
	if (s == NULL)
		return imap_pc_fail(c, "bad date");
	k->num = imap_parse_day(s, strlen(s));
	free(s);
	if (k->num < 0)
		return imap_pc_fail(c, "bad date");
	return true;
}

static bool
imap_pc_search_string(struct imap_pcur *c, char **s_r)
{
	if (!imap_pc_sp(c))
		return false;
	*s_r = imap_pc_astring(c);
	return *s_r != NULL;
}

static bool
imap_pc_search_key_inner(struct imap_pcur *c, struct imap_search_key *k)
{
	static const struct {
		const char *name;
		enum imap_search_kind kind;
		int64_t num;
	} simple[] = {
		{ "ALL", IMAP_SK_ALL, 0 },
		{ "ANSWERED", IMAP_SK_FLAG, IMAP_FLAG_ANSWERED },
		{ "DELETED", IMAP_SK_FLAG, IMAP_FLAG_DELETED },
		{ "DRAFT", IMAP_SK_FLAG, IMAP_FLAG_DRAFT },
		{ "FLAGGED", IMAP_SK_FLAG, IMAP_FLAG_FLAGGED },
		{ "SEEN", IMAP_SK_FLAG, IMAP_FLAG_SEEN },
		{ "UNANSWERED", IMAP_SK_NOFLAG, IMAP_FLAG_ANSWERED },
		{ "UNDELETED", IMAP_SK_NOFLAG, IMAP_FLAG_DELETED },
		{ "UNDRAFT", IMAP_SK_NOFLAG, IMAP_FLAG_DRAFT },
		{ "UNFLAGGED", IMAP_SK_NOFLAG, IMAP_FLAG_FLAGGED },
		{ "UNSEEN", IMAP_SK_NOFLAG, IMAP_FLAG_SEEN },
		{ "NEW", IMAP_SK_NEW, 0 },
		{ "OLD", IMAP_SK_OLD, 0 },
		{ "RECENT", IMAP_SK_RECENT, 0 },
	};
	static const struct {
		const char *name;
		enum imap_search_kind kind;
	} dates[] = {
		{ "BEFORE", IMAP_SK_BEFORE },
		{ "ON", IMAP_SK_ON },
		{ "SINCE", IMAP_SK_SINCE },
		{ "SENTBEFORE", IMAP_SK_SENTBEFORE },
		{ "SENTON", IMAP_SK_SENTON },
		{ "SENTSINCE", IMAP_SK_SENTSINCE },
	};
	static const char *const header_keys[] = { "BCC", "CC", "FROM",
						   "SUBJECT", "TO" };
	if (imap_pc_peek(c, '(')) {
		c->p++;
		k->kind = IMAP_SK_AND;
		for (;;) {
			if (!imap_pc_search_key(c, imap_key_child(k)))
				return false;
			if (imap_pc_peek(c, ')')) {
				c->p++;
				return true;
			}
			if (!imap_pc_sp(c))
				return false;
		}
	}
	if ((c->p < c->end && ((*c->p >= '0' && *c->p <= '9') || *c->p == '*' ||
			       *c->p == '$'))) {
		k->kind = IMAP_SK_SEQSET;
		return imap_pc_seqset(c, &k->set);
	}
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (imap_pc_word(c, simple[i].name)) {
			k->kind = simple[i].kind;
			k->num = simple[i].num;
			return true;
		}
	}
	for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		if (imap_pc_word(c, dates[i].name)) {
			k->kind = dates[i].kind;
			return imap_pc_search_date(c, k);
		}
	}
	for (size_t i = 0; i < sizeof(header_keys) / sizeof(header_keys[0]);
	     i++) {
		if (imap_pc_word(c, header_keys[i])) {
			k->kind = IMAP_SK_HEADER;
			k->str2 = ts_xstrdup(header_keys[i]);
			return imap_pc_search_string(c, &k->str);
		}
	}
	if (imap_pc_word(c, "HEADER")) {
		k->kind = IMAP_SK_HEADER;
		return imap_pc_search_string(c, &k->str2) &&
		       imap_pc_search_string(c, &k->str);
	}
	if (imap_pc_word(c, "BODY")) {
		k->kind = IMAP_SK_BODY;
		return imap_pc_search_string(c, &k->str);
	}
	if (imap_pc_word(c, "TEXT")) {
		k->kind = IMAP_SK_TEXT;
		return imap_pc_search_string(c, &k->str);
	}
	bool un = false;
	if (imap_pc_word(c, "KEYWORD") || (un = imap_pc_word(c, "UNKEYWORD"))) {
		k->kind = un ? IMAP_SK_UNKEYWORD : IMAP_SK_KEYWORD;
		if (!imap_pc_sp(c))
			return false;
		k->str = imap_pc_atom(c);
		return k->str != NULL;
	}
	bool larger = false;
	if ((larger = imap_pc_word(c, "LARGER")) ||
	    imap_pc_word(c, "SMALLER")) {
		k->kind = larger ? IMAP_SK_LARGER : IMAP_SK_SMALLER;
		uint64_t n;
		if (!imap_pc_sp(c) || !imap_pc_number64(c, &n, INT64_MAX))
			return false;
		k->num = (int64_t)n;
		return true;
	}
	if (imap_pc_word(c, "UID")) {
		k->kind = IMAP_SK_UID;
		return imap_pc_sp(c) && imap_pc_seqset(c, &k->set);
	}
	if (imap_pc_word(c, "NOT")) {
		k->kind = IMAP_SK_NOT;
		return imap_pc_sp(c) &&
		       imap_pc_search_key(c, imap_key_child(k));
	}
	if (imap_pc_word(c, "OR")) {
		k->kind = IMAP_SK_OR;
		return imap_pc_sp(c) &&
		       imap_pc_search_key(c, imap_key_child(k)) &&
		       imap_pc_sp(c) &&
		       imap_pc_search_key(c, imap_key_child(k));
	}
	if (imap_pc_word(c, "MODSEQ")) {
		k->kind = IMAP_SK_MODSEQ;
		if (!imap_pc_sp(c))
			return false;
		/* [SP entry-name SP entry-type-req]: read and ignore */
		if (imap_pc_peek(c, '"')) {
			char *name = imap_pc_quoted(c);
			free(name);
			char *type = NULL;
			if (!imap_pc_sp(c) || (type = imap_pc_atom(c)) == NULL)
				return false;
			free(type);
			if (!imap_pc_sp(c))
				return false;
		}
		uint64_t n;
		if (!imap_pc_number64(c, &n, INT64_MAX))
			return false;
		k->num = (int64_t)n;
		return true;
	}
	return imap_pc_fail(c, "unknown search key");
}

bool
imap_pc_search_key(struct imap_pcur *c, struct imap_search_key *k)
{
	if (!imap_pc_enter(c))
		return false;
	bool ok = imap_pc_search_key_inner(c, k);
	c->depth--;
	return ok;
}
