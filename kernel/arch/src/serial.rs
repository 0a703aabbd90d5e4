//! The debug console on COM1: a 16550 UART behind the console lock, which is
//! one of the few things cores share (the kernel lists them in one place).

use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};

const COM1: u16 = 0x3F8;
const NO_OWNER: u32 = u32::MAX;

pub struct Console {
    uart: Mutex<Option<Uart16550<PioBackend>>>,
    /// The core holding the lock, so that a core which faults or panics while
    /// printing can take its own lock back instead of deadlocking the others.
    owner: AtomicU32,
}

impl Console {
    const fn new() -> Self {
        Self {
            uart: Mutex::new(None),
            owner: AtomicU32::new(NO_OWNER),
        }
    }

    /// Sets up COM1. Called once by the boot core before anything prints.
    pub fn init(&self) {
        // SAFETY: COM1's eight ports belong to this console alone.
        let uart = unsafe { Uart16550::new_port(COM1) };
        if let Ok(mut uart) = uart
            && uart.init(Config::default()).is_ok()
        {
            *self.uart.lock() = Some(uart);
        }
    }

    fn with_uart<R>(&self, f: impl FnOnce(&mut Uart16550<PioBackend>) -> R) -> Option<R> {
        super::cpu::without_interrupts(|| {
            let mut guard = self.uart.lock();
            self.owner.store(owner_tag(), Ordering::Relaxed);
            let result = guard.as_mut().map(f);
            self.owner.store(NO_OWNER, Ordering::Relaxed);
            result
        })
    }

    /// Prints under one lock acquisition, so lines from different cores do
    /// not interleave; each `\n` becomes `\r\n` for terminals.
    pub fn print(&self, args: core::fmt::Arguments) {
        self.with_uart(|uart| {
            let _ = core::fmt::write(&mut Terminal(uart), args);
        });
    }

    pub fn write_bytes(&self, bytes: &[u8]) {
        self.with_uart(|uart| uart.send_bytes_exact(bytes));
    }

    pub fn read_byte(&self) -> Option<u8> {
        self.with_uart(|uart| uart.try_receive_byte().ok())
            .flatten()
    }

    /// Runs `f` with the console lock held, so that no core is halfway
    /// through printing meanwhile: a core stopped from outside (`smp::park`)
    /// must not be stopped holding the lock, which would silence every core.
    pub fn between_prints<R>(&self, f: impl FnOnce() -> R) -> R {
        super::cpu::without_interrupts(|| {
            let _guard = self.uart.lock();
            self.owner.store(owner_tag(), Ordering::Relaxed);
            let result = f();
            self.owner.store(NO_OWNER, Ordering::Relaxed);
            result
        })
    }

    /// Called on the way to stopping the running core after a fault or
    /// panic: if it held the lock when it was interrupted, release it, since
    /// the interrupted writer will never run again.
    pub fn release_if_held_here(&self) {
        if self.owner.load(Ordering::Relaxed) == owner_tag() {
            self.owner.store(NO_OWNER, Ordering::Relaxed);
            // SAFETY: the holder is this core, whose interrupted critical
            // section will never resume; nobody else holds the guard.
            unsafe { self.uart.force_unlock() };
        }
    }
}

struct Terminal<'u>(&'u mut Uart16550<PioBackend>);

impl core::fmt::Write for Terminal<'_> {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        for (index, line) in text.split('\n').enumerate() {
            if index > 0 {
                self.0.send_bytes_exact(b"\r\n");
            }
            self.0.send_bytes_exact(line.as_bytes());
        }
        Ok(())
    }
}

/// The console every core prints on.
#[unsafe(link_section = ".shared")]
pub static CONSOLE: Console = Console::new();

/// The console lock's owner tag of the running core: its core-local
/// block's address (unique per core), or `NO_OWNER - 1` in boot code that
/// runs before the core has its block.
fn owner_tag() -> u32 {
    match super::cpu::core_local_address() {
        0 => NO_OWNER - 1,
        block => (block >> 12) as u32,
    }
}

/// Prints on the console as the running core.
pub fn print(args: core::fmt::Arguments) {
    CONSOLE.print(args);
}
