/* Unit tests for services/flusher/sheets: A1 ranges, column letters, the backoff
 * schedule. The HTTP side runs against the emulator in tests/integration. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "sheets.h"

struct col_case { int col; const char *letters; };

static struct col_case cols[] = {
    {1, "A"}, {2, "B"}, {26, "Z"}, {27, "AA"}, {52, "AZ"}, {53, "BA"}, {702, "ZZ"}, {703, "AAA"}, {18278, "ZZZ"},
};

ParameterizedTestParameters(sheets, column_letters)
{
    return cr_make_param_array(struct col_case, cols, sizeof cols / sizeof cols[0]);
}

ParameterizedTest(struct col_case *c, sheets, column_letters)
{
    char out[8];
    fp_sheets_column(c->col, out);
    cr_assert_str_eq(out, c->letters, "column %d", c->col);
}

struct a1_case { const char *sheet; long long r1; int c1; long long r2; int c2; const char *want; };

static struct a1_case ranges[] = {
    {"Responses", 2, 1, 5001, 10, "'Responses'!A2:J5001"},
    {"Sheet1", 1, 1, 1, 1, "'Sheet1'!A1:A1"},
    {"It's mine", 10, 2, 20, 28, "'It''s mine'!B10:AB20"},
    {"''", 1, 1, 2, 2, "''''''!A1:B2"},
    {"Données 2026", 3, 1, 4, 3, "'Données 2026'!A3:C4"},
};

ParameterizedTestParameters(sheets, a1_ranges)
{
    return cr_make_param_array(struct a1_case, ranges, sizeof ranges / sizeof ranges[0]);
}

ParameterizedTest(struct a1_case *c, sheets, a1_ranges)
{
    char out[128];
    cr_assert_eq(fp_sheets_a1(out, sizeof out, c->sheet, c->r1, c->c1, c->r2, c->c2), 0);
    cr_assert_str_eq(out, c->want);
}

Test(sheets, a1_refuses_a_small_buffer)
{
    char out[8];
    cr_assert_eq(fp_sheets_a1(out, sizeof out, "Responses", 2, 1, 5001, 10), FP_ELIMIT);
}

Test(sheets, backoff_doubles_from_1s_to_a_32s_cap_with_at_most_1s_jitter)
{
    unsigned seed = 42;
    const long base[] = {1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000};
    for (int attempt = 0; attempt < 8; attempt++) {
        for (int trial = 0; trial < 50; trial++) {
            long w = fp_sheets_backoff_ms(attempt, 1000, 32000, &seed);
            cr_assert_geq(w, base[attempt], "attempt %d: %ld", attempt, w);
            cr_assert_leq(w, base[attempt] + 999 > 32000 ? 32000 : base[attempt] + 999, "attempt %d: %ld", attempt, w);
        }
    }
}

struct grid_case { const char *json, *sheet; int rc, id; long long rows, cols, cells; const char *title; };

static struct grid_case grids[] = {
    {"{\"sheets\":[{\"properties\":{\"sheetId\":0,\"title\":\"Sheet1\",\"gridProperties\":{\"rowCount\":1000,\"columnCount\":26}}},"
     "{\"properties\":{\"sheetId\":7,\"title\":\"Responses\",\"gridProperties\":{\"rowCount\":5001,\"columnCount\":10}}}]}",
     "Responses", 0, 7, 5001, 10, 26000 + 50010, "Responses"},
    /* titles match in any case, as Google's do; the title comes back as spelled there */
    {"{\"sheets\":[{\"properties\":{\"sheetId\":0,\"title\":\"Sheet1\",\"gridProperties\":{\"rowCount\":1000,\"columnCount\":26}}},"
     "{\"properties\":{\"sheetId\":7,\"title\":\"Responses\",\"gridProperties\":{\"rowCount\":5001,\"columnCount\":10}}}]}",
     "rESPONSES", 0, 7, 5001, 10, 26000 + 50010, "Responses"},
    {"{\"sheets\":[{\"properties\":{\"sheetId\":0,\"title\":\"Sheet1\",\"gridProperties\":{\"rowCount\":1,\"columnCount\":1}}}]}",
     "Responses", FP_ENOTFOUND, 0, 0, 0, 0, NULL},
    {"{\"spreadsheetId\":\"x\"}", "Responses", FP_EINVAL, 0, 0, 0, 0, NULL},
    {"not json", "Responses", FP_EINVAL, 0, 0, 0, 0, NULL},
    {"{\"sheets\":[{\"properties\":{\"sheetId\":3,\"title\":\"Responses\"}}]}", "Responses", FP_ENOTFOUND, 0, 0, 0, 0, NULL},
};

ParameterizedTestParameters(sheets, parse_grid)
{
    return cr_make_param_array(struct grid_case, grids, sizeof grids / sizeof grids[0]);
}

ParameterizedTest(struct grid_case *c, sheets, parse_grid)
{
    fp_sheets_tab tab = {.sheet_id = -1, .rows = -1, .cols = -1};
    fp_error err = {0};
    cr_assert_eq(fp_sheets_parse_grid(c->json, c->sheet, &tab, &err), c->rc, "%s: %s", c->json, err.msg);
    if (c->rc == 0) {
        cr_assert_eq(tab.sheet_id, c->id);
        cr_assert_eq(tab.rows, c->rows);
        cr_assert_eq(tab.cols, c->cols);
        cr_assert_eq(tab.cells, c->cells, "cells of every tab: %lld", tab.cells);
        cr_assert_str_eq(tab.title, c->title);
    }
}

struct msg_case { const char *body, *want; };

static struct msg_case msgs[] = {
    {"{\"error\":{\"code\":429,\"message\":\"Quota exceeded for quota metric 'Write requests'\",\"status\":\"RESOURCE_EXHAUSTED\"}}",
     "Quota exceeded for quota metric 'Write requests'"},
    {"{\"error\":{\"code\":400,\"message\":\"Range (Sheet1!A1001:E1001) exceeds grid limits. Max rows: 1000, max column: 26\"}}",
     "Range (Sheet1!A1001:E1001) exceeds grid limits. Max rows: 1000, max column: 26"},
    {"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"},
    {"", ""},
};

ParameterizedTestParameters(sheets, error_message)
{
    return cr_make_param_array(struct msg_case, msgs, sizeof msgs / sizeof msgs[0]);
}

ParameterizedTest(struct msg_case *c, sheets, error_message)
{
    char out[400];
    fp_sheets_error_message(c->body, out, sizeof out);
    cr_assert_str_eq(out, c->want);
}

/* How a batch splits into requests under the byte bound: rows in order, as many as
 * fit with the overhead and one separator each, never fewer than one. */
struct part_case { size_t lens[6]; size_t n, overhead, max, want; };

static struct part_case parts[] = {
    {{10, 10, 10}, 3, 100, 1000, 3},       /* all fit */
    {{10, 10, 10}, 3, 100, 122, 2},        /* 100 + 11 + 11 = 122: two fit exactly */
    {{10, 10, 10}, 3, 100, 121, 1},
    {{500, 10}, 2, 100, 200, 1},           /* a row bigger than the bound goes alone */
    {{10}, 1, 100, 50, 1},                 /* even when the overhead alone is too much */
    {{0}, 0, 100, 1000, 0},
};

ParameterizedTestParameters(sheets, part_rows)
{
    return cr_make_param_array(struct part_case, parts, sizeof parts / sizeof parts[0]);
}

ParameterizedTest(struct part_case *c, sheets, part_rows)
{
    cr_assert_eq(fp_sheets_part_rows(c->lens, c->n, c->overhead, c->max), c->want, "max %zu", c->max);
}

/* A row as updateCells RowData: RAW's meaning kept (a string stays text). */
struct rowdata_case {
    const char *row, *want;
    int rc;
};

static struct rowdata_case rowdata[] = {
    {"[\"a\",\"=SUM(A1)\"]",
     "{\"values\":[{\"userEnteredValue\":{\"stringValue\":\"a\"}},{\"userEnteredValue\":{\"stringValue\":\"=SUM(A1)\"}}]}", 0},
    {"[1.5,true,null,\"\"]",
     "{\"values\":[{\"userEnteredValue\":{\"numberValue\":1.5}},{\"userEnteredValue\":{\"boolValue\":true}},{},"
     "{\"userEnteredValue\":{\"stringValue\":\"\"}}]}", 0},
    {"[\"quote \\\" and \\n\"]", "{\"values\":[{\"userEnteredValue\":{\"stringValue\":\"quote \\\" and \\n\"}}]}", 0},
    {"[]", "{\"values\":[]}", 0},
    {"{\"a\":1}", NULL, FP_EINVAL},        /* no array */
    {"[[1]]", NULL, FP_EINVAL},            /* a nested array is no cell */
    {"[\"unterminated", NULL, FP_EINVAL},
};

ParameterizedTestParameters(sheets, row_data)
{
    return cr_make_param_array(struct rowdata_case, rowdata, sizeof rowdata / sizeof rowdata[0]);
}

ParameterizedTest(struct rowdata_case *c, sheets, row_data)
{
    fp_buf b;
    fp_buf_init(&b, 4096);
    int rc = fp_sheets_row_data(&b, c->row, strlen(c->row));
    cr_assert_eq(rc, c->rc, "%s: %d", c->row, rc);
    if (c->want)
        cr_expect_str_eq(b.data, c->want, "%s", c->row);
    fp_buf_free(&b);
}

Test(sheets, row_data_stops_at_the_buffer_cap)
{
    fp_buf b;
    fp_buf_init(&b, 16);
    cr_expect_eq(fp_sheets_row_data(&b, "[\"a long enough cell\"]", 22), FP_ELIMIT);
    fp_buf_free(&b);
}
