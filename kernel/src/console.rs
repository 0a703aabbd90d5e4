//! `println!` and `print!` for the kernel: formatted output on the shared
//! debug console, as the running core.

macro_rules! println {
    ($($arg:tt)*) => {
        atoll_arch::serial::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

macro_rules! print {
    ($($arg:tt)*) => {
        atoll_arch::serial::print(format_args!($($arg)*))
    };
}
