"""Terminal text → HTML: SGR colours and styles become inline-styled spans,
other escape sequences are dropped, a carriage return rewrites its line."""

from __future__ import annotations

import html
import re

# Jupyter's own ANSI palette, so widget text looks like stream output.
_PALETTE = ("#3e424d", "#e75c58", "#00a250", "#ddb62b", "#208ffb", "#d160c4", "#60c6c8", "#c5c1b4",
            "#282c36", "#b22b31", "#007427", "#b27d12", "#0065ca", "#a03196", "#258f8f", "#a1a6b2")

# CSI (ESC [ … final byte), OSC (ESC ] … BEL or ESC \), and two-byte escapes.
_ESCAPE = re.compile(r"\x1b(?:\[([0-9;:?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


_STYLE_ON = {1: "bold", 2: "dim", 3: "italic", 4: "underline", 7: "inverse"}
_STYLE_OFF = {22: ("bold", "dim"), 23: ("italic",), 24: ("underline",), 27: ("inverse",)}


def _colour_256(index: int) -> str:
    if index < 16:
        return _PALETTE[index]
    if index < 232:
        index -= 16
        levels = [0 if v == 0 else 55 + 40 * v for v in (index // 36, index // 6 % 6, index % 6)]
        return "#%02x%02x%02x" % tuple(levels)
    grey = 8 + 10 * (index - 232)
    return "#%02x%02x%02x" % (grey, grey, grey)


class SgrState:
    """The colours and styles SGR sequences have set so far."""

    __slots__ = ("fg", "bg", "bold", "dim", "italic", "underline", "inverse")

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.fg = self.bg = None
        self.bold = self.dim = self.italic = self.underline = self.inverse = False

    def apply(self, params: str) -> None:
        codes = [int(p) if p.isdigit() else 0 for p in re.split("[;:]", params)] if params else [0]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code == 0:
                self.reset()
            elif code in _STYLE_ON:
                setattr(self, _STYLE_ON[code], True)
            elif code in _STYLE_OFF:
                for name in _STYLE_OFF[code]:
                    setattr(self, name, False)
            elif 30 <= code <= 37 or 90 <= code <= 97:
                self.fg = _PALETTE[code - 30 if code < 90 else code - 82]
            elif 40 <= code <= 47 or 100 <= code <= 107:
                self.bg = _PALETTE[code - 40 if code < 100 else code - 92]
            elif code == 39:
                self.fg = None
            elif code == 49:
                self.bg = None
            elif code in (38, 48) and i + 1 < len(codes):
                colour, used = None, 1
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    colour, used = _colour_256(min(codes[i + 2], 255)), 2
                elif codes[i + 1] == 2 and i + 4 < len(codes):
                    colour, used = "#%02x%02x%02x" % tuple(min(c, 255) for c in codes[i + 2:i + 5]), 4
                if code == 38:
                    self.fg = colour
                else:
                    self.bg = colour
                i += used
            i += 1

    def css(self) -> str:
        fg, bg = (self.bg, self.fg) if self.inverse else (self.fg, self.bg)
        parts = []
        if fg:
            parts.append(f"color:{fg}")
        if bg:
            parts.append(f"background-color:{bg}")
        if self.bold:
            parts.append("font-weight:bold")
        if self.dim:
            parts.append("opacity:0.7")
        if self.italic:
            parts.append("font-style:italic")
        if self.underline:
            parts.append("text-decoration:underline")
        return ";".join(parts)


def overwrite_carriage_returns(line: str) -> str:
    """What a terminal leaves of a line whose text was rewritten after a
    ``\\r`` (progress bars): the last rewrite, over the longer earlier ones."""
    if "\r" not in line.rstrip("\r"):
        return line.rstrip("\r")
    shown = ""
    for part in line.rstrip("\r").split("\r"):
        shown = part + shown[len(part):]
    return shown


def strip_ansi(text: str) -> str:
    return _ESCAPE.sub("", text)


def ansi_to_html(text: str) -> str:
    """HTML for ``text``; styles set in it end with it."""
    style = SgrState()
    out = []
    position = 0

    def emit(piece: str) -> None:
        if not piece:
            return
        css = style.css()
        if css:
            out.append(f'<span style="{css}">{html.escape(piece)}</span>')
        else:
            out.append(html.escape(piece))

    for match in _ESCAPE.finditer(text):
        emit(text[position:match.start()])
        position = match.end()
        if match.group(2) == "m":
            style.apply(match.group(1))
    emit(text[position:])
    return "".join(out)
