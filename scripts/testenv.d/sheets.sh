# The Google Sheets API emulator (tests/fakes/sheets_emulator.py): the one component
# that can't be real here. Sourced by scripts/testenv.

sheets_url() { echo "http://127.0.0.1:$SHEETS_EMULATOR_PORT"; }

sheets_up() {
  proc_pid sheets-emulator >/dev/null && return 0
  require_free_port sheets-emulator "$SHEETS_EMULATOR_PORT" || return 1
  fp_progress "starting the Google Sheets API emulator"
  start_proc sheets-emulator /usr/bin/python3 "$HERE/../tests/fakes/sheets_emulator.py" \
    --port "$SHEETS_EMULATOR_PORT"
  wait_until 20 "sheets emulator" curl -fsS "$(sheets_url)/_control/stats" ||
    { fail_with_log sheets-emulator; return 1; }
  fp_progress "Sheets emulator ready at $(sheets_url)"
}

sheets_down() { stop_proc sheets-emulator 5; }
