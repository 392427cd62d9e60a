// Keeps a console window from opening next to the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// mimalloc, as in the headless `cityops`: time travel frees and rebuilds tens of thousands of
/// small allocations per seek, where glibc's malloc was a fifth of the time (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    cityops_desktop::run();
}
