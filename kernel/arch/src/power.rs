//! Leaving: ACPI soft-off for `halt`, and QEMU's `isa-debug-exit` device to
//! report how a scripted run went.

use atoll_firmware::SleepRegisters;
use x86_64::instructions::port::Port;

/// The `isa-debug-exit` device `cargo xtask` gives QEMU. QEMU exits with
/// status `(value << 1) | 1`; on a machine without it the write does nothing.
const DEBUG_EXIT_PORT: u16 = 0xF4;
/// SLP_EN in PM1 control, and in a hardware-reduced sleep control register.
const SLEEP_ENABLE: u16 = 1 << 13;
const SLEEP_CONTROL_ENABLE: u8 = 1 << 5;
const POWER_OFF_WAIT_MS: u64 = 500;

#[derive(Clone, Copy)]
#[repr(u32)]
pub enum ExitStatus {
    Success = 0,
    CommandFailed = 1,
    Panic = 2,
}

pub fn exit_qemu(status: ExitStatus) {
    let mut port: Port<u32> = Port::new(DEBUG_EXIT_PORT);
    // SAFETY: on QEMU the port is the debug-exit device; on a PC without it
    // the port is unassigned and the write is ignored.
    unsafe { port.write(status as u32) };
}

/// Enters ACPI S5. Returns only if the machine is still running afterwards.
pub fn power_off(acpi: &AcpiPowerOff, tsc_per_ms: u64) {
    let (a, b) = acpi.sleep_types;
    match acpi.registers {
        SleepRegisters::Pm1 {
            a: port_a,
            b: port_b,
        } => {
            let write = |port: u16, sleep_type: u8| {
                let mut control: Port<u16> = Port::new(port);
                // SAFETY: the FADT names this port as PM1 control; writing
                // SLP_TYP with SLP_EN is how ACPI asks for a sleep state.
                unsafe {
                    let value = control.read();
                    control.write(
                        (value & !(0b111 << 10))
                            | (u16::from(sleep_type & 0b111) << 10)
                            | SLEEP_ENABLE,
                    );
                }
            };
            write(port_a, a);
            if let Some(port) = port_b {
                write(port, b);
            }
        }
        SleepRegisters::SleepControl { port } => {
            let mut control: Port<u8> = Port::new(port);
            // SAFETY: the FADT of a hardware-reduced machine names this port
            // as its sleep control register; SLP_TYPa in bits 2-4 with
            // SLP_EN is how such a machine is asked for a sleep state.
            unsafe { control.write(((a & 0b111) << 2) | SLEEP_CONTROL_ENABLE) };
        }
    }
    crate::smp::delay_us(POWER_OFF_WAIT_MS * 1000, tsc_per_ms);
}

/// ACPI's way to power off: write SLP_TYP with SLP_EN to the sleep
/// registers the FADT names, with the sleep types of the DSDT's `\_S5`.
#[derive(Clone, Copy)]
pub struct AcpiPowerOff {
    pub registers: SleepRegisters,
    pub sleep_types: (u8, u8),
}
