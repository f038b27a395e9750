"""Lexer: IDL text -> tokens.

Tokens are identifiers (keywords are identifiers that the parser gives a
meaning to), integer literals (decimal or 0x hex, never negative) and
punctuation. Comments are `// ...` and `/* ... */`; a doc comment
`/** ... */` is attached to the next token as its `doc`.
"""

from dataclasses import dataclass
from typing import List, Optional

from .diag import IdlError, Pos

PUNCT = set("{}()<>[],;=")
HEXDIGITS = set("0123456789abcdefABCDEF")


@dataclass
class Token:
    kind: str  # "ident", "int", "punct", "eof"
    text: str
    pos: Pos
    value: int = 0
    doc: Optional[str] = None

    def describe(self) -> str:
        if self.kind == "eof":
            return "end of file"
        return f"'{self.text}'"


def clean_doc(body: str) -> str:
    """Turn the inside of /** ... */ into plain text: strip the leading
    '*' column and common indentation, keep paragraphs."""
    lines = body.split("\n")
    out = []
    for line in lines:
        s = line.strip()
        if s.startswith("*"):
            s = s[1:]
            if s.startswith(" "):
                s = s[1:]
        out.append(s.rstrip())
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _is_ident_start(c: str) -> bool:
    return c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z")


def _is_ident_char(c: str) -> bool:
    return _is_ident_start(c) or ("0" <= c <= "9")


class Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        self.col = 1

    def _pos(self) -> Pos:
        return Pos(self.line, self.col)

    def _advance(self, n: int = 1) -> None:
        for _ in range(n):
            if self.text[self.i] == "\n":
                self.line += 1
                self.col = 1
            else:
                self.col += 1
            self.i += 1

    def _peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.text[j] if j < len(self.text) else ""

    def _block_comment(self) -> Optional[str]:
        """Skip a /* */ comment; return its doc text if it is a /** */."""
        start = self._pos()
        is_doc = self._peek(2) == "*" and self._peek(3) != "/"
        end = self.text.find("*/", self.i + 2)
        if end < 0:
            raise IdlError(start, "unterminated comment")
        body = self.text[self.i + (3 if is_doc else 2):end]
        self._advance(end + 2 - self.i)
        return clean_doc(body) if is_doc else None

    def tokens(self) -> List[Token]:
        toks: List[Token] = []
        doc: Optional[str] = None
        while True:
            c = self._peek()
            if c == "":
                toks.append(Token("eof", "", self._pos(), doc=doc))
                return toks
            if c in " \t\r\n\f\v":
                self._advance()
            elif c == "/" and self._peek(1) == "/":
                while self._peek() not in ("", "\n"):
                    self._advance()
            elif c == "/" and self._peek(1) == "*":
                d = self._block_comment()
                if d is not None:
                    doc = d if doc is None else doc + "\n\n" + d
            elif _is_ident_start(c):
                pos = self._pos()
                j = self.i
                while j < len(self.text) and _is_ident_char(self.text[j]):
                    j += 1
                word = self.text[self.i:j]
                self._advance(j - self.i)
                toks.append(Token("ident", word, pos, doc=doc))
                doc = None
            elif "0" <= c <= "9":
                toks.append(self._number(doc))
                doc = None
            elif c in PUNCT:
                toks.append(Token("punct", c, self._pos(), doc=doc))
                doc = None
                self._advance()
            else:
                shown = c if c.isprintable() else f"\\x{ord(c):02x}"
                raise IdlError(self._pos(), f"unexpected character '{shown}'")

    def _number(self, doc: Optional[str]) -> Token:
        pos = self._pos()
        j = self.i
        while j < len(self.text) and _is_ident_char(self.text[j]):
            j += 1
        word = self.text[self.i:j]
        try:
            if word[:2] in ("0x", "0X"):
                digits = word[2:]
                if not digits or any(ch not in HEXDIGITS for ch in digits):
                    raise ValueError
                value = int(digits, 16)
            else:
                if not word.isdigit():
                    raise ValueError
                value = int(word, 10)
        except ValueError:
            raise IdlError(pos, f"invalid integer literal '{word}'") from None
        self._advance(j - self.i)
        return Token("int", word, pos, value=value, doc=doc)


def tokenize(text: str) -> List[Token]:
    return Lexer(text).tokens()
