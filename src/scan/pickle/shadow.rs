//! The syntax-only parser: where plain `pickle.load` would go in the bytes joblib skips.

use super::*;

pub(super) enum ShadowState {
    Op,
    Skip(u64),
    Lines(u8),
    Len {
        size: u8,
        signed: bool,
        have: u8,
        acc: [u8; 8],
    },
    /// The plain parse stops here (invalid opcode, bad length, or `STOP`): safe.
    Dead,
    /// The plain parse would import something, or would keep going past the region.
    Live,
}

impl ShadowState {
    /// The state that reads a `size`-byte length argument, starting with no byte read.
    pub(super) fn length(size: u8, signed: bool) -> Self {
        ShadowState::Len {
            size,
            signed,
            have: 0,
            acc: [0; 8],
        }
    }
}

pub(super) struct Shadow {
    pub(super) state: ShadowState,
    pub(super) ops: u64,
}

impl Shadow {
    pub(super) fn new() -> Self {
        Shadow {
            state: ShadowState::Op,
            ops: 0,
        }
    }

    pub(super) fn feed(&mut self, mut data: &[u8]) {
        while let Some((&b, rest)) = data.split_first() {
            match &mut self.state {
                ShadowState::Dead | ShadowState::Live => return,
                ShadowState::Op => {
                    self.ops = self.ops.saturating_add(1);
                    data = rest;
                    self.state = match op_arg(b) {
                        None => ShadowState::Dead,
                        Some(_) if b == b'.' => ShadowState::Dead,
                        Some(_) if op_imports(b) => ShadowState::Live,
                        Some(Arg::No) => ShadowState::Op,
                        Some(Arg::Fixed(n)) => ShadowState::Skip(u64::from(n)),
                        Some(Arg::Lines(n)) => ShadowState::Lines(n),
                        Some(Arg::Len1) => ShadowState::length(1, false),
                        Some(Arg::Len4) => ShadowState::length(4, false),
                        Some(Arg::Len4Signed) => ShadowState::length(4, true),
                        Some(Arg::Len8) => ShadowState::length(8, false),
                    };
                }
                ShadowState::Skip(n) => {
                    let k = usize::try_from(*n).unwrap_or(usize::MAX).min(data.len());
                    *n -= k as u64;
                    data = data.get(k..).unwrap_or(&[]);
                    if *n == 0 {
                        self.state = ShadowState::Op;
                    }
                }
                ShadowState::Lines(n) => match data.iter().position(|&x| x == b'\n') {
                    Some(i) => {
                        data = data.get(i + 1..).unwrap_or(&[]);
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            self.state = ShadowState::Op;
                        }
                    }
                    None => data = &[],
                },
                ShadowState::Len {
                    size,
                    signed,
                    have,
                    acc,
                } => {
                    if let Some(slot) = acc.get_mut(usize::from(*have)) {
                        *slot = b;
                    }
                    *have += 1;
                    data = rest;
                    if have == size {
                        let len = if *size == 4 {
                            let v = u32::from_le_bytes([acc[0], acc[1], acc[2], acc[3]]);
                            if *signed && v & 0x8000_0000 != 0 {
                                self.state = ShadowState::Dead;
                                continue;
                            }
                            u64::from(v)
                        } else if *size == 1 {
                            u64::from(acc[0])
                        } else {
                            u64::from_le_bytes(*acc)
                        };
                        self.state = if len == 0 {
                            ShadowState::Op
                        } else {
                            ShadowState::Skip(len)
                        };
                    }
                }
            }
        }
    }

    pub(super) fn dead(&self) -> bool {
        matches!(self.state, ShadowState::Dead)
    }
}

// ---------------------------------------------------------------------------------------------
