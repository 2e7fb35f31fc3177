//! Rebuild when anything under `web/` changes: the browser client is embedded with
//! `rust-embed`, which cannot tell Cargo about files added to or removed from that folder.

fn main() {
    println!("cargo:rerun-if-changed=../../web");
    println!("cargo:rerun-if-changed=build.rs");
}
