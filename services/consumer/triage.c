/* triage.c — see triage.h. */
#include "triage.h"
#include "rowstore.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Fills *t and returns FP_EINVAL (the dead-letter verdict). */
static int refuse(fp_triage *t, fp_deadletter_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(fp_triage *t, fp_deadletter_reason reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    t->reason = reason;
    vsnprintf(t->message, sizeof t->message, fmt, ap);
    va_end(ap);
    return FP_EINVAL;
}

int fp_triage_event(const fp_form *form, const char *payload, size_t len, fp_event *ev, fp_triage *t)
{
    fp_error err = {0};
    int rc = fp_event_parse(payload, len, ev, &err);
    if (rc == FP_ENOMEM)
        return FP_ENOMEM;
    if (rc)
        return refuse(t, fp_deadletter_unparsable(payload, len), "%s", err.msg);
    if (!fp_event_source_is(ev, form->ns, form->name))
        return refuse(t, FP_DEADLETTER_WRONG_SOURCE, "source %.100s is not this pipeline (/forms/%.60s/%.60s)",
                      ev->source, form->ns, form->name);
    return 0;
}

/* The data member that is no column of the form, or that is there twice (called once
 * the row showed that one is: the slow path, for dead letters only). */
static int name_stray_field(const fp_form *form, const fp_event *ev, fp_triage *t)
{
    for (size_t i = 0; i < ev->nfields; i++) {
        const char *f = ev->fields[i].name;
        if (fp_form_column(form, f) < 0)
            return refuse(t, FP_DEADLETTER_UNKNOWN_FIELD, "unknown field '%.120s' for form generation %lld", f,
                          form->generation);
        for (size_t j = 0; j < i; j++)
            if (strcmp(ev->fields[j].name, f) == 0)
                return refuse(t, FP_DEADLETTER_REPEATED_FIELD, "field '%.120s' appears twice", f);
    }
    return refuse(t, FP_DEADLETTER_UNKNOWN_FIELD, "data does not match form generation %lld", form->generation);
}

int fp_triage_row(const fp_form *form, const fp_event *ev, fp_buf *text, fp_triage *t)
{
    fp_error err = {0};
    size_t matched = 0, start = text->len;
    int rc = fp_rowstore_row_append(text, ev, (const char *const *)form->columns, form->ncolumns, &matched, &err);
    if (!rc && (rc = fp_buf_add(text, "", 1)) == FP_ELIMIT)   /* the row's terminating NUL */
        fp_error_set(&err, rc, "row is larger than the batch's text limit");
    if (!rc && matched < ev->nfields)
        rc = name_stray_field(form, ev, t);
    else if (rc == FP_EINVAL)
        refuse(t, FP_DEADLETTER_BAD_VALUE, "%s", err.msg);
    else if (rc == FP_ELIMIT)
        refuse(t, FP_DEADLETTER_TOO_LARGE, "%s", err.msg);
    if (rc) {
        text->len = start;
        if (text->data)
            text->data[start] = '\0';
        return rc == FP_ELIMIT ? FP_EINVAL : rc;
    }
    return 0;
}
