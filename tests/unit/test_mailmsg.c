/* Unit tests for services/task/mailmsg: the message's headers and parts, the subject's
 * encoding, and the address and Message-ID checks. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "mailmsg.h"

/* The message m builds, NUL-terminated (the caller frees). */
static char *build(const fp_mailmsg *m)
{
    fp_buf out;
    fp_buf_init(&out, 1 << 20);
    cr_assert_eq(fp_mailmsg_build(m, &out), 0);
    return fp_buf_take(&out);
}

Test(mailmsg, text_only)
{
    fp_mailmsg m = {.from = "Forms <forms@example.org>", .to = "ada@example.org", .subject = "Thanks Ada",
                    .text = "Hello", .message_id = "01J0@formpipe.ns.p", .date_ms = 1764649436000LL};
    char *s = build(&m);
    cr_assert_str_eq(s, "From: Forms <forms@example.org>\r\nTo: <ada@example.org>\r\nSubject: Thanks Ada\r\n"
                        "Date: Tue, 02 Dec 2025 04:23:56 +0000\r\nMessage-ID: <01J0@formpipe.ns.p>\r\n"
                        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8=\r\n");
    free(s);
}

Test(mailmsg, alternative_parts)
{
    fp_mailmsg m = {.from = "f@example.org", .to = "t@example.org", .subject = "s", .text = "t",
                    .html = "<p>h</p>", .message_id = "i@d", .date_ms = 0};
    char *s = build(&m);
    cr_assert(strstr(s, "Content-Type: multipart/alternative; boundary=\"=_formpipe_alternative\"\r\n\r\n"
                        "--=_formpipe_alternative\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: base64\r\n\r\ndA==\r\n--=_formpipe_alternative\r\n"
                        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                        "PHA+aDwvcD4=\r\n--=_formpipe_alternative--\r\n"), "%s", s);
    free(s);
}

Test(mailmsg, long_body_lines)
{
    char text[200];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    fp_mailmsg m = {.from = "f@example.org", .to = "t@example.org", .subject = "", .text = text,
                    .message_id = "i@d", .date_ms = 0};
    char *s = build(&m), *body = strstr(s, "\r\n\r\n") + 4;
    for (char *line = body; *line; line = strstr(line, "\r\n") + 2)
        cr_assert_leq(strstr(line, "\r\n") - line, 76);
    free(s);
}

struct subject_case { const char *subject; const char *want; };

static struct subject_case subject_cases[] = {
    {"Thanks Ada", "Subject: Thanks Ada\r\n"},
    {"", "Subject: \r\n"},
    {"Merci Ad\xc3\xa9", "Subject: =?UTF-8?B?TWVyY2kgQWTDqQ==?=\r\n"},
    /* 44 ASCII bytes then a 2-byte sequence: the sequence is not split across words */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9",
     "Subject: =?UTF-8?B?YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=?=\r\n =?UTF-8?B?w6k=?=\r\n"},
};

ParameterizedTestParameters(mailmsg, subject)
{
    return cr_make_param_array(struct subject_case, subject_cases, sizeof subject_cases / sizeof subject_cases[0]);
}

ParameterizedTest(struct subject_case *c, mailmsg, subject)
{
    fp_mailmsg m = {.from = "f@example.org", .to = "t@example.org", .subject = c->subject, .text = "",
                    .message_id = "i@d", .date_ms = 0};
    char *s = build(&m);
    cr_assert(strstr(s, c->want), "%s", s);
    free(s);
}

struct addr_case { const char *addr; int ok; };

static struct addr_case addr_cases[] = {
    {"ada@example.org", 1}, {"a.b+c@sub.example.org", 1}, {"", 0}, {"ada", 0}, {"@example.org", 0},
    {"ada@", 0}, {"a@b@c", 0}, {"a b@example.org", 0}, {"a@example.org\r\nBcc: x@y", 0},
    {"a@example.org>", 0}, {"<a@example.org", 0}, {"a,b@example.org", 0}, {"a;b@example.org", 0},
    {"\"a\"@example.org", 0}, {"a\\b@example.org", 0},
};

ParameterizedTestParameters(mailmsg, address_ok)
{
    return cr_make_param_array(struct addr_case, addr_cases, sizeof addr_cases / sizeof addr_cases[0]);
}

ParameterizedTest(struct addr_case *c, mailmsg, address_ok)
{
    cr_assert_eq(fp_mailmsg_address_ok(c->addr), c->ok, "'%s'", c->addr);
}

struct from_case { const char *from; const char *want; };   /* want NULL: refused */

static struct from_case from_cases[] = {
    {"Forms <forms@example.org>", "forms@example.org"}, {"forms@example.org", "forms@example.org"},
    {"\"Forms, Inc\" <f@example.org>", "f@example.org"}, {"Forms <forms@example.org", NULL},
    {"Forms <forms@example.org> x", NULL}, {"Forms\r\nBcc: x <f@example.org>", NULL}, {"Forms <>", NULL}, {"", NULL},
};

ParameterizedTestParameters(mailmsg, from_address)
{
    return cr_make_param_array(struct from_case, from_cases, sizeof from_cases / sizeof from_cases[0]);
}

ParameterizedTest(struct from_case *c, mailmsg, from_address)
{
    char out[256];
    fp_error err = {0};
    int rc = fp_mailmsg_from_address(c->from, out, sizeof out, &err);
    if (c->want) {
        cr_assert_eq(rc, 0, "'%s': %s", c->from, err.msg);
        cr_assert_str_eq(out, c->want);
    } else {
        cr_assert_eq(rc, FP_EINVAL, "'%s' accepted", c->from);
    }
}

struct id_case { const char *id; int ok; };

static struct id_case id_cases[] = {
    {"01JDX5Q7Z8K3M4N5P6R7S8T9V0", 1}, {"a-b_c.d", 1}, {"", 0}, {".a", 0}, {"a.", 0}, {"a b", 0},
    {"a@b", 0}, {"a>b", 0}, {"a\r\nb", 0},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0},
};

ParameterizedTestParameters(mailmsg, id_ok)
{
    return cr_make_param_array(struct id_case, id_cases, sizeof id_cases / sizeof id_cases[0]);
}

ParameterizedTest(struct id_case *c, mailmsg, id_ok)
{
    cr_assert_eq(fp_mailmsg_id_ok(c->id), c->ok, "'%s'", c->id);
}
