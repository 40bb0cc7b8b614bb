#!/usr/bin/env python3
"""Checks that frameseek's modules import each other without cycles (issue 14).

Reads every `src/**/*.rs` file (test modules left out: everything from a `#[cfg(test)]`
line on), collects the paths it names (`crate::a::b`, `super::x`, `self::x`) and builds two
graphs:

- modules: `a -> b` when a file of top-level module `a` names `crate::b` (the binary's
  `cli` and `main` may use anything; nothing may use them);
- sibling files: inside one folder, `x.rs -> y.rs` when `x` names `y` (a folder's `mod.rs`
  declares its children and re-exports them, so edges to and from `mod.rs` are not counted).

Prints each cycle found and exits 1; prints the module graph and exits 0 when there is none.
Usage: python3 tools/check-module-cycles.py [SRC_DIR]
"""

import re
import sys
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "src")
TOP_EXEMPT = {"cli", "main", "lib"}


def module_path(file: Path) -> list[str]:
    parts = list(file.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return parts


def code_of(file: Path) -> str:
    text = file.read_text()
    cut = re.search(r"^\s*#\[cfg\(test\)\]", text, re.M)
    text = text[: cut.start()] if cut else text
    text = re.sub(r"//[^\n]*", "", text)  # comments and doc comments
    return text


def named_paths(code: str, here: list[str], is_mod_rs: bool) -> set[tuple[str, ...]]:
    """Absolute module paths a file names, from `crate::`, `super::` and `self::`."""
    out = set()
    # `use a::{b, c::d}` groups are expanded one level, which is what this code base uses.
    for m in re.finditer(r"\b(crate|super|self)((?:::\w+)+)(?:::\{([^}]*)\})?", code):
        root, rest, group = m.group(1), m.group(2), m.group(3)
        segs = [s for s in rest.split("::") if s]
        # The folder a file's `super` and `self` refer to.
        if root == "crate":
            base: list[str] = []
        else:
            mod = here if is_mod_rs else here
            base = mod[:-1] if root == "super" else mod
            while segs and segs[0] == "super":
                base, segs = base[:-1], segs[1:]
        tails = [segs]
        if group:
            tails = [segs + [g.strip().split("::")[0]] for g in group.split(",") if g.strip()]
        for t in tails:
            out.add(tuple(base + t))
    return out


def main() -> int:
    files = sorted(SRC.rglob("*.rs"))
    modules = {tuple(module_path(f)): f for f in files}
    top_edges: dict[str, set[str]] = {}
    file_edges: dict[Path, set[Path]] = {}
    for f in files:
        here = module_path(f)
        if not here:
            continue
        top = here[0]
        for p in named_paths(code_of(f), here, f.name == "mod.rs"):
            if not p:
                continue
            if p[0] != top and p[0] not in ("std",) and (p[0],) in modules:
                if top not in TOP_EXEMPT:
                    top_edges.setdefault(top, set()).add(p[0])
            # The longest prefix that is a file of the code base.
            for n in range(len(p), 0, -1):
                target = modules.get(p[:n])
                if target is not None:
                    break
            else:
                continue
            same_folder = target.parent == f.parent
            if target != f and same_folder and "mod.rs" not in (target.name, f.name):
                file_edges.setdefault(f, set()).add(target)
    bad = []
    for top, deps in top_edges.items():
        for d in deps:
            if d in TOP_EXEMPT:
                bad.append(f"module {top} uses {d}, which only the binary may use")
    bad += [" -> ".join(c) for c in cycles(top_edges)]
    bad += [
        " -> ".join(str(p.relative_to(SRC.parent)) for p in c)
        for c in cycles({k: v for k, v in file_edges.items()})
    ]
    if bad:
        print("import cycles found:")
        for b in bad:
            print("  " + b)
        return 1
    print(f"no import cycles among {len(top_edges)} modules and {len(files)} files")
    for top in sorted(top_edges):
        print(f"  {top} -> {', '.join(sorted(top_edges[top]))}")
    return 0


def cycles(graph):
    """Each strongly connected component of more than one node (Tarjan), as a list."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp, key=str))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
