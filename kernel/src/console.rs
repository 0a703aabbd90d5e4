//! `println!` for the kernel: formatted output on the shared debug console.

/// The core printing, for the console lock's owner tag; boot code that runs
/// before the core has its core-local block uses `u32::MAX - 1`.
pub fn current_core_tag() -> u32 {
    crate::arch::percore::try_current().map_or(u32::MAX - 1, |local| local.id as u32)
}

pub fn print(args: core::fmt::Arguments) {
    crate::shared::CONSOLE.print(current_core_tag(), args);
}

macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!($($arg)*))
    };
}
