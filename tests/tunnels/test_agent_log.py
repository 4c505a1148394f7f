"""An agent's private log, read back for --debug: the last lines, secrets masked, never a line cut in two."""

from __future__ import annotations

from devhttps.tunnels import agent

SECRET = "2secretToken_0123456789abcdef"


def mask(line: str) -> str:
    return line.replace(SECRET, "…")


def test_the_last_lines_come_back_masked(tmp_path):
    (tmp_path / "ngrok.stderr").write_text("one\n\ntwo " + SECRET + "\nthree\n")
    assert agent.log_tail(tmp_path, "ngrok", 2, mask) == ["two …", "three"]
    assert agent.log_tail(tmp_path, "cloudflare", 5, mask) is None  # (no log: the agent never ran)
    (tmp_path / "cloudflare.stderr").write_text("")
    assert agent.log_tail(tmp_path, "cloudflare", 5, mask) == []


def test_a_line_still_being_written_is_left_out_and_what_is_shown_is_safe_to_print(tmp_path):
    (tmp_path / "ngrok.stderr").write_text("\x1b[31mred\x1b[0m and a bell\x07\n" + "y" * 2000 + "\n"
                                           "Your authtoken: " + SECRET[:20])  # (the agent is writing this one)
    red, long = agent.log_tail(tmp_path, "ngrok", 10, mask)
    assert red == "red and a bell" and long == "y" * 500 + "…"


def test_a_long_log_is_read_from_its_end_and_a_line_cut_there_is_left_out(tmp_path):
    # The read starts _TAIL_BYTES before the end: here in the middle of the secret, whose end alone would not
    # be masked. That cut line is left out.
    trailing = "last\n" * ((agent._TAIL_BYTES - 10) // 5)
    trailing += "\n" * (agent._TAIL_BYTES - 10 - len(trailing) - len(SECRET) - 1)  # (empty lines: not shown)
    (tmp_path / "ngrok.stderr").write_text("earlier\n" * 10 + "token " + SECRET + "\n" + trailing)
    tail = agent.log_tail(tmp_path, "ngrok", 10, mask)
    assert tail == ["last"] * 10
    assert agent.log_tail(tmp_path, "ngrok", 100_000, mask)[0] == "last"  # (not a piece of the secret)
