//! Symbolic values on the walker's stack and memo: short strings, tuples, dicts, dtype states
//! and the taint that marks anything a call produced.

use std::cell::RefCell;
use std::rc::Rc;

use super::*;

/// Live budget, in bytes, for retained strings and tuple items.
pub(super) const MAX_RETAINED: u64 = 256 << 20;
/// Items kept per tuple; longer tuples keep none.
pub(super) const MAX_TUPLE_ITEMS: usize = 64;
/// Deepest tuple-in-tuple nesting kept (bounds recursive drops).
pub(super) const MAX_TUPLE_DEPTH: u32 = 64;
pub(super) const UNRESOLVED: &str = "<unresolved>";
pub(super) const PERSISTENT_ID: &str = "<persistent_id>";
pub(super) const WRAPPER_NAME: &str = "NumpyArrayWrapper";
/// Attributes of a `NumpyArrayWrapper` that decide how many bytes joblib reads.
pub(super) const WRAPPER_ATTRS: [&str; 4] = [
    "shape",
    "dtype",
    "numpy_array_alignment_bytes",
    "allow_mmap",
];
pub(super) const SLOT_SHAPE: usize = 0;
pub(super) const SLOT_DTYPE: usize = 1;
pub(super) const SLOT_ALIGN: usize = 2;
pub(super) const SLOT_MMAP: usize = 3;

/// A retained string; its cost is returned to the budget when the last reference drops.
pub(super) struct PStr {
    pub(super) s: Box<str>,
    pub(super) acct: Rc<Cell<u64>>,
    pub(super) cost: u64,
}

impl Drop for PStr {
    fn drop(&mut self) {
        self.acct.set(self.acct.get().saturating_sub(self.cost));
    }
}

/// An immutable tuple. Mutable nodes inside it are held weakly, nested tuples strongly (they
/// cannot form cycles), so every `Rc` graph is acyclic and drops are bounded by the depth cap.
pub(super) struct TupleV {
    pub(super) items: Vec<Val>,
    /// True when items were not kept (too many, too deep, or over budget).
    pub(super) overflow: bool,
    /// May hold a `NumpyArrayWrapper` class or instance (outer joblib walk only).
    pub(super) tainted: bool,
    pub(super) depth: u32,
    pub(super) acct: Rc<Cell<u64>>,
    pub(super) cost: u64,
}

impl Drop for TupleV {
    fn drop(&mut self) {
        self.acct.set(self.acct.get().saturating_sub(self.cost));
    }
}

/// The parts of a dict that matter: the four wrapper attributes.
#[derive(Default)]
pub(super) struct DictV {
    pub(super) slots: [Option<Val>; 4],
    /// A key that might be a `str` at run time but whose value is unknown was set.
    pub(super) unknown_keys: bool,
    pub(super) tainted: bool,
}

pub(super) struct DtypeV {
    pub(super) code: Option<Rc<PStr>>,
    pub(super) state: Option<Val>,
}

pub(super) enum Node {
    Dict(DictV),
    Dtype(DtypeV),
    Wrapper { built: bool },
}

pub(super) type NodeRef = Rc<RefCell<Node>>;

/// What a global name resolves to, as far as the walker cares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum GKind {
    /// `...NumpyArrayWrapper`: the joblib array wrapper class.
    Wrapper,
    /// Some other attribute path mentioning `NumpyArrayWrapper`.
    WrapperRelated,
    NumpyDtype,
    CopyregNewobj,
    CopyregNewobjEx,
    Unresolved,
    Other,
}

impl GKind {
    pub(super) fn classify(dotted: &str) -> GKind {
        match dotted {
            "numpy.dtype" => GKind::NumpyDtype,
            "copyreg.__newobj__" | "copy_reg.__newobj__" => GKind::CopyregNewobj,
            "copyreg.__newobj_ex__" | "copy_reg.__newobj_ex__" => GKind::CopyregNewobjEx,
            _ if dotted.rsplit('.').next() == Some(WRAPPER_NAME) => GKind::Wrapper,
            _ if dotted.contains(WRAPPER_NAME) => GKind::WrapperRelated,
            _ => GKind::Other,
        }
    }

    pub(super) fn taints(self) -> bool {
        matches!(
            self,
            GKind::Wrapper | GKind::WrapperRelated | GKind::Unresolved
        )
    }
}

#[derive(Clone)]
pub(super) enum Val {
    Nil,
    Bool(bool),
    Int(i64),
    /// A known non-`str` value whose content does not matter (float, big int, bytes, buffer).
    Scalar,
    Str(Rc<PStr>),
    /// A `str` whose content was not kept (too long, over budget, or not decodable here).
    OpaqueStr,
    Tuple(Rc<TupleV>),
    /// A list, set or frozenset; the flag says whether it may hold wrapper things.
    Container(bool),
    Node(NodeRef),
    /// A node referenced from inside a container (only ever stored there, never on the stack).
    Weak(Weak<RefCell<Node>>),
    Global(GKind),
    /// An object made by `NEWOBJ` (assumed not to be an exact `str`).
    Instance,
    /// The result of an arbitrary call.
    Unknown,
    /// May be (or hold) a `NumpyArrayWrapper` instance or class.
    Tainted,
}

pub(super) enum StrClass {
    Known(Rc<PStr>),
    NotStr,
    Maybe,
}

impl Val {
    pub(super) fn str_class(&self) -> StrClass {
        match self {
            Val::Str(s) => StrClass::Known(Rc::clone(s)),
            Val::Nil
            | Val::Bool(_)
            | Val::Int(_)
            | Val::Scalar
            | Val::Tuple(_)
            | Val::Container(_)
            | Val::Node(_)
            | Val::Weak(_)
            | Val::Instance => StrClass::NotStr,
            Val::OpaqueStr | Val::Global(_) | Val::Unknown | Val::Tainted => StrClass::Maybe,
        }
    }

    /// Shallow "may be or hold a wrapper class/instance". Container flags are kept current
    /// because a late insertion of a tainted value marks the walk as escaped instead.
    pub(super) fn tainted(&self) -> bool {
        match self {
            Val::Tainted => true,
            Val::Global(k) => k.taints(),
            Val::Tuple(t) => t.tainted,
            Val::Container(t) => *t,
            Val::Node(rc) => node_tainted(rc),
            Val::Weak(w) => w.upgrade().is_none_or(|rc| node_tainted(&rc)),
            _ => false,
        }
    }

    /// The form kept inside containers: nodes are held weakly so no `Rc` cycle can form.
    pub(super) fn weakened(self) -> Val {
        match self {
            Val::Node(rc) => Val::Weak(Rc::downgrade(&rc)),
            other => other,
        }
    }

    pub(super) fn node(&self) -> Option<NodeRef> {
        match self {
            Val::Node(rc) => Some(Rc::clone(rc)),
            Val::Weak(w) => w.upgrade(),
            _ => None,
        }
    }
}

pub(super) fn node_tainted(rc: &NodeRef) -> bool {
    match rc.try_borrow() {
        Ok(n) => match &*n {
            Node::Dict(d) => d.tainted,
            Node::Dtype(_) => false,
            Node::Wrapper { .. } => true,
        },
        Err(_) => true,
    }
}

// ---------------------------------------------------------------------------------------------
