"""Which language a file is, and how to read each grammar's definitions.

Grammars come from the official per-language wheels (tree-sitter-python, ...), which ship
compiled parsers: nothing is downloaded, ever. Each language lists the node types that
define a symbol, with the kind we report for them. Parsers are cached per thread because a
tree-sitter Parser is not thread-safe.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tree_sitter import Language, Parser

from indexer.core.types import SymbolKind


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    module: str
    loader: str  # function of the module returning the grammar pointer
    definitions: dict[str, SymbolKind]
    # Nodes that wrap a definition (decorators, `export`, `template<>`): the chunk starts there.
    wrappers: frozenset[str] = field(default_factory=frozenset)


SPECS: dict[str, LanguageSpec] = {
    "python": LanguageSpec("python", "tree_sitter_python", "language",
                           {"function_definition": "function", "class_definition": "class"},
                           frozenset({"decorated_definition"})),
    "javascript": LanguageSpec("javascript", "tree_sitter_javascript", "language", {
        "function_declaration": "function", "generator_function_declaration": "function",
        "class_declaration": "class", "method_definition": "method", "variable_declarator": "function",
        # Functions as values: class fields (`handle = () => {}`), object-literal properties
        # (`{parse: (s) => ...}`), assignments (`exports.parse = function`, `Foo.prototype.x
        # = ...`) and an anonymous `export default function`. See `_name_node`.
        "field_definition": "method", "pair": "function", "assignment_expression": "function",
        "function_expression": "function", "arrow_function": "function",
    }, frozenset({"export_statement", "lexical_declaration", "variable_declaration", "expression_statement"})),
    "typescript": LanguageSpec("typescript", "tree_sitter_typescript", "language_typescript", {
        "function_declaration": "function", "generator_function_declaration": "function",
        "class_declaration": "class", "abstract_class_declaration": "class", "method_definition": "method",
        "interface_declaration": "interface", "type_alias_declaration": "type", "enum_declaration": "enum",
        "variable_declarator": "function", "function_signature": "function", "module": "module",
        "public_field_definition": "method", "pair": "function", "assignment_expression": "function",
        "function_expression": "function", "arrow_function": "function",
    }, frozenset({"export_statement", "lexical_declaration", "variable_declaration", "expression_statement"})),
    "go": LanguageSpec("go", "tree_sitter_go", "language", {
        "function_declaration": "function", "method_declaration": "method", "type_spec": "type",
    }, frozenset({"type_declaration"})),
    "rust": LanguageSpec("rust", "tree_sitter_rust", "language", {
        "function_item": "function", "struct_item": "struct", "enum_item": "enum", "trait_item": "trait",
        "impl_item": "impl", "mod_item": "module", "macro_definition": "function", "type_item": "type",
        "function_signature_item": "function",  # a trait's required methods
    }),
    "java": LanguageSpec("java", "tree_sitter_java", "language", {
        "class_declaration": "class", "interface_declaration": "interface", "enum_declaration": "enum",
        "record_declaration": "class", "method_declaration": "method", "constructor_declaration": "method",
        "annotation_type_declaration": "interface",
    }),
    "c": LanguageSpec("c", "tree_sitter_c", "language", {
        "function_definition": "function", "struct_specifier": "struct", "enum_specifier": "enum",
    }, frozenset({"type_definition"})),
    "cpp": LanguageSpec("cpp", "tree_sitter_cpp", "language", {
        "function_definition": "function", "struct_specifier": "struct", "enum_specifier": "enum",
        "class_specifier": "class", "namespace_definition": "namespace",
    }, frozenset({"template_declaration", "type_definition"})),
    "csharp": LanguageSpec("csharp", "tree_sitter_c_sharp", "language", {
        "class_declaration": "class", "struct_declaration": "struct", "interface_declaration": "interface",
        "enum_declaration": "enum", "record_declaration": "class", "method_declaration": "method",
        "constructor_declaration": "method", "namespace_declaration": "namespace",
    }),
    "ruby": LanguageSpec("ruby", "tree_sitter_ruby", "language", {
        "method": "method", "singleton_method": "method", "class": "class", "module": "module",
    }),
    "php": LanguageSpec("php", "tree_sitter_php", "language_php", {
        "function_definition": "function", "class_declaration": "class", "method_declaration": "method",
        "interface_declaration": "interface", "trait_declaration": "trait", "enum_declaration": "enum",
    }),
    "bash": LanguageSpec("bash", "tree_sitter_bash", "language", {"function_definition": "function"}),
}
SPECS["tsx"] = LanguageSpec("tsx", "tree_sitter_typescript", "language_tsx", SPECS["typescript"].definitions,
                            SPECS["typescript"].wrappers)

_EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp",
    ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp", ".cs": "csharp", ".rb": "ruby",
    ".php": "php", ".sh": "bash", ".bash": "bash", ".zsh": "bash",
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".ini": "ini", ".cfg": "ini",
    ".xml": "xml", ".html": "html", ".htm": "html", ".css": "css", ".scss": "css", ".sql": "sql",
    ".kt": "kotlin", ".swift": "swift", ".scala": "scala", ".lua": "lua", ".r": "r", ".pl": "perl",
    ".ex": "elixir", ".exs": "elixir", ".erl": "erlang", ".hs": "haskell", ".ml": "ocaml", ".dart": "dart",
    ".vue": "vue", ".svelte": "svelte", ".proto": "protobuf", ".gradle": "groovy", ".rst": "text",
    ".txt": "text", ".cmake": "cmake",
}
_NAMES = {"Makefile": "make", "Dockerfile": "dockerfile", "CMakeLists.txt": "cmake", "Gemfile": "ruby",
          "Rakefile": "ruby"}


def language_for_path(rel_path: str) -> str:
    """Language name for a path; "text" for anything without a better name."""
    p = PurePosixPath(rel_path)
    return _NAMES.get(p.name) or _EXTENSIONS.get(p.suffix.lower(), "text")


_languages: dict[str, Language] = {}
_local = threading.local()
_lock = threading.Lock()


def parser_for(language: str) -> Parser | None:
    """A thread-local parser for a language with a grammar, else None."""
    spec = SPECS.get(language)
    if spec is None:
        return None
    parsers: dict[str, Parser] = getattr(_local, "parsers", None) or {}
    _local.parsers = parsers
    if language not in parsers:
        with _lock:
            if language not in _languages:
                module = importlib.import_module(spec.module)
                _languages[language] = Language(getattr(module, spec.loader)())
        parsers[language] = Parser(_languages[language])
    return parsers[language]
