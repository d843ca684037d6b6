#!/usr/bin/env python3
"""The Sheets emulator's limits behave like Google's: run with
python3 -m unittest tests/fakes/test_sheets_emulator.py (or this file directly)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sheets_emulator as emu  # noqa: E402


def book(rows=10, cols=26, max_cells=emu.MAX_CELLS, title="Responses"):
    return emu.Spreadsheet("b", [{"title": title, "rowCount": rows, "columnCount": cols}], [], max_cells)


class Limits(unittest.TestCase):
    def setUp(self):
        self.api = emu.Handler.__new__(emu.Handler)   # the API methods, without a connection

    def write(self, b, rng, values):
        return self.api.values_batch_update(b, {"valueInputOption": "RAW",
                                                "data": [{"range": rng, "values": values}]})

    def refused(self, fn, *args):
        with self.assertRaises(emu.ApiError) as e:
            fn(*args)
        self.assertEqual(e.exception.code, 400)
        return e.exception.message

    def test_values_past_the_last_column_exceed_the_grid(self):
        b = book(cols=26)
        msg = self.refused(self.write, b, "'Responses'!A1:1", [["x"] * 27])
        self.assertIn("exceeds grid limits", msg)
        self.write(b, "'Responses'!A1:1", [["x"] * 26])

    def test_a_range_past_the_grid_is_refused_even_with_fewer_values(self):
        b = book(rows=10, cols=26)
        self.assertIn("exceeds grid limits", self.refused(self.write, b, "'Responses'!A1:AB1", [["x"]]))
        self.assertIn("exceeds grid limits", self.refused(self.write, b, "'Responses'!A10:B11", [["x"]]))

    def test_tab_titles_match_in_any_case(self):
        b = book()
        self.write(b, "'responses'!A1:B1", [["a", "b"]])
        self.assertEqual(b.sheet("RESPONSES").values(1, 1, None, None), [["a", "b"]])
        msg = self.refused(self.api.batch_update, b, {"requests": [{"addSheet": {"properties": {"title": "rESPONSES"}}}]})
        self.assertIn("already exists", msg)

    def test_the_cell_limit_holds_for_growth_and_new_tabs(self):
        b = book(rows=10, cols=10, max_cells=150)
        grow = {"requests": [{"appendDimension": {"sheetId": 0, "dimension": "ROWS", "length": 6}}]}
        msg = self.refused(self.api.batch_update, b, grow)
        self.assertIn("This action would increase the number of cells in the workbook above the limit of 150 cells.",
                      msg)
        self.api.batch_update(b, {"requests": [{"appendDimension": {"sheetId": 0, "dimension": "ROWS", "length": 5}}]})
        self.assertEqual(b.cells(), 150)
        add = {"requests": [{"addSheet": {"properties": {"title": "More"}}}]}
        self.assertIn("above the limit of 150 cells", self.refused(self.api.batch_update, b, add))

    def grow_and_write(self, b, grow, row_index, rows):
        cells = [{"values": [{"userEnteredValue": v} if v is not None else {} for v in r]} for r in rows]
        requests = [{"appendDimension": {"sheetId": 0, "dimension": "ROWS", "length": grow}}] if grow else []
        requests.append({"updateCells": {"start": {"sheetId": 0, "rowIndex": row_index, "columnIndex": 0},
                                         "fields": "userEnteredValue", "rows": cells}})
        return self.api.batch_update(b, {"requests": requests})

    def test_update_cells_after_append_dimension_in_one_request(self):
        b = book(rows=3)
        self.grow_and_write(b, 2, 2, [[{"stringValue": "=SUM(A1)"}, {"numberValue": 2}], [{"stringValue": "x"}, None]])
        sheet = b.sheet("Responses")
        self.assertEqual((sheet.rows, sheet.cols), (5, 26))
        self.assertEqual(sheet.values(3, 1, None, None), [["=SUM(A1)", 2], ["x"]])   # a string stays text

    def test_update_cells_past_the_grid_is_refused_and_nothing_is_applied(self):
        b = book(rows=3)
        self.write(b, "'Responses'!A1:A1", [["h"]])
        msg = self.refused(self.grow_and_write, b, 1, 2, [[{"stringValue": "a"}], [{"stringValue": "b"}],
                                                         [{"stringValue": "c"}]])
        self.assertIn("requests[1].updateCells", msg)
        sheet = b.sheet("Responses")
        self.assertEqual((sheet.rows, sheet.cols), (3, 26), "the growth of the refused request stays undone")
        self.assertEqual(sheet.values(1, 1, None, None), [["h"]])
        self.assertIn("after last row", self.refused(self.grow_and_write, b, 0, 3, [[{"stringValue": "a"}]]))

    def test_update_cells_takes_only_user_entered_values(self):
        b = book()
        bad = {"requests": [{"updateCells": {"start": {"sheetId": 0, "rowIndex": 0, "columnIndex": 0},
                                             "fields": "*", "rows": []}}]}
        self.assertIn("userEnteredValue", self.refused(self.api.batch_update, b, bad))
        self.assertIn("50000 characters",
                      self.refused(self.grow_and_write, b, 0, 0, [[{"stringValue": "x" * 50001}]]))

    def test_batch_clear_empties_cells_and_keeps_the_grid(self):
        b = book()
        self.write(b, "'Responses'!A1:B3", [["h1", "h2"], ["a", "b"], ["c", "d"]])
        self.api.values_batch_clear(b, {"ranges": ["'Responses'!A2:B2"]})
        sheet = b.sheet("Responses")
        self.assertEqual(sheet.values(1, 1, None, None), [["h1", "h2"], [], ["c", "d"]])
        self.assertEqual((sheet.rows, sheet.cols), (10, 26))

    def test_the_write_quota_is_per_user_across_spreadsheets(self):
        saved = emu.STATE.write_quota
        emu.STATE.write_quota = 3
        try:
            for _ in range(3):   # the quota counts requests, whichever spreadsheet they write
                self.api.check_quota("a@x")
            with self.assertRaises(emu.ApiError) as e:
                self.api.check_quota("a@x")
            self.assertEqual(e.exception.code, 429)
            self.assertIn("per minute per user", e.exception.message)
            self.api.check_quota("b@x")   # another user has a quota of its own
            self.assertEqual(emu.STATE.stats["quota_429_by_user"], {"a@x": 1})
            self.assertEqual(emu.STATE.stats["max_writes_per_minute"]["a@x"], 3)
        finally:
            emu.STATE.write_quota = saved

    def test_408_has_googles_status_name(self):
        self.assertEqual(emu.STATUS_NAMES[408], "DEADLINE_EXCEEDED")


if __name__ == "__main__":
    unittest.main()
