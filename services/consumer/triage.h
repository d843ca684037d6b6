/* triage.h — the consumer's decision for one Kafka message: a row for the buffer, a
 * dead letter with a reason code, or (out of memory) neither: try again. Pure: no
 * Kafka, no Redis, no clock, so every case is a unit test (tests/unit/test_consumer_triage.c). */
#ifndef FP_TRIAGE_H
#define FP_TRIAGE_H

#include <stddef.h>

#include "buf.h"
#include "deadletter.h"
#include "event.h"
#include "form.h"
#include "letters.h"

/* Why a message is dead-lettered: the code, and a message for a person. */
typedef fp_letter_why fp_triage;

/* Reads payload as a submission event of form's pipeline into ev (fp_event_clear it
 * afterwards either way). 0: ev is ours; FP_EINVAL: a dead letter, *t says why;
 * FP_ENOMEM: out of memory, never a dead letter (retry). */
int fp_triage_event(const fp_form *form, const char *payload, size_t len, fp_event *ev, fp_triage *t);

/* Appends ev's row for form's columns to text, NUL-terminated. 0; FP_EINVAL: a dead
 * letter, *t says why (text unchanged); FP_ENOMEM: retry (text unchanged). */
int fp_triage_row(const fp_form *form, const fp_event *ev, fp_buf *text, fp_triage *t);

#endif
