"""Semantic checks: ast.Interface -> model.Interface, or every error found.

Rules (docs/idl.md, "Rules"):
  - every name declared in an interface (const, error, struct, method) is
    unique; field names are unique in their struct, parameter names in
    their method; no name is a C keyword, starts with '_', 'idl_' or 'mk_';
  - the C names the generator derives must not collide;
  - method ids are unique, 1..65535; error numbers unique, 1..65535;
  - types are known; structs are declared before use and hold no caps;
  - strings and sequences have a bound >= 1; sequence elements are
    integers, bool or fixed-size structs;
  - a oneway method has no out/inout parameters and raises nothing;
  - every request and reply fits in one message (MK_MSG_WORDS words,
    MK_MSG_CAPS caps).
"""

from typing import Dict, List, Optional, Tuple

from . import ast
from . import model as M
from .diag import IdlError, IdlErrors, Pos
from .parser import INT_TYPES

C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double",
    "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
    "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
    "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "asm",
    "typeof", "alignas", "alignof", "noreturn", "static_assert", "thread_local",
}
# Names the generated code itself uses (types, macros, fixed parameters).
C_RESERVED = {
    "bool", "true", "false", "NULL", "size_t", "int8_t", "int16_t", "int32_t", "int64_t",
    "uint8_t", "uint16_t", "uint32_t", "uint64_t", "main", "memset", "memcpy", "memchr",
    "UINT32_C", "UINT64_C", "INT32_MAX", "INT64_MAX",
}
FIXED_PARAMS = ("ep", "timeout_ns", "ctx", "info", "reply", "status")
MAX_ID = 65535


class Checker:
    def __init__(self, tree: ast.Interface, source: str) -> None:
        self.tree = tree
        self.errors: List[IdlError] = []
        self.iface = M.Interface(tree.pos, tree.name, tree.doc, source)
        self.names: Dict[str, Tuple[Pos, str]] = {}  # IDL member names
        self.structs: Dict[str, M.Struct] = {}
        self.all_structs = {s.name: s for s in tree.structs}
        self.errors_by_name: Dict[str, M.Error] = {}
        self.bad_structs: set = set()  # structs with errors already reported
        self.defining: Optional[str] = None  # struct whose fields are being resolved

    def err(self, pos: Pos, msg: str) -> None:
        self.errors.append(IdlError(pos, msg))

    # ---- names ------------------------------------------------------------

    def check_ident(self, name: str, pos: Pos, what: str) -> None:
        low = name.lower()
        if name in C_KEYWORDS or name in C_RESERVED:
            self.err(pos, f"{what} '{name}' is a reserved C name")
        elif name.startswith("_"):
            self.err(pos, f"{what} '{name}' must not start with '_'")
        elif low.startswith("idl_") or low.startswith("mk_"):
            self.err(pos, f"{what} '{name}' uses a reserved prefix ('idl_' and 'mk_' belong to the runtime)")

    def declare(self, name: str, pos: Pos, what: str) -> bool:
        self.check_ident(name, pos, what)
        if name in self.names:
            first, kind = self.names[name]
            self.err(pos, f"duplicate name '{name}': already declared as {kind} at line {first.line}")
            return False
        self.names[name] = (pos, what)
        return True

    # ---- declarations -----------------------------------------------------

    def run(self) -> M.Interface:
        t = self.tree
        self.check_ident(t.name, t.pos, "interface name")
        if t.name.lower() in ("idl", "mk"):
            self.err(t.pos, f"interface name '{t.name}' would give its C names the runtime's "
                     "reserved prefix ('idl_' or 'mk_')")
        for c in t.consts:
            self.const(c)
        # Errors and structs first so that methods can refer to them.
        for e in t.errors:
            self.error(e)
        # Structs are resolved in source order: a struct may only use those
        # declared before it (this also rules out recursion). Methods may use
        # any struct.
        for s in t.structs:
            self.struct(s)
        for m in t.methods:
            self.method(m)
        if not t.methods:
            self.err(t.pos, f"interface '{t.name}' declares no methods")
        self.check_ids()
        # Every declaration dropped from the model must have reported why.
        if not self.errors and (len(self.iface.methods) != len(t.methods)
                                or len(self.iface.structs) != len(t.structs)):
            raise AssertionError("a declaration was dropped without an error")
        if not self.errors:
            self.check_c_names()
        if self.errors:
            raise IdlErrors(self.errors)
        return self.iface

    def const(self, c: ast.Const) -> None:
        if not self.declare(c.name, c.pos, "constant"):
            return
        if c.value > 0x7FFFFFFF:
            self.err(c.pos, f"constant '{c.name}' = {c.value} is out of range (0..2147483647)")
            return
        mc = M.Const(c.pos, c.name, c.value, c.doc)
        self.iface.consts.append(mc)
        self.iface.consts_by_name[c.name] = mc

    def error(self, e: ast.ErrorDecl) -> None:
        if not self.declare(e.name, e.pos, "error"):
            return
        if not 1 <= e.value <= M.IDL_EUSER_MAX:
            self.err(e.pos, f"error number {e.value} of '{e.name}' is out of range (1..{M.IDL_EUSER_MAX})")
            return
        for other in self.iface.errors:
            if other.number == e.value:
                self.err(e.pos, f"error number {e.value} of '{e.name}' is already used by '{other.name}'")
                return
        me = M.Error(e.pos, e.name, e.value, e.doc)
        self.iface.errors.append(me)
        self.errors_by_name[e.name] = me

    def struct(self, s: ast.Struct) -> None:
        self.defining = s.name
        try:
            if not self.struct_body(s):
                self.bad_structs.add(s.name)
        finally:
            self.defining = None

    def struct_body(self, s: ast.Struct) -> bool:
        """Check and register one struct; False if an error was reported."""
        ok = self.declare(s.name, s.pos, "struct")
        fields: List[M.Field] = []
        seen: Dict[str, Pos] = {}
        for f in s.fields:
            self.check_ident(f.name, f.pos, "field")
            if f.name in seen:
                self.err(f.pos, f"duplicate field '{f.name}' in struct '{s.name}'")
                continue
            seen[f.name] = f.pos
            ty = self.resolve(f.type)
            if ty is None:
                continue
            if isinstance(ty, M.CapType):
                self.err(f.type.pos, f"field '{f.name}': capabilities cannot be struct fields "
                         "(pass them as method parameters)")
                continue
            fields.append(M.Field(f.pos, f.name, ty, f.doc))
        self.check_len_names([(f.name, f.pos, f.type) for f in fields], f"struct '{s.name}'")
        if not s.fields:
            self.err(s.pos, f"struct '{s.name}' has no fields")
            return False
        if len(fields) != len(s.fields) or not ok:
            return False
        ms = M.Struct(s.pos, s.name, fields, s.doc)
        words = M.StructType(ms).max_words()
        if words > M.MSG_WORDS - 1:
            self.err(s.pos, f"struct '{s.name}' needs up to {words} message words and can never fit "
                     f"in a message (MK_MSG_WORDS = {M.MSG_WORDS}, one word is the interface hash)")
            return False
        self.structs[s.name] = ms
        self.iface.structs.append(ms)
        return True

    def check_len_names(self, items: List[Tuple[str, Pos, M.Type]], where: str) -> None:
        """A sequence `x` also uses the C name `x_len`."""
        names = {n for n, _, _ in items}
        for n, pos, ty in items:
            if isinstance(ty, M.SeqType) and n + "_len" in names:
                self.err(pos, f"sequence '{n}' in {where} needs the C name '{n}_len' for its length, "
                         "which another name already uses")

    # ---- types ------------------------------------------------------------

    def bound(self, b: ast.Bound, what: str) -> Optional[Tuple[int, str, str]]:
        if b.const is not None:
            c = self.iface.consts_by_name.get(b.const)
            if c is None:
                self.err(b.pos, f"unknown constant '{b.const}' in {what} bound")
                return None
            value, src, cexpr = c.value, b.const, f"{self.iface.name.upper()}_{b.const.upper()}"
        else:
            assert b.value is not None
            value, src, cexpr = b.value, str(b.value), str(b.value)
        if value < 1:
            self.err(b.pos, f"{what} bound must be at least 1")
            return None
        return value, src, cexpr

    def resolve(self, t: ast.TypeRef) -> Optional[M.Type]:
        if t.kind == "prim":
            if t.name in INT_TYPES:
                bits, signed = INT_TYPES[t.name]
                return M.IntType(t.name, bits, signed)
            return M.BoolType() if t.name == "bool" else M.CapType()
        if t.kind == "named":
            return self.named(t)
        if t.kind == "string":
            assert t.bound is not None
            b = self.bound(t.bound, "string")
            return None if b is None else M.StringType(*b)
        assert t.kind == "sequence" and t.elem is not None and t.bound is not None
        elem = self.resolve(t.elem)
        b = self.bound(t.bound, "sequence")
        if elem is None or b is None:
            return None
        if isinstance(elem, M.CapType):
            self.err(t.elem.pos, "sequence elements must be integers, bool or structs, found 'cap'")
            return None
        if isinstance(elem, M.StructType) and not elem.fixed():
            self.err(t.elem.pos, f"sequence elements must have a fixed size: struct '{elem.struct.name}' "
                     "contains a string or a sequence")
            return None
        return M.SeqType(elem, *b)

    def named(self, t: ast.TypeRef) -> Optional[M.Type]:
        s = self.structs.get(t.name)
        if s is not None:
            return M.StructType(s)
        if t.name == self.defining:
            self.err(t.pos, f"struct '{t.name}' cannot contain itself")
        elif t.name in self.bad_structs:
            return None  # the struct's own errors are already reported
        elif t.name in self.all_structs:
            decl = self.all_structs[t.name]
            self.err(t.pos, f"struct '{t.name}' is used before it is declared (line {decl.pos.line})")
        elif t.name in self.names:
            self.err(t.pos, f"'{t.name}' is not a type (it is declared as {self.names[t.name][1]})")
        else:
            self.err(t.pos, f"unknown type '{t.name}'")
        return None

    # ---- methods ----------------------------------------------------------

    def attrs(self, m: ast.Method) -> Tuple[Optional[int], bool, bool]:
        mid: Optional[int] = None
        seen: Dict[str, Pos] = {}
        for a in m.attrs:
            if a.name in seen:
                self.err(a.pos, f"duplicate attribute '{a.name}' on method '{m.name}'")
                continue
            seen[a.name] = a.pos
            if a.name == "id":
                assert a.value is not None
                if not 1 <= a.value <= MAX_ID:
                    self.err(a.pos, f"method id {a.value} of '{m.name}' is out of range (1..{MAX_ID})")
                else:
                    mid = a.value
        if "id" not in seen:
            self.err(m.pos, f"method '{m.name}' has no id: add [id(N)] before it")
        oneway, deferrable = "oneway" in seen, "deferrable" in seen
        if oneway and deferrable:
            self.err(seen["deferrable"], f"method '{m.name}' cannot be both oneway and deferrable")
        return mid, oneway, deferrable

    def method(self, m: ast.Method) -> None:
        declared = self.declare(m.name, m.pos, "method")
        mid, oneway, deferrable = self.attrs(m)
        params: List[M.Param] = []
        seen: Dict[str, Pos] = {}
        ok = True
        for p in m.params:
            self.check_ident(p.name, p.pos, "parameter")
            if p.name in FIXED_PARAMS:
                self.err(p.pos, f"parameter name '{p.name}' is reserved (the generated functions "
                         "use ep, timeout_ns, ctx, info, reply and status)")
                ok = False
            if p.name in seen:
                self.err(p.pos, f"duplicate parameter '{p.name}' in method '{m.name}'")
                ok = False
                continue
            seen[p.name] = p.pos
            ty = self.resolve(p.type)
            if ty is None:
                ok = False
                continue
            if isinstance(ty, M.CapType) and p.direction == "inout":
                self.err(p.pos, f"parameter '{p.name}': a capability is either 'in' or 'out', not 'inout'")
                ok = False
            if oneway and p.direction != "in":
                self.err(p.pos, f"parameter '{p.name}': oneway method '{m.name}' has no reply, "
                         "so it cannot have out or inout parameters")
                ok = False
            params.append(M.Param(p.pos, p.direction, p.name, ty, p.doc))
        self.check_len_names([(p.name, p.pos, p.type) for p in params], f"method '{m.name}'")
        raises = self.raises(m, oneway)
        if not ok or raises is None or mid is None or not declared:
            return
        mm = M.Method(m.pos, m.name, mid, oneway, deferrable, params, raises, m.doc)
        self.check_size(mm)
        self.iface.methods.append(mm)

    def raises(self, m: ast.Method, oneway: bool) -> Optional[List[M.Error]]:
        out: List[M.Error] = []
        ok = True
        if oneway and m.raises:
            self.err(m.raises[0][1], f"oneway method '{m.name}' has no reply, so it cannot raise errors")
            return None
        for name, pos in m.raises:
            e = self.errors_by_name.get(name)
            if e is None:
                if name in self.names and self.names[name][1] != "error":
                    self.err(pos, f"'{name}' in the raises list of '{m.name}' is not an error "
                             f"(it is declared as {self.names[name][1]})")
                else:
                    self.err(pos, f"unknown error '{name}' in the raises list of '{m.name}' "
                             "(declare it in an errors block)")
                ok = False
            elif e in out:
                self.err(pos, f"error '{name}' is listed twice in the raises list of '{m.name}'")
                ok = False
            else:
                out.append(e)
        return out if ok else None

    def check_size(self, m: M.Method) -> None:
        _, req = m.req_words()
        _, rep = m.rep_words()
        if req > M.MSG_WORDS:
            self.err(m.pos, f"method '{m.name}': request needs up to {req} message words "
                     f"(1 for the interface hash + {req - 1} for parameters), "
                     f"but a message holds MK_MSG_WORDS = {M.MSG_WORDS}")
        if rep > M.MSG_WORDS:
            self.err(m.pos, f"method '{m.name}': reply needs up to {rep} message words, "
                     f"but a message holds MK_MSG_WORDS = {M.MSG_WORDS}")
        if m.req_caps() > M.MSG_CAPS:
            self.err(m.pos, f"method '{m.name}': request carries {m.req_caps()} capabilities, "
                     f"but a message holds MK_MSG_CAPS = {M.MSG_CAPS}")
        if m.rep_caps() > M.MSG_CAPS:
            self.err(m.pos, f"method '{m.name}': reply carries {m.rep_caps()} capabilities, "
                     f"but a message holds MK_MSG_CAPS = {M.MSG_CAPS}")

    def check_ids(self) -> None:
        by_id: Dict[int, M.Method] = {}
        for m in sorted(self.iface.methods, key=lambda m: m.pos):
            if m.id in by_id:
                first = by_id[m.id]
                self.err(m.pos, f"duplicate method id {m.id}: '{m.name}' and '{first.name}' "
                         f"(line {first.pos.line})")
            else:
                by_id[m.id] = m

    # ---- generated C names ------------------------------------------------

    def check_c_names(self) -> None:
        from .cnames import generated_names  # late import: avoids a cycle
        seen: Dict[str, str] = {}
        for cname, pos, what in generated_names(self.iface):
            if cname in seen:
                self.err(pos, f"{what} generates the C name '{cname}', "
                         f"which is already used by {seen[cname]}")
            else:
                seen[cname] = what
        # Parameters are in scope inside generated functions that use those names.
        for m in self.iface.methods:
            for p in m.params:
                if p.name in seen:
                    self.err(p.pos, f"parameter '{p.name}' would hide the generated C name "
                             f"'{p.name}' of {seen[p.name]}")


def check(tree: ast.Interface, source: str) -> M.Interface:
    return Checker(tree, source).run()
