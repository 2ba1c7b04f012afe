//! The `keysmith` command: the operator process and its command-line tools
//! ([`keysmith::cli::command`]).
#![forbid(unsafe_code)]

/// jemalloc rather than the C library's allocator: with 10,000 resources glibc's malloc kept
/// 96–110 MiB resident against 78–80 MiB for jemalloc (docs/benchmarks.md), and the image's
/// musl malloc is slow under many threads. The same allocator under every libc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    keysmith::cli::command::main()
}
