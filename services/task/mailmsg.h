/* mailmsg.h — one e-mail as the email kind sends it (RFC 5322 + MIME, CRLF lines):
 * From, To, Subject (RFC 2047 UTF-8 encoded-words when it is not short printable
 * ASCII), Date, Message-ID, MIME-Version, and a text/plain body or, with html, a
 * multipart/alternative of text/plain and text/html; bodies UTF-8 in base64 (any
 * byte, no line-length limit for the template author to mind). And the checks of
 * the addresses that go into the envelope. Pure: no I/O. */
#ifndef FP_MAILMSG_H
#define FP_MAILMSG_H

#include <stddef.h>

#include "buf.h"
#include "error.h"

typedef struct fp_mailmsg {
    const char *from;          /* the From header as configured: "Name <a@b>" or "a@b" */
    const char *to;            /* one address (fp_mailmsg_address_ok) */
    const char *subject;       /* UTF-8, no control characters */
    const char *text;          /* UTF-8 */
    const char *html;          /* UTF-8, or NULL for a text-only mail */
    const char *message_id;    /* without the angle brackets: "<id>@<domain>" */
    long long date_ms;         /* the Date header, milliseconds since the epoch */
} fp_mailmsg;

/* Appends the whole message to out. 0, FP_ENOMEM or FP_ELIMIT (out's cap). */
int fp_mailmsg_build(const fp_mailmsg *m, fp_buf *out);

/* 1 when addr is one plain address local@domain that can go into the envelope and a
 * header as it is: at most 254 bytes, one '@', no space, control character or any of
 * <>()[],;:"\ ; else 0. */
int fp_mailmsg_address_ok(const char *addr);

/* The address of a From value ("Name <a@b>" -> "a@b", "a@b" -> "a@b") into out.
 * FP_EINVAL with *err when from holds a control character or its address is not
 * fp_mailmsg_address_ok. */
int fp_mailmsg_from_address(const char *from, char *out, size_t outsz, fp_error *err);

/* 1 when id can be the left part of a Message-ID as it is (dot-atom text: letters,
 * digits and !#$%&'*+-/=?^_`{|}~ . at most 128 bytes); else 0. */
int fp_mailmsg_id_ok(const char *id);

#endif
