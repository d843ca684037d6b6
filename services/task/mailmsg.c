/* mailmsg.c — see mailmsg.h. */
#include "mailmsg.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Appends s[0..n) in base64 without line breaks. */
static int add_b64(fp_buf *out, const unsigned char *s, size_t n)
{
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        q[0] = b64[v >> 18 & 63];
        q[1] = b64[v >> 12 & 63];
        q[2] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? b64[v & 63] : '=';
        int rc = fp_buf_add(out, q, 4);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Appends a body part's content in base64, 76 characters a line, CRLF after each. */
static int add_body(fp_buf *out, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n || i == 0; i += 57) {
        size_t k = n - i < 57 ? n - i : 57;
        int rc;
        if ((rc = add_b64(out, (const unsigned char *)s + i, k)) < 0 || (rc = fp_buf_adds(out, "\r\n")) < 0)
            return rc;
        if (n == 0)
            break;
    }
    return 0;
}

/* Appends "Subject: ..." and its CRLF: as it is when short printable ASCII, else
 * encoded-words of at most 45 bytes each (never splitting a UTF-8 sequence), one a line. */
static int add_subject(fp_buf *out, const char *s)
{
    size_t n = strlen(s);
    int plain = n <= 900;
    for (size_t i = 0; i < n && plain; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            plain = 0;
    if (plain || n == 0)
        return fp_buf_printf(out, "Subject: %s\r\n", s);
    int rc = fp_buf_adds(out, "Subject:");
    for (size_t i = 0; i < n && rc == 0;) {
        size_t k = n - i < 45 ? n - i : 45;
        while (i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80)   /* the next byte continues a sequence */
            k--;
        if (k == 0)
            k = n - i < 45 ? n - i : 45;
        if ((rc = fp_buf_adds(out, i ? "\r\n =?UTF-8?B?" : " =?UTF-8?B?")) < 0 ||
            (rc = add_b64(out, (const unsigned char *)s + i, k)) < 0 || (rc = fp_buf_adds(out, "?=")) < 0)
            break;
        i += k;
    }
    return rc < 0 ? rc : fp_buf_adds(out, "\r\n");
}

int fp_mailmsg_build(const fp_mailmsg *m, fp_buf *out)
{
    char date[64];
    time_t secs = (time_t)(m->date_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);   /* C locale names */
    int rc;
    if ((rc = fp_buf_printf(out, "From: %s\r\nTo: <%s>\r\n", m->from, m->to)) < 0 || (rc = add_subject(out, m->subject)) < 0 ||
        (rc = fp_buf_printf(out, "Date: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n", date, m->message_id)) < 0)
        return rc;
    static const char text_part[] = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    static const char html_part[] = "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    if (!m->html) {
        if ((rc = fp_buf_adds(out, text_part)) < 0)
            return rc;
        return add_body(out, m->text);
    }
    /* '_' never occurs in base64, so the boundary never occurs in a part */
    static const char boundary[] = "=_formpipe_alternative";
    if ((rc = fp_buf_printf(out, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n--%s\r\n%s", boundary,
                            boundary, text_part)) < 0 ||
        (rc = add_body(out, m->text)) < 0 || (rc = fp_buf_printf(out, "--%s\r\n%s", boundary, html_part)) < 0 ||
        (rc = add_body(out, m->html)) < 0)
        return rc;
    return fp_buf_printf(out, "--%s--\r\n", boundary);
}

int fp_mailmsg_address_ok(const char *addr)
{
    size_t n = strlen(addr);
    const char *at = strchr(addr, '@');
    if (n == 0 || n > 254 || !at || at == addr || !at[1] || strchr(at + 1, '@'))
        return 0;
    for (const char *p = addr; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("<>()[],;:\"\\", *p))
            return 0;
    return 1;
}

int fp_mailmsg_from_address(const char *from, char *out, size_t outsz, fp_error *err)
{
    for (const char *p = from; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return fp_error_set(err, FP_EINVAL, "the From value holds a control character");
    const char *lt = strrchr(from, '<'), *start = from, *end = from + strlen(from);
    if (lt) {
        const char *gt = strchr(lt, '>');
        if (!gt || gt[1])
            return fp_error_set(err, FP_EINVAL, "the From value is not \"Name <address>\" or an address");
        start = lt + 1;
        end = gt;
    }
    size_t n = (size_t)(end - start);
    if (n >= outsz)
        return fp_error_set(err, FP_EINVAL, "the From address is too long");
    memcpy(out, start, n);
    out[n] = '\0';
    if (!fp_mailmsg_address_ok(out))
        return fp_error_set(err, FP_EINVAL, "the From address is not a plain address local@domain");
    return 0;
}

int fp_mailmsg_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128 || id[0] == '.' || id[n - 1] == '.')
        return 0;
    for (const char *p = id; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-/=?^_`{|}~.", c)))
            return 0;
    }
    return 1;
}
