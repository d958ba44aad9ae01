/*
 * modules/spf/record.c — parsing an SPF record (RFC 7208 4.6, 5, 6, 12).
 *
 * A record is "v=spf1" and terms separated by spaces.  Each directive is
 * an optional qualifier and a mechanism; each modifier name=value.  Any
 * syntax error anywhere makes the record a permerror before evaluation
 * (4.6), so everything, macros included, is checked here.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tessera/common.h>

#include "spf.h"

bool
spf_is_record(const char *text, size_t len)
{
	/* 4.5: exactly "v=spf1" followed by a space or the end */
	return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 &&
	       (len == 6 || text[6] == ' ');
}

void
spf_record_free(struct spf_record **recp)
{
	struct spf_record *rec = *recp;

	if (rec == NULL)
		return;
	for (size_t i = 0; i < rec->count; i++) {
		free(rec->terms[i].spec);
		free(rec->terms[i].text);
	}
	free(rec->terms);
	free(rec->redirect);
	free(rec->exp);
	free(rec);
	*recp = NULL;
}

/*
 * A CIDR length: "/" ( "0" / %x31-39 0*2DIGIT ) no larger than max.
 * Returns the value or -1.
 */
static int
spf_cidr(const char *s, size_t n, int max)
{
	int v = 0;

	if (n == 0 || n > 3 || (s[0] == '0' && n > 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/*
 * Strip a trailing dual-cidr-length ("/24", "//64", "/24//64") from the
 * argument [s, s+*n); store the lengths.  Returns 0 or -1.
 */
static int
spf_dual_cidr(const char *s, size_t *n, int *c4, int *c6, bool allow6)
{
	size_t end = *n, i = end;

	while (i > 0 && isdigit((unsigned char)s[i - 1]))
		i--;
	if (i < end && i >= 2 && s[i - 1] == '/' && s[i - 2] == '/') {
		if (!allow6 || (*c6 = spf_cidr(s + i, end - i, 128)) < 0)
			return -1;
		end = i - 2;
		i = end;
		while (i > 0 && isdigit((unsigned char)s[i - 1]))
			i--;
	}
	if (i < end && i >= 1 && s[i - 1] == '/') {
		if ((*c4 = spf_cidr(s + i, end - i, allow6 ? 32 : 128)) < 0)
			return -1;
		end = i - 1;
	}
	*n = end;
	return 0;
}

static int
spf_parse_term(struct spf_record *rec, const char *t, size_t n,
	       const char **error_r)
{
	struct spf_term term = { .qual = SPF_PASS, .cidr4 = 32, .cidr6 = 128 };
	size_t name_len = 0;
	const char *arg = NULL;
	size_t arg_len = 0;
	bool has_arg;

	/* modifier: name "=" macro-string; name = ALPHA *(ALPHA/DIGIT/-_.) */
	while (name_len < n && (isalnum((unsigned char)t[name_len]) ||
				strchr("-_.", t[name_len]) != NULL))
		name_len++;
	if (name_len > 0 && name_len < n && t[name_len] == '=' &&
	    isalpha((unsigned char)t[0])) {
		const char *v = t + name_len + 1;
		size_t vl = n - name_len - 1;
		char **slot = NULL;

		if (name_len == 8 && strncasecmp(t, "redirect", 8) == 0)
			slot = &rec->redirect;
		else if (name_len == 3 && strncasecmp(t, "exp", 3) == 0)
			slot = &rec->exp;
		if (slot == NULL) {
			if (!spf_macro_valid(v, vl, false)) {
				*error_r = "bad macro in a modifier";
				return -1;
			}
			return 0; /* 6: unknown modifiers are ignored */
		}
		/* 6: redirect and exp at most once each */
		if (*slot != NULL) {
			*error_r = "repeated redirect= or exp=";
			return -1;
		}
		if (!spf_domain_spec_valid(v, vl)) {
			*error_r = "bad domain-spec in a modifier";
			return -1;
		}
		*slot = ts_xstrndup(v, vl);
		return 0;
	}

	term.text = NULL;
	switch (*t) {
	case '+':
		term.qual = SPF_PASS;
		t++;
		n--;
		break;
	case '-':
		term.qual = SPF_FAIL;
		t++;
		n--;
		break;
	case '~':
		term.qual = SPF_SOFTFAIL;
		t++;
		n--;
		break;
	case '?':
		term.qual = SPF_NEUTRAL;
		t++;
		n--;
		break;
	}
	name_len = 0;
	while (name_len < n && isalnum((unsigned char)t[name_len]))
		name_len++;
	has_arg = name_len < n;
	if (has_arg) {
		if (t[name_len] == ':') {
			arg = t + name_len + 1;
			arg_len = n - name_len - 1;
		} else if (t[name_len] == '/') {
			arg = t + name_len;
			arg_len = n - name_len;
		} else {
			*error_r = "unknown mechanism";
			return -1;
		}
	}
#define IS(w) (name_len == strlen(w) && strncasecmp(t, w, name_len) == 0)
	if (IS("all")) {
		term.mech = SPF_M_ALL;
		if (has_arg)
			goto bad;
	} else if (IS("include") || IS("exists")) {
		term.mech = IS("include") ? SPF_M_INCLUDE : SPF_M_EXISTS;
		if (!has_arg || arg[-1] != ':' ||
		    !spf_domain_spec_valid(arg, arg_len))
			goto bad;
		term.spec = ts_xstrndup(arg, arg_len);
	} else if (IS("a") || IS("mx") || IS("ptr")) {
		term.mech = IS("a") ? SPF_M_A : IS("mx") ? SPF_M_MX : SPF_M_PTR;
		if (has_arg) {
			bool colon = arg[-1] == ':';

			if (term.mech != SPF_M_PTR &&
			    spf_dual_cidr(arg, &arg_len, &term.cidr4,
					  &term.cidr6, true) < 0)
				goto bad;
			if (colon) {
				if (!spf_domain_spec_valid(arg, arg_len))
					goto bad;
				term.spec = ts_xstrndup(arg, arg_len);
			} else if (arg_len != 0) {
				goto bad;
			}
		}
	} else if (IS("ip4") || IS("ip6")) {
		char addr[64];
		int *len_r = IS("ip4") ? &term.cidr4 : &term.cidr6;
		int dummy = -1;

		term.mech = IS("ip4") ? SPF_M_IP4 : SPF_M_IP6;
		if (!has_arg || arg[-1] != ':')
			goto bad;
		if (term.mech == SPF_M_IP4) {
			if (spf_dual_cidr(arg, &arg_len, len_r, &dummy, true) <
				    0 ||
			    dummy != -1)
				goto bad;
		} else {
			int c = 128;

			if (spf_dual_cidr(arg, &arg_len, &c, &dummy, false) <
				    0 ||
			    dummy != -1)
				goto bad;
			*len_r = c;
		}
		if (arg_len == 0 || arg_len >= sizeof(addr))
			goto bad;
		memcpy(addr, arg, arg_len);
		addr[arg_len] = '\0';
		if (inet_pton(term.mech == SPF_M_IP4 ? AF_INET : AF_INET6, addr,
			      term.net) != 1)
			goto bad;
	} else {
		*error_r = "unknown mechanism";
		return -1;
	}
#undef IS
	rec->terms =
		ts_xrealloc(rec->terms, (rec->count + 1) * sizeof(*rec->terms));
	rec->terms[rec->count++] = term;
	return 0;
bad:
	free(term.spec);
	*error_r = "bad mechanism argument";
	return -1;
}

int
spf_record_parse(const char *text, size_t len, struct spf_record **rec_r,
		 const char **error_r)
{
	struct spf_record *rec;

	if (!spf_is_record(text, len)) {
		*error_r = "not an SPF record";
		return -1;
	}
	rec = ts_xcalloc(1, sizeof(*rec));
	for (size_t i = 6; i < len;) {
		size_t start, before;

		while (i < len && text[i] == ' ')
			i++;
		start = i;
		while (i < len && text[i] != ' ') {
			unsigned char c = (unsigned char)text[i];

			if (c < 0x21 || c > 0x7e) {
				*error_r = "bad character in the record";
				spf_record_free(&rec);
				return -1;
			}
			i++;
		}
		if (i == start)
			break;
		before = rec->count;
		if (spf_parse_term(rec, text + start, i - start, error_r) < 0) {
			spf_record_free(&rec);
			return -1;
		}
		if (rec->count > before)
			rec->terms[before].text =
				ts_xstrndup(text + start, i - start);
	}
	*rec_r = rec;
	return 0;
}
