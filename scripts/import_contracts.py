"""An import-linter contract type: no private name imported from another module.

``from a.b import _helper`` (or ``import a._private`` from outside ``a``) ties the importer to
another module's internals. A name another module needs is public API: name it without the
underscore where it lives. Every import counts, also those inside functions. Dunder names
(``__version__``) are public.
"""

from __future__ import annotations

import ast
import importlib.util

from importlinter import Contract, ContractCheck, fields, output


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


class PrivateNamesContract(Contract):
    type_name = "private"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        found = []
        for module in sorted(graph.modules):
            if not any(module == p or module.startswith(p + ".") for p in self.packages):
                continue
            spec = importlib.util.find_spec(module)
            if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                continue
            with open(spec.origin, encoding="utf-8") as handle:
                tree = ast.parse(handle.read(), filename=spec.origin)
            package = module if spec.origin.endswith("__init__.py") else module.rpartition(".")[0]
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = package.split(".")
                        base = base[: len(base) - node.level + 1]
                        source = ".".join(base + ([node.module] if node.module else []))
                    else:
                        source = node.module or ""
                    if source == module:
                        continue
                    for alias in node.names:
                        if _private(alias.name) or any(_private(p) for p in source.split(".")):
                            found.append((module, node.lineno, source, alias.name))
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        parts = alias.name.split(".")
                        for i, part in enumerate(parts):
                            inside = module.startswith(".".join(parts[:i]) + ".") if i else False
                            if _private(part) and not inside:
                                found.append((module, node.lineno, alias.name, ""))
        return ContractCheck(kept=not found, warnings=None, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for module, line, source, name in check.metadata["found"]:
            what = f"{source}.{name}" if name else source
            output.print_error(f"{module}:{line} imports the private {what}")
            output.new_line()
