"""What each page's first visit downloads of the split hydrate WASM: the main
module (all the Overview needs) plus the modules a lazy route needs (the split
manifest), in bytes of the precompressed files scripts/build --release writes
(`.gz`, and `.br` when brotli made them). Prints one line:
`main (the Overview) G/B; <route> G/B; ...` (G gzip, B brotli).

Usage: wasm_pages.py <pkg dir> <hash>
"""
import json
import os
import re
import sys


def size(pkg, name, ext):
    path = os.path.join(pkg, f"{name}.{ext}")
    return os.path.getsize(path) if os.path.exists(path) else None


def both(pkg, files):
    gz = [size(pkg, f, "gz") for f in files]
    br = [size(pkg, f, "br") for f in files]
    return f"{sum(gz)}/{sum(br) if None not in br else '-'}"


def main():
    pkg, h = sys.argv[1:]
    manifest = json.load(open(os.path.join(pkg, f"__wasm_split_manifest.{h}.json")))
    main_wasm = f"pg-console.{h}.wasm"
    parts = [f"main (the Overview) {both(pkg, [main_wasm])}"]
    for split, modules in sorted(manifest.items()):
        # `__admin_route_view_<the macro's unique number>`.
        m = re.match(r"_*([a-z]+)_route_view", split)
        route = m.group(1) if m else split
        files = [main_wasm] + sorted({f"{mod}.wasm" for mod in modules})
        parts.append(f"{route} {both(pkg, files)}")
    print("; ".join(parts))


if __name__ == "__main__":
    main()
