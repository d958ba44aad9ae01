/*
 * modules/imap/parse-lex.h — the cursor the parser's files share: its
 * state and the grammar's small pieces (parse-lex.c), FETCH attributes
 * and SEARCH keys (parse-items.c), for the command arguments of parse.c.
 * Internal to the parser; nothing outside parse*.c includes it.
 *
 * Every imap_pc_* reader returns false (or NULL) on failure after noting
 * the first complaint in c->error; the caller may replace a generic one
 * with imap_pc_override.
 */
#ifndef IMAP_PARSE_LEX_H
#define IMAP_PARSE_LEX_H

#include "parse.h"

struct imap_pcur {
	const char *p, *end;
	const struct imap_parse_limits *lim;
	const char *error;
	unsigned depth;
};

/* Note a complaint (the first one wins); returns false. */
bool imap_pc_fail(struct imap_pcur *c, const char *error);
/* Whether the complaint so far is generic ("expected a space"). */
bool imap_pc_generic(const struct imap_pcur *c);
/* Replace a generic complaint with a specific one; returns false. */
bool imap_pc_override(struct imap_pcur *c, const char *error);
bool imap_pc_eof(const struct imap_pcur *c);
bool imap_pc_peek(const struct imap_pcur *c, char ch);
bool imap_pc_sp(struct imap_pcur *c);
bool imap_pc_char(struct imap_pcur *c, char ch, const char *error);
/* ATOM-CHAR and ASTRING-CHAR of RFC 3501 section 9. */
bool imap_atom_char(unsigned char ch);
bool imap_astring_char(unsigned char ch);
/* A run of chars passing `ok` (caller frees); NULL when empty. */
char *imap_pc_run(struct imap_pcur *c, bool (*ok)(unsigned char),
		  const char *error);
char *imap_pc_atom(struct imap_pcur *c);
/* Consume `word` (case-insensitive) when it is the next atom. */
bool imap_pc_word(struct imap_pcur *c, const char *word);
bool imap_pc_number64(struct imap_pcur *c, uint64_t *n_r, uint64_t max);
bool imap_pc_number(struct imap_pcur *c, uint32_t *n_r);
bool imap_pc_nz_number(struct imap_pcur *c, uint32_t *n_r);
/* Strings (caller frees): quoted, literal, string, astring, nstring. */
char *imap_pc_quoted(struct imap_pcur *c);
/*
 * A literal's bytes in place (or NULL when it is the spooled one, see
 * imap_parse_limits.spooled); literal8 "~{n}" when binary_r is given.
 */
bool imap_pc_literal_raw(struct imap_pcur *c, const char **data_r,
			 size_t *len_r, uint64_t max, bool *binary_r,
			 uint64_t spooled);
char *imap_pc_literal(struct imap_pcur *c);
char *imap_pc_string(struct imap_pcur *c);
char *imap_pc_astring(struct imap_pcur *c);
char *imap_pc_nstring(struct imap_pcur *c, bool *is_nil_r);
/* A mailbox name, INBOX folded to the store's "Inbox". */
char *imap_pc_mailbox(struct imap_pcur *c);
/* A LIST pattern (with % and *). */
char *imap_pc_list_mailbox(struct imap_pcur *c);
/* Append a string (taken) to cmd->words. */
void imap_words_add(struct imap_command *cmd, char *w);
/* Nothing may follow. */
bool imap_pc_end(struct imap_pcur *c);
/* One level deeper into lists or search keys (bounded). */
bool imap_pc_enter(struct imap_pcur *c);
bool imap_pc_seqset(struct imap_pcur *c, struct imap_seqset *set);
/* "(flag ...)" (or bare flags when bare_ok) into f. */
bool imap_pc_flag_list(struct imap_pcur *c, struct imap_flags *f, bool bare_ok);

/* parse-items.c */
void imap_section_clear(struct imap_section *s);
void imap_att_add(struct imap_command *cmd, enum imap_fetch_kind kind);
/* A FETCH attribute, a list of them, or ALL/FAST/FULL into cmd->atts. */
bool imap_pc_fetch_atts(struct imap_pcur *c, struct imap_command *cmd);
/* A new, zeroed child of a search key. */
struct imap_search_key *imap_key_child(struct imap_search_key *k);
bool imap_pc_search_key(struct imap_pcur *c, struct imap_search_key *k);

#endif
