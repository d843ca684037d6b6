/* urlpolicy.c — see urlpolicy.h. */
#include "urlpolicy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int fp_urlpolicy_loopback(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return 0;
    p += 3;
    size_t alen = strcspn(p, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)   /* userinfo ends at the last '@' of the authority */
        if (p[i] == '@')
            at = p + i;
    if (at) {
        alen -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    char host[64];
    size_t hlen;
    if (*p == '[') {
        hlen = strcspn(p + 1, "]");
        if (hlen >= alen)
            return 0;
        p++;
    } else {
        hlen = strcspn(p, ":");
        if (hlen > alen)
            hlen = alen;
    }
    if (hlen == 0 || hlen >= sizeof host)
        return 0;
    memcpy(host, p, hlen);
    host[hlen] = '\0';
    if (!strcasecmp(host, "localhost"))
        return 1;
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return inet_pton(AF_INET6, host, a) == 1 && !memcmp(a, one, 16);
}

const char *fp_urlpolicy_protocols(const char *url, int allow_http)
{
    if (allow_http || (!strncasecmp(url, "http://", 7) && fp_urlpolicy_loopback(url)))
        return "http,https";
    return "https";
}
