#!/usr/bin/env bash
# Layout check: prints the import cycles among the crate's modules in src/
# and the longest files in src/ by non-test lines.
#
#   bash scripts/layout.sh             # exit 1 on a cycle or a file over the limit
#   bash scripts/layout.sh --report    # print the same, always exit 0
#
# Options: --report, --limit N (default 400), --top N (files to list,
# default 10; every file over the limit is listed anyway), --src DIR (default
# src/ of this repository), --graph (print every import edge and exit),
# --self-test (checks the parser on a small nested tree).
#
# What counts (plain python3, no packages):
# - Modules: src/lib.rs is the crate root; src/a/b.rs and src/a/b/mod.rs are
#   module a::b; inline `mod x { … }` blocks belong to their file's module.
# - An import is a `use` of a path starting with crate::, super:: or self::
#   (or with a name of a child module), and such a path written inline in
#   code (`crate::x::y`, `super::super::x`). Each path goes to the deepest
#   module it names; a name a module re-exports (`pub use child::X`) is
#   followed to where it is defined.
# - Not imports: comments (doc examples included), string literals,
#   `#[cfg(test)] mod …` blocks and files, and a module's `pub use` of its
#   own descendants (a re-export is not a dependency of the child on it).
# - Non-test lines: the lines before the `#[cfg(test)] mod` block (the whole
#   file when there is none).
set -euo pipefail
export LAYOUT_CALLER_PWD="$PWD"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 - "$@" <<'PY'
import os
import re
import signal
import sys
import tempfile

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`

# ---------------------------------------------------------------- lexing

def clean(text):
    """The code with comments and the contents of string and char literals
    replaced by spaces; newlines and offsets are kept."""
    out = list(text)
    n = len(text)
    i = 0

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    def ident_char(c):
        return c.isalnum() or c == "_"

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c in "rb" and (i == 0 or not ident_char(text[i - 1])) and re.match(r'(?:br|r)#*"', text[i:i + 260]):
            m = re.match(r'(?:br|r)(#*)"', text[i:])
            close = '"' + m.group(1)
            start = i + m.end()
            j = text.find(close, start)
            j = n if j < 0 else j
            blank(start, j)
            i = j + len(close)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, min(j, n))
            i = j + 1
        elif c == "'":
            if i + 1 < n and text[i + 1] == "\\":
                j = i + 3
                while j < n and text[j] != "'":
                    j += 1
                blank(i + 1, j)
                i = j + 1
            elif i + 2 < n and text[i + 2] == "'":
                blank(i + 1, i + 2)
                i += 3
            else:
                i += 1  # a lifetime or a label
        else:
            i += 1
    return "".join(out)


def match_brace(code, open_at):
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(code)


def blank_span(code, a, b):
    return code[:a] + re.sub(r"[^\n]", " ", code[a:b]) + code[b:]


ATTRS_BEFORE = re.compile(r"((?:#\[[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*\]\s*)*)$")
MOD_ITEM = re.compile(r"(?<![\w$])(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(?:r#)?(\w+)\s*([{;])")
USE_ITEM = re.compile(r"(?<![\w$])(pub(?:\s*\([^)]*\))?\s+)?use\s+([^;{}]*(?:\{[^;]*\})?[^;{}]*);")
INLINE_PATH = re.compile(r"(?<![\w$:#'])((?:crate|super|self|[a-z_]\w*)(?:::(?:\w+))+)")
TEST_MOD_AT = re.compile(r"^\s*#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\s*\([^)]*\))?\s+)?mod\s")


def is_cfg_test(code, at):
    attrs = ATTRS_BEFORE.search(code[max(0, at - 2000):at]).group(1)
    return re.search(r"#\[\s*cfg\s*\(\s*test\s*\)\s*\]", attrs) is not None


def non_test_lines(text):
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if TEST_MOD_AT.match("\n".join(lines[k:k + 20])):
            return k, len(lines)
    return len(lines), len(lines)

# ---------------------------------------------------------------- use trees

def tokens_of(tree):
    return re.findall(r"r#\w+|\w+|::|[{},*]", tree)


def parse_use(tree):
    """Leaves of a use tree: (segments, alias). A leading `::` is kept as a
    segment; `self` in a group is kept as the last segment."""
    toks = tokens_of(tree)
    pos = 0

    def parse(prefix):
        nonlocal pos
        segs = list(prefix)
        if pos < len(toks) and toks[pos] == "::":
            pos += 1
            if not segs:
                segs.append("::")
        while pos < len(toks):
            t = toks[pos]
            if t == "{":
                pos += 1
                leaves = []
                while pos < len(toks) and toks[pos] != "}":
                    leaves += parse(segs)
                    if pos < len(toks) and toks[pos] == ",":
                        pos += 1
                pos += 1
                return leaves
            if t == "*":
                pos += 1
                return [(segs + ["*"], None)]
            if t in (",", "}"):
                return [(segs, None)] if segs != list(prefix) else []
            segs.append(t[2:] if t.startswith("r#") else t)
            pos += 1
            if pos < len(toks) and toks[pos] == "::":
                pos += 1
                continue
            if pos < len(toks) and toks[pos] == "as":
                alias = toks[pos + 1] if pos + 1 < len(toks) else None
                pos += 2
                return [(segs, alias)]
            return [(segs, None)]
        return [(segs, None)] if segs else []

    return parse([])

# ---------------------------------------------------------------- the crate

class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}      # module -> (relative path, text)
        self.modules = {}    # module -> file module (itself, or the file holding an inline module)
        self.scopes = {}     # file module -> [(start, end, inline module)]
        self.uses = []       # (scope, segs, alias, public, file module, line)
        self.inline = []     # (scope, segs, file module, line)
        self.bindings = {}   # scope -> {name: (scope, segs)}
        self.skipped = set()
        self.crate_aliases = {"crate"}  # and `extern crate self as name;`
        self.load()

    def load(self):
        found = {}
        for root, dirs, names in os.walk(self.src):
            dirs.sort()
            rel_root = os.path.relpath(root, self.src)
            if rel_root.split(os.sep)[0] == "bin":
                continue
            for name in sorted(names):
                if not name.endswith(".rs"):
                    continue
                rel = os.path.normpath(os.path.join(rel_root, name))
                parts = rel[:-3].split(os.sep)
                if parts == ["lib"]:
                    mod = ()
                elif parts == ["main"]:
                    if os.path.exists(os.path.join(self.src, "lib.rs")):
                        continue
                    mod = ()
                else:
                    if parts[-1] == "mod":
                        parts = parts[:-1]
                    mod = tuple(parts)
                with open(os.path.join(self.src, rel), encoding="utf-8") as f:
                    found[mod] = (rel, f.read())
        # A parent's `#[cfg(test)] mod x;` makes the file of x test code.
        codes = {}
        for mod, (rel, text) in found.items():
            codes[mod] = clean(text)
            for m in MOD_ITEM.finditer(codes[mod]):
                if m.group(2) == ";" and is_cfg_test(codes[mod], m.start()):
                    self.skipped.add(mod + (m.group(1),))
        for mod in sorted(found):
            if any(mod[:k] in self.skipped for k in range(1, len(mod) + 1)):
                continue
            self.files[mod] = found[mod]
            self.modules[mod] = mod
        if () in codes:
            self.crate_aliases |= set(re.findall(r"\bextern\s+crate\s+self\s+as\s+(\w+)\s*;", codes[()]))
        for mod in sorted(self.files):
            self.scan(mod, codes[mod])

    def scan(self, fmod, code):
        rel = self.files[fmod][0]
        # Drop #[cfg(test)] mod blocks; note inline modules.
        spans = []
        for m in MOD_ITEM.finditer(code):
            if m.group(2) != "{":
                continue
            end = match_brace(code, m.end() - 1)
            if is_cfg_test(code, m.start()):
                spans.append((m.start(), end, None))
            else:
                spans.append((m.start(), end, m.group(1)))
        for a, b, name in spans:
            if name is None:
                code = blank_span(code, a, b)
        scopes = []
        for a, b, name in sorted(s for s in spans if s[2] is not None):
            outer = [s for s in scopes if s[0] <= a < s[1]]
            parent = outer[-1][2] if outer else fmod
            if code[a:b].strip() == "":
                continue  # inside a dropped test block
            mod = parent + (name,)
            scopes.append((a, b, mod))
            self.modules[mod] = fmod
        self.scopes[fmod] = scopes

        def scope_at(pos):
            inner = [s for s in scopes if s[0] <= pos < s[1]]
            return inner[-1][2] if inner else fmod

        def line_at(pos):
            return code.count("\n", 0, pos) + 1

        for m in USE_ITEM.finditer(code):
            if m.group(2).lstrip().startswith("$"):
                continue  # `use $crate::…` in a macro body
            scope = scope_at(m.start())
            public = m.group(1) is not None
            for segs, alias in parse_use(m.group(2)):
                self.uses.append((scope, segs, alias, public, fmod, rel, line_at(m.start())))
                name = alias
                if name is None:
                    name = segs[-2] if segs[-1] == "self" and len(segs) > 1 else segs[-1]
                if name not in ("*", "_", "self", "super", "crate", "::"):
                    self.bindings.setdefault(scope, {})[name] = (scope, segs)
            code = blank_span(code, m.start(), m.end())
        for m in INLINE_PATH.finditer(code):
            self.inline.append((scope_at(m.start()), m.group(1).split("::"), fmod, rel, line_at(m.start())))

    def children(self, mod):
        return {m[-1] for m in self.modules if len(m) == len(mod) + 1 and m[:-1] == mod}

    def resolve(self, scope, segs, depth=0):
        """The deepest module the path names, or None for another crate."""
        if depth > 30 or not segs:
            return None
        if segs[-1] == "self":
            segs = segs[:-1]
        first, rest = segs[0], list(segs[1:])
        if first == "::":
            return None
        if first in self.crate_aliases:
            cur = ()
        elif first == "self":
            cur = scope
        elif first == "super":
            cur = scope[:-1]
            while rest and rest[0] == "super":
                cur, rest = cur[:-1], rest[1:]
        elif first in self.children(scope):
            cur = scope + (first,)
        elif first in self.bindings.get(scope, {}):
            bscope, bsegs = self.bindings[scope][first]
            if bsegs[:1] == [first] and bscope == scope:
                return None  # `use x::…` where x is another crate
            cur = self.resolve(bscope, bsegs, depth + 1)
            if cur is None:
                return None
        else:
            return None
        for seg in rest:
            if seg == "super":
                cur = cur[:-1]
            elif seg == "*":
                break
            elif cur + (seg,) in self.modules:
                cur = cur + (seg,)
            elif seg in self.bindings.get(cur, {}):
                bscope, bsegs = self.bindings[cur][seg]
                nxt = self.resolve(bscope, bsegs, depth + 1)
                if nxt is None:
                    break
                cur = nxt
            else:
                break  # an item defined in cur
        return cur

    def graph(self):
        """{(from file module, to file module): [(path, line, text)]}"""
        edges = {}

        def add(fmod, target, where):
            if target is None or target not in self.modules:
                return
            tfile = self.modules[target]
            if tfile == fmod:
                return
            edges.setdefault((fmod, tfile), []).append(where)

        for scope, segs, alias, public, fmod, rel, line in self.uses:
            target = self.resolve(scope, segs)
            if target is None:
                continue
            if public and target[:len(fmod)] == fmod and self.modules[target] != fmod:
                continue  # a re-export of a descendant
            shown = segs[:-1] if segs[-1] == "self" and len(segs) > 1 else segs
            text = "use " + "::".join(shown) + (f" as {alias}" if alias else "")
            add(fmod, target, (rel, line, text))
        for scope, segs, fmod, rel, line in self.inline:
            first = segs[0]
            if first not in ("super", "self") and first not in self.crate_aliases and first not in self.children(scope):
                continue  # names bound by a use: the use is the import
            add(fmod, self.resolve(scope, segs), (rel, line, "::".join(segs)))
        return edges

# ---------------------------------------------------------------- cycles

def sccs(nodes, adj):
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(adj.get(v, ())):
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
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def simple_cycles(comp, adj, cap):
    """Elementary cycles inside one component, each starting at its least node."""
    comp_set = set(comp)
    found = []
    for start in comp:
        allowed = {v for v in comp_set if v >= start}
        path = [start]

        def walk(v):
            for w in sorted(adj.get(v, ())):
                if len(found) > cap:
                    return
                if w == start:
                    found.append(path + [start])
                elif w in allowed and w not in path:
                    path.append(w)
                    walk(w)
                    path.pop()

        walk(start)
    found.sort(key=lambda c: (len(c), c))
    return found

# ---------------------------------------------------------------- report

def name(mod):
    return "::".join(mod) if mod else "crate"


def report(src, limit, top, out=sys.stdout):
    crate = Crate(src)
    edges = crate.graph()
    adj = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
    comps = [c for c in sccs(crate.files, adj) if len(c) > 1]
    cap = 50
    p = lambda *a: print(*a, file=out)
    p(f"== Import cycles among the modules of {src}/ (test code and re-exports not counted)")
    cycles_total = 0
    if not comps:
        p("no import cycles")
    for k, comp in enumerate(sorted(comps, key=lambda c: [name(m) for m in c]), 1):
        cycles = simple_cycles(comp, adj, cap)
        cycles_total += len(cycles)
        p(f"tangle {k} of {len(comps)}: " + ", ".join(name(m) for m in comp))
        for cyc in cycles[:cap]:
            p("  cycle: " + " -> ".join(name(m) for m in cyc))
        if len(cycles) > cap:
            p(f"  … and more cycles (over {cap})")
        p("  its imports:")
        inside = sorted((a, b) for a, b in edges if a in comp and b in comp)
        width = max(len(f"{name(a)} -> {name(b)}") for a, b in inside)
        for a, b in inside:
            rel, line, text = edges[(a, b)][0]
            more = len(edges[(a, b)]) - 1
            extra = f"  (+{more} more)" if more else ""
            p(f"    {name(a) + ' -> ' + name(b):<{width}}  {src}/{rel}:{line}  {text}{extra}")
    p("")
    rows = []
    for mod, (rel, text) in crate.files.items():
        code, total = non_test_lines(text)
        rows.append((code, total, f"{src}/{rel}"))
    for mod in crate.skipped:
        pass
    rows.sort(key=lambda r: (-r[0], r[2]))
    over = [r for r in rows if r[0] > limit]
    shown = rows[:max(top, len(over))]
    p(f"== Longest files in {src}/ (non-test lines: before the #[cfg(test)] module; limit {limit})")
    p(f"{'non-test':>8} {'total':>6}  file")
    for code, total, path in shown:
        flag = "  OVER " + str(limit) if code > limit else ""
        p(f"{code:>8} {total:>6}  {path}{flag}")
    if len(rows) > len(shown):
        p(f"   ({len(rows) - len(shown)} shorter files not shown; {len(rows)} files in all)")
    p("")
    verdict = []
    if comps:
        verdict.append(f"{len(comps)} import tangle(s), {cycles_total} cycle(s)")
    if over:
        verdict.append(f"{len(over)} file(s) over {limit} non-test lines")
    p("layout: " + ("; ".join(verdict) if verdict else f"ok (no import cycles, no file over {limit} non-test lines)"))
    return bool(verdict), crate, edges

# ---------------------------------------------------------------- self-test

SELF_TEST = {
    "lib.rs": """
//! Docs mention crate::guard::request::Body and `use crate::guard;` — not imports.
pub mod guard;
mod core;
pub use guard::{Guard, request::Scan};
pub(crate) fn helper() {}
extern crate self as my_crate;
""",
    "core.rs": """
use crate::helper;             // child -> root: not a cycle by itself
pub struct Core;
macro_rules! m { () => { use $crate::guard::service::Guard; }; }
#[cfg(test)]
mod tests { use crate::guard::service::Service; }
""",
    "guard/mod.rs": """
mod config;
pub mod request;
mod response;
mod service;
pub use service::Guard;        // re-export: no guard -> service edge
pub use request::Scan;
pub(crate) use config::Config;
#[doc(hidden)]
pub mod __private {
    pub use super::request::multipart::scan;
}
""",
    "guard/config.rs": """
pub(crate) use crate::core::Core;
pub struct Config { s: &'static str, c: char }
fn f() -> char { let _ = "crate::guard::service::Guard"; let _ = r#"super::service"#; '{' }
""",
    "guard/service.rs": """
use std::fmt;
use crate::{
    core::Core,
    guard::{Config, response::{self, Page}},
};
use super::request::multipart::{self as mp};
pub struct Guard;
fn g<'a>(x: &'a str) { let _ = crate::guard::request::Scan::new(); super::request::limit(); }
""",
    "guard/request/mod.rs": """
pub mod multipart;
mod urlencoded;
pub use multipart::Scan;
pub fn limit() {}
#[cfg(test)]
mod tests;
""",
    "guard/request/tests.rs": """
use crate::guard::service::Guard;   // test code: ignored
""",
    "guard/request/multipart.rs": """
use super::super::Config;           // -> guard::config through the re-export
pub struct Scan;
pub fn scan() {}
fn via_alias() { let _ = my_crate::core::Core; }
""",
    "guard/request/urlencoded.rs": """
pub(crate) use super::multipart::Scan as S;
""",
    "guard/response/mod.rs": """
pub struct Page;
pub fn answer() { let _ = super::service::Guard; }   // response <-> service
""",
}


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        for rel, text in SELF_TEST.items():
            path = os.path.join(src, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        crate = Crate(src)
        got = {(name(a), name(b)) for a, b in crate.graph()}
        want = {
            ("core", "crate"),
            ("guard::config", "core"),
            ("guard::service", "core"),
            ("guard::service", "guard::config"),
            ("guard::service", "guard::response"),
            ("guard::service", "guard::request::multipart"),
            ("guard::service", "guard::request"),
            ("guard::request::multipart", "guard::config"),
            ("guard::request::multipart", "core"),
            ("guard::request::urlencoded", "guard::request::multipart"),
            ("guard::response", "guard::service"),
        }
        ok = True
        if got != want:
            ok = False
            print("self-test: edges differ")
            print("  missing:   ", sorted(want - got))
            print("  unexpected:", sorted(got - want))
        with open(os.devnull, "w") as null:
            failed, _, _ = report(src, 400, 10, out=null)
        comps = [c for c in sccs(crate.files, {a: {b for x, b in crate.graph() if x == a} for a, _ in crate.graph()}) if len(c) > 1]
        if [[name(m) for m in c] for c in comps] != [["guard::response", "guard::service"]] or not failed:
            ok = False
            print("self-test: cycles differ:", comps)
        if ("guard", "request", "tests") in crate.files:
            ok = False
            print("self-test: a #[cfg(test)] mod file was counted")
        print("self-test: " + ("ok" if ok else "FAILED"))
        return 0 if ok else 1

# ---------------------------------------------------------------- main

def main(argv):
    limit, top, src, always_ok = 400, 10, "src", False
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--report":
            always_ok = True
        elif a == "--limit":
            limit = int(args.pop(0))
        elif a == "--top":
            top = int(args.pop(0))
        elif a == "--src":
            src = os.path.normpath(os.path.join(os.environ.get("LAYOUT_CALLER_PWD", "."), args.pop(0)))
            if not os.path.relpath(src).startswith(".."):
                src = os.path.relpath(src)
        elif a == "--graph":
            crate = Crate(src)
            for (a_, b_), where in sorted(crate.graph().items()):
                rel, line, text = where[0]
                print(f"{name(a_)} -> {name(b_)}  {src}/{rel}:{line}  {text}")
            return 0
        elif a == "--self-test":
            return self_test()
        elif a in ("-h", "--help"):
            print(__doc__ or "usage: bash scripts/layout.sh [--report] [--limit N] [--top N] [--src DIR] [--self-test]")
            return 0
        else:
            print(f"layout.sh: unknown option {a}", file=sys.stderr)
            return 2
    if not os.path.isdir(src):
        print(f"layout.sh: no {src}/ directory", file=sys.stderr)
        return 2
    failed, _, _ = report(src, limit, top)
    return 0 if always_ok or not failed else 1


sys.exit(main(sys.argv[1:]))
PY
