/* connlimit.h — open connections per client key (netaddr.h: an IPv4 address or an
 * IPv6 /64), so one address cannot hold every --max-connections slot. Counted at
 * accept from the peer address (a trusted proxy is not counted: it carries many
 * clients). Memory is bounded by the open connections. Thread-safe (one lock). */
#ifndef FP_CONNLIMIT_H
#define FP_CONNLIMIT_H

typedef struct fp_connlimit fp_connlimit;

/* max <= 0: no limit (take always succeeds, nothing is counted). NULL on ENOMEM. */
fp_connlimit *fp_connlimit_new(int max);
void fp_connlimit_free(fp_connlimit *cl);

/* Takes a connection slot for key: 1 when it is under the limit, 0 when key already
 * holds max (nothing taken). */
int fp_connlimit_take(fp_connlimit *cl, const char *key);

/* Gives back a slot fp_connlimit_take gave for key. */
void fp_connlimit_give(fp_connlimit *cl, const char *key);

#endif
