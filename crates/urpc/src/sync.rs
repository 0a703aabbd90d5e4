//! The atomics and cells the ring uses: `core`'s normally, `loom`'s when the
//! loom model checks them.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicU64, Ordering};

/// A cell whose contents one side at a time may touch, as the protocol says.
#[derive(Debug)]
pub struct ProtocolCell<T> {
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))]
    inner: core::cell::UnsafeCell<T>,
}

impl<T: Copy> ProtocolCell<T> {
    pub fn new(value: T) -> Self {
        Self {
            inner: From::from(value),
        }
    }

    /// # Safety
    /// No other thread may access the cell during the call.
    pub unsafe fn write(&self, value: T) {
        #[cfg(loom)]
        // SAFETY: exclusive access is the caller's promise; loom checks it.
        self.inner
            .with_mut(|pointer| unsafe { pointer.write(value) });
        #[cfg(not(loom))]
        // SAFETY: exclusive access is the caller's promise.
        unsafe {
            self.inner.get().write(value)
        };
    }

    /// Lets `change` change the contents in place.
    ///
    /// # Safety
    /// No other thread may access the cell during the call.
    #[inline(always)]
    pub unsafe fn with_mut<R>(&self, change: impl FnOnce(&mut T) -> R) -> R {
        #[cfg(loom)]
        // SAFETY: exclusive access is the caller's promise; loom checks it.
        return self
            .inner
            .with_mut(|pointer| change(unsafe { &mut *pointer }));
        #[cfg(not(loom))]
        // SAFETY: exclusive access is the caller's promise, and the
        // reference does not outlive the call.
        change(unsafe { &mut *self.inner.get() })
    }

    /// # Safety
    /// No other thread may write the cell during the call.
    pub unsafe fn read(&self) -> T {
        #[cfg(loom)]
        // SAFETY: the caller promises no concurrent writer; loom checks it.
        return self.inner.with(|pointer| unsafe { pointer.read() });
        #[cfg(not(loom))]
        // SAFETY: the caller promises no concurrent writer.
        unsafe {
            self.inner.get().read()
        }
    }
}
