//! Build script shared by frps and frpc (`build = "../bench/link-order/build.rs"`): links the
//! functions a running tunnel executes next to each other.
//!
//! The kernel maps a program's code in 64 KiB blocks around each page it executes, and keeps
//! those pages in the process's RSS. Left in the compiler's order, the ~1.3 MB of code a
//! tunnel runs is spread over most of an 8 MB `.text`, so a few MiB of never-run neighbours
//! stay resident for the life of the process. `bench/link-order/collect` records which
//! functions run (under callgrind, through startup, bulk traffic both ways and shutdown) into
//! `<package>/link-order.txt`; this script hands that list to the linker
//! (`--symbol-ordering-file`), which places those functions first.
//!
//! Only where the linker is LLD, which is what rustc uses for x86_64 Linux since 1.90 (the
//! option is LLD's); elsewhere, or without the file, the build is unchanged. Names in the
//! file that the binary does not have (the code changed since the list was recorded) are
//! skipped without a warning: a stale list costs memory, never a build.

use std::path::Path;
use std::process::Command;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let list = Path::new(&manifest).join("link-order.txt");
    println!("cargo:rerun-if-changed={}", list.display());
    println!("cargo:rerun-if-env-changed=FRP_LINK_ORDER");
    if std::env::var("FRP_LINK_ORDER").as_deref() == Ok("0") {
        return;
    }
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !release || target != "x86_64-unknown-linux-gnu" || !list.exists() || !links_with_lld() {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// Whether rustc links with its own LLD: version 1.90 or later, and no flag that picks
/// another linker.
fn links_with_lld() -> bool {
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("linker") || std::env::var_os("RUSTC_LINKER").is_some() {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let mut parts = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
