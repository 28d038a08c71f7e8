//! joblib: the array data after a `NumpyArrayWrapper` `BUILD`, its layout, and nested object-array
//! pickles.

use std::io::Read;
use std::rc::Rc;

use super::*;

impl<'l> Walker<'l> {
    /// What joblib does right after a `NumpyArrayWrapper` `BUILD`.
    pub(super) fn joblib_array<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        outer: &mut Machine,
        state: &Val,
        off: u64,
    ) -> Result<(), PickleError> {
        if inp.frame_left() > 0 {
            return Err(malformed(
                off,
                "NumpyArrayWrapper BUILD before the end of its FRAME",
            ));
        }
        inp.frame = None;
        let layout = wrapper_layout(state)
            .map_err(|d| malformed(off, format!("joblib NumpyArrayWrapper: {d}")))?;
        self.arrays = self.arrays.saturating_add(1);
        let check_plain = !self.plain_done;
        self.plain_done = true;
        if layout.hasobject {
            self.walk_nested(inp, check_plain.then_some(&outer.memo))?;
        } else {
            self.skip_array(inp, &layout, check_plain)?;
        }
        inp.frame = None;
        // joblib replaces the wrapper on the stack with the array it read.
        outer.stack.pop();
        outer.stack.push(Val::Unknown);
        Ok(())
    }

    pub(super) fn skip_array<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        layout: &Layout,
        check_plain: bool,
    ) -> Result<(), PickleError> {
        let start = inp.offset;
        let mut shadow = Shadow::new();
        if !check_plain {
            shadow.state = ShadowState::Dead;
        }
        if layout.aligned {
            let pad = inp.byte()?;
            shadow.feed(&[pad]);
            let mut bad = false;
            inp.skip_with(pad.into(), |c| {
                bad |= c.iter().any(|&b| b != 0xff);
                shadow.feed(c);
            })?;
            if bad {
                return Err(malformed(
                    start,
                    "joblib alignment padding is not 0xff bytes",
                ));
            }
        }
        inp.skip_with(layout.data_len, |c| shadow.feed(c))?;
        self.add_ops(shadow.ops)?;
        if check_plain && !shadow.dead() {
            return Err(malformed(
                start,
                "joblib array bytes would parse as pickle opcodes that import something under plain pickle.load",
            ));
        }
        Ok(())
    }

    /// A nested object-array pickle: joblib's fresh unpickler and, when `outer_memo` is given,
    /// plain `pickle.load` of the whole file continuing over the same bytes, in lockstep.
    pub(super) fn walk_nested<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        outer_memo: Option<&HashMap<u64, Val>>,
    ) -> Result<(), PickleError> {
        let mut joblib = Machine::new(Role::Nested);
        let mut plain = Machine::new(Role::Plain);
        plain.alive = outer_memo.is_some();
        plain.base_len = outer_memo.map_or(0, HashMap::len);
        loop {
            let off = inp.offset;
            let op = self.next_op(inp)?;
            let flow = self.apply(&mut joblib, None, &op, off)?;
            if plain.alive {
                if let Flow::Stop = self.apply(&mut plain, outer_memo, &op, off)? {
                    plain.alive = false;
                }
            }
            match flow {
                Flow::Continue => {}
                Flow::Stop => {
                    if inp.frame_left() > 0 {
                        return Err(malformed(
                            off,
                            "nested pickle STOP before the end of its FRAME",
                        ));
                    }
                    return Ok(());
                }
                Flow::WrapperBuild(_) => {
                    return Err(malformed(off, "unexpected wrapper in a nested pickle"))
                }
            }
        }
    }
}

impl Machine {
    pub(super) fn tainted_any(&self, items: &[Val]) -> bool {
        self.role == Role::Outer && items.iter().any(Val::tainted)
    }
}

pub(super) fn set_key(d: &mut DictV, k: &Val, v: Val) {
    // An instance of a `str` subclass (NEWOBJ numpy.str_, ...) compares equal to a `str` key.
    let class = match k {
        Val::Instance => StrClass::Maybe,
        other => other.str_class(),
    };
    match class {
        StrClass::Known(s) => {
            if let Some(i) = WRAPPER_ATTRS.iter().position(|a| *a == &*s.s) {
                if let Some(slot) = d.slots.get_mut(i) {
                    *slot = Some(v.weakened());
                }
            }
        }
        StrClass::NotStr => {}
        StrClass::Maybe => d.unknown_keys = true,
    }
}

// ---------------------------------------------------------------------------------------------
pub(super) fn wrapper_layout(state: &Val) -> Result<Layout, String> {
    let rc = match state {
        Val::Node(rc) => Rc::clone(rc),
        _ => return Err("state is not a dict".into()),
    };
    let node = rc.try_borrow().map_err(|_| "state is busy".to_string())?;
    let Node::Dict(d) = &*node else {
        return Err("state is not a dict".into());
    };
    if d.unknown_keys {
        return Err("state has keys of unknown value".into());
    }
    let slot = |i: usize| d.slots.get(i).and_then(Option::as_ref);

    let count = match slot(SLOT_SHAPE) {
        Some(Val::Tuple(t)) if !t.overflow => t.items.iter().try_fold(1u64, |acc, v| match v {
            Val::Int(n) if *n >= 0 => acc.checked_mul(*n as u64).ok_or("shape product overflows"),
            _ => Err("shape has a non-integer or negative dimension"),
        })?,
        _ => return Err("shape is not a known tuple of integers".into()),
    };
    let dtype = slot(SLOT_DTYPE)
        .and_then(Val::node)
        .ok_or("dtype is not a numpy.dtype")?;
    let dtype = dtype
        .try_borrow()
        .map_err(|_| "dtype is busy".to_string())?;
    let Node::Dtype(dt) = &*dtype else {
        return Err("dtype is not a numpy.dtype".into());
    };
    let (hasobject, itemsize) = dtype_layout(dt)?;

    let aligned = match slot(SLOT_ALIGN) {
        None | Some(Val::Nil) => false,
        Some(Val::Unknown | Val::Tainted | Val::Global(_) | Val::Instance) => {
            return Err("numpy_array_alignment_bytes has an unknown value".into())
        }
        Some(_) => true,
    };
    if hasobject {
        match slot(SLOT_MMAP) {
            None | Some(Val::Nil | Val::Bool(false) | Val::Int(0)) => {}
            _ => return Err("object array with allow_mmap set".into()),
        }
    }
    let data_len = count
        .checked_mul(itemsize)
        .ok_or("array byte size overflows")?;
    if data_len > i64::MAX as u64 || count > i64::MAX as u64 {
        return Err("array byte size overflows".into());
    }
    Ok(Layout {
        hasobject,
        aligned,
        data_len,
    })
}

/// `(hasobject, itemsize)` of a symbolic `numpy.dtype(code, ...)` with its `__setstate__` state.
pub(super) fn dtype_layout(dt: &DtypeV) -> Result<(bool, u64), String> {
    let code = dt.code.as_ref().ok_or("dtype code is not a known string")?;
    let bytes = code.s.as_bytes();
    let (kind, digits) = bytes.split_first().ok_or("empty dtype code")?;
    if digits.is_empty()
        || digits.len() > 9
        || !digits.iter().all(u8::is_ascii_digit)
        || !b"biufcmMOSUV".contains(kind)
    {
        return Err(format!("unsupported dtype code {:?}", &*code.s));
    }
    let n: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or("bad dtype size")?;
    if n == 0 {
        return Err(format!("unsized dtype code {:?}", &*code.s));
    }
    let code_size = if *kind == b'U' {
        n.checked_mul(4).ok_or("bad dtype size")?
    } else {
        n
    };
    let flexible = matches!(kind, b'S' | b'U' | b'V');
    let (hasobject, size) = match &dt.state {
        None => (*kind == b'O', code_size),
        Some(Val::Tuple(t)) if !t.overflow && (t.items.len() == 8 || t.items.len() == 9) => {
            let int = |i: usize| match t.items.get(i) {
                Some(Val::Int(v)) if i32::try_from(*v).is_ok() => Ok(*v),
                _ => Err(format!("dtype state item {i} is not a known C int")),
            };
            let version = int(0)?;
            if !(3..=4).contains(&version) {
                return Err(format!("dtype state version {version} is not supported"));
            }
            let elsize = int(5)?;
            let mut flags = int(7)?;
            if (-128..0).contains(&flags) {
                flags += 128;
            }
            if flags < 0 {
                return Err("dtype flags out of range".into());
            }
            let size = if flexible {
                if elsize <= 0 || elsize as u64 != code_size {
                    return Err(format!(
                        "dtype elsize {elsize} does not match code {:?}",
                        &*code.s
                    ));
                }
                code_size
            } else {
                code_size
            };
            (flags & 1 != 0, size)
        }
        Some(_) => return Err("dtype state is not a version 3/4 state tuple".into()),
    };
    // numpy takes `hasobject` from the pickled flags; only `O` arrays are nested pickles.
    // Structured `V` dtypes with object fields are refused: numpy skips the pickled state in
    // some cases, and then joblib would read raw bytes where the flags promise a nested pickle.
    if (*kind == b'O') != hasobject {
        return Err(format!(
            "dtype {:?} has an unsupported object flag",
            &*code.s
        ));
    }
    Ok((hasobject, size))
}
