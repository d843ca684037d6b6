/* Unit tests for formpipe-ingest's abuse guards: trusted-proxy CIDRs and the client an
 * X-Forwarded-For names (netaddr), IPv6 clients keyed by /64, connections per client
 * (connlimit), submission tokens (token) and the page's honeypot, token and CSP. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "connlimit.h"
#include "netaddr.h"
#include "page.h"
#include "token.h"

struct cidr_case { const char *cidr, *addr; int inside; };
static struct cidr_case cidr_cases[] = {
    {"10.0.0.0/8", "10.255.1.2", 1},
    {"10.0.0.0/8", "11.0.0.1", 0},
    {"10.244.0.0/16", "::ffff:10.244.3.4", 1},   /* IPv4-mapped counts as IPv4 */
    {"192.168.1.7", "192.168.1.7", 1},           /* a plain address is a /32 */
    {"192.168.1.7", "192.168.1.8", 0},
    {"172.16.0.0/12", "172.31.255.255", 1},
    {"172.16.0.0/12", "172.32.0.0", 0},
    {"fd00::/8", "fd12:3456::1", 1},
    {"fd00::/8", "fe80::1", 0},
    {"2001:db8::/32", "10.0.0.1", 0},            /* families never mix */
    {"10.0.0.0/8", "2001:db8::1", 0},
    {"::1", "::1", 1},
    {"0.0.0.0/0", "203.0.113.9", 1},
    {"10.0.0.0/8", "not-an-address", 0},
};

ParameterizedTestParameters(netaddr, cidrs)
{
    return cr_make_param_array(struct cidr_case, cidr_cases, sizeof cidr_cases / sizeof cidr_cases[0]);
}

ParameterizedTest(struct cidr_case *c, netaddr, cidrs)
{
    char *items[] = {(char *)c->cidr};
    fp_strlist l = {items, 1};
    fp_cidrs cs;
    fp_error err = {0};
    cr_assert_eq(fp_cidrs_parse(&l, &cs, &err), 0, "%s: %s", c->cidr, err.msg);
    cr_assert_eq(fp_cidrs_contain(&cs, c->addr), c->inside, "%s in %s", c->addr, c->cidr);
    fp_cidrs_free(&cs);
}

struct bad_case { const char *cidr, *msg; };
static struct bad_case bad_cases[] = {
    {"10.0.0.1/8", "host bits"},
    {"10.0.0.0/33", "prefix length"},
    {"fd00::/129", "prefix length"},
    {"10.0.0.0/", "prefix length"},
    {"10.0.0.0/8x", "prefix length"},
    {"ingress-nginx", "not an address"},
    {"", "not an address"},
};

ParameterizedTestParameters(netaddr, bad_cidrs)
{
    return cr_make_param_array(struct bad_case, bad_cases, sizeof bad_cases / sizeof bad_cases[0]);
}

ParameterizedTest(struct bad_case *c, netaddr, bad_cidrs)
{
    fp_cidr out;
    fp_error err = {0};
    cr_assert_eq(fp_cidr_parse(c->cidr, &out, &err), FP_EINVAL, "%s is refused", c->cidr);
    cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
}

struct client_case { const char *peer, *xff, *want; };
static struct client_case client_cases[] = {
    /* trusted: 10.0.0.0/8 and fd00::/8 (the ingress controller's pods) */
    {"10.1.2.3", "203.0.113.9", "203.0.113.9"},
    {"10.1.2.3", "198.51.100.1, 203.0.113.9", "203.0.113.9"},          /* the rightmost: what the proxy saw */
    {"10.1.2.3", "198.51.100.1, 203.0.113.9, 10.9.9.9", "203.0.113.9"}, /* trusted hops are skipped */
    {"10.1.2.3", "10.9.9.9", "10.9.9.9"},                               /* all trusted: the leftmost */
    {"10.1.2.3", "junk, 203.0.113.9", "203.0.113.9"},
    {"10.1.2.3", "203.0.113.9, junk", "10.1.2.3"},                      /* a non-address: the last trusted hop */
    {"10.1.2.3", NULL, "10.1.2.3"},
    {"fd00::5", "2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::/64"},
    {"10.1.2.3", "[2001:db8::1]", "2001:db8::/64"},
    /* untrusted peers: X-Forwarded-For is ignored (a spoofed header stays limited) */
    {"203.0.113.50", "1.2.3.4", "203.0.113.50"},
    {"2001:db8:1:2:aaaa::1", "1.2.3.4", "2001:db8:1:2::/64"},
    {"2001:db8:1:2:bbbb::2", NULL, "2001:db8:1:2::/64"},               /* same /64, same key */
    {"2001:db8:1:3::1", NULL, "2001:db8:1:3::/64"},
    {"::ffff:203.0.113.50", "1.2.3.4", "203.0.113.50"},
};

ParameterizedTestParameters(netaddr, client)
{
    return cr_make_param_array(struct client_case, client_cases, sizeof client_cases / sizeof client_cases[0]);
}

ParameterizedTest(struct client_case *c, netaddr, client)
{
    char *items[] = {"10.0.0.0/8", "fd00::/8"};
    fp_strlist l = {items, 2};
    fp_cidrs cs;
    fp_error err = {0};
    cr_assert_eq(fp_cidrs_parse(&l, &cs, &err), 0, "%s", err.msg);
    char out[FP_NETADDR_KEY_MAX];
    fp_netaddr_client(&cs, c->peer, c->xff, out, sizeof out);
    cr_assert_str_eq(out, c->want, "peer %s, X-Forwarded-For %s", c->peer, c->xff ? c->xff : "(none)");
    fp_cidrs_free(&cs);
}

Test(connlimit, counts_per_key_and_gives_back)
{
    fp_connlimit *cl = fp_connlimit_new(2);
    cr_assert(fp_connlimit_take(cl, "203.0.113.9"));
    cr_assert(fp_connlimit_take(cl, "203.0.113.9"));
    cr_assert_not(fp_connlimit_take(cl, "203.0.113.9"), "the third from one address is refused");
    cr_assert(fp_connlimit_take(cl, "2001:db8::/64"), "another client has its own count");
    fp_connlimit_give(cl, "203.0.113.9");
    cr_assert(fp_connlimit_take(cl, "203.0.113.9"), "a closed connection's slot comes back");
    fp_connlimit_free(cl);
    fp_connlimit *off = fp_connlimit_new(0);
    for (int i = 0; i < 100; i++)
        cr_assert(fp_connlimit_take(off, "x"), "0: no limit");
    fp_connlimit_free(off);
}

Test(token, signed_scoped_and_short_lived)
{
    fp_token_key k, other;
    fp_error err = {0};
    cr_assert_eq(fp_token_key_init(&k, NULL, &err), 0);
    cr_assert_eq(fp_token_key_init(&other, NULL, &err), 0);
    char t[FP_TOKEN_MAX];
    fp_token_make(&k, "team", "signup", 1000, 60, t);
    cr_assert_eq(fp_token_check(&k, "team", "signup", t, 1000), 0);
    cr_assert_eq(fp_token_check(&k, "team", "signup", t, 1060), 0, "valid up to its expiry");
    cr_assert_eq(fp_token_check(&k, "team", "signup", t, 1061), FP_ELIMIT, "expired after");
    cr_assert_eq(fp_token_check(&k, "team", "other", t, 1000), FP_EINVAL, "scoped to its form");
    cr_assert_eq(fp_token_check(&k, "team2", "signup", t, 1000), FP_EINVAL, "and namespace");
    cr_assert_eq(fp_token_check(&other, "team", "signup", t, 1000), FP_EINVAL, "another key");
    char forged[FP_TOKEN_MAX + 8];
    snprintf(forged, sizeof forged, "9999%s", t);   /* a later expiry, the same signature */
    cr_assert_eq(fp_token_check(&k, "team", "signup", forged, 1000), FP_EINVAL, "the expiry is signed");
    cr_assert_eq(fp_token_check(&k, "team", "signup", "", 1000), FP_EINVAL);
    cr_assert_eq(fp_token_check(&k, "team", "signup", "123.abc", 1000), FP_EINVAL);
    /* a shared key file: every replica checks the others' tokens; a short one is refused */
    char path[] = "/tmp/fp-token-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_eq(write(fd, "0123456789abcdef0123\n", 21), 21);
    close(fd);
    fp_token_key a, b;
    cr_assert_eq(fp_token_key_init(&a, path, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_token_key_init(&b, path, &err), 0);
    fp_token_make(&a, "team", "signup", 1000, 60, t);
    cr_assert_eq(fp_token_check(&b, "team", "signup", t, 1000), 0);
    fd = open(path, O_WRONLY | O_TRUNC);
    cr_assert_eq(write(fd, "short-secret", 12), 12);
    close(fd);
    cr_assert_eq(fp_token_key_init(&a, path, &err), FP_EINVAL);
    cr_assert_null(strstr(err.msg, "short-secret"), "the key never shows in an error: %s", err.msg);
    unlink(path);
}

Test(page, honeypot_token_and_csp)
{
    cJSON *form = cJSON_Parse("{\"name\":\"signup\",\"fields\":[{\"name\":\"email\",\"type\":\"email\"}]}");
    fp_error err = {0};
    fp_page_extras x = {.honeypot = "website", .token = "123.abc\"<"};
    char *page = fp_page_render(form, &x, &err);
    cr_assert_not_null(page, "%s", err.msg);
    cr_assert_not_null(strstr(page, "name=\"website\" tabindex=\"-1\" autocomplete=\"off\""), "%s", page);
    cr_assert_not_null(strstr(page, "<div class=\"hp\" aria-hidden=\"true\">"));
    cr_assert_not_null(strstr(page, "name=\"" FP_TOKEN_FIELD "\" value=\"123.abc&quot;&lt;\""), "escaped token");
    free(page);
    page = fp_page_render(form, NULL, &err);
    cr_assert_null(strstr(page, "website"), "no extras without them");
    free(page);
    cJSON_Delete(form);
    const char *csp = fp_page_csp();
    cr_assert_not_null(strstr(csp, "default-src 'none'"));
    cr_assert_not_null(strstr(csp, "frame-ancestors 'none'"));
    cr_assert_not_null(strstr(csp, "style-src 'sha256-"));
    cr_assert_null(strstr(csp, "unsafe-inline"));
}
