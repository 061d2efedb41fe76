#!/usr/bin/env python3
"""Import rules between the modules of gate-controller, over cargo-modules' graph.

Reads the DOT of

    cargo modules dependencies --lib -p gate-controller \
        --no-fns --no-types --no-traits --no-owns

(from a file argument, or stdin) and checks two rules:

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


def main():
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
