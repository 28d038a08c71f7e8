//! The symbolic machine and the walker's reading of opcodes.

use std::io::Read;
use std::rc::Rc;

use super::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The outer stream as joblib's `NumpyUnpickler` reads it (wrapper `BUILD`s read arrays).
    Outer,
    /// A nested object-array pickle as joblib reads it (fresh `pickle.load`).
    Nested,
    /// The same nested bytes as plain `pickle.load` of the whole file reads them (outer memo
    /// underneath). Never mutates shared nodes.
    Plain,
}

pub(super) struct Machine {
    pub(super) role: Role,
    pub(super) stack: Vec<Val>,
    pub(super) marks: Vec<usize>,
    pub(super) memo: HashMap<u64, Val>,
    /// Plain: entries of the outer memo.
    pub(super) base_len: usize,
    /// Plain: overlay keys absent from the outer memo.
    pub(super) new_keys: usize,
    pub(super) alive: bool,
    /// A wrapper class or instance reached code we do not follow: every later call result may
    /// be a wrapper.
    pub(super) escaped: bool,
    pub(super) pending_version: bool,
}

pub(super) enum Flow {
    Continue,
    Stop,
    WrapperBuild(Val),
}

impl Machine {
    pub(super) fn new(role: Role) -> Self {
        Machine {
            role,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            base_len: 0,
            new_keys: 0,
            alive: true,
            escaped: false,
            pending_version: false,
        }
    }

    pub(super) fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn pop(&mut self, off: u64) -> Result<Val, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(off));
        }
        self.stack.pop().ok_or_else(|| underflow(off))
    }

    pub(super) fn top(&self, off: u64) -> Result<Val, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(off));
        }
        self.stack.last().cloned().ok_or_else(|| underflow(off))
    }

    pub(super) fn pop_n(&mut self, n: usize, off: u64) -> Result<Vec<Val>, PickleError> {
        let len = self.stack.len();
        if len < self.fence().saturating_add(n) {
            return Err(underflow(off));
        }
        Ok(self.stack.split_off(len - n))
    }

    pub(super) fn pop_mark(&mut self, off: u64) -> Result<Vec<Val>, PickleError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| malformed(off, "no MARK on the stack"))?;
        if mark > self.stack.len() {
            return Err(underflow(off));
        }
        Ok(self.stack.split_off(mark))
    }

    pub(super) fn tainted(&self, v: &Val) -> bool {
        self.role == Role::Outer && v.tainted()
    }
}

pub(super) fn underflow(off: u64) -> PickleError {
    malformed(off, "stack underflow")
}

pub(super) fn malformed(off: u64, detail: impl Into<String>) -> PickleError {
    PickleError::Malformed {
        offset: off,
        detail: detail.into(),
    }
}

pub(super) struct Walker<'l> {
    pub(super) limits: &'l PickleLimits,
    pub(super) ops: u64,
    pub(super) globals: BTreeSet<String>,
    pub(super) sklearn_version: Option<String>,
    pub(super) saw_wrapper: bool,
    pub(super) protocol: Option<u8>,
    pub(super) arrays: u64,
    /// Plain `pickle.load` of the whole file has certainly stopped: it dies in the first
    /// array region (or the scan is refused) or returns at the first nested pickle's `STOP`.
    pub(super) plain_done: bool,
    pub(super) acct: Rc<Cell<u64>>,
}

/// Array layout joblib will read after a wrapper `BUILD`.
pub(super) struct Layout {
    pub(super) hasobject: bool,
    pub(super) aligned: bool,
    pub(super) data_len: u64,
}

impl<'l> Walker<'l> {
    pub(super) fn new(limits: &'l PickleLimits) -> Self {
        Walker {
            limits,
            ops: 0,
            globals: BTreeSet::new(),
            sklearn_version: None,
            saw_wrapper: false,
            protocol: None,
            arrays: 0,
            plain_done: false,
            acct: Rc::new(Cell::new(0)),
        }
    }

    pub(super) fn finish(self, sniffed: ModelFormat) -> PickleInfo {
        let format = match sniffed {
            ModelFormat::Pickle { .. } if self.saw_wrapper => ModelFormat::Joblib,
            other => other,
        };
        PickleInfo {
            format,
            protocol: self.protocol.unwrap_or(0),
            globals: self.globals.into_iter().collect(),
            sklearn_version: self.sklearn_version,
            arrays: self.arrays,
        }
    }

    pub(super) fn add_ops(&mut self, n: u64) -> Result<(), PickleError> {
        self.ops = self.ops.saturating_add(n);
        if self.ops > self.limits.max_ops {
            return Err(PickleError::Limit {
                what: "opcodes",
                limit: self.limits.max_ops,
            });
        }
        Ok(())
    }

    pub(super) fn record(&mut self, name: &str) -> Result<GKind, PickleError> {
        let kind = GKind::classify(name);
        if kind == GKind::Wrapper {
            self.saw_wrapper = true;
        }
        if !self.globals.contains(name) {
            if self.globals.len() >= self.limits.max_globals {
                return Err(PickleError::Limit {
                    what: "globals",
                    limit: u64::try_from(self.limits.max_globals).unwrap_or(u64::MAX),
                });
            }
            self.globals.insert(name.to_owned());
        }
        Ok(kind)
    }

    pub(super) fn make_str(&mut self, s: &str) -> Val {
        let cost = (s.len() as u64).saturating_add(48);
        if self.acct.get().saturating_add(cost) > MAX_RETAINED {
            return Val::OpaqueStr;
        }
        self.acct.set(self.acct.get().saturating_add(cost));
        Val::Str(Rc::new(PStr {
            s: s.into(),
            acct: Rc::clone(&self.acct),
            cost,
        }))
    }

    pub(super) fn make_tuple(&mut self, role: Role, items: Vec<Val>) -> Val {
        let tainted = role == Role::Outer && items.iter().any(Val::tainted);
        let depth = items
            .iter()
            .map(|v| match v {
                Val::Tuple(t) => t.depth,
                _ => 0,
            })
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let cost = 48u64.saturating_add(24u64.saturating_mul(items.len() as u64));
        let keep = items.len() <= MAX_TUPLE_ITEMS
            && depth <= MAX_TUPLE_DEPTH
            && self.acct.get().saturating_add(cost) <= MAX_RETAINED;
        let (items, overflow, depth, cost) = if keep {
            (
                items.into_iter().map(Val::weakened).collect(),
                false,
                depth,
                cost,
            )
        } else {
            (Vec::new(), true, 1, 48)
        };
        self.acct.set(self.acct.get().saturating_add(cost));
        Val::Tuple(Rc::new(TupleV {
            items,
            overflow,
            tainted,
            depth,
            acct: Rc::clone(&self.acct),
            cost,
        }))
    }

    pub(super) fn string_val(&mut self, bytes: Option<Vec<u8>>, ascii: bool) -> Val {
        let Some(bytes) = bytes else {
            return Val::OpaqueStr;
        };
        if ascii && !bytes.is_ascii() {
            return Val::OpaqueStr;
        }
        match String::from_utf8(bytes) {
            Ok(s) => self.make_str(&s),
            Err(_) => Val::OpaqueStr,
        }
    }

    /// Reads a length-prefixed string payload; strings over `max_string` are skipped.
    pub(super) fn payload<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        n: u64,
    ) -> Result<Option<Vec<u8>>, PickleError> {
        inp.frame_take(n)?;
        let cap = u64::try_from(self.limits.max_string).unwrap_or(u64::MAX);
        if n > cap {
            inp.skip_with(n, |_| {})?;
            return Ok(None);
        }
        inp.take(usize::try_from(n).unwrap_or(usize::MAX)).map(Some)
    }

    /// `LONG1`/`LONG4` payload: values of up to 8 bytes are kept whatever `max_string` is
    /// (they can be array dimensions), longer ones are skipped.
    pub(super) fn long_payload<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        n: u64,
    ) -> Result<Val, PickleError> {
        inp.frame_take(n)?;
        if n <= 8 {
            let bytes = inp.take(usize::try_from(n).unwrap_or(8))?;
            return Ok(long_bytes(&bytes));
        }
        inp.skip_with(n, |_| {})?;
        Ok(Val::Scalar)
    }

    pub(super) fn skip_payload<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        n: u64,
    ) -> Result<(), PickleError> {
        inp.frame_take(n)?;
        inp.skip_with(n, |_| {})
    }

    pub(super) fn global_name<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        off: u64,
        ascii: bool,
    ) -> Result<Option<String>, PickleError> {
        let cap = self.limits.max_string;
        let module = inp.line(cap)?;
        let name = inp.line(cap)?;
        let (Some(module), Some(name)) = (module, name) else {
            return Ok(None);
        };
        if ascii && !(module.is_ascii() && name.is_ascii()) {
            return Err(malformed(off, "INST argument is not ASCII"));
        }
        match (String::from_utf8(module), String::from_utf8(name)) {
            (Ok(m), Ok(n)) => Ok(Some(format!("{m}.{n}"))),
            _ => Err(malformed(off, "GLOBAL argument is not UTF-8")),
        }
    }

    /// Decodes one opcode and its argument.
    pub(super) fn next_op<R: Read>(&mut self, inp: &mut Input<R>) -> Result<Op, PickleError> {
        let off = inp.offset;
        self.add_ops(1)?;
        inp.frame_take(1)?;
        let code = inp.byte()?;
        let cap = self.limits.max_string;
        Ok(match code {
            b'(' => Op::Mark,
            b'.' => Op::Stop,
            b'0' => Op::Pop,
            b'1' => Op::PopMark,
            b'2' => Op::Dup,
            b'F' => {
                inp.line(64)?;
                Op::Push(Val::Scalar)
            }
            b'I' => match inp.line(64)? {
                Some(l) if l == b"00" => Op::Push(Val::Bool(false)),
                Some(l) if l == b"01" => Op::Push(Val::Bool(true)),
                Some(l) => Op::Push(parse_int_text(&l)),
                None => Op::Push(Val::Scalar),
            },
            b'J' => Op::Push(Val::Int(i32::from_le_bytes(inp.fixed::<4>()?).into())),
            b'K' => Op::Push(Val::Int(inp.fixed::<1>()?[0].into())),
            b'L' => match inp.line(64)? {
                Some(mut l) => {
                    if l.last() == Some(&b'L') {
                        l.pop();
                    }
                    Op::Push(parse_int_text(&l))
                }
                None => Op::Push(Val::Scalar),
            },
            b'M' => Op::Push(Val::Int(u16::from_le_bytes(inp.fixed::<2>()?).into())),
            b'N' => Op::Push(Val::Nil),
            b'P' => {
                inp.line(cap)?;
                Op::PersId
            }
            b'Q' => Op::BinPersId,
            b'R' => Op::Reduce,
            b'S' => {
                let v = match inp.line(cap)? {
                    Some(l) => match l.as_slice() {
                        [q @ (b'\'' | b'"'), inner @ .., last] if last == q => {
                            if inner.contains(&b'\\') {
                                Val::OpaqueStr
                            } else {
                                self.string_val(Some(inner.to_vec()), true)
                            }
                        }
                        _ => return Err(malformed(off, "STRING argument is not quoted")),
                    },
                    None => Val::OpaqueStr,
                };
                Op::Push(v)
            }
            b'T' => {
                let n = i32::from_le_bytes(inp.fixed::<4>()?);
                let n = u64::try_from(n)
                    .map_err(|_| malformed(off, "BINSTRING with a negative length"))?;
                let bytes = self.payload(inp, n)?;
                Op::Push(self.string_val(bytes, true))
            }
            b'U' => {
                let n = inp.fixed::<1>()?[0];
                let bytes = self.payload(inp, n.into())?;
                Op::Push(self.string_val(bytes, true))
            }
            b'V' => {
                // raw-unicode-escape: without a backslash, every byte is one latin-1 character.
                let v = match inp.line(cap)? {
                    Some(l) if !l.contains(&b'\\') => {
                        let s: String = l.iter().map(|&b| char::from(b)).collect();
                        self.make_str(&s)
                    }
                    _ => Val::OpaqueStr,
                };
                Op::Push(v)
            }
            b'X' => {
                let n = u32::from_le_bytes(inp.fixed::<4>()?);
                let bytes = self.payload(inp, n.into())?;
                Op::Push(self.string_val(bytes, false))
            }
            b'a' => Op::Append,
            b'b' => Op::Build,
            b'c' => Op::Global(self.global_name(inp, off, false)?),
            b'd' => Op::Dict,
            b'}' => Op::EmptyDict,
            b'e' => Op::Appends,
            b'g' => {
                let line = inp.line(64)?;
                Op::Get(
                    line.as_deref()
                        .and_then(parse_index)
                        .ok_or_else(|| malformed(off, "bad GET index"))?,
                )
            }
            b'h' => Op::Get(inp.fixed::<1>()?[0].into()),
            b'i' => Op::Inst(self.global_name(inp, off, true)?),
            b'j' => Op::Get(u32::from_le_bytes(inp.fixed::<4>()?).into()),
            b'l' => Op::List,
            b']' => Op::EmptyList,
            b'o' => Op::Obj,
            b'p' => {
                let line = inp.line(64)?;
                Op::Put(
                    line.as_deref()
                        .and_then(parse_index)
                        .ok_or_else(|| malformed(off, "bad PUT index"))?,
                )
            }
            b'q' => Op::Put(inp.fixed::<1>()?[0].into()),
            b'r' => Op::Put(u32::from_le_bytes(inp.fixed::<4>()?).into()),
            b's' => Op::SetItem,
            b't' => Op::Tuple,
            b')' => Op::EmptyTuple,
            b'u' => Op::SetItems,
            b'G' => {
                inp.fixed::<8>()?;
                Op::Push(Val::Scalar)
            }
            b'B' => {
                let n = u32::from_le_bytes(inp.fixed::<4>()?);
                self.skip_payload(inp, n.into())?;
                Op::Push(Val::Scalar)
            }
            b'C' => {
                let n = inp.fixed::<1>()?[0];
                self.skip_payload(inp, n.into())?;
                Op::Push(Val::Scalar)
            }
            0x80 => Op::Proto(inp.fixed::<1>()?[0]),
            0x81 => Op::NewObj,
            0x82 => Op::Ext(inp.fixed::<1>()?[0].into()),
            0x83 => Op::Ext(u16::from_le_bytes(inp.fixed::<2>()?).into()),
            0x84 => Op::Ext(i32::from_le_bytes(inp.fixed::<4>()?).into()),
            0x85 => Op::TupleN(1),
            0x86 => Op::TupleN(2),
            0x87 => Op::TupleN(3),
            0x88 => Op::Push(Val::Bool(true)),
            0x89 => Op::Push(Val::Bool(false)),
            0x8a => {
                let n = inp.fixed::<1>()?[0];
                Op::Push(self.long_payload(inp, n.into())?)
            }
            0x8b => {
                let n = i32::from_le_bytes(inp.fixed::<4>()?);
                let n =
                    u64::try_from(n).map_err(|_| malformed(off, "LONG4 with a negative length"))?;
                Op::Push(self.long_payload(inp, n)?)
            }
            0x8c => {
                let n = inp.fixed::<1>()?[0];
                let bytes = self.payload(inp, n.into())?;
                Op::Push(self.string_val(bytes, false))
            }
            0x8d => {
                let n = u64::from_le_bytes(inp.fixed::<8>()?);
                let bytes = self.payload(inp, n)?;
                Op::Push(self.string_val(bytes, false))
            }
            0x8e | 0x96 => {
                let n = u64::from_le_bytes(inp.fixed::<8>()?);
                self.skip_payload(inp, n)?;
                Op::Push(Val::Scalar)
            }
            0x8f => Op::EmptySet,
            0x90 => Op::AddItems,
            0x91 => Op::Frozenset,
            0x92 => Op::NewObjEx,
            0x93 => Op::StackGlobal,
            0x94 => Op::Memoize,
            0x95 => {
                let n = u64::from_le_bytes(inp.fixed::<8>()?);
                if inp.frame_left() > 0 {
                    return Err(malformed(off, "FRAME starts before the current frame ends"));
                }
                inp.frame = Some(n);
                Op::Nop
            }
            0x97 => Op::NextBuffer,
            0x98 => Op::ReadonlyBuffer,
            _ => {
                return Err(PickleError::UnknownOpcode {
                    opcode: code,
                    offset: off,
                })
            }
        })
    }
}
