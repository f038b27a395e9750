"""The syntax tree, as written (names not yet resolved)."""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .diag import Pos


@dataclass
class Bound:
    """A bound of a string or sequence: a literal or a constant's name."""

    pos: Pos
    value: Optional[int] = None  # literal
    const: Optional[str] = None  # name of a `const`


@dataclass
class TypeRef:
    pos: Pos
    kind: str  # "prim" (u8..i64, bool, cap), "string", "sequence", "named"
    name: str = ""  # prim or struct name
    bound: Optional[Bound] = None
    elem: Optional["TypeRef"] = None


@dataclass
class Const:
    pos: Pos
    name: str
    value: int
    doc: Optional[str]


@dataclass
class ErrorDecl:
    pos: Pos
    name: str
    value: int
    doc: Optional[str]


@dataclass
class Field:
    pos: Pos
    name: str
    type: TypeRef
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
    direction: str  # "in", "out", "inout"
    name: str
    type: TypeRef
    doc: Optional[str]


@dataclass
class Attr:
    pos: Pos
    name: str  # "id", "oneway", "deferrable"
    value: Optional[int] = None


@dataclass
class Method:
    pos: Pos
    name: str
    attrs: List[Attr]
    params: List[Param]
    raises: List[Tuple[str, Pos]]
    doc: Optional[str]


@dataclass
class Interface:
    pos: Pos
    name: str
    doc: Optional[str]
    consts: List[Const] = field(default_factory=list)
    errors: List[ErrorDecl] = field(default_factory=list)
    structs: List[Struct] = field(default_factory=list)
    methods: List[Method] = field(default_factory=list)
