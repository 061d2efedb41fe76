#!/usr/bin/env python3
"""Import rules between the modules of gate-controller.

The module graph comes from the sources (`--src DIR`, what `make lint` runs: no tool to
install) or from the DOT of

    cargo modules dependencies --lib -p gate-controller \
        --no-fns --no-types --no-traits --no-owns

(cargo-modules 0.27, from a file argument or stdin; a cross-check). From the sources,
every module file (`lib.rs`, `a.rs`, `a/mod.rs`, `a/b.rs`) is a module; its edges are the
paths it names that start with `crate::`, `super::` or `self::`, or with one of its own
submodules (`use` trees expanded, comments and `#[cfg(test)]` modules left out), each
taken to the longest module it names. Then two rules are checked:

1. No import cycle between modules. The graph is collapsed to modules: every node is
   mapped to the module that holds it (the longest node path that is a module), and
   every `uses` edge becomes an edge between those modules. Edges between a module and
   its own ancestors or descendants are not counted: a parent declares its children and
   re-exports their items, and a child uses its parent's shared items (`super::`), so a
   module and its submodules are one unit of code. Edges between siblings, cousins or
   unrelated modules count, at every depth: `api::auth -> api::config -> api::auth` is
   a cycle, as is `config -> api::config -> config`.

2. The pure core imports nothing from the shell: no module reachable (through any edge,
   parents and children included) from machine, decision, record, invariants, party,
   prompt or beamcount lies in runtime, api, upstream or config.

Exits 1 listing each cycle (as a path of modules) and each forbidden path, 0 when both
rules hold, 2 when the graph cannot be read.
"""

import re
import sys
from collections import defaultdict

CORE = ["machine", "decision", "record", "invariants", "party", "prompt", "beamcount"]
SHELL = ["runtime", "api", "upstream", "config"]

NODE = re.compile(r'^\s*"([^"]+)"\s*\[(.*?)\]\s*;?\s*(?://.*)?$')
EDGE = re.compile(r'^\s*"([^"]+)"\s*->\s*"([^"]+)"\s*(?:\[(.*?)\])?\s*;?\s*(?://.*)?$')


def read_graph(text):
    """Module paths (crate-relative, "" for the root) and `uses` edges between nodes."""
    nodes, edges, crate = {}, [], None
    for line in text.splitlines():
        m = EDGE.match(line)
        if m:
            src, dst, attrs = m.group(1), m.group(2), m.group(3) or ""
            if 'label="owns"' in attrs:
                continue
            edges.append((src, dst))
            continue
        m = NODE.match(line)
        if m:
            nodes[m.group(1)] = m.group(2)
    modules = set()
    for node, attrs in nodes.items():
        # The crate's root is the node labelled `crate` (external nodes such as
        # `alloc::fmt` may come first in the file).
        if crate is None and re.search(r'label="crate\b', attrs):
            crate = node
        # Module nodes are labelled `mod` (`pub mod`, `pub(crate) mod`, or `crate`).
        if re.search(r"\bmod\b|\bcrate\b", attrs) or "::" not in node:
            modules.add(node)
    return crate, modules, edges


def module_of(node, modules):
    """The module holding `node`: the longest prefix of its path that is a module."""
    parts = node.split("::")
    for n in range(len(parts), 0, -1):
        cand = "::".join(parts[:n])
        if cand in modules:
            return cand
    return None


def rel(path, crate):
    """`crate::a::b` as `a::b` (the root as `crate`)."""
    return path[len(crate) + 2:] if path.startswith(crate + "::") else "crate"


def related(a, b):
    """Whether one of the two modules is the other or contains it."""
    return a == b or a.startswith(b + "::") or b.startswith(a + "::") or "crate" in (a, b)


def sccs(graph, nodes):
    """Strongly connected components (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out


def path_between(graph, start, goal, allowed):
    """A shortest path from `start` to `goal` inside `allowed` (BFS), or None."""
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w in allowed and w not in prev:
                    prev[w] = v
                    if w == goal:
                        path = [w]
                        while prev[path[-1]] is not None:
                            path.append(prev[path[-1]])
                        return path[::-1]
                    nxt.append(w)
        frontier = nxt
    return None


def under(module, roots):
    return any(module == r or module.startswith(r + "::") for r in roots)


def strip(text):
    """The source without comments, string literals and `#[cfg(test)]` modules."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"'(?:\\.|[^'\\])'", "' '", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 0, m.end() - 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        i = j + 1
    out.append(text[i:])
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d, e}}` as [`a::b`, `a::c::d`, `a::c::e`] (renames and globs dropped)."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))
    depth, start = 0, None
    for k, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = k
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner = tree[:start], tree[start + 1:k]
                parts, d, last = [], 0, 0
                for q, c in enumerate(inner):
                    if c == "{":
                        d += 1
                    elif c == "}":
                        d -= 1
                    elif c == "," and d == 0:
                        parts.append(inner[last:q])
                        last = q + 1
                parts.append(inner[last:])
                paths = []
                for part in parts:
                    if part:
                        paths += expand_use(prefix + part)
                return paths
    return [tree.rstrip("*").rstrip(":")]


def source_graph(src):
    """(crate, modules, edges) read from the module files under `src`."""
    import os
    files = {}
    for root, _, names in os.walk(src):
        for n in names:
            if not n.endswith(".rs"):
                continue
            rel_path = os.path.relpath(os.path.join(root, n), src)[:-3].split(os.sep)
            if rel_path == ["lib"]:
                mod = "crate"
            else:
                if rel_path[-1] == "mod":
                    rel_path = rel_path[:-1]
                mod = "crate::" + "::".join(rel_path)
            files[mod] = os.path.join(root, n)
    # Only files reachable through `mod` declarations are modules (bins, benches and
    # stray files are not).
    modules, todo = {"crate"}, ["crate"]
    while todo:
        m = todo.pop()
        if m not in files:
            continue
        body = strip(open(files[m], encoding="utf-8").read())
        for d in re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", body, flags=re.M):
            child = f"{m}::{d}"
            if child not in modules:
                modules.add(child)
                todo.append(child)
    edges = []
    for m in sorted(modules):
        if m not in files:
            continue
        body = strip(open(files[m], encoding="utf-8").read())
        children = {c.split("::")[-1] for c in modules if c.rsplit("::", 1)[0] == m}
        paths = []
        for tree in re.findall(r"\buse\s+([^;]+);", body):
            paths += expand_use(tree)
        paths += re.findall(r"\b(?:crate|super|self)(?:::\w+)+", body)
        for path in paths:
            segs = [x for x in path.split("::") if x]
            if not segs:
                continue
            if segs[0] == "crate":
                base = ["crate"]
                segs = segs[1:]
            elif segs[0] in ("super", "self"):
                base = m.split("::")
                while segs and segs[0] in ("super", "self"):
                    if segs[0] == "super":
                        base = base[:-1] or ["crate"]
                    segs = segs[1:]
            elif segs[0] in children:
                base = m.split("::")
            else:
                continue  # another crate
            target = "::".join(base + segs)
            edges.append((m, target))
    return "crate", modules, edges


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--src":
        crate, modules, raw = source_graph(sys.argv[2])
    else:
        text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
        crate, modules, raw = read_graph(text)
    if not crate or not modules:
        print("import-cycles: no modules in the graph (is it cargo-modules' DOT?)")
        return 2
    all_edges, cycle_edges = defaultdict(set), defaultdict(set)
    names = set()
    for src, dst in raw:
        a, b = module_of(src, modules), module_of(dst, modules)
        if a is None or b is None:
            continue
        a, b = rel(a, crate), rel(b, crate)
        names.update((a, b))
        if a != b:
            all_edges[a].add(b)
        if not related(a, b):
            cycle_edges[a].add(b)
    for m in modules:
        names.add(rel(m, crate))
    failed = False
    for comp in sccs(cycle_edges, names):
        if len(comp) < 2:
            continue
        failed = True
        first = comp[0]
        # One cycle through the component's first module, then every edge inside it.
        back = [m for m in comp if first in cycle_edges[m]]
        loop = None
        for b in back:
            p = path_between(cycle_edges, first, b, set(comp))
            if p and (loop is None or len(p) < len(loop)):
                loop = p
        loop = (loop or [first]) + [first]
        print("import cycle: " + " -> ".join(loop))
        for a in comp:
            for b in sorted(cycle_edges[a]):
                if b in comp:
                    print(f"    {a} -> {b}")
    core = sorted(m for m in names if under(m, CORE))
    for start in core:
        for bad in sorted(m for m in names if under(m, SHELL)):
            p = path_between(all_edges, start, bad, names)
            if p:
                failed = True
                print("core imports the shell: " + " -> ".join(p))
                break
    if failed:
        return 1
    print(f"import-cycles: {len(names)} modules, no import cycle, the core imports no shell")
    return 0


if __name__ == "__main__":
    sys.exit(main())
