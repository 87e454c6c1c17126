//! `pgc-wasm-split [--strip] <input.wasm> <out dir> <name>`: splits the front
//! end, linked with `--emit-relocs`, at its `#[lazy_route]`s (wasm-split, the
//! tool Leptos' lazy routes are made for) into `<out dir>`:
//! - `<name>_split.wasm`, the main module, for `wasm-bindgen --keep-lld-exports`;
//! - one `split_*.wasm` per lazy route and `chunk_*.wasm` for code routes share;
//! - `__wasm_split.js`, which loads them (it imports `initSync` from `./<name>.js`);
//! - `__wasm_split_manifest.json`: for each lazy route, the modules it needs,
//!   which Leptos' `HydrationScripts` preloads for a page rendered on the server.
//!
//! `--strip` drops the name and producers sections of the route and chunk
//! modules (a release; wasm-bindgen strips the main module's).

use std::{error::Error, path::Path, process::ExitCode};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let strip = args.first().is_some_and(|a| a == "--strip");
    if strip {
        args.remove(0);
    }
    let [input, out_dir, name] = args.as_slice() else {
        eprintln!("usage: pgc-wasm-split [--strip] <input.wasm> <out dir> <name>");
        return ExitCode::from(2);
    };
    match split(Path::new(input), Path::new(out_dir), name, strip) {
        Ok(modules) => {
            println!("split {input} into {modules} modules in {out_dir}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pgc-wasm-split: {e}");
            ExitCode::FAILURE
        }
    }
}

fn split(input: &Path, out_dir: &Path, name: &str, strip: bool) -> Result<usize, Box<dyn Error>> {
    let wasm = std::fs::read(input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    let main_out = out_dir.join(format!("{name}_split.wasm"));
    let main_module = format!("./{name}.js");
    let mut opts = wasm_split_cli_support::Options::new(&wasm);
    opts.output_dir = out_dir;
    opts.main_out_path = &main_out;
    opts.main_module = &main_module;
    opts.target.web();
    let split = wasm_split_cli_support::transform(opts).map_err(|e| format!("{e:#}"))?;
    if strip {
        for module in &split.split_modules {
            strip_names(module).map_err(|e| format!("stripping {}: {e}", module.display()))?;
        }
    }
    // Sorted, so that the same input gives the same manifest.
    let manifest: std::collections::BTreeMap<_, _> = split.prefetch_map.into_iter().collect();
    std::fs::write(
        out_dir.join("__wasm_split_manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    Ok(split.split_modules.len() + 1)
}

/// Rewrites a module without its name and producers sections; every other
/// section is copied as it is.
fn strip_names(path: &Path) -> Result<(), Box<dyn Error>> {
    let bytes = std::fs::read(path)?;
    let mut module = wasm_encoder::Module::new();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        let payload = payload?;
        if let wasmparser::Payload::CustomSection(c) = &payload {
            if matches!(c.name(), "name" | "producers") {
                continue;
            }
        }
        if let Some((id, range)) = payload.as_section() {
            let range = usize::try_from(range.start)?..usize::try_from(range.end)?;
            module.section(&wasm_encoder::RawSection {
                id,
                data: &bytes[range],
            });
        }
    }
    std::fs::write(path, module.finish())?;
    Ok(())
}
