#!/usr/bin/env python3
"""Google Sheets API emulator for formpipe's tests (the one fake in the test suite).

Faithful to the real API for the calls formpipe uses:
  POST /token                                  OAuth2 JWT bearer grant; RS256 signature,
                                               aud, iat/exp and scope are checked
  GET  /v4/spreadsheets/{id}                   sheet properties with grid sizes
  POST /v4/spreadsheets/{id}:batchUpdate       appendDimension (ROWS/COLUMNS), addSheet,
                                               updateCells (start + userEnteredValue); all
                                               requests or none, each checked against the
                                               grid the ones before it leave
  GET  /v4/spreadsheets/{id}/values/{range}    trailing empty rows/cells omitted
  POST /v4/spreadsheets/{id}/values:batchUpdate  RAW or USER_ENTERED; never grows the grid:
                                               writing past it is 400 "exceeds grid limits"
  POST /v4/spreadsheets/{id}/values:batchClear    clears ranges (the grid stays)
  POST /v4/spreadsheets/{id}/values/{range}:append  grows the grid, not idempotent
Tab titles match case-insensitively, as Google's do ('responses'!A1 is tab "Responses").
Errors look like {"error":{"code":429,"message":...,"status":"RESOURCE_EXHAUSTED"}}.
Limits: 60 write requests per minute per user (configurable), 10,000,000 cells per
spreadsheet (configurable: --max-cells, or "maxCells" per spreadsheet), 50,000
characters per cell, a request body of at most 10 MiB (--max-request-bytes), a
spreadsheet must be shared with the caller. A write whose range or values reach past
the grid (rows or columns) is 400 "exceeds grid limits".

Control endpoints (tests only):
  POST /_control/keys          {"client_email":..., "public_key_pem":...}  trust a service account
  POST /_control/spreadsheets  {"id":..., "sheets":[{"title","rowCount","columnCount","values"}],
                                "shared_with":[emails], "maxCells": N (default --max-cells)}
  POST /_control/faults        {"status":503,"count":N} (any status: 408, 500 ...) | {"drop_after_apply":N}
                               | {"latency_ms":M,"count":N} | {"write_quota_per_minute":Q}
                               | {"revoke_tokens":true} (every issued token becomes invalid: 401)
  GET  /_control/spreadsheets/{id}/values/{title}   the whole sheet, for assertions
  GET  /_control/stats         calls (in all and by spreadsheet; per spreadsheet also the
                               largest request body, "max_request_bytes"), faults injected,
                               the highest writes/minute seen and the 429s of the write
                               quota, by user ("max_writes_per_minute", "quota_429_by_user")
"""
import argparse
import base64
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

SCOPE = "https://www.googleapis.com/auth/spreadsheets"
MAX_CELLS = 10_000_000
MAX_CELL_CHARS = 50_000
MAX_REQUEST_BYTES = 10 * 1024 * 1024
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "BAD_GATEWAY",
                503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class ApiError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def col_letters(n):
    s = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def col_number(letters):
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


RANGE_RE = re.compile(r"^(?:'((?:[^']|'')+)'|([^'!]+))(?:!([A-Z]*)(\d*)(?::([A-Z]*)(\d*))?)?$")


def parse_range(text):
    """'Sheet'!A2:C5 -> (title, r1, c1, r2, c2); open ends are None (1-based)."""
    m = RANGE_RE.match(text)
    if not m:
        raise ApiError(400, "Unable to parse range: %s" % text)
    title = m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2)
    c1, r1, c2, r2 = m.group(3), m.group(4), m.group(5), m.group(6)
    if m.group(3) is None:          # the whole sheet
        return title, 1, 1, None, None
    c1 = col_number(c1) if c1 else 1
    r1 = int(r1) if r1 else 1
    if m.group(5) is None:          # a single cell
        return title, r1, c1, r1, c1
    return title, r1, c1, (int(r2) if r2 else None), (col_number(c2) if c2 else None)


class Sheet:
    def __init__(self, sheet_id, title, rows, cols):
        self.id, self.title, self.rows, self.cols = sheet_id, title, rows, cols
        self.data = {}              # row (1-based) -> list of cell values from column A

    def props(self, index):
        return {"sheetId": self.id, "title": self.title, "index": index, "sheetType": "GRID",
                "gridProperties": {"rowCount": self.rows, "columnCount": self.cols}}

    def last_row(self):
        return max((r for r, v in self.data.items() if any(x != "" for x in v)), default=0)

    def put(self, row, col, values):
        """Writes values into row from column col (1-based); None leaves a cell alone."""
        cur = self.data.setdefault(row, [])
        end = col - 1 + len(values)
        if len(cur) < end:
            cur.extend([""] * (end - len(cur)))
        for j, v in enumerate(values):
            if v is not None:
                cur[col - 1 + j] = v

    def values(self, r1, c1, r2, c2):
        r2 = r2 or self.last_row()
        out = []
        for r in range(r1, r2 + 1):
            row = self.data.get(r, [])
            row = row[c1 - 1:c2] if c2 else row[c1 - 1:]
            row = list(row)
            while row and row[-1] == "":
                row.pop()
            out.append(row)
        while out and not out[-1]:
            out.pop()
        return out


class Spreadsheet:
    def __init__(self, sid, sheets, shared_with, max_cells):
        self.id, self.max_cells = sid, max_cells
        self.sheets = [Sheet(i, s["title"], s.get("rowCount", 1000), s.get("columnCount", 26))
                       for i, s in enumerate(sheets)]
        for sheet, spec in zip(self.sheets, sheets):
            for r, row in enumerate(spec.get("values", []), start=1):   # data already there
                sheet.put(r, 1, row)
        self.shared_with = set(shared_with)

    def find(self, title):
        """The tab titled title in any case (Google matches titles case-insensitively)."""
        return next((s for s in self.sheets if s.title.casefold() == title.casefold()), None)

    def sheet(self, title):
        found = self.find(title)
        if found is None:
            raise ApiError(400, "Unable to parse range: %s" % title)
        return found

    def cells(self):
        return sum(s.rows * s.cols for s in self.sheets)

    def check_cells(self, extra, what, index=0):
        if self.cells() + extra > self.max_cells:
            raise ApiError(400, "Invalid requests[%d].%s: This action would increase the number of cells in the "
                                "workbook above the limit of %d cells." % (index, what, self.max_cells))


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.keys = {}              # client_email -> public key
        self.tokens = {}            # token -> (email, expires_at)
        self.books = {}
        self.faults = {"status": 0, "status_count": 0, "drop": 0, "latency_ms": 0, "latency_count": 0}
        self.write_quota = 60
        self.writes = {}            # email -> deque of write times
        self.stats = {"calls": {}, "by_spreadsheet": {}, "faults": {"status": 0, "drop_after_apply": 0, "latency": 0,
                                              "quota_429": 0}, "max_writes_per_minute": {},
                      "quota_429_by_user": {}}
        self.token_ttl = 3600
        self.max_cells = MAX_CELLS
        self.max_request_bytes = MAX_REQUEST_BYTES


STATE = State()


def b64url_decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def grant_token(assertion):
    try:
        head_b64, claims_b64, sig_b64 = assertion.split(".")
        header = json.loads(b64url_decode(head_b64))
        claims = json.loads(b64url_decode(claims_b64))
        signature = b64url_decode(sig_b64)
    except (ValueError, json.JSONDecodeError):
        return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: malformed"}
    if header.get("alg") != "RS256":
        return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: alg must be RS256"}
    key = STATE.keys.get(claims.get("iss"))
    if key is None:
        return 400, {"error": "invalid_grant", "error_description": "Invalid grant: account not found"}
    try:
        key.verify(signature, (head_b64 + "." + claims_b64).encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    now = time.time()
    iat, exp = claims.get("iat", 0), claims.get("exp", 0)
    if not (iat - 300 <= now <= exp + 300) or exp - iat > 3600:
        return 400, {"error": "invalid_grant",
                     "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."}
    if SCOPE not in claims.get("scope", "").split():
        return 400, {"error": "invalid_scope", "error_description": "Invalid OAuth scope."}
    if not str(claims.get("aud", "")).endswith("/token"):
        return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: bad audience."}
    token = "ya29.emulated-" + secrets.token_urlsafe(24)
    STATE.tokens[token] = (claims["iss"], now + STATE.token_ttl)
    return 200, {"access_token": token, "expires_in": STATE.token_ttl, "token_type": "Bearer"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True   # headers and body go out at once, no 40 ms stalls

    def log_message(self, fmt, *args):       # quiet: tests read /_control/stats instead
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        if code == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, code, message):
        self.send_json(code, {"error": {"code": code, "message": message,
                                        "status": STATUS_NAMES.get(code, "UNKNOWN")}})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def count(self, kind, sid=None):
        calls = STATE.stats["calls"]
        calls[kind] = calls.get(kind, 0) + 1
        if sid is not None:
            mine = STATE.stats["by_spreadsheet"].setdefault(sid, {})
            mine[kind] = mine.get(kind, 0) + 1

    # --- dispatch ---------------------------------------------------------------
    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        path = urllib.parse.urlsplit(self.path).path
        raw = self.body()
        try:
            if path.startswith("/_control/"):
                return self.control(method, path, raw)
            if path == "/token" and method == "POST":
                form = urllib.parse.parse_qs(raw.decode())
                if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                    return self.send_json(400, {"error": "unsupported_grant_type"})
                with STATE.lock:
                    self.count("token")
                    code, body = grant_token(form.get("assertion", [""])[0])
                return self.send_json(code, body)
            m = re.match(r"^/v4/spreadsheets/([^/:]+)(.*)$", path)
            if not m:
                raise ApiError(404, "Requested entity was not found.")
            return self.api(method, urllib.parse.unquote(m.group(1)), m.group(2), raw)
        except ApiError as e:
            self.send_error_json(e.code, e.message)

    def authenticate(self):
        auth = self.headers.get("Authorization", "")
        entry = STATE.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if not entry or entry[1] < time.time():
            raise ApiError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.")
        return entry[0]

    def inject_faults(self, write):
        f = STATE.faults
        if f["latency_count"] > 0:
            f["latency_count"] -= 1
            STATE.stats["faults"]["latency"] += 1
            time.sleep(f["latency_ms"] / 1000.0)
        if f["status_count"] > 0:
            f["status_count"] -= 1
            STATE.stats["faults"]["status"] += 1
            raise ApiError(f["status"], "The service is currently unavailable." if f["status"] != 500
                           else "Internal error encountered.")
        return write and f["drop"] > 0

    def check_quota(self, email):
        window = STATE.writes.setdefault(email, deque())
        now = time.time()
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= STATE.write_quota:
            STATE.stats["faults"]["quota_429"] += 1
            by_user = STATE.stats["quota_429_by_user"]
            by_user[email] = by_user.get(email, 0) + 1
            raise ApiError(429, "Quota exceeded for quota metric 'Write requests' and limit "
                                "'Write requests per minute per user' of service 'sheets.googleapis.com'.")
        window.append(now)
        peaks = STATE.stats["max_writes_per_minute"]
        peaks[email] = max(peaks.get(email, 0), len(window))

    def api(self, method, sid, rest, raw):
        write = method == "POST"
        with STATE.lock:
            if len(raw) > STATE.max_request_bytes:
                raise ApiError(400, "Request payload size exceeds the limit: %d bytes." % STATE.max_request_bytes)
            if write:
                mine = STATE.stats["by_spreadsheet"].setdefault(sid, {})
                mine["max_request_bytes"] = max(mine.get("max_request_bytes", 0), len(raw))
            email = self.authenticate()
            drop = self.inject_faults(write)
            book = STATE.books.get(sid)
            if book is None:
                raise ApiError(404, "Requested entity was not found.")
            if email not in book.shared_with:
                raise ApiError(403, "The caller does not have permission")
            if write:
                self.check_quota(email)
            if method == "GET" and rest == "":
                self.count("get", sid)
                body = {"spreadsheetId": sid, "properties": {"title": sid},
                        "sheets": [{"properties": s.props(i)} for i, s in enumerate(book.sheets)]}
            elif method == "POST" and rest == ":batchUpdate":
                self.count("batchUpdate", sid)
                body = self.batch_update(book, json.loads(raw or b"{}"))
            elif method == "GET" and rest.startswith("/values/"):
                self.count("values.get", sid)
                title, r1, c1, r2, c2 = parse_range(urllib.parse.unquote(rest[len("/values/"):]))
                sheet = book.sheet(title)
                body = {"range": "'%s'!A1:%s%d" % (sheet.title, col_letters(sheet.cols), sheet.rows),
                        "majorDimension": "ROWS", "values": sheet.values(r1, c1, r2, c2)}
                if not body["values"]:
                    del body["values"]
            elif method == "POST" and rest == "/values:batchUpdate":
                self.count("values.batchUpdate", sid)
                body = self.values_batch_update(book, json.loads(raw or b"{}"))
            elif method == "POST" and rest == "/values:batchClear":
                self.count("values.batchClear", sid)
                body = self.values_batch_clear(book, json.loads(raw or b"{}"))
            elif method == "POST" and rest.startswith("/values/") and rest.endswith(":append"):
                self.count("values.append", sid)
                body = self.append(book, urllib.parse.unquote(rest[len("/values/"):-len(":append")]),
                                   json.loads(raw or b"{}"))
            else:
                raise ApiError(404, "Requested entity was not found.")
            if drop:
                STATE.faults["drop"] -= 1
                STATE.stats["faults"]["drop_after_apply"] += 1
        if drop:                      # the write is applied; the answer never arrives
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_json(200, body)

    # --- API calls --------------------------------------------------------------
    def batch_update(self, book, req):
        """Applies every request or none, as Google does: each is checked against the grid
        the ones before it leave, then all take effect together."""
        dims = {sh.id: [sh.rows, sh.cols] for sh in book.sheets}
        extra, added, writes, replies = 0, [], [], []
        for i, r in enumerate(req.get("requests", [])):
            if "appendDimension" in r:
                a = r["appendDimension"]
                sid = a.get("sheetId", 0)
                if sid not in dims:
                    raise ApiError(400, "Invalid requests[%d].appendDimension: No grid with id: %s" % (i, sid))
                grow = int(a.get("length", 0))
                if grow <= 0:
                    raise ApiError(400, "Invalid requests[%d].appendDimension: length must be positive" % i)
                by_rows = a.get("dimension") == "ROWS"
                more = grow * (dims[sid][1] if by_rows else dims[sid][0])
                book.check_cells(extra + more, "appendDimension", i)
                extra += more
                dims[sid][0 if by_rows else 1] += grow
                replies.append({})
            elif "updateCells" in r:
                writes.append(self.update_cells(i, r["updateCells"], dims))
                replies.append({})
            elif "addSheet" in r:
                p = r["addSheet"].get("properties", {})
                if book.find(p.get("title", "")) is not None or any(
                        t.casefold() == p.get("title", "").casefold() for t, _, _, _ in added):
                    raise ApiError(400, "Invalid requests[%d].addSheet: A sheet with the name \"%s\" already exists. "
                                        "Please enter another name." % (i, p.get("title")))
                grid = p.get("gridProperties", {})
                rows, cols = grid.get("rowCount", 1000), grid.get("columnCount", 26)
                book.check_cells(extra + rows * cols, "addSheet", i)
                extra += rows * cols
                sid = max(list(dims) + [a[1] for a in added], default=-1) + 1
                added.append((p["title"], sid, rows, cols))
                replies.append(None)
            else:
                raise ApiError(400, "Invalid value at 'requests[%d]': unsupported request" % i)
        for sheet in book.sheets:
            sheet.rows, sheet.cols = dims[sheet.id]
        for title, sid, rows, cols in added:
            book.sheets.append(Sheet(sid, title, rows, cols))
            replies[replies.index(None)] = {"addSheet": {"properties": book.sheets[-1].props(len(book.sheets) - 1)}}
        for sid, row, col, values in writes:
            sheet = next(sh for sh in book.sheets if sh.id == sid)
            for k, cells in enumerate(values):
                sheet.put(row + k, col, cells)
        return {"spreadsheetId": book.id, "replies": replies}

    @staticmethod
    def update_cells(i, u, dims):
        """Checks updateCells request i against the grid dims ({sheetId: [rows, cols]}) and
        returns (sheetId, first row, first column, rows of values), 1-based: each cell's
        userEnteredValue (a string stays text, a formulaValue is kept as its text), a cell
        without one cleared (fields "userEnteredValue")."""
        start = u.get("start")
        if start is None or u.get("fields") != "userEnteredValue":
            raise ApiError(400, "Invalid requests[%d].updateCells: this emulator takes start and "
                                "fields \"userEnteredValue\" only" % i)
        sid = start.get("sheetId", 0)
        if sid not in dims:
            raise ApiError(400, "Invalid requests[%d].updateCells: No grid with id: %s" % (i, sid))
        r0, c0 = start.get("rowIndex", 0), start.get("columnIndex", 0)
        values = []
        for row in u.get("rows", []):
            cells = []
            for c in row.get("values", []):
                v = c.get("userEnteredValue", {})
                kind = next(iter(v), None)
                if kind not in (None, "stringValue", "numberValue", "boolValue", "formulaValue"):
                    raise ApiError(400, "Invalid requests[%d].updateCells: unsupported value %s" % (i, kind))
                cell = v[kind] if kind else ""
                if isinstance(cell, str) and len(cell) > MAX_CELL_CHARS:
                    raise ApiError(400, "Your input contains more than the maximum of 50000 characters in a single cell.")
                cells.append(cell)
            values.append(cells)
        end_row = r0 + len(values)
        end_col = c0 + max((len(v) for v in values), default=0)
        if end_row > dims[sid][0]:
            raise ApiError(400, "Invalid requests[%d].updateCells: GridCoordinate.rowIndex[%d] is after last row in "
                                "grid[%d]" % (i, end_row - 1, dims[sid][0] - 1))
        if end_col > dims[sid][1]:
            raise ApiError(400, "Invalid requests[%d].updateCells: GridCoordinate.columnIndex[%d] is after last "
                                "column in grid[%d]" % (i, end_col - 1, dims[sid][1] - 1))
        return sid, r0 + 1, c0 + 1, values

    def write_cells(self, book, rng, values, grow):
        title, r1, c1, r2, c2 = parse_range(rng)
        sheet = book.sheet(title)
        rows = len(values)
        cols = max((len(v) for v in values), default=0)
        if r2 is not None and rows > r2 - r1 + 1 or c2 is not None and cols > c2 - c1 + 1:
            raise ApiError(400, "Requested writing within range [%s], but tried writing to row [%d]" % (rng, r1 + rows - 1))
        end_row, end_col = r1 + rows - 1, c1 + cols - 1
        # Like Google, the range itself must lie inside the grid, not only the values.
        if (max(end_row, r2 or 0) > sheet.rows or max(end_col, c2 or 0) > sheet.cols) and not grow:
            raise ApiError(400, "Range (%s!%s%d:%s%d) exceeds grid limits. Max rows: %d, max column: %d"
                           % (sheet.title, col_letters(c1), r1, col_letters(max(end_col, c2 or 0)),
                              max(end_row, r2 or 0), sheet.rows, sheet.cols))
        if end_row > sheet.rows or end_col > sheet.cols:
            if not grow:
                raise ApiError(400, "Range (%s!%s%d:%s%d) exceeds grid limits. Max rows: %d, max column: %d"
                               % (title, col_letters(c1), r1, col_letters(end_col), end_row, sheet.rows, sheet.cols))
            sheet.rows = max(sheet.rows, end_row)
        for i, row in enumerate(values):
            for v in row:
                if isinstance(v, str) and len(v) > MAX_CELL_CHARS:
                    raise ApiError(400, "Your input contains more than the maximum of 50000 characters in a single cell.")
            sheet.put(r1 + i, c1, row)
        return {"spreadsheetId": book.id, "updatedRange": "'%s'!%s%d:%s%d" % (title, col_letters(c1), r1,
                                                                             col_letters(end_col), end_row),
                "updatedRows": rows, "updatedColumns": cols, "updatedCells": rows * cols}

    def values_batch_update(self, book, req):
        if req.get("valueInputOption") not in ("RAW", "USER_ENTERED"):
            raise ApiError(400, "Invalid valueInputOption: %s" % req.get("valueInputOption"))
        responses = [self.write_cells(book, d["range"], d.get("values", []), grow=False) for d in req.get("data", [])]
        return {"spreadsheetId": book.id, "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
                "totalUpdatedColumns": max((r["updatedColumns"] for r in responses), default=0),
                "totalUpdatedCells": sum(r["updatedCells"] for r in responses),
                "totalUpdatedSheets": len({r["updatedRange"].split("!")[0] for r in responses}),
                "responses": responses}

    def values_batch_clear(self, book, req):
        cleared = []
        for rng in req.get("ranges", []):
            title, r1, c1, r2, c2 = parse_range(rng)
            sheet = book.sheet(title)
            for r in range(r1, (r2 or sheet.rows) + 1):
                row = sheet.data.get(r)
                if row is None:
                    continue
                for c in range(c1, min(c2 or len(row), len(row)) + 1):
                    row[c - 1] = ""
            cleared.append(rng)
        return {"spreadsheetId": book.id, "clearedRanges": cleared}

    def append(self, book, rng, req):
        title = parse_range(rng)[0]
        sheet = book.sheet(title)
        start = sheet.last_row() + 1
        values = req.get("values", [])
        return {"spreadsheetId": book.id, "tableRange": rng,
                "updates": self.write_cells(book, "'%s'!A%d" % (title.replace("'", "''"), start) + (
                    ":%s%d" % (col_letters(max((len(v) for v in values), default=1)), start + len(values) - 1)),
                    values, grow=True)}

    # --- control ----------------------------------------------------------------
    def control(self, method, path, raw):
        req = json.loads(raw or b"{}") if method == "POST" else {}
        with STATE.lock:
            if path == "/_control/keys" and method == "POST":
                STATE.keys[req["client_email"]] = serialization.load_pem_public_key(req["public_key_pem"].encode())
                return self.send_json(200, {})
            if path == "/_control/spreadsheets" and method == "POST":
                STATE.books[req["id"]] = Spreadsheet(req["id"], req.get("sheets", [{"title": "Sheet1"}]),
                                                     req.get("shared_with", []), req.get("maxCells", STATE.max_cells))
                return self.send_json(200, {})
            if path == "/_control/faults" and method == "POST":
                if "status" in req:
                    STATE.faults["status"], STATE.faults["status_count"] = req["status"], req.get("count", 1)
                if "drop_after_apply" in req:
                    STATE.faults["drop"] = req["drop_after_apply"]
                if "latency_ms" in req:
                    STATE.faults["latency_ms"], STATE.faults["latency_count"] = req["latency_ms"], req.get("count", 1)
                if "write_quota_per_minute" in req:
                    STATE.write_quota = req["write_quota_per_minute"]
                if req.get("revoke_tokens"):
                    STATE.tokens.clear()
                return self.send_json(200, STATE.faults)
            if path == "/_control/stats":
                return self.send_json(200, STATE.stats)
            m = re.match(r"^/_control/spreadsheets/([^/]+)/values/(.+)$", path)
            if m and method == "GET":
                book = STATE.books.get(urllib.parse.unquote(m.group(1)))
                if book is None:
                    raise ApiError(404, "no such spreadsheet")
                sheet = book.sheet(urllib.parse.unquote(m.group(2)))
                return self.send_json(200, {"rowCount": sheet.rows, "columnCount": sheet.cols,
                                            "values": sheet.values(1, 1, None, None)})
        raise ApiError(404, "unknown control endpoint")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=29500)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--max-cells", type=int, default=MAX_CELLS, help="cells per spreadsheet (Google: 10,000,000)")
    ap.add_argument("--max-request-bytes", type=int, default=MAX_REQUEST_BYTES, help="largest request body")
    args = ap.parse_args()
    STATE.max_cells, STATE.max_request_bytes = args.max_cells, args.max_request_bytes
    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    print("sheets emulator listening on %s:%d" % (args.bind, args.port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
