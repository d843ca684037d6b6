/* netaddr.h — client addresses at the ingest (here in common: the operator checks
 * trustedProxies with fp_cidr_parse too): trusted-proxy CIDRs (IPv4 and IPv6), the
 * client an X-Forwarded-For names when its peer is trusted, and the key rate limits
 * and connection limits count by (an IPv4 address, or an IPv6 address's /64, which one
 * subscriber usually holds whole: keying by the full address would give each of its
 * 2^64 addresses its own bucket). IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4. */
#ifndef FP_NETADDR_H
#define FP_NETADDR_H

#include <stddef.h>

#include "config.h"
#include "error.h"

#define FP_NETADDR_KEY_MAX 64   /* a client key with its NUL */

typedef struct fp_cidr {
    int v6;                      /* 0: IPv4 (addr[0..4)), 1: IPv6 */
    unsigned char addr[16];
    int bits;                    /* prefix length */
} fp_cidr;

typedef struct fp_cidrs {
    fp_cidr *items;
    size_t n;
} fp_cidrs;

/* Parses "10.0.0.0/8", "fd00::/8" or a plain address (/32, /128); host bits must be
 * zero. 0, or FP_EINVAL with *err naming the text. */
int fp_cidr_parse(const char *text, fp_cidr *out, fp_error *err);

/* Parses every entry of list into *out (fp_cidrs_free it); the first bad one fails. */
int fp_cidrs_parse(const fp_strlist *list, fp_cidrs *out, fp_error *err);
void fp_cidrs_free(fp_cidrs *c);

/* 1 when addr (numeric text) lies in one of c; 0 otherwise, also for an unparsable addr. */
int fp_cidrs_contain(const fp_cidrs *c, const char *addr);

/* The client a request comes from, into out (FP_NETADDR_KEY_MAX): peer itself, or, when
 * peer is trusted, the X-Forwarded-For entry nearest the right that is not a trusted
 * proxy (xff may be NULL). An entry that is not an address ends the walk at the last
 * trusted hop: a forged header never names an arbitrary key. */
void fp_netaddr_client(const fp_cidrs *trusted, const char *peer, const char *xff, char *out, size_t outsz);

/* The limit key of addr into out (FP_NETADDR_KEY_MAX): IPv4 as is ("203.0.113.9"),
 * IPv6 as its /64 ("2001:db8:1:2::/64"); text that is not an address as is, cut. */
void fp_netaddr_key(const char *addr, char *out, size_t outsz);

#endif
