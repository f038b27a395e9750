"""The checked model: resolved types, wire sizes, the interface hash.

Wire format (docs/idl.md, "Wire format"): every value is a sequence of
64-bit message words, parameters in declaration order:

  - integers and bool: one word (zero- or sign-extended; bool is 0 or 1);
  - string<N>: a length word L (0..N), then ceil((L+1)/8) words holding
    the L bytes and a terminating NUL (no NUL among the L bytes);
  - sequence<T, N>: a count word C (0..N), then the elements: packed
    ceil(C*sizeof(T)/8) words for integers and bool (1 byte each), or
    C times the struct's words for structs;
  - struct: its fields in order (no header);
  - cap: no words; the next slot of the message's caps[].
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .diag import Pos

MSG_WORDS = 64  # MK_MSG_WORDS in ferry/mk.h (the generated code asserts it)
MSG_CAPS = 4  # MK_MSG_CAPS
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
HASH_VERSION = "ferry-idl-hash-1"


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class Type:
    """A resolved type. Sizes are in message words."""

    def min_words(self) -> int:
        raise NotImplementedError

    def max_words(self) -> int:
        raise NotImplementedError

    def caps(self) -> int:
        return 0

    def fixed(self) -> bool:
        return self.min_words() == self.max_words()

    def canonical(self) -> str:
        raise NotImplementedError

    def idl(self) -> str:
        """How the type is written in IDL (for docs)."""
        raise NotImplementedError


@dataclass
class IntType(Type):
    name: str
    bits: int
    signed: bool

    def min_words(self) -> int:
        return 1

    def max_words(self) -> int:
        return 1

    def canonical(self) -> str:
        return self.name

    def idl(self) -> str:
        return self.name

    def ctype(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}_t"

    def elem_bytes(self) -> int:
        return self.bits // 8


@dataclass
class BoolType(Type):
    def min_words(self) -> int:
        return 1

    def max_words(self) -> int:
        return 1

    def canonical(self) -> str:
        return "bool"

    def idl(self) -> str:
        return "bool"

    def elem_bytes(self) -> int:
        return 1


@dataclass
class CapType(Type):
    def min_words(self) -> int:
        return 0

    def max_words(self) -> int:
        return 0

    def caps(self) -> int:
        return 1

    def canonical(self) -> str:
        return "cap"

    def idl(self) -> str:
        return "cap"


@dataclass
class StringType(Type):
    bound: int
    bound_src: str  # as written: a literal or a const name
    bound_c: str  # C expression of the bound

    def min_words(self) -> int:
        return 2

    def max_words(self) -> int:
        return 1 + self.data_words(self.bound)

    @staticmethod
    def data_words(length: int) -> int:
        return ceil_div(length + 1, 8)

    def canonical(self) -> str:
        return f"string<{self.bound}>"

    def idl(self) -> str:
        return f"string<{self.bound_src}>"


@dataclass
class StructType(Type):
    struct: "Struct"

    def min_words(self) -> int:
        return sum(f.type.min_words() for f in self.struct.fields)

    def max_words(self) -> int:
        return sum(f.type.max_words() for f in self.struct.fields)

    def canonical(self) -> str:
        return "struct{" + "".join(f.type.canonical() + ";" for f in self.struct.fields) + "}"

    def idl(self) -> str:
        return self.struct.name


@dataclass
class SeqType(Type):
    elem: Type  # IntType, BoolType or a fixed StructType
    bound: int
    bound_src: str
    bound_c: str

    def data_words(self, count: int) -> int:
        if isinstance(self.elem, StructType):
            return count * self.elem.max_words()
        return ceil_div(count * self.elem.elem_bytes(), 8)  # type: ignore[attr-defined]

    def min_words(self) -> int:
        return 1

    def max_words(self) -> int:
        return 1 + self.data_words(self.bound)

    def canonical(self) -> str:
        return f"sequence<{self.elem.canonical()},{self.bound}>"

    def idl(self) -> str:
        return f"sequence<{self.elem.idl()}, {self.bound_src}>"


@dataclass
class Const:
    pos: Pos
    name: str
    value: int
    doc: Optional[str]


@dataclass
class Error:
    pos: Pos
    name: str
    number: int  # as declared (positive)
    doc: Optional[str]

    def status(self) -> int:
        """The status on the wire and in C: -(IDL_EUSER + number)."""
        return -(IDL_EUSER + self.number)


IDL_EUSER = 4096
IDL_EUSER_MAX = 65535


@dataclass
class Field:
    pos: Pos
    name: str
    type: Type
    doc: Optional[str]


@dataclass
class Struct:
    pos: Pos
    name: str
    fields: List[Field]
    doc: Optional[str]


@dataclass
class Param:
    pos: Pos
    direction: str
    name: str
    type: Type
    doc: Optional[str]

    @property
    def is_in(self) -> bool:
        return self.direction in ("in", "inout")

    @property
    def is_out(self) -> bool:
        return self.direction in ("out", "inout")


@dataclass
class Method:
    pos: Pos
    name: str
    id: int
    oneway: bool
    deferrable: bool
    params: List[Param]
    raises: List[Error]
    doc: Optional[str]

    def ins(self) -> List[Param]:
        return [p for p in self.params if p.is_in]

    def outs(self) -> List[Param]:
        return [p for p in self.params if p.is_out]

    def req_words(self) -> Tuple[int, int]:
        """(min, max) request words, including the hash word."""
        ps = self.ins()
        return (1 + sum(p.type.min_words() for p in ps), 1 + sum(p.type.max_words() for p in ps))

    def rep_words(self) -> Tuple[int, int]:
        ps = self.outs()
        return (sum(p.type.min_words() for p in ps), sum(p.type.max_words() for p in ps))

    def req_caps(self) -> int:
        return sum(p.type.caps() for p in self.ins())

    def rep_caps(self) -> int:
        return sum(p.type.caps() for p in self.outs())


@dataclass
class Interface:
    pos: Pos
    name: str
    doc: Optional[str]
    source: str  # file name (basename) it came from
    consts: List[Const] = field(default_factory=list)
    errors: List[Error] = field(default_factory=list)
    structs: List[Struct] = field(default_factory=list)
    methods: List[Method] = field(default_factory=list)
    consts_by_name: Dict[str, Const] = field(default_factory=dict)

    def canonical(self) -> str:
        """The canonical form hashed into the interface hash: names of the
        interface and its methods, method ids and kinds, parameter
        directions and structural types, declared error numbers. Parameter,
        field and struct names, docs and [deferrable] do not change the
        wire and are left out."""
        lines = [HASH_VERSION, f"interface {self.name}"]
        for m in sorted(self.methods, key=lambda m: m.id):
            lines.append(f"method {m.id} {m.name} {'oneway' if m.oneway else 'call'}")
            for p in m.params:
                lines.append(f"{p.direction} {p.type.canonical()}")
            if m.raises:
                lines.append("raises " + " ".join(str(e.number) for e in sorted(m.raises, key=lambda e: e.number)))
        return "".join(line + "\n" for line in lines)

    def hash(self) -> int:
        return fnv1a64(self.canonical().encode("utf-8"))


def fnv1a64(data: bytes) -> int:
    h = FNV_OFFSET
    for b in data:
        h ^= b
        h = (h * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h
