/*
 * modules/dkim/dkim.c — the dkim module's descriptor, settings and init.
 *
 * It declares `[module dkim]` (verify on/off, signing on/off, header list,
 * over-signing, canonicalization, signature lifetime, signature limit)
 * and the `[dkim DOMAIN]` sections that give a signing domain its keys
 * (`keys = SELECTOR:FILE …`, several at once), reads the key files once
 * at start, and registers the two hooks (hooks.c) and `tessera dkim`
 * (genkey.c).  The settings stay as they were at start: the key files
 * are read then, so a reload needs a restart (documented).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tessera/cli.h>
#include <tessera/config.h>
#include <tessera/hook.h>
#include <tessera/log.h>
#include <tessera/module.h>

#include "dkim.h"
#include "module.h"

static const struct ts_cfg_key dkim_keys[] = {
	{ .name = "verify",
	  .type = TS_CFG_BOOL,
	  .default_value = "yes",
	  .doc = "check the DKIM signatures of inbound mail (smtp_data) and "
		 "add the results to Authentication-Results" },
	{ .name = "sign",
	  .type = TS_CFG_BOOL,
	  .default_value = "yes",
	  .doc = "sign submitted mail whose From domain has a [dkim DOMAIN] "
		 "section" },
	{ .name = "max_signatures",
	  .type = TS_CFG_INT,
	  .default_value = "10",
	  .min = 1,
	  .max = 100,
	  .doc = "DKIM-Signature fields checked per message; the rest are "
		 "ignored" },
	{ .name = "headers",
	  .type = TS_CFG_LIST,
	  .default_value = "From Reply-To Subject Date To Cc Message-ID "
			   "In-Reply-To References MIME-Version Content-Type "
			   "Content-Transfer-Encoding List-Id "
			   "List-Unsubscribe",
	  .doc = "header fields signed when present (each occurrence)" },
	{ .name = "oversign",
	  .type = TS_CFG_LIST,
	  .default_value = "From Reply-To Subject Date To Cc Message-ID",
	  .doc = "header fields signed once more than present, so that none "
		 "can be added later" },
	{ .name = "canonicalization",
	  .type = TS_CFG_ENUM,
	  .default_value = "relaxed/relaxed",
	  .choices = "relaxed/relaxed|relaxed/simple|simple/relaxed|"
		     "simple/simple",
	  .doc = "c= of our signatures: header/body" },
	{ .name = "expire",
	  .type = TS_CFG_DURATION,
	  .default_value = "0",
	  .doc = "signature lifetime (x=); 0: no x=" },
	{ .name = NULL },
};

static const struct ts_cfg_key dkim_domain_keys[] = {
	{ .name = "keys",
	  .type = TS_CFG_LIST,
	  .default_value = "",
	  .doc = "SELECTOR:FILE pairs: each private key (PEM, RSA or "
		 "Ed25519) makes one signature" },
	{ .name = NULL },
};

static const struct ts_cfg_section dkim_sections[] = {
	{ .type = "dkim",
	  .named = true,
	  .keys = dkim_domain_keys,
	  .doc = "a signing domain (the From domain of submitted mail)" },
	{ .type = NULL },
};

/* Read a whole (small) file; NULL with errno set. */
static char *
dkim_read_file(const char *path, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	if (st.st_size > 64 * 1024) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	char *buf = ts_xmalloc((size_t)st.st_size + 1);
	size_t n = 0;
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*len_r = n;
	return buf;
}

void
dkim_settings_free(struct dkim_settings *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->domain_count; i++) {
		struct dkim_domain *d = &set->domains[i];
		for (size_t k = 0; k < d->key_count; k++) {
			free(d->keys[k].selector);
			free(d->keys[k].pem);
		}
		free(d->keys);
		free(d->name);
	}
	free(set->domains);
	for (size_t i = 0; i < set->header_count; i++)
		free(set->headers[i]);
	free(set->headers);
	for (size_t i = 0; i < set->oversign_count; i++)
		free(set->oversign[i]);
	free(set->oversign);
	free(set);
}

/*
 * One `keys` item: "selector:file".  Loads the key into *key when key is
 * not NULL.  Returns 0 or TS_E_INVAL with a reason in err.
 */
static int
dkim_key_item(const char *item, struct dkim_sign_key *key, char *err,
	      size_t errlen)
{
	const char *colon = strchr(item, ':');
	if (colon == NULL || colon == item || colon[1] == '\0') {
		snprintf(err, errlen, "'%s' is not SELECTOR:FILE", item);
		return TS_E_INVAL;
	}
	char *sel = ts_xstrndup(item, (size_t)(colon - item));
	for (const char *p = sel; *p != '\0'; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') ||
			  (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
			  *p == '.';
		if (!ok) {
			snprintf(err, errlen, "bad selector '%s'", sel);
			free(sel);
			return TS_E_INVAL;
		}
	}
	size_t len;
	char *pem = dkim_read_file(colon + 1, &len);
	if (pem == NULL) {
		snprintf(err, errlen, "%s: %s", colon + 1, strerror(errno));
		free(sel);
		return TS_E_INVAL;
	}
	enum dkim_key_type type;
	char why[96];
	if (dkim_pem_key_type(pem, len, &type, NULL, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", colon + 1, why);
		free(sel);
		free(pem);
		return TS_E_INVAL;
	}
	if (key == NULL) {
		free(sel);
		free(pem);
		return 0;
	}
	key->selector = sel;
	key->pem = pem;
	key->pem_len = len;
	return 0;
}

static struct dkim_settings *
dkim_settings_new(const struct ts_cfg *cfg, const struct ts_ctx *ctx)
{
	const struct ts_cfg_sect *s = ts_cfg_module_section(cfg, ctx);
	struct dkim_settings *set = ts_xcalloc(1, sizeof(*set));
	set->verify = ts_cfg_bool(s, "verify");
	set->sign = ts_cfg_bool(s, "sign");
	set->max_signatures = (size_t)ts_cfg_int(s, "max_signatures");
	set->expire = ts_cfg_duration_ms(s, "expire") / 1000;
	const char *c = ts_cfg_str(s, "canonicalization");
	set->hcanon = strncmp(c, "relaxed", 7) == 0 ? DKIM_CANON_RELAXED
						    : DKIM_CANON_SIMPLE;
	set->bcanon = strcmp(strchr(c, '/') + 1, "relaxed") == 0
			      ? DKIM_CANON_RELAXED
			      : DKIM_CANON_SIMPLE;
	set->header_count = ts_cfg_list_len(s, "headers");
	set->headers = ts_xcalloc(set->header_count + 1, sizeof(char *));
	for (size_t i = 0; i < set->header_count; i++)
		set->headers[i] = ts_xstrdup(ts_cfg_list_item(s, "headers", i));
	set->oversign_count = ts_cfg_list_len(s, "oversign");
	set->oversign = ts_xcalloc(set->oversign_count + 1, sizeof(char *));
	for (size_t i = 0; i < set->oversign_count; i++)
		set->oversign[i] =
			ts_xstrdup(ts_cfg_list_item(s, "oversign", i));
	for (const struct ts_cfg_sect *d = ts_cfg_next(cfg, "dkim", NULL);
	     d != NULL; d = ts_cfg_next(cfg, "dkim", d)) {
		set->domains = ts_xrealloc(set->domains,
					   (set->domain_count + 1) *
						   sizeof(*set->domains));
		struct dkim_domain *dom = &set->domains[set->domain_count++];
		memset(dom, 0, sizeof(*dom));
		dom->name = ts_xstrdup(ts_cfg_sect_name(d));
		size_t n = ts_cfg_list_len(d, "keys");
		dom->keys = ts_xcalloc(n + 1, sizeof(*dom->keys));
		for (size_t k = 0; k < n; k++) {
			char err[256];
			if (dkim_key_item(ts_cfg_list_item(d, "keys", k),
					  &dom->keys[dom->key_count], err,
					  sizeof(err)) == 0)
				dom->key_count++;
			else
				ts_log(ctx, TS_LOG_ERROR, "[dkim %s]: %s",
				       dom->name, err);
		}
	}
	return set;
}

static int
dkim_check(struct ts_ctx *ctx, struct ts_cfg *cfg)
{
	(void)ctx;
	int rc = 0;
	for (const struct ts_cfg_sect *d = ts_cfg_next(cfg, "dkim", NULL);
	     d != NULL; d = ts_cfg_next(cfg, "dkim", d)) {
		size_t n = ts_cfg_list_len(d, "keys");
		if (n == 0)
			rc = ts_cfg_error(cfg, d, NULL, "[dkim %s] has no keys",
					  ts_cfg_sect_name(d));
		for (size_t k = 0; k < n; k++) {
			char err[256];
			if (dkim_key_item(ts_cfg_list_item(d, "keys", k), NULL,
					  err, sizeof(err)) < 0)
				rc = ts_cfg_error(cfg, d, "keys", "%s", err);
		}
	}
	return rc;
}

struct dkim_settings *
dkim_settings(const struct ts_ctx *ctx)
{
	return ts_ctx_data(ctx);
}

static int
dkim_init(struct ts_ctx *ctx, const struct ts_cfg *cfg)
{
	ts_ctx_set_data(ctx, dkim_settings_new(cfg, ctx));
	int rc = ts_hook_add(ctx, TS_HOOK_SMTP_DATA, dkim_verify_hook, 0,
			     TS_HOOK_PARALLEL);
	if (rc == 0)
		rc = ts_hook_add(ctx, TS_HOOK_SUBMIT_MESSAGE, dkim_sign_hook,
				 50, 0);
	if (rc == 0)
		rc = ts_cli_add(ctx, "dkim", "DKIM keys: genkey",
				"genkey ed25519|rsa [BITS] FILE", dkim_cli);
	return rc;
}

static void
dkim_shutdown(struct ts_ctx *ctx)
{
	dkim_settings_free(ts_ctx_data(ctx));
	ts_ctx_set_data(ctx, NULL);
}

TS_MODULE(dkim) = {
	TS_MODULE_HEADER,
	.name = "dkim",
	.version = "0.1",
	.description = "DKIM: verify inbound signatures, sign submissions",
	.config_keys = dkim_keys,
	.config_sections = dkim_sections,
	.init = dkim_init,
	.check = dkim_check,
	.shutdown = dkim_shutdown,
};
