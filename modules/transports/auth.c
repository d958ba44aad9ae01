/*
 * modules/transports/auth.c — AUTH to a relay (RFC 4954): the kernel's SASL
 * client behind the client machine's callbacks, choosing the strongest
 * mechanism offered (or the configured one), with channel binding under
 * TLS.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "direct.h"

/* --- AUTH: the SASL client behind the client machine's callbacks ------- */

int
tr_auth_begin(void *arg, const char *offered, bool tls_on, char **command_r,
	      const char **why_r)
{
	struct tr_attempt *a = arg;
	struct tr_session *s = a->s;
	if (s == NULL || a->conn == NULL) {
		*why_r = "delivery cancelled";
		return TS_E_STATE;
	}
	uint8_t cb[128];
	size_t cb_len = sizeof(cb);
	const char *cb_type = NULL;
	if (ts_conn_tls_best_channel_binding(a->conn, &cb_type, cb,
					     &cb_len) != 0)
		cb_type = NULL;
	const char *mech = s->mechanism;
	if (mech == NULL)
		mech = ts_sasl_client_choose(offered, tls_on, cb_type != NULL,
					     false);
	if (mech == NULL) {
		*why_r = offered[0] == '\0'
				 ? "the relay offers no AUTH"
				 : "no usable mechanism among those the "
				   "relay offers";
		return TS_E_INVAL;
	}
	/* Binding data for a plain SCRAM only when -PLUS was not offered
	 * (else our "y" reads as a downgrade). */
	bool plus = strstr(mech, "-PLUS") != NULL;
	char *plus_name = ts_xasprintf("%s-PLUS", mech);
	bool offered_plus = !plus && strncmp(mech, "SCRAM", 5) == 0 &&
			    strcasestr(offered, plus_name) != NULL;
	free(plus_name);
	struct ts_sasl_client_opts o = {
		.mechanism = mech,
		.username = s->username,
		.password = s->password,
		.tls_active = tls_on,
		.cb_type = offered_plus ? NULL : cb_type,
		.cb_data = cb,
		.cb_len = cb_len,
	};
	ts_sasl_client_free(&a->sasl);
	a->sasl = ts_sasl_client_new(&o, why_r);
	if (a->sasl == NULL)
		return TS_E_INVAL;
	uint8_t *resp;
	size_t len;
	if (ts_sasl_client_step(a->sasl, NULL, 0, &resp, &len) != 0) {
		*why_r = ts_sasl_client_error(a->sasl);
		return TS_E_INVAL;
	}
	if (resp == NULL) {
		*command_r = ts_xasprintf("AUTH %s", mech);
	} else {
		char *b64 =
			len > 0 ? ts_base64_encode(resp, len) : ts_xstrdup("=");
		*command_r = ts_xasprintf("AUTH %s %s", mech, b64);
		memset(b64, 0, strlen(b64));
		free(b64);
		memset(resp, 0, len);
		free(resp);
	}
	free(a->sasl_mech);
	a->sasl_mech = ts_xstrdup(mech);
	return 0;
}

int
tr_auth_step(void *arg, const char *challenge, char **response_r,
	     const char **why_r)
{
	struct tr_attempt *a = arg;
	uint8_t *data, *resp;
	size_t len, rlen;
	if (ts_base64_decode(challenge, &data, &len) != 0) {
		*why_r = "challenge is not base64";
		return TS_E_INVAL;
	}
	int rc = ts_sasl_client_step(a->sasl, data, len, &resp, &rlen);
	free(data);
	if (rc != 0) {
		*why_r = ts_sasl_client_error(a->sasl);
		return rc;
	}
	*response_r = ts_base64_encode(resp, rlen);
	memset(resp, 0, rlen);
	free(resp);
	return 0;
}

int
tr_auth_success(void *arg, const char **why_r)
{
	struct tr_attempt *a = arg;
	if (a->sasl == NULL || !ts_sasl_client_complete(a->sasl)) {
		*why_r = "exchange incomplete";
		return TS_E_STATE;
	}
	if (a->s != NULL && a->conn != NULL)
		ts_conn_log(a->conn, a->ctx, TS_LOG_INFO,
			    "authenticated to relay id=%s mechanism=%s user=%s",
			    ts_delivery_id(a->s->d), a->sasl_mech,
			    a->s->username);
	ts_sasl_client_free(&a->sasl);
	return 0;
}
