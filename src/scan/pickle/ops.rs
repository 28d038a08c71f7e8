//! The one opcode table: every opcode of protocols 0 to 5, its argument encoding and whether it
//! imports (CPython `Lib/pickletools.py`).

use super::*;

pub(super) enum Op {
    Nop,
    Proto(u8),
    Stop,
    Mark,
    Pop,
    PopMark,
    Dup,
    Push(Val),
    EmptyTuple,
    EmptyList,
    EmptyDict,
    EmptySet,
    Tuple,
    TupleN(usize),
    List,
    Dict,
    Frozenset,
    Append,
    Appends,
    SetItem,
    SetItems,
    AddItems,
    Put(u64),
    Memoize,
    Get(u64),
    Global(Option<String>),
    StackGlobal,
    Inst(Option<String>),
    Obj,
    Ext(i64),
    Reduce,
    NewObj,
    NewObjEx,
    PersId,
    BinPersId,
    Build,
    ReadonlyBuffer,
    NextBuffer,
}

/// Argument encoding of each opcode, for the syntax-only parser.
#[derive(Clone, Copy)]
pub(super) enum Arg {
    No,
    Fixed(u8),
    Lines(u8),
    Len1,
    Len4,
    Len4Signed,
    Len8,
}

/// The 68 opcodes of protocols 0-5 and their argument encodings; `None` for any other byte.
pub(super) fn op_arg(code: u8) -> Option<Arg> {
    Some(match code {
        b'('
        | b'.'
        | b'0'
        | b'1'
        | b'2'
        | b'N'
        | b'Q'
        | b'R'
        | b'a'
        | b'b'
        | b'd'
        | b'}'
        | b'e'
        | b'l'
        | b']'
        | b'o'
        | b's'
        | b't'
        | b')'
        | b'u'
        | 0x81
        | 0x85..=0x89
        | 0x8f..=0x94
        | 0x97
        | 0x98 => Arg::No,
        b'F' | b'I' | b'L' | b'P' | b'S' | b'V' | b'g' | b'p' => Arg::Lines(1),
        b'c' | b'i' => Arg::Lines(2),
        b'K' | b'h' | b'q' | 0x80 | 0x82 => Arg::Fixed(1),
        b'M' | 0x83 => Arg::Fixed(2),
        b'J' | b'j' | b'r' | 0x84 => Arg::Fixed(4),
        b'G' | 0x95 => Arg::Fixed(8),
        b'U' | b'C' | 0x8a | 0x8c => Arg::Len1,
        b'X' | b'B' => Arg::Len4,
        b'T' | 0x8b => Arg::Len4Signed,
        0x8d | 0x8e | 0x96 => Arg::Len8,
        _ => return None,
    })
}

/// Opcodes through which plain `pickle.load` imports or obtains new objects by name.
pub(super) fn op_imports(code: u8) -> bool {
    matches!(code, b'c' | b'i' | 0x93 | 0x82 | 0x83 | 0x84 | b'P' | b'Q')
}

/// Parses a decimal memo index exactly as written: ASCII digits only.
pub(super) fn parse_index(line: &[u8]) -> Option<u64> {
    if line.is_empty() || line.len() > 19 || !line.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// Parses the text of an `INT`/`LONG` argument. Only plain decimal is resolved; any other
/// spelling Python accepts (`0x10`, `1_000`, ...) still yields an int of unknown value.
pub(super) fn parse_int_text(line: &[u8]) -> Val {
    let (neg, digits) = match line {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, line),
    };
    let canonical = match digits {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical || digits.len() > 19 {
        return Val::Scalar;
    }
    let text = std::str::from_utf8(digits).ok();
    match text.and_then(|t| t.parse::<i64>().ok()) {
        Some(v) if neg => v.checked_neg().map_or(Val::Scalar, Val::Int),
        Some(v) => Val::Int(v),
        None => Val::Scalar,
    }
}

/// Two's-complement little-endian integer of at most 8 bytes (`LONG1`/`LONG4` payload).
pub(super) fn long_bytes(b: &[u8]) -> Val {
    if b.is_empty() {
        return Val::Int(0);
    }
    if b.len() > 8 {
        return Val::Scalar;
    }
    let fill = if b.last().is_some_and(|x| x & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut full = [fill; 8];
    if let Some(dst) = full.get_mut(..b.len()) {
        dst.copy_from_slice(b);
    }
    Val::Int(i64::from_le_bytes(full))
}

// ---------------------------------------------------------------------------------------------
