/* event.c — see event.h. */
#include "event.h"
#include "buf.h"
#include "rfc3339.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The envelope members this reader knows, and what an event is refused with when a
 * required one is missing or unusable (formgeneration is optional). */
enum { M_SPEC, M_TYPE, M_ID, M_SOURCE, M_TIME, M_GEN, M_DATA, M_COUNT };
#define STR_(x) #x
#define STR(x) STR_(x)
static const struct member {
    const char *name;
    const char *refusal;
} members[M_COUNT] = {
    [M_SPEC] = {"specversion", "specversion is not \"1.0\""},
    [M_TYPE] = {"type", "type is not \"" FP_EVENT_TYPE "\" or \"" FP_EVENT_TYPE_MODERATED "\""},
    [M_ID] = {"id", "id is missing or longer than " STR(FP_EVENT_MAX_ID) " characters"},
    [M_SOURCE] = {"source", "source is missing or too long"},
    [M_TIME] = {"time", "time is missing or not RFC 3339"},
    [M_GEN] = {"formgeneration", "formgeneration is not an integer"},
    [M_DATA] = {"data", "data is not an object"},
};

/* The refusal of text that is not JSON, with the reader's reason. */
static int invalid_json(const fp_jscan *s, fp_error *err)
{
    return fp_error_set(err, FP_EINVAL, "event is not valid JSON: %s", s->why);
}

/* Decodes string member t into out (outsz bytes). */
static int copy_string(const fp_jscan_token *t, char *out, size_t outsz)
{
    return t->kind == FP_JSCAN_STRING && fp_jscan_unescape(t, out, outsz) >= 0 ? 0 : -1;
}

/* Reads the data object's members into ev->fields (names decoded into ev->names,
 * which has room for all of them: a decoded name is shorter than its token). */
static int read_data(fp_jscan *s, fp_event *ev, size_t names_size, fp_error *err)
{
    size_t used = 0;
    if (fp_jscan_expect(s, '{'))
        return fp_error_set(err, FP_EINVAL, "%s", members[M_DATA].refusal);
    if (fp_jscan_accept(s, '}'))
        return 0;
    do {
        fp_jscan_token name;
        if (fp_jscan_name(s, &name))
            return invalid_json(s, err);
        if (ev->nfields == ev->fields_cap) {
            if (ev->nfields == FP_EVENT_MAX_FIELDS)
                return fp_error_set(err, FP_EINVAL, "data has more than %d members", FP_EVENT_MAX_FIELDS);
            size_t cap = ev->fields_cap ? ev->fields_cap * 2 : 16;
            cap = cap > FP_EVENT_MAX_FIELDS ? FP_EVENT_MAX_FIELDS : cap;
            fp_event_field *f = realloc(ev->fields, cap * sizeof *f);
            if (!f)
                return fp_error_set(err, FP_ENOMEM, "out of memory");
            ev->fields = f;
            ev->fields_cap = cap;
        }
        fp_event_field *f = &ev->fields[ev->nfields++];
        long n = fp_jscan_unescape(&name, ev->names + used, names_size - used);
        if (n < 0)   /* cannot happen: names_size covers the payload */
            return fp_error_set(err, FP_EINVAL, "member names longer than the event");
        f->name = ev->names + used;
        used += (size_t)n + 1;
        if (fp_jscan_value(s, &f->value))
            return invalid_json(s, err);
    } while (fp_jscan_accept(s, ','));
    if (fp_jscan_expect(s, '}'))
        return invalid_json(s, err);
    return 0;
}

/* Reads the value of envelope member m (M_COUNT: one this reader does not use, another
 * CloudEvents attribute or an extension). 0, or -1 when the value is unusable. */
static int read_value(const fp_jscan_token *v, int m, fp_event *ev)
{
    char small[24], *end;
    switch (m) {
    case M_SPEC:
        return copy_string(v, small, sizeof small) || strcmp(small, "1.0") != 0 ? -1 : 0;
    case M_TYPE:
        ev->type = v->kind != FP_JSCAN_STRING ? NULL
                   : fp_jscan_equals(v, FP_EVENT_TYPE) ? FP_EVENT_TYPE
                   : fp_jscan_equals(v, FP_EVENT_TYPE_MODERATED) ? FP_EVENT_TYPE_MODERATED : NULL;
        return ev->type ? 0 : -1;
    case M_ID:
        return copy_string(v, ev->id, sizeof ev->id) || !ev->id[0] ? -1 : 0;
    case M_SOURCE:
        return copy_string(v, ev->source, sizeof ev->source);
    case M_TIME:
        return copy_string(v, ev->time, sizeof ev->time) || fp_rfc3339_parse_ms(ev->time, &ev->time_ms) ? -1 : 0;
    case M_GEN:
        if (v->kind != FP_JSCAN_NUMBER || v->len >= sizeof small)
            return -1;
        memcpy(small, v->text, v->len);
        small[v->len] = '\0';
        ev->generation = strtoll(small, &end, 10);
        return *end || ev->generation < 0 ? -1 : 0;
    default:
        return 0;
    }
}

/* Handles one envelope member whose name is name; the value is next in s. */
static int read_member(fp_jscan *s, const fp_jscan_token *name, fp_event *ev, unsigned *seen,
                       size_t names_size, fp_error *err)
{
    int m = 0;
    while (m < M_COUNT && !fp_jscan_equals(name, members[m].name))
        m++;
    if (m < M_COUNT) {
        if (*seen & 1u << m)
            return fp_error_set(err, FP_EINVAL, "member %s appears twice", members[m].name);
        *seen |= 1u << m;
    }
    if (m == M_DATA)
        return read_data(s, ev, names_size, err);
    fp_jscan_token v;
    if (fp_jscan_value(s, &v))
        return invalid_json(s, err);
    if (read_value(&v, m, ev))
        return fp_error_set(err, FP_EINVAL, "%s", members[m].refusal);
    return 0;
}

int fp_event_parse(const char *payload, size_t len, fp_event *ev, fp_error *err)
{
    fp_jscan s;
    unsigned seen = 0;
    memset(ev, 0, sizeof *ev);
    ev->names = malloc(len + 1);
    if (!ev->names)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    fp_jscan_init(&s, payload, len);
    if (fp_jscan_expect(&s, '{'))
        return fp_error_set(err, FP_EINVAL, "event is not a JSON object");
    if (!fp_jscan_accept(&s, '}')) {
        do {
            fp_jscan_token name;
            if (fp_jscan_name(&s, &name))
                return invalid_json(&s, err);
            int rc = read_member(&s, &name, ev, &seen, len + 1, err);
            if (rc)
                return rc;
        } while (fp_jscan_accept(&s, ','));
        if (fp_jscan_expect(&s, '}'))
            return invalid_json(&s, err);
    }
    if (fp_jscan_finish(&s))
        return invalid_json(&s, err);
    for (int m = 0; m < M_COUNT; m++)
        if (m != M_GEN && !(seen & 1u << m))
            return fp_error_set(err, FP_EINVAL, "%s", members[m].refusal);
    return 0;
}

int fp_event_source_is(const fp_event *ev, const char *ns, const char *name)
{
    size_t nl = strlen(ns);
    return strncmp(ev->source, "/forms/", 7) == 0 && strncmp(ev->source + 7, ns, nl) == 0 &&
           ev->source[7 + nl] == '/' && strcmp(ev->source + 8 + nl, name) == 0;
}

void fp_event_clear(fp_event *ev)
{
    free(ev->fields);
    free(ev->names);
    ev->fields = NULL;
    ev->names = NULL;
    ev->nfields = ev->fields_cap = 0;
}

/* Appends a JSON number the way cJSON prints one: integers plainly, else the shorter
 * of 15 or 17 significant digits that reads back the same; NaN and infinities (not
 * JSON) as null. */
static int add_number(fp_buf *b, double d)
{
    char tmp[32];
    if (d != d || d - d != 0)
        return fp_buf_adds(b, "null");
    if (d == (double)(long long)d && d > -1e15 && d < 1e15)
        return fp_buf_printf(b, "%lld", (long long)d);
    snprintf(tmp, sizeof tmp, "%1.15g", d);
    if (strtod(tmp, NULL) != d)
        snprintf(tmp, sizeof tmp, "%1.17g", d);
    return fp_buf_adds(b, tmp);
}

/* Appends v as JSON (objects and arrays recursively; the schema's clean values are
 * one flat object, so the depth stays 1). */
static int add_value(fp_buf *b, const cJSON *v)
{
    if (cJSON_IsString(v))
        return fp_buf_add_json_string(b, v->valuestring, strlen(v->valuestring));
    if (cJSON_IsNumber(v))
        return add_number(b, v->valuedouble);
    if (cJSON_IsBool(v))
        return fp_buf_adds(b, cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        int object = cJSON_IsObject(v), rc = fp_buf_add(b, object ? "{" : "[", 1);
        for (const cJSON *c = v->child; c && !rc; c = c->next) {
            if (c != v->child)
                rc = fp_buf_add(b, ",", 1);
            if (!rc && object && !(rc = fp_buf_add_json_string(b, c->string, strlen(c->string))))
                rc = fp_buf_add(b, ":", 1);
            if (!rc)
                rc = add_value(b, c);
        }
        return rc ? rc : fp_buf_add(b, object ? "}" : "]", 1);
    }
    return fp_buf_adds(b, "null");
}

char *fp_event_encode(const char *id, const char *ns, const char *name, long long time_ms,
                      long long generation, const cJSON *data)
{
    char when[FP_RFC3339_MAX];
    fp_buf b;
    fp_buf_init(&b, FP_EVENT_MAX_BYTES);
    fp_rfc3339_format_ms(time_ms, when, sizeof when);
    int rc = fp_buf_adds(&b, "{\"specversion\":\"1.0\",\"id\":");
    if (!rc)
        rc = fp_buf_add_json_string(&b, id, strlen(id));
    if (!rc)
        rc = fp_buf_adds(&b, ",\"source\":\"/forms/");
    if (!rc)
        rc = fp_buf_add_json_str(&b, ns, strlen(ns));
    if (!rc)
        rc = fp_buf_add(&b, "/", 1);
    if (!rc)
        rc = fp_buf_add_json_str(&b, name, strlen(name));
    if (!rc)
        rc = fp_buf_printf(&b, "\",\"type\":\"" FP_EVENT_TYPE "\",\"time\":\"%s\",\"datacontenttype\":\"application/json\","
                               "\"formgeneration\":%lld,\"data\":", when, generation);
    if (!rc)
        rc = add_value(&b, data);
    if (!rc)
        rc = fp_buf_add(&b, "}", 1);
    if (rc) {
        fp_buf_free(&b);
        return NULL;
    }
    return fp_buf_take(&b);
}
