"""Terminal colours in the log viewer: SGR to HTML, everything else dropped."""

from jupyter_containers.widgets.ansi import ansi_to_html, overwrite_carriage_returns, strip_ansi


def test_colours_and_styles_become_spans_and_reset_ends_them():
    html = ansi_to_html("plain \x1b[1;31mbold red\x1b[0m plain")
    assert html == 'plain <span style="color:#e75c58;font-weight:bold">bold red</span> plain'


def test_bright_256_and_true_colours():
    assert 'color:#b22b31' in ansi_to_html("\x1b[91mx")
    assert 'background-color:#ff0000' in ansi_to_html("\x1b[48;5;196mx")
    assert 'color:#0a141e' in ansi_to_html("\x1b[38;2;10;20;30mx")
    assert 'color:#808080' in ansi_to_html("\x1b[38;5;244mx")


def test_partial_resets_and_inverse():
    assert ansi_to_html("\x1b[1;4mA\x1b[22mB\x1b[24mC") == (
        '<span style="font-weight:bold;text-decoration:underline">A</span>'
        '<span style="text-decoration:underline">B</span>C')
    assert ansi_to_html("\x1b[31;42;7mx") == '<span style="color:#00a250;background-color:#e75c58">x</span>'


def test_text_is_escaped_and_other_sequences_dropped():
    assert ansi_to_html("<b>&\x1b[2K\x1b[3A\x1b]0;title\x07</b>") == "&lt;b&gt;&amp;&lt;/b&gt;"
    assert strip_ansi("\x1b[31mred\x1b[0m \x1b[?25lcursor") == "red cursor"


def test_carriage_returns_rewrite_the_line_like_a_terminal():
    assert overwrite_carriage_returns("10%\r20%\r100%\r") == "100%"
    assert overwrite_carriage_returns("downloading\rdone") == "doneloading"
    assert overwrite_carriage_returns("no returns") == "no returns"
