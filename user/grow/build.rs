//! Links the program at the user address range, as every program is.
fn main() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../link.ld");
    println!("cargo:rerun-if-changed={script}");
    println!("cargo:rustc-link-arg-bins=-T{script}");
}
