# The hydrate WASM's release build, shared by scripts/build and the
# Dockerfile's dependency layer, so that both compile the dependencies alike
# (a change here rebuilds them in the image). Sourced, not run.
#
# Smaller than a plain `cargo build --profile wasm-release` (docs/benchmarks.md):
# - std is compiled with the front end (-Zbuild-std, from the toolchain's
#   rust-src component), so the profile's opt-level "z" and LTO reach it, and
#   with its smaller, slower variants (its optimize_for_size feature);
# - a panic aborts at once (-Cpanic=immediate-abort): no message is formatted,
#   so the formatting machinery only panics used is left out;
# - panics carry no file and line (-Zlocation-detail=none);
# - every component's view is type-erased (`--cfg erase_components`, a
#   stable cfg Leptos reads), as in every build (.cargo/config.toml, whose
#   rustflags these target flags replace): the server renders the HTML this
#   hydrates.
# A release front end that panics therefore stops with a bare
# "RuntimeError: unreachable" in the browser's console; debug builds keep the
# messages (console_error_panic_hook).
#
# These are unstable options of the same pinned stable toolchain that builds
# the server, allowed for this one cargo call by RUSTC_BOOTSTRAP=1 (as the
# Linux kernel builds its Rust code with a stable compiler). A toolchain that
# changes or drops one fails this build; it does not silently build another
# WASM.

# Usage: wasm_release_build [cargo build options...]
wasm_release_build() {
  RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zlocation-detail=none -Zunstable-options -Cpanic=immediate-abort --cfg erase_components" \
    cargo build -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size \
    --target wasm32-unknown-unknown --profile wasm-release "$@"
}
