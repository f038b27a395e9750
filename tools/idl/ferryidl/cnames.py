"""The C names derived from an interface (one place, used by the
generators and by the collision check in sema)."""

from typing import Iterator, Tuple

from . import model as M
from .diag import Pos


class Names:
    def __init__(self, iface: M.Interface) -> None:
        self.i = iface.name
        self.I = iface.name.upper()

    # macros
    def hash(self) -> str:
        return f"{self.I}_HASH"

    def const(self, c: M.Const) -> str:
        return f"{self.I}_{c.name.upper()}"

    def error(self, e: M.Error) -> str:
        return f"{self.I}_{e.name.upper()}"

    def method_macro(self, m: M.Method, what: str) -> str:
        return f"{self.I}_{m.name.upper()}_{what}"

    # types
    def struct(self, s: M.Struct) -> str:
        return f"{self.i}_{s.name}_t"

    def struct_tag(self, s: M.Struct) -> str:
        return f"{self.i}_{s.name}"

    def ops(self) -> str:
        return f"{self.i}_ops_t"

    # functions
    def client(self, m: M.Method) -> str:
        return f"{self.i}_{m.name}"

    def reply(self, m: M.Method) -> str:
        return f"{self.i}_{m.name}_reply"

    def raises(self, m: M.Method) -> str:
        return f"{self.i}_{m.name}_raises"

    def serve(self, m: M.Method) -> str:
        return f"{self.i}_{m.name}_serve"

    def dispatch(self) -> str:
        return f"{self.i}_dispatch"

    def rd(self, s: M.Struct) -> str:
        return f"{self.i}_{s.name}_rd"

    def wr(self, s: M.Struct) -> str:
        return f"{self.i}_{s.name}_wr"


METHOD_MACROS = ("ID", "REQ_WORDS_MAX", "REP_WORDS_MAX", "REQ_CAPS", "REP_CAPS")


def generated_names(iface: M.Interface) -> Iterator[Tuple[str, Pos, str]]:
    """Every file-scope C name the generators emit: (name, where, what)."""
    n = Names(iface)
    yield n.hash(), iface.pos, "the interface hash macro"
    yield n.ops(), iface.pos, "the ops type"
    yield f"{n.i}_ops", iface.pos, "the ops struct tag"
    yield n.dispatch(), iface.pos, "the dispatch function"
    for c in iface.consts:
        yield n.const(c), c.pos, f"constant '{c.name}'"
    for e in iface.errors:
        yield n.error(e), e.pos, f"error '{e.name}'"
    for s in iface.structs:
        yield n.struct(s), s.pos, f"struct '{s.name}'"
        yield n.struct_tag(s), s.pos, f"struct '{s.name}'"
        yield n.rd(s), s.pos, f"struct '{s.name}' (its decoder)"
        yield n.wr(s), s.pos, f"struct '{s.name}' (its encoder)"
    for m in iface.methods:
        what = f"method '{m.name}'"
        yield n.client(m), m.pos, what
        yield n.raises(m), m.pos, what + " (its raises check)"
        yield n.serve(m), m.pos, what + " (its server stub)"
        if m.deferrable:
            yield n.reply(m), m.pos, what + " (its deferred reply function)"
        for suffix in METHOD_MACROS:
            yield n.method_macro(m, suffix), m.pos, what
