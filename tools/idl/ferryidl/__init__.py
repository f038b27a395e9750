"""ferry-idl: the Ferry interface compiler (stdlib only).

Pipeline: lexer -> parser (AST) -> sema (checks, resolved model, wire
layout, interface hash) -> generators (C header, client stubs, server
dispatch, Markdown reference). See docs/idl.md for the language.
"""

VERSION = "1"
