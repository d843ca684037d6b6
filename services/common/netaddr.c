/* netaddr.c — see netaddr.h. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses a numeric address into a (v4: 4 bytes, v6: 16; mapped v6 becomes v4). 0 when it is not one. */
static int parse_addr(const char *text, fp_cidr *a)
{
    char buf[INET6_ADDRSTRLEN + 1];
    size_t n = strlen(text);
    while (n && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    while (n && (*text == ' ' || *text == '\t'))
        text++, n--;
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']')   /* a bracketed IPv6 */
        text++, n -= 2;
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, text, n);
    buf[n] = '\0';
    memset(a, 0, sizeof *a);
    if (inet_pton(AF_INET, buf, a->addr) == 1) {
        a->bits = 32;
        return 1;
    }
    if (inet_pton(AF_INET6, buf, a->addr) != 1)
        return 0;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(a->addr, mapped, 12)) {
        memmove(a->addr, a->addr + 12, 4);
        memset(a->addr + 4, 0, 12);
        a->bits = 32;
        return 1;
    }
    a->v6 = 1;
    a->bits = 128;
    return 1;
}

/* 1 when the first bits of a and b are equal. */
static int same_prefix(const unsigned char *a, const unsigned char *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole))
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int fp_cidr_parse(const char *text, fp_cidr *out, fp_error *err)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n >= sizeof addr || !n)
        return fp_error_set(err, FP_EINVAL, "trusted proxy %.80s: not an address or CIDR", text);
    memcpy(addr, text, n);
    addr[n] = '\0';
    if (!parse_addr(addr, out) || strchr(addr, ' '))
        return fp_error_set(err, FP_EINVAL, "trusted proxy %.80s: not an address or CIDR", text);
    int max = out->v6 ? 128 : 32;
    if (slash) {
        char *end;
        long bits = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || bits < 0 || bits > max)
            return fp_error_set(err, FP_EINVAL, "trusted proxy %.80s: the prefix length must be 0 to %d", text, max);
        out->bits = (int)bits;
    }
    for (int i = out->bits; i < max; i++)
        if (out->addr[i / 8] & (0x80 >> (i % 8)))
            return fp_error_set(err, FP_EINVAL, "trusted proxy %.80s: host bits are set after /%d", text, out->bits);
    return 0;
}

int fp_cidrs_parse(const fp_strlist *list, fp_cidrs *out, fp_error *err)
{
    memset(out, 0, sizeof *out);
    if (!list || !list->n)
        return 0;
    if (!(out->items = calloc(list->n, sizeof *out->items)))
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    for (; out->n < list->n; out->n++) {
        if (fp_cidr_parse(list->items[out->n], &out->items[out->n], err)) {
            fp_cidrs_free(out);
            return err->code;
        }
    }
    return 0;
}

void fp_cidrs_free(fp_cidrs *c)
{
    free(c->items);
    c->items = NULL;
    c->n = 0;
}

/* 1 when the parsed address a lies in one of c. */
static int contains(const fp_cidrs *c, const fp_cidr *a)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (c->items[i].v6 == a->v6 && same_prefix(c->items[i].addr, a->addr, c->items[i].bits))
            return 1;
    return 0;
}

int fp_cidrs_contain(const fp_cidrs *c, const char *addr)
{
    fp_cidr a;
    return parse_addr(addr, &a) && contains(c, &a);
}

void fp_netaddr_client(const fp_cidrs *trusted, const char *peer, const char *xff, char *out, size_t outsz)
{
    fp_cidr a;
    const char *client = peer;
    char hop[INET6_ADDRSTRLEN + 3];
    if (xff && parse_addr(peer, &a) && contains(trusted, &a)) {
        size_t end = strlen(xff);
        while (end > 0) {   /* right to left: the entries the trusted proxies appended */
            size_t start = end;
            while (start > 0 && xff[start - 1] != ',')
                start--;
            size_t n = end - start;
            if (n >= sizeof hop)
                break;
            memcpy(hop, xff + start, n);
            hop[n] = '\0';
            if (!parse_addr(hop, &a))
                break;
            snprintf(out, outsz, "%s", hop);
            client = NULL;
            if (!contains(trusted, &a))
                break;
            end = start ? start - 1 : 0;
        }
    }
    if (client)
        snprintf(out, outsz, "%s", client);
    char key[FP_NETADDR_KEY_MAX];
    fp_netaddr_key(out, key, sizeof key);
    snprintf(out, outsz, "%s", key);
}

void fp_netaddr_key(const char *addr, char *out, size_t outsz)
{
    fp_cidr a;
    char text[INET6_ADDRSTRLEN];
    if (!parse_addr(addr, &a)) {
        snprintf(out, outsz, "%.*s", FP_NETADDR_KEY_MAX - 1, addr);
        return;
    }
    if (!a.v6) {
        inet_ntop(AF_INET, a.addr, text, sizeof text);
        snprintf(out, outsz, "%s", text);
        return;
    }
    memset(a.addr + 8, 0, 8);
    inet_ntop(AF_INET6, a.addr, text, sizeof text);
    snprintf(out, outsz, "%s/64", text);
}
