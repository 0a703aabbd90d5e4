//! Leaving: ACPI soft-off for `halt`, and QEMU's `isa-debug-exit` device to
//! report how a scripted run went.

use x86_64::instructions::port::Port;

/// The `isa-debug-exit` device `cargo xtask` gives QEMU. QEMU exits with
/// status `(value << 1) | 1`; on a machine without it the write does nothing.
const DEBUG_EXIT_PORT: u16 = 0xF4;
const SLEEP_ENABLE: u16 = 1 << 13;
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
    let write = |port: u16, sleep_type: u8| {
        let mut control: Port<u16> = Port::new(port);
        // SAFETY: the FADT names this port as PM1 control; writing SLP_TYP
        // with SLP_EN is how ACPI asks for a sleep state.
        unsafe {
            let value = control.read();
            control.write((value & !(0b111 << 10)) | (u16::from(sleep_type) << 10) | SLEEP_ENABLE);
        }
    };
    write(acpi.pm1a_control, acpi.sleep_types.0);
    if let Some(port) = acpi.pm1b_control {
        write(port, acpi.sleep_types.1);
    }
    crate::smp::delay_us(POWER_OFF_WAIT_MS * 1000, tsc_per_ms);
}

/// ACPI's way to power off: write SLP_TYP with SLP_EN to PM1 control, as the
/// FADT and the DSDT's `\_S5` give them.
#[derive(Clone, Copy)]
pub struct AcpiPowerOff {
    pub pm1a_control: u16,
    pub pm1b_control: Option<u16>,
    pub sleep_types: (u8, u8),
}
