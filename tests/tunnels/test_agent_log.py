"""An agent's private log, read back for --debug: the last lines, secrets masked, never a line cut in two."""

from __future__ import annotations

from devhttps.tunnels import agent

SECRET = "2secretToken_0123456789abcdef"


def mask(line: str) -> str:
    return line.replace(SECRET, "…")


def test_the_last_lines_come_back_masked(tmp_path):
    (tmp_path / "ngrok.stderr").write_text("one\n\ntwo " + SECRET + "\nthree\n")
    assert agent.log_tail(tmp_path, "ngrok", 2, mask) == ["two …", "three"]
    assert agent.log_tail(tmp_path, "cloudflare", 5, mask) == []  # (no log at all)


def test_a_long_log_is_read_from_its_end_and_a_line_cut_there_is_left_out(tmp_path):
    # The read starts _TAIL_BYTES before the end: here in the middle of the secret, whose end alone would not
    # be masked. That cut line is left out.
    trailing = "last\n" * ((agent._TAIL_BYTES - 10) // 5)
    trailing += "\n" * (agent._TAIL_BYTES - 10 - len(trailing) - len(SECRET) - 1)  # (empty lines: not shown)
    (tmp_path / "ngrok.stderr").write_text("earlier\n" * 10 + "token " + SECRET + "\n" + trailing)
    tail = agent.log_tail(tmp_path, "ngrok", 10, mask)
    assert tail == ["last"] * 10
    assert agent.log_tail(tmp_path, "ngrok", 100_000, mask)[0] == "last"  # (not a piece of the secret)
