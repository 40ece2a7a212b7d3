//! Device access rules (`devices.allow` / `devices.deny` lines, LXC's syntax) compiled to a cgroup2
//! eBPF device program, for hosts where the v1 devices controller is not there to enforce them.

use std::path::Path;

use warren_sys::BpfInsn;

/// Access bits, as the kernel's `bpf_cgroup_dev_ctx` carries them (upper half of access_type).
const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
/// Device types (lower half of access_type).
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{key}: invalid device rule \"{value}\": {why}")]
    Rule {
        key: String,
        value: String,
        why: String,
    },
    #[error("device policy: {0}")]
    Load(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevKind {
    All,
    Char,
    Block,
}

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DevKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

/// Parse `a`, `c 1:3 rwm`, `b *:* m`, `c 136:* rw`.
pub fn parse_rule(key: &str, value: &str, allow: bool) -> Result<DeviceRule, DeviceError> {
    let err = |why: &str| DeviceError::Rule {
        key: key.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    };
    let mut words = value.split_whitespace();
    let kind = match words.next() {
        Some("a") => DevKind::All,
        Some("c") => DevKind::Char,
        Some("b") => DevKind::Block,
        _ => return Err(err("the type must be a, c or b")),
    };
    if kind == DevKind::All {
        return Ok(DeviceRule {
            allow,
            kind,
            major: None,
            minor: None,
            access: ACC_MKNOD | ACC_READ | ACC_WRITE,
        });
    }
    let numbers = words.next().ok_or_else(|| err("missing MAJOR:MINOR"))?;
    let (maj, min) = numbers
        .split_once(':')
        .ok_or_else(|| err("expected MAJOR:MINOR"))?;
    let num = |s: &str| -> Result<Option<u32>, DeviceError> {
        if s == "*" {
            Ok(None)
        } else {
            s.parse()
                .map(Some)
                .map_err(|_| err("a device number must be a number or *"))
        }
    };
    let access_text = words.next().unwrap_or("rwm");
    let mut access = 0;
    for ch in access_text.chars() {
        access |= match ch {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(err("access is a combination of r, w and m")),
        };
    }
    Ok(DeviceRule {
        allow,
        kind,
        major: num(maj)?,
        minor: num(min)?,
        access,
    })
}

/// The rules of a container, in config order, from `(file, value)` pairs such as
/// `("devices.allow", "c 1:3 rwm")`. Other files are ignored.
pub fn rules_from(
    settings: &[(String, String)],
    prefix: &str,
) -> Result<Vec<DeviceRule>, DeviceError> {
    let mut out = Vec::new();
    for (file, value) in settings {
        let allow = match file.as_str() {
            "devices.allow" => true,
            "devices.deny" => false,
            _ => continue,
        };
        out.push(parse_rule(&format!("{prefix}{file}"), value, allow)?);
    }
    Ok(out)
}

/// The cgroup v1 semantics: an `a` rule sets the default and clears the exceptions; other rules of
/// the opposite sense to the default are exceptions. Returns (default allow?, exceptions).
fn effective(rules: &[DeviceRule]) -> (bool, Vec<DeviceRule>) {
    let mut default_allow = true;
    let mut exceptions: Vec<DeviceRule> = Vec::new();
    for r in rules {
        if r.kind == DevKind::All && r.major.is_none() && r.minor.is_none() {
            default_allow = r.allow;
            exceptions.clear();
        } else if r.allow != default_allow {
            exceptions.push(r.clone());
        } else {
            // same sense as the default: it takes its access bits back from a matching exception
            // (as cgroup v1 does), dropping the exception when none are left
            for e in exceptions
                .iter_mut()
                .filter(|e| e.kind == r.kind && e.major == r.major && e.minor == r.minor)
            {
                e.access &= !r.access;
            }
            exceptions.retain(|e| e.access != 0);
        }
    }
    (default_allow, exceptions)
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (dst & 0xf) | (src << 4),
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61;
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const AND64_K: u8 = 0x57;
const RSH64_K: u8 = 0x77;
const JNE_K: u8 = 0x55;
const JEQ_K: u8 = 0x15;
const EXIT: u8 = 0x95;

/// The eBPF program for `rules`: returns 1 (allow) or 0 (deny) for a device access.
pub fn compile(rules: &[DeviceRule]) -> Vec<BpfInsn> {
    let (default_allow, exceptions) = effective(rules);
    // r2 = access_type, r3 = major, r4 = minor; r5 = type, r2 = access
    let mut prog = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(LDX_W, 3, 1, 4, 0),
        insn(LDX_W, 4, 1, 8, 0),
        insn(MOV64_X, 5, 2, 0, 0),
        insn(AND64_K, 5, 0, 0, 0xffff),
        insn(RSH64_K, 2, 0, 0, 16),
    ];
    for e in &exceptions {
        // a block: checks that jump past the block's end when they fail, then the verdict
        let mut block: Vec<(BpfInsn, bool)> = Vec::new();
        match e.kind {
            DevKind::Char => block.push((insn(JNE_K, 5, 0, 0, DEV_CHAR), true)),
            DevKind::Block => block.push((insn(JNE_K, 5, 0, 0, DEV_BLOCK), true)),
            DevKind::All => {}
        }
        if let Some(m) = e.major {
            block.push((insn(JNE_K, 3, 0, 0, m as i32), true));
        }
        if let Some(m) = e.minor {
            block.push((insn(JNE_K, 4, 0, 0, m as i32), true));
        }
        block.push((insn(MOV64_X, 6, 2, 0, 0), false));
        if e.allow {
            // an allowed exception covers the access only if nothing outside its bits is asked
            block.push((insn(AND64_K, 6, 0, 0, !(e.access as i32) & 0xffff), false));
            block.push((insn(JNE_K, 6, 0, 0, 0), true));
        } else {
            // a denied exception refuses any access it names
            block.push((insn(AND64_K, 6, 0, 0, e.access as i32), false));
            block.push((insn(JEQ_K, 6, 0, 0, 0), true));
        }
        block.push((insn(MOV64_K, 0, 0, 0, i32::from(e.allow)), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut ins, jumps_out)) in block.into_iter().enumerate() {
            if jumps_out {
                ins.off = (len - i - 1) as i16;
            }
            prog.push(ins);
        }
    }
    prog.push(insn(MOV64_K, 0, 0, 0, i32::from(default_allow)));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

/// Load the program for `rules` and attach it to the cgroup2 directory `cgroup`, in place of the
/// program `replace` (an earlier `enforce`'s) when given. Returns the new program.
pub fn enforce(
    rules: &[DeviceRule],
    cgroup: &Path,
    replace: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<std::os::fd::OwnedFd, DeviceError> {
    let dir = std::fs::File::open(cgroup)
        .map_err(|e| DeviceError::Load(format!("open {}: {e}", cgroup.display())))?;
    warren_sys::attach_cgroup_device_program(
        &compile(rules),
        std::os::fd::AsFd::as_fd(&dir),
        replace,
    )
    .map_err(|e| DeviceError::Load(format!("eBPF device program on {}: {e}", cgroup.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interpret the compiled program for one access, as the kernel would.
    fn run(prog: &[BpfInsn], kind: i32, major: u32, minor: u32, access: u8) -> u64 {
        let mut r = [0u64; 11];
        let ctx = [((access as u32) << 16) | kind as u32, major, minor];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => r[dst] = ctx[(i.off / 4) as usize] as u64,
                MOV64_X => r[dst] = r[src],
                MOV64_K => r[dst] = i.imm as i64 as u64,
                AND64_K => r[dst] &= i.imm as i64 as u64,
                RSH64_K => r[dst] >>= i.imm,
                JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc += i.off as usize
                    }
                }
                JEQ_K => {
                    if r[dst] == i.imm as i64 as u64 {
                        pc += i.off as usize
                    }
                }
                EXIT => return r[0],
                other => panic!("unknown opcode {other:#x}"),
            }
        }
    }

    fn rules(lines: &[(&str, &str)]) -> Vec<DeviceRule> {
        lines
            .iter()
            .map(|(k, v)| parse_rule(k, v, *k == "allow").unwrap())
            .collect()
    }

    #[test]
    fn lxc_style_allow_list() {
        let r = rules(&[
            ("deny", "a"),
            ("allow", "c *:* m"),
            ("allow", "c 1:3 rwm"),
            ("allow", "c 136:* rw"),
        ]);
        let p = compile(&r);
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&p, DEV_CHAR, 1, 3, rw), 1, "/dev/null");
        assert_eq!(run(&p, DEV_CHAR, 1, 11, ACC_READ), 0, "/dev/kmsg");
        assert_eq!(
            run(&p, DEV_CHAR, 1, 11, ACC_MKNOD),
            1,
            "mknod of any char device"
        );
        assert_eq!(
            run(&p, DEV_BLOCK, 254, 0, ACC_MKNOD),
            0,
            "block mknod not allowed"
        );
        assert_eq!(run(&p, DEV_CHAR, 136, 7, rw), 1, "ptys");
        assert_eq!(
            run(&p, DEV_CHAR, 136, 7, ACC_MKNOD | ACC_READ),
            0,
            "pty mknod not in rw"
        );
    }

    #[test]
    fn default_allow_with_denies() {
        let r = rules(&[("allow", "a"), ("deny", "b 8:* rwm")]);
        let p = compile(&r);
        assert_eq!(run(&p, DEV_BLOCK, 8, 1, ACC_READ), 0);
        assert_eq!(run(&p, DEV_BLOCK, 9, 1, ACC_READ), 1);
        assert_eq!(run(&p, DEV_CHAR, 8, 1, ACC_READ), 1);
    }

    #[test]
    fn a_partial_allow_takes_back_only_its_bits() {
        let r = rules(&[
            ("allow", "a"),
            ("deny", "c 10:200 rwm"),
            ("allow", "c 10:200 r"),
        ]);
        let p = compile(&r);
        assert_eq!(run(&p, DEV_CHAR, 10, 200, ACC_READ), 1);
        assert_eq!(run(&p, DEV_CHAR, 10, 200, ACC_WRITE), 0);
        assert_eq!(run(&p, DEV_CHAR, 10, 200, ACC_MKNOD), 0);
    }

    #[test]
    fn bad_rules_name_the_key() {
        let e = parse_rule("lxc.cgroup2.devices.allow", "x 1:3 rwm", true)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("lxc.cgroup2.devices.allow:"), "{e}");
        assert!(parse_rule("k", "c 1 rwm", true).is_err());
        assert!(parse_rule("k", "c 1:3 rwq", true).is_err());
    }
}
