//! The `tributary` binary: everything lives in the library; this only hands over.

/// The worker's allocator. Records move through the worker in batches of thousands that
/// are allocated on one thread and freed together on another; glibc's malloc spends a
/// quarter of the pipeline's CPU on that pattern (consolidating its free lists), mimalloc
/// a fraction of it (BENCHMARKS.md, "Allocator"). Plugins bring their own (the SDK's
/// default): memory is freed on the side that allocated it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    release_idle_memory();
    tributary::cli::main()
}

/// mimalloc returns freed memory to the OS some milliseconds after it was freed, but only
/// when it is next called: a worker that goes idle after a burst (its own startup reads the
/// internal topics) would keep tens of megabytes resident. A thread asks it every second to
/// return what has been free for longer than that delay.
fn release_idle_memory() {
    let spawned = std::thread::Builder::new()
        .name("release-memory".into())
        .spawn(|| {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                // SAFETY: a plain call into the allocator, allowed from any thread.
                unsafe { libmimalloc_sys::mi_collect(false) };
            }
        });
    // Without the thread memory is still returned, only later.
    drop(spawned);
}
