//! The stack effect of each opcode on the symbolic machine.

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;

use super::*;

impl<'l> Walker<'l> {
    pub(super) fn push(&mut self, m: &mut Machine, v: Val) -> Result<(), PickleError> {
        if m.stack.len().saturating_add(m.marks.len()) >= self.limits.max_stack {
            return Err(self.stack_limit());
        }
        if m.role != Role::Plain {
            if m.pending_version {
                m.pending_version = false;
                if let (Val::Str(s), None) = (&v, &self.sklearn_version) {
                    self.sklearn_version = Some(s.s.to_string());
                }
            }
            if let Val::Str(s) = &v {
                if &*s.s == "_sklearn_version" {
                    m.pending_version = true;
                }
            }
        }
        m.stack.push(v);
        Ok(())
    }

    pub(super) fn stack_limit(&self) -> PickleError {
        PickleError::Limit {
            what: "stack depth",
            limit: u64::try_from(self.limits.max_stack).unwrap_or(u64::MAX),
        }
    }

    pub(super) fn memo_put(
        &self,
        m: &mut Machine,
        base: Option<&HashMap<u64, Val>>,
        key: u64,
        v: Val,
    ) -> Result<(), PickleError> {
        if !m.memo.contains_key(&key) {
            if m.memo.len() >= self.limits.max_memo {
                return Err(PickleError::Limit {
                    what: "memo entries",
                    limit: u64::try_from(self.limits.max_memo).unwrap_or(u64::MAX),
                });
            }
            if m.role == Role::Plain && !base.is_some_and(|b| b.contains_key(&key)) {
                m.new_keys = m.new_keys.saturating_add(1);
            }
        }
        m.memo.insert(key, v);
        Ok(())
    }

    pub(super) fn memo_len(m: &Machine) -> u64 {
        let len = if m.role == Role::Plain {
            m.base_len.saturating_add(m.new_keys)
        } else {
            m.memo.len()
        };
        len as u64
    }

    /// Result of calling something with untracked semantics.
    pub(super) fn call_result(m: &mut Machine, inputs: &[&Val], plain: Val) -> Val {
        if m.role != Role::Outer {
            return plain;
        }
        if inputs.iter().any(|v| v.tainted()) {
            m.escaped = true;
        }
        if m.escaped {
            Val::Tainted
        } else {
            plain
        }
    }

    /// `cls.__new__(cls, ...)` through `NEWOBJ`/`NEWOBJ_EX`/`copyreg.__newobj__`.
    pub(super) fn new_instance(m: &mut Machine, cls: &Val, rest: &[&Val]) -> Val {
        if m.role == Role::Outer && matches!(cls, Val::Global(GKind::Wrapper)) {
            if rest.iter().any(|v| v.tainted()) {
                m.escaped = true;
            }
            return Val::Node(Rc::new(RefCell::new(Node::Wrapper { built: false })));
        }
        let mut inputs = vec![cls];
        inputs.extend_from_slice(rest);
        Self::call_result(m, &inputs, Val::Instance)
    }

    pub(super) fn reduce(&mut self, m: &mut Machine, f: &Val, args: &Val) -> Val {
        let tuple = match args {
            Val::Tuple(t) if !t.overflow => Some(t),
            _ => None,
        };
        match (f, tuple) {
            (Val::Global(GKind::NumpyDtype), _) if m.role != Role::Plain => {
                let code = tuple.and_then(|t| match t.items.as_slice() {
                    [Val::Str(s)] | [Val::Str(s), _] | [Val::Str(s), _, _] => Some(Rc::clone(s)),
                    _ => None,
                });
                if m.role == Role::Outer && args.tainted() {
                    m.escaped = true;
                }
                Val::Node(Rc::new(RefCell::new(Node::Dtype(DtypeV {
                    code,
                    state: None,
                }))))
            }
            (Val::Global(GKind::NumpyDtype), _) => Val::Instance,
            (Val::Global(GKind::CopyregNewobj), Some(t)) if !t.items.is_empty() => {
                let (cls, rest) = t
                    .items
                    .split_first()
                    .map_or((&Val::Unknown, &[][..]), |(c, r)| (c, r));
                let rest: Vec<&Val> = rest.iter().collect();
                Self::new_instance(m, cls, &rest)
            }
            (Val::Global(GKind::CopyregNewobjEx), Some(t)) if t.items.len() == 3 => {
                let (cls, rest) = t
                    .items
                    .split_first()
                    .map_or((&Val::Unknown, &[][..]), |(c, r)| (c, r));
                let rest: Vec<&Val> = rest.iter().collect();
                Self::new_instance(m, cls, &rest)
            }
            _ => Self::call_result(m, &[f, args], Val::Unknown),
        }
    }

    /// Inserting items into an existing object. A tainted item (or target) escapes, because the
    /// target's parents could no longer be flagged.
    pub(super) fn insert_into(
        &mut self,
        m: &mut Machine,
        target: &Val,
        items: &[Val],
        off: u64,
    ) -> Result<(), PickleError> {
        if m.role == Role::Outer && (target.tainted() || items.iter().any(Val::tainted)) {
            m.escaped = true;
        }
        if m.role == Role::Plain {
            return Ok(());
        }
        let Val::Node(rc) = target else { return Ok(()) };
        let mut node = rc
            .try_borrow_mut()
            .map_err(|_| malformed(off, "object inserted into itself"))?;
        if let Node::Dict(d) = &mut *node {
            for pair in items.chunks(2) {
                let [k, v] = pair else { continue };
                if m.role == Role::Outer && v.tainted() {
                    d.tainted = true;
                }
                set_key(d, k, v.clone());
            }
        }
        Ok(())
    }

    pub(super) fn build(&mut self, m: &mut Machine, off: u64) -> Result<Flow, PickleError> {
        let state = m.pop(off)?;
        let target = m.top(off)?;
        if m.role == Role::Plain {
            return Ok(Flow::Continue);
        }
        if let Val::Node(rc) = &target {
            let mut node = rc
                .try_borrow_mut()
                .map_err(|_| malformed(off, "object built from itself"))?;
            match &mut *node {
                Node::Wrapper { built } if m.role == Role::Outer => {
                    if *built {
                        return Err(malformed(off, "NumpyArrayWrapper built twice"));
                    }
                    *built = true;
                    drop(node);
                    if state.tainted() {
                        m.escaped = true;
                    }
                    return Ok(Flow::WrapperBuild(state));
                }
                Node::Dtype(d) => d.state = Some(state.clone().weakened()),
                _ => {}
            }
        }
        if m.role == Role::Outer {
            if matches!(target, Val::Tainted) {
                return Err(malformed(
                    off,
                    "BUILD on an object that may be a NumpyArrayWrapper built in a way the walker cannot follow",
                ));
            }
            if state.tainted() || target.tainted() {
                m.escaped = true;
            }
        }
        Ok(Flow::Continue)
    }

    pub(super) fn stack_global(&mut self, m: &mut Machine, off: u64) -> Result<(), PickleError> {
        let name = m.pop(off)?;
        let module = m.pop(off)?;
        let (mc, nc) = (module.str_class(), name.str_class());
        if m.role == Role::Plain
            && (matches!(mc, StrClass::NotStr) || matches!(nc, StrClass::NotStr))
        {
            // pickle.load raises "STACK_GLOBAL requires str" here: this reading ends.
            m.alive = false;
            return Ok(());
        }
        let kind = match (mc, nc) {
            (StrClass::Known(a), StrClass::Known(b)) => self.record(&format!("{}.{}", a.s, b.s))?,
            _ => {
                self.record(UNRESOLVED)?;
                GKind::Unresolved
            }
        };
        self.push(m, Val::Global(kind))
    }

    pub(super) fn apply(
        &mut self,
        m: &mut Machine,
        base: Option<&HashMap<u64, Val>>,
        op: &Op,
        off: u64,
    ) -> Result<Flow, PickleError> {
        match op {
            Op::Nop => {}
            Op::Proto(p) => {
                if *p > 5 {
                    return Err(malformed(off, format!("unsupported pickle protocol {p}")));
                }
                if m.role == Role::Outer && self.protocol.is_none() {
                    self.protocol = Some(*p);
                }
            }
            Op::Stop => {
                m.pop(off)?;
                return Ok(Flow::Stop);
            }
            Op::Mark => {
                if m.stack.len().saturating_add(m.marks.len()) >= self.limits.max_stack {
                    return Err(self.stack_limit());
                }
                m.marks.push(m.stack.len());
            }
            Op::Pop => {
                if m.marks.last() == Some(&m.stack.len()) {
                    m.marks.pop();
                } else {
                    m.pop(off)?;
                }
            }
            Op::PopMark => {
                m.pop_mark(off)?;
            }
            Op::Dup => {
                let v = m.top(off)?;
                self.push(m, v)?;
            }
            Op::Push(v) => self.push(m, v.clone())?,
            Op::EmptyTuple => {
                let t = self.make_tuple(m.role, Vec::new());
                self.push(m, t)?;
            }
            Op::EmptyList | Op::EmptySet => self.push(m, Val::Container(false))?,
            Op::EmptyDict => {
                let v = if m.role == Role::Plain {
                    Val::Container(false)
                } else {
                    Val::Node(Rc::new(RefCell::new(Node::Dict(DictV::default()))))
                };
                self.push(m, v)?;
            }
            Op::Tuple => {
                let items = m.pop_mark(off)?;
                let t = self.make_tuple(m.role, items);
                self.push(m, t)?;
            }
            Op::TupleN(n) => {
                let items = m.pop_n(*n, off)?;
                let t = self.make_tuple(m.role, items);
                self.push(m, t)?;
            }
            Op::List | Op::Frozenset => {
                let items = m.pop_mark(off)?;
                let t = m.tainted_any(&items);
                self.push(m, Val::Container(t))?;
            }
            Op::Dict => {
                let items = m.pop_mark(off)?;
                if items.len() % 2 != 0 {
                    return Err(malformed(off, "DICT with an odd number of items"));
                }
                let v = if m.role == Role::Plain {
                    Val::Container(false)
                } else {
                    let mut d = DictV {
                        tainted: m.tainted_any(&items),
                        ..DictV::default()
                    };
                    for pair in items.chunks(2) {
                        if let [k, v] = pair {
                            set_key(&mut d, k, v.clone());
                        }
                    }
                    Val::Node(Rc::new(RefCell::new(Node::Dict(d))))
                };
                self.push(m, v)?;
            }
            Op::Append => {
                let v = m.pop(off)?;
                let target = m.top(off)?;
                self.insert_into(m, &target, &[], off)?;
                if m.tainted(&v) {
                    m.escaped = true;
                }
            }
            Op::Appends | Op::AddItems => {
                let items = m.pop_mark(off)?;
                let target = m.top(off)?;
                self.insert_into(m, &target, &[], off)?;
                if m.tainted_any(&items) {
                    m.escaped = true;
                }
            }
            Op::SetItem => {
                let v = m.pop(off)?;
                let k = m.pop(off)?;
                let target = m.top(off)?;
                self.insert_into(m, &target, &[k, v], off)?;
            }
            Op::SetItems => {
                let items = m.pop_mark(off)?;
                if items.len() % 2 != 0 {
                    return Err(malformed(off, "SETITEMS with an odd number of items"));
                }
                let target = m.top(off)?;
                self.insert_into(m, &target, &items, off)?;
            }
            Op::Put(k) => {
                let v = m.top(off)?;
                self.memo_put(m, base, *k, v)?;
            }
            Op::Memoize => {
                let v = m.top(off)?;
                let k = Self::memo_len(m);
                self.memo_put(m, base, k, v)?;
            }
            Op::Get(k) => {
                let found = m
                    .memo
                    .get(k)
                    .or_else(|| base.and_then(|b| b.get(k)))
                    .cloned();
                match found {
                    Some(v) => self.push(m, v)?,
                    None if m.role == Role::Plain => m.alive = false,
                    None => return Err(malformed(off, format!("memo key {k} is not set"))),
                }
            }
            Op::Global(name) => {
                let kind = match name {
                    Some(n) => self.record(n)?,
                    None => {
                        self.record(UNRESOLVED)?;
                        GKind::Unresolved
                    }
                };
                self.push(m, Val::Global(kind))?;
            }
            Op::StackGlobal => self.stack_global(m, off)?,
            Op::Inst(name) => {
                let kind = match name {
                    Some(n) => self.record(n)?,
                    None => {
                        self.record(UNRESOLVED)?;
                        GKind::Unresolved
                    }
                };
                let args = m.pop_mark(off)?;
                let cls = Val::Global(kind);
                let mut inputs: Vec<&Val> = vec![&cls];
                inputs.extend(args.iter());
                let v = Self::call_result(m, &inputs, Val::Unknown);
                self.push(m, v)?;
            }
            Op::Obj => {
                let items = m.pop_mark(off)?;
                if items.is_empty() {
                    return Err(malformed(off, "OBJ without a class"));
                }
                let inputs: Vec<&Val> = items.iter().collect();
                let v = Self::call_result(m, &inputs, Val::Unknown);
                self.push(m, v)?;
            }
            Op::Ext(code) => {
                self.record(&format!("<ext:{code}>"))?;
                self.push(m, Val::Tainted)?;
            }
            Op::Reduce => {
                let args = m.pop(off)?;
                let f = m.pop(off)?;
                let v = self.reduce(m, &f, &args);
                self.push(m, v)?;
            }
            Op::NewObj => {
                let args = m.pop(off)?;
                let cls = m.pop(off)?;
                let v = Self::new_instance(m, &cls, &[&args]);
                self.push(m, v)?;
            }
            Op::NewObjEx => {
                let kwargs = m.pop(off)?;
                let args = m.pop(off)?;
                let cls = m.pop(off)?;
                let v = Self::new_instance(m, &cls, &[&args, &kwargs]);
                self.push(m, v)?;
            }
            Op::PersId => {
                self.record(PERSISTENT_ID)?;
                self.push(m, Val::Tainted)?;
            }
            Op::BinPersId => {
                let pid = m.pop(off)?;
                if m.tainted(&pid) {
                    m.escaped = true;
                }
                self.record(PERSISTENT_ID)?;
                self.push(m, Val::Tainted)?;
            }
            Op::Build => return self.build(m, off),
            Op::ReadonlyBuffer => {
                m.top(off)?;
            }
            Op::NextBuffer => self.push(m, Val::Scalar)?,
        }
        Ok(Flow::Continue)
    }

    /// Walks the outer stream up to and including its final `STOP`.
    pub(super) fn run<R: Read>(&mut self, inp: &mut Input<R>) -> Result<(), PickleError> {
        let mut outer = Machine::new(Role::Outer);
        loop {
            let off = inp.offset;
            let op = self.next_op(inp)?;
            match self.apply(&mut outer, None, &op, off)? {
                Flow::Continue => {}
                Flow::Stop => return Ok(()),
                Flow::WrapperBuild(state) => self.joblib_array(inp, &mut outer, &state, off)?,
            }
        }
    }
}
