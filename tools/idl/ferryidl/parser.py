"""Parser: tokens -> ast.Interface. Stops at the first syntax error.

Grammar (see docs/idl.md for the full reference):

    file      = interface EOF
    interface = "interface" NAME "{" { member } "}" ";"
    member    = const | errors | struct | method
    const     = "const" NAME "=" INT ";"
    errors    = "errors" "{" { NAME "=" INT ";" } "}" ";"
    struct    = "struct" NAME "{" { type NAME ";" } "}" ";"
    method    = [ "[" attr { "," attr } "]" ] NAME
                "(" [ param { "," param } ] ")" [ "raises" "(" NAME { "," NAME } ")" ] ";"
    attr      = "id" "(" INT ")" | "oneway" | "deferrable"
    param     = ( "in" | "out" | "inout" ) type NAME
    type      = prim | NAME | "string" "<" bound ">" | "sequence" "<" elem "," bound ">"
    elem      = prim | NAME
    bound     = INT | NAME
"""

from typing import List, Optional

from . import ast
from .diag import IdlError
from .lexer import Token

INT_TYPES = {
    "u8": (8, False), "u16": (16, False), "u32": (32, False), "u64": (64, False),
    "i8": (8, True), "i16": (16, True), "i32": (32, True), "i64": (64, True),
}
PRIM_TYPES = set(INT_TYPES) | {"bool", "cap"}
# Words that cannot be used as names anywhere.
RESERVED = PRIM_TYPES | {
    "interface", "const", "errors", "struct", "in", "out", "inout", "raises",
    "string", "sequence",
}
ATTRS = ("id", "oneway", "deferrable")
DIRECTIONS = ("in", "out", "inout")


class Parser:
    def __init__(self, toks: List[Token]) -> None:
        self.toks = toks
        self.i = 0

    # ---- token helpers ----------------------------------------------------

    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Token:
        t = self.peek()
        if t.kind != "eof":
            self.i += 1
        return t

    def at(self, text: str) -> bool:
        t = self.peek()
        return t.kind in ("punct", "ident") and t.text == text

    def expect(self, text: str, what: str) -> Token:
        t = self.peek()
        if not self.at(text):
            raise IdlError(t.pos, f"expected '{text}' {what}, found {t.describe()}")
        return self.next()

    def name(self, what: str) -> Token:
        t = self.peek()
        if t.kind != "ident":
            raise IdlError(t.pos, f"expected {what}, found {t.describe()}")
        if t.text in RESERVED:
            raise IdlError(t.pos, f"'{t.text}' is a reserved word and cannot be used as {what}")
        return self.next()

    def integer(self, what: str) -> Token:
        t = self.peek()
        if t.kind != "int":
            raise IdlError(t.pos, f"expected {what}, found {t.describe()}")
        return self.next()

    def end_of_block(self, what: str) -> None:
        self.expect("}", f"to close {what}")
        self.expect(";", f"after the '}}' of {what}")

    # ---- grammar ----------------------------------------------------------

    def parse_file(self) -> ast.Interface:
        t = self.peek()
        if t.kind == "eof":
            raise IdlError(t.pos, "no interface in file: expected 'interface'")
        iface = self.parse_interface()
        t = self.peek()
        if self.at("interface"):
            raise IdlError(t.pos, "only one interface per file")
        if t.kind != "eof":
            raise IdlError(t.pos, f"expected end of file after the interface, found {t.describe()}")
        return iface

    def parse_interface(self) -> ast.Interface:
        t = self.peek()
        if not self.at("interface"):
            raise IdlError(t.pos, f"expected 'interface', found {t.describe()}")
        self.next()
        n = self.name("an interface name")
        iface = ast.Interface(n.pos, n.text, t.doc)
        self.expect("{", "after the interface name")
        while not self.at("}"):
            self.parse_member(iface)
        self.end_of_block(f"interface '{iface.name}'")
        return iface

    def parse_member(self, iface: ast.Interface) -> None:
        t = self.peek()
        if t.kind == "eof":
            raise IdlError(t.pos, f"expected '}}' to close interface '{iface.name}', found end of file")
        if self.at("const"):
            iface.consts.append(self.parse_const())
        elif self.at("errors"):
            self.parse_errors(iface)
        elif self.at("struct"):
            iface.structs.append(self.parse_struct())
        elif self.at("[") or (t.kind == "ident" and t.text not in RESERVED):
            iface.methods.append(self.parse_method())
        else:
            raise IdlError(t.pos, "expected a const, errors block, struct or method, "
                           f"found {t.describe()}")

    def parse_const(self) -> ast.Const:
        t = self.next()
        n = self.name("a constant name")
        self.expect("=", f"after constant name '{n.text}'")
        v = self.integer("an integer value")
        self.expect(";", "after the constant")
        return ast.Const(n.pos, n.text, v.value, t.doc)

    def parse_errors(self, iface: ast.Interface) -> None:
        self.next()
        self.expect("{", "after 'errors'")
        while not self.at("}"):
            n = self.name("an error name")
            self.expect("=", f"after error name '{n.text}'")
            v = self.integer("an error number")
            self.expect(";", "after the error")
            iface.errors.append(ast.ErrorDecl(n.pos, n.text, v.value, n.doc))
        self.end_of_block("the errors block")

    def parse_struct(self) -> ast.Struct:
        t = self.next()
        n = self.name("a struct name")
        self.expect("{", f"after struct name '{n.text}'")
        fields = []
        while not self.at("}"):
            doc = self.peek().doc
            ty = self.parse_type()
            fn = self.name("a field name")
            self.expect(";", "after the field")
            fields.append(ast.Field(fn.pos, fn.text, ty, doc))
        self.end_of_block(f"struct '{n.text}'")
        return ast.Struct(n.pos, n.text, fields, t.doc)

    def parse_attrs(self) -> List[ast.Attr]:
        attrs: List[ast.Attr] = []
        if not self.at("["):
            return attrs
        self.next()
        while True:
            a = self.peek()
            if a.kind != "ident" or a.text not in ATTRS:
                raise IdlError(a.pos, "expected a method attribute (id(N), oneway or deferrable), "
                               f"found {a.describe()}")
            self.next()
            if a.text == "id":
                self.expect("(", "after 'id'")
                v = self.integer("a method id")
                self.expect(")", "after the method id")
                attrs.append(ast.Attr(a.pos, "id", v.value))
            else:
                attrs.append(ast.Attr(a.pos, a.text))
            if self.at("]"):
                self.next()
                return attrs
            self.expect(",", "or ']' after a method attribute")

    def parse_method(self) -> ast.Method:
        doc = self.peek().doc
        attrs = self.parse_attrs()
        n = self.name("a method name")
        self.expect("(", f"after method name '{n.text}'")
        params: List[ast.Param] = []
        if not self.at(")"):
            while True:
                params.append(self.parse_param())
                if self.at(")"):
                    break
                self.expect(",", "or ')' after a parameter")
        self.next()
        raises = []
        if self.at("raises"):
            self.next()
            self.expect("(", "after 'raises'")
            while True:
                e = self.name("an error name")
                raises.append((e.text, e.pos))
                if self.at(")"):
                    break
                self.expect(",", "or ')' in the raises list")
            self.next()
        self.expect(";", f"after method '{n.text}'")
        return ast.Method(n.pos, n.text, attrs, params, raises, doc)

    def parse_param(self) -> ast.Param:
        t = self.peek()
        if t.kind != "ident" or t.text not in DIRECTIONS:
            raise IdlError(t.pos, "expected a parameter direction 'in', 'out' or 'inout', "
                           f"found {t.describe()}")
        self.next()
        ty = self.parse_type()
        n = self.name("a parameter name")
        return ast.Param(n.pos, t.text, n.text, ty, t.doc)

    def parse_bound(self, what: str) -> ast.Bound:
        t = self.peek()
        if t.kind == "int":
            self.next()
            return ast.Bound(t.pos, value=t.value)
        if t.kind == "ident" and t.text not in RESERVED:
            self.next()
            return ast.Bound(t.pos, const=t.text)
        raise IdlError(t.pos, f"expected {what} (an integer or a constant name), found {t.describe()}")

    def parse_simple_type(self) -> Optional[ast.TypeRef]:
        t = self.peek()
        if t.kind == "ident" and t.text in PRIM_TYPES:
            self.next()
            return ast.TypeRef(t.pos, "prim", t.text)
        if t.kind == "ident" and t.text not in RESERVED:
            self.next()
            return ast.TypeRef(t.pos, "named", t.text)
        return None

    def parse_type(self) -> ast.TypeRef:
        t = self.peek()
        if self.at("string"):
            self.next()
            if not self.at("<"):
                raise IdlError(t.pos, "string needs a bound: string<N>")
            self.next()
            b = self.parse_bound("a string bound")
            self.expect(">", "after the string bound")
            return ast.TypeRef(t.pos, "string", "string", bound=b)
        if self.at("sequence"):
            self.next()
            if not self.at("<"):
                raise IdlError(t.pos, "sequence needs an element type and a bound: sequence<T, N>")
            self.next()
            e = self.peek()
            elem = self.parse_simple_type()
            if elem is None:
                raise IdlError(e.pos, "sequence elements must be integers, bool or structs, "
                               f"found {e.describe()}")
            if self.at(">"):
                raise IdlError(t.pos, "sequence needs a bound: sequence<T, N>")
            self.expect(",", "after the sequence element type")
            b = self.parse_bound("a sequence bound")
            self.expect(">", "after the sequence bound")
            return ast.TypeRef(t.pos, "sequence", "sequence", bound=b, elem=elem)
        ty = self.parse_simple_type()
        if ty is None:
            raise IdlError(t.pos, f"expected a type, found {t.describe()}")
        return ty


def parse(toks: List[Token]) -> ast.Interface:
    return Parser(toks).parse_file()
