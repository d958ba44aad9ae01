/*
 * kernel/store/accounts.c — domains, accounts and addresses from the
 * configuration, and the address lookup every recipient goes through.
 *
 * [domain NAME] sections say which domains are local and how their
 * localparts compare (a subaddress separator such as '+', case
 * sensitivity); [account NAME] sections list each account's addresses
 * (`@domain` for the domain's catchall), its destination mailbox and
 * whether it is the postmaster.  ts__accounts_check reports bad entries
 * with file:line; ts__accounts_apply turns a configuration into sorted
 * tables, so a lookup is a few binary searches whatever the number of
 * addresses.
 *
 * Addresses are normalised the same way when the tables are built and
 * when one is looked up: the domain lower-cased (a U-label domain turned
 * into its A-label with libidn2), a quoted localpart unquoted, the
 * localpart lower-cased (ASCII letters only) unless its domain is
 * case-sensitive.  This file does not touch disk: stores and credentials
 * are elsewhere (store.c, credentials.c).
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <idn2.h>

#include "kernel/store/accounts.h"
#include "kernel/store/store-private.h"

const struct ts_cfg_key ts__domain_keys[] = {
	{ .name = "localpart_separator",
	  .type = TS_CFG_STRING,
	  .default_value = "",
	  .doc = "character that starts a subaddress (local+detail@domain); "
		 "empty: none" },
	{ .name = "localpart_case_sensitive",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "compare localparts case-sensitively (Alice@ is not "
		 "alice@)" },
	{ .name = NULL },
};

const struct ts_cfg_key ts__account_keys[] = {
	{ .name = "addresses",
	  .type = TS_CFG_LIST,
	  .doc = "addresses delivered to this account; @domain is the "
		 "domain's catchall" },
	{ .name = "postmaster",
	  .type = TS_CFG_BOOL,
	  .default_value = "no",
	  .doc = "receive postmaster@ every local domain and @[core] hostname "
		 "(default: the first account)" },
	{ .name = "destination",
	  .type = TS_CFG_STRING,
	  .default_value = "Inbox",
	  .doc = "mailbox that mail to these addresses is delivered to" },
	{ .name = NULL },
};

/* Longest localpart and domain accepted (RFC 5321 says 64 and 255). */
#define ACCOUNTS_MAX_LOCAL 256
#define ACCOUNTS_MAX_DOMAIN 253

struct accounts_domain {
	char *name; /* lower-case A-label */
	char separator; /* '\0': none */
	bool case_sensitive;
	long catchall; /* account index, -1: none */
	char *catchall_canonical; /* "@name" */
	char *postmaster; /* "postmaster@name" */
	const struct ts_cfg_sect *sect; /* while building only */
};

struct accounts_account {
	char *name;
	char *mailbox;
};

struct accounts_address {
	char *key; /* normalised "localpart@domain" */
	size_t account;
	size_t order; /* position in the configuration */
	const struct ts_cfg_sect *sect; /* while building only */
};

struct ts__accounts {
	struct accounts_domain *domains; /* sorted by name */
	size_t domain_count;
	struct accounts_account *accounts; /* configuration order */
	size_t account_count;
	struct accounts_account **by_name; /* sorted by name */
	struct accounts_address *addresses; /* sorted by key, unique */
	size_t address_count;
	long postmaster; /* account index, -1: no accounts */
	char *hostname; /* lower case, no trailing dot */
	char *host_postmaster; /* "postmaster@hostname" */
};

/* --- normalising --------------------------------------------------------- */

static void
accounts_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
static bool
accounts_utf8_ok(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n >= len)
			return false;
		for (size_t j = 1; j <= n; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* Whether an ASCII domain (already lower-cased) has the shape of one. */
static bool
accounts_domain_shape_ok(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > ACCOUNTS_MAX_DOMAIN)
		return false;
	for (const char *p = d;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-' ||
			    p[-(ptrdiff_t)label] == '-')
				return false;
			if (*p == '\0')
				return true;
			label = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-'))
			return false;
		label++;
	}
}

/*
 * Normalise a domain (len bytes): one trailing dot dropped, lower-cased,
 * a U-label name converted to its A-label (IDNA2008 with UTS #46
 * mapping).  Returns 0 with *out_r (caller frees), TS_E_NOTFOUND for an
 * address literal ([192.0.2.1]), which is never local, or TS_E_INVAL.
 */
static int
accounts_domain_norm(const char *in, size_t len, char **out_r)
{
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > 1024 || memchr(in, '\0', len) != NULL)
		return TS_E_INVAL;
	if (in[0] == '[' && in[len - 1] == ']')
		return TS_E_NOTFOUND;

	bool ascii = true;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)in[i] >= 0x80)
			ascii = false;
	char *d = ts_xstrndup(in, len);
	if (!ascii) {
		char *alabel = NULL;
		if (!accounts_utf8_ok((const unsigned char *)d, len) ||
		    idn2_to_ascii_8z(d, &alabel,
				     IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) !=
			    IDN2_OK) {
			free(d);
			return TS_E_INVAL;
		}
		free(d);
		d = ts_xstrdup(alabel);
		idn2_free(alabel);
	}
	accounts_lower(d);
	if (!accounts_domain_shape_ok(d)) {
		free(d);
		return TS_E_INVAL;
	}
	*out_r = d;
	return 0;
}

/*
 * Normalise a localpart (len bytes) to the text compared: a quoted string
 * ("a b") loses its quotes and backslashes; an unquoted one must be an
 * atom (RFC 5322 atext and dots, plus UTF-8 per RFC 6531).  Case is left
 * alone (the domain decides).  Returns 0 with *out_r or TS_E_INVAL.
 */
static int
accounts_local_norm(const char *in, size_t len, char **out_r)
{
	if (len == 0 || len > ACCOUNTS_MAX_LOCAL + 2)
		return TS_E_INVAL;
	char *out = ts_xmalloc(len + 1);
	size_t n = 0;

	if (in[0] == '"') {
		if (len < 3 || in[len - 1] != '"')
			goto bad;
		for (size_t i = 1; i < len - 1; i++) {
			unsigned char c = (unsigned char)in[i];
			if (c == '\\') {
				if (++i >= len - 1)
					goto bad; /* escapes the last quote */
				c = (unsigned char)in[i];
			} else if (c == '"') {
				goto bad;
			}
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				goto bad;
			out[n++] = (char)c;
		}
	} else {
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)in[i];
			if (c <= 0x20 || c == 0x7f ||
			    (c < 0x80 && strchr("()<>[]:;@\\,\"", c) != NULL))
				goto bad;
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	if (n == 0 || n > ACCOUNTS_MAX_LOCAL ||
	    !accounts_utf8_ok((const unsigned char *)out, n))
		goto bad;
	*out_r = out;
	return 0;
bad:
	free(out);
	return TS_E_INVAL;
}

/*
 * Split localpart@domain at the last '@' and normalise both halves.
 * Returns 0, TS_E_INVAL (does not parse) or TS_E_NOTFOUND (a domain
 * literal).
 */
static int
accounts_split(const char *address, char **local_r, char **domain_r)
{
	const char *at = strrchr(address, '@');

	if (at == NULL || at == address)
		return TS_E_INVAL;
	int rc = accounts_domain_norm(at + 1, strlen(at + 1), domain_r);
	if (rc != 0)
		return rc;
	rc = accounts_local_norm(address, (size_t)(at - address), local_r);
	if (rc != 0) {
		free(*domain_r);
		return rc;
	}
	return 0;
}

bool
ts__account_name_ok(const char *name)
{
	if (name == NULL || name[0] == '\0' || name[0] == '.' ||
	    strlen(name) > 64)
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

/* --- building the tables ------------------------------------------------- */

static int
accounts_domain_cmp(const void *a, const void *b)
{
	return strcmp(((const struct accounts_domain *)a)->name,
		      ((const struct accounts_domain *)b)->name);
}

static int
accounts_address_cmp(const void *a, const void *b)
{
	const struct accounts_address *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int
accounts_by_name_cmp(const void *a, const void *b)
{
	return strcmp((*(struct accounts_account *const *)a)->name,
		      (*(struct accounts_account *const *)b)->name);
}

static struct accounts_domain *
accounts_domain_find(const struct ts__accounts *a, const char *name)
{
	struct accounts_domain key = { .name = (char *)name };

	if (a->domain_count == 0)
		return NULL;
	return bsearch(&key, a->domains, a->domain_count, sizeof(key),
		       accounts_domain_cmp);
}

static void
accounts_table_free(struct ts__accounts *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->domain_count; i++) {
		free(a->domains[i].name);
		free(a->domains[i].catchall_canonical);
		free(a->domains[i].postmaster);
	}
	free(a->domains);
	for (size_t i = 0; i < a->account_count; i++) {
		free(a->accounts[i].name);
		free(a->accounts[i].mailbox);
	}
	free(a->accounts);
	free(a->by_name);
	for (size_t i = 0; i < a->address_count; i++)
		free(a->addresses[i].key);
	free(a->addresses);
	free(a->hostname);
	free(a->host_postmaster);
	free(a);
}

/* This host's name as postmaster@ knows it: [core] hostname or the OS's. */
static char *
accounts_hostname(const struct ts_cfg *cfg)
{
	const struct ts_cfg_sect *core = ts_cfg_find(cfg, "core", NULL);
	const char *name = NULL;
	char buf[256];
	size_t len = sizeof(buf);

	if (core != NULL && core->bound)
		name = ts_cfg_str(core, "hostname");
	if (name == NULL || *name == '\0')
		name = uv_os_gethostname(buf, &len) == 0 ? buf : "localhost";
	char *norm;
	if (accounts_domain_norm(name, strlen(name), &norm) == 0)
		return norm;
	norm = ts_xstrdup(name);
	accounts_lower(norm);
	return norm;
}

/* Read the [domain] sections into a->domains (sorted). */
static void
accounts_build_domains(struct ts_cfg *cfg, bool report, struct ts__accounts *a)
{
	for (size_t i = 0; i < cfg->sect_count; i++) {
		const struct ts_cfg_sect *s = cfg->sects[i];
		if (strcmp(s->type, "domain") != 0 || !s->bound ||
		    s->name == NULL)
			continue;
		char *name;
		if (accounts_domain_norm(s->name, strlen(s->name), &name) !=
		    0) {
			if (report)
				ts_cfg_error(cfg, s, NULL,
					     "[domain %s]: not a valid domain "
					     "name",
					     s->name);
			continue;
		}
		const char *sep = ts_cfg_str(s, "localpart_separator");
		char sepc = sep != NULL ? sep[0] : '\0';
		if (sep != NULL && strlen(sep) > 1) {
			if (report)
				ts_cfg_error(cfg, s, "localpart_separator",
					     "localpart_separator '%s' is "
					     "longer than one character",
					     sep);
			sepc = '\0';
		} else if (sepc != '\0' && (isalnum((unsigned char)sepc) ||
					    (unsigned char)sepc <= 0x20 ||
					    (unsigned char)sepc >= 0x7f ||
					    strchr("@\"\\", sepc) != NULL)) {
			if (report)
				ts_cfg_error(cfg, s, "localpart_separator",
					     "localpart_separator '%s' must be "
					     "a punctuation character such as "
					     "'+' or '-'",
					     sep);
			sepc = '\0';
		}
		/* Two sections naming one domain ([domain A.org], a.org). */
		bool dup = false;
		for (size_t j = 0; j < a->domain_count; j++) {
			if (strcmp(a->domains[j].name, name) != 0)
				continue;
			if (report)
				ts_cfg_error(
					cfg, s, NULL,
					"domain %s is configured twice: "
					"[domain %s] and [domain %s] "
					"(%s)",
					name, s->name, a->domains[j].sect->name,
					ts_cfg_where(a->domains[j].sect, NULL));
			dup = true;
		}
		if (dup) {
			free(name);
			continue;
		}
		a->domains = ts_xrealloc(a->domains, (a->domain_count +
						      1) * sizeof(*a->domains));
		a->domains[a->domain_count++] = (struct accounts_domain){
			.name = name,
			.separator = sepc,
			.case_sensitive =
				ts_cfg_bool(s, "localpart_case_sensitive"),
			.catchall = -1,
			.catchall_canonical = ts_xasprintf("@%s", name),
			.postmaster = ts_xasprintf("postmaster@%s", name),
			.sect = s,
		};
	}
	if (a->domain_count > 1)
		qsort(a->domains, a->domain_count, sizeof(*a->domains),
		      accounts_domain_cmp);
}

/* One item of an account's `addresses`: an address or @domain. */
static void
accounts_build_address(struct ts_cfg *cfg, bool report, struct ts__accounts *a,
		       const struct ts_cfg_sect *s, size_t account,
		       const char *item, size_t *order)
{
	const char *account_name = s->name;
	char *local = NULL, *domain = NULL;
	int rc;

	if (item[0] == '@')
		rc = accounts_domain_norm(item + 1, strlen(item + 1), &domain);
	else
		rc = accounts_split(item, &local, &domain);
	if (rc != 0) {
		if (report)
			ts_cfg_error(cfg, s, "addresses",
				     "address '%s': expected localpart@domain, "
				     "or @domain for the domain's catchall",
				     item);
		return;
	}
	struct accounts_domain *d = accounts_domain_find(a, domain);
	if (d == NULL) {
		if (report)
			ts_cfg_error(cfg, s, "addresses",
				     "address %s: domain %s is not configured "
				     "([domain %s])",
				     item, domain, domain);
		free(local);
		free(domain);
		return;
	}
	free(domain);
	if (local == NULL) {
		if (d->catchall < 0) {
			d->catchall = (long)account;
		} else if (report) {
			const char *other = a->accounts[d->catchall].name;
			if ((size_t)d->catchall == account)
				ts_cfg_error(cfg, s, "addresses",
					     "catchall @%s is listed twice in "
					     "[account %s]",
					     d->name, account_name);
			else
				ts_cfg_error(cfg, s, "addresses",
					     "catchall @%s is in [account %s] "
					     "and [account %s]",
					     d->name, other, account_name);
		}
		return;
	}
	if (!d->case_sensitive)
		accounts_lower(local);
	a->addresses = ts_xrealloc(a->addresses, (a->address_count + 1) *
							 sizeof(*a->addresses));
	a->addresses[a->address_count++] = (struct accounts_address){
		.key = ts_xasprintf("%s@%s", local, d->name),
		.account = account,
		.order = (*order)++,
		.sect = s,
	};
	free(local);
}

/* Read the [account] sections; addresses need the domains first. */
static void
accounts_build_accounts(struct ts_cfg *cfg, bool report, struct ts__accounts *a)
{
	const struct ts_cfg_sect *postmaster = NULL;
	size_t order = 0;

	/* cfg->sects directly: ts_cfg_next would make this quadratic. */
	for (size_t si = 0; si < cfg->sect_count; si++) {
		const struct ts_cfg_sect *s = cfg->sects[si];
		if (strcmp(s->type, "account") != 0 || !s->bound ||
		    s->name == NULL)
			continue;
		if (!ts__account_name_ok(s->name)) {
			/* Never let such a name near a path: skip it. */
			if (report)
				ts_cfg_error(cfg, s, NULL,
					     "account name '%s': use a-z, 0-9, "
					     "'.', '_' and '-' (at most 64, "
					     "not starting with '.')",
					     s->name);
			continue;
		}
		const char *dest = ts_cfg_str(s, "destination");
		const char *problem = ts__store_mailbox_name_problem(dest);
		if (problem != NULL) {
			if (report)
				ts_cfg_error(cfg, s, "destination",
					     "destination '%s': %s", dest,
					     problem);
			dest = "Inbox";
		}
		size_t index = a->account_count;
		a->accounts = ts_xrealloc(a->accounts,
					  (index + 1) * sizeof(*a->accounts));
		a->accounts[index] = (struct accounts_account){
			.name = ts_xstrdup(s->name),
			.mailbox = ts_xstrdup(dest),
		};
		a->account_count++;

		if (ts_cfg_bool(s, "postmaster")) {
			if (postmaster == NULL) {
				postmaster = s;
				a->postmaster = (long)index;
			} else if (report) {
				ts_cfg_error(
					cfg, s, "postmaster",
					"[account %s] and [account %s] "
					"(%s) both say postmaster = yes; "
					"only one can",
					s->name, postmaster->name,
					ts_cfg_where(postmaster, "postmaster"));
			}
		}
		size_t n = ts_cfg_list_len(s, "addresses");
		for (size_t i = 0; i < n; i++)
			accounts_build_address(
				cfg, report, a, s, index,
				ts_cfg_list_item(s, "addresses", i), &order);
	}
	if (a->postmaster < 0 && a->account_count > 0)
		a->postmaster = 0; /* nobody said yes: the first account */
}

/*
 * Sort the addresses and drop repeats (the first one configured stays),
 * reporting each: an address belongs to one account.
 */
static void
accounts_build_unique(struct ts_cfg *cfg, bool report, struct ts__accounts *a)
{
	if (a->address_count == 0)
		return;
	qsort(a->addresses, a->address_count, sizeof(*a->addresses),
	      accounts_address_cmp);
	size_t kept = 1;
	for (size_t i = 1; i < a->address_count; i++) {
		struct accounts_address *first = &a->addresses[kept - 1];
		struct accounts_address *cur = &a->addresses[i];
		if (strcmp(first->key, cur->key) != 0) {
			a->addresses[kept++] = *cur;
			continue;
		}
		if (report && first->account == cur->account)
			ts_cfg_error(cfg, cur->sect, "addresses",
				     "address %s is listed twice in "
				     "[account %s]",
				     cur->key, a->accounts[cur->account].name);
		else if (report)
			ts_cfg_error(cfg, cur->sect, "addresses",
				     "address %s is in [account %s] and "
				     "[account %s]",
				     cur->key, a->accounts[first->account].name,
				     a->accounts[cur->account].name);
		free(cur->key);
	}
	a->address_count = kept;
}

/*
 * Build the lookup tables of cfg.  With `report`, every problem is a
 * file:line error on cfg; either way bad entries are left out, so the
 * tables of an unchecked configuration are safe to use.
 */
static struct ts__accounts *
accounts_build(struct ts_cfg *cfg, bool report)
{
	struct ts__accounts *a = ts_xcalloc(1, sizeof(*a));

	a->postmaster = -1;
	a->hostname = accounts_hostname(cfg);
	a->host_postmaster = ts_xasprintf("postmaster@%s", a->hostname);
	accounts_build_domains(cfg, report, a);
	accounts_build_accounts(cfg, report, a);
	accounts_build_unique(cfg, report, a);
	a->by_name = ts_xcalloc(a->account_count + 1, sizeof(*a->by_name));
	for (size_t i = 0; i < a->account_count; i++)
		a->by_name[i] = &a->accounts[i];
	if (a->account_count > 1)
		qsort(a->by_name, a->account_count, sizeof(*a->by_name),
		      accounts_by_name_cmp);
	return a;
}

int
ts__accounts_check(struct ts_cfg *cfg)
{
	size_t before = cfg->error_count;

	accounts_table_free(accounts_build(cfg, true));
	return cfg->error_count > before ? TS_E_INVAL : 0;
}

int
ts__accounts_apply(struct ts_kernel *k, const struct ts_cfg *cfg)
{
	/* Without `report` nothing is written to cfg. */
	struct ts__accounts *a = accounts_build((struct ts_cfg *)cfg, false);

	ts__accounts_free(k);
	k->accounts = a;
	return 0;
}

void
ts__accounts_free(struct ts_kernel *k)
{
	accounts_table_free(k->accounts);
	k->accounts = NULL;
}

/* --- lookups ------------------------------------------------------------- */

static const struct accounts_address *
accounts_address_find(const struct ts__accounts *a, const char *local,
		      size_t local_len, const char *domain)
{
	char *key = ts_xasprintf("%.*s@%s", (int)local_len, local, domain);
	const struct accounts_address *found = NULL;
	size_t lo = 0, hi = a->address_count;

	/* bsearch, without the order tie-break of accounts_address_cmp. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, a->addresses[mid].key);
		if (c == 0) {
			found = &a->addresses[mid];
			break;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	free(key);
	return found;
}

static bool
accounts_is_postmaster(const char *local, size_t len)
{
	return len == 10 && strncasecmp(local, "postmaster", 10) == 0;
}

static void
accounts_match(const struct ts__accounts *a, size_t account,
	       const char *canonical, enum ts_address_kind kind,
	       struct ts_address_match *m)
{
	m->account = a->accounts[account].name;
	m->mailbox = a->accounts[account].mailbox;
	m->canonical = canonical;
	m->kind = kind;
}

int
ts_address_lookup(const struct ts_ctx *ctx, const char *address,
		  struct ts_address_match *match_r)
{
	const struct ts__accounts *a = ctx->kernel->accounts;
	char *local, *domain;

	if (address == NULL)
		return TS_E_INVAL;
	int rc = accounts_split(address, &local, &domain);
	if (rc != 0)
		return rc;
	rc = TS_E_NOTFOUND;
	if (a == NULL)
		goto out;

	const struct accounts_domain *d = accounts_domain_find(a, domain);
	size_t len = strlen(local);
	if (d == NULL) {
		/* postmaster@[core] hostname, even if not a mail domain. */
		if (strcmp(domain, a->hostname) == 0 && a->postmaster >= 0 &&
		    accounts_is_postmaster(local, len)) {
			accounts_match(a, (size_t)a->postmaster,
				       a->host_postmaster,
				       TS_ADDRESS_POSTMASTER, match_r);
			rc = 0;
		}
		goto out;
	}
	if (!d->case_sensitive)
		accounts_lower(local);

	const struct accounts_address *hit =
		accounts_address_find(a, local, len, d->name);
	if (hit != NULL) {
		accounts_match(a, hit->account, hit->key, TS_ADDRESS_EXACT,
			       match_r);
		rc = 0;
		goto out;
	}
	size_t base_len = len;
	if (d->separator != '\0') {
		const char *sep = strchr(local, d->separator);
		if (sep != NULL && sep > local) {
			base_len = (size_t)(sep - local);
			hit = accounts_address_find(a, local, base_len,
						    d->name);
		}
	}
	if (hit != NULL) {
		accounts_match(a, hit->account, hit->key, TS_ADDRESS_SUBADDRESS,
			       match_r);
		rc = 0;
	} else if (a->postmaster >= 0 &&
		   (accounts_is_postmaster(local, len) ||
		    accounts_is_postmaster(local, base_len))) {
		accounts_match(a, (size_t)a->postmaster, d->postmaster,
			       TS_ADDRESS_POSTMASTER, match_r);
		rc = 0;
	} else if (d->catchall >= 0) {
		accounts_match(a, (size_t)d->catchall, d->catchall_canonical,
			       TS_ADDRESS_CATCHALL, match_r);
		rc = 0;
	}
out:
	free(local);
	free(domain);
	return rc;
}

bool
ts_domain_is_local(const struct ts_ctx *ctx, const char *domain)
{
	const struct ts__accounts *a = ctx->kernel->accounts;
	char *norm;

	if (a == NULL || domain == NULL ||
	    accounts_domain_norm(domain, strlen(domain), &norm) != 0)
		return false;
	/* The host name is local for its postmaster@ (and nothing else). */
	bool local = accounts_domain_find(a, norm) != NULL ||
		     (a->postmaster >= 0 && strcmp(norm, a->hostname) == 0);
	free(norm);
	return local;
}

const char *
ts_account_name(const struct ts_ctx *ctx, size_t index)
{
	const struct ts__accounts *a = ctx->kernel->accounts;

	if (a == NULL || index >= a->account_count)
		return NULL;
	return a->accounts[index].name;
}

bool
ts__account_exists(const struct ts_kernel *k, const char *name)
{
	const struct ts__accounts *a = k->accounts;
	struct accounts_account key = { .name = (char *)name };
	struct accounts_account *keyp = &key;

	if (a == NULL || name == NULL || a->account_count == 0)
		return false;
	return bsearch(&keyp, a->by_name, a->account_count, sizeof(*a->by_name),
		       accounts_by_name_cmp) != NULL;
}

bool
ts__account_is_postmaster(const struct ts_kernel *k, const char *name)
{
	const struct ts__accounts *a = k->accounts;

	return a != NULL && a->postmaster >= 0 &&
	       strcmp(a->accounts[a->postmaster].name, name) == 0;
}
