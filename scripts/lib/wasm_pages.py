"""What each page's first visit downloads of the split hydrate WASM, gzip
bytes (the `.gz` files scripts/build --release writes): the main module (all
the Overview needs) plus the modules a lazy route needs (the split manifest).
Prints one line: `main (the Overview) N; <route> N; ...`.

Usage: wasm_pages.py <pkg dir> <hash>
"""
import json
import os
import re
import sys


def gz(pkg, name):
    return os.path.getsize(os.path.join(pkg, name + ".gz"))


def main():
    pkg, h = sys.argv[1:]
    manifest = json.load(open(os.path.join(pkg, f"__wasm_split_manifest.{h}.json")))
    main_gz = gz(pkg, f"pg-console.{h}.wasm")
    parts = [f"main (the Overview) {main_gz}"]
    for split, modules in sorted(manifest.items()):
        # `__admin_route_view_<the macro's unique number>`.
        m = re.match(r"_*([a-z]+)_route_view", split)
        route = m.group(1) if m else split
        total = main_gz + sum(gz(pkg, f"{mod}.wasm") for mod in set(modules))
        parts.append(f"{route} {total}")
    print("; ".join(parts))


if __name__ == "__main__":
    main()
