//! `m365-integration`: parses the command line and dispatches (see [`m365_integration::cli`]).

/// mimalloc instead of glibc's allocator: a profile of the users page under load spent ~30 % of
/// the service's CPU in glibc malloc/free (`_int_malloc`, `malloc_consolidate`, `unlink_chunk`);
/// the numbers before and after are in the README's benchmarks.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    m365_integration::cli::main().await
}
