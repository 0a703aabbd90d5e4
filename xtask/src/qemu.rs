//! How Atoll is booted in QEMU: the machine, the command line, and what
//! QEMU's exit status means.

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

/// The emulated machine: a q35 PC under TCG.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    pub cores: u8,
    pub memory: MemorySize,
    /// Whether `memory` was asked for (`--mem`): then it must be enough for
    /// the cores, and is not raised to it ([`Machine::fit_memory`]).
    pub memory_given: bool,
    /// NUMA nodes (sockets) the cores and memory are split into evenly,
    /// which QEMU describes in an ACPI SRAT (even a single node); 0 gives
    /// QEMU no NUMA configuration at all, and it builds no SRAT.
    pub numa_nodes: u8,
    /// The distance from each node (row) to each node (column), one row and
    /// one column per node, 10 on the diagonal; QEMU puts it in an ACPI SLIT
    /// as given, so it may be asymmetric. `None` gives QEMU no distances, and
    /// then it builds no SLIT. Ignored with a single node. `cli` checks the
    /// shape and the values (QEMU 7.2 takes 10 to 255 off the diagonal).
    pub numa_distances: Option<Vec<Vec<u8>>>,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            cores: 4,
            memory: MemorySize::from_mib(512),
            memory_given: false,
            numa_nodes: 0,
            numa_distances: None,
        }
    }
}

/// Guest memory, kept in MiB because that is QEMU's unit for `-m`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemorySize {
    mib: u64,
}

impl MemorySize {
    pub const fn from_mib(mib: u64) -> Self {
        MemorySize { mib }
    }

    pub const fn mib(self) -> u64 {
        self.mib
    }
}

/// The most guest memory the kernel uses: what QEMU's q35 puts below the
/// PCI hole at 2.75 GiB (more goes above 4 GiB, which the kernel leaves
/// alone).
pub const MOST_MEMORY_MIB: u64 = 2816;

impl Machine {
    /// Makes the memory enough for the cores (`atoll_frames::budget`: each
    /// core's heap grows with the square of their count): the default is
    /// raised to it; memory asked for that is less is refused, naming the
    /// least; and so is a core count that needs more than the kernel can use.
    pub fn fit_memory(&mut self) -> Result<()> {
        let least = atoll_frames::budget::machine_mib(u64::from(self.cores));
        if least > MOST_MEMORY_MIB {
            let most = (1..=u8::MAX)
                .take_while(|&cores| {
                    atoll_frames::budget::machine_mib(u64::from(cores)) <= MOST_MEMORY_MIB
                })
                .last()
                .unwrap_or(1);
            bail!(
                "{} cores need at least {least} MiB of guest memory below 4 GiB, and the kernel uses at most {MOST_MEMORY_MIB} MiB (QEMU's q35 puts the rest above 4 GiB): at most {most} cores",
                self.cores
            );
        }
        match self.memory_given {
            true if self.memory.mib() < least => bail!(
                "--mem {}: {} cores need at least {least}M (each core's heap grows with the square of the core count)",
                self.memory,
                self.cores
            ),
            true => {}
            false => self.memory = MemorySize::from_mib(self.memory.mib().max(least)),
        }
        Ok(())
    }

    /// QEMU's `-smp` and, with NUMA nodes (even one), the sockets and the
    /// `-numa` options that give each node its cores and its share of memory,
    /// then one `-numa dist` per ordered pair of different nodes if
    /// distances are given (QEMU fills in 10 on the diagonal).
    /// `cli` checks that the cores and memory divide evenly.
    fn topology_args(&self) -> Vec<String> {
        let nodes = u64::from(self.numa_nodes);
        if nodes == 0 {
            return vec!["-smp".to_owned(), self.cores.to_string()];
        }
        let cores_per_node = u64::from(self.cores) / nodes;
        let mib_per_node = self.memory.mib() / nodes;
        let mut args = vec![
            "-smp".to_owned(),
            format!(
                "{},sockets={nodes},cores={cores_per_node},threads=1",
                self.cores
            ),
        ];
        for node in 0..nodes {
            let first = node * cores_per_node;
            args.extend([
                "-object".to_owned(),
                format!("memory-backend-ram,id=node{node}-memory,size={mib_per_node}M"),
                "-numa".to_owned(),
                format!(
                    "node,nodeid={node},cpus={first}-{},memdev=node{node}-memory",
                    first + cores_per_node - 1
                ),
            ]);
        }
        for (from, row) in self.numa_distances.iter().flatten().enumerate() {
            for (to, distance) in row.iter().enumerate() {
                if from != to {
                    args.extend([
                        "-numa".to_owned(),
                        format!("dist,src={from},dst={to},val={distance}"),
                    ]);
                }
            }
        }
        args
    }
}

impl FromStr for MemorySize {
    type Err = anyhow::Error;

    /// Accepts `512`, `512M` or `2G` (either case); a bare number is MiB, as in QEMU.
    fn from_str(text: &str) -> Result<Self> {
        let expected = || anyhow!("expected a size like 512M or 2G");
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(digits_end);
        let count: u64 = digits.parse().map_err(|_| expected())?;
        let mib = match unit.to_ascii_uppercase().as_str() {
            "" | "M" => Some(count),
            "G" => count.checked_mul(1024),
            _ => None,
        };
        match mib {
            Some(mib) if mib > 0 => Ok(MemorySize { mib }),
            _ => Err(expected()),
        }
    }
}

impl fmt::Display for MemorySize {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}M", self.mib)
    }
}

pub enum Boot<'a> {
    /// QEMU loads the ELF itself (PVH) and passes `cmdline`.
    Kernel {
        elf: &'a Path,
        cmdline: Option<String>,
    },
    /// Firmware boots GRUB from the ISO, and GRUB loads the kernel (multiboot2).
    Cdrom {
        iso: &'a Path,
        firmware: Firmware<'a>,
    },
}

pub enum Firmware<'a> {
    /// QEMU's default BIOS.
    SeaBios,
    Ovmf(&'a Ovmf),
}

/// Where Debian's `ovmf` package put the UEFI firmware.
#[derive(Clone, Debug, PartialEq)]
pub enum Ovmf {
    /// Code and variables in one image, loaded with `-bios`.
    Combined(PathBuf),
    /// Separate code and variable-store images, mapped as two flash chips.
    Split { code: PathBuf, vars: PathBuf },
}

impl Ovmf {
    /// Bookworm ships the combined image; later releases may ship only the split 4M pair.
    pub fn find() -> Option<Ovmf> {
        const COMBINED: [&str; 2] = ["/usr/share/ovmf/OVMF.fd", "/usr/share/qemu/OVMF.fd"];
        const SPLIT: [(&str, &str); 2] = [
            (
                "/usr/share/OVMF/OVMF_CODE_4M.fd",
                "/usr/share/OVMF/OVMF_VARS_4M.fd",
            ),
            (
                "/usr/share/OVMF/OVMF_CODE.fd",
                "/usr/share/OVMF/OVMF_VARS.fd",
            ),
        ];
        let combined = COMBINED
            .into_iter()
            .find(|image| Path::new(image).is_file())
            .map(|image| Ovmf::Combined(image.into()));
        let split = || {
            SPLIT
                .into_iter()
                .find(|(code, vars)| Path::new(code).is_file() && Path::new(vars).is_file())
                .map(|(code, vars)| Ovmf::Split {
                    code: code.into(),
                    vars: vars.into(),
                })
        };
        combined.or_else(split)
    }

    fn qemu_args(&self) -> Vec<String> {
        match self {
            Ovmf::Combined(image) => vec!["-bios".to_owned(), image.display().to_string()],
            // `snapshot=on` keeps the firmware's variable writes out of the shared system file.
            Ovmf::Split { code, vars } => vec![
                "-drive".to_owned(),
                format!(
                    "if=pflash,format=raw,unit=0,readonly=on,file={}",
                    code.display()
                ),
                "-drive".to_owned(),
                format!(
                    "if=pflash,format=raw,unit=1,snapshot=on,file={}",
                    vars.display()
                ),
            ],
        }
    }
}

/// How the guest's first serial port meets this process.
#[derive(Clone, Copy)]
pub enum Console<'a> {
    /// Serial and QEMU monitor share the terminal, so Ctrl-A X quits.
    Terminal,
    /// Serial only, on QEMU's stdin and stdout, for scripts and tests.
    Plain,
    /// Serial output to a file (the terminal is the debugger's).
    File(&'a Path),
}

pub fn command(machine: &Machine, boot: &Boot, console: Console) -> Command {
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-machine", "q35", "-accel", "tcg", "-cpu", "max"])
        .args(machine.topology_args())
        .args(["-m", &machine.memory.to_string()])
        .args(["-display", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-serial")
        .arg(match console {
            Console::Terminal => "mon:stdio".to_owned(),
            Console::Plain => "stdio".to_owned(),
            Console::File(path) => format!("file:{}", path.display()),
        });
    match boot {
        Boot::Kernel { elf, cmdline } => {
            qemu.arg("-kernel").arg(elf);
            let programs = crate::workspace::programs_beside(elf);
            if programs.is_file() {
                qemu.arg("-initrd").arg(programs);
            }
            if let Some(cmdline) = cmdline {
                qemu.arg("-append").arg(cmdline);
            }
        }
        Boot::Cdrom { iso, firmware } => {
            qemu.arg("-cdrom").arg(iso);
            if let Firmware::Ovmf(ovmf) = firmware {
                qemu.args(ovmf.qemu_args());
            }
        }
    }
    qemu
}

/// How a QEMU process ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QemuExit {
    Status(i32),
    Signal(i32),
    TimedOut(Duration),
}

impl QemuExit {
    pub fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => QemuExit::Status(code),
            (None, Some(signal)) => QemuExit::Signal(signal),
            (None, None) => unreachable!("a Unix process ends with a code or a signal"),
        }
    }
}

impl fmt::Display for QemuExit {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            QemuExit::Status(code) => write!(f, "QEMU exited with status {code}"),
            QemuExit::Signal(signal) => write!(f, "QEMU was killed by signal {signal}"),
            QemuExit::TimedOut(limit) => {
                write!(
                    f,
                    "QEMU ran past the {} s timeout and was killed",
                    limit.as_secs()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(command: &Command) -> Vec<String> {
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn parses_memory_sizes() {
        assert_eq!(
            "512".parse::<MemorySize>().unwrap(),
            MemorySize::from_mib(512)
        );
        assert_eq!(
            "512M".parse::<MemorySize>().unwrap(),
            MemorySize::from_mib(512)
        );
        assert_eq!(
            "2g".parse::<MemorySize>().unwrap(),
            MemorySize::from_mib(2048)
        );
        assert_eq!(MemorySize::from_mib(2048).to_string(), "2048M");
        for bad in [
            "",
            "0",
            "0G",
            "M",
            "12K",
            "1.5G",
            "-1",
            "lots",
            "99999999999999999999G",
        ] {
            assert!(bad.parse::<MemorySize>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn kernel_boot_command_line() {
        let machine = Machine {
            cores: 2,
            memory: MemorySize::from_mib(256),
            memory_given: true,
            numa_nodes: 0,
            numa_distances: None,
        };
        let boot = Boot::Kernel {
            elf: Path::new("/k.elf"),
            cmdline: Some("atoll.exec=cores; ipi 1".to_owned()),
        };
        let command = command(&machine, &boot, Console::Plain);
        assert_eq!(command.get_program(), "qemu-system-x86_64");
        assert_eq!(
            args_of(&command).join(" "),
            "-machine q35 -accel tcg -cpu max -smp 2 -m 256M -display none -no-reboot \
             -device isa-debug-exit,iobase=0xf4,iosize=0x04 -serial stdio \
             -kernel /k.elf -append atoll.exec=cores; ipi 1"
        );
    }

    #[test]
    fn numa_nodes_get_equal_cores_and_memory() {
        let machine = Machine {
            cores: 8,
            memory: MemorySize::from_mib(512),
            memory_given: true,
            numa_nodes: 2,
            numa_distances: None,
        };
        assert_eq!(
            machine.topology_args().join(" "),
            "-smp 8,sockets=2,cores=4,threads=1 \
             -object memory-backend-ram,id=node0-memory,size=256M \
             -numa node,nodeid=0,cpus=0-3,memdev=node0-memory \
             -object memory-backend-ram,id=node1-memory,size=256M \
             -numa node,nodeid=1,cpus=4-7,memdev=node1-memory"
        );
        assert_eq!(Machine::default().topology_args(), ["-smp", "4"]);
        let one_node = Machine {
            numa_nodes: 1,
            ..Machine::default()
        };
        assert_eq!(
            one_node.topology_args().join(" "),
            "-smp 4,sockets=1,cores=4,threads=1 \
             -object memory-backend-ram,id=node0-memory,size=512M \
             -numa node,nodeid=0,cpus=0-3,memdev=node0-memory"
        );
    }

    #[test]
    fn numa_distances_become_one_dist_option_per_ordered_pair() {
        let machine = Machine {
            cores: 3,
            memory: MemorySize::from_mib(384),
            memory_given: true,
            numa_nodes: 3,
            numa_distances: Some(vec![vec![10, 20, 30], vec![21, 10, 255], vec![31, 11, 10]]),
        };
        let args = machine.topology_args().join(" ");
        let (nodes, distances) = args
            .split_once(" -numa dist")
            .expect("distances follow the nodes");
        assert!(
            nodes.ends_with("-numa node,nodeid=2,cpus=2-2,memdev=node2-memory"),
            "{nodes}"
        );
        assert_eq!(
            format!("-numa dist{distances}"),
            "-numa dist,src=0,dst=1,val=20 -numa dist,src=0,dst=2,val=30 \
             -numa dist,src=1,dst=0,val=21 -numa dist,src=1,dst=2,val=255 \
             -numa dist,src=2,dst=0,val=31 -numa dist,src=2,dst=1,val=11"
        );

        // Without NUMA nodes there are no NUMA options, so no distances either.
        let single = Machine {
            numa_distances: Some(vec![vec![10]]),
            ..Machine::default()
        };
        assert_eq!(single.topology_args(), ["-smp", "4"]);
    }

    #[test]
    fn cdrom_boot_under_each_firmware() {
        let machine = Machine::default();
        let iso = Path::new("/a.iso");
        let seabios = command(
            &machine,
            &Boot::Cdrom {
                iso,
                firmware: Firmware::SeaBios,
            },
            Console::Terminal,
        );
        let args = args_of(&seabios).join(" ");
        assert!(args.ends_with("-serial mon:stdio -cdrom /a.iso"), "{args}");

        let split = Ovmf::Split {
            code: PathBuf::from("/c.fd"),
            vars: PathBuf::from("/v.fd"),
        };
        let uefi = command(
            &machine,
            &Boot::Cdrom {
                iso,
                firmware: Firmware::Ovmf(&split),
            },
            Console::Plain,
        );
        let args = args_of(&uefi).join(" ");
        assert!(
            args.ends_with(
                "-cdrom /a.iso -drive if=pflash,format=raw,unit=0,readonly=on,file=/c.fd \
                 -drive if=pflash,format=raw,unit=1,snapshot=on,file=/v.fd"
            ),
            "{args}"
        );
        assert_eq!(
            Ovmf::Combined(PathBuf::from("/o.fd")).qemu_args(),
            ["-bios", "/o.fd"]
        );
    }
}
