//! The global allocator of the `frps` and `frpc` binaries, chosen by their cargo features.

/// Declares the invoking binary's global allocator from *its* cargo features (a `cfg` in a
/// macro is read where the macro is used): `jemalloc`, the default (the README's "Memory after
/// load" has the measurements that chose it), or `mimalloc`; with neither, glibc's malloc. The
/// binary must depend on `tikv-jemallocator` and `mimalloc` under those features.
#[macro_export]
macro_rules! global_allocator {
    () => {
        #[cfg(all(feature = "jemalloc", feature = "mimalloc"))]
        compile_error!(
            "choose one allocator: the features `jemalloc` and `mimalloc` exclude each other"
        );
        #[cfg(all(feature = "jemalloc", target_os = "linux"))]
        #[global_allocator]
        static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
        #[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
        #[global_allocator]
        static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
    };
}
