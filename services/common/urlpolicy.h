/* urlpolicy.h — which protocols a libcurl client may use for a URL, so a token or a
 * signed payload never travels in clear: HTTPS only, plain HTTP only to a loopback
 * host (127.0.0.0/8, [::1], localhost: the test emulators and receivers) or when the
 * caller has an explicit insecure flag. Every libcurl client of formpipe sets the
 * answer as CURLOPT_PROTOCOLS_STR and CURLOPT_REDIR_PROTOCOLS_STR, so libcurl itself
 * refuses anything else (also on a redirect). Pure string work: no libcurl here. */
#ifndef FP_URLPOLICY_H
#define FP_URLPOLICY_H

/* "http,https" when url is http:// to a loopback host or allow_http is set, else
 * "https" (libcurl then refuses an http:// URL with CURLE_UNSUPPORTED_PROTOCOL). */
const char *fp_urlpolicy_protocols(const char *url, int allow_http);

/* 1 when url's host is loopback (the authority after any userinfo). */
int fp_urlpolicy_loopback(const char *url);

#endif
