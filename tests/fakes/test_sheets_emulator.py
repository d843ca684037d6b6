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
