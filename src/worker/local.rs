//! Per-thread state of shared converters and transforms.
//!
//! A connector's converters and transform chain are shared by its tasks, each on its own
//! thread, so a cache kept in the shared instance would need a lock taken for every record.
//! [`Local`] keeps it per thread instead. It owns no records and knows nothing of what it
//! caches.

use std::fmt;

/// State a shared converter or transform keeps per thread: the instance is shared by the
/// connector's tasks (`&self`), each on its own thread, so a cache kept in the instance
/// would need a lock taken for every record. Each `Local` has a number of its own and finds
/// its state among the few of its thread (at most [`Local::MAX`]; the oldest goes first).
pub(crate) struct Local<S> {
    id: u64,
    _state: std::marker::PhantomData<fn() -> S>,
}

impl<S> fmt::Debug for Local<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local").field("id", &self.id).finish()
    }
}

thread_local! {
    static LOCALS: std::cell::RefCell<Vec<(u64, Box<dyn std::any::Any>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl<S> Default for Local<S> {
    fn default() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Local {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            _state: std::marker::PhantomData,
        }
    }
}

impl<S: Default + 'static> Local<S> {
    const MAX: usize = 32;

    /// Run `f` on this thread's state (`None` while the thread is being torn down). `f` must
    /// not use another `Local`.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> Option<R> {
        LOCALS
            .try_with(|locals| {
                let mut locals = locals.try_borrow_mut().ok()?;
                let i = match locals.iter().position(|(id, _)| *id == self.id) {
                    Some(i) => i,
                    None => {
                        if locals.len() == Self::MAX {
                            locals.remove(0);
                        }
                        locals.push((self.id, Box::new(S::default())));
                        locals.len() - 1
                    }
                };
                locals[i].1.downcast_mut::<S>().map(f)
            })
            .ok()
            .flatten()
    }
}
