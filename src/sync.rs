//! Locks on caches and memos that threads share. Each holds only finished values (an entry
//! is built before it is stored), so what a panicking holder left behind is still whole and
//! the next holder may use it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// `mutex` locked, whether or not an earlier holder panicked.
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
