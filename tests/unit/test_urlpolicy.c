/* Unit tests for services/common/urlpolicy: HTTPS only, plain HTTP only to loopback
 * hosts or with an explicit flag (#16). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "urlpolicy.h"

struct url_case { const char *url; int allow_http; const char *want; };
static struct url_case cases[] = {
    {"https://sheets.googleapis.com/v4", 0, "https"},
    {"http://sheets.googleapis.com/v4", 0, "https"},                 /* libcurl refuses it */
    {"http://127.0.0.1:29080/token", 0, "http,https"},
    {"http://127.9.9.9/", 0, "http,https"},
    {"http://localhost:8080/x", 0, "http,https"},
    {"HTTP://LOCALHOST/x", 0, "http,https"},
    {"http://[::1]:9000/x", 0, "http,https"},
    {"http://[::2]:9000/x", 0, "https"},
    {"http://127.0.0.1@evil.example.com/", 0, "https"},              /* userinfo is not the host */
    {"http://user:pw@127.0.0.1/", 0, "http,https"},
    {"http://127.0.0.1.evil.example.com/", 0, "https"},
    {"http://128.0.0.1/", 0, "https"},
    {"http://hooks.example.com/", 1, "http,https"},                  /* the explicit insecure flag */
    {"ftp://127.0.0.1/", 0, "https"},
    {"127.0.0.1/x", 0, "https"},
};

ParameterizedTestParameters(urlpolicy, protocols)
{
    return cr_make_param_array(struct url_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct url_case *c, urlpolicy, protocols)
{
    cr_assert_str_eq(fp_urlpolicy_protocols(c->url, c->allow_http), c->want, "%s (allow_http %d)", c->url, c->allow_http);
}
