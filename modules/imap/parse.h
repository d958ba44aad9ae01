/*
 * modules/imap/parse.h — the IMAP command parser (RFC 3501, RFC 9051 and
 * the extensions the module offers), pure: no I/O, no kernel calls, so
 * the unit tests drive it directly.
 *
 * The session hands over one complete command: its lines joined with
 * CRLF and every literal's bytes in place after its "{n}\r\n" (also
 * "{n+}" and "{n-}").  The result is a struct imap_command owning all it
 * points to (free with imap_command_clear), or a BAD text saying why.
 */
#ifndef IMAP_PARSE_H
#define IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stands for "*" in a sequence set: the largest number in use. */
#define IMAP_STAR UINT32_MAX

enum imap_cmd {
	IMAP_CMD_CAPABILITY,
	IMAP_CMD_NOOP,
	IMAP_CMD_LOGOUT,
	IMAP_CMD_STARTTLS,
	IMAP_CMD_AUTHENTICATE,
	IMAP_CMD_LOGIN,
	IMAP_CMD_ENABLE,
	IMAP_CMD_ID,
	IMAP_CMD_SELECT,
	IMAP_CMD_EXAMINE,
	IMAP_CMD_CREATE,
	IMAP_CMD_DELETE,
	IMAP_CMD_RENAME,
	IMAP_CMD_SUBSCRIBE,
	IMAP_CMD_UNSUBSCRIBE,
	IMAP_CMD_LIST,
	IMAP_CMD_LSUB,
	IMAP_CMD_NAMESPACE,
	IMAP_CMD_STATUS,
	IMAP_CMD_APPEND,
	IMAP_CMD_IDLE,
	IMAP_CMD_CHECK,
	IMAP_CMD_CLOSE,
	IMAP_CMD_UNSELECT,
	IMAP_CMD_EXPUNGE,
	IMAP_CMD_SEARCH,
	IMAP_CMD_FETCH,
	IMAP_CMD_STORE,
	IMAP_CMD_COPY,
	IMAP_CMD_MOVE,
};

/* A sequence set; numbers are sequence numbers or UIDs (cmd->uid). */
struct imap_range {
	uint32_t lo, hi; /* lo <= hi after parsing; IMAP_STAR for "*" */
};
struct imap_seqset {
	struct imap_range *ranges;
	size_t count;
	bool saved; /* "$": the saved search result (SEARCHRES) */
};

/* A BODY[...] section. */
enum imap_section_text {
	IMAP_SECTION_ALL, /* BODY[] or BODY[1.2] */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME,
};
struct imap_section {
	uint32_t *part; /* part numbers ("1.2" is {1, 2}), may be NULL */
	size_t part_count;
	enum imap_section_text text;
	char **fields; /* HEADER.FIELDS names, as given */
	size_t field_count;
};

enum imap_fetch_kind {
	IMAP_FETCH_FLAGS,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_RFC822_SIZE,
	IMAP_FETCH_UID,
	IMAP_FETCH_MODSEQ,
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_BODY_STRUCTURE, /* BODY without section */
	IMAP_FETCH_RFC822,
	IMAP_FETCH_RFC822_HEADER,
	IMAP_FETCH_RFC822_TEXT,
	IMAP_FETCH_BODY_SECTION, /* BODY[..] and BODY.PEEK[..] */
	IMAP_FETCH_BINARY, /* BINARY[..], BINARY.PEEK[..] */
	IMAP_FETCH_BINARY_SIZE,
};
struct imap_fetch_att {
	enum imap_fetch_kind kind;
	bool peek;
	struct imap_section section;
	bool partial;
	uint32_t partial_offset, partial_count;
};

enum imap_search_kind {
	IMAP_SK_ALL,
	IMAP_SK_AND, /* children */
	IMAP_SK_OR, /* children[0] OR children[1] */
	IMAP_SK_NOT, /* children[0] */
	IMAP_SK_SEQSET,
	IMAP_SK_UID,
	IMAP_SK_FLAG, /* flag set: num = TS-like bit (see search.c) */
	IMAP_SK_NOFLAG,
	IMAP_SK_KEYWORD,
	IMAP_SK_UNKEYWORD,
	IMAP_SK_NEW,
	IMAP_SK_OLD,
	IMAP_SK_RECENT,
	IMAP_SK_HEADER, /* str2 field, str value */
	IMAP_SK_BODY,
	IMAP_SK_TEXT,
	IMAP_SK_BEFORE, /* date: days since epoch */
	IMAP_SK_ON,
	IMAP_SK_SINCE,
	IMAP_SK_SENTBEFORE,
	IMAP_SK_SENTON,
	IMAP_SK_SENTSINCE,
	IMAP_SK_LARGER,
	IMAP_SK_SMALLER,
	IMAP_SK_MODSEQ,
};
struct imap_search_key {
	enum imap_search_kind kind;
	char *str, *str2;
	int64_t num; /* date (days since 1970-01-01), size, modseq, flag bit */
	struct imap_seqset set;
	struct imap_search_key *children;
	size_t child_count;
};

/* ESEARCH RETURN options. */
#define IMAP_RET_MIN 0x01u
#define IMAP_RET_MAX 0x02u
#define IMAP_RET_ALL 0x04u
#define IMAP_RET_COUNT 0x08u
#define IMAP_RET_SAVE 0x10u

/* LIST-EXTENDED selection and return options. */
#define IMAP_LIST_SUBSCRIBED 0x01u
#define IMAP_LIST_REMOTE 0x02u
#define IMAP_LIST_RECURSIVEMATCH 0x04u
#define IMAP_LIST_SPECIAL_USE 0x08u
#define IMAP_LIST_RET_SUBSCRIBED 0x10u
#define IMAP_LIST_RET_CHILDREN 0x20u
#define IMAP_LIST_RET_SPECIAL_USE 0x40u
#define IMAP_LIST_RET_STATUS 0x80u

/* STATUS items. */
#define IMAP_STATUS_MESSAGES 0x01u
#define IMAP_STATUS_RECENT 0x02u
#define IMAP_STATUS_UIDNEXT 0x04u
#define IMAP_STATUS_UIDVALIDITY 0x08u
#define IMAP_STATUS_UNSEEN 0x10u
#define IMAP_STATUS_HIGHESTMODSEQ 0x20u
#define IMAP_STATUS_SIZE 0x40u
#define IMAP_STATUS_DELETED 0x80u
#define IMAP_STATUS_APPENDLIMIT 0x100u

/* System flags as parsed (same bits as TS_FLAG_* of tessera/store.h). */
#define IMAP_FLAG_SEEN 0x01u
#define IMAP_FLAG_ANSWERED 0x02u
#define IMAP_FLAG_FLAGGED 0x04u
#define IMAP_FLAG_DELETED 0x08u
#define IMAP_FLAG_DRAFT 0x10u
#define IMAP_FLAG_JUNK 0x20u /* $Junk keyword */
#define IMAP_FLAG_NOTJUNK 0x40u /* $NotJunk keyword */

/* A flag list: system flags as bits, keywords space-separated. */
struct imap_flags {
	uint32_t flags;
	char *keywords; /* "" when none */
	bool recent; /* \Recent was given (not settable; ignored) */
};

struct imap_command {
	char *tag;
	enum imap_cmd cmd;
	bool uid; /* UID FETCH/STORE/SEARCH/COPY/MOVE/EXPUNGE */

	/* mailbox commands; LOGIN user/password; AUTHENTICATE mechanism */
	char *mailbox, *mailbox2;
	char *user, *password;
	char *mechanism;
	bool has_initial; /* SASL-IR initial response present */
	char *initial;

	/* ENABLE capabilities, ID fields, LIST patterns: string lists */
	char **words;
	size_t word_count;

	/* SELECT/EXAMINE */
	bool condstore;
	bool qresync;
	uint32_t qr_uidvalidity;
	uint64_t qr_modseq;
	struct imap_seqset qr_known_uids; /* count 0: not given */
	struct imap_seqset qr_seq_match, qr_uid_match;

	/* LIST */
	unsigned list_opts; /* IMAP_LIST_* */
	unsigned status_items; /* STATUS, LIST RETURN STATUS */
	char *special_use; /* CREATE (USE (\X)) */

	/* APPEND */
	struct imap_flags flags;
	bool has_flags;
	int64_t date; /* unix seconds, 0: none */
	const char *message; /* into the command buffer; NULL: spooled */
	size_t message_len;
	bool message_binary; /* literal8 "~{n}" */

	/* FETCH/STORE/COPY/MOVE/SEARCH/EXPUNGE */
	struct imap_seqset set;
	struct imap_fetch_att *atts;
	size_t att_count;
	bool fetch_macro; /* ALL/FAST/FULL: ENVELOPE etc. were asked for */
	uint64_t changedsince; /* FETCH (CHANGEDSINCE n) */
	bool has_changedsince;
	bool vanished; /* FETCH (... VANISHED) */
	int store_mode; /* +1 add, -1 remove, 0 replace */
	bool silent;
	uint64_t unchangedsince;
	bool has_unchangedsince;
	struct imap_search_key search; /* IMAP_SK_AND of the keys */
	unsigned search_return; /* IMAP_RET_* */
	bool esearch; /* a RETURN (...) was given */
	char *charset;
};

/* Limits the parser enforces. */
struct imap_parse_limits {
	size_t max_literal; /* any literal (other than APPEND's) */
	uint64_t append_limit; /* APPEND's message literal */
	unsigned max_depth; /* nesting of lists and search keys */
	/*
	 * Non-zero: APPEND's message literal of exactly this size was
	 * written to a spool file, and its bytes are not in the buffer
	 * (cmd->message is then NULL, cmd->message_len the size).
	 */
	uint64_t spooled;
};

/*
 * Parse one complete command (buf, len bytes; NUL bytes allowed only
 * inside literals).  Returns 0 and fills *cmd; otherwise -1 with
 * *error_r a static text for "TAG BAD <text>" and cmd->tag set when a
 * tag could be read (NULL otherwise).  Either way imap_command_clear
 * frees *cmd afterwards.
 */
int imap_parse_command(const char *buf, size_t len,
		       const struct imap_parse_limits *limits,
		       struct imap_command *cmd, const char **error_r);

void imap_command_clear(struct imap_command *cmd);

/*
 * Whether a command line ends with a literal announcement: "{n}" (the
 * client waits for "+"), "{n+}" (LITERAL+, no wait) or "{n-}" (LITERAL-:
 * no wait, at most 4096).  Returns 1 with *size_r and *sync_r, 0 when
 * the line ends otherwise, -1 for a malformed or oversize count
 * ({99999999999999999999}); *error_r then says why.
 */
int imap_literal_suffix(const char *line, size_t len, uint64_t *size_r,
			bool *sync_r, const char **error_r);

/*
 * Whether the first line of a connection can be IMAP at all: a tag of
 * atom characters, a space and a letter.  "GET / HTTP/1.1" and TLS
 * handshakes are not.
 */
bool imap_looks_like_imap(const char *line, size_t len);

/* The tag of a line, for a BAD answer to input the parser never saw
 * whole (a line too long); "*" when there is none.  Caller frees. */
char *imap_line_tag(const char *line, size_t len);

/* Whether a seqset contains n, with "*" standing for max. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n,
			  uint32_t max);
void imap_seqset_clear(struct imap_seqset *set);
/* Parse a sequence set from a NUL-terminated string (tests, QRESYNC). */
int imap_seqset_parse(const char *s, struct imap_seqset *set);

/* Days since 1970-01-01 of "d-Mon-yyyy"; -1 when it is not one. */
int64_t imap_parse_day(const char *s, size_t len);
/* Unix seconds of an IMAP date-time "dd-Mon-yyyy hh:mm:ss +zzzz", or -1. */
int64_t imap_parse_date_time(const char *s, size_t len);

void imap_search_key_clear(struct imap_search_key *key);

/*
 * Mailbox names in modified UTF-7 (RFC 3501 5.1.3), the IMAP4rev1 way:
 * decode to UTF-8 (0, or -1 for a malformed name: bad base64, ASCII
 * encoded, "&" not closed, a broken surrogate pair); bytes above 0x7f
 * pass through as UTF-8.  Encode UTF-8 for the client.  Callers free.
 */
int imap_mutf7_decode(const char *in, char **out_r);
char *imap_mutf7_encode(const char *in);

#endif
