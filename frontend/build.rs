//! The front end's WASM keeps its relocations (`--emit-relocs`): scripts/build
//! splits it at the lazy routes (tools/wasm-split), which needs them.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--emit-relocs");
    }
}
