//! `m365-integration`: parses the command line and dispatches (see [`m365_integration::cli`]).

/// mimalloc instead of glibc's allocator: a profile of the users page under load spent ~30 % of
/// the service's CPU in glibc malloc/free (`_int_malloc`, `malloc_consolidate`, `unlink_chunk`);
/// the numbers before and after are in the README's benchmarks. mimalloc's v2 line (a feature
/// of the crate): v3 holds freed pages for a second before returning them (`purge_delay` 1000 ms,
/// 10 ms in v2), and an idle replica never gets round to it. With v3, a replica holding 500 idle
/// subscriptions was 24.6 KB of RSS per subscription above its start; with v2, 9.4 KB (their
/// live heap is ~9 KB). The read path costs the same within the machine's noise (README, the
/// fan-out and read benchmarks).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    m365_integration::cli::main().await
}
