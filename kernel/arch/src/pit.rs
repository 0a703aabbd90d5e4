//! The legacy PIT, used once at boot as a known clock to measure the TSC.

use super::cpu::rdtsc;
use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;
const CALIBRATION_MS: u64 = 10;

/// How long channel 2 may take to expire before calibration gives up. Much
/// longer than the 10 ms it should take, even on a slow emulator.
const MAX_POLLS: u64 = 500_000_000;

/// TSC cycles per millisecond, measured against PIT channel 2 over 10 ms, or
/// `None` when the PIT never signals (a machine without one).
pub fn tsc_cycles_per_ms() -> Option<u64> {
    let mut gate: Port<u8> = Port::new(0x61);
    let mut command: Port<u8> = Port::new(0x43);
    let mut channel2: Port<u8> = Port::new(0x42);
    let count = PIT_HZ * CALIBRATION_MS / 1000;
    // SAFETY: ports 0x42, 0x43 and 0x61 are the PIT and its gate on every PC;
    // channel 2 drives only the speaker, which stays disconnected (bit 1 clear).
    unsafe {
        let speaker_off = gate.read() & !0b11;
        gate.write(speaker_off);
        command.write(0b1011_0000); // channel 2, low then high byte, mode 0
        channel2.write(count as u8);
        channel2.write((count >> 8) as u8);
        gate.write(speaker_off | 1); // gate high: counting starts
        let start = rdtsc();
        for _ in 0..MAX_POLLS {
            if gate.read() & 0x20 != 0 {
                let cycles = rdtsc() - start;
                gate.write(speaker_off);
                return Some(cycles / CALIBRATION_MS);
            }
        }
        gate.write(speaker_off);
    }
    None
}
