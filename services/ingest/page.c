/* page.c — see page.h. */
#include "page.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "token.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>

/* Appends s with &, <, >, " and ' escaped. */
static void esc(fp_buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fp_buf_adds(b, "&amp;"); break;
        case '<': fp_buf_adds(b, "&lt;"); break;
        case '>': fp_buf_adds(b, "&gt;"); break;
        case '"': fp_buf_adds(b, "&quot;"); break;
        case '\'': fp_buf_adds(b, "&#39;"); break;
        default: fp_buf_add(b, s, 1);
        }
    }
}

static const char *str(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    return s && *s ? s : NULL;
}

/* Appends ` attr="value"` for a numeric member, if present. */
static void num_attr(fp_buf *b, const cJSON *f, const char *key, const char *attr)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, key);
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble))
        fp_buf_printf(b, " %s=\"%.17g\"", attr, v->valuedouble);
}

static void option(fp_buf *b, const char *value, const char *text)
{
    fp_buf_adds(b, "<option value=\"");
    esc(b, value);
    fp_buf_adds(b, "\">");
    esc(b, text);
    fp_buf_adds(b, "</option>");
}

static void field(fp_buf *b, const cJSON *f)
{
    const char *name = str(f, "name"), *type = str(f, "type"), *label = str(f, "label");
    if (!name)
        return;
    if (!type)
        type = "string";
    int required = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "required"));
    fp_buf_adds(b, "<label for=\"f-");
    esc(b, name);
    fp_buf_adds(b, "\">");
    esc(b, label ? label : name);
    if (required)
        fp_buf_adds(b, " <span class=\"req\" aria-hidden=\"true\">*</span>");
    fp_buf_adds(b, "</label>\n");
    int is_enum = strcmp(type, "enum") == 0, is_bool = strcmp(type, "boolean") == 0;
    if (is_enum || is_bool) {
        fp_buf_adds(b, "<select id=\"f-");
        esc(b, name);
        fp_buf_adds(b, "\" name=\"");
        esc(b, name);
        fp_buf_printf(b, "\"%s>", required ? " required" : "");
        option(b, "", "Choose...");
        const cJSON *v;
        if (is_bool) {
            option(b, "true", "Yes");
            option(b, "false", "No");
        }
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(f, "values"))
            if (cJSON_IsString(v))
                option(b, v->valuestring, v->valuestring);
        fp_buf_adds(b, "</select>\n");
        return;
    }
    static const struct { const char *type, *input; } inputs[] = {
        {"email", "email"}, {"phone", "tel"}, {"date", "date"}, {"integer", "number"}, {"number", "number"},
    };
    const char *input = "text";
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        if (strcmp(type, inputs[i].type) == 0)
            input = inputs[i].input;
    fp_buf_printf(b, "<input type=\"%s\" id=\"f-", input);
    esc(b, name);
    fp_buf_adds(b, "\" name=\"");
    esc(b, name);
    fp_buf_adds(b, "\"");
    if (required)
        fp_buf_adds(b, " required");
    num_attr(b, f, "minLength", "minlength");
    num_attr(b, f, "maxLength", "maxlength");
    num_attr(b, f, "minimum", "min");
    num_attr(b, f, "maximum", "max");
    if (strcmp(type, "integer") == 0)
        fp_buf_adds(b, " step=\"1\"");
    else if (strcmp(type, "number") == 0)
        fp_buf_adds(b, " step=\"any\"");
    const char *pattern = str(f, "pattern");
    if (pattern) {   /* HTML anchors a pattern at both ends; the server's is unanchored */
        fp_buf_adds(b, " pattern=\".*(?:");
        esc(b, pattern);
        fp_buf_adds(b, ").*\"");
    }
    fp_buf_adds(b, ">\n");
}

#define STYLE_CSS "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;" \
              "padding:0 1rem;line-height:1.4}label{display:block;margin-top:1rem;font-weight:600}" \
              "input,select{display:block;width:100%;box-sizing:border-box;padding:.45rem;margin-top:.25rem;" \
              "font:inherit}button{margin-top:1.5rem;padding:.5rem 1.5rem;font:inherit}.req{color:#a00}" \
                  ".hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}"
#define STYLE "<style>" STYLE_CSS "</style>"

static void head(fp_buf *b, const char *title)
{
    fp_buf_adds(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    esc(b, title);
    fp_buf_adds(b, "</title>\n" STYLE "</head>\n<body><main>\n<h1>");
    esc(b, title);
    fp_buf_adds(b, "</h1>\n");
}

char *fp_page_answer(const char *heading, const char *text, const char *reference, const fp_violations *v,
                     const char *form_name)
{
    fp_buf b;
    fp_buf_init(&b, FP_PAGE_MAX);
    head(&b, heading);
    fp_buf_adds(&b, "<p>");
    esc(&b, text);
    fp_buf_adds(&b, "</p>\n");
    if (v && v->n) {
        fp_buf_adds(&b, "<ul>\n");
        for (size_t i = 0; i < v->n; i++) {
            fp_buf_adds(&b, "<li><strong>");
            esc(&b, v->items[i].field);
            fp_buf_adds(&b, "</strong>: ");
            esc(&b, v->items[i].message);
            fp_buf_adds(&b, "</li>\n");
        }
        fp_buf_adds(&b, "</ul>\n");
    }
    if (reference) {
        fp_buf_adds(&b, "<p>Reference: <code>");
        esc(&b, reference);
        fp_buf_adds(&b, "</code></p>\n");
    }
    if (form_name) {
        fp_buf_adds(&b, "<p><a href=\"/forms/");
        esc(&b, form_name);
        fp_buf_adds(&b, "\">Back to the form</a></p>\n");
    }
    fp_buf_adds(&b, "</main></body></html>\n");
    return fp_buf_take(&b);
}

static char csp[256];
static pthread_once_t csp_once = PTHREAD_ONCE_INIT;

/* The policy allows exactly the page's own style element (by its SHA-256). */
static void csp_init(void)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    unsigned char b64[64];
    SHA256((const unsigned char *)STYLE_CSS, strlen(STYLE_CSS), md);
    EVP_EncodeBlock(b64, md, sizeof md);
    snprintf(csp, sizeof csp,
             "default-src 'none'; style-src 'sha256-%s'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
             (const char *)b64);
}

const char *fp_page_csp(void)
{
    pthread_once(&csp_once, csp_init);
    return csp;
}

/* The extras of the form: the honeypot input (off screen, out of the tab order and
 * of assistive technology; a person leaves it empty) and the submission token. */
static void extras(fp_buf *b, const fp_page_extras *x)
{
    if (x && x->honeypot) {
        fp_buf_adds(b, "<div class=\"hp\" aria-hidden=\"true\"><label for=\"f-hp\">Leave this empty</label>"
                       "<input type=\"text\" id=\"f-hp\" name=\"");
        esc(b, x->honeypot);
        fp_buf_adds(b, "\" tabindex=\"-1\" autocomplete=\"off\"></div>\n");
    }
    if (x && x->token) {
        fp_buf_adds(b, "<input type=\"hidden\" name=\"" FP_TOKEN_FIELD "\" value=\"");
        esc(b, x->token);
        fp_buf_adds(b, "\">\n");
    }
}

char *fp_page_render(const cJSON *form, const fp_page_extras *x, fp_error *err)
{
    const char *name = str(form, "name"), *title = str(form, "title"), *desc = str(form, "description");
    if (!name) {
        fp_error_set(err, FP_EINVAL, "form definition has no name");
        return NULL;
    }
    fp_buf b;
    fp_buf_init(&b, FP_PAGE_MAX);
    head(&b, title ? title : name);
    if (desc) {
        fp_buf_adds(&b, "<p>");
        esc(&b, desc);
        fp_buf_adds(&b, "</p>\n");
    }
    fp_buf_adds(&b, "<form method=\"post\" action=\"/forms/");
    esc(&b, name);
    fp_buf_adds(&b, "\" accept-charset=\"utf-8\">\n");
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(form, "fields"))
        field(&b, f);
    extras(&b, x);
    fp_buf_adds(&b, "<p><span class=\"req\" aria-hidden=\"true\">*</span> required</p>\n"
                    "<button type=\"submit\">Submit</button>\n</form>\n</main></body></html>\n");
    if (b.len >= FP_PAGE_MAX - 1) {
        fp_buf_free(&b);
        fp_error_set(err, FP_ELIMIT, "the form page would exceed %d bytes", FP_PAGE_MAX);
        return NULL;
    }
    char *out = fp_buf_take(&b);
    if (!out)
        fp_error_set(err, FP_ENOMEM, "out of memory");
    return out;
}
